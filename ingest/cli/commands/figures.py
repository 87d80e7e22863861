"""Render the PNG figures of an ingest output directory into DIR/figures.

Per cluster: CMD coloured by RV and [Fe/H], Kiel diagram, RV distribution with
the Gaussian fit (DIR/figures/cluster/<name>_{cmd,kiel,rv}.png); for the
catalogue (when no --cluster is given): the [Fe/H] gradient with the knee,
[Fe/H] per age bin and the literature comparisons (DIR/figures/catalogue/).
Run on demand, separately from ingest, in --jobs processes.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

HELP = "render CMD/Kiel/RV figures per cluster and catalogue figures (PNG)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """DIR, --cluster NAME (repeatable), --jobs N."""
    parser.add_argument("directory", type=Path, metavar="DIR", help="ingest output directory")
    parser.add_argument("--cluster", action="append", default=[], metavar="NAME",
                        help="only this cluster (repeatable); default: all and the catalogue")
    parser.add_argument("--jobs", type=int, default=2, help="processes (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    """Render and report how many files were written and how long it took."""
    from ingest.pipeline.s8_outputs.figure_jobs import render_directory

    start = time.perf_counter()
    paths = render_directory(args.directory, args.cluster or None, max(args.jobs, 1))
    print(f"ocvo figures: {len(paths)} PNG files in {args.directory / 'figures'} "
          f"({time.perf_counter() - start:.1f} s)")
    return 0
