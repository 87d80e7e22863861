"""Time the Galactic block (positions + Monte Carlo orbits) for N synthetic clusters.

Usage: bin/ocvo bench orbits [--clusters 7000]
       [--draws 100] [--cores 2] [--validate 100]
Prints wall time of add_galactic and, with --validate N, the largest differences between
the interpolated and the full McMillan17 for the first N nominal orbits.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from ingest.core import config
from ingest.pipeline.s6_galactic import galactic, orbits
from tests.helpers.synthetic import disc_cluster_kinematics


def synthetic_clusters(n: int, seed: int) -> pd.DataFrame:
    """Thin-disc clusters 0.2-6 kpc away (the orbit tests' sample) with catalogue errors."""
    rng = np.random.default_rng(seed)
    ra, dec, dist, pmra, pmdec, rv = disc_cluster_kinematics(n, rng, dist_min_kpc=0.2).T
    return pd.DataFrame({
        "cluster_name": [f"Bench_{i}" for i in range(n)], "ra": ra,
        "dec": dec, "dist50": dist * 1000.0, "pmra": pmra, "pmdec": pmdec,
        "rv": rv, "rv_std": rng.uniform(0.5, 5, n),
        "rv_err": rng.uniform(0.2, 2, n), "dist16": dist * 1000.0 * (1 - 0.01 * dist),
        "dist84": dist * 1000.0 * (1 + 0.01 * dist), "s_pmra": 0.2, "s_pmdec": 0.2,
        "n_members": 100})


def main() -> None:
    """Parse the options, time add_galactic, optionally validate against full integration."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=7000)
    parser.add_argument("--draws", type=int, default=100, help="Monte Carlo orbits per cluster")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--validate", type=int, default=0)
    args = parser.parse_args()
    cfg = config.defaults()
    cfg["galactic"].update(orbit_draws=args.draws, orbit_cores=args.cores)
    clusters = synthetic_clusters(args.clusters, seed=1)
    start = time.perf_counter()
    orbits.interpolated_potential()      # includes the one-off import of McMillan17
    setup_s = time.perf_counter() - start
    start = time.perf_counter()
    out = galactic.add_galactic(clusters, config.settings(cfg).galactic, seed=2, progress=True)
    wall = time.perf_counter() - start
    extra = args.draws
    n_orbits = args.clusters * (1 + extra)
    print(f"setup (import McMillan17 + interpolation grid): {setup_s:.1f} s")
    print(f"add_galactic (Monte Carlo): {args.clusters} clusters x (1 + {extra}) = "
          f"{n_orbits} orbits on {args.cores} cores: {wall:.1f} s "
          f"({n_orbits / wall:.0f} orbits/s); orbit_flag counts "
          f"{out['orbit_flag'].value_counts().to_dict()}")
    if args.validate:
        validate(clusters.head(args.validate), cfg)


def validate(clusters: pd.DataFrame, cfg: dict) -> None:
    """Interpolated vs full McMillan17 for the nominal orbits of ``clusters``."""
    setup = orbits.OrbitSetup.from_config(config.settings(cfg).galactic)
    ics = np.column_stack([clusters[c].to_numpy(float) for c in
                           ("ra", "dec", "dist50", "pmra", "pmdec", "rv")])
    ics[:, 2] /= 1000.0
    start = time.perf_counter()
    full = orbits.integrate(ics, setup, full_potential=True)
    full_s = time.perf_counter() - start
    fast = orbits.integrate(ics, setup)
    print(f"full McMillan17: {len(ics)} orbits in {full_s:.1f} s")
    for name in ("r_peri", "r_apo", "z_max"):
        rel = np.abs(fast[name] - full[name]) / np.abs(full[name])
        print(f"  {name}: max relative difference {rel.max():.2e}, max absolute "
              f"{np.abs(fast[name] - full[name]).max() * 1000:.2f} pc")
    print(f"  ecc: max absolute difference {np.abs(fast['ecc'] - full['ecc']).max():.2e}")


if __name__ == "__main__":
    main()
