"""The demo: simulate the demo catalogues, ingest, draw figures, publish into DaCHS, serve TAP.

`bin/ocvo demo` runs `bin/ocvo setup` first.  It ends with the service
running on 127.0.0.1, the TAP URL, a pyvo snippet, TOPCAT instructions and
the answer of SELECT TOP 5 * FROM ocvo.cluster ORDER BY n_flag12 DESC
through pyvo.  Stop the service with `bin/ocvo stop`.
"""
from __future__ import annotations

import argparse
import sys
import time

HELP = "simulate + ingest + publish + serve the demo catalogue"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ingest.cli.demo import DEMO_SEED

    parser.add_argument("--seed", type=int, default=DEMO_SEED,
                        help="simulator seed (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from ingest.cli.demo import TOP5, build_and_serve, guide, top_clusters
    from ingest.publication.instance import Instance

    started = time.perf_counter()
    instance = Instance.from_env()
    progress = not args.no_progress and sys.stderr.isatty()
    seconds = build_and_serve(instance, seed=args.seed, progress=progress)
    print(guide(instance))
    print(f"{TOP5}  (through pyvo; a few of the columns):")
    print(top_clusters(instance))
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items())
    print(f"\ndemo finished in {time.perf_counter() - started:.1f} s ({stages})")
    return 0
