"""The ingest pipeline: input files -> the published tables and their manifest.

Stages: read -> crossmatch -> spectrum QC -> per-star combination -> Monte
Carlo cluster estimates -> Galactic positions and orbits -> gradients ->
literature comparison -> binary clusters -> write.  All outputs go to a
temporary directory next to ``out`` that replaces ``out`` only when every
table and the manifest were written, so a failed run never leaves a
half-written directory and never damages a previous result.
"""
from __future__ import annotations

import resource
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ingest.core import config as config_module
from ingest.core import manifest
from ingest.pipeline.s8_outputs import outdir, writers
from ingest.pipeline.s1_inputs.load import (
    LiteratureArg, SpectraArg, add_counts, check_distinct_spectra, input_paths,
    input_records, read_inputs, release_warnings, spectra_entries, spectra_read,
    spectrum_gaia_releases)
from ingest.pipeline.s4_combine import apply_rv_offsets
from ingest.pipeline.s8_outputs.tables import cluster_rows, member_rows, spectrum_rows
from ingest.core.config import Crossmatch, Settings
from ingest.core.errors import CatalogueError, InputError
from ingest.core.files import replace_directory
from ingest.core.vocabulary import MEMBER_FLAGS, TABLES

STAGES = ("read", "crossmatch", "spectrum_qc", "combine", "estimate", "galactic",
          "gradients", "literature", "binaries", "write")


class StageClock:
    """Wall time and peak RSS after each stage, plus a progress bar over the stages."""

    def __init__(self, progress: bool):
        from tqdm import tqdm

        self.seconds: dict[str, float] = {}
        self.peak_rss_mb: dict[str, float] = {}
        self.bar = tqdm(total=len(STAGES), unit="stage", file=sys.stderr,
                        disable=not progress)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time one stage and record the process's peak resident memory after it."""
        self.bar.set_description(name)
        start = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - start
        self.peak_rss_mb[name] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def matched_spectra(spectra: pd.DataFrame, pairs: pd.DataFrame,
                    settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """(matched spectra as read, the same after QC, QC counts), one row per matched pair."""
    from ingest.pipeline.s3_quality import spectrum_qc

    used = np.unique(pairs["spec_index"].to_numpy())
    raw = apply_rv_offsets(spectra.loc[used], settings.rv_offsets)
    checked, counts = spectrum_qc(raw, settings.spectra)
    at = pairs["spec_index"].to_numpy()
    return (raw.loc[at].reset_index(drop=True), checked.loc[at].reset_index(drop=True),
            counts)


def science_products(clusters: pd.DataFrame, literature: Sequence[LiteratureArg],
                     settings: Settings, seed: int, progress: bool,
                     clock: StageClock) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Galactic block, gradients, literature comparison and binary-cluster candidates."""
    from ingest.pipeline.s7_products import binaries
    from ingest.pipeline.s6_galactic import galactic
    from ingest.pipeline.s7_products import gradients
    from ingest.pipeline.s7_products import literature as literature_module

    with clock.stage("galactic"):
        clusters = galactic.add_galactic(clusters, settings.galactic, seed, progress)
    tables: dict[str, pd.DataFrame] = {}
    with clock.stage("gradients"):
        tables["gradient"] = gradients.fit_gradients(clusters, settings.gradients, seed)
    with clock.stage("literature"):
        tables["lit_comparison"], tables["lit_summary"] = literature_module.compare(
            clusters, list(literature), settings.literature)
    with clock.stage("binaries"):
        tables["binary_candidate"] = binaries.find_pairs(clusters, settings.binaries)
    return clusters, tables


# ---------------------------------------------------------------- output

@contextmanager
def staged_output(out: Path, tmp: Path | None = None) -> Iterator[Path]:
    """A temporary directory beside ``out`` (``tmp`` if already reserved) that replaces
    ``out`` only if the block succeeds."""
    out = Path(out)
    tmp = outdir.reserve_staging(out) if tmp is None else tmp
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        replace_directory(tmp, out)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def summarise(tables: dict[str, pd.DataFrame], rejections: dict[str, int],
              settings: Settings, surveys: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The figures of the end-of-run summary (also returned by ``run_ingest``)."""
    cluster, member = tables["cluster"], tables["member"]
    flags = member["flag"].value_counts()
    from ingest.pipeline.s7_products.gradients import min_flag12

    good = min_flag12(settings.gradients)
    return {
        "row_counts": {name: len(t) for name, t in tables.items()},
        "clusters_with_rv": int(np.isfinite(cluster["rv"].to_numpy(float)).sum()),
        "clusters_good_flag12": int((cluster["n_flag12"] >= good).sum()),
        "good_min_flag12": good,
        "stars_by_flag": {str(f): int(flags.get(f, 0)) for f in MEMBER_FLAGS},
        "rv_variable_stars": int(member["rv_var_flag"].sum()),
        "rejections": dict(sorted(rejections.items())),
        "surveys": surveys,
    }


def _check_matches(pairs: pd.DataFrame, members: pd.DataFrame, spectra: pd.DataFrame,
                   xm: Crossmatch, release: str,
                   files: tuple[Path | str, Sequence[Path | str]]) -> None:
    """Stop, naming both inputs, when ids never match but positions do (two Gaia releases)
    or when nothing matched at all: either would publish an empty or gutted catalogue."""
    from ingest.pipeline.s2_crossmatch import id_spectra_on_id_members

    epoch = xm.epoch(release)
    member_file, spectrum_files = files[0], ", ".join(str(p) for p in files[1])
    by_id = (pairs["match_method"] == "source_id").any()
    if not by_id and not xm.id_fallback:
        coincident = id_spectra_on_id_members(members, spectra, xm, release)
        if coincident:
            raise InputError(member_file, f"no Gaia source_id of the spectra ({spectrum_files}) "
                             f"matches a member id, yet {coincident} spectra with ids lie within "
                             f"{xm.radius_arcsec}\" of members with ids: the files probably "
                             f"use different Gaia releases (member ids read as Gaia {release}; "
                             "e.g. DR2 members against DR3 ids). "
                             "Use ids of one release, or set crossmatch.id_fallback = true to "
                             "match such spectra by position", column="source_id")
    if pairs.empty:
        raise InputError(member_file, f"none of {len(members)} members matched any of "
                         f"{spectra_read(spectra)} spectra in {spectrum_files} (by Gaia id or within "
                         f"{xm.radius_arcsec}\" at epoch {epoch}); the run would publish "
                         "0 clusters")


def catalogue_tables(clusters: pd.DataFrame, members: pd.DataFrame, spectra: pd.DataFrame,
                     settings: Settings, rejections: dict[str, int], clock: StageClock,
                     files: tuple[Path | str, Sequence[Path | str]] = ("members", ("spectra",)),
                     gaia_release: str = "DR3"
                     ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Crossmatch, QC, combination and Monte Carlo estimates: (cluster, member, spectrum) rows.

    ``files`` (member file, spectrum files) name the inputs in errors; ``gaia_release``
    of the member ids sets the epoch of their positions."""
    from ingest.pipeline.s2_crossmatch import match
    from ingest.pipeline.s5_estimate import estimate
    from ingest.pipeline.s3_quality import absolute_gmag

    with clock.stage("crossmatch"):
        pairs = match(members, spectra, settings.crossmatch, gaia_release)
        _check_matches(pairs, members, spectra, settings.crossmatch, gaia_release, files)
        rejections["spectra_unmatched"] = int(spectra_read(spectra) - pairs["spec_index"].nunique())
    with clock.stage("spectrum_qc"):
        raw, checked, qc_counts = matched_spectra(spectra, pairs, settings)
        add_counts(rejections, {k: v for k, v in qc_counts.items() if k != "qc_ok" and v})
    with clock.stage("combine"):
        stars = member_rows(members, pairs, raw, checked, settings.combine)
        spectrum_table = spectrum_rows(raw, checked, pairs, members)
    with clock.stage("estimate"):
        cluster_table, label = cluster_rows(clusters, members, stars)
        stars["abs_gmag"] = absolute_gmag(stars["gmag"].to_numpy(float),
                                          cluster_table["dist50"].to_numpy(float)[label],
                                          cluster_table["av50"].to_numpy(float)[label])
        estimates, star_flags = estimate(stars, label, len(cluster_table), settings.montecarlo,
                                          settings.params_qc)
    return (pd.concat([cluster_table, estimates], axis=1), pd.concat([stars, star_flags], axis=1),
            spectrum_table)


def check_catalogue(clusters: pd.DataFrame, stars: pd.DataFrame, spectra: pd.DataFrame,
                    rejections: dict[str, int],
                    files: tuple[Path | str, Sequence[Path | str]]) -> None:
    """Stop before the science stages when the tables could not be a catalogue: no cluster,
    no matched spectrum that passed quality control, or no cluster with a FLAG=1 star
    (so no cluster RV).  Publishing such a run would replace a served catalogue with
    an empty one."""
    from ingest.pipeline.s3_quality import QC_OK

    where = f"members {files[0]}, spectra {', '.join(str(p) for p in files[1])}"
    qc = {k.removeprefix("qc_"): v for k, v in sorted(rejections.items())
          if k.startswith("qc_") and v}
    if len(clusters) == 0:
        raise CatalogueError(f"{where}: no cluster has a matched member (members "
                             f"{len(stars)}, spectra matched {len(spectra)}): the run would "
                             "publish 0 clusters")
    usable = int((spectra["qc"] == QC_OK).sum())
    if usable == 0:
        raise CatalogueError(f"{where}: none of the {len(spectra)} matched spectra passed "
                             f"quality control (failed: {_counts(qc)}; see spectra.snr_min and "
                             "spectra.rv_flag_good): the run would publish no RV")
    with_flag1 = int((clusters["n_flag1"] > 0).sum())
    if with_flag1 == 0:
        flags = stars["flag"].value_counts()
        raise CatalogueError(f"{where}: no cluster has a FLAG=1 member ({len(clusters)} "
                             f"clusters, {len(stars)} members with spectra, {usable} usable "
                             f"spectra; member flags {_counts({str(k): int(v) for k, v in flags.items()})}): "
                             "the run would publish no cluster RV")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def _resolve_config(config: dict | Path | str | None) -> tuple[dict, Path | None]:
    if isinstance(config, dict):
        return config_module.validate(config), None
    path = Path(config) if config is not None else None
    return config_module.load(path), path


def run_ingest(*, clusters: Path | str, members: Path | str, spectra: Sequence[SpectraArg],
               out: Path | str, catalogue: str = "hunt2024", colmap: Path | str | None = None,
               survey: str | Path | None = None, literature: Sequence[LiteratureArg] = (),
               config: dict | Path | str | None = None, seed: int | None = None,
               progress: bool = True, force: bool = False, engine: Any = None) -> dict[str, Any]:
    """Run the whole ingest and publish its tables atomically into ``out``; return the summary.

    ``spectra`` entries are paths (read with ``survey``, auto-detected when
    None) or (path, survey) pairs; ``literature`` holds (name, path, map or
    None) triples; ``config`` is a merged config dict, a TOML path or None
    (defaults); ``seed`` defaults to the config's seed.  ``out`` must be new,
    empty or an earlier ingest output, which only ``force`` replaces
    (:func:`ingest.pipeline.s8_outputs.outdir.check_output`); that and the configuration are
    checked before any input is read.  ``engine`` (e.g. ``ingest.pipeline.dask_engine.DaskEngine``)
    runs the crossmatch-to-estimate stages instead of :func:`catalogue_tables`.
    """
    from ingest.pipeline.s1_inputs.colmap import check_map_usage

    cfg, config_path = _resolve_config(config)
    seed = cfg["seed"] if seed is None else seed
    config_module.check_seed(seed)
    settings = config_module.settings(cfg, str(config_path or "configuration"))
    progress = progress and sys.stderr.isatty()     # bars on a terminal only
    clusters, members, out = Path(clusters), Path(members), Path(out)
    colmap = Path(colmap) if colmap is not None else None
    entries = spectra_entries(spectra, survey)
    outdir.check_output(out, input_paths(clusters, members, entries, literature, colmap,
                                         config_path), force)
    check_map_usage(colmap, [s for _, s in entries])
    check_distinct_spectra(entries)
    staging = outdir.reserve_staging(out)
    try:
        return _run_stages(clusters, members, entries, out, staging, catalogue, colmap,
                           literature, cfg, settings, config_path, seed, progress, engine)
    finally:
        outdir.discard(staging)          # a no-op after success: it became ``out``


def _run_stages(clusters: Path, members: Path, entries: list[tuple[Path, Any]], out: Path,
                staging: Path, catalogue: str, colmap: Path | None,
                literature: Sequence[LiteratureArg], cfg: dict, settings: Settings,
                config_path: Path | None, seed: int, progress: bool,
                engine: Any = None) -> dict[str, Any]:
    """The stages of :func:`run_ingest`, writing through the reserved ``staging`` directory."""
    from ingest.pipeline.s1_inputs import projection
    from ingest.pipeline.s1_inputs.colmap import UNDECLARED_SURVEY, member_gaia_release

    rejections: dict[str, int] = {}
    details: list[dict[str, Any]] = []
    member_release = member_gaia_release(catalogue, colmap)
    spectrum_releases = spectrum_gaia_releases(entries, colmap)
    clock = StageClock(progress)
    # Checksums of multi-GB inputs take a while; hashlib releases the GIL, so
    # they are computed in a thread while the stages run.
    hasher = ThreadPoolExecutor(max_workers=1)
    inputs = hasher.submit(input_records, clusters, members, entries, literature, colmap,
                           config_path)
    try:
        with clock.stage("read"):
            cluster_in, member_in, spectra_in = read_inputs(
                clusters, members, entries, catalogue, colmap, settings, rejections, details)
        surveys = manifest.survey_records(projection.survey_rows(spectra_in), settings.rv_offsets,
                                          UNDECLARED_SURVEY)
        tables_of = catalogue_tables if engine is None else engine.tables_for(
            input_paths(clusters, members, entries, (), colmap, config_path))
        cluster_table, stars, spectrum_table = tables_of(
            cluster_in, member_in, spectra_in, settings, rejections, clock,
            (members, [p for p, _ in entries]), member_release)
        check_catalogue(cluster_table, stars, spectrum_table, rejections,
                        (members, [p for p, _ in entries]))
        cluster_table, products = science_products(cluster_table, literature, settings, seed,
                                                   progress, clock)
        tables = {"cluster": cluster_table, "member": stars, "spectrum": spectrum_table,
                  **products}
        with clock.stage("write"), staged_output(out, staging) as tmp:
            outputs = {}
            for name in TABLES:
                path = writers.write_table(tables[name], name, tmp / f"{name}.fits")
                outputs[name] = manifest.output_record(path, len(tables[name]))
            summary = summarise(tables, rejections, settings, surveys)
            summary["rejected_values"] = details
            summary["gaia_releases"] = {"members": member_release,
                                        "member_epoch": settings.crossmatch.epoch(member_release),
                                        "spectra": spectrum_releases,
                                        "warnings": release_warnings(member_release,
                                                                     spectrum_releases)}
            record = manifest.build(
                inputs=inputs.result(), outputs=outputs,
                config=cfg, seed=seed, row_counts=summary["row_counts"],
                rejections=summary["rejections"], timings=clock.seconds,
                simulated=manifest.is_simulated([clusters, members] + [p for p, _ in entries]),
                surveys=surveys, catalogue=catalogue)
            record["gaia_releases"] = summary["gaia_releases"]
            record["rejected_values"] = details
            record["engine"] = {"name": "local"} if engine is None else engine.describe()
            record["stage_peak_rss_mb"] = {k: round(v, 1) for k, v in clock.peak_rss_mb.items()}
            manifest.write(record, tmp / "manifest.json")
    finally:
        clock.close()
        hasher.shutdown(wait=False, cancel_futures=True)
    summary["out"] = str(out)
    summary["stage_seconds"] = dict(clock.seconds)
    return summary
