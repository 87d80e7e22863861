"""Keep only the spectra that can match a member, so memory follows the matches, not the file.

A 10M-row LAMOST file holds ~1M spectra of cluster members; holding every row's 48
canonical columns took 7 GB.  The reader (``readers.read_spectra(select=...)``)
first converts the identity and position columns of every row, asks
:func:`member_selector` which rows to keep, then converts the other columns and keeps
those rows only.  Every value is still converted and checked, so a bad file fails
the same way.

A spectrum is kept when its Gaia source_id is a member's, or when it lies within the
match radius plus the largest proper-motion displacement of any member (over the
spectrum's own epoch difference) of some member.  That is a superset of what
``crossmatch.match`` can pair (ids, all-pairs positions, the id fallback and the
two-releases check all look within the radius of a member after propagation), so
the crossmatch finds the same pairs, and every spectrum keeps its row label.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ingest.pipeline.s2_crossmatch import _chord, _near_items, unit_vectors


def _member_ids(members: pd.DataFrame) -> np.ndarray:
    ids = members["source_id"]
    return np.unique(ids[ids.notna()].to_numpy(np.int64))


def _largest_motion_mas_yr(members: pd.DataFrame) -> float:
    """Largest total proper motion of a member (NaN counts as none, as in the crossmatch)."""
    if "pmra" not in members or "pmdec" not in members:
        return 0.0
    total = np.hypot(np.nan_to_num(members["pmra"].to_numpy(float)),
                     np.nan_to_num(members["pmdec"].to_numpy(float)))
    return float(np.max(total, initial=0.0))


def near_members(members: pd.DataFrame, ra: np.ndarray, dec: np.ndarray,
                 radius_arcsec: np.ndarray) -> np.ndarray:
    """True where a member lies within ``radius_arcsec`` (per spectrum) of (ra, dec)."""
    out = np.zeros(len(ra), bool)
    if len(ra) == 0 or len(members) == 0:
        return out
    items = unit_vectors(members["ra"].to_numpy(float), members["dec"].to_numpy(float))
    points = unit_vectors(ra, dec)
    chords = 2.0 * np.sin(np.radians(radius_arcsec / 3600.0) / 2.0)
    near = _near_items(items, points, _chord(float(np.max(radius_arcsec))))
    if near.size:
        distance, _ = cKDTree(items).query(points[near], k=1, workers=-1)
        out[near] = distance <= chords[near] * (1 + 1e-9)
    return out


def member_selector(members: pd.DataFrame, radius_arcsec: float, gaia_epoch: float):
    """A ``readers.RowSelector``: spectra that share a member's Gaia id or lie near a member."""
    ids = _member_ids(members)
    motion = _largest_motion_mas_yr(members)

    def select(spectra: pd.DataFrame) -> np.ndarray:
        source_id = spectra["source_id"]
        by_id = np.zeros(len(spectra), bool)
        present = source_id.notna().to_numpy()
        by_id[present] = np.isin(source_id[present].to_numpy(np.int64), ids)
        epoch = spectra["epoch"].to_numpy(float)
        years = np.where(np.isfinite(epoch), np.abs(epoch - gaia_epoch), 0.0)
        reach = radius_arcsec + motion * years / 1000.0 + 1e-3   # 1 mas for rounding
        return by_id | near_members(members, spectra["ra"].to_numpy(float),
                                    spectra["dec"].to_numpy(float), reach)

    return select


def concat_spectra(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One frame of the kept spectra of all files, labelled by their position among all
    rows read (as if every row had been kept and the files concatenated); ``attrs``
    rows_read (total) and files: (survey, param_source, rows read) per file."""
    offset, labelled, files = 0, [], []
    for frame in frames:
        read = int(frame.attrs.get("rows_read", len(frame)))
        labelled.append(frame.set_axis(frame.index.to_numpy() + offset))
        files.append((str(frame.attrs.get("survey")), str(frame.attrs.get("param_source")),
                      read))
        offset += read
    out = pd.concat(labelled)
    out.attrs = {"rows_read": offset, "files": files}
    return out


def survey_rows(spectra: pd.DataFrame) -> pd.DataFrame:
    """survey and param_source of every spectrum read, kept or not (two bytes a row), for
    ``manifest.survey_records``; ``spectra`` itself when it holds every row."""
    files = spectra.attrs.get("files")
    if not files:
        return spectra
    counts = np.array([n for _, _, n in files], np.int64)

    def column(values: list[str]) -> pd.Categorical:
        categories = sorted(set(values))
        codes = np.repeat([categories.index(v) for v in values], counts).astype(np.int16)
        return pd.Categorical.from_codes(codes, categories=categories)

    return pd.DataFrame({"survey": column([s for s, _, _ in files]),
                         "param_source": column([p for _, p, _ in files])})
