"""Injected binary-cluster pairs with known truth, for the binary-candidate recovery test.

Kept apart from the demo simulation (which has no pairs) so that a later simulator
change adding pairs to the demo itself merges without conflict.  Each pair is two
coeval clusters a few pc apart moving together to ~1 km/s (a bound pair of two
10^3-10^4 Msun clusters at 10-20 pc has an orbital speed of ~0.5-2 km/s); each
member of the pair is then observed with catalogue-like errors.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

KMS_PER_MASYR_KPC = 4.740470463


def _unit_vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    vectors = rng.standard_normal((n, 3))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _sky(xyz_pc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dist = np.linalg.norm(xyz_pc, axis=1)
    ra = np.degrees(np.arctan2(xyz_pc[:, 1], xyz_pc[:, 0])) % 360.0
    dec = np.degrees(np.arcsin(xyz_pc[:, 2] / dist))
    return ra, dec, dist


def binary_pairs(n_pairs: int, rng: np.random.Generator, dist_kpc: tuple[float, float] = (0.2, 1.0),
                 sep_pc: tuple[float, float] = (5.0, 20.0), dv_kms: float = 1.0,
                 dist_frac_per_kpc: float = 0.0112, pm_err: float = 0.01,
                 rv_err: float = 1.0, logage_err: float = 0.1) -> pd.DataFrame:
    """2 x ``n_pairs`` observed clusters named ``Pair i a`` / ``Pair i b`` (canonical
    cluster columns, distances in pc).  Distance errors grow as ``dist_frac_per_kpc``
    x d (the demo simulator's for 100 stars: 1.1% at 1 kpc); the true separation is
    uniform in ``sep_pc``, the relative velocity is isotropic with size ``dv_kms``."""
    centre = _unit_vectors(n_pairs, rng) * rng.uniform(*dist_kpc, n_pairs)[:, None] * 1000.0
    half = _unit_vectors(n_pairs, rng) * rng.uniform(*sep_pc, n_pairs)[:, None] / 2.0
    velocity = rng.normal(0.0, 20.0, (n_pairs, 3))
    dvel = _unit_vectors(n_pairs, rng) * dv_kms / 2.0
    xyz = np.vstack([centre + half, centre - half])
    vel = np.vstack([velocity + dvel, velocity - dvel])
    ra, dec, dist = _sky(xyz)
    los = xyz / dist[:, None]
    north = np.column_stack([-np.sin(np.radians(dec)) * np.cos(np.radians(ra)),
                             -np.sin(np.radians(dec)) * np.sin(np.radians(ra)),
                             np.cos(np.radians(dec))])
    east = np.cross(north, los)
    to_pm = KMS_PER_MASYR_KPC * dist / 1000.0
    n = 2 * n_pairs
    sigma_d = dist_frac_per_kpc * dist ** 2 / 1000.0
    dist_obs = dist + rng.normal(0.0, sigma_d)
    log_age = np.tile(rng.uniform(6.8, 8.5, n_pairs), 2) + rng.normal(0.0, logage_err, n)
    names = [f"Pair {i} {side}" for side in "ab" for i in range(n_pairs)]
    return pd.DataFrame({
        "cluster": names, "ra": ra, "dec": dec,
        "dist16": dist_obs - sigma_d, "dist50": dist_obs, "dist84": dist_obs + sigma_d,
        "pmra": np.einsum("ij,ij->i", vel, east) / to_pm + rng.normal(0.0, pm_err, n),
        "pmdec": np.einsum("ij,ij->i", vel, north) / to_pm + rng.normal(0.0, pm_err, n),
        "s_pmra": pm_err * 10.0, "s_pmdec": pm_err * 10.0, "n_members": 100,
        "rv": np.einsum("ij,ij->i", vel, los) + rng.normal(0.0, rv_err, n), "rv_err": rv_err,
        "logage50": log_age, "true_sep_pc": np.tile(2 * np.linalg.norm(half, axis=1), 2)})
