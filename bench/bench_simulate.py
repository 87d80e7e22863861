"""Benchmark the simulator and its streaming FITS writer.

1. Writer: N rows in the LAMOST MRS column layout, written by
   ingest.core.fitsstream.FitsTableWriter in chunks versus the baseline
   astropy Table.write of the same rows in one piece (same run, same disk).
2. Simulator: wall time and peak RSS of simulate() for a preset.

Usage: bin/ocvo bench simulate [--preset demo|full] [--rows N]
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def _mrs_like_rows(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    from ingest.simulation.output import MRS_COLUMNS

    rows = {}
    for name, dtype, _ in MRS_COLUMNS:
        dt = np.dtype(dtype)
        if dt.kind == "S":
            rows[name] = rng.integers(0, 10**8, n).astype(dt)
        elif dt.kind == "i":
            rows[name] = rng.integers(0, 1000, n).astype(dt)
        else:
            rows[name] = rng.normal(0.0, 1.0, n).astype(dt)
    return rows


def bench_writer(n_rows: int, n_chunks: int, directory: Path) -> dict[str, float]:
    """Seconds for the streaming writer (chunks) and for astropy Table.write (baseline)."""
    from astropy.table import Table

    from ingest.core.fitsstream import FitsTableWriter
    from ingest.simulation.output import MRS_COLUMNS

    rows = _mrs_like_rows(n_rows, np.random.default_rng(0))
    start = time.perf_counter()
    with FitsTableWriter(directory / "stream.fits", MRS_COLUMNS) as writer:
        for part in np.array_split(np.arange(n_rows), n_chunks):
            writer.write({k: v[part] for k, v in rows.items()})
    streamed = time.perf_counter() - start
    start = time.perf_counter()
    Table(rows).write(directory / "astropy.fits")
    baseline = time.perf_counter() - start
    return {"stream_s": streamed, "astropy_s": baseline, "ratio": streamed / baseline}


def bench_simulate(preset: str, directory: Path) -> dict[str, float]:
    from ingest.simulation import simulate

    start = time.perf_counter()
    summary = simulate(preset, 1, directory / "sim", progress=False)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {"seconds": seconds, "mrs_rows": summary["counts"]["mrs"],
            "mrs_rows_per_s": summary["counts"]["mrs"] / seconds, "peak_rss_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="demo", choices=["demo", "full"])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for the writer benchmark")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        writer = bench_writer(args.rows, 10, Path(tmp))
        print(f"writer, {args.rows} MRS-layout rows: FitsTableWriter (10 chunks) {writer['stream_s']:.2f} s, "
              f"baseline astropy Table.write {writer['astropy_s']:.2f} s, ratio {writer['ratio']:.2f}")
        sim = bench_simulate(args.preset, Path(tmp))
        print(f"simulate {args.preset}: {sim['seconds']:.1f} s, {sim['mrs_rows']} MRS rows "
              f"({sim['mrs_rows_per_s']:.0f} rows/s), peak RSS {sim['peak_rss_mb']:.0f} MB "
              f"(includes the writer benchmark)")


if __name__ == "__main__":
    main()
