"""manifest.json: the provenance record written next to every ingest output.

It lets anyone tell exactly which files, settings and software produced a
catalogue (and whether the inputs were simulated), and it is what the
publish step and the service's provenance pages read.
"""
from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

PACKAGES = ("numpy", "astropy", "scipy", "pandas", "galpy", "pyarrow", "emcee")
CHUNK = 1 << 20


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def input_record(role: str, path: str | Path, **extra: Any) -> dict[str, Any]:
    """One input file: role, absolute path, size and checksum (plus e.g. survey or map)."""
    path = Path(path)
    record = {"role": role, "path": str(path.resolve()), "size": path.stat().st_size,
              "sha256": sha256(path)}
    record.update({k: (str(v) if isinstance(v, Path) else v)
                   for k, v in extra.items() if v is not None})
    return record


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Python and the scientific packages whose versions can change the outputs."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def output_record(path: Path, rows: int) -> dict[str, Any]:
    """One output table file as publish verifies it: name within DIR, checksum, rows."""
    return {"file": path.name, "sha256": sha256(path), "rows": rows}


def is_simulated(paths: list[str | Path]) -> bool:
    """True when any input lies in a simulator output directory (it holds simulation.json)."""
    return any((Path(p).resolve().parent / "simulation.json").exists() for p in paths)


def survey_records(spectra: pd.DataFrame, rv_offsets: dict[str, float],
                   undeclared: str) -> dict[str, dict[str, Any]]:
    """Per survey read: spectra, the RV zero-point offset applied and the parameter source.

    This is where a reader of the catalogue learns which RV scale and which
    stellar-parameter pipeline each survey's values are on.  The offset is the
    configured one of the survey's name, as ``s4_combine.apply_rv_offsets`` adds
    it; the ``undeclared`` survey (a map without a survey key) has none.
    """
    records = {}
    for survey, group in spectra.groupby("survey", sort=True):
        records[str(survey)] = {
            "spectra": len(group),
            "declared": survey != undeclared,
            "rv_offset_kms": float(rv_offsets.get(survey, 0.0)),
            "parameter_source": sorted(map(str, pd.unique(group["param_source"]))),
        }
    return records


def build(*, inputs: list[dict[str, Any]], outputs: dict[str, dict[str, Any]], config: dict,
          seed: int, row_counts: dict[str, int],
          rejections: dict[str, int], timings: dict[str, float], simulated: bool,
          surveys: dict[str, dict[str, Any]], catalogue: str) -> dict[str, Any]:
    """The manifest as a JSON-ready dict (timings rounded to ms)."""
    return {
        "format": "ocvo-ingest-manifest/1",
        "catalogue": catalogue,
        "simulated_input": simulated,
        "inputs": inputs,
        "outputs": outputs,
        "seed": seed,
        "config": config,
        "surveys": surveys,
        "versions": versions(),
        "row_counts": row_counts,
        "rejections": rejections,
        "stage_seconds": {k: round(v, 3) for k, v in timings.items()},
    }


def write(manifest: dict[str, Any], path: str | Path) -> Path:
    """Write the manifest as indented, key-sorted JSON."""
    path = Path(path)
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def read(path: str | Path) -> dict[str, Any]:
    """Read a manifest.json (file or output directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.json"
    return json.loads(path.read_text())
