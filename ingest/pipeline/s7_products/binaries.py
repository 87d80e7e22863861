"""Binary-cluster candidates (SPEC section 3.12; thesis ch. 5, e.g. NGC 869 / NGC 884).

A pair qualifies when, given each cluster's distance uncertainty, it is more likely
than not that the centres are within ``max_sep_pc`` in 3D (``p_close``), their
tangential velocities differ by at most ``max_dv_tan_kms`` (or ``pm_nsigma`` times the
error of the difference, if larger), their RVs agree (|dRV| <= max(``max_drv_kms``,
``rv_nsigma`` x its error)) and their ages agree (|d log age| <= ``max_dlogage``).
The reasoning behind each threshold is in docs/science.md.  A measured separation
below ``max_sep_pc`` is not enough: at 2-4 kpc Hunt & Reffert (2023) distances are
uncertain by ~34 pc, so the line-of-sight part of the separation is unknown there.

The 3D separation splits exactly into a line-of-sight part d_a - d_b and a
perpendicular part s_perp = sqrt(2 d_a d_b (1 - cos theta)), which the sky
separation theta fixes well; with d_a - d_b ~ N(observed, sigma_a^2 + sigma_b^2),
p_close = P(|d_a - d_b| < sqrt(max_sep^2 - s_perp^2)).  With ``require_rv = false``
pairs lacking an RV are kept (drv NULL); a missing age never vetoes a pair.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from astropy.coordinates import angular_separation
from scipy.spatial import cKDTree
from scipy.special import ndtr

from ingest.core.constants import KMS_PER_MASYR_KPC
from ingest.pipeline.s7_products.literature import cluster_names
from ingest.core.config import Binaries
from ingest.core.schema import table


def _cartesian_pc(clusters: pd.DataFrame) -> np.ndarray:
    ra = np.radians(clusters["ra"].to_numpy(float))
    dec = np.radians(clusters["dec"].to_numpy(float))
    dist = clusters["dist50"].to_numpy(float)
    return np.column_stack([dist * np.cos(dec) * np.cos(ra), dist * np.cos(dec) * np.sin(ra),
                            dist * np.sin(dec)])


def _values(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame:
        return np.full(len(frame), np.nan)
    return frame[name].to_numpy(float)


def close_pairs(clusters: pd.DataFrame, max_sep_pc: float) -> np.ndarray:
    """(M, 2) row positions of clusters closer than ``max_sep_pc`` in 3D."""
    xyz = _cartesian_pc(clusters)
    usable = np.flatnonzero(np.all(np.isfinite(xyz), axis=1))
    pairs = cKDTree(xyz[usable]).query_pairs(max_sep_pc, output_type="ndarray")
    return usable[pairs].reshape(-1, 2)


def distance_sigma_pc(frame: pd.DataFrame) -> np.ndarray:
    """Half the 16-84 distance range (pc); 0 where the catalogue gives no percentiles."""
    sigma = (_values(frame, "dist84") - _values(frame, "dist16")) / 2.0
    return np.where(np.isfinite(sigma), sigma, 0.0)


def close_probability(dist_a: np.ndarray, dist_b: np.ndarray, sigma_a: np.ndarray,
                      sigma_b: np.ndarray, sep_sky_deg: np.ndarray,
                      max_sep_pc: float) -> np.ndarray:
    """P(true 3D separation < max_sep_pc) for Gaussian distance errors (flat prior on the
    line-of-sight difference); the sky separation is taken as exact."""
    cos_theta = np.cos(np.radians(sep_sky_deg))
    s_perp_sq = 2.0 * dist_a * dist_b * (1.0 - cos_theta)
    half_width = np.sqrt(np.clip(max_sep_pc ** 2 - s_perp_sq, 0.0, None))
    delta = dist_a - dist_b
    sigma = np.hypot(sigma_a, sigma_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = ndtr((half_width - delta) / sigma) - ndtr((-half_width - delta) / sigma)
    exact = (np.abs(delta) < half_width).astype(float)
    return np.where(sigma > 0, inside, exact)


def pair_table(clusters: pd.DataFrame, pairs: np.ndarray, max_sep_pc: float) -> pd.DataFrame:
    """All binary_candidate columns for the given row pairs (no thresholds applied)."""
    a, b = clusters.iloc[pairs[:, 0]], clusters.iloc[pairs[:, 1]]
    xyz = _cartesian_pc(clusters)
    dpm = np.hypot(_values(a, "pmra") - _values(b, "pmra"),
                   _values(a, "pmdec") - _values(b, "pmdec"))
    mean_dist_kpc = (_values(a, "dist50") + _values(b, "dist50")) / 2000.0
    sep_3d = np.linalg.norm(xyz[pairs[:, 0]] - xyz[pairs[:, 1]], axis=1)
    ra_a, dec_a, ra_b, dec_b = (np.radians(_values(frame, axis))
                                for frame in (a, b) for axis in ("ra", "dec"))
    sep_sky = np.degrees(angular_separation(ra_a, dec_a, ra_b, dec_b))
    sigma_a, sigma_b = distance_sigma_pc(a), distance_sigma_pc(b)
    names_a, names_b = cluster_names(a).to_numpy(), cluster_names(b).to_numpy()
    swap = names_a > names_b
    with np.errstate(divide="ignore", invalid="ignore"):
        sep_err = np.abs(_values(a, "dist50") - _values(b, "dist50")) / sep_3d * np.hypot(
            sigma_a, sigma_b)
    frame = pd.DataFrame({
        "cluster_a": np.where(swap, names_b, names_a),
        "cluster_b": np.where(swap, names_a, names_b),
        "sep_3d": sep_3d, "sep_3d_err": sep_err, "sep_sky": sep_sky,
        "p_close": close_probability(_values(a, "dist50"), _values(b, "dist50"), sigma_a,
                                     sigma_b, sep_sky, max_sep_pc),
        "dpm": dpm, "dv_tan": KMS_PER_MASYR_KPC * dpm * mean_dist_kpc,
        "dv_tan_err": KMS_PER_MASYR_KPC * mean_dist_kpc * np.hypot(_pm_error(a), _pm_error(b)),
        "drv": np.abs(_values(a, "rv") - _values(b, "rv")),
        "drv_err": np.hypot(_values(a, "rv_err"), _values(b, "rv_err")),
        "dlogage": np.abs(_values(a, "logage50") - _values(b, "logage50"))})
    return frame[table("binary_candidate").names]


def _pm_error(frame: pd.DataFrame) -> np.ndarray:
    """Error of the mean proper motion (per axis): s_pm / sqrt(N), 0 when unknown."""
    per_axis = np.hypot(_values(frame, "s_pmra"), _values(frame, "s_pmdec")) / np.sqrt(
        2.0 * _values(frame, "n_members"))
    return np.where(np.isfinite(per_axis), per_axis, 0.0)


def find_pairs(clusters: pd.DataFrame, opts: Binaries) -> pd.DataFrame:
    """binary_candidate rows: pairs passing the [binaries] thresholds, closest first.

    With ``min_p_close`` >= 0.5 a qualifying pair has a measured separation below
    ``max_sep_pc`` (p_close < 0.5 otherwise), so the KD-tree pre-selection is complete.
    """
    max_sep = opts.max_sep_pc
    pairs = pair_table(clusters, close_pairs(clusters, max_sep), max_sep)
    rv_limit = np.fmax(opts.max_drv_kms, opts.rv_nsigma * pairs["drv_err"])
    rv_ok = pairs["drv"] <= rv_limit
    if not opts.require_rv:
        rv_ok |= pairs["drv"].isna()
    pm_limit = np.fmax(opts.max_dv_tan_kms,
                       opts.pm_nsigma * pairs["dv_tan_err"])
    age_ok = (pairs["dlogage"] <= opts.max_dlogage) | pairs["dlogage"].isna()
    keep = ((pairs["p_close"] >= opts.min_p_close) & (pairs["dv_tan"] <= pm_limit)
            & rv_ok & age_ok)
    return pairs[keep].sort_values("sep_3d").reset_index(drop=True)
