"""Figures of an ingest output directory: read its FITS tables, render in a process pool.

The plotting functions (:mod:`ingest.pipeline.s8_outputs.figures`) get their data
handed in; this module reads cluster.fits, member.fits and the product tables of
DIR, chooses the clusters and spreads the per-cluster figures over processes.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ingest.pipeline.s8_outputs import figures

_MEMBER_COLUMNS = ("cluster_name", "source_id", "gmag", "bp_rp", "rv", "rv_err", "teff",
                   "logg", "fe_h", "flag", "rv_var_flag")


def read_fits_table(path: Path, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """A FITS table of an ingest output as a DataFrame with stripped text columns."""
    from astropy.table import Table

    from ingest.core.errors import InputError

    if not path.is_file():
        raise InputError(path, "not found: is this an ingest output directory?")
    data = Table.read(path, format="fits", memmap=True, character_as_bytes=False)
    if columns is not None:
        missing = [c for c in columns if c not in data.colnames]
        if missing:
            raise InputError(path, f"missing columns {missing}")
        data = data[list(columns)]
    frame = data.to_pandas()
    for name in frame.columns:
        if frame[name].dtype == object or pd.api.types.is_string_dtype(frame[name]):
            frame[name] = frame[name].astype(str).str.strip()
    return frame


def _render_one(task: tuple[pd.Series, pd.DataFrame, Path]) -> list[Path]:
    return figures.render_cluster_figures(*task)


def select_clusters(clusters: pd.DataFrame, names: list[str] | None) -> pd.DataFrame:
    """The named clusters (matched like literature names), or all; unknown names are an error."""
    from ingest.core.errors import InputError
    from ingest.pipeline.s1_inputs.readers import normalise_name

    if not names:
        return clusters
    keys = clusters["cluster_name"].map(normalise_name)
    unknown = [n for n in names if normalise_name(n) not in set(keys)]
    if unknown:
        raise InputError("--cluster", f"no such cluster(s) in cluster.fits: {unknown}")
    return clusters[keys.isin({normalise_name(n) for n in names})]


def render_directory(directory: Path, names: list[str] | None = None,
                     jobs: int = 2) -> list[Path]:
    """Figures of an ingest output DIR into DIR/figures (catalogue ones unless names given)."""
    from multiprocessing import get_context

    directory = Path(directory)
    out = directory / "figures"
    clusters = read_fits_table(directory / "cluster.fits")
    members = read_fits_table(directory / "member.fits", _MEMBER_COLUMNS)
    chosen = select_clusters(clusters, names)
    groups = dict(tuple(members.groupby("cluster_name")))
    empty = members.iloc[:0]
    tasks = [(row, groups.get(row.cluster_name, empty), out) for _, row in chosen.iterrows()]
    if jobs > 1 and len(tasks) > 1:
        with get_context("fork").Pool(jobs) as pool:
            paths = [p for part in pool.imap(_render_one, tasks, chunksize=4) for p in part]
    else:
        paths = [p for task in tasks for p in _render_one(task)]
    if not names:
        paths += render_catalogue_directory(directory)
    return paths


def render_catalogue_directory(directory: Path) -> list[Path]:
    """Only the catalogue figures of an ingest output DIR (a few seconds), into DIR/figures."""
    directory = Path(directory)
    pairs_file = directory / "binary_candidate.fits"
    return figures.render_catalogue_figures(read_fits_table(directory / "cluster.fits"),
                                    read_fits_table(directory / "gradient.fits"),
                                    read_fits_table(directory / "lit_comparison.fits"),
                                    directory / "figures",
                                    read_fits_table(pairs_file) if pairs_file.is_file() else None)
