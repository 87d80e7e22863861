"""Member x spectrum crossmatch (SPEC 3.2): by Gaia source_id, else by epoch-propagated position.

Spectra that carry a Gaia id match the member with that id and nothing else (an id
that is not a member's means a non-member star).  Spectra without an id match ALL
members within the radius (a LAMOST fibre cannot separate blended sources), after
moving each member from the Gaia epoch to the spectrum's epoch with its proper
motion.  Members without a Gaia id (positional-only member lists, e.g. APOGEE-based)
can only be matched by position, so every spectrum near them is a candidate, id or
not.  With ``id_fallback`` a spectrum whose id matches no member (other Gaia release,
a blended fibre labelled with the brighter neighbour's id) is also tried by position
against the members that no spectrum matched by id.  There the Gaia ids still tell
which spectra are one star, so only mutually nearest (id, member) pairs are kept.
Candidates come from a k-d tree on unit vectors queried with the radius
enlarged by the largest proper-motion displacement; fast movers get a tree of their
own so that one high-proper-motion star does not enlarge every query, and a grid-hash
prefilter keeps the (mostly field-star) spectra with no member nearby out of the tree
queries.  Exact separations are computed after propagation.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ingest.core.config import Crossmatch

MAS_PER_RAD = np.degrees(1.0) * 3.6e6
ARCSEC_PER_RAD = np.degrees(1.0) * 3600.0
SLOW_PAD_ARCSEC = 1.0      # members moving less than this between epochs share one tree
FIRST_PASS_K = 4           # neighbours fetched in the vectorised pass; rows that fill it are redone
MIN_CELL = 1e-5            # prefilter grid cell (chord units) floor: keeps integer keys in int64
PAIR_COLUMNS = ["spec_index", "member_index", "match_method", "match_sep"]


def unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """(n, 3) Cartesian unit vectors of sky positions (written in place: half the time of
    stacking three temporaries, for 10M spectra)."""
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    out = np.empty((len(ra), 3))
    cos_dec = np.cos(dec)
    np.multiply(cos_dec, np.cos(ra), out=out[:, 0])
    np.multiply(cos_dec, np.sin(ra), out=out[:, 1])
    np.sin(dec, out=out[:, 2])
    return out


def _chord(arcsec: float) -> float:
    return 2.0 * np.sin(arcsec / ARCSEC_PER_RAD / 2.0)


def _propagate(vectors: np.ndarray, ra_deg: np.ndarray, dec_deg: np.ndarray,
               pmra: np.ndarray, pmdec: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Move unit vectors along the local east/north directions by pm * years (pole-safe)."""
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    east = np.column_stack([-np.sin(ra), np.cos(ra), np.zeros_like(ra)])
    north = np.column_stack([-np.sin(dec) * np.cos(ra), -np.sin(dec) * np.sin(ra), np.cos(dec)])
    step_e = (pmra * years / MAS_PER_RAD)[:, None]
    step_n = (pmdec * years / MAS_PER_RAD)[:, None]
    moved = vectors + step_e * east + step_n * north
    return moved / np.linalg.norm(moved, axis=1)[:, None]


def _separation_arcsec(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    chord = np.linalg.norm(a - b, axis=1)
    return 2.0 * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0)) * ARCSEC_PER_RAD


def _cell_keys(index: np.ndarray, size: int) -> np.ndarray:
    """One int64 key per 3-D cell index (``size`` cells per axis)."""
    return (index[:, 0] * size + index[:, 1]) * size + index[:, 2]


def _near_items(items: np.ndarray, points: np.ndarray, chord: float) -> np.ndarray:
    """Positions (ascending) of the points that may have an item within ``chord``.

    A hash prefilter, so that the k-d tree only sees those points (most LAMOST spectra
    are field stars far from any member): on a grid of cubes of side 2*chord each item
    marks its own cube and, per axis, the neighbour on the side it is nearer to (8
    cubes); a point within ``chord`` of an item lies in one of them."""
    cell = max(2.0 * chord, MIN_CELL)
    size = int(2.0 / cell) + 3
    scaled = (items + 1.0) / cell
    index = np.floor(scaled).astype(np.int64)
    side = np.where(scaled - index < 0.5, -1, 1)
    corners = np.array([(dx, dy, dz) for dx in (0, 1) for dy in (0, 1) for dz in (0, 1)])
    occupied = np.concatenate([_cell_keys(index + side * corner, size) for corner in corners])
    point_keys = _cell_keys(np.floor((points + 1.0) / cell).astype(np.int64), size)
    return np.flatnonzero(pd.Series(point_keys).isin(occupied).to_numpy())


def _pairs_within(tree: cKDTree, points: np.ndarray, chord: float) -> tuple[np.ndarray, np.ndarray]:
    """All (point, tree item) pairs closer than ``chord``: a k-NN pass, then ball queries
    only for the points whose k nearest were all inside."""
    if len(points) == 0 or tree.n == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    k = min(FIRST_PASS_K, tree.n)
    dist, idx = tree.query(points, k=k, distance_upper_bound=chord, workers=-1)
    dist, idx = dist.reshape(len(points), k), idx.reshape(len(points), k)
    found = np.isfinite(dist)
    full = found[:, -1] if k < tree.n else np.zeros(len(points), bool)
    rows, cols = np.nonzero(found & ~full[:, None])
    point_idx, item_idx = [rows], [idx[rows, cols]]
    if full.any():
        crowded = np.flatnonzero(full)
        lists = tree.query_ball_point(points[crowded], chord, workers=-1)
        lengths = np.fromiter((len(x) for x in lists), np.int64, len(lists))
        point_idx.append(np.repeat(crowded, lengths))
        item_idx.append(np.concatenate(lists).astype(np.int64))
    return np.concatenate(point_idx), np.concatenate(item_idx)


def _id_pairs(members: pd.DataFrame, spectra: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(spectrum position, member position) for every shared Gaia source_id."""
    member_ids = members["source_id"]
    spec_ids = spectra["source_id"]
    m_pos = np.flatnonzero(member_ids.notna().to_numpy())
    s_pos = np.flatnonzero(spec_ids.notna().to_numpy())
    left = pd.DataFrame({"sid": spec_ids.iloc[s_pos].to_numpy(np.int64), "s": s_pos})
    right = pd.DataFrame({"sid": member_ids.iloc[m_pos].to_numpy(np.int64), "m": m_pos})
    joined = left.merge(right, on="sid", how="inner", sort=False)
    return joined["s"].to_numpy(np.int64), joined["m"].to_numpy(np.int64)


def _optional(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A float column, or all-NaN when the frame lacks it."""
    return frame[name].to_numpy(float) if name in frame else np.full(len(frame), np.nan)


def _position_pairs(members: pd.DataFrame, spectra: pd.DataFrame, spec_pos: np.ndarray,
                    member_pos: np.ndarray, radius_arcsec: float, gaia_epoch: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(spectrum position, member position, separation) within the radius after propagation,
    between the spectra at ``spec_pos`` and the members at ``member_pos``."""
    if len(spec_pos) == 0 or len(member_pos) == 0:   # e.g. no id-less members: skip the
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)   # 10M unit vectors
    m_ra = members["ra"].to_numpy(float)[member_pos]
    m_dec = members["dec"].to_numpy(float)[member_pos]
    pmra = np.nan_to_num(_optional(members, "pmra")[member_pos])
    pmdec = np.nan_to_num(_optional(members, "pmdec")[member_pos])
    epoch = _optional(spectra, "epoch")[spec_pos]
    years = np.where(np.isfinite(epoch), epoch - gaia_epoch, 0.0)
    max_years = float(np.max(np.abs(years), initial=0.0))
    shift_arcsec = np.hypot(pmra, pmdec) / 1000.0 * max_years
    m_vec = unit_vectors(m_ra, m_dec)
    s_vec = unit_vectors(spectra["ra"].to_numpy(float)[spec_pos],
                         spectra["dec"].to_numpy(float)[spec_pos])
    slow = shift_arcsec <= SLOW_PAD_ARCSEC
    spec_hits, member_hits = [], []
    for group, pad in ((np.flatnonzero(slow), SLOW_PAD_ARCSEC),
                       (np.flatnonzero(~slow), float(shift_arcsec.max(initial=0.0)))):
        if group.size == 0:
            continue
        chord = _chord(radius_arcsec + pad)
        near = _near_items(m_vec[group], s_vec, chord)
        s_idx, g_idx = _pairs_within(cKDTree(m_vec[group]), s_vec[near], chord)
        spec_hits.append(near[s_idx])
        member_hits.append(group[g_idx])
    s_idx = np.concatenate(spec_hits) if spec_hits else np.empty(0, np.int64)
    m_idx = np.concatenate(member_hits) if member_hits else np.empty(0, np.int64)
    moved = _propagate(m_vec[m_idx], m_ra[m_idx], m_dec[m_idx], pmra[m_idx], pmdec[m_idx],
                       years[s_idx])
    sep = _separation_arcsec(moved, s_vec[s_idx])
    keep = sep <= radius_arcsec
    return spec_pos[s_idx[keep]], member_pos[m_idx[keep]], sep[keep]


def _unmatched_ids(spectra: pd.DataFrame, id_s: np.ndarray) -> np.ndarray:
    """Positions of the spectra that carry a Gaia id which matched no member."""
    has_id = spectra["source_id"].notna().to_numpy().copy()
    has_id[id_s] = False
    return np.flatnonzero(has_id)


def _fallback_members(members: pd.DataFrame, id_m: np.ndarray, id_fallback: bool) -> np.ndarray:
    """Members a spectrum with an unmatched id may match by position: those without a Gaia
    id, plus (with ``id_fallback``) those that no spectrum matched by id."""
    candidate = members["source_id"].isna().to_numpy().copy()
    if id_fallback:
        unmatched = np.ones(len(members), bool)
        unmatched[id_m] = False
        candidate |= unmatched
    return np.flatnonzero(candidate)


def _one_star_per_member(spectra: pd.DataFrame, spec_pos: np.ndarray, member_pos: np.ndarray,
                         sep: np.ndarray) -> np.ndarray:
    """Mask of the (spectrum with a Gaia id, member) pairs that pair mutually nearest stars.

    A member is one star and a Gaia id names one star, so among the ids found near a
    member only the nearest can be the member (the others are neighbours observed on
    their own), and an id near several members is given to the nearest of them."""
    pairs = pd.DataFrame({"sid": spectra["source_id"].to_numpy()[spec_pos].astype(np.int64),
                          "m": member_pos, "sep": sep})
    closest = pairs.groupby(["sid", "m"], sort=False)["sep"].min().reset_index()
    best_member = closest.loc[closest.groupby("sid")["sep"].idxmin(), ["sid", "m"]]
    best_id = closest.loc[closest.groupby("m")["sep"].idxmin(), ["sid", "m"]]
    mutual = best_member.merge(best_id, on=["sid", "m"])
    keys = pd.MultiIndex.from_frame(pairs[["sid", "m"]])
    return keys.isin(pd.MultiIndex.from_frame(mutual))


def match(members: pd.DataFrame, spectra: pd.DataFrame, settings: Crossmatch,
          release: str) -> pd.DataFrame:
    """Member-spectrum pairs: spec_index, member_index (row labels), match_method, match_sep.

    ``release``: the Gaia release of the member positions (their epoch).  ``members`` needs ra, dec, source_id (NA = no Gaia id; pmra/pmdec optional, NaN = no
    motion); ``spectra`` needs ra, dec, source_id and epoch (Julian year; NaN = Gaia
    epoch).  Pairs are sorted by spectrum then member row; separations are in arcsec (0
    for ids).
    """
    radius_arcsec, gaia_epoch = settings.radius_arcsec, settings.epoch(release)
    id_s, id_m = _id_pairs(members, spectra)
    no_id = np.flatnonzero(spectra["source_id"].isna().to_numpy())
    every_member = np.arange(len(members))
    pos_s, pos_m, pos_sep = _position_pairs(members, spectra, no_id, every_member,
                                            radius_arcsec, gaia_epoch)
    extra_s, extra_m, extra_sep = _position_pairs(
        members, spectra, _unmatched_ids(spectra, id_s),
        _fallback_members(members, id_m, settings.id_fallback), radius_arcsec, gaia_epoch)
    # Row order, not the trees' order: an id exactly as far from two members (one star
    # listed in two clusters) then goes to the same member however the search was split.
    order = np.lexsort((extra_m, extra_s))
    extra_s, extra_m, extra_sep = extra_s[order], extra_m[order], extra_sep[order]
    nearest = _one_star_per_member(spectra, extra_s, extra_m, extra_sep)
    extra_s, extra_m, extra_sep = extra_s[nearest], extra_m[nearest], extra_sep[nearest]
    pos_s, pos_m = np.concatenate([pos_s, extra_s]), np.concatenate([pos_m, extra_m])
    pos_sep = np.concatenate([pos_sep, extra_sep])
    method = np.concatenate([np.full(len(id_s), "source_id", dtype=object),
                             np.full(len(pos_s), "position", dtype=object)])
    s_all = np.concatenate([id_s, pos_s])
    m_all = np.concatenate([id_m, pos_m])
    order = np.lexsort((m_all, s_all))
    return pd.DataFrame({
        "spec_index": spectra.index.to_numpy()[s_all[order]],
        "member_index": members.index.to_numpy()[m_all[order]],
        "match_method": method[order],
        "match_sep": np.concatenate([np.zeros(len(id_s)), pos_sep])[order],
    }, columns=PAIR_COLUMNS)


def id_spectra_on_id_members(members: pd.DataFrame, spectra: pd.DataFrame,
                             settings: Crossmatch, release: str) -> int:
    """Spectra with a Gaia id within the radius of a member with a Gaia id, ids ignored.

    Asked when no id matched: a non-zero count means both files carry Gaia ids for the
    same stars but the ids never agree, almost always two Gaia releases (a DR2 member
    list against DR3 ids in the spectra)."""
    with_id = np.flatnonzero(spectra["source_id"].notna().to_numpy())
    members_with_id = np.flatnonzero(members["source_id"].notna().to_numpy())
    spec_s, _, _ = _position_pairs(members, spectra, with_id, members_with_id,
                                   settings.radius_arcsec, settings.epoch(release))
    return int(np.unique(spec_s).size)
