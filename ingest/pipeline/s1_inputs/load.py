"""Input assembly: the files of a run -> clusters, members and spectra ready to match.

Reads the cluster, member and spectrum files through their column maps, keeps
the members above the probability cut and links them to the clusters, sets aside
spectra that can match no member, and knows the Gaia release (and so the epoch)
of the member positions.  Also lists and records every input file of the run.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from ingest.core import manifest
from ingest.core.config import Settings
from ingest.core.errors import InputError

SpectraArg = Path | str | tuple[Path | str, str | Path | None]
LiteratureArg = tuple[str, Path | str, Path | str | None]


def spectra_entries(spectra: Sequence[SpectraArg],
                     survey: str | Path | None) -> list[tuple[Path, str | Path | None]]:
    entries = []
    for item in spectra:
        path, item_survey = item if isinstance(item, tuple) else (item, survey)
        entries.append((Path(path), item_survey))
    return entries


def _surrogate_obsids(frame: pd.DataFrame, file_number: int) -> pd.DataFrame:
    """Negative obsids -(file_number * 10**10 + row + 1) for spectra whose catalogue has none
    (``row``: the frame's index, the row's position among the file's rows with a position)."""
    missing = frame["obsid"].isna().to_numpy()
    if missing.any():
        rows = frame.index.to_numpy()[missing]
        surrogate = -(file_number * 10**10 + rows + 1)
        frame.loc[missing, "obsid"] = surrogate
    return frame


def spectra_read(spectra: pd.DataFrame) -> int:
    """Spectra read from the files (with a position), kept or not (projection.py)."""
    return int(spectra.attrs.get("rows_read", len(spectra)))


def spectrum_gaia_releases(spectra: list[tuple[Path, Any]],
                           colmap: Path | str | None) -> dict[str, str | None]:
    """Declared Gaia release of each spectrum file's ids (None: not declared)."""
    from ingest.pipeline.s1_inputs.colmap import spectrum_gaia_release

    return {str(path): spectrum_gaia_release(survey, colmap) for path, survey in spectra}


def release_warnings(member_release: str, spectrum_releases: dict[str, str | None]) -> list[str]:
    """One line per spectrum file whose declared Gaia release differs from the members'."""
    return [f"{path}: Gaia {release} ids against {member_release} member ids; only ids kept "
            f"between releases match (see crossmatch.id_fallback)"
            for path, release in spectrum_releases.items()
            if release is not None and release != member_release]


def read_inputs(clusters: Path, members: Path, spectra: list[tuple[Path, Any]],
                catalogue: str, colmap: Path | None, settings: Settings,
                rejections: dict[str, int], details: list[dict[str, Any]] | None = None
                ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Clusters, members above the probability cut (linked to clusters) and all spectra.

    Members without a Gaia id are kept (matched by position); a member file left with
    no member at all is an InputError naming the cause and the rejection counts.
    Values rejected at read time are described in ``details`` (file, column, reason);
    spectra that can match no member are set aside while reading (ingest.pipeline.s1_inputs.projection)."""
    from ingest.pipeline.s1_inputs import projection, readers, sanity
    from ingest.pipeline.s1_inputs.colmap import map_for, member_gaia_release, spectrum_map

    details = [] if details is None else details
    cluster_table = readers.read_clusters(clusters, catalogue, map_for(colmap, "clusters"))
    prob_key, prob_min = settings.members.prob_cut(catalogue)
    member_table, rejected = readers.read_members(
        members, catalogue, map_for(colmap, "members"), prob_min,
        member_gaia_release(catalogue, colmap), details)
    add_counts(rejections, rejected)
    if member_table.empty:
        raise InputError(members, _no_member_cause(rejected, prob_key, prob_min)
                         + " (rejected: " + ", ".join(f"{k} {v}" for k, v in rejected.items()
                                                      if v)
                         + "); the run would publish 0 clusters")
    member_table = readers.link_members_to_clusters(member_table, cluster_table,
                                                    members, clusters)
    select = projection.member_selector(
        member_table, settings.crossmatch.radius_arcsec,
        settings.crossmatch.epoch(member_gaia_release(catalogue, colmap)))
    frames = []
    for number, (path, survey) in enumerate(spectra):
        frame, rejected = readers.read_spectra(path, survey, spectrum_map(survey, colmap),
                                               details, select)
        add_counts(rejections, rejected)
        frames.append(_surrogate_obsids(frame, number))
    frames = sanity.drop_duplicate_obsids(frames, [p for p, _ in spectra], rejections, details)
    return cluster_table, member_table, projection.concat_spectra(frames)


def _no_member_cause(rejected: dict[str, int], key: str, prob_min: float) -> str:
    """Why no member is left: the probability cut, or the row checks."""
    below = rejected.get("members_below_prob_min", 0)
    if below:       # the cut comes last: it removed every member the row checks kept
        return (f"all {below} members left after the row checks have a membership "
                f"probability at or below the cut {key} = {prob_min:g}: no member left")
    return "no member left after the row checks"


def add_counts(total: dict[str, int], counts: dict[str, int]) -> None:
    for key, value in counts.items():
        total[key] = total.get(key, 0) + int(value)


def input_records(clusters: Path, members: Path, spectra: list[tuple[Path, Any]],
                   literature: Sequence[LiteratureArg], colmap: Path | None,
                   config_path: Path | None) -> list[dict[str, Any]]:
    """Manifest records (path, size, checksum, role) of every input file."""
    records = [manifest.input_record("clusters", clusters),
               manifest.input_record("members", members)]
    records += [manifest.input_record("spectra", p, survey=s) for p, s in spectra]
    records += [manifest.input_record("literature", p, name=n, map=m) for n, p, m in literature]
    records += [manifest.input_record(role, p) for role, p in
                (("column_map", colmap), ("config", config_path)) if p is not None]
    return records


def input_paths(clusters: Path, members: Path, spectra: list[tuple[Path, Any]],
                literature: Sequence[LiteratureArg], colmap: Path | None,
                config_path: Path | None) -> list[Path]:
    """Every file the run reads (none of them may lie inside the output directory)."""
    from ingest.pipeline.s1_inputs.colmap import is_map_file

    paths = [clusters, members, *(p for p, _ in spectra)]
    paths += [Path(s) for _, s in spectra if is_map_file(s)]
    for _, path, colmap_ in literature:
        paths += [Path(path)] + ([Path(colmap_)] if colmap_ is not None else [])
    return paths + [p for p in (colmap, config_path) if p is not None]


def check_distinct_spectra(spectra: list[tuple[Path, Any]]) -> None:
    """Stop when one spectrum file is given twice (same path, a link to it, or a copy with
    the same checksum): every spectrum in it would count twice."""
    seen: dict[tuple[int, int] | str, Path] = {}
    by_size: dict[int, list[Path]] = {}
    for path, _ in spectra:
        if not path.is_file():
            continue                    # the reader names the missing file
        stat = path.stat()
        earlier = seen.get((stat.st_dev, stat.st_ino))
        if earlier is None:
            for other in by_size.get(stat.st_size, []):
                if manifest.sha256(other) == manifest.sha256(path):
                    earlier = other
                    break
        if earlier is not None:
            raise InputError(path, f"is the same spectrum file as {earlier} (given twice, by "
                                   "path or as an identical copy): every spectrum in it would "
                                   "count twice; give each file once")
        seen[(stat.st_dev, stat.st_ino)] = path
        by_size.setdefault(stat.st_size, []).append(path)
