"""Benchmark: the Monte Carlo estimation stage at full scale, fast path vs brute force.

The fast path (``ingest.pipeline.s5_estimate.estimate``) runs on all clusters; Fu et
al.'s recipe done literally (5000 draws per star and parameter, numpy median,
mean and std of each cluster's pooled draws: tests/helpers/monte_carlo.py,
the reference of tests/test_estimation.py) runs on the RV and abundances of a
random subset of clusters and its time is scaled by the number of stars,
giving the speed-up as a ratio from one run.  Results go to stdout and, as
JSON, to bench/results/montecarlo.json.

    PYTHONPATH=. .venv/bin/python bench/bench_montecarlo.py [--clusters 7000]
        [--stars 1000000] [--reference-clusters 40] [--seed 1]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ingest.core import config as config_module
from ingest.core.vocabulary import ABUNDANCES
from ingest.pipeline.s5_estimate import estimate, usable
from tests.helpers.monte_carlo import FU_DRAWS, pooled_draws

RESULTS = Path(__file__).resolve().parent / "results"


def synthetic(n_clusters: int, n_stars: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Stars with spectra spread over clusters with a lognormal size distribution."""
    rng = np.random.default_rng(seed)
    weights = rng.lognormal(0, 1.0, n_clusters)
    cluster = np.sort(rng.choice(n_clusters, n_stars, p=weights / weights.sum()))
    centre = rng.normal(0, 30, n_clusters)
    err = rng.uniform(0.3, 3.0, n_stars)
    rv = centre[cluster] + rng.normal(0, 1.5, n_stars) + rng.normal(0, err)
    stars = pd.DataFrame({"rv": rv, "rv_err": err,
                          "rv_var_flag": (rng.random(n_stars) < 0.03).astype(np.int16),
                          "teff": rng.uniform(3800, 8000, n_stars),
                          "logg": rng.uniform(1.5, 5.0, n_stars)})
    for par in ABUNDANCES:
        e = rng.uniform(0.03, 0.2, n_stars)
        value = rng.normal(-0.1, 0.1, n_clusters)[cluster] + rng.normal(0, e)
        value[rng.random(n_stars) < 0.1] = np.nan
        stars[par], stars[par + "_err"] = value, e
    return stars, cluster


def brute_force(stars: pd.DataFrame, cluster: np.ndarray, clusters: np.ndarray,
                seed: int) -> None:
    """Brute-force pooled statistics of RV and every abundance for ``clusters``."""
    rng = np.random.default_rng(seed)
    for par in ("rv",) + ABUNDANCES:
        value = stars[par].to_numpy(np.float64)
        error = stars[par + "_err"].to_numpy(np.float64)
        ok = usable(value, error)
        for c in clusters:
            here = ok & (cluster == c)
            if here.any():
                draws = pooled_draws(value[here], error[here], FU_DRAWS, rng)
                np.median(draws), draws.mean(), draws.std()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=7000)
    parser.add_argument("--stars", type=int, default=1_000_000)
    parser.add_argument("--reference-clusters", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    cfg = config_module.settings(config_module.load())
    stars, cluster = synthetic(args.clusters, args.stars, args.seed)

    start = time.perf_counter()
    estimate(stars, cluster, args.clusters, cfg.montecarlo, cfg.params_qc)
    fast_s = time.perf_counter() - start

    rng = np.random.default_rng(args.seed + 1)
    subset = np.sort(rng.choice(args.clusters, args.reference_clusters, replace=False))
    rows = np.isin(cluster, subset)
    start = time.perf_counter()
    brute_force(stars, cluster, subset, seed=3)
    ref_s = time.perf_counter() - start
    ref_full_s = ref_s * len(stars) / rows.sum()
    result = {"clusters": args.clusters, "stars": args.stars, "parameters": 1 + len(ABUNDANCES),
              "fast_seconds": round(fast_s, 2),
              "reference_stars": int(rows.sum()), "reference_seconds": round(ref_s, 2),
              "reference_extrapolated_seconds": round(ref_full_s, 1),
              "speedup": round(ref_full_s / fast_s, 1)}
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "montecarlo.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
