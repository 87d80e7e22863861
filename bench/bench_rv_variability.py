"""Benchmark: the RV-variability flag against the simulator's injected truth.

For three MRS error models — exact errors, errors under-estimated 1.5x, and a
0.5 km/s per-night zero-point scatter — the demo preset is simulated and
ingested (crossmatch, QC, combination, cluster estimates) with the old rule
(chi-square p < 0.001, raw errors), with the jitter alone, and with the new
``[combine]`` defaults (jitter in quadrature and a per-survey error scale
calibrated on the repeats).  It reports

* the false-positive rate: flagged fraction of constant (non-binary) stars
  whose spectra are all their own, by number of RV epochs;
* the recovery rate: flagged fraction of the injected binaries;
* for ``montecarlo.exclude_rv_variable`` true and false: cluster-RV pulls
  against the truth, true binaries among FLAG=1 and the FLAG=1 share of
  bright (G < 12), often-observed (>= 10 epochs) constant members.

Results go to stdout and, as JSON, to bench/results/rv_variability.json.

    bin/ocvo bench rv_variability [--seed 12345]
"""
from __future__ import annotations

import argparse
import copy
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.table import Table

from ingest.core.config import Settings, settings

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = {
    "exact errors": {},
    "errors under-estimated 1.5x": {"rv_err_underestimate": 1.5},
    "0.5 km/s night zero-point scatter": {"night_zp_jitter_kms": 0.5},
}
EPOCH_BINS = ((2, 4), (5, 9), (10, 19), (20, 30))


def rules(defaults: dict) -> dict[str, dict]:
    """``[combine]`` settings: old (raw errors), jitter only, and new (the defaults)."""
    old = dict(defaults["combine"], rv_jitter_kms=0.0, rv_err_scale=1.0, rv_err_scale_auto=False)
    jitter = dict(defaults["combine"], rv_err_scale=1.0, rv_err_scale_auto=False)
    return {"old": old, "jitter only": jitter, "new": dict(defaults["combine"])}


def config_with(defaults: dict, combine: dict, exclude: bool) -> Settings:
    """A copy of the defaults with these combine settings and exclusion choice."""
    cfg = copy.deepcopy(defaults)
    cfg["combine"] = combine
    cfg["montecarlo"]["exclude_rv_variable"] = exclude
    return settings(cfg)


def read_truth(sim: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Truth stars by Gaia id and truth clusters by published cluster name."""
    stars = Table.read(sim / "truth_stars.fits").to_pandas()
    stars = stars.set_index(stars["GaiaDR3"].astype(np.int64))
    clusters = Table.read(sim / "truth_clusters.fits").to_pandas()
    names = [n.decode() if isinstance(n, bytes) else n for n in clusters["Name"]]
    clusters.index = pd.Index(names).str.replace("_", " ")
    return stars, clusters


def star_rates(member: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """False-positive rate (constant stars, by epochs) and recovery rate (binaries)."""
    t = truth.loc[member["source_id"].to_numpy(np.int64)]
    nobs = member["rv_nobs"].to_numpy()
    own = member["n_spec"].to_numpy() == (t["n_spectra"] + t["n_lrs"]).to_numpy()
    binary = t["is_binary"].to_numpy(bool)
    flagged = member["rv_var_flag"].to_numpy() == 1
    constant = own & ~binary & (nobs >= 2)
    out = {"false_positive": _rate(flagged, constant),
           "recovery": _rate(flagged, binary & (nobs >= 2))}
    for lo, hi in EPOCH_BINS:
        out[f"false_positive_{lo}-{hi}"] = _rate(flagged, constant & (nobs >= lo) & (nobs <= hi))
    return out


def _rate(flagged: np.ndarray, sample: np.ndarray) -> dict:
    n = int(sample.sum())
    return {"rate": float(flagged[sample].mean()) if n else float("nan"), "n": n}


def cluster_quality(cluster: pd.DataFrame, member: pd.DataFrame, truth_stars: pd.DataFrame,
                    truth_clusters: pd.DataFrame) -> dict:
    """Cluster-RV pulls against the truth and what FLAG=1 keeps."""
    good = cluster["n_flag1"].to_numpy() >= 3
    true_rv = truth_clusters.loc[cluster["cluster_name"], "rv"].to_numpy(float)[good]
    rv, err = cluster["rv"].to_numpy(float)[good], cluster["rv_err"].to_numpy(float)[good]
    pull = (rv - true_rv) / err
    median = float(np.median(pull))
    t = truth_stars.loc[member["source_id"].to_numpy(np.int64)]
    flag1 = member["flag"].to_numpy() >= 1
    binary = t["is_binary"].to_numpy(bool)
    bright = (t["is_member"].to_numpy(bool) & ~binary & (t["Gmag"].to_numpy() < 12)
              & (member["rv_nobs"].to_numpy() >= 10))
    return {"clusters": int(good.sum()), "pull_median": median,
            "pull_width": float(1.4826 * np.median(np.abs(pull - median))),
            "mean_abs_drv": float(np.mean(np.abs(rv - true_rv))),
            "flag1_stars": int(flag1.sum()), "binaries_in_flag1": int((flag1 & binary).sum()),
            "bright_constant_flag1": _rate(flag1, bright)}


def run_scenario(options: dict, seed: int, defaults: dict, work: Path) -> dict:
    """Simulate with these error options and ingest with each rule and exclusion choice."""
    from ingest.pipeline.run import StageClock, catalogue_tables
    from ingest.pipeline.s1_inputs.load import read_inputs
    from ingest.simulation import ingest_arguments, simulate

    sim = work / "sim"
    simulate("demo", seed, sim, progress=False, spectra_options=options)
    args = ingest_arguments(sim)
    inputs = read_inputs(args["clusters"], args["members"], args["spectra"], args["catalogue"],
                         None, settings(defaults), {})
    truth_stars, truth_clusters = read_truth(sim)
    result = {}
    for name, combine in rules(defaults).items():
        entry = {}
        for exclude in (True, False):
            cfg = config_with(defaults, combine, exclude)
            cluster, member, _ = catalogue_tables(*inputs, cfg, {}, StageClock(False))
            entry["stars"] = star_rates(member, truth_stars)
            entry[f"exclude_{str(exclude).lower()}"] = cluster_quality(
                cluster, member, truth_stars, truth_clusters)
        result[name] = entry
    return result


def print_tables(results: dict) -> None:
    """Markdown tables: flag rates, then the FLAG=1 exclusion comparison."""
    bins = [f"{lo}-{hi}" for lo, hi in EPOCH_BINS]
    print("| errors | rule | false positives (all) | " + " | ".join(f"FP {b} ep." for b in bins)
          + " | binaries recovered |")
    print("|---|---|---|" + "---|" * len(bins) + "---|")
    for scenario, by_rule in results.items():
        for rule, entry in by_rule.items():
            s = entry["stars"]
            fp = " | ".join(_pct(s[f"false_positive_{b}"]) for b in bins)
            print(f"| {scenario} | {rule} | {_pct(s['false_positive'])} | {fp} | "
                  f"{_pct(s['recovery'])} |")
    print("\n| errors | rule | exclude flagged | clusters | pull median | pull width | "
          "mean abs dRV | FLAG=1 stars | binaries in FLAG=1 | bright constant stars in FLAG=1 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for scenario, by_rule in results.items():
        for rule, entry in by_rule.items():
            for exclude in ("true", "false"):
                q = entry[f"exclude_{exclude}"]
                print(f"| {scenario} | {rule} | {exclude} | {q['clusters']} | "
                      f"{q['pull_median']:+.2f} | {q['pull_width']:.2f} | "
                      f"{q['mean_abs_drv']:.3f} | {q['flag1_stars']} | "
                      f"{q['binaries_in_flag1']} | {_pct(q['bright_constant_flag1'])} |")


def _pct(rate: dict) -> str:
    return f"{100 * rate['rate']:.1f}% (n={rate['n']})"


def main() -> None:
    from ingest.core import config as config_module

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=12345, help="simulation seed (demo preset)")
    args = parser.parse_args()
    defaults = config_module.load()
    results = {}
    for scenario, options in SCENARIOS.items():
        with tempfile.TemporaryDirectory(prefix="bench-rvvar-") as tmp:
            results[scenario] = run_scenario(options, args.seed, defaults, Path(tmp))
    print_tables(results)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "rv_variability.json"
    out.write_text(json.dumps({"seed": args.seed, "combine": defaults["combine"],
                               "results": results}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
