"""Benchmark: wall time and peak memory per stage of the whole ingest on a simulator preset.

The simulation is written by a separate process (so its memory does not
count), then this process runs ``ingest.pipeline.run_ingest`` and reports, per
stage, the wall time and the process's peak resident memory at the end of the
stage (ru_maxrss: the running maximum, so a stage's own peak shows as the
first stage where the figure jumps).  Results go to stdout and, as JSON, to
bench/results/ingest_<preset>.json.

    bin/ocvo bench ingest [--preset demo|full]
        [--seed 12345] [--work bench/results/work] [--config CONFIG.toml]

Targets (issue 3): whole ingest <= 3 min and <= 8 GB at full scale; MC <= 60 s.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def simulate(preset: str, seed: int, directory: Path) -> float:
    """Write the simulation in a child process (reused when already there); its wall time."""
    if (directory / "simulation.json").exists():
        return 0.0
    start = time.perf_counter()
    code = ("import sys; from pathlib import Path; from ingest.simulation import simulate; "
            "simulate(preset=sys.argv[1], seed=int(sys.argv[2]), out=Path(sys.argv[3]), "
            "progress=False)")
    subprocess.run([sys.executable, "-c", code, preset, str(seed), str(directory)],
                   check=True, cwd=ROOT)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--work", type=Path, default=RESULTS / "work")
    parser.add_argument("--config", type=Path)
    args = parser.parse_args()
    from ingest.pipeline.run import run_ingest
    from ingest.simulation import ingest_arguments

    sim = args.work / f"sim_{args.preset}_{args.seed}"
    sim_seconds = simulate(args.preset, args.seed, sim)
    start = time.perf_counter()
    summary = run_ingest(**ingest_arguments(sim), out=args.work / f"ingest_{args.preset}",
                         config=args.config, seed=args.seed, progress=False, force=True)
    total = time.perf_counter() - start
    record = json.loads((args.work / f"ingest_{args.preset}" / "manifest.json").read_text())
    result = {
        "preset": args.preset, "seed": args.seed, "simulate_seconds": round(sim_seconds, 1),
        "ingest_seconds": round(total, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "stage_seconds": {k: round(v, 2) for k, v in summary["stage_seconds"].items()},
        "stage_peak_rss_mb": record["stage_peak_rss_mb"],
        "row_counts": summary["row_counts"],
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"ingest_{args.preset}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
