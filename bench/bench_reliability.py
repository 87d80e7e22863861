"""Benchmark: kill -9 of `ocvo publish` at many points, and throughput under load for one
DaCHS process against several behind nginx.

1. Kill -9.  Two demo catalogues A and B (simulator seeds 12345 and 4242,
   ingested; or --dir-a/--dir-b) alternate as the served catalogue.  For each
   kill point a ``bin/ocvo publish`` of the other catalogue runs and gets
   SIGKILL there (the publish process only, as a crash or an impatient user
   would: a psql in mid-COPY lives on); a reader polls the row counts of all
   tables in one statement meanwhile.  Then ``bin/ocvo serve`` must succeed at
   once, and the instance must serve exactly A or B (every table's count, the
   database's publication record, data/publication.json, the MOC and
   DataLink files agreeing), with no ``STATE/publish-*`` left and no reader
   having seen a mix.  A kill "loses" when any of that fails.
2. Load.  For 1, 8, 32 and 64 concurrent clients (keep-alive HTTP, each
   request's whole answer read), a mix in equal parts of an SCS member cone
   (0.1 deg at a random member), a TAP sync cone (ADQL CONTAINS) and a TAP
   sync GROUP BY over the member table, for --seconds each: requests/s,
   p50/p95/p99 latency and errors (HTTP error, no VOTable, QUERY_STATUS
   ERROR); once with one DaCHS process on the web port (the old arrangement)
   and once with --workers processes behind nginx; the ratio of requests/s.
3. Optionally (--corpus) the bad-input corpus tests, if present, via pytest.

Results go to stdout and to bench/results/reliability.json and reliability.md.

    bin/ocvo bench reliability [--dir-a A --dir-b B] [--seconds 20] [--clients 1,8,32,64]
        [--workers N] [--skip-kills] [--skip-load] [--corpus]

Ports: OCVO_PG_PORT / OCVO_WEB_PORT (default 54381 / 18181); the instance
lives in bench/results/work/reliability/state and is stopped at the end.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
WORK = RESULTS / "work" / "reliability"
SEEDS = {"A": 12345, "B": 4242}
TABLES = ("cluster", "member", "spectrum", "gradient", "lit_comparison", "lit_summary",
          "binary_candidate")
# Kill points: a line `ocvo publish` prints, or something observed while it runs.
KILL_POINTS = (
    ("after validation", "line", "validate:"),
    ("after the site metadata", "line", "instance:"),
    ("while converting to CSV", "scratch_csv", None),
    ("after staging, before COPY", "line", "convert:"),
    ("during the COPY transaction", "child", ("psql", "-1")),
    ("right after the COPY commit", "line", "copy:"),
    ("after the file swap", "line", "files:"),
    ("during dachs imp -m", "child", ("dachs", "imp")),
    ("during dachs limits (MOC)", "child", ("dachs", "limits")),
    ("during dachs pub", "child", ("dachs", "pub")),
)


# ------------------------------------------------------------------ setup
def _ingest(name: str, seed: int) -> Path:
    """A demo catalogue (simulate + ingest), made once under WORK."""
    from ingest.pipeline.run import run_ingest
    from ingest.simulation import ingest_arguments, simulate

    base = WORK / name
    if (base / "out" / "manifest.json").exists():
        return base / "out"
    shutil.rmtree(base, ignore_errors=True)
    simulate(preset="demo", seed=seed, out=base / "sim", progress=False)
    run_ingest(**ingest_arguments(base / "sim"), out=base / "out", progress=False)
    return base / "out"


def _env(instance) -> dict[str, str]:
    return {**os.environ, "OCVO_STATE": str(instance.state),
            "OCVO_PG_PORT": str(instance.pg_port), "OCVO_WEB_PORT": str(instance.web_port),
            "PYTHONUNBUFFERED": "1"}


def _ocvo(instance, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "bin" / "ocvo"), *args], env=_env(instance),
                          capture_output=True, text=True, timeout=timeout)


def _rows(out_dir: Path) -> dict[str, int]:
    outputs = json.loads((out_dir / "manifest.json").read_text())["outputs"]
    return {t: int(outputs[t]["rows"]) for t in TABLES}


# ------------------------------------------------------------------ kill -9
CHECKS = ("one_catalogue", "record_matches_rows", "files_match_rows", "metadata_complete",
          "datalink_files_present", "no_scratch", "tap_answers", "serve_first_try", "killed")
COUNTS_SQL = "SELECT " + ", ".join(f"(SELECT count(*) FROM ocvo.{t})" for t in TABLES)


def _served_counts(instance) -> dict[str, int]:
    values = instance.query_value(COUNTS_SQL).split("|")
    return dict(zip(TABLES, map(int, values)))


class Reader(threading.Thread):
    """Polls all row counts in one statement; notes any combination that is neither A nor B."""

    def __init__(self, instance, allowed: list[dict[str, int]]):
        super().__init__(daemon=True)
        self.instance, self.allowed = instance, allowed
        self.stop, self.reads, self.mixed, self.failures = threading.Event(), 0, [], 0

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                counts = _served_counts(self.instance)
            except Exception:  # PostgreSQL briefly busy or restarting: not a mix
                self.failures += 1
                time.sleep(0.1)
                continue
            self.reads += 1
            if counts not in self.allowed:
                self.mixed.append(counts)
            time.sleep(0.02)


def _child_running(parent: int, words: tuple[str, ...]) -> bool:
    """A process with all these arguments below the publish process (psql -1 is the COPY
    transaction; dachs imp/limits/pub run via runuser when root)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            arguments = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if all(_has_argument(arguments, w.encode()) for w in words) \
                and _descends(int(proc.name), parent):
            return True
    return False


def _has_argument(arguments: list[bytes], word: bytes) -> bool:
    """word is one of the arguments, or the program's file name (/usr/.../bin/psql)."""
    return any(a == word or a.endswith(b"/" + word) for a in arguments)


def _descends(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int((Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1]).split()[1])
        except (OSError, IndexError, ValueError):
            return False
    return False


def _lines(process: subprocess.Popen, seen: list[str]) -> threading.Thread:
    def read() -> None:
        for line in process.stdout:
            seen.append(line.strip())
    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _kill_at(instance, process: subprocess.Popen, kind: str, what,
             timeout: float = 300) -> bool:
    """Wait for the kill point, SIGKILL the publish process; False if it ended first."""
    seen: list[str] = []
    _lines(process, seen)
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        hit = ((kind == "line" and any(line.startswith(what) for line in seen))
               or (kind == "scratch_csv" and any(instance.state.glob("publish-*/*.csv")))
               or (kind == "child" and _child_running(process.pid, what)))
        if hit:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.01)
    process.wait()
    return False


def _check_after_recovery(instance, catalogues: dict[str, Path]) -> dict:
    """Exactly one catalogue, consistently: counts, database record, files, no scratch."""
    from ingest.core import manifest

    counts = _served_counts(instance)
    matches = [name for name, d in catalogues.items() if _rows(d) == counts]
    record = json.loads(instance.query_value(
        "SELECT row_to_json(p) FROM ocvo_admin.publication AS p") or "{}")
    files = json.loads((instance.resdir / "data" / "publication.json").read_text())
    shas = {name: manifest.sha256(d / "manifest.json") for name, d in catalogues.items()}
    served = matches[0] if len(matches) == 1 else None
    figures_ok = served is not None and all(
        (instance.resdir / "data" / name).exists() for name in files.get("files", []))
    checks = {  # the names are CHECKS
        "one_catalogue": served is not None,
        "record_matches_rows": served is not None and record.get("manifest_sha256") == shas[served],
        "files_match_rows": served is not None and files.get("ingest_manifest_sha256") == shas[served],
        "metadata_complete": record.get("metadata_pending") is False,
        "datalink_files_present": figures_ok,
        "no_scratch": not list(instance.state.glob("publish-*")),
        "tap_answers": _ocvo(instance, "status").returncode == 0,
    }
    return {"served": served, "counts": counts, **checks,
            "lost": not all(checks.values())}


def kill_suite(instance, catalogues: dict[str, Path]) -> list[dict]:
    """One kill -9 per point, alternating the publication's target catalogue."""
    allowed = [_rows(d) for d in catalogues.values()]
    results = []
    for point, kind, what in KILL_POINTS:
        served = [n for n, d in catalogues.items() if _rows(d) == _served_counts(instance)][0]
        target = "B" if served == "A" else "A"
        reader = Reader(instance, allowed)
        reader.start()
        started = time.monotonic()
        process = subprocess.Popen([str(ROOT / "bin" / "ocvo"), "publish",
                                    str(catalogues[target])], env=_env(instance),
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        killed = _kill_at(instance, process, kind, what)
        killed_after = time.monotonic() - started
        recovery_started = time.monotonic()
        serve = _ocvo(instance, "serve")
        recovery = time.monotonic() - recovery_started
        time.sleep(0.5)
        reader.stop.set()
        reader.join()
        check = _check_after_recovery(instance, catalogues)
        check.update(point=point, target=target, previous=served, killed=killed,
                     killed_after_s=round(killed_after, 2),
                     serve_first_try=serve.returncode == 0,
                     recovery_s=round(recovery, 2), reader_reads=reader.reads,
                     reader_mixes=len(reader.mixed))
        check["lost"] = check["lost"] or not check["serve_first_try"] or bool(reader.mixed) \
            or not killed
        print(f"  kill -9 {point:32s} -> serves {check['served']} "
              f"(was {served}, target {target}); serve {'ok' if serve.returncode == 0 else 'FAILED'}"
              f" {recovery:.1f} s; reader {reader.reads} reads, {len(reader.mixed)} mixed; "
              f"{'LOST' if check['lost'] else 'ok'}", flush=True)
        failed = [name for name in CHECKS if not check[name]]
        if failed:
            print(f"    failed checks: {failed}", flush=True)
        if serve.returncode != 0:
            print(serve.stdout[-1500:], serve.stderr[-1500:])
        results.append(check)
    return results


# ------------------------------------------------------------------ load
def _requests(instance, seed: int) -> list[tuple[str, str]]:
    """A shuffled list of (kind, path): SCS cones, TAP sync cones, TAP GROUP BY."""
    rng = random.Random(seed)
    positions = [tuple(map(float, row.split("|"))) for row in instance.query_value(
        "SELECT string_agg(ra || '|' || dec, E'\\n') FROM "
        "(SELECT ra, dec FROM ocvo.member ORDER BY member_key LIMIT 2000) AS m").splitlines()]
    group_by = ("SELECT cluster_name, COUNT(*) AS n, AVG(rv) AS rv FROM ocvo.member "
                "GROUP BY cluster_name")
    paths = []
    for i in range(3000):
        ra, dec = rng.choice(positions)
        if i % 3 == 0:
            paths.append(("scs", "/ocvo/q/mcone/scs.xml?" + urllib.parse.urlencode(
                {"RA": ra, "DEC": dec, "SR": 0.1})))
        else:
            query = (group_by if i % 3 == 2 else
                     "SELECT * FROM ocvo.member WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), "
                     f"CIRCLE('ICRS', {ra}, {dec}, 0.1))")
            paths.append(("tap_group_by" if i % 3 == 2 else "tap_cone",
                          "/tap/sync?" + urllib.parse.urlencode(
                              {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query})))
    rng.shuffle(paths)
    return paths


def _client(port: int, paths: list, start: int, stop_at: float, measure_from: float,
            out: list, errors: list) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    i = start
    while time.monotonic() < stop_at:
        kind, path = paths[i % len(paths)]
        i += 1
        began = time.monotonic()
        ok = False
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
            ok = (response.status == 200 and b"<VOTABLE" in body
                  and b'value="ERROR"' not in body)
        except (OSError, http.client.HTTPException):
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        ended = time.monotonic()
        if began >= measure_from and ended <= stop_at:
            (out if ok else errors).append((kind, ended - began))
    connection.close()


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))] if values \
        else float("nan")


def load_run(instance, clients: int, seconds: float, paths: list) -> dict:
    warm_up = min(3.0, seconds / 5)
    now = time.monotonic()
    measure_from, stop_at = now + warm_up, now + warm_up + seconds
    out, errors = [], []
    threads = [threading.Thread(target=_client, args=(instance.web_port, paths,
                                                      k * 97, stop_at, measure_from, out,
                                                      errors)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies = [s for _, s in out]
    return {"clients": clients, "requests": len(out), "errors": len(errors),
            "req_per_s": round(len(out) / seconds, 1),
            "p50_ms": round(1000 * _percentile(latencies, 50), 1),
            "p95_ms": round(1000 * _percentile(latencies, 95), 1),
            "p99_ms": round(1000 * _percentile(latencies, 99), 1),
            "by_kind": {kind: len([1 for k, _ in out if k == kind])
                        for kind in ("scs", "tap_cone", "tap_group_by")}}


def load_suite(instance, clients: list[int], seconds: float, workers: int) -> dict:
    paths = _requests(instance, seed=7)
    arrangements = {}
    for label, count in (("one DaCHS process", 1), (f"{workers} DaCHS processes + nginx",
                                                    workers)):
        instance.serve(workers=count)
        rows = []
        for n in clients:
            row = load_run(instance, n, seconds, paths)
            print(f"  {label:30s} {n:3d} clients: {row['req_per_s']:6.1f} req/s, p50 "
                  f"{row['p50_ms']:7.1f} ms, p95 {row['p95_ms']:7.1f}, p99 {row['p99_ms']:7.1f},"
                  f" errors {row['errors']}", flush=True)
            rows.append(row)
        arrangements[label] = {"workers": count, "rows": rows}
    one, many = (arrangements[k]["rows"] for k in arrangements)
    ratios = {str(a["clients"]): round(b["req_per_s"] / a["req_per_s"], 2)
              for a, b in zip(one, many) if a["req_per_s"]}
    best = round(max(r["req_per_s"] for r in many) / max(r["req_per_s"] for r in one), 2)
    return {"arrangements": arrangements, "ratio_by_clients": ratios, "ratio_peak": best}


# ------------------------------------------------------------------ report
def _load_ps() -> str:
    """The busiest other processes while the bench ran (what else used the machine)."""
    result = subprocess.run(["ps", "-eo", "pcpu,user,comm", "--sort=-pcpu"],
                            capture_output=True, text=True)
    return "\n".join(result.stdout.splitlines()[:12])


def markdown(report: dict) -> str:
    lines = [f"# Reliability bench ({report['date']}, {report['cores']} cores)", ""]
    if "kills" in report:
        lost = sum(k["lost"] for k in report["kills"])
        lines += [f"## kill -9 of `ocvo publish`: {len(report['kills'])} points, {lost} losses",
                  "", "| point | was | target | serves after `ocvo serve` | serve first try | "
                  "reader reads / mixes | scratch left | lost |", "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {k['point']} | {k['previous']} | {k['target']} | {k['served']} | "
                  f"{k['serve_first_try']} | {k['reader_reads']} / {k['reader_mixes']} | "
                  f"{not k['no_scratch']} | {k['lost']} |" for k in report["kills"]]
        lines.append("")
    if "load" in report:
        load = report["load"]
        lines += ["## Load: SCS cone / TAP cone / TAP GROUP BY in equal parts", "",
                  "| arrangement | clients | req/s | p50 ms | p95 ms | p99 ms | errors |",
                  "|---|---|---|---|---|---|---|"]
        for label, arrangement in load["arrangements"].items():
            lines += [f"| {label} | {r['clients']} | {r['req_per_s']} | {r['p50_ms']} | "
                      f"{r['p95_ms']} | {r['p99_ms']} | {r['errors']} |"
                      for r in arrangement["rows"]]
        lines += ["", f"Ratio (req/s, several processes / one) by clients: "
                      f"{load['ratio_by_clients']}; peak against peak: {load['ratio_peak']}", ""]
    if "corpus" in report:
        lines += [f"## Bad-input corpus: {report['corpus']['summary']}", ""]
    lines += ["## Other processes at the end", "", "```", report["machine_at_end"], "```", ""]
    return "\n".join(lines)


def main() -> int:
    from ingest.publication.instance import Instance, default_workers
    from ingest.publication.publish import publish

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir-a", type=Path, help="catalogue A (default: demo seed 12345)")
    parser.add_argument("--dir-b", type=Path, help="catalogue B (default: demo seed 4242)")
    parser.add_argument("--seconds", type=float, default=20, help="measured seconds per load row")
    parser.add_argument("--clients", default="1,8,32,64")
    parser.add_argument("--workers", type=int, default=None,
                        help="DaCHS processes behind nginx (default: as ocvo serve, cores + 1)")
    parser.add_argument("--skip-kills", action="store_true")
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--corpus", action="store_true",
                        help="also run the bad-input corpus tests (tests/test_bad_input*.py)")
    args = parser.parse_args()
    args.workers = args.workers or default_workers()

    WORK.mkdir(parents=True, exist_ok=True)
    for parent in [WORK, *WORK.parents]:  # PostgreSQL and DaCHS run as other users
        if parent.stat().st_mode & 0o005 != 0o005:
            parent.chmod(parent.stat().st_mode | 0o005)
    catalogues = {"A": args.dir_a or _ingest("A", SEEDS["A"]),
                  "B": args.dir_b or _ingest("B", SEEDS["B"])}
    instance = Instance(WORK / "state", int(os.environ.get("OCVO_PG_PORT", 54381)),
                        int(os.environ.get("OCVO_WEB_PORT", 18181)))
    report: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "cores": os.cpu_count(),
                    "catalogues": {k: {"dir": str(v), "rows": _rows(v)}
                                   for k, v in catalogues.items()}}
    try:
        publish(catalogues["A"], instance, say=lambda message: None, allow_shrink=True)
        instance.serve(workers=args.workers)
        if not args.skip_kills:
            print("kill -9 of ocvo publish:", flush=True)
            report["kills"] = kill_suite(instance, catalogues)
            report["kill_points"] = len(report["kills"])
            report["kill_losses"] = sum(k["lost"] for k in report["kills"])
        if not args.skip_load:
            print("load:", flush=True)
            report["load"] = load_suite(instance, [int(c) for c in args.clients.split(",")],
                                        args.seconds, args.workers)
        if args.corpus:
            corpus = sorted(str(p) for p in (ROOT / "tests").glob("test_bad_input*.py"))
            result = subprocess.run([sys.executable, "-m", "pytest", "-q", *corpus],
                                    cwd=ROOT, capture_output=True, text=True)
            report["corpus"] = {"files": corpus, "exit": result.returncode,
                                "summary": result.stdout.strip().splitlines()[-1:]}
        report["machine_at_end"] = _load_ps()
    finally:
        instance.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "reliability.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "reliability.md").write_text(markdown(report))
    print(markdown(report))
    return 1 if report.get("kill_losses") else 0


if __name__ == "__main__":
    sys.exit(main())
