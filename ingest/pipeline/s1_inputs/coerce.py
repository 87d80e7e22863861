"""Values of canonical columns: the types, units and missing-value spellings of the inputs.

Text is trimmed Arrow-backed strings, identifiers nullable Int64 (Gaia ids
exceed float precision), epochs Julian years (from ISO dates, years, MJD or
LAMOST minutes of MJD), numbers floats with masked and sentinel values NaN.
The arrays built here are new, so they go into Series without a copy (pandas 3
copies by default: 0.16 s per 10M-row column).
A value of the wrong type is an :class:`InputError` naming file and column.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

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
# Raw columns read whole per pass when only some rows are kept (projection.py): bounds
# the transient copy of a 10M-row file to this many columns at a time.
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
                              dtype=pd.StringDtype("pyarrow", na_value=np.nan)), copy=False)


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
                                                np.ma.getmaskarray(data).copy()), copy=False)
    if column.dtype.kind in "USO":
        text = _text_values(column, path, name)
        present = text.dropna()
        if not present.str.fullmatch(r"[+-]?\d+(\.0*)?").all():
            _numeric_from_text(text, path, name)  # raises on words
            raise InputError(path, "expected integer identifiers, found non-integer numbers",
                             column=name)
        ints = np.zeros(len(text), np.int64)
        ints[text.notna().to_numpy()] = [int(t.split(".")[0]) for t in present]
        return pd.Series(pd.arrays.IntegerArray(ints, text.isna().to_numpy()), copy=False)
    floats = _float_values(column, path, name, keep_float32=False)
    finite = np.isfinite(floats)
    if np.any(floats[finite] != np.round(floats[finite])):
        raise InputError(path, "expected integer identifiers, found fractional numbers",
                         column=name)
    ints = np.where(finite, floats, 0).astype(np.int64)
    return pd.Series(pd.arrays.IntegerArray(ints, ~finite), copy=False)


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
    if field in TEXT_FIELDS:        # from Arrow nulls: a list of 1.4M Nones took 0.3 s
        return pd.Series(pd.array(pa.nulls(n, pa.large_string()),
                                  dtype=pd.StringDtype("pyarrow", na_value=np.nan)), copy=False)
    if field in INTEGER_FIELDS:
        return pd.Series(pd.arrays.IntegerArray(np.zeros(n, np.int64), np.ones(n, bool)),
                         copy=False)
    return np.full(n, np.nan)


def canonical_frame(source: Source, resolved: dict[str, str], kind: str, path: Path,
                     sentinel: float | None, fields: tuple[str, ...] | None = None,
                     rows: np.ndarray | None = None,
                     known: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Canonical columns in FIELDS order (or only ``fields``); unmapped fields present as
    missing.  With ``rows`` (ascending row positions) only those rows are kept:
    :func:`_kept_rows_frame`.

    Columns are converted one by one and not consolidated, so a 10M-row file costs
    the canonical columns only once."""
    wanted = FIELDS[kind] if fields is None else fields
    if rows is not None:
        return _kept_rows_frame(source, resolved, kind, path, sentinel, wanted, rows,
                                known or {})
    order = list(dict.fromkeys(resolved[f] for f in wanted if f in resolved))
    columns = source.load(order) if order else {}
    data = {}
    for field in wanted:
        name = resolved.get(field)
        data[field] = (_missing_column(field, source.nrows) if name is None else
                       _canonical_column(field, columns[name], path, name, sentinel))
        if name is not None and all(resolved.get(f) != name for f in _after(wanted, field)):
            del columns[name]       # the raw column is no longer needed: keep the peak low
    frame = pd.DataFrame(data, copy=False)
    for field in REQUIRED[kind]:
        if field in wanted and frame[field].isna().all():
            raise InputError(path, f"required {kind} column is empty or all NaN",
                             column=resolved[field])
    return frame


def _after(wanted: tuple[str, ...], field: str) -> tuple[str, ...]:
    return wanted[wanted.index(field) + 1:]


# How a field's raw column is converted when only some rows are kept, by the kind of its
# values: "rows" converts the kept rows alone (every check looks at one value at a
# time); "text" needs every row's bytes for the UTF-8 check, then converts the kept
# rows; "whole" converts every row (checks across rows: number parsing naming the
# first bad row, fractional identifiers, the unit of the epochs), then keeps the rows.
def _plan(field: str, value_kind: str) -> str:
    if field in TEXT_FIELDS:
        return "text" if value_kind == "S" else "whole"
    if field in INTEGER_FIELDS:
        return "rows" if value_kind and value_kind in "iub" else "whole"
    if field == "epoch":
        return "whole"
    return "rows" if value_kind and value_kind in "biuf" else "whole"


def _ascii(column) -> bool:
    """Only ASCII bytes (so valid UTF-8) in every value, masked or not."""
    raw = np.ascontiguousarray(np.ma.getdata(column)).view(np.uint8)
    return raw.size == 0 or int(raw.max()) < 0x80


def _take(values, rows: np.ndarray):
    return values.iloc[rows].reset_index(drop=True) if isinstance(values, pd.Series) \
        else values[rows]


def _kept_rows_frame(source: Source, resolved: dict[str, str], kind: str, path: Path,
                     sentinel: float | None, wanted: tuple[str, ...], rows: np.ndarray,
                     known: Mapping[str, Any]) -> pd.DataFrame:
    """:func:`canonical_frame` of the kept ``rows`` only, with the errors of converting
    every row (ingest/pipeline/s1_inputs/projection.py): a bad value is an error whether or
    not its row is kept.

    Most columns are read for the kept rows alone, in one pass over the file; those
    whose checks span rows (:func:`_plan`) are read whole, :data:`ROW_SUBSET_GROUP` at a
    time (the first group in that same pass).  ``known`` holds fields already converted
    and checked for every row (the selection pass), given for the kept rows."""
    convert = [f for f in wanted if f in resolved and f not in known]
    plans = {f: _plan(f, source.kinds.get(resolved[f], "")) for f in convert}
    whole_names = list(dict.fromkeys(resolved[f] for f in convert if plans[f] != "rows"))
    row_names = [n for n in dict.fromkeys(resolved[f] for f in convert)
                 if n not in whole_names]
    groups = [whole_names[i:i + ROW_SUBSET_GROUP]
              for i in range(0, len(whole_names), ROW_SUBSET_GROUP)] or [[]]
    group_of = {name: i for i, group in enumerate(groups) for name in group}
    columns: dict[str, Any] = {}
    if row_names or groups[0]:
        columns.update(source.load(row_names + groups[0], rows, frozenset(groups[0])))
    data, unsure = {}, []
    for field in wanted:
        name = resolved.get(field)
        if field in known:
            data[field] = known[field]
            continue
        if name is None:
            data[field] = _missing_column(field, len(rows))
            continue
        if name not in columns:
            group = groups[group_of[name]]
            columns.update(source.load(group, rows, frozenset(group)))
        data[field] = _kept_values(field, plans[field], columns[name], name in group_of,
                                   rows, path, name, sentinel)
        if field in REQUIRED[kind] and pd.isna(data[field]).all():
            unsure.append(field)    # no kept value: the other rows decide
        if all(resolved.get(f) != name or f in known for f in _after(wanted, field)):
            del columns[name]       # the raw column is no longer needed: keep the peak low
    for field in REQUIRED[kind]:
        if field in unsure and pd.isna(_canonical_column(
                field, source.load([resolved[field]])[resolved[field]], path,
                resolved[field], sentinel)).all():
            raise InputError(path, f"required {kind} column is empty or all NaN",
                             column=resolved[field])
    return pd.DataFrame(data, copy=False)


def _kept_values(field: str, plan: str, column, whole: bool, rows: np.ndarray, path: Path,
                 name: str, sentinel: float | None):
    """One canonical column at ``rows``; ``column`` holds every row when ``whole``."""
    if plan == "whole" or (plan == "text" and not _ascii(column)):
        return _take(_canonical_column(field, column, path, name, sentinel), rows)
    return _canonical_column(field, column[rows] if whole else column, path, name, sentinel)
