"""Benchmark: ingest.pipeline.s2_crossmatch.match against STILTS tmatch2 (sky, 3.5", find=all), same FITS files.

Both sides start from the same two FITS files on disk and end with the pair list
written as FITS, each in its own process (wall time and peak RSS from wait4).  All
spectra are written without a Gaia id, so every spectrum goes through the positional
match; ours also propagates proper motions to each spectrum's epoch, STILTS does
not (the pair counts differ only by the stars that moved).  The ratio ours/STILTS
comes from one run.  Inputs are either a simulator output directory (--sim) or
random clustered catalogues (--members/--spectra).  Results go to stdout and, as
JSON, to bench/results/crossmatch-<label>.json.

    bin/ocvo bench crossmatch --sim DIR [--label demo]
    bin/ocvo bench crossmatch --members 1300000 --spectra 10000000
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.table import Table

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent


def from_simulation(sim: Path) -> tuple[Table, Table]:
    """Members (ra, dec, pm) and spectra (ra, dec, epoch) of a simulator output, ids dropped."""
    from ingest.pipeline.s1_inputs import readers
    members, _ = readers.read_members(sim / "hunt2024_members.fits")
    spectra, _ = readers.read_spectra(sim / "lamost_mrs_dr11.fits")
    return (Table.from_pandas(members[["ra", "dec", "pmra", "pmdec"]].astype(float)),
            Table.from_pandas(spectra[["ra", "dec", "epoch"]].astype(float)))


def random_catalogues(n_members: int, n_spectra: int, seed: int) -> tuple[Table, Table]:
    """Members in ~7000 clusters (Hunt-like), spectra: 10% on members, the rest field stars."""
    rng = np.random.default_rng(seed)
    n_clusters = 7000
    c_ra = rng.uniform(0, 360, n_clusters)
    c_dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n_clusters)))
    size = rng.lognormal(np.log(0.2), 0.7, n_clusters)
    host = rng.integers(0, n_clusters, n_members)
    dec = np.clip(c_dec[host] + rng.normal(0, 1, n_members) * size[host], -89.9, 89.9)
    ra = (c_ra[host] + rng.normal(0, 1, n_members) * size[host] / np.cos(np.radians(dec))) % 360
    members = Table({"ra": ra, "dec": dec, "pmra": rng.normal(0, 8, n_members),
                     "pmdec": rng.normal(0, 8, n_members)})
    n_on = n_spectra // 10
    star = rng.integers(0, n_members, n_on)
    s_dec = np.concatenate([dec[star] + rng.normal(0, 1, n_on) / 3600,
                            np.degrees(np.arcsin(rng.uniform(-1, 1, n_spectra - n_on)))])
    s_ra = np.concatenate([ra[star], rng.uniform(0, 360, n_spectra - n_on)])
    order = rng.permutation(n_spectra)
    spectra = Table({"ra": s_ra[order], "dec": s_dec[order],
                     "epoch": rng.uniform(2011.8, 2023.5, n_spectra)})
    return members, spectra


OURS = """
import sys, time
import numpy as np, pandas as pd
from astropy.table import Table
from ingest.core import config
from ingest.pipeline.s2_crossmatch import match
members_path, spectra_path, out = sys.argv[1:4]
def frame(path):
    t = Table.read(path, memmap=True)
    f = pd.DataFrame({c: np.asarray(t[c], float) for c in t.colnames})
    f["source_id"] = pd.arrays.IntegerArray(np.zeros(len(f), np.int64), np.ones(len(f), bool))
    return f
members, spectra = frame(members_path), frame(spectra_path)
start = time.perf_counter()
pairs = match(members, spectra, config.settings(config.defaults()).crossmatch, "DR3")
match_s = time.perf_counter() - start
Table({"spec_index": pairs["spec_index"].to_numpy(np.int64),
       "member_index": pairs["member_index"].to_numpy(np.int64),
       "match_sep": pairs["match_sep"].to_numpy(float)}).write(out, overwrite=True)
print(match_s, len(pairs))
"""


def run_child(command: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in GB, stdout) of one child process, reaped with wait4."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        if process.returncode != 0:
            sys.exit(f"{command[0]} failed:\n{err.read().decode()[-2000:]}")
        return wall, usage.ru_maxrss / 1e6, out.read().decode()


def prepare(args: argparse.Namespace, work: Path) -> None:
    """Write members.fits and spectra.fits (run in a child, so the parent stays small and
    the children's peak RSS, which fork would inherit, is their own)."""
    members, spectra = (from_simulation(args.sim) if args.sim else
                        random_catalogues(args.members, args.spectra, args.seed))
    members.write(work / "members.fits")
    spectra.write(work / "spectra.fits")


def compare(args: argparse.Namespace, work: Path) -> dict:
    """Prepare the inputs, run ours and STILTS on them, and return the measurements."""
    env = dict(os.environ)
    sources = ["--sim", str(args.sim)] if args.sim else [
        "--members", str(args.members), "--spectra", str(args.spectra), "--seed", str(args.seed)]
    run_child([sys.executable, __file__, "--prepare", str(work), *sources], env)
    members_fits, spectra_fits = work / "members.fits", work / "spectra.fits"
    ours_wall, ours_rss, out = run_child(
        [sys.executable, "-c", OURS, str(members_fits), str(spectra_fits), str(work / "ours.fits")],
        env)
    match_s, ours_pairs = float(out.split()[0]), int(out.split()[1])
    stilts_wall, stilts_rss, _ = run_child(
        [args.stilts, f"-Xmx{args.stilts_heap}", "tmatch2", f"in1={members_fits}",
         f"in2={spectra_fits}", "matcher=sky", "values1=ra dec", "values2=ra dec", "params=3.5",
         "find=all", f"out={work / 'stilts.fits'}"])
    return {
        "members": len(Table.read(members_fits, memmap=True)),
        "spectra": len(Table.read(spectra_fits, memmap=True)),
        "ours_wall_s": round(ours_wall, 2), "ours_match_only_s": round(match_s, 2),
        "ours_peak_rss_gb": round(ours_rss, 2), "ours_pairs": ours_pairs,
        "stilts_wall_s": round(stilts_wall, 2), "stilts_peak_rss_gb": round(stilts_rss, 2),
        "stilts_pairs": len(Table.read(work / "stilts.fits", memmap=True)),
        "ratio_wall_ours_over_stilts": round(ours_wall / stilts_wall, 3),
        "ratio_match_only_over_stilts_wall": round(match_s / stilts_wall, 3),
        "cpu_count": os.cpu_count(), "load_average_at_end": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", type=Path, help="simulator output directory")
    parser.add_argument("--members", type=int, default=1_300_000)
    parser.add_argument("--spectra", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--label", default=None)
    parser.add_argument("--stilts", default="stilts")
    parser.add_argument("--stilts-heap", default="12g", help="JVM -Xmx for STILTS")
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        prepare(args, args.prepare)
        return
    label = args.label or ("sim" if args.sim else f"random-{args.members}x{args.spectra}")
    with tempfile.TemporaryDirectory(prefix="bench_xm_") as work:
        result = {"label": label, **compare(args, Path(work))}
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"crossmatch-{label}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
