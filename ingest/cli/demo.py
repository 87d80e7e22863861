"""The demo: simulate the demo catalogues, ingest, draw figures, publish and serve, then query.

Everything goes under the instance's state directory (demo/sim, demo/out),
so a repeated demo replaces the previous one and leaves the project clean.
"""
from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ingest.publication.instance import Instance
from ingest.publication.publish import publish

DEMO_SEED = 12345
TOP5 = "SELECT TOP 5 * FROM ocvo.cluster ORDER BY n_flag12 DESC"
SHOWN = ["cluster_name", "ra", "dec", "rv", "rv_err", "n_flag1", "n_flag12", "fe_h", "r_gc"]


def render_catalogue_figures(out: Path) -> int:
    """The catalogue figures (gradient, literature), into out/figures before publishing."""
    from ingest.pipeline.s8_outputs.figure_jobs import render_catalogue_directory

    return len(render_catalogue_directory(out))


def draw_cluster_figures_in_background(data: Path, log: Path) -> subprocess.Popen:
    """Per-cluster previews (~0.5 s a cluster) drawn after the service is up.

    They go straight into the published data directory, where the DataLink
    service lists each figure as soon as it exists, so the user does not wait
    for hundreds of PNGs before the first query.
    """
    with open(log, "wb") as handle:
        return subprocess.Popen([sys.executable, "-m", "ingest", "figures", str(data)],
                                stdout=handle, stderr=subprocess.STDOUT,
                                start_new_session=True)


def build_and_serve(instance: Instance, seed: int = DEMO_SEED, progress: bool = True,
                    say: Callable[[str], None] = print) -> dict[str, float]:
    """Simulate -> ingest -> catalogue figures -> publish -> serve (+ cluster figures); seconds."""
    from ingest.pipeline.run import run_ingest
    from ingest.simulation import ingest_arguments, simulate

    work = instance.state / "demo"
    sim, out = work / "sim", work / "out"
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    say(f"simulating the demo catalogues (seed {seed}) into {sim}")
    simulate(preset="demo", seed=seed, out=sim, progress=progress)
    seconds["simulate"] = time.perf_counter() - started

    started = time.perf_counter()
    say(f"ingesting into {out}")
    run_ingest(**ingest_arguments(sim), out=out, progress=progress,
               force=True)             # a repeated demo replaces its own earlier output
    seconds["ingest"] = time.perf_counter() - started

    started = time.perf_counter()
    say(f"rendered {render_catalogue_figures(out)} catalogue figures into {out / 'figures'}")
    seconds["figures"] = time.perf_counter() - started

    started = time.perf_counter()
    publish(out, instance, say)
    seconds["publish"] = time.perf_counter() - started

    started = time.perf_counter()
    instance.serve()
    seconds["serve"] = time.perf_counter() - started

    log = work / "figures.log"
    draw_cluster_figures_in_background(instance.resdir / "data", log)
    say(f"drawing the per-cluster preview figures in the background (log: {log});"
        " DataLink lists each one as soon as it is written")
    return seconds


def top_clusters(instance: Instance) -> str:
    """The demo's closing query, run through pyvo as a user would, as a text table."""
    import pyvo

    table = pyvo.dal.TAPService(instance.tap_url).search(TOP5).to_table()
    return "\n".join(table[SHOWN].pformat(max_width=-1))


def guide(instance: Instance) -> str:
    """How to reach the running service from pyvo and TOPCAT."""
    return f"""
The service is running (stop it with: bin/ocvo stop).
  TAP           {instance.tap_url}
  web pages     {instance.url}/
  TAP examples  {instance.url}/ocvo/q/ex/examples
  cone search   {instance.url}/ocvo/q/cone/scs.xml (clusters), .../ocvo/q/mcone/scs.xml (members)
  DataLink      {instance.url}/ocvo/q/dl/dlmeta?ID=<cluster_name> (NGC 2682 or NGC_2682), .../ocvo/q/mdl/dlmeta?ID=<member_key> (members)

pyvo:
  import pyvo
  tap = pyvo.dal.TAPService("{instance.tap_url}")
  print(tap.search("{TOP5}").to_table())

TOPCAT:
  VO > Table Access Protocol (TAP) Query; at the bottom enter TAP URL
  {instance.tap_url} and press "Use Service"; the ocvo tables are in the
  browser on the left, "Examples" lists the papers' queries; write ADQL
  and "Run Query".  Cone searches: VO > Cone Search, with the scs.xml URLs
  above.  The Activation action "Invoke Service" on a cluster row follows
  its DataLink (members, spectra, figures).
"""
