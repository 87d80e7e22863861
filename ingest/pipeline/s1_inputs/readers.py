"""Input readers: a catalogue file -> a validated pandas DataFrame with canonical columns.

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

import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ingest.core.errors import InputError
from ingest.pipeline.s1_inputs import sanity
from ingest.pipeline.s1_inputs.coerce import LAMOST_MISSING, canonical_frame
from ingest.pipeline.s1_inputs.colmap import (
    CATALOGUE_GAIA_RELEASE, CATALOGUES, NO_PARAMETER_SOURCE, SPECTRUM_PARAMETERS,
    UNDECLARED_SURVEY, ColumnMap, check_parameter_columns, column_map, resolve, survey_maps)
from ingest.pipeline.s1_inputs.formats import Source, open_source


# ---------------------------------------------------------------- names

def normalise_name(name: str) -> str:
    """Matching key of a cluster name: 'Melotte_22', 'melotte 22', 'Melotte-22' -> 'melotte22'."""
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


def display_name(name: str) -> str:
    """Cluster name as shown to users: underscores become spaces, padding is removed."""
    return " ".join(str(name).replace("_", " ").split())


def _read(path: str | Path, kind: str, default: str | None, colmap: str | Path | None,
          sentinel: float | None = None, source: Source | None = None,
          cmap: ColumnMap | None = None, fields: tuple[str, ...] | None = None,
          rows: np.ndarray | None = None, known: dict[str, Any] | None = None
          ) -> tuple[pd.DataFrame, ColumnMap, dict[str, str]]:
    path = Path(path)
    source = open_source(path) if source is None else source
    cmap = column_map(kind, default, colmap) if cmap is None else cmap
    resolved = resolve(source.names, cmap, kind, path)
    return (canonical_frame(source, resolved, kind, path, sentinel, fields, rows, known),
            cmap, resolved)


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
    return frame.loc[~bad] if rejections[key] else frame


def _positions_ok(frame: pd.DataFrame) -> np.ndarray:
    return (np.isfinite(frame["ra"].to_numpy(float)) & np.isfinite(frame["dec"].to_numpy(float)))


def _lower_ranked_duplicates(frame: pd.DataFrame, column: str) -> np.ndarray:
    """True for rows whose ``column`` value also appears with a higher prob (or earlier, if
    equal)."""
    # A stable sort keeps equal probabilities in row order (as lexsort with the row, faster).
    order = np.argsort(-frame["prob"].fillna(-np.inf).to_numpy(float), kind="stable")
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
    # Every member with a Gaia id now has its own id, hence its own designation as key:
    # only members without one can share a key.
    frame = _drop(frame, np.zeros(len(frame), bool) if frame["source_id"].notna().all()
                  else _lower_ranked_duplicates(frame, "member_key"),
                  "members_duplicate_member_id", rejections)
    if prob_min is not None:
        frame = _drop(frame, ~(frame["prob"].to_numpy(float) > prob_min),
                      "members_below_prob_min", rejections)
    return frame.reset_index(drop=True), rejections


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
    source = open_source(path)
    default, user = survey_maps(source.names, path, survey, colmap)
    cmap = column_map("spectra", default, user)
    check_parameter_columns(source.names, cmap, path)
    fields = None if select is None else SELECTION_FIELDS
    frame, _, resolved = _read(path, "spectra", default, user, LAMOST_MISSING, source, cmap,
                               fields)
    frame = _spectrum_identity(frame, cmap)
    _check_unique_obsids(frame["obsid"], path, resolved)
    rejections: dict[str, int] = {}
    frame = _drop(frame, ~_positions_ok(frame), "spectra_no_position", rejections)
    details = [] if details is None else details
    frame = sanity.check_spectrum_positions(frame, path, resolved, rejections, details)
    rows_read = len(frame)
    if select is not None:
        keep = np.flatnonzero(np.asarray(select(frame.reset_index(drop=True)), bool))
        rows = frame.index.to_numpy()[keep]
        # The selection fields were converted and checked for every row: kept, not re-read.
        known = {f: (frame[f].iloc[keep].reset_index(drop=True)
                     if isinstance(frame[f].dtype, pd.api.extensions.ExtensionDtype)
                     else frame[f].to_numpy()[keep]) for f in SELECTION_FIELDS}
        frame, _, _ = _read(path, "spectra", default, user, LAMOST_MISSING, source, cmap,
                            rows=rows, known=known)
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


def _check_unique_obsids(obsid: pd.Series, path: Path, resolved: dict[str, str]) -> None:
    """Stop when two rows share an obsid.  Sorting the ids tells whether any repeats
    (10M rows: 0.3 s against 1.4 s for hashing); only then are the rows counted."""
    values = obsid.dropna().to_numpy(np.int64)          # nullable Int64 (coerce.py)
    if np.all(values[1:] > values[:-1]) or np.all(np.diff(np.sort(values)) != 0):
        return                      # the first test: ids already ascending, as LAMOST's
    duplicated = obsid.notna() & obsid.duplicated(keep=False)
    if duplicated.any():
        example = obsid[duplicated].iloc[0]
        raise InputError(path, f"{int(duplicated.sum())} rows share an obsid, e.g. {example}",
                         column=resolved["obsid"])


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
    resolved = _map_distinct(members["cluster_key"], primary)
    missing = resolved.isna()
    if missing.any():
        names = sorted(set(members.loc[missing, "cluster"]))
        raise InputError(members_path, f"{len(names)} member cluster(s) are not in the cluster "
                                       f"file {clusters_path}: {', '.join(names[:10])}"
                                       f"{' ...' if len(names) > 10 else ''}", column="cluster")
    display = dict(zip(clusters["cluster_key"], clusters["cluster"]))
    return members.assign(cluster_key=resolved, cluster=_map_distinct(resolved, display))


def _map_distinct(values: pd.Series, mapping: dict[str, str]) -> pd.Series:
    """``values.map(mapping)``, looked up once per distinct value (1.3M members, 7000
    clusters)."""
    codes, distinct = pd.factorize(values)
    mapped = pd.Series(distinct).map(mapping)
    return pd.Series(mapped.array.take(codes, allow_fill=True), index=values.index)
