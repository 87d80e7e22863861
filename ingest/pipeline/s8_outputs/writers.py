"""FITS writers for the published tables, driven by rd.xml through ``ingest.core.schema``.

The FITS files carry the same column names, order, types, units, UCDs and
descriptions as the DaCHS tables (TUNITn, TUCDn, TCOMMn), so there is one
source of column metadata, not two.  Integer NULLs become the column's
``nullLiteral`` (declared as TNULLn), float NULLs NaN, text NULLs empty
strings.  A required column that is absent or has NULLs is a programming
error upstream and stops the write.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits

from ingest.core import schema


class TableError(ValueError):
    """A DataFrame does not fit the published table it is written as."""


def _null_mask(values: pd.Series) -> np.ndarray:
    return values.isna().to_numpy()


def _text_column(values: pd.Series) -> np.ndarray:
    text = values.astype(object).where(~values.isna(), "").map(str)
    encoded = np.array([s.encode("utf-8") for s in text], dtype=object)
    width = max([1] + [len(b) for b in encoded])
    return encoded.astype(f"S{width}")


def _integer_column(values: pd.Series, column: schema.Column, table: str) -> np.ndarray:
    null = _null_mask(values)
    if null.any() and column.null_literal is None:
        raise TableError(f"{table}.{column.name}: {null.sum()} NULL values in an integer "
                         "column without a nullLiteral in rd.xml")
    if not null.any():
        return np.asarray(values.to_numpy(), dtype=column.dtype)
    filled = values.astype(object).where(~null, column.null_literal)
    return np.asarray(filled.to_numpy(), dtype=column.dtype)


def column_array(values: pd.Series | None, column: schema.Column, n_rows: int,
                 table: str) -> np.ndarray:
    """The FITS array for one published column (all NULL when ``values`` is None)."""
    if values is None:
        values = pd.Series([None] * n_rows, dtype=object)
    if column.required and _null_mask(values).any():
        raise TableError(f"{table}.{column.name}: required column has "
                         f"{_null_mask(values).sum()} NULL values")
    if column.type == "text":
        return _text_column(values)
    if column.is_integer:
        return _integer_column(values, column, table)
    return np.asarray(pd.to_numeric(values, errors="raise").astype("float64"),
                      dtype=column.dtype)


def _fits_column(column: schema.Column, array: np.ndarray) -> fits.Column:
    formats = {np.float64: "D", np.float32: "E", np.int64: "K", np.int32: "J", np.int16: "I"}
    fmt = f"{array.dtype.itemsize}A" if array.dtype.kind == "S" else formats[column.dtype]
    null = column.null_literal if column.is_integer else None
    return fits.Column(name=column.name, format=fmt, array=array,
                       unit=column.unit or None, null=null)


def table_hdu(df: pd.DataFrame, table_name: str) -> fits.BinTableHDU:
    """A BinTableHDU for ``df`` as the published table ``table_name`` (extra columns dropped)."""
    table = schema.table(table_name)
    missing = [c.name for c in table.columns if c.required and c.name not in df]
    if missing:
        raise TableError(f"{table_name}: required columns missing: {', '.join(missing)}")
    columns = [_fits_column(c, column_array(df[c.name] if c.name in df else None,
                                            c, len(df), table_name))
               for c in table.columns]
    hdu = fits.BinTableHDU.from_columns(columns, name=table_name.upper())
    for i, c in enumerate(table.columns, start=1):
        if c.ucd:
            hdu.header[f"TUCD{i}"] = c.ucd
        if c.description:
            hdu.header[f"TCOMM{i}"] = c.description
    return hdu


def write_table(df: pd.DataFrame, table_name: str, path: str | Path) -> Path:
    """Write ``df`` as the published table ``table_name`` to the FITS file ``path``."""
    path = Path(path)
    fits.HDUList([fits.PrimaryHDU(), table_hdu(df, table_name)]).writeto(path, overwrite=True)
    return path


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table written by ``write_table`` (text decoded; integer NULLs kept as literals)."""
    with fits.open(path, memmap=False) as hdus:
        data = hdus[1].data
        frame = {}
        for name in data.columns.names:
            values = np.asarray(data[name])
            if values.dtype.kind == "S":
                values = np.char.decode(values, "utf-8")
            frame[name] = values.astype(values.dtype.newbyteorder("="))
    return pd.DataFrame(frame)
