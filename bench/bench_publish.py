"""Benchmark: publication speed against plain `dachs imp`, cone-search latency, demo wall time.

1. Publishes an ingest output DIR (default: the full-scale output that
   ``bench/bench_ingest.py --preset full`` writes) into a fresh private
   instance (first publication: tables created), then again (the usual
   path: one TRUNCATE + COPY transaction), and times plain ``dachs imp`` of
   the same FITS files (row-by-row inserts) for the ratio.
2. With the service up: p50/p95 latency of a 0.1 deg cone on the member
   table, through TAP sync (ADQL CONTAINS) and through SCS, each request a
   fresh random member position, over a keep-alive HTTP session, the whole
   VOTable read.
3. ``--demo``: wall time of ``bin/ocvo demo`` on a warm machine (own state dir).

Results go to stdout and, as JSON, to bench/results/publish.json.

    bin/ocvo bench publish [--dir DIR] [--cones 200] [--demo]
        [--no-baseline]

Targets (issue 4): publish >= 10x faster than dachs imp; cone p50 <= 25 ms.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG_PORT, WEB_PORT = 54371, 18171
CONE_DEG = 0.1


def _timed(function, *args, **kwargs) -> float:
    started = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - started


def publication_times(out_dir: Path, instance, baseline: bool) -> dict:
    """First and repeated publication by step, and plain dachs imp of the same files."""
    from ingest.publication.instance import RD_ID
    from ingest.publication.publish import publish

    first = publish(out_dir, instance, say=lambda message: None)
    again = publish(out_dir, instance, say=lambda message: None)
    publish_import = sum(again[k] for k in ("validate", "convert", "copy", "files"))
    result = {
        "first_publication_seconds": first,
        "publication_seconds": again,
        "publication_import_seconds": round(publish_import, 2),
        "publication_total_seconds": round(sum(again.values()), 2),
    }
    if baseline:
        # data/ now holds DIR's FITS files: exactly what `dachs imp ocvo/q` reads.
        imp = _timed(instance.dachs, "imp", RD_ID)
        result.update({
            "dachs_imp_seconds": round(imp, 2),
            "ratio_dachs_imp_over_publish_import": round(imp / publish_import, 1),
            "ratio_dachs_imp_over_publish_total": round(imp / sum(again.values()), 1)})
    return result


def _percentiles(seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1), "n": len(ms)}


def cone_latency(instance, n_cones: int, seed: int = 1) -> dict:
    """p50/p95 of 0.1 deg member cones via TAP sync and SCS, after a warm-up."""
    import requests
    from astropy.io.votable import parse_single_table

    rows = instance.psql("-A", "-t", "-F", " ", "-c",
                         f"SELECT ra, dec FROM ocvo.member ORDER BY random() LIMIT {n_cones}"
                         ).stdout.split("\n")
    centres = [tuple(map(float, row.split())) for row in rows if row.strip()]
    rng = np.random.default_rng(seed)
    session = requests.Session()

    def tap(ra: float, dec: float) -> requests.Response:
        query = (f"SELECT * FROM ocvo.member WHERE 1 = CONTAINS(POINT(ra, dec), "
                 f"CIRCLE({ra}, {dec}, {CONE_DEG}))")
        return session.get(f"{instance.tap_url}/sync", params={
            "REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query}, timeout=60)

    def scs(ra: float, dec: float) -> requests.Response:
        return session.get(f"{instance.url}/ocvo/q/mcone/scs.xml",
                           params={"RA": ra, "DEC": dec, "SR": CONE_DEG}, timeout=60)

    result = {}
    for name, call in (("tap_sync", tap), ("scs", scs)):
        for ra, dec in centres[:10]:
            call(ra, dec).raise_for_status()
        seconds, bodies = [], []
        for index in rng.permutation(len(centres)):
            ra, dec = centres[index]
            started = time.perf_counter()
            response = call(ra, dec)
            response.raise_for_status()
            seconds.append(time.perf_counter() - started)
            bodies.append(response.content)
        rows = [len(parse_single_table(io.BytesIO(body)).array) for body in bodies]
        result[name] = {**_percentiles(seconds), "median_rows": float(np.median(rows))}
    return result


def demo_wall_time() -> float:
    """`bin/ocvo demo` end to end, in a state directory of its own (stopped afterwards)."""
    state = Path(tempfile.mkdtemp(prefix="ocvo-bench-demo-"))
    state.chmod(0o755)
    env = {**os.environ, "OCVO_STATE": str(state / "state"),
           "OCVO_PG_PORT": str(PG_PORT + 1), "OCVO_WEB_PORT": str(WEB_PORT + 1)}
    try:
        started = time.perf_counter()
        subprocess.run([str(ROOT / "bin" / "ocvo"), "demo", "--no-progress"], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - started
    finally:
        subprocess.run([str(ROOT / "bin" / "ocvo"), "stop"], env=env, check=False,
                       stdout=subprocess.DEVNULL)
        shutil.rmtree(state, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=RESULTS / "work" / "ingest_full",
                        help="ingest output to publish (default: %(default)s)")
    parser.add_argument("--cones", type=int, default=200, help="cones per protocol")
    parser.add_argument("--demo", action="store_true", help="also time bin/ocvo demo")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the plain dachs imp baseline (about 23 min at full scale)")
    args = parser.parse_args()
    if not (args.dir / "manifest.json").exists():
        parser.error(f"{args.dir} is no ingest output; run "
                     "bench/bench_ingest.py --preset full first or pass --dir")
    from ingest.publication.instance import Instance

    rows = {name: entry["rows"] for name, entry in
            json.loads((args.dir / "manifest.json").read_text())["outputs"].items()}
    state = Path(tempfile.mkdtemp(prefix="ocvo-bench-"))
    state.chmod(0o755)
    instance = Instance(state / "state", PG_PORT, WEB_PORT)
    try:
        result = {"dir": str(args.dir), "rows": rows,
                  **publication_times(args.dir, instance, not args.no_baseline)}
        instance.serve()
        result["cone_0.1deg_member"] = cone_latency(instance, args.cones)
    finally:
        instance.stop()
        shutil.rmtree(state, ignore_errors=True)
    if args.demo:
        result["demo_wall_seconds"] = round(demo_wall_time(), 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "publish.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
