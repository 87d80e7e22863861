"""Streaming FITS binary-table writer.

Full-scale tables (10M LAMOST rows, 1.3M members) do not fit comfortably in
memory as one astropy Table, so this writer appends big-endian record chunks
to an open file and rewrites the fixed-size header with the final NAXIS2 on
close.  The header itself is built by astropy.io.fits, so the cards follow
the standard; only the data layout (rows of packed big-endian fields) is done
here.  Output carries no timestamps, so identical input gives identical bytes.
"""
from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any, Mapping, Sequence

import numpy as np
from astropy.io import fits

BLOCK = 2880

# numpy kind+itemsize -> FITS TFORM letter.
_TFORM = {
    ("b", 1): "L", ("u", 1): "B", ("i", 2): "I", ("i", 4): "J", ("i", 8): "K",
    ("f", 4): "E", ("f", 8): "D",
}

ColumnSpec = tuple[str, Any, str]


def _column_dtype(dtype: Any) -> np.dtype:
    """The big-endian on-disk dtype of a column; booleans are stored as FITS 'L' bytes."""
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return np.dtype("S1")
    if dt.kind == "S":
        return dt
    if (dt.kind, dt.itemsize) not in _TFORM:
        raise ValueError(f"unsupported FITS column dtype {dt}")
    return dt.newbyteorder(">")


def _tform(dtype: Any) -> str:
    dt = np.dtype(dtype)
    if dt.kind == "S":
        return f"{dt.itemsize}A"
    return _TFORM[(dt.kind, dt.itemsize)]


def _padding(nbytes: int) -> int:
    return (-nbytes) % BLOCK


class FitsTableWriter:
    """Write a FITS file (empty primary HDU + one BINTABLE) chunk by chunk.

    ``columns`` is a list of (name, dtype, unit) with dtype a numpy dtype
    (bool, uint8, int16/32/64, float32/64) or 'S<n>' for fixed-width ASCII.
    ``header_cards`` go into both headers; a value may be a (value, comment)
    tuple; the keys COMMENT and HISTORY take a list of strings.
    """

    def __init__(self, path: str | Path, columns: Sequence[ColumnSpec],
                 header_cards: Mapping[str, Any] | None = None, extname: str | None = None):
        if not columns:
            raise ValueError("a FITS table needs at least one column")
        self.path = Path(path)
        self.columns = [(name, np.dtype(dtype), unit) for name, dtype, unit in columns]
        self._cards = dict(header_cards or {})
        self._extname = extname
        self._row_dtype = np.dtype([(name, _column_dtype(dt)) for name, dt, _ in self.columns])
        self.nrows = 0
        self._handle = open(self.path, "wb")
        self._handle.write(self._primary_header().tostring().encode("ascii"))
        self._table_offset = self._handle.tell()
        self._header_size = len(self._table_header().tostring())
        self._handle.write(self._table_header().tostring().encode("ascii"))

    def _apply_cards(self, header: fits.Header) -> None:
        for key, value in self._cards.items():
            if key in ("COMMENT", "HISTORY"):
                for line in ([value] if isinstance(value, str) else value):
                    header.append((key, line), end=True)
            else:
                header[key] = value

    def _primary_header(self) -> fits.Header:
        header = fits.PrimaryHDU().header
        header["EXTEND"] = True
        self._apply_cards(header)
        return header

    def _table_header(self) -> fits.Header:
        header = fits.Header()
        header["XTENSION"] = ("BINTABLE", "binary table extension")
        header["BITPIX"] = 8
        header["NAXIS"] = 2
        header["NAXIS1"] = (self._row_dtype.itemsize, "width of table in bytes")
        header["NAXIS2"] = (self.nrows, "number of rows in table")
        header["PCOUNT"] = 0
        header["GCOUNT"] = 1
        header["TFIELDS"] = len(self.columns)
        for index, (name, dtype, unit) in enumerate(self.columns, start=1):
            header[f"TTYPE{index}"] = name
            header[f"TFORM{index}"] = _tform(dtype)
            if unit:
                header[f"TUNIT{index}"] = unit
        if self._extname:
            header["EXTNAME"] = self._extname
        self._apply_cards(header)
        return header

    def _records(self, chunk: Mapping[str, Any]) -> np.ndarray:
        lengths = {len(chunk[name]) for name, _, _ in self.columns if name in chunk}
        missing = [name for name, _, _ in self.columns if name not in chunk]
        if missing:
            raise KeyError(f"{self.path}: chunk lacks columns {missing}")
        if len(lengths) > 1:
            raise ValueError(f"{self.path}: chunk columns differ in length {sorted(lengths)}")
        nrows = lengths.pop()
        records = np.empty(nrows, dtype=self._row_dtype)
        for name, dtype, _ in self.columns:
            records[name] = self._encode(name, dtype, np.asarray(chunk[name]))
        return records

    def _encode(self, name: str, dtype: np.dtype, values: np.ndarray) -> np.ndarray:
        if dtype.kind == "b":
            return np.where(values.astype(bool), b"T", b"F")
        if dtype.kind == "S":
            encoded = values if values.dtype.kind == "S" else values.astype(str).astype("S")
            too_long = encoded[np.char.str_len(encoded) > dtype.itemsize]
            if len(too_long):
                raise ValueError(f"{self.path}: column {name!r} value {too_long[0]!r} "
                                 f"is longer than {dtype.itemsize} characters")
            return encoded
        return values.astype(dtype, copy=False)

    def write(self, chunk: Mapping[str, Any]) -> None:
        """Append rows; ``chunk`` maps every column name to an equal-length array
        (a pandas DataFrame works as is)."""
        records = self._records(chunk)
        self._handle.write(records.tobytes())
        self.nrows += len(records)

    def close(self) -> None:
        """Pad the data to a FITS block and rewrite the header with the final row count."""
        if self._handle.closed:
            return
        data_bytes = self.nrows * self._row_dtype.itemsize
        self._handle.write(b"\0" * _padding(data_bytes))
        header = self._table_header().tostring().encode("ascii")
        if len(header) != self._header_size:
            raise RuntimeError(f"{self.path}: FITS header size changed while writing")
        self._handle.seek(self._table_offset)
        self._handle.write(header)
        self._handle.close()

    def __enter__(self) -> "FitsTableWriter":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
