"""Input readers: any supported file -> a validated pandas DataFrame with canonical columns.

Column names differ between catalogues and releases, so each reader goes through a
column map (TOML; defaults in ``ingest/colmaps``, format in docs/inputs.md) from the
file's columns to the canonical field names the rest of the pipeline uses.  Problems
the user must fix (unreadable file, missing or mistyped column, a map naming an
absent column, duplicate obsids, member clusters absent from the cluster file) raise
:class:`InputError` naming the file and column; row-level defects real catalogues
have (no position, below the membership cut, duplicate members) are dropped and
counted in the returned ``rejections`` dict.
"""
from __future__ import annotations

import gzip
import re
import tomllib
import warnings
from collections import Counter
from dataclasses import dataclass, field as dataclass_field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import erfa
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from astropy.io import fits
from astropy.table import Table

from ingest.pipeline.s1_inputs import sanity
from ingest.core.errors import InputError
from ingest.core.vocabulary import XFE

from ingest.core.paths import COLMAP_DIR
CATALOGUES = ("hunt2024", "hunt2023", "cg20")
# Gaia release of each catalogue's member ids and positions (Hunt & Reffert: DR3;
# Cantat-Gaudin 2020: DR2, epoch 2015.5).
CATALOGUE_GAIA_RELEASE = {"hunt2024": "DR3", "hunt2023": "DR3", "cg20": "DR2"}
SURVEYS = ("lamost-mrs", "lamost-lrs")      # default maps, recognised by distinctive columns
UNDECLARED_SURVEY = "undeclared"            # a map without a survey key: no zero-point offset
NO_PARAMETER_SOURCE = "none"
# What a map file may hold: top-level keys and tables (anything else would be ignored).
MAP_SCALARS = frozenset({"survey", "gaia_release"})
MAP_TABLES = frozenset({"clusters", "members", "spectra", "parameter_sources", "literature"})
PARAMETER_SOURCE_KEY = "parameter_source"   # in [spectra]: which [parameter_sources.X] applies

SPECTRUM_PARAMETERS = ("rv", "teff", "logg", "feh", "m_h", "alpha_m", "vsini") + XFE

FIELDS: dict[str, tuple[str, ...]] = {
    "clusters": ("cluster", "mc_id", "ra", "dec", "glon", "glat", "r50", "n_members",
                 "pmra", "s_pmra", "pmdec", "s_pmdec", "plx", "s_plx", "dist16", "dist50",
                 "dist84", "logage50", "av50", "rv_lit", "rv_lit_err", "n_rv_lit",
                 "all_names"),
    "members": ("cluster", "source_id", "member_id", "prob", "ra", "dec", "pmra", "pmra_err",
                "pmdec", "pmdec_err", "plx", "plx_err", "gmag", "bp_rp"),
    "spectra": ("obsid", "star_id", "source_id", "gp_id", "ra", "dec", "epoch", "band",
                "snr", "rv", "rv_err", "rv_flag")
               + tuple(f for p in SPECTRUM_PARAMETERS[1:] for f in (p, f"{p}_err")),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "clusters": ("cluster", "ra", "dec"),
    "members": ("cluster", "ra", "dec"),
    "spectra": ("ra", "dec", "rv", "rv_err"),
}
TEXT_FIELDS = frozenset({"cluster", "all_names", "star_id", "band", "member_id"})
INTEGER_FIELDS = frozenset({"obsid", "source_id", "gp_id", "mc_id", "n_members", "n_rv_lit"})
LAMOST_MISSING = -9999.0
NON_NEGATIVE_FIELDS = frozenset({"vsini"})
# Rows per pass over a FITS table: a 1 MB chunk stays in cache while its columns are
# copied out (10M MRS rows: 5.3 s, against 18 s with 256 MB chunks).
FITS_CHUNK_BYTES = 2**20
# Raw columns loaded per pass when only some rows are kept (projection.py): bounds the
# transient copy of a 10M-row file to this many columns at a time.
ROW_SUBSET_GROUP = 8

_FITS_SUFFIXES = (".fits", ".fit", ".fts")
_VOTABLE_SUFFIXES = (".vot", ".votable", ".xml")
_NAN_TEXT = frozenset({"", "nan", "NaN", "NAN", "null", "NULL", "--", "None"})


# ---------------------------------------------------------------- names

def normalise_name(name: str) -> str:
    """Matching key of a cluster name: 'Melotte_22', 'melotte 22', 'Melotte-22' -> 'melotte22'."""
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


def display_name(name: str) -> str:
    """Cluster name as shown to users: underscores become spaces, padding is removed."""
    return " ".join(str(name).replace("_", " ").split())


# ---------------------------------------------------------------- files

def _format_of(path: Path) -> str:
    """File format from the suffix (ignoring .gz), else from the first bytes."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(_FITS_SUFFIXES):
        return "fits"
    if name.endswith(_VOTABLE_SUFFIXES):
        return "votable"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".ecsv"):
        return "ascii.ecsv"
    if name.endswith(".csv"):
        return "ascii.csv"
    return _sniff_format(path)


def _sniff_format(path: Path) -> str:
    with open(path, "rb") as handle:
        opener = gzip.open if handle.read(2) == b"\x1f\x8b" else open
    with opener(path, "rb") as handle:
        head = handle.read(512)
    if head.startswith(b"SIMPLE  ="):
        return "fits"
    if head.startswith(b"PAR1"):
        return "parquet"
    if b"<VOTABLE" in head or head.lstrip().startswith(b"<?xml"):
        return "votable"
    if head.startswith(b"# %ECSV"):
        return "ascii.ecsv"
    return "ascii.csv"


def _read_fits(path: Path) -> Table:
    """First table HDU; a truncated file is an error, not a short table."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.filterwarnings("error", message=".*truncated.*")
        with fits.open(path, memmap=True) as hdus:
            if not any(isinstance(h, (fits.BinTableHDU, fits.TableHDU)) for h in hdus):
                raise InputError(path, "FITS file has no table extension")
        return Table.read(path, format="fits", memmap=True, character_as_bytes=False)


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise InputError(path, "file not found")
    if path.stat().st_size == 0:
        raise InputError(path, "file is empty (0 bytes)")


def read_table(path: str | Path) -> Table:
    """Read FITS, VOTable, CSV/ECSV or Parquet (optionally .gz) into an astropy Table."""
    path = Path(path)
    _check_file(path)
    fmt = _format_of(path)
    try:
        if fmt == "fits":
            table = _read_fits(path)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table = Table.read(path, format=fmt)
    except InputError:
        raise
    except Exception as exc:  # astropy raises many types for damaged files
        raise _corrupt(path, fmt, exc) from None
    if len(table) == 0:
        raise InputError(path, "file holds a table with no rows")
    return table


def _corrupt(path: Path, fmt: str, exc: Exception) -> InputError:
    return InputError(path, f"cannot read as {fmt.removeprefix('ascii.')}: corrupt or "
                            f"truncated file ({type(exc).__name__}: {exc})")


@dataclass(frozen=True)
class _FitsLayout:
    """Where the rows of an uncompressed FITS binary table sit, for chunked column reads."""

    offset: int
    nrows: int
    dtype: np.dtype                 # on-disk (big-endian) record layout
    plain: frozenset[str]           # columns whose raw bytes are their values
    nulls: dict[str, int]           # TNULL of integer columns


def _fits_layout(path: Path) -> _FitsLayout | None:
    """Layout of the first BINTABLE, or None when there is none (astropy then decides)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.filterwarnings("error", message=".*truncated.*")
        with fits.open(path, memmap=True) as hdus:
            hdu = next((h for h in hdus if isinstance(h, fits.BinTableHDU)), None)
            if hdu is None:
                return None
            columns = hdu.columns
            plain = frozenset(
                c.name for c in columns
                if re.fullmatch(r"\d*[BIJKED]|\d*A", str(c.format)) and c.bzero in (None, 0)
                and c.bscale in (None, 1) and not c.dim)
            nulls = {c.name: int(c.null) for c in columns
                     if isinstance(c.null, (int, np.integer)) and not isinstance(c.null, bool)}
            layout = _FitsLayout(hdu.fileinfo()["datLoc"], hdu.header["NAXIS2"],
                                 columns.dtype.newbyteorder(">"), plain, nulls)
    if layout.dtype.itemsize * layout.nrows + layout.offset > path.stat().st_size:
        raise InputError(path, f"FITS file truncated: {layout.nrows} rows of "
                               f"{layout.dtype.itemsize} bytes do not fit in the file")
    return layout


def _fits_columns(path: Path, layout: _FitsLayout, names: list[str]) -> dict[str, np.ndarray]:
    """The named columns, read in chunks of rows so that only they are ever held in memory."""
    out = {n: np.empty(layout.nrows, layout.dtype[n].newbyteorder("=")) for n in names}
    per_chunk = max(1, FITS_CHUNK_BYTES // layout.dtype.itemsize)
    with open(path, "rb") as handle:
        handle.seek(layout.offset)
        for start in range(0, layout.nrows, per_chunk):
            rows = np.fromfile(handle, layout.dtype, min(per_chunk, layout.nrows - start))
            for name in names:
                out[name][start:start + len(rows)] = rows[name]
    return {n: np.ma.masked_equal(v, layout.nulls[n]) if n in layout.nulls else v
            for n, v in out.items()}


@dataclass(frozen=True)
class _Source:
    """Column names and row count of one input file, with an on-demand column loader."""

    names: list[str]
    nrows: int
    load: Callable[[list[str]], Mapping[str, Any]]


def _table_source(table: Table) -> _Source:
    return _Source(list(table.colnames), len(table), lambda names: {n: table[n] for n in names})


def _open_source(path: Path) -> _Source:
    """Uncompressed FITS binary tables are read column-wise in chunks (a 10M-row LAMOST
    file never sits in memory whole); every other file goes through :func:`read_table`."""
    _check_file(path)
    if _format_of(path) != "fits" or path.name.lower().endswith(".gz"):
        return _table_source(read_table(path))
    try:
        layout = _fits_layout(path)
    except InputError:
        raise
    except Exception as exc:
        raise _corrupt(path, "fits", exc) from None
    if layout is None:
        return _table_source(read_table(path))
    if layout.nrows == 0:
        raise InputError(path, "file holds a table with no rows")

    def load(names: list[str]) -> Mapping[str, Any]:
        if all(n in layout.plain for n in names):
            return _fits_columns(path, layout, names)
        return _table_source(read_table(path)).load(names)

    return _Source(list(layout.dtype.names), layout.nrows, load)


# ---------------------------------------------------------------- column maps

@dataclass(frozen=True)
class ColumnMap:
    """Canonical field -> candidate file columns; ``strict`` fields must be present.

    ``parameter_sources`` are alternative column sets for the stellar parameters
    (e.g. LAMOST MRS LASP or CNN); ``parameter_source`` names the one in effect.
    """

    source: str
    entries: dict[str, tuple[str, ...]]
    strict: frozenset[str]
    survey: str | None = None
    parameter_source: str | None = None
    parameter_sources: Mapping[str, Mapping[str, tuple[str, ...]]] = dataclass_field(default_factory=dict)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            content = tomllib.load(handle)
    except FileNotFoundError:
        raise InputError(path, "column map not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, f"column map is not valid TOML: {exc}") from None
    for key, value in content.items():
        known = MAP_TABLES if isinstance(value, dict) else MAP_SCALARS
        if key not in known:
            raise InputError(path, f"column map has an unknown top-level "
                                   f"{'table' if isinstance(value, dict) else 'key'} that would be "
                                   f"ignored; known: {', '.join(sorted(MAP_SCALARS | MAP_TABLES))}",
                             column=key)
    return content


def _entries(path: Path, kind: str, table: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """Canonical field -> candidate columns of one map table, checked."""
    entries = {}
    for name, value in table.items():
        if name not in FIELDS[kind]:
            raise InputError(path, f"[{kind}] names unknown canonical field; known: "
                                   f"{', '.join(FIELDS[kind])}", column=name)
        names = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, list) \
            else ()
        if not names or not all(isinstance(n, str) and n for n in names):
            raise InputError(path, f"[{kind}] entry must be a column name or a list of names",
                             column=name)
        entries[name] = names
    return entries


def _parameter_sources(path: Path, content: dict[str, Any]) -> dict[str, dict[str, tuple]]:
    """The [parameter_sources.NAME] tables of a map: alternative stellar-parameter columns."""
    sources = {}
    for name, table in content.get("parameter_sources", {}).items():
        if not isinstance(table, dict):
            raise InputError(path, "each parameter source must be a table "
                                   "[parameter_sources.NAME] of field = column entries",
                             column=name)
        sources[name] = _entries(path, "spectra", table)
    return sources


def _load_map_file(path: Path, kind: str, strict: bool) -> ColumnMap:
    content = _read_toml(path)
    section = content.get(kind)
    if not isinstance(section, dict):
        raise InputError(path, f"column map has no [{kind}] table")
    section = dict(section)
    choice = section.pop(PARAMETER_SOURCE_KEY, None) if kind == "spectra" else None
    if choice is not None and not isinstance(choice, str):
        raise InputError(path, "[spectra] parameter_source must be the name of a "
                               "[parameter_sources.NAME] table", column=PARAMETER_SOURCE_KEY)
    entries = _entries(path, kind, section)
    return ColumnMap(str(path), entries, frozenset(entries) if strict else frozenset(),
                     content.get("survey"), choice,
                     _parameter_sources(path, content) if kind == "spectra" else {})


def _with_parameter_source(cmap: ColumnMap, user: ColumnMap | None) -> ColumnMap:
    """``cmap`` with the entries of its chosen parameter source added.

    A user map chooses a source by name; mapping Teff/log g/[Fe/H] directly while
    a source is in effect would make the recorded provenance wrong, so it stops.
    """
    if cmap.parameter_source is None:
        return cmap
    chosen = cmap.parameter_sources.get(cmap.parameter_source)
    if chosen is None:
        known = ", ".join(sorted(cmap.parameter_sources)) or "none (this map defines no sources)"
        raise InputError(cmap.source, f"parameter_source {cmap.parameter_source!r} is not "
                                      f"defined; known: {known}", column=PARAMETER_SOURCE_KEY)
    direct = sorted(set(user.entries) & set(chosen)) if user is not None else []
    if direct:
        raise InputError(cmap.source, f"maps {', '.join(direct)} directly while parameter_source "
                                      f"{cmap.parameter_source!r} is in effect; choose the source "
                                      f"with [spectra] parameter_source = "
                                      f"{' or '.join(repr(k) for k in cmap.parameter_sources)}",
                         column=direct[0])
    strict = cmap.strict | frozenset(chosen) if user is not None and \
        user.parameter_source is not None else cmap.strict
    return replace(cmap, entries={**chosen, **cmap.entries}, strict=strict)


def column_map(kind: str, default: str | None, colmap: str | Path | None) -> ColumnMap:
    """The default map ``default`` (lenient) overridden entry by entry by ``colmap`` (strict)."""
    if default is None and colmap is None:
        raise ValueError("need a default catalogue/survey or a column map")
    base = _load_map_file(COLMAP_DIR / f"{default}.toml", kind, strict=False) if default else None
    user = _load_map_file(Path(colmap), kind, strict=True) if colmap is not None else None
    if user is None or base is None:
        return _with_parameter_source(base or user, user)
    merged = ColumnMap(user.source, {**base.entries, **user.entries}, user.strict,
                       user.survey or base.survey,
                       user.parameter_source or base.parameter_source,
                       {**base.parameter_sources, **user.parameter_sources})
    return _with_parameter_source(merged, user)


def _find_column(names: list[str], candidate: str) -> str | None:
    if candidate in names:
        return candidate
    folded = [n for n in names if n.lower() == candidate.lower()]
    return folded[0] if len(folded) == 1 else None


def _resolve(names: list[str], cmap: ColumnMap, kind: str, path: Path) -> dict[str, str]:
    """Canonical field -> the file column that provides it (first alternative present)."""
    resolved = {}
    for field, candidates in cmap.entries.items():
        found = next((c for c in map(lambda n: _find_column(names, n), candidates) if c), None)
        if found is not None:
            resolved[field] = found
        elif field in cmap.strict:
            raise InputError(cmap.source, f"column map names {' or '.join(candidates)} for "
                                          f"{field!r}, but {path} has no such column",
                             column=" / ".join(candidates))
    for field in REQUIRED[kind]:
        if field not in resolved:
            wanted = " or ".join(cmap.entries.get(field, (field,)))
            raise InputError(path, f"missing required column for {kind} field {field!r} "
                                   f"(expected {wanted}; map {cmap.source})", column=wanted)
    return resolved


# ---------------------------------------------------------------- values

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


def _canonical_frame(source: _Source, resolved: dict[str, str], kind: str, path: Path,
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


def _read(path: str | Path, kind: str, default: str | None, colmap: str | Path | None,
          sentinel: float | None = None, source: _Source | None = None,
          cmap: ColumnMap | None = None, fields: tuple[str, ...] | None = None,
          rows: np.ndarray | None = None) -> tuple[pd.DataFrame, ColumnMap, dict[str, str]]:
    path = Path(path)
    source = _open_source(path) if source is None else source
    cmap = column_map(kind, default, colmap) if cmap is None else cmap
    resolved = _resolve(source.names, cmap, kind, path)
    return (_canonical_frame(source, resolved, kind, path, sentinel, fields, rows), cmap,
            resolved)


def _add_cluster_names(frame: pd.DataFrame) -> pd.DataFrame:
    """Display name and matching key, computed once per distinct name (1.3M members)."""
    codes, unique = pd.factorize(frame["cluster"])
    text = pd.StringDtype("pyarrow", na_value=np.nan)
    for column, convert in (("cluster", display_name), ("cluster_key", normalise_name)):
        converted = pd.array([convert(u) for u in unique] + [None], dtype=text)
        frame[column] = converted.take(np.where(codes < 0, len(unique), codes))
    return frame


def _drop(frame: pd.DataFrame, bad: np.ndarray, key: str,
          rejections: dict[str, int]) -> pd.DataFrame:
    rejections[key] = int(np.count_nonzero(bad))
    return frame.loc[~bad]


def _positions_ok(frame: pd.DataFrame) -> np.ndarray:
    return (np.isfinite(frame["ra"].to_numpy(float)) & np.isfinite(frame["dec"].to_numpy(float)))


def _lower_ranked_duplicates(frame: pd.DataFrame, column: str) -> np.ndarray:
    """True for rows whose ``column`` value also appears with a higher prob (or earlier, if
    equal)."""
    order = np.lexsort((np.arange(len(frame)), -frame["prob"].fillna(-np.inf).to_numpy(float)))
    ids = frame[column].iloc[order]
    duplicate = np.empty(len(frame), bool)
    duplicate[order] = ids.duplicated().to_numpy() & ids.notna().to_numpy()
    return duplicate


def _position_keys(frame: pd.DataFrame) -> pd.Series:
    """'<cluster key>:<ra><dec>' (degrees, 6 decimals = 4 mas): a stable key for a member
    that has neither a Gaia id nor an identifier of its own."""
    text = pd.StringDtype("pyarrow", na_value=np.nan)
    ra = np.char.mod("%010.6f", frame["ra"].to_numpy(float))
    dec = np.char.mod("%+010.6f", frame["dec"].to_numpy(float))
    position = pd.Series(np.char.add(ra, dec), index=frame.index, dtype=text)
    return frame["cluster_key"].astype(text) + ":" + position


def _member_keys(frame: pd.DataFrame, gaia_release: str) -> pd.Series:
    """The published member key: the Gaia designation ('Gaia DR3 <source_id>') when the
    member has a Gaia id, else its own identifier (e.g. an APOGEE id), else a position key.

    Positional-only member lists (APOGEE, pre-Gaia catalogues) have no source_id, so the
    member and spectrum tables cannot be keyed on it."""
    text = pd.StringDtype("pyarrow", na_value=np.nan)
    keys = frame["source_id"].astype(text).radd(f"Gaia {gaia_release} ")
    keys = keys.fillna(frame["member_id"].astype(text))
    missing = keys.isna().to_numpy()
    if missing.any():
        keys[missing] = _position_keys(frame.loc[missing])
    return keys


def _check_catalogue(catalogue: str) -> str:
    if catalogue not in CATALOGUES:
        raise ValueError(f"unknown catalogue {catalogue!r}; known: {', '.join(CATALOGUES)}")
    return catalogue


# ---------------------------------------------------------------- public readers

def read_clusters(path: str | Path, catalogue: str = "hunt2024",
                  colmap: str | Path | None = None) -> pd.DataFrame:
    """Cluster table with canonical columns plus ``cluster_key``; names must be unique and
    every value possible (:func:`ingest.pipeline.s1_inputs.sanity.check_clusters`)."""
    frame, _, resolved = _read(path, "clusters", _check_catalogue(catalogue), colmap)
    frame = sanity.wrap_signed_ra(_add_cluster_names(frame))
    sanity.check_clusters(frame, Path(path), resolved)
    if frame["cluster"].isna().any():
        row = int(np.flatnonzero(frame["cluster"].isna())[0])
        raise InputError(path, f"cluster name missing (row {row + 1})", column=resolved["cluster"])
    duplicated = frame["cluster_key"].duplicated(keep=False)
    if duplicated.any():
        names = sorted(set(frame.loc[duplicated, "cluster"]))[:5]
        raise InputError(path, f"{int(duplicated.sum())} rows share a cluster name "
                               f"(after normalisation), e.g. {names}", column=resolved["cluster"])
    return frame.reset_index(drop=True)


def read_members(path: str | Path, catalogue: str = "hunt2024",
                 colmap: str | Path | None = None, prob_min: float | None = None,
                 gaia_release: str | None = None,
                 details: list[dict[str, Any]] | None = None
                 ) -> tuple[pd.DataFrame, dict[str, int]]:
    """Member stars with canonical columns plus ``cluster_key``, ``member_key`` and counted
    rejections.

    Only cluster, ra and dec are required: a member without a Gaia source_id keeps its
    own ``member_id`` (or a position key) as ``member_key`` and is matched by position.
    Rows without a position or cluster name are dropped; a Gaia source_id (then a member
    key) listed more than once keeps its highest-probability row (a star belongs to one
    cluster; ties keep the first row); then ``prob > prob_min`` is kept (SPEC 3.1).
    Impossible positions and probabilities drop the row, infinite values are nulled
    (:func:`ingest.pipeline.s1_inputs.sanity.check_members`; described in ``details`` when given).
    Unmapped ``prob`` is 1; ``gaia_release`` defaults to the catalogue's.
    """
    catalogue = _check_catalogue(catalogue)
    frame, _, resolved = _read(path, "members", catalogue, colmap)
    frame = _add_cluster_names(frame)
    if "prob" not in resolved:
        frame["prob"] = 1.0
    rejections: dict[str, int] = {}
    frame = _drop(frame, ~_positions_ok(frame), "members_no_position", rejections)
    frame = sanity.check_members(frame, Path(path), resolved, rejections,
                                 [] if details is None else details)
    frame = _drop(frame, frame["cluster"].isna().to_numpy(), "members_no_cluster", rejections)
    frame = _drop(frame, _lower_ranked_duplicates(frame, "source_id"),
                  "members_duplicate_source_id", rejections)
    frame["member_key"] = _member_keys(frame, gaia_release or CATALOGUE_GAIA_RELEASE[catalogue])
    frame = _drop(frame, _lower_ranked_duplicates(frame, "member_key"),
                  "members_duplicate_member_id", rejections)
    if prob_min is not None:
        frame = _drop(frame, ~(frame["prob"].to_numpy(float) > prob_min),
                      "members_below_prob_min", rejections)
    return frame.reset_index(drop=True), rejections


LAMOST_ID_COLUMNS = frozenset({"obsid", "designation", "combined_obsid", "combined_designation"})


def _detect_survey(source: _Source) -> str | None:
    """A LAMOST default recognised by columns no other catalogue has, else None.

    MRS has rv_br0; LRS has snrg together with LAMOST's obsid/designation.
    Generic names (rv, rv_err) prove nothing: Gaia, APOGEE, ... use them too.
    """
    names = {n.lower() for n in source.names}
    if "rv_br0" in names:
        return "lamost-mrs"
    if {"snrg", "combined_snrg"} & names and LAMOST_ID_COLUMNS & names:
        return "lamost-lrs"
    return None


def _survey_map(source: _Source, path: Path, survey: str | Path | None,
                colmap: str | Path | None) -> tuple[str | None, str | Path | None]:
    """(default survey map, user map) from the ``survey`` argument."""
    if survey is None:
        detected = _detect_survey(source)
        if detected is None and colmap is None:
            raise InputError(path, "cannot tell the survey: no LAMOST MRS (rv_br0) or LRS (snrg "
                                   "with obsid/designation) columns; pass lamost-mrs, lamost-lrs "
                                   "or a column map naming its survey (survey = \"...\")")
        return detected, colmap
    if str(survey) in SURVEYS:
        return str(survey), colmap
    if str(survey).endswith(".toml"):
        if colmap is not None:
            raise ValueError("give the column map either as survey or as colmap, not both")
        return None, survey
    raise ValueError(f"unknown survey {survey!r}; known: {', '.join(SURVEYS)} or a MAP.toml")


def _has_any(names: list[str], columns: Mapping[str, tuple[str, ...]]) -> bool:
    return any(_find_column(names, c) for candidates in columns.values() for c in candidates)


def _check_parameter_columns(names: list[str], cmap: ColumnMap, path: Path) -> None:
    """Stop when the file lacks every column of the chosen parameter source but has another's
    (e.g. an MRS file with LASP columns only): the parameters would silently all be NaN."""
    if cmap.parameter_source is None:
        return
    wanted = cmap.parameter_sources[cmap.parameter_source]
    others = [name for name, columns in cmap.parameter_sources.items()
              if name != cmap.parameter_source and _has_any(names, columns)]
    if others and not _has_any(names, wanted):
        first = next(iter(wanted.values()))[0]
        raise InputError(path, f"has no {cmap.parameter_source} stellar-parameter columns "
                               f"({', '.join(c[0] for c in wanted.values())}) but has "
                               f"{', '.join(others)} ones: set [spectra] parameter_source = "
                               f"{others[0]!r} in a column map (map {cmap.source})", column=first)


def check_map_usage(colmap: str | Path | None, surveys: Iterable[str | Path | None]) -> None:
    """Stop before reading when a column map holds a table that this run would not apply.

    A ``--survey MAP.toml`` is read for spectra only, so its [clusters]/[members]
    tables would be silently ignored unless the same file is also the ``--map``;
    and the ``--map``'s [spectra] table is not used for files read with a survey map.
    """
    map_path = Path(colmap).resolve() if colmap is not None else None
    for survey in sorted({str(s) for s in surveys if s is not None and str(s).endswith(".toml")}):
        if map_path is not None and Path(survey).resolve() == map_path:
            continue
        ignored = [f"[{k}]" for k in ("clusters", "members") if k in _read_toml(Path(survey))]
        if ignored:
            raise InputError(survey, f"{' and '.join(ignored)} of a --survey map would be ignored "
                                     "(a --survey map is read for spectra only): pass this file "
                                     "with --map, which applies [clusters], [members] and "
                                     "[spectra]", column=ignored[0].strip("[]"))
        if map_path is not None and "spectra" in _read_toml(map_path):
            raise InputError(colmap, f"[spectra] of --map would be ignored for spectra read with "
                                     f"--survey {survey}: put the spectra columns in one map",
                             column="spectra")


def _constant_category(value: str, n: int) -> pd.Categorical:
    """One value for every row, one byte each (10M rows stay cheap)."""
    return pd.Categorical.from_codes(np.zeros(n, np.int8), categories=[value])


# Spectrum fields a row selection (projection.py) may look at: identity and position.
SELECTION_FIELDS = ("obsid", "source_id", "ra", "dec", "epoch")

RowSelector = Callable[[pd.DataFrame], np.ndarray]


def read_spectra(path: str | Path, survey: str | Path | None = None,
                 colmap: str | Path | None = None,
                 details: list[dict[str, Any]] | None = None,
                 select: RowSelector | None = None) -> tuple[pd.DataFrame, dict[str, int]]:
    """Spectra (one row each) with canonical columns, ``survey``/``param_source`` and rejections.

    The survey is the one declared by the column map (``survey = "..."``) or the
    LAMOST default recognised from its distinctive columns; a map without one
    gives ``survey = 'undeclared'``, so no survey zero-point offset can apply to
    it.  ``param_source`` names the stellar-parameter columns used (e.g. 'cnn').
    Obsids must be unique.  Gaia ids <= 0 and LAMOST's -9999 sentinel become
    missing; rows without a position, or an impossible one, are dropped and counted.
    Of the rows kept, impossible S/N or values drop the row or are nulled, counted
    (:func:`ingest.pipeline.s1_inputs.sanity.check_spectra`; described in ``details`` when given).  Values
    are otherwise kept as read: per-value quality control is
    :func:`ingest.pipeline.s3_quality.spectrum_qc`.

    ``select`` (projection.py) receives the :data:`SELECTION_FIELDS` of the rows with
    a possible position and returns a boolean mask of the rows to keep; the other rows
    (which can match no member, so none of their values is ever used) are type-checked
    like every row but not returned.  The frame's index is always the row's position
    among the rows with a possible position; ``frame.attrs`` holds their count
    (``rows_read``), the ``survey`` and the ``param_source``.
    """
    path = Path(path)
    source = _open_source(path)
    default, user = _survey_map(source, path, survey, colmap)
    cmap = column_map("spectra", default, user)
    _check_parameter_columns(source.names, cmap, path)
    fields = None if select is None else SELECTION_FIELDS
    frame, _, resolved = _read(path, "spectra", default, user, LAMOST_MISSING, source, cmap,
                               fields)
    frame = _spectrum_identity(frame, cmap)
    obsid = frame["obsid"]
    duplicated = obsid.notna() & obsid.duplicated(keep=False)
    if duplicated.any():
        example = obsid[duplicated].iloc[0]
        raise InputError(path, f"{int(duplicated.sum())} rows share an obsid, e.g. {example}",
                         column=resolved["obsid"])
    rejections: dict[str, int] = {}
    frame = _drop(frame, ~_positions_ok(frame), "spectra_no_position", rejections)
    details = [] if details is None else details
    frame = sanity.check_spectrum_positions(frame, path, resolved, rejections, details)
    rows_read = len(frame)
    if select is not None:
        keep = np.flatnonzero(np.asarray(select(frame.reset_index(drop=True)), bool))
        rows = frame.index.to_numpy()[keep]
        frame, _, _ = _read(path, "spectra", default, user, LAMOST_MISSING, source, cmap,
                            rows=rows)
        frame = _spectrum_identity(frame, cmap).set_axis(rows)
    else:
        keep = np.arange(len(frame))
    position = pd.Series(keep, index=frame.index)
    # Checked while labelled by file row, so that messages name the row in the file.
    frame = sanity.check_spectra(frame, path, resolved, SPECTRUM_PARAMETERS, rejections,
                                 details)
    frame = frame.set_axis(position[frame.index].to_numpy())
    frame.attrs.update(rows_read=rows_read, survey=cmap.survey or UNDECLARED_SURVEY,
                       param_source=cmap.parameter_source or NO_PARAMETER_SOURCE)
    return frame, rejections


def _spectrum_identity(frame: pd.DataFrame, cmap: ColumnMap) -> pd.DataFrame:
    """survey and param_source columns; Gaia ids <= 0 (LAMOST's 'none') missing."""
    frame["survey"] = cmap.survey or UNDECLARED_SURVEY
    frame["param_source"] = _constant_category(cmap.parameter_source or NO_PARAMETER_SOURCE,
                                               len(frame))
    frame["source_id"] = frame["source_id"].mask(frame["source_id"].fillna(0) <= 0)
    return frame


def link_members_to_clusters(members: pd.DataFrame, clusters: pd.DataFrame,
                             members_path: str | Path, clusters_path: str | Path) -> pd.DataFrame:
    """Members with ``cluster``/``cluster_key`` set to the cluster table's primary names.

    A member cluster name may be the primary name or one of the cluster's aliases
    (``all_names``, e.g. 'Pleiades' for Melotte 22).  Any member cluster found in
    neither is an InputError: those members could never be published.
    """
    primary = dict(zip(clusters["cluster_key"], clusters["cluster_key"]))
    for key, aliases in zip(clusters["cluster_key"], clusters["all_names"]):
        if isinstance(aliases, str):
            for alias in aliases.split(","):
                primary.setdefault(normalise_name(alias), key)
    resolved = members["cluster_key"].map(primary)
    missing = resolved.isna()
    if missing.any():
        names = sorted(set(members.loc[missing, "cluster"]))
        raise InputError(members_path, f"{len(names)} member cluster(s) are not in the cluster "
                                       f"file {clusters_path}: {', '.join(names[:10])}"
                                       f"{' ...' if len(names) > 10 else ''}", column="cluster")
    display = dict(zip(clusters["cluster_key"], clusters["cluster"]))
    return members.assign(cluster_key=resolved, cluster=resolved.map(display))
