"""Values of canonical columns: the types, units and missing-value spellings of the inputs.

Text is trimmed Arrow-backed strings, identifiers nullable Int64 (Gaia ids
exceed float precision), epochs Julian years (from ISO dates, years, MJD or
LAMOST minutes of MJD), numbers floats with masked and sentinel values NaN.
A value of the wrong type is an :class:`InputError` naming file and column.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import erfa
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ingest.core.errors import InputError
from ingest.pipeline.s1_inputs.colmap import FIELDS, REQUIRED
from ingest.pipeline.s1_inputs.formats import Source

TEXT_FIELDS = frozenset({"cluster", "all_names", "star_id", "band", "member_id"})
INTEGER_FIELDS = frozenset({"obsid", "source_id", "gp_id", "mc_id", "n_members", "n_rv_lit"})
LAMOST_MISSING = -9999.0
NON_NEGATIVE_FIELDS = frozenset({"vsini"})
# Raw columns loaded per pass when only some rows are kept (projection.py): bounds the
# transient copy of a 10M-row file to this many columns at a time.
ROW_SUBSET_GROUP = 8

_NAN_TEXT = frozenset({"", "nan", "NaN", "NAN", "null", "NULL", "--", "None"})


def _arrow_text(values: np.ndarray) -> pa.Array:
    if values.dtype.kind == "S" and values.dtype.itemsize > 0:
        raw = np.ascontiguousarray(values)
        fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(raw.dtype.itemsize), len(raw),
                                                     [None, pa.py_buffer(raw)])
        return pc.cast(pc.cast(fixed, pa.binary()), pa.string())
    return pa.array(values.astype(str))


def _text_values(column, path: Path, name: str) -> pd.Series:
    """Arrow-backed text with padding trimmed; masked, blank and NaN spellings missing."""
    data = np.ma.asarray(column)
    try:
        text = pc.utf8_trim(_arrow_text(np.ma.getdata(data)), characters="\x00 \t")
    except pa.ArrowInvalid:
        raise InputError(path, "text is not valid UTF-8", column=name) from None
    missing = pc.or_(pc.is_in(text, value_set=pa.array(sorted(_NAN_TEXT))),
                     pa.array(np.ma.getmaskarray(data)))
    return pd.Series(pd.array(pc.if_else(missing, None, text),
                              dtype=pd.StringDtype("pyarrow", na_value=np.nan)))


def _numeric_from_text(text: pd.Series, path: Path, column: str) -> np.ndarray:
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(float)
    bad = np.isnan(numbers) & text.notna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(path, f"expected numbers, found text {text.iloc[row]!r} (row {row + 1}; "
                               f"{int(bad.sum())} such rows)", column=column)
    return numbers


def _float_values(column, path: Path, name: str, sentinel: float | None = None,
                  keep_float32: bool = True) -> np.ndarray:
    """Float copy (float32 stays float32 unless told otherwise: half the memory at full
    scale, no precision lost) with masked entries and ``sentinel`` values as NaN."""
    if column.dtype.kind in "USO":
        values = _numeric_from_text(_text_values(column, path, name), path, name)
    elif column.dtype.kind not in "biuf" or column.ndim != 1:
        raise InputError(path, f"expected a numeric scalar column, found {column.dtype}"
                               f"{'' if column.ndim == 1 else f' with shape {column.shape[1:]}'}",
                         column=name)
    else:
        dtype = np.float32 if keep_float32 and column.dtype == np.float32 else np.float64
        values = np.ma.filled(np.ma.asarray(column).astype(dtype), np.nan)
    if sentinel is not None:
        values[values == sentinel] = np.nan
    return values


def _integer_values(column, path: Path, name: str) -> pd.Series:
    """Nullable Int64 (Gaia ids exceed float precision, so never go through float)."""
    if column.dtype.kind in "iub":
        data = np.ma.asarray(column)
        return pd.Series(pd.arrays.IntegerArray(np.ma.getdata(data).astype(np.int64),
                                                np.ma.getmaskarray(data).copy()))
    if column.dtype.kind in "USO":
        text = _text_values(column, path, name)
        present = text.dropna()
        if not present.str.fullmatch(r"[+-]?\d+(\.0*)?").all():
            _numeric_from_text(text, path, name)  # raises on words
            raise InputError(path, "expected integer identifiers, found non-integer numbers",
                             column=name)
        ints = np.zeros(len(text), np.int64)
        ints[text.notna().to_numpy()] = [int(t.split(".")[0]) for t in present]
        return pd.Series(pd.arrays.IntegerArray(ints, text.isna().to_numpy()))
    floats = _float_values(column, path, name, keep_float32=False)
    finite = np.isfinite(floats)
    if np.any(floats[finite] != np.round(floats[finite])):
        raise InputError(path, "expected integer identifiers, found fractional numbers",
                         column=name)
    return pd.Series(pd.arrays.IntegerArray(np.where(finite, floats, 0).astype(np.int64), ~finite))


MJD_ZERO_JD = 2400000.5


def _julian_year_from_mjd(mjd: np.ndarray) -> np.ndarray:
    """ERFA's epj, the routine behind astropy's ``Time.jyear``: the same bits, without
    building a ``Time`` (for ten million epochs 0.2 s instead of 18 s)."""
    return erfa.epj(MJD_ZERO_JD, mjd)


def _epoch_values(column, path: Path, name: str) -> np.ndarray:
    """Julian year from ISO dates, Julian years, MJD or LAMOST MJ *minutes* (lmjm)."""
    if column.dtype.kind in "USO":
        codes, unique = pd.factorize(_text_values(column, path, name))
        parsed = pd.to_datetime(pd.Series(unique, dtype=object), errors="coerce", format="ISO8601")
        if parsed.isna().any():
            raise InputError(path, "expected ISO dates (YYYY-MM-DD), found "
                                   f"{unique[np.flatnonzero(parsed.isna())[0]]!r}", column=name)
        mjd = (parsed - pd.Timestamp("1858-11-17")) / pd.Timedelta(days=1)
        years = np.append(_julian_year_from_mjd(mjd.to_numpy(float)), np.nan)
        return years[codes]          # code -1 (missing) picks the trailing NaN
    values = _float_values(column, path, name, keep_float32=False)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return values
    low, high = finite.min(), finite.max()
    if 1000 <= low and high <= 3000:
        return values
    if 1e4 <= low and high < 1e6:
        return _julian_year_from_mjd(values)
    if 1e6 <= low and high < 1e9:
        return _julian_year_from_mjd(values / 1440.0)
    raise InputError(path, f"cannot tell the epoch unit of values {low:g}..{high:g} "
                           "(expected Julian years, MJD, minutes of MJD or ISO dates)",
                     column=name)


def _non_negative(values: np.ndarray) -> np.ndarray:
    """v sin i is a line width: a negative value is no measurement (NaN), not a rotation."""
    values = values.copy()
    values[values < 0] = np.nan
    return values


def _canonical_column(field: str, column, path: Path, name: str, sentinel: float | None):
    if field in TEXT_FIELDS:
        return _text_values(column, path, name)
    if field in INTEGER_FIELDS:
        return _integer_values(column, path, name)
    if field == "epoch":
        return _epoch_values(column, path, name)
    values = _float_values(column, path, name, sentinel, keep_float32=field not in ("ra", "dec"))
    return _non_negative(values) if field in NON_NEGATIVE_FIELDS else values


def _missing_column(field: str, n: int):
    if field in TEXT_FIELDS:
        return pd.Series(pd.array([None] * n, dtype=pd.StringDtype("pyarrow", na_value=np.nan)))
    if field in INTEGER_FIELDS:
        return pd.Series(pd.arrays.IntegerArray(np.zeros(n, np.int64), np.ones(n, bool)))
    return np.full(n, np.nan)


def canonical_frame(source: Source, resolved: dict[str, str], kind: str, path: Path,
                     sentinel: float | None, fields: tuple[str, ...] | None = None,
                     rows: np.ndarray | None = None) -> pd.DataFrame:
    """Canonical columns in FIELDS order (or only ``fields``); unmapped fields present as
    missing.  With ``rows`` (row positions) only those rows are kept.

    Columns are converted one by one and not consolidated, so a 10M-row file costs
    the canonical columns only once.  With ``rows`` the raw columns are loaded
    :data:`ROW_SUBSET_GROUP` at a time, yet every value is still converted and checked
    (ingest/pipeline/s1_inputs/projection.py): a bad value is an error whether or not its row is kept."""
    wanted = FIELDS[kind] if fields is None else fields
    order = list(dict.fromkeys(resolved[f] for f in wanted if f in resolved))
    size = max(len(order), 1) if rows is None else ROW_SUBSET_GROUP
    group_of = {name: order[i - i % size:i - i % size + size] for i, name in enumerate(order)}
    uses = Counter(resolved[f] for f in wanted if f in resolved)
    n = source.nrows if rows is None else len(rows)
    columns: dict[str, Any] = {}
    empty: set[str] = set()
    data = {}
    for field in wanted:
        name = resolved.get(field)
        if name is None:
            data[field] = _missing_column(field, n)
            continue
        if name not in columns:
            columns.update(source.load(group_of[name]))
        values = _canonical_column(field, columns[name], path, name, sentinel)
        if rows is not None:
            if field in REQUIRED[kind] and pd.isna(values).all():
                empty.add(field)
            values = (values.iloc[rows].reset_index(drop=True)
                      if isinstance(values, pd.Series) else values[rows])
        data[field] = values
        uses[name] -= 1
        if uses[name] == 0:
            del columns[name]       # the raw column is no longer needed: keep the peak low
    frame = pd.DataFrame(data, copy=False)
    for field in REQUIRED[kind]:
        if field in wanted and (field in empty if rows is not None
                                else frame[field].isna().all()):
            raise InputError(path, f"required {kind} column is empty or all NaN",
                             column=resolved[field])
    return frame

