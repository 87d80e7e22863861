"""report.md and validation.json of ``ocvo validate``: the numbers, each with its criterion."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ingest.validation.checks import robust_sigma

PULL_EDGES = np.linspace(-5, 5, 41)


def _json_ready(value: Any) -> Any:
    """NaN -> None and numpy scalars -> Python, recursively (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as a list of JSON-ready row dicts."""
    return _json_ready(frame.to_dict(orient="records"))


def pull_histogram(pulls: np.ndarray) -> dict[str, Any]:
    """Counts of the star-pull histogram (clipped to +-5, as drawn) and its summary."""
    pulls = pulls[np.isfinite(pulls)]
    counts, _ = np.histogram(np.clip(pulls, -5, 5), PULL_EDGES)
    return {"n": len(pulls), "median": float(np.median(pulls)),
            "robust_sigma": robust_sigma(pulls), "edges": PULL_EDGES.tolist(),
            "counts": counts.tolist()}


def write_json(results: dict[str, Any], path: Path) -> Path:
    """validation.json: strict, indented JSON of every number in the report and figures."""
    path.write_text(json.dumps(_json_ready(results), indent=2, allow_nan=False) + "\n")
    return path


def _markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table; floats rounded to ``digits``."""
    def cell(value: Any) -> str:
        if isinstance(value, (float, np.floating)):
            return "" if not math.isfinite(value) else f"{value:.{digits}f}"
        return str(value).replace("|", "\\|")      # a literal | would split the cell

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _number(value: int | float) -> str:
    """Counts as integers, measurements with 3 decimals."""
    return str(value) if isinstance(value, int) else f"{value:.3f}"


def _verdict(passed: bool | None) -> str:
    return {True: "pass", False: "**FAIL**", None: "info"}[passed]


def _criteria_table(rows: list[dict[str, Any]], check: str) -> str:
    frame = pd.DataFrame([{"quantity": r["name"], "value": _number(r["value"]),
                           "criterion": r["criterion"], "result": _verdict(r["passed"])}
                          for r in rows if r["check"] == check])
    return _markdown_table(frame)


def _lamost_table(sample: list[dict[str, Any]]) -> str:
    frame = pd.DataFrame([{
        "file": r["file"], "rows in file": r["rows_in_file"], "rows read": r["rows_read"],
        "QC ok": r["qc_ok"],
        "rejected and why": r["refused"] or (", ".join(f"{k} {v}" for k, v in
                                                       r["rejections"].items()) or "none")}
        for r in sample])
    return _markdown_table(frame)


def markdown(results: dict[str, Any], figure_dir: str) -> str:
    """The report text; figures are linked relative to the report (``figure_dir``)."""
    rows = results["criteria"]
    rv, orbit = results["cluster_rv"], results["orbits"]
    clusters = pd.DataFrame(rv["clusters"])[["cluster", "n_flag1", "rv", "rv_err", "rv_hunt",
                                             "rv_hunt_err", "n_rv_hunt", "diff", "diff_err",
                                             "pull"]]
    pulls = rv["star_pulls"]
    literature = pd.DataFrame(results["literature"]["summary"])
    verdict = "all criteria pass" if results["all_passed"] else "SOME CRITERIA FAIL"
    return f"""# Real-data validation report

Produced by `bin/ocvo validate` on {results["data"]} ({verdict}).
Inputs, checksums, versions and seed: `manifest.json`; every number: `validation.json`.

## 1. Cluster RVs: Hunt 2023 members x Gaia DR3 RVs vs HUNT2023

Members of `{results["inputs"]["hunt_members"]}` x the gyrointerp Gaia DR3 cross-matches
(joined by source_id), through the ingest pipeline's read, crossmatch, QC, combination and
Monte Carlo estimation, read with the `gaia-dr3-rvs` column map (survey `gaia-dr3` named explicitly:
no zero point is added). `rv`: our cluster RV (median of the FLAG=1 stars) and its error;
`rv_hunt`, `rv_hunt_err`, `n_rv_hunt`: HUNT2023's RV, e_RV and n_RV; pull = diff / diff_err.

{_markdown_table(clusters)}

{_criteria_table(rows, "cluster_rv")}

Star pulls about their cluster RV (RV members, FLAG >= 1; info): N = {pulls["n"]},
median {pulls["median"]:+.2f}, robust sigma {pulls["robust_sigma"]:.2f} (1 if Gaia DR3
errors explained the spread; wider from internal dispersion and unresolved binaries).

![cluster RV residuals]({figure_dir}/cluster_rv_residuals.png)
![RV pulls]({figure_dir}/rv_pulls.png)

## 2. Orbits: CANTAT2020 astrometry + FU2022 RVmed vs FU2022

Fu et al. (2022)'s setup (R0 8.21 kpc, McMillan17, circular speed 232.8 km/s, Solar
motion 11.1/12.24/7.25 km/s) with the project's `ingest.pipeline.s6_galactic.orbits`, clusters with FU2022
R_gc 7-12 kpc. Peri, apo and L_z relative (ours/FU2022 - 1), ecc absolute. FU2022 has no
Z_max column, so Z_max is not compared.

{_markdown_table(pd.DataFrame(orbit["summary"]), 4)}

{_criteria_table(rows, "orbits")}

![orbit comparison]({figure_dir}/orbit_comparison.png)

## 3. LAMOST LRS sample through the LAMOST LRS reader

`readers.read_spectra(..., survey="lamost-lrs")` then the spectrum QC (`quality.spectrum_qc`,
S/N >= {results["config"]["spectra"]["snr_min"]:g}).

{_lamost_table(results["lamost_lrs"])}

{_criteria_table(rows, "lamost_lrs")}

## 4. Literature cross-checks among the shared cluster tables

`ingest.pipeline.s7_products.literature` name matching (HUNT2023 aliases from AllNames; HUNT2023 only where
n_RV >= {results["literature"]["hunt_min_n_rv"]}). Differences are other minus reference;
robust sigma = 1.4826 MAD. Tolerance of an expected offset: max(0.5 km/s or 0.05 dex,
3 standard errors of the median, 1.2533 robust sigma / sqrt(N)).

{_markdown_table(literature)}

{_criteria_table(rows, "literature")}

![literature offsets]({figure_dir}/literature_offsets.png)

## Timing

{_markdown_table(pd.DataFrame(list(results["seconds"].items()), columns=["step", "seconds"]), 1)}
"""
