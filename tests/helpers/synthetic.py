"""Synthetic cluster catalogues with an injected broken [Fe/H] gradient (the thesis's)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from astropy.table import Table

from ingest.core.vocabulary import ELEMENTS

INNER, OUTER, KNEE, AT_KNEE, SCATTER = -0.047, -0.014, 11.5, -0.2105, 0.05


def broken_truth(r_gc: np.ndarray) -> np.ndarray:
    """The injected [Fe/H] at r_gc: slopes INNER / OUTER meeting at KNEE."""
    return AT_KNEE + INNER * np.minimum(r_gc - KNEE, 0) + OUTER * np.maximum(r_gc - KNEE, 0)


def gradient_clusters(n: int, seed: int) -> pd.DataFrame:
    """Clusters with the broken gradient, 0.05 dex intrinsic scatter and stated errors,
    a mild [X/Fe] trend (+0.003 dex/kpc) and RVs, in the cluster table's columns."""
    rng = np.random.default_rng(seed)
    r_gc = rng.uniform(5, 17.5, n)
    err = rng.uniform(0.01, 0.08, n)
    frame = pd.DataFrame({
        "cluster_name": [f"Test {i}" for i in range(n)],
        "r_gc": r_gc, "z": rng.normal(0, 0.3, n), "logage50": rng.uniform(6.8, 9.8, n),
        "n_flag12": rng.integers(0, 30, n), "rv": rng.normal(0, 20, n), "rv_err": 0.5,
        "fe_h": broken_truth(r_gc) + rng.normal(0, SCATTER, n) + rng.normal(0, err),
        "fe_h_err": err})
    for element in ELEMENTS:
        frame[f"{element}_fe"] = 0.003 * (r_gc - 8) + rng.normal(0, 0.03, n)
        frame[f"{element}_fe_err"] = 0.03
    return frame


def disc_cluster_kinematics(n: int, rng: np.random.Generator,
                            dist_min_kpc: float = 0.3) -> np.ndarray:
    """Thin-disc clusters dist_min_kpc-6 kpc away, flat rotation (233 km/s) plus (10, 7, 5)
    km/s scatter: columns ra, dec (deg), dist (kpc), pmra, pmdec (mas/yr), rv (km/s).

    Shared by the orbit tests and bench/bench_orbits.py so both integrate the same sample.
    """
    from galpy.util import coords

    lon, lat = rng.uniform(0, 360, n), rng.normal(0, 3, n).clip(-15, 15)
    dist = rng.uniform(dist_min_kpc, 6.0, n)
    xyz = coords.lbd_to_XYZ(lon, lat, dist, degree=True)
    x_gc, y_gc = 8.0 - xyz[:, 0], xyz[:, 1]          # Galactocentric, Sun on +x
    r_gc = np.hypot(x_gc, y_gc)
    # circular velocity (rotation towards +y at the Sun) minus the Sun's own motion
    # relative to the Sun; x_gc points away from the centre, the Sun's U towards it
    vx = -233.0 * y_gc / r_gc + rng.normal(0, 10, n) + 11.1
    vy = 233.0 * x_gc / r_gc + rng.normal(0, 7, n) - (233.0 + 12.24)
    vz = rng.normal(0, 5, n) - 7.25
    vlos_pm = coords.vxvyvz_to_vrpmllpmbb(-vx, vy, vz, lon, lat, dist, XYZ=False, degree=True)
    radec = coords.lb_to_radec(lon, lat, degree=True)
    pm = coords.pmllpmbb_to_pmrapmdec(vlos_pm[:, 1], vlos_pm[:, 2], lon, lat, degree=True)
    return np.column_stack([radec, dist, pm, vlos_pm[:, 0]])


def mrs_table(n: int, rng: np.random.Generator, parameters: bool = True) -> Table:
    """A small LAMOST MRS-shaped spectrum table (the survey's column names), with Teff and
    [Mg/Fe] columns unless ``parameters`` is False."""
    table = Table({
        "obsid": np.arange(1, n + 1, dtype=np.int64), "uid": [f"G{i}" for i in range(n)],
        "gp_id": np.arange(n, dtype=np.int64),
        "gaia_source_id": rng.integers(1, 10**6, n).astype(np.int64),
        "ra": rng.uniform(0, 10, n), "dec": rng.uniform(-5, 5, n),
        "lmjm": rng.integers(83_000_000, 85_000_000, n).astype(np.int64),
        "band": ["B"] * n, "snr": rng.uniform(5, 80, n).astype(np.float32),
        "rv_br0": rng.normal(0, 30, n).astype(np.float32),
        "rv_br0_err": rng.uniform(0.3, 3, n).astype(np.float32),
        "rv_br_flag": np.zeros(n, np.int16),
    })
    if parameters:
        table["teff_cnn"] = rng.uniform(4000, 7000, n)
        table["teff_cnn_err"] = rng.uniform(20, 80, n)
        table["mg_fe"] = rng.normal(0, 0.1, n)
        table["mg_fe_err"] = rng.uniform(0.01, 0.1, n)
    return table
