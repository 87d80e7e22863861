"""Time the figure rendering of an ingest output directory (e.g. the demo preset).

Usage: bin/ocvo bench figures DIR [--jobs 1 2]
Renders into a scratch copy's figures/ so DIR is left untouched; prints the time for one
cluster, for all clusters per --jobs value, and for the catalogue figures.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from ingest.pipeline.s8_outputs import figure_jobs


def _timed(function, *args, **kwargs) -> tuple[float, list[Path]]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def main() -> None:
    """Time one cluster, all clusters per --jobs value, and the catalogue figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch) / "ingest"
        shutil.copytree(args.directory, work)
        clusters = figure_jobs.read_fits_table(work / "cluster.fits")
        busiest = clusters.sort_values("n_all", ascending=False).cluster_name.iloc[0]
        seconds, _ = _timed(figure_jobs.render_directory, work, [busiest], 1)
        print(f"one cluster ({busiest}, incl. reading the FITS files): {seconds:.2f} s")
        for jobs in args.jobs:
            shutil.rmtree(work / "figures", ignore_errors=True)
            seconds, paths = _timed(figure_jobs.render_directory, work, None, jobs)
            per = seconds / len(clusters)
            print(f"all {len(clusters)} clusters + catalogue, {jobs} job(s): {seconds:.1f} s "
                  f"({len(paths)} PNG, {per * 1000:.0f} ms per cluster)")


if __name__ == "__main__":
    main()
