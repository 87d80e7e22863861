"""The Dask engine: the crossmatch, QC, combination and estimate stages of
``pipeline.catalogue_tables`` with the crossmatch on LSDB/HATS and the per-star and
per-cluster work on Dask workers.

``dask_engine`` opens the engine; its Dask client is started at first use (so a run
stopped by its argument checks starts nothing): a ``LocalCluster`` of worker
processes on 127.0.0.1 with one per core, or a connection to an existing scheduler.
Whatever it started is closed when the ``with`` block ends, also on failure.
"""
from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from ingest.pipeline import s2_crossmatch as crossmatch
from ingest.core.config import Combine, Crossmatch, Settings
from ingest.pipeline import run as pipeline
from ingest.pipeline.s1_inputs import load
from ingest.pipeline.s8_outputs import tables

from ingest.pipeline.dask_engine import aggregate, catalogues, xmatch


class DaskEngine:
    """Runs the engine-dependent stages on a Dask cluster (started on first use)."""

    def __init__(self, scheduler: str | None = None, n_workers: int | None = None):
        self.scheduler = scheduler
        self.n_workers = n_workers or os.cpu_count() or 1
        self._cluster = None
        self._client = None

    @property
    def client(self):
        """The Dask client: connected to ``scheduler``, else to a new loopback LocalCluster."""
        if self._client is None:
            from dask.distributed import Client, LocalCluster

            if self.scheduler is None:
                self._cluster = LocalCluster(
                    n_workers=self.n_workers, threads_per_worker=1, processes=True,
                    host="127.0.0.1", dashboard_address="127.0.0.1:0",
                    worker_dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
            self._client = Client(self.scheduler or self._cluster)
        return self._client

    def workers(self) -> int:
        """Workers the scheduler has now (sets the partition counts)."""
        return max(1, len(self.client.scheduler_info(n_workers=-1)["workers"]))

    def describe(self) -> dict:
        """The engine as the manifest records it: scheduler, workers and package versions."""
        from importlib.metadata import version

        return {"name": "dask", "scheduler": self.scheduler or "LocalCluster on 127.0.0.1",
                "workers": self.workers(),
                "versions": {p: version(p) for p in ("dask", "distributed", "lsdb", "hats",
                                                     "hats-import", "nested-pandas")}}

    def close(self) -> None:
        """Close the client and whatever cluster this engine started."""
        try:
            if self._client is not None:
                self._client.close()
        finally:
            if self._cluster is not None:
                self._cluster.close()
            self._client = self._cluster = None

    def tables_for(self, inputs: Sequence[Path]) -> Callable:
        """``pipeline.catalogue_tables`` on this engine for a run over ``inputs`` (the files
        whose checksums key the cached HATS catalogues)."""
        return functools.partial(self.catalogue_tables, list(inputs))

    def catalogue_tables(self, inputs: list[Path], clusters: pd.DataFrame,
                         members: pd.DataFrame, spectra: pd.DataFrame, settings: Settings,
                         rejections: dict[str, int], clock: pipeline.StageClock,
                         files: tuple = ("members", ("spectra",)),
                         gaia_release: str = "DR3"
                         ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """(cluster, member, spectrum) rows equal to ``run.catalogue_tables``'s."""
        client = self.client
        with clock.stage("crossmatch"):
            pairs = self._match(inputs, members, spectra, settings.crossmatch, gaia_release)
            pipeline._check_matches(pairs, members, spectra, settings.crossmatch, gaia_release,
                                    files)
            rejections["spectra_unmatched"] = int(load.spectra_read(spectra)
                                                  - pairs["spec_index"].nunique())
        with clock.stage("spectrum_qc"):
            raw, checked, qc_counts = pipeline.matched_spectra(spectra, pairs, settings)
            load.add_counts(rejections, {k: v for k, v in qc_counts.items()
                                         if k != "qc_ok" and v})
        with clock.stage("combine"):
            parts = client.scatter(aggregate.split(
                clusters, members, pairs, raw, checked,
                aggregate.PARTITIONS_PER_WORKER * self.workers()))
            stars = self._combine(parts, settings.combine)
            spectrum_table = tables.spectrum_rows(raw, checked, pairs, members)
        with clock.stage("estimate"):
            results = client.gather([client.submit(aggregate.estimate_part, part, part_stars,
                                                   settings, pure=False)
                                     for part, part_stars in zip(parts, stars)])
            cluster_table, star_table = aggregate.gather_tables(results)
        return cluster_table, star_table, spectrum_table

    def _match(self, inputs: list[Path], members: pd.DataFrame, spectra: pd.DataFrame,
               xm: Crossmatch, release: str) -> pd.DataFrame:
        """The crossmatch pairs; with no spectrum left after reading there is nothing to
        distribute (and no catalogue to build), so the local function answers."""
        if spectra.empty:
            return crossmatch.match(members, spectra, xm, release)
        epoch = xm.epoch(release)
        hats = catalogues.build(self.client, members, spectra, inputs, xm.radius_arcsec, epoch,
                                self.workers())
        return xmatch.match(self.client, hats, members, spectra, xm.radius_arcsec, epoch,
                            xm.id_fallback)

    def _combine(self, parts: list, settings: Combine) -> list:
        """Futures of each partition's combined stars, with the error scales of all stars."""
        from dask.distributed import wait

        client = self.client
        used = client.gather([client.submit(aggregate.surveys_used, p, pure=False)
                              for p in parts])
        surveys = np.unique(np.concatenate(used)).tolist() if used else []
        scales = aggregate.error_scales(client, parts, surveys, settings)
        stars = [client.submit(aggregate.combine_part, p, settings, scales, pure=False)
                 for p in parts]
        wait(stars)
        return stars


@contextmanager
def dask_engine(scheduler: str | None = None,
                n_workers: int | None = None) -> Iterator[DaskEngine]:
    """A :class:`DaskEngine` closed (with any cluster it started) when the block ends."""
    engine = DaskEngine(scheduler, n_workers)
    try:
        yield engine
    finally:
        engine.close()
