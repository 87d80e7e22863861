"""Binary-cluster candidates (SPEC section 3.12; thesis ch. 5, e.g. NGC 869 / NGC 884).

A pair qualifies when the cluster centres are within ``max_sep_pc`` in 3D
(KD-tree on heliocentric Cartesian positions), their tangential velocities
differ by at most ``max_dv_tan_kms`` (proper-motion difference at the mean
distance) and their RVs agree: |dRV| <= max(``max_drv_kms``, ``rv_nsigma`` x
the error of the difference), so that two poorly measured cluster RVs do not
veto a pair.  With ``require_rv = false`` pairs lacking an RV are kept (drv
NULL).  All differences are absolute values; cluster_a sorts before cluster_b.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from .literature import cluster_names
from .schema import table

KMS_PER_MASYR_KPC = 4.740470463


def _cartesian_pc(clusters: pd.DataFrame) -> np.ndarray:
    ra = np.radians(clusters["ra"].to_numpy(float))
    dec = np.radians(clusters["dec"].to_numpy(float))
    dist = clusters["dist50"].to_numpy(float)
    return np.column_stack([dist * np.cos(dec) * np.cos(ra), dist * np.cos(dec) * np.sin(ra),
                            dist * np.sin(dec)])


def _values(frame: pd.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy(float)


def _angular_separation_deg(ra1, dec1, ra2, dec2) -> np.ndarray:
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(v, float)) for v in (ra1, dec1, ra2, dec2))
    hav = (np.sin((dec2 - dec1) / 2) ** 2
           + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2)
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(hav, 0, 1))))


def close_pairs(clusters: pd.DataFrame, max_sep_pc: float) -> np.ndarray:
    """(M, 2) row positions of clusters closer than ``max_sep_pc`` in 3D."""
    xyz = _cartesian_pc(clusters)
    usable = np.flatnonzero(np.all(np.isfinite(xyz), axis=1))
    pairs = cKDTree(xyz[usable]).query_pairs(max_sep_pc, output_type="ndarray")
    return usable[pairs].reshape(-1, 2)


def pair_table(clusters: pd.DataFrame, pairs: np.ndarray) -> pd.DataFrame:
    """All binary_candidate columns for the given row pairs (no thresholds applied)."""
    a, b = clusters.iloc[pairs[:, 0]], clusters.iloc[pairs[:, 1]]
    xyz = _cartesian_pc(clusters)
    dpm = np.hypot(_values(a, "pmra") - _values(b, "pmra"),
                   _values(a, "pmdec") - _values(b, "pmdec"))
    mean_dist_kpc = (_values(a, "dist50") + _values(b, "dist50")) / 2000.0
    names_a, names_b = cluster_names(a).to_numpy(), cluster_names(b).to_numpy()
    swap = names_a > names_b
    frame = pd.DataFrame({
        "cluster_a": np.where(swap, names_b, names_a),
        "cluster_b": np.where(swap, names_a, names_b),
        "sep_3d": np.linalg.norm(xyz[pairs[:, 0]] - xyz[pairs[:, 1]], axis=1),
        "sep_sky": _angular_separation_deg(_values(a, "ra"), _values(a, "dec"),
                                           _values(b, "ra"), _values(b, "dec")),
        "dpm": dpm, "dv_tan": KMS_PER_MASYR_KPC * dpm * mean_dist_kpc,
        "drv": np.abs(_values(a, "rv") - _values(b, "rv")),
        "drv_err": np.hypot(_values(a, "rv_err"), _values(b, "rv_err")),
        "dlogage": np.abs(_values(a, "logage50") - _values(b, "logage50"))})
    return frame[table("binary_candidate").names]


def find_pairs(clusters: pd.DataFrame, config: dict) -> pd.DataFrame:
    """binary_candidate rows: pairs passing the [binaries] thresholds, closest first."""
    opts = config["binaries"]
    pairs = pair_table(clusters, close_pairs(clusters, float(opts["max_sep_pc"])))
    rv_limit = np.fmax(float(opts["max_drv_kms"]), float(opts["rv_nsigma"]) * pairs["drv_err"])
    rv_ok = pairs["drv"] <= rv_limit
    if not opts["require_rv"]:
        rv_ok |= pairs["drv"].isna()
    keep = (pairs["dv_tan"] <= float(opts["max_dv_tan_kms"])) & rv_ok
    return pairs[keep].sort_values("sep_3d").reset_index(drop=True)
