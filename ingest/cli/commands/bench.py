"""Run one of the benchmarks in bench/ (each compares against a named baseline in one run)."""
from __future__ import annotations

import runpy
import sys

from ingest.core.paths import BENCH_DIR

HELP = "run a benchmark from bench/ (crossmatch, ingest, montecarlo, publish, ...)"


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in BENCH_DIR.glob("bench_*.py"))


def add_arguments(parser) -> None:
    parser.add_argument("name", choices=available(), help="benchmark to run")
    parser.add_argument("args", nargs="...", help="arguments passed to the benchmark (see its --help)")


def run(args) -> int:
    script = BENCH_DIR / f"bench_{args.name}.py"
    sys.argv = [str(script), *args.args]
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 0
    return 0
