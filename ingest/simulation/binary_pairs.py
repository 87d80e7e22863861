"""Physical binary-cluster pairs injected into the simulated population (thesis ch. 5).

A pair is two clusters born together: the partner sits a few pc from its primary,
moves with it to ~1 km/s (two bound 10^3-10^4 Msun clusters 10-20 pc apart orbit
each other at ~0.5-2 km/s), and shares its age and chemistry.  One pair imitates
h & chi Persei: two young clusters side by side on the sky.  It is placed nearer
than the real pair (2.3 kpc) because the simulated distances carry a 0.01 mas
parallax floor, 2.3% at 2.3 kpc, with which no pair there can be shown to be close;
Hunt & Reffert's real errors (0.3%) can, which tests/test_binaries.py checks on the
real table.  Pairs get their own random stream, so every other cluster stays as it
was without them.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def _unit_vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    vectors = rng.standard_normal((n, 3))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def choose_pairs(dist_pc: np.ndarray, dec: np.ndarray, cfg: dict[str, Any],
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of primaries (heliocentric distance in ``dist_kpc``, north of
    ``min_dec_deg`` so that LAMOST observes them) and of the clusters that become their
    partners; the first pair is the h & chi Persei-like one."""
    lo, hi = cfg["dist_kpc"]
    eligible = np.flatnonzero((dist_pc > lo * 1000.0) & (dist_pc < hi * 1000.0)
                              & (dec > cfg["min_dec_deg"]))
    n_pairs = int(cfg["n_pairs"])
    if len(eligible) < n_pairs or len(dist_pc) < 2 * n_pairs:
        return np.empty(0, int), np.empty(0, int)
    primaries = rng.choice(eligible, size=n_pairs, replace=False)
    others = np.setdiff1d(np.arange(len(dist_pc)), primaries)
    partners = rng.choice(others, size=n_pairs, replace=False)
    return primaries, partners


def h_chi_persei_like(cfg: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Galactic longitudes, latitudes (deg) and distances (kpc) of the two members of the
    h & chi Persei-like pair: centred on the configured direction and distance,
    ``sep_pc`` apart along Galactic longitude (side by side on the sky, as the real
    pair is)."""
    half_deg = np.degrees(cfg["sep_pc"] / 2.0 / (cfg["dist_kpc"] * 1000.0))
    half_lon = half_deg / np.cos(np.radians(cfg["glat_deg"]))
    return (cfg["glon_deg"] + np.array([-half_lon, half_lon]),
            np.full(2, float(cfg["glat_deg"])), np.full(2, float(cfg["dist_kpc"])))


def partner_offsets(n: int, cfg: dict[str, Any], rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) position offsets (kpc; isotropic, length uniform in ``sep_pc``) and velocity
    offsets (km/s; isotropic, length ``dv_kms``) of partners from their primaries."""
    position = _unit_vectors(n, rng) * rng.uniform(*cfg["sep_pc"], n)[:, None] / 1000.0
    velocity = _unit_vectors(n, rng) * cfg["dv_kms"]
    return position, velocity
