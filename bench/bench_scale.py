"""Benchmark: how the ingest's wall time and peak memory grow with the input size.

For each scale factor the simulator writes the preset with that many times its
clusters (members and spectra grow with them; ``ocvo simulate --scale``), then
each engine ingests it as a separate ``ocvo ingest`` process (``--engine E``
where the command accepts it).  Before each run the inputs (and the Dask engine's
HATS cache beside them) are read once, so every run starts from a warm page cache.
Per run and per stage it records the stage's
wall time (manifest ``stage_seconds``), the ingest process's running peak RSS
(manifest ``stage_peak_rss_mb``) and the peak total RSS of the ingest's whole
process tree sampled by a monitor thread (psutil; with the Dask engine this
includes the workers).  The sampled timeline is cut into stages backwards from
the process's exit, which follows the write stage within a fraction of a second.

``--baseline REF`` also runs the ingest code of git revision REF (exported with
``git archive``, run from that tree with ``PYTHONPATH``) on the ``--baseline-factors``,
so the table gives ratios to it measured in the same invocation.

Results: bench/results/scale_<preset>.json, .md (tables) and .png (log-log plot of
wall time and peak memory per stage against the input spectrum rows, with a
linear-growth guide line).

    bin/ocvo bench scale [--preset full] [--factors 0.25,0.5,1,2] [--engines local,dask]
        [--seed 12345] [--work bench/results/work] [--skip-simulate]
        [--baseline 40a1637] [--baseline-factors 1] [--interval 0.2] [--name N] [--append]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
STAGES = ("read", "crossmatch", "spectrum_qc", "combine", "estimate", "galactic",
          "gradients", "literature", "binaries", "write")
ENGINES = ("local", "dask")


# ---------------------------------------------------------------- inputs

def sim_name(preset: str, factor: float, seed: int) -> str:
    """Directory name of one scaled simulation (shared by runs and caches)."""
    return f"sim_{preset}_x{factor:g}_{seed}"


def find_simulation(name: str, work: Path) -> Path | None:
    """A finished simulation in ``work`` or in $OCVO_CACHE/sims, if any."""
    places = [work / name]
    if os.environ.get("OCVO_CACHE"):
        places.append(Path(os.environ["OCVO_CACHE"]) / "sims" / name)
    return next((p for p in places if (p / "simulation.json").is_file()), None)


def simulate(preset: str, factor: float, seed: int, work: Path, skip: bool) -> Path:
    """The simulation of ``preset`` x ``factor``: reused when present, written otherwise
    in a child process (so its memory and time do not count)."""
    name = sim_name(preset, factor, seed)
    found = find_simulation(name, work)
    if found is not None:
        return found
    if skip:
        print(f"--skip-simulate: no simulation {name} in {work} or $OCVO_CACHE/sims; "
              "run once without --skip-simulate", file=sys.stderr)
        raise SystemExit(2)
    subprocess.run([sys.executable, "-m", "ingest", "simulate", "--preset", preset,
                    "--scale", f"{factor:g}", "--seed", str(seed), "--out", str(work / name)],
                   check=True, cwd=ROOT)
    return work / name


def input_rows(sim: Path) -> dict[str, int]:
    """Row counts of the simulated inputs (simulation.json)."""
    counts = json.loads((sim / "simulation.json").read_text())["counts"]
    return {"clusters": counts["clusters"], "members": counts["members"],
            "spectra": counts["mrs"] + counts["lrs"]}


def ingest_command(python: str, sim: Path, out: Path, engine: str | None) -> list[str]:
    """The ``ocvo ingest`` command line of a simulation (as ingest_arguments builds it)."""
    meta = json.loads((sim / "simulation.json").read_text())
    files = meta["files"]
    command = [python, "-m", "ingest", "ingest", "--clusters", str(sim / files["clusters"]),
               "--members", str(sim / files["members"]),
               "--spectra", str(sim / files["mrs"]), "--spectra", str(sim / files["lrs"]),
               "--literature", f"litA={sim / files['litA']}",
               "--literature", f"litB={sim / files['litB']}",
               "--seed", str(meta["seed"]), "--out", str(out), "--force", "--no-progress"]
    return command + (["--engine", engine] if engine is not None else [])


# ---------------------------------------------------------------- engines

def accepts_engine_option(python: str, env: dict[str, str] | None = None) -> bool:
    """Whether this checkout's ``ocvo ingest`` has an ``--engine`` option."""
    result = subprocess.run([python, "-m", "ingest", "ingest", "--help"], capture_output=True,
                            text=True, env=env, cwd=ROOT)
    return "--engine" in result.stdout


def available_engines(python: str) -> list[str]:
    """local always; dask when ingest.pipeline.dask_engine imports and ``--engine`` is accepted."""
    engines = ["local"]
    if importlib.util.find_spec("ingest.pipeline.dask_engine") is not None and accepts_engine_option(python):
        engines.append("dask")
    return engines


def export_revision(ref: str, work: Path) -> Path:
    """The tree of git revision ``ref`` under ``work`` (git archive; reused when there)."""
    commit = subprocess.run(["git", "rev-parse", "--short", ref], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    target = work / f"baseline-{commit}"
    if not (target / "ingest" / "__main__.py").is_file():
        archive = subprocess.run(["git", "archive", commit, "ingest", "rd.xml", "resdir"],
                                 cwd=ROOT, check=True, capture_output=True).stdout
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
    return target


# ---------------------------------------------------------------- measuring

@dataclass
class TreeMonitor:
    """Samples the total RSS of a process and all its descendants in a thread."""

    pid: int
    interval: float
    samples: list[tuple[float, float]] = field(default_factory=list)   # (time, MB)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _total_mb(self, root) -> float:
        import psutil

        total = 0
        for process in [root, *root.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return total / 2**20

    def _run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
            while not self._stop.is_set():
                self.samples.append((time.perf_counter(), self._total_mb(root)))
                self._stop.wait(self.interval)
        except psutil.NoSuchProcess:
            return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def peak_between(self, start: float, end: float) -> float | None:
        values = [mb for t, mb in self.samples if start <= t <= end]
        return round(max(values), 1) if values else None


def stage_windows(stage_seconds: dict[str, float], end: float) -> dict[str, tuple[float, float]]:
    """Each stage's (start, end) on the perf_counter clock, laid backwards from ``end``."""
    windows, cursor = {}, end
    for name in reversed([s for s in STAGES if s in stage_seconds]):
        windows[name] = (cursor - stage_seconds[name], cursor)
        cursor -= stage_seconds[name]
    return {name: windows[name] for name in STAGES if name in windows}


def write_seconds(stdout: str, seconds: dict[str, float]) -> float:
    """The write stage's seconds: the manifest is written inside that stage, so only the
    summary line's total ("ingest finished: DIR  (T s)") holds it."""
    found = re.search(r"ingest finished: .*\(([0-9.]+) s\)", stdout)
    if found is None:
        raise SystemExit(f"no 'ingest finished' line in the ingest's output:\n{stdout[-2000:]}")
    return max(0.0, float(found.group(1)) - sum(seconds.values()))


def warm_page_cache(sim: Path) -> float:
    """Read the ingest's input files of ``sim`` and the Dask engine's HATS cache beside
    them once, so each run starts with its inputs in the page cache: without it a run
    after another size re-reads the multi-GB spectrum file from disk and its read stage
    times the disk (seen: 121 s instead of 13 s).  Returns the seconds it took."""
    files = json.loads((sim / "simulation.json").read_text())["files"]
    paths = [sim / files[k] for k in ("clusters", "members", "mrs", "lrs", "litA", "litB")]
    paths += sorted(p for p in (sim / ".ocvo-cache").rglob("*") if p.is_file())
    start = time.perf_counter()
    for path in paths:
        with open(path, "rb") as handle:
            while handle.read(1 << 24):
                pass
    return time.perf_counter() - start


def run_ingest(command: list[str], out: Path, interval: float,
               env: dict[str, str] | None = None, code: Path = ROOT) -> dict[str, Any]:
    """Run one ingest process in the checkout ``code`` (``python -m`` imports from the
    working directory first); its wall time, per-stage figures and tree memory."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=code, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    monitor = TreeMonitor(process.pid, interval)
    stdout, stderr = process.communicate()
    end = time.perf_counter()
    monitor.stop()
    if process.returncode != 0:
        print(f"ingest failed ({process.returncode}): {' '.join(command)}\n{stderr[-3000:]}",
              file=sys.stderr)
        raise SystemExit(1)
    record = json.loads((out / "manifest.json").read_text())
    seconds = dict(record["stage_seconds"])
    seconds["write"] = write_seconds(stdout, seconds)
    windows = stage_windows(seconds, end)
    return {
        "wall_seconds": round(end - start, 2),
        "stage_seconds": {k: round(v, 2) for k, v in seconds.items()},
        "stage_peak_rss_mb": record.get("stage_peak_rss_mb", {}),
        "stage_tree_peak_mb": {k: monitor.peak_between(*w) for k, w in windows.items()},
        "tree_peak_mb": round(max((mb for _, mb in monitor.samples), default=0.0), 1),
        "row_counts": record.get("row_counts", {}),
    }


# ---------------------------------------------------------------- reporting

def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"   # "-": stage shorter than one sample


def _ratio(new: float | None, old: float | None) -> str:
    return f"{new / old:.2f}" if new and old else "-"


def markdown(result: dict[str, Any]) -> str:
    """Tables: one row per run (totals), then per-stage seconds and tree peak memory."""
    runs = result["runs"]
    lines = ["| factor | engine | input spectrum rows | wall (s) | peak RSS, tree (MB) | "
             "output clusters | output spectra |", "|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['factor']:g} | {r['engine']} | {r['input_rows']['spectra']:,} | "
                     f"{r['wall_seconds']:.1f} | {r['tree_peak_mb']:.0f} | "
                     f"{r['row_counts'].get('cluster', '-')} | {r['row_counts'].get('spectrum', '-')} |")
    lines += ["", "Seconds per stage:", "",
              "| factor | engine | " + " | ".join(STAGES) + " |",
              "|---|---|" + "---|" * len(STAGES)]
    for r in runs:
        lines.append(f"| {r['factor']:g} | {r['engine']} | " + " | ".join(
            f"{r['stage_seconds'].get(s, 0):.2f}" for s in STAGES) + " |")
    lines += ["", "Peak RSS of the process tree during each stage (MB):", "",
              "| factor | engine | " + " | ".join(STAGES) + " |",
              "|---|---|" + "---|" * len(STAGES)]
    for r in runs:
        lines.append(f"| {r['factor']:g} | {r['engine']} | " + " | ".join(
            _mb(r["stage_tree_peak_mb"].get(s)) for s in STAGES) + " |")
    baselines = [r for r in runs if r["engine"].startswith("baseline")]
    if baselines:
        lines += ["", "Ratios to the baseline at the same factor (new / baseline):", "",
                  "| factor | engine | wall | peak RSS | " + " | ".join(STAGES) + " |",
                  "|---|---|---|---|" + "---|" * len(STAGES)]
        for base in baselines:
            for r in runs:
                if r["factor"] != base["factor"] or r is base:
                    continue
                lines.append(
                    f"| {r['factor']:g} | {r['engine']} / {base['engine']} | "
                    f"{_ratio(r['wall_seconds'], base['wall_seconds'])} | "
                    f"{_ratio(r['tree_peak_mb'], base['tree_peak_mb'])} | " + " | ".join(
                        _ratio(r["stage_seconds"].get(s), base["stage_seconds"].get(s))
                        for s in STAGES) + " |")
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    """Wall time and peak memory per stage against input spectrum rows, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(13, 5.5))
    styles = {"local": "-", "dask": "--"}
    for engine in sorted({r["engine"] for r in result["runs"]}):
        runs = sorted((r for r in result["runs"] if r["engine"] == engine),
                      key=lambda r: r["input_rows"]["spectra"])
        if len(runs) < 2:
            continue
        rows = np.array([r["input_rows"]["spectra"] for r in runs], float)
        style = styles.get(engine, ":")
        for i, stage in enumerate(STAGES):
            seconds = np.array([r["stage_seconds"].get(stage, np.nan) for r in runs])
            memory = np.array([r["stage_tree_peak_mb"].get(stage) or np.nan for r in runs])
            if np.nanmax(seconds) < 0.5:
                continue             # literature, binaries: too small to read on the plot
            color = f"C{i}"
            ax_t.plot(rows, seconds, style, marker="o", color=color, label=f"{stage} ({engine})")
            ax_m.plot(rows, memory, style, marker="o", color=color, label=f"{stage} ({engine})")
        total = np.array([r["wall_seconds"] for r in runs])
        peak = np.array([r["tree_peak_mb"] for r in runs])
        ax_t.plot(rows, total, style, marker="s", color="k", lw=2, label=f"whole run ({engine})")
        ax_m.plot(rows, peak, style, marker="s", color="k", lw=2, label=f"whole run ({engine})")
        if engine == "local":
            for ax, y in ((ax_t, total), (ax_m, peak)):
                ax.plot(rows, y[0] * rows / rows[0], color="grey", lw=6, alpha=0.25,
                        label="linear growth")
    for ax, label in ((ax_t, "wall time (s)"), (ax_m, "peak RSS of the process tree (MB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("input spectrum rows (MRS + LRS)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    ax_t.legend(fontsize=7, ncol=2)
    fig.suptitle(f"ingest cost vs input size, preset {result['preset']} x "
                 f"{', '.join(f'{f:g}' for f in result['factors'])} (simulated)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- main

def earlier_runs(path: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The runs of an earlier result of the same preset and seed (none if there is none)."""
    if not path.is_file():
        return []
    earlier = json.loads(path.read_text())
    if (earlier["preset"], earlier["seed"]) != (args.preset, args.seed):
        print(f"--append: {path} holds preset {earlier['preset']} seed "
              f"{earlier['seed']}, not {args.preset} seed {args.seed}", file=sys.stderr)
        raise SystemExit(2)
    return earlier["runs"]


def _factors(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive factors, got {text!r}")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="full")
    parser.add_argument("--factors", type=_factors, default=[0.25, 0.5, 1.0, 2.0])
    parser.add_argument("--engines", type=lambda s: s.split(","), default=None,
                        help="comma-separated (default: every available engine)")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--work", type=Path, default=RESULTS / "work")
    parser.add_argument("--skip-simulate", action="store_true",
                        help="only reuse simulations in --work or $OCVO_CACHE/sims")
    parser.add_argument("--baseline", metavar="REF",
                        help="also run the local ingest of git revision REF (e.g. 40a1637)")
    parser.add_argument("--baseline-factors", type=_factors, default=[1.0])
    parser.add_argument("--interval", type=float, default=0.2,
                        help="seconds between memory samples (default 0.2)")
    parser.add_argument("--name", default=None, help="result file stem (default scale_<preset>)")
    parser.add_argument("--append", action="store_true",
                        help="keep the runs of an earlier result file of the same name (same "
                             "preset and seed), replacing those of the same factor and engine")
    args = parser.parse_args()

    python = sys.executable
    args.work = args.work.resolve()
    available = available_engines(python)
    engines = args.engines or available
    missing = [e for e in engines if e not in available]
    if missing:
        print(f"engine(s) {', '.join(missing)} not available here (available: "
              f"{', '.join(available)}; dask needs ingest.pipeline.dask_engine and "
              "'ocvo ingest --engine')", file=sys.stderr)
        raise SystemExit(2)
    engine_option = accepts_engine_option(python)
    args.work.mkdir(parents=True, exist_ok=True)
    baseline_tree = export_revision(args.baseline, args.work) if args.baseline else None
    stem = RESULTS / (args.name or f"scale_{args.preset}")
    runs = earlier_runs(stem.with_suffix(".json"), args) if args.append else []
    # every simulation first, so no measurement overlaps the simulator's writing
    sims = {f: simulate(args.preset, f, args.seed, args.work, args.skip_simulate)
            for f in args.factors}
    for factor in args.factors:
        sim = sims[factor]
        rows = input_rows(sim)
        plan = [(e, e if engine_option else None, None, ROOT) for e in engines]
        if baseline_tree is not None and factor in args.baseline_factors:
            env = {**os.environ, "PYTHONPATH": str(baseline_tree)}
            plan.insert(0, (f"baseline@{baseline_tree.name.removeprefix('baseline-')}", None,
                            env, baseline_tree))
        for label, option, env, code in plan:
            out = args.work / f"out_{args.preset}_x{factor:g}_{label.replace('@', '-')}"
            print(f"[scale] {args.preset} x{factor:g} ({rows['spectra']:,} spectrum rows), "
                  f"{label} ...", file=sys.stderr, flush=True)
            warm = warm_page_cache(sim)
            load = os.getloadavg()[0]
            run = run_ingest(ingest_command(python, sim, out, option), out, args.interval, env,
                             code)
            run["load_average_at_start"] = round(load, 2)
            run["page_cache_warm_seconds"] = round(warm, 1)
            run.update(factor=factor, engine=label, input_rows=rows)
            print(f"[scale]   wall {run['wall_seconds']:.1f} s, tree peak "
                  f"{run['tree_peak_mb']:.0f} MB", file=sys.stderr, flush=True)
            runs = [r for r in runs if (r["factor"], r["engine"]) != (factor, label)] + [run]
    runs.sort(key=lambda r: (r["factor"], not r["engine"].startswith("baseline"), r["engine"]))
    factors = sorted({r["factor"] for r in runs})
    result = {"preset": args.preset, "seed": args.seed, "factors": factors,
              "engines": engines, "baseline": args.baseline, "cores": os.cpu_count(),
              "load_average": os.getloadavg(), "runs": runs}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    plot(result, stem.with_suffix(".png"))
    print(markdown(result))
    print(f"wrote {stem}.json, .md, .png")


if __name__ == "__main__":
    main()
