"""Validate the pipeline on the real public data in ../shared/data and write a report.

Runs the project's pipeline on Hunt & Reffert (2023) members x Gaia DR3 RVs
(cluster RVs vs HUNT2023), recomputes FU2022's orbits from CANTAT2020
astrometry, reads the LAMOST LRS sample with the LRS reader and cross-checks
the shared literature cluster tables.  Writes DIR/report.md (numbers with their
pass/fail criteria), DIR/figures/*.png, DIR/validation.json and
DIR/manifest.json.  Exits 0 with "skipped: ..." when the data are absent, 1 when
a criterion fails.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HELP = "run the pipeline on the real data in ../shared/data -> validation report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--out DIR, --data DIR, --no-progress."""
    parser.add_argument("--out", type=Path, default=Path("out") / "validation", metavar="DIR",
                        help="report directory (default: %(default)s)")
    parser.add_argument("--data", type=Path, metavar="DIR",
                        help="shared reference data (default: $OCVO_SHARED_DATA, else "
                             "the shared/data folder beside the checkout)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Skip (0) without data; else validate, print the verdict, 1 if any criterion fails."""
    from ingest.validation import default_data_dir, run_validation

    data = args.data if args.data is not None else default_data_dir()
    if not data.is_dir():
        print(f"ocvo validate: skipped: real reference data not found at {data}")
        return 0
    start = time.perf_counter()
    progress = not args.no_progress and sys.stderr.isatty()     # bars on a terminal only
    results = run_validation(data, args.out, progress=progress)
    failed = [c["name"] for c in results["criteria"] if c["passed"] is False]
    verdict = "all criteria pass" if not failed else f"{len(failed)} FAILED: {'; '.join(failed)}"
    print(f"ocvo validate: {verdict}; report in {args.out / 'report.md'} "
          f"({time.perf_counter() - start:.1f} s)")
    return 1 if failed else 0
