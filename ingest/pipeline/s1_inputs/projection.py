"""Keep only the spectra that can match a member, so memory follows the matches, not the file.

A 10M-row LAMOST file holds ~1M spectra of cluster members; holding every row's 48
canonical columns took 7 GB.  The reader (``readers.read_spectra(select=...)``)
first converts the identity and position columns of every row, asks
:func:`member_selector` which rows to keep, then converts the other columns of those
rows only (coerce.py reads every row of a column whose checks need it).  Every value
is still checked, so a bad file fails the same way.

A spectrum is kept when its Gaia source_id is a member's, or when it lies within the
match radius plus the largest proper-motion displacement of any member (over the
spectrum's own epoch difference) of some member.  That is a superset of what
``crossmatch.match`` can pair (ids, all-pairs positions, the id fallback and the
two-releases check all look within the radius of a member after propagation), so
the crossmatch finds the same pairs, and every spectrum keeps its row label.  The
members are looked up in a k-d tree, after a map of sky cells has set aside the
spectra far from every member.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ingest.pipeline.s2_crossmatch import unit_vectors

# Side (degrees) of the (ra, dec) cells of the sky map that sets aside, without any
# trigonometry, the spectra far from every member: 26 MB of cells, and on the full
# preset 41% of the spectra left for the k-d tree.
SKY_CELL_DEG = 0.05
# Margins that keep the map a superset of what the tree can find: relative on the
# reach, absolute (degrees, 3.6 mas) on every bound, far above rounding errors.
SKY_MARGIN = 1.01
SKY_PAD_DEG = 1e-6


def _member_ids(members: pd.DataFrame) -> np.ndarray:
    """Sorted distinct Gaia ids of the members (pandas' hashing: np.unique takes seconds)."""
    ids = members["source_id"]
    return np.sort(pd.unique(ids[ids.notna()].to_numpy(np.int64)))


def _largest_motion_mas_yr(members: pd.DataFrame) -> float:
    """Largest total proper motion of a member (NaN counts as none, as in the crossmatch)."""
    if "pmra" not in members or "pmdec" not in members:
        return 0.0
    total = np.hypot(np.nan_to_num(members["pmra"].to_numpy(float)),
                     np.nan_to_num(members["pmdec"].to_numpy(float)))
    return float(np.max(total, initial=0.0))


class _SkyMap:
    """Which (ra, dec) cells of side ~:data:`SKY_CELL_DEG` hold a point within ``reach_deg``
    of a member: a spectrum in any other cell has no member that near."""

    def __init__(self, ra: np.ndarray, dec: np.ndarray, reach_deg: float):
        reach = reach_deg * SKY_MARGIN + SKY_PAD_DEG
        side = max(SKY_CELL_DEG, 2.0 * reach)       # a member's reach spans <= 2 rows
        self.rows, self.cols = int(np.ceil(180.0 / side)), int(np.ceil(360.0 / side))
        self.height, self.width = 180.0 / self.rows, 360.0 / self.cols
        self.cells = np.zeros((self.rows, self.cols), bool)
        low, high = self._row(dec - reach), self._row(dec + reach)
        top = np.abs(dec) + reach
        with np.errstate(invalid="ignore", divide="ignore"):
            # Largest ra offset of a point within ``reach`` of the member.
            half = np.degrees(np.arcsin(np.minimum(1.0, np.sin(np.radians(reach)) / np.cos(
                np.radians(np.minimum(top, 90.0)))))) + SKY_PAD_DEG
        first = np.floor((ra - half) / self.width).astype(np.int64)
        span = np.floor((ra + half) / self.width).astype(np.int64) - first
        ring = (top >= 89.0) | (span > 2)           # near a pole: the whole row
        for row in range(int(np.max(high - low, initial=0)) + 1):
            in_row = row <= high - low
            self.cells[low[in_row & ring] + row] = True
            for col in range(3):
                mark = in_row & ~ring & (col <= span)
                self.cells[low[mark] + row, (first[mark] + col) % self.cols] = True

    def _row(self, dec: np.ndarray) -> np.ndarray:
        return np.clip(np.floor((dec + 90.0) / self.height).astype(np.int64), 0, self.rows - 1)

    def candidates(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        """Positions of the points in a marked cell."""
        cols = np.floor(ra / self.width).astype(np.int64) % self.cols
        return np.flatnonzero(self.cells[self._row(dec), cols])


class _Members:
    """Member positions as unit vectors in a k-d tree, built once and asked once per
    spectrum file, with the sky map of the last reach asked for."""

    def __init__(self, members: pd.DataFrame):
        self.ra = members["ra"].to_numpy(float)
        self.dec = members["dec"].to_numpy(float)
        self.tree = cKDTree(unit_vectors(self.ra, self.dec)) if len(members) else None
        self.map: tuple[float, _SkyMap] | None = None     # the last reach asked for

    def near(self, ra: np.ndarray, dec: np.ndarray, radius_arcsec: np.ndarray,
             skip: np.ndarray | None = None) -> np.ndarray:
        """True where a member lies within ``radius_arcsec`` (per point) of (ra, dec);
        False where ``skip`` (points kept anyway, e.g. by Gaia id: not looked up)."""
        out = np.zeros(len(ra), bool)
        if len(ra) == 0 or self.tree is None:
            return out
        largest = float(np.max(radius_arcsec))
        if self.map is None or self.map[0] != largest:
            self.map = largest, _SkyMap(self.ra, self.dec, largest / 3600.0)
        near = self.map[1].candidates(ra, dec)
        if skip is not None:
            near = near[~skip[near]]
        if near.size == 0:
            return out
        chords = 2.0 * np.sin(np.radians(radius_arcsec[near] / 3600.0) / 2.0) * (1 + 1e-9)
        # The bound only prunes the search (a nearer member is found all the same).
        distance, _ = self.tree.query(unit_vectors(ra[near], dec[near]), k=1, workers=-1,
                                      distance_upper_bound=float(np.max(chords)) * 1.001)
        out[near] = distance <= chords
        return out


def near_members(members: pd.DataFrame, ra: np.ndarray, dec: np.ndarray,
                 radius_arcsec: np.ndarray) -> np.ndarray:
    """True where a member lies within ``radius_arcsec`` (per spectrum) of (ra, dec)."""
    return _Members(members).near(ra, dec, radius_arcsec)


def member_selector(members: pd.DataFrame, radius_arcsec: float, gaia_epoch: float):
    """A ``readers.RowSelector``: spectra that share a member's Gaia id or lie near a member."""
    ids = _member_ids(members)
    motion = _largest_motion_mas_yr(members)
    sky = _Members(members)

    def select(spectra: pd.DataFrame) -> np.ndarray:
        source_id = spectra["source_id"]
        by_id = np.zeros(len(spectra), bool)
        present = source_id.notna().to_numpy()
        by_id[present] = pd.Series(source_id[present].to_numpy(np.int64)).isin(ids).to_numpy()
        epoch = spectra["epoch"].to_numpy(float)
        years = np.where(np.isfinite(epoch), np.abs(epoch - gaia_epoch), 0.0)
        reach = radius_arcsec + motion * years / 1000.0 + 1e-3   # 1 mas for rounding
        return by_id | sky.near(spectra["ra"].to_numpy(float), spectra["dec"].to_numpy(float),
                                reach, skip=by_id)

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
