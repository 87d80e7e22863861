"""Real-data validation (``ocvo validate``): the pipeline on ../shared/data vs published values.

The shared data are public third-party files that are never part of the project, so
the validation is run where they exist (a developer's checkout, CI) and skipped
with a reason elsewhere.  It writes report.md, validation.json, PNG figures and a
manifest.json (inputs with checksums, versions, seed) into one directory.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ingest.core import config as config_module
from ingest.core import manifest
from ingest.core.paths import PROJECT_ROOT
from ingest.validation import checks, criteria, figures, report

DATA_ENV = "OCVO_SHARED_DATA"
FIGURE_DIR = "figures"
STEPS = ("cluster_rv", "orbits", "lamost_lrs", "literature", "figures")


def default_data_dir() -> Path:
    """$OCVO_SHARED_DATA, else the ``shared/data`` folder beside the checkout."""
    return Path(os.environ.get(DATA_ENV, PROJECT_ROOT.parent / "shared" / "data"))


def input_paths(data: Path) -> list[tuple[str, Path]]:
    """(role, path) of every shared file the validation reads, for the manifest."""
    paths = [("clusters", data / checks.HUNT2023), ("members", data / checks.HUNT_MEMBERS),
             *(("spectra", p) for p in checks.gaia_rv_files(data)),
             ("orbit_astrometry", data / checks.CANTAT2020),
             ("orbits_published", data / checks.FU2022),
             *(("lamost_lrs_sample", p) for p in sorted((data / checks.LAMOST_DIR).glob("*.csv"))),
             *(("literature", data / p) for p in checks.LITERATURE_TABLES.values())]
    roles: dict[Path, str] = {}
    for role, path in paths:
        roles.setdefault(path, role)       # a file read by two checks is listed once
    return [(role, path) for path, role in roles.items()]


def _run_checks(data: Path, cfg: dict, step: Callable[[str], Any],
                progress: bool) -> dict[str, Any]:
    """The four checks, each timed by ``step``; returns their tables."""
    with step("cluster_rv"):
        rv = checks.hunt_gaia_cluster_rvs(data, cfg)
        rv_comparison = checks.cluster_rv_comparison(rv["cluster"])
        star_pulls = checks.star_rv_pulls(rv["member"], rv["cluster"])
    with step("orbits"):
        orbit_table = checks.fu2022_orbits(data, cfg, progress)
        orbit_summary = checks.orbit_summary(orbit_table)
    with step("lamost_lrs"):
        lamost = checks.lamost_lrs_sample(data, cfg)
    with step("literature"):
        _, literature = checks.literature_crosschecks(data, cfg)
    return {"rv": rv, "rv_comparison": rv_comparison, "star_pulls": star_pulls,
            "orbit_table": orbit_table, "orbit_summary": orbit_summary, "lamost": lamost,
            "literature": literature}


def _criteria(tables: dict[str, Any]) -> list[dict[str, Any]]:
    return (criteria.cluster_rv_criteria(tables["rv_comparison"], tables["rv"]["spectrum"])
            + criteria.orbit_criteria(tables["orbit_summary"])
            + criteria.lamost_criteria(tables["lamost"])
            + criteria.literature_criteria(tables["literature"]))


def _draw(tables: dict[str, Any], figure_dir: Path) -> list[Path]:
    figure_dir.mkdir(parents=True, exist_ok=True)
    return [figures.cluster_rv_residuals(tables["rv_comparison"],
                                         figure_dir / "cluster_rv_residuals.png"),
            figures.rv_pulls(tables["star_pulls"], tables["rv_comparison"],
                             figure_dir / "rv_pulls.png"),
            figures.orbit_comparison(tables["orbit_table"], tables["orbit_summary"],
                                     figure_dir / "orbit_comparison.png"),
            figures.literature_offsets(tables["literature"],
                                       figure_dir / "literature_offsets.png")]


def _results(data: Path, cfg: dict, tables: dict[str, Any], rows: list[dict[str, Any]],
             seconds: dict[str, float]) -> dict[str, Any]:
    """Everything validation.json holds: criteria, the figures' numbers and the setup."""
    return {
        "format": "ocvo-validation/1", "data": str(data), "all_passed": criteria.all_passed(rows),
        "criteria": rows, "config": cfg,
        "inputs": {"hunt_members": str(checks.HUNT_MEMBERS),
                   "gaia_rv_map": str(checks.GAIA_RV_MAP.name)},
        "cluster_rv": {"clusters": report.records(tables["rv_comparison"]),
                       "star_pulls": report.pull_histogram(
                           tables["star_pulls"]["pull"].to_numpy(float)),
                       "rejections": tables["rv"]["rejections"].to_dict()},
        "orbits": {"setup": checks.FU_GALACTIC, "rgc_range_kpc": checks.FU_RGC_RANGE_KPC,
                   "summary": report.records(tables["orbit_summary"]),
                   "clusters": report.records(tables["orbit_table"])},
        "lamost_lrs": report.records(tables["lamost"]),
        "literature": {"hunt_min_n_rv": checks.HUNT_MIN_N_RV,
                       "summary": report.records(tables["literature"])},
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
    }


def run_validation(data: Path, out: Path, config: dict | None = None,
                   progress: bool = True) -> dict[str, Any]:
    """Run the four checks on ``data`` and write the report into ``out``; return the results."""
    from tqdm import tqdm

    cfg = config if config is not None else config_module.load()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    bar = tqdm(total=len(STEPS), unit="step", file=sys.stderr, disable=not progress)

    @contextmanager
    def step(name: str):
        bar.set_description(name)
        start = time.perf_counter()
        yield
        seconds[name] = time.perf_counter() - start
        bar.update(1)

    try:
        tables = _run_checks(data, cfg, step, progress)
        rows = _criteria(tables)
        with step("figures"):
            pngs = _draw(tables, out / FIGURE_DIR)
    finally:
        bar.close()
    results = _results(data, cfg, tables, rows, seconds)
    (out / "report.md").write_text(report.markdown(results, FIGURE_DIR))
    report.write_json(results, out / "validation.json")
    write_manifest(data, out, cfg, pngs, seconds)
    return results


def write_manifest(data: Path, out: Path, cfg: dict, pngs: list[Path],
                   seconds: dict[str, float]) -> Path:
    """manifest.json: inputs with sha256, versions, seed and config, output checksums."""
    outputs = [out / "report.md", out / "validation.json", *pngs]
    record = {
        "format": "ocvo-validation-manifest/1",
        "inputs": [manifest.input_record(role, path) for role, path in input_paths(data)],
        "outputs": {str(p.relative_to(out)): manifest.sha256(p) for p in outputs},
        "seed": cfg["seed"], "config": cfg, "versions": manifest.versions(),
        "step_seconds": {k: round(v, 3) for k, v in seconds.items()},
    }
    return manifest.write(record, out / "manifest.json")
