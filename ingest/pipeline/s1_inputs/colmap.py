"""Column maps: which file column gives each canonical field, and what a map argument means.

A column map (TOML; the built-in ones in ``ingest/colmaps``, format in
docs/inputs.md) maps a catalogue's columns to the canonical field names the
pipeline uses.  This module is the one place that loads maps, knows the
built-in catalogue and survey maps, and interprets a map argument ("a name is
a built-in map, a ``.toml`` path is a user map").
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field as dataclass_field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from ingest.core.errors import InputError
from ingest.core.paths import COLMAP_DIR
from ingest.core.vocabulary import XFE

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

LAMOST_ID_COLUMNS = frozenset({"obsid", "designation", "combined_obsid", "combined_designation"})


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


def find_column(names: list[str], candidate: str) -> str | None:
    if candidate in names:
        return candidate
    folded = [n for n in names if n.lower() == candidate.lower()]
    return folded[0] if len(folded) == 1 else None


def resolve(names: list[str], cmap: ColumnMap, kind: str, path: Path) -> dict[str, str]:
    """Canonical field -> the file column that provides it (first alternative present)."""
    resolved = {}
    for field, candidates in cmap.entries.items():
        found = next((c for c in map(lambda n: find_column(names, n), candidates) if c), None)
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


def detect_survey(names: list[str]) -> str | None:
    """A LAMOST default recognised by columns no other catalogue has, else None.

    MRS has rv_br0; LRS has snrg together with LAMOST's obsid/designation.
    Generic names (rv, rv_err) prove nothing: Gaia, APOGEE, ... use them too.
    """
    lower = {n.lower() for n in names}
    if "rv_br0" in lower:
        return "lamost-mrs"
    if {"snrg", "combined_snrg"} & lower and LAMOST_ID_COLUMNS & lower:
        return "lamost-lrs"
    return None


def survey_maps(names: list[str], path: Path, survey: str | Path | None,
                colmap: str | Path | None) -> tuple[str | None, str | Path | None]:
    """(default survey map, user map) from the ``survey`` argument."""
    if survey is None:
        detected = detect_survey(names)
        if detected is None and colmap is None:
            raise InputError(path, "cannot tell the survey: no LAMOST MRS (rv_br0) or LRS (snrg "
                                   "with obsid/designation) columns; pass lamost-mrs, lamost-lrs "
                                   "or a column map naming its survey (survey = \"...\")")
        return detected, colmap
    if str(survey) in SURVEYS:
        return str(survey), colmap
    if is_map_file(survey):
        if colmap is not None:
            raise ValueError("give the column map either as survey or as colmap, not both")
        return None, survey
    raise ValueError(f"unknown survey {survey!r}; known: {', '.join(SURVEYS)} or a MAP.toml")


def _has_any(names: list[str], columns: Mapping[str, tuple[str, ...]]) -> bool:
    return any(find_column(names, c) for candidates in columns.values() for c in candidates)


def check_parameter_columns(names: list[str], cmap: ColumnMap, path: Path) -> None:
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
    for survey in sorted({str(s) for s in surveys if is_map_file(s)}):
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



# ---------------------------------------------------------------- map arguments

def is_map_file(value: str | Path | None) -> bool:
    """Whether a survey or map argument names a column-map file (``*.toml``) rather than a
    built-in map: the one rule for every argument that may be either."""
    return value is not None and str(value).endswith(".toml")


def survey_argument(value: str) -> str | Path:
    """A built-in survey name or a column-map path; ValueError for anything else."""
    if value in SURVEYS:
        return value
    if is_map_file(value):
        return Path(value)
    raise ValueError(f"expected {' or '.join(SURVEYS)} or a MAP.toml, got {value!r}")


def map_for(colmap: Path | str | None, kind: str) -> Path | str | None:
    """The user column map if it has a [kind] table (a map may cover members only)."""
    if colmap is None:
        return None
    try:
        with open(colmap, "rb") as handle:
            return colmap if kind in tomllib.load(handle) else None
    except (OSError, tomllib.TOMLDecodeError):
        return colmap  # the reader reports the problem with the file's name


def spectrum_map(survey: str | Path | None, colmap: Path | str | None) -> Path | str | None:
    """The ``--map`` applied to spectra read with ``survey``: none when the survey argument is
    itself a map file (that map is the spectra's map)."""
    return None if is_map_file(survey) else map_for(colmap, "spectra")


def declared_release(colmap: Path | str | None) -> str | None:
    """The top-level ``gaia_release`` of a column map file ("DR2", "DR3", ...), if any."""
    if colmap is None:
        return None
    try:
        with open(colmap, "rb") as handle:
            release = tomllib.load(handle).get("gaia_release")
    except (OSError, tomllib.TOMLDecodeError):
        return None  # the reader reports the problem with the file's name
    return str(release) if release is not None else None


def member_gaia_release(catalogue: str, colmap: Path | str | None) -> str:
    """Gaia release of the member ids and positions: the map's ``gaia_release``, else the
    catalogue's (cg20: DR2, so its ids and epoch 2015.5 need no setting by hand)."""
    return declared_release(map_for(colmap, "members")) or CATALOGUE_GAIA_RELEASE[catalogue]


def spectrum_gaia_release(survey: str | Path | None, colmap: Path | str | None) -> str | None:
    """Declared Gaia release of the ids of spectra read with ``survey`` (None: not declared)."""
    if is_map_file(survey):
        return declared_release(survey)
    default = COLMAP_DIR / f"{survey}.toml" if str(survey) in SURVEYS else None
    return declared_release(map_for(colmap, "spectra")) or declared_release(default)
