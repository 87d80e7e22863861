"""Time the Galactic block (positions + Monte Carlo orbits) for N synthetic clusters.

Usage: PYTHONPATH=. .venv/bin/python bench/bench_orbits.py [--clusters 7000]
       [--draws 100] [--cores 2] [--validate 100]
Prints wall time of add_galactic and, with --validate N, the largest differences between
the interpolated and the full McMillan17 for the first N nominal orbits.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from ingest import config, galactic, orbits


def synthetic_clusters(n: int, seed: int) -> pd.DataFrame:
    """Thin-disc clusters 0.2-6 kpc away: flat rotation (233 km/s) plus (10, 7, 5) km/s scatter."""
    from galpy.util import coords

    rng = np.random.default_rng(seed)
    lon, lat = rng.uniform(0, 360, n), rng.normal(0, 3, n).clip(-15, 15)
    dist = rng.uniform(0.2, 6.0, n)
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
    return pd.DataFrame({
        "cluster_name": [f"Bench_{i}" for i in range(n)], "ra": radec[:, 0],
        "dec": radec[:, 1], "dist50": dist * 1000.0, "pmra": pm[:, 0], "pmdec": pm[:, 1],
        "rv": vlos_pm[:, 0], "rv_std": rng.uniform(0.5, 5, n),
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
    out = galactic.add_galactic(clusters, cfg, seed=2, progress=True)
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
    setup = orbits.OrbitSetup.from_config(cfg["galactic"])
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
