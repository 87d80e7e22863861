"""Simulated input catalogues in the real formats, with injected truth.

No real LAMOST MRS rows of cluster members and no full Hunt & Reffert member
table are reachable offline, so the demo, the tests and the benchmarks run on
catalogues written here: Hunt & Reffert 2024 clusters and members, LAMOST MRS
DR11 and LRS DR8 rows, two literature tables, and the truth behind them.
See docs/simulator.md.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ingest.core import manifest
from ingest.core.files import replace_directory
from ingest.simulation import output, variants
from ingest.simulation.clusters import add_structure, hunt_cluster_table
from ingest.simulation.field import FieldOutput, simulate_field
from ingest.simulation.galaxy import draw_clusters
from ingest.simulation.literature import literature_table
from ingest.simulation.presets import Preset, describe, model as default_model, preset as get_preset, scaled

__all__ = ["simulate", "ingest_arguments"]


def ingest_arguments(sim_dir: Path, member_variant: str = "hunt2024") -> dict[str, Any]:
    """Keyword arguments of the ingest pipeline for a simulator output directory
    (``member_variant``: which member list, see :mod:`ingest.simulation.variants`)."""
    sim_dir = Path(sim_dir)
    files = output.FILES
    arguments = {
        "clusters": sim_dir / files["clusters"],
        "members": sim_dir / files["members"],
        "spectra": [(sim_dir / files["mrs"], "lamost-mrs"), (sim_dir / files["lrs"], "lamost-lrs")],
        "literature": [("litA", sim_dir / files["litA"], None), ("litB", sim_dir / files["litB"], None)],
        "catalogue": "hunt2024",
    }
    variant_files = variants.FILES.get(member_variant, {})
    if member_variant == "positional":
        arguments.update(members=sim_dir / variant_files["members"],
                         colmap=sim_dir / variant_files["colmap"])
    elif member_variant == "cg20":
        arguments.update(clusters=sim_dir / variant_files["clusters"],
                         members=sim_dir / variant_files["members"], catalogue="cg20")
    return arguments


def _concatenate(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([chunk[key] for chunk in chunks]) for key in chunks[0]}


class _Streams:
    """The four large products, written chunk by chunk."""

    def __init__(self, directory: Path, preset: str, seed: int):
        self.writers = {
            "members": output.open_writer(directory, "members", output.MEMBER_COLUMNS, preset, seed),
            "mrs": output.open_writer(directory, "mrs", output.MRS_COLUMNS, preset, seed),
            "lrs": output.open_writer(directory, "lrs", output.LRS_COLUMNS, preset, seed),
            "truth_stars": output.open_writer(directory, "truth_stars", output.TRUTH_STAR_COLUMNS, preset, seed),
        }

    def write(self, fields: list[FieldOutput]) -> None:
        for kind, writer in self.writers.items():
            writer.write(_concatenate([getattr(f, kind) for f in fields]))

    def counts(self) -> dict[str, int]:
        return {kind: writer.nrows for kind, writer in self.writers.items()}

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def _write_table(directory: Path, kind: str, columns, table, preset: str, seed: int) -> None:
    with output.open_writer(directory, kind, columns, preset, seed) as writer:
        writer.write(table)


def _stream_fields(truth: pd.DataFrame, p: Preset, model: dict, seed: int, directory: Path,
                   progress: bool) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
    """Generate every cluster field in blocks and append them to the big files."""
    from tqdm import tqdm

    records = truth.to_dict("records")
    n_with_spectra = np.zeros(len(records), dtype=np.int32)
    n_spectra = np.zeros(len(records), dtype=np.int32)
    streams = _Streams(directory, p.name, seed)
    try:
        with tqdm(total=len(records), desc="simulate", unit="cluster", disable=not progress) as bar:
            for start in range(0, len(records), p.block_clusters):
                block = range(start, min(start + p.block_clusters, len(records)))
                fields = [simulate_field(records[i], i, p, model, seed) for i in block]
                for i, field in zip(block, fields):
                    n_with_spectra[i], n_spectra[i] = field.n_with_spectra, field.n_spectra
                streams.write(fields)
                bar.update(len(block))
    finally:
        streams.close()
    return streams.counts(), n_with_spectra, n_spectra


def _truth_cluster_table(truth: pd.DataFrame) -> dict[str, np.ndarray]:
    """Truth columns as written; only the name column is renamed (Name, as in the Hunt table)."""
    return {name: truth["name" if name == "Name" else name].to_numpy()
            for name, _, _ in output.TRUTH_CLUSTER_COLUMNS}


def _write_products(p: Preset, model: dict, seed: int, directory: Path, progress: bool,
                    catalogue: Path | None, member_variant: str) -> dict[str, Any]:
    rng = np.random.default_rng([seed, 0])
    pairs_rng = np.random.default_rng([seed, 5])
    truth = add_structure(draw_clusters(p.n_clusters, model, rng, catalogue, pairs_rng), p, model, rng)
    truth["pair"] = np.where(truth["partner"] >= 0, truth["name"].to_numpy()[truth["partner"]], "")
    _write_table(directory, "clusters", output.CLUSTER_COLUMNS, hunt_cluster_table(truth, rng), p.name, seed)
    counts, n_with_spectra, n_spectra = _stream_fields(truth, p, model, seed, directory, progress)
    truth["n_with_spectra"], truth["n_spectra"] = n_with_spectra, n_spectra
    _write_table(directory, "truth_clusters", output.TRUTH_CLUSTER_COLUMNS, _truth_cluster_table(truth),
                 p.name, seed)
    lit_rng = np.random.default_rng([seed, 2])
    for key in ("litA", "litB"):
        table = literature_table(truth, model["literature"][key], lit_rng)
        table.to_csv(directory / output.FILES[key], index=False, lineterminator="\n")
        counts[key] = len(table)
    counts["clusters"] = len(truth)
    counts["members_true"] = int(truth["n_members"].sum())
    counts["members_with_spectra"] = int(n_with_spectra.sum())
    summary = {
        "simulated": True, "preset": p.name, "seed": seed, "counts": counts,
        "files": {key: name for key, name in output.FILES.items()},
        "cluster_catalogue": None if catalogue is None else
        {"name": Path(catalogue).name, "sha256": manifest.sha256(Path(catalogue))},
        "preset_config": describe(p), "model": model,
        "versions": manifest.versions(output.VERSIONED_PACKAGES),
    }
    if member_variant != "hunt2024":     # absent by default: default products stay unchanged
        summary["member_variant"] = {"name": member_variant, "files": variants.write_variant(
            directory, member_variant, output.FILES)}
    output.write_json(directory / output.FILES["simulation"], summary)
    (directory / output.FILES["readme"]).write_text(output.README.format(preset=p.name, seed=seed))
    return summary


def _check_target(out: Path) -> None:
    """Refuse to replace anything but an empty directory or an earlier simulation."""
    from ingest.core.errors import InputError

    if not out.exists():
        return
    if not out.is_dir() or (any(out.iterdir()) and not (out / output.FILES["simulation"]).is_file()):
        raise InputError(out, "exists and is neither empty nor a simulator output directory; "
                         "choose another --out")


def _model_with(spectra_options: dict[str, Any] | None) -> dict[str, Any]:
    """The default model with ``spectra_options`` replacing known ``spectra`` entries."""
    model = default_model()
    unknown = set(spectra_options or {}) - set(model["spectra"])
    if unknown:
        raise ValueError(f"unknown spectra options {sorted(unknown)}")
    model["spectra"].update(spectra_options or {})
    return model


def simulate(preset: str, seed: int, out: Path, progress: bool = True,
             cluster_catalogue: Path | None = None,
             spectra_options: dict[str, Any] | None = None,
             member_variant: str = "hunt2024", scale: float = 1.0) -> dict[str, Any]:
    """Write the simulated catalogues of ``preset`` into ``out``; return a summary (counts, files).

    ``scale`` multiplies the preset's number of clusters (and so members and spectra,
    which are drawn per cluster); the preset is then named e.g. ``full-x2``.

    ``member_variant`` "positional" or "cg20" adds a member list without Gaia ids or with
    Gaia DR2 ids and epoch (plus its cluster table) beside the default products.

    Files are written into a staging directory beside ``out`` and renamed at the
    end, so a failure never leaves a half-written simulation behind.
    ``spectra_options`` overrides entries of the model's ``spectra`` block (e.g.
    ``rv_err_underestimate``, ``night_zp_jitter_kms``) to test other error models.
    """
    p = scaled(get_preset(preset), scale)
    if member_variant not in variants.MEMBER_VARIANTS:
        raise ValueError(f"unknown member variant {member_variant!r}; "
                         f"known: {', '.join(variants.MEMBER_VARIANTS)}")
    out = Path(out)
    _check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        summary = _write_products(p, _model_with(spectra_options), int(seed), staging, progress,
                                  None if cluster_catalogue is None else Path(cluster_catalogue),
                                  member_variant)
        replace_directory(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return summary
