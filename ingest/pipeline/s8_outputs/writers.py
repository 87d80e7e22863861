"""FITS writers for the published tables, driven by rd.xml through ``ingest.core.schema``.

The FITS files carry the same column names, order, types, units, UCDs and
descriptions as the DaCHS tables (TUNITn, TUCDn, TCOMMn), so there is one
source of column metadata, not two.  Integer NULLs become the column's
``nullLiteral`` (declared as TNULLn), float NULLs NaN, text NULLs empty
strings; text is written as its UTF-8 bytes in a field as wide as the longest
value.  A required column that is absent or has NULLs is a programming error
upstream and stops the write.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from astropy.io import fits

from ingest.core import schema


class TableError(ValueError):
    """A DataFrame does not fit the published table it is written as."""


def _null_mask(values: pd.Series) -> np.ndarray:
    return values.isna().to_numpy()


_ARROW_TEXT = (pa.types.is_null, pa.types.is_string, pa.types.is_large_string,
               pa.types.is_string_view)


def _arrow_text(values: pd.Series) -> pa.LargeStringArray:
    """``values`` as one Arrow text array with its NULLs: pandas text is taken over without
    a per-row loop; values that are not text (numbers, say) become their ``str``."""
    try:
        arrow = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arrow = None
    if arrow is None or not any(is_text(arrow.type) for is_text in _ARROW_TEXT):
        as_str = values.astype(object).map(str).where(~values.isna(), None)
        arrow = pa.array(as_str, type=pa.large_string(), from_pandas=True)
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    return arrow.cast(pa.large_string())


def _fixed_width_bytes(text: pa.LargeStringArray) -> np.ndarray:
    """The UTF-8 bytes of each value (NULL as empty) in an ``S<n>`` array as wide as the
    longest value (at least 1), built from Arrow's buffers without a Python loop."""
    text = pc.fill_null(text, "")
    offsets = np.frombuffer(text.buffers()[1], np.int64)[text.offset:text.offset + len(text) + 1]
    lengths = np.diff(offsets)
    width = max(1, int(lengths.max(initial=0)))
    data_buffer = text.buffers()[2]
    data = (np.frombuffer(data_buffer, np.uint8) if data_buffer is not None
            else np.zeros(0, np.uint8))[offsets[0]:offsets[-1]]
    padded = np.zeros((len(text), width), np.uint8)
    padded[np.arange(width) < lengths[:, None]] = data
    return padded.view(f"S{width}").reshape(len(text))


def _text_column(values: pd.Series) -> np.ndarray:
    """A text column as fixed-width UTF-8 bytes, NULLs as empty strings."""
    return _fixed_width_bytes(_arrow_text(values))


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
    # The text columns are bytes already; without character_as_bytes astropy would decode
    # each to str and encode it back row by row when writing.
    hdu = fits.BinTableHDU.from_columns(columns, name=table_name.upper(),
                                        character_as_bytes=True)
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
