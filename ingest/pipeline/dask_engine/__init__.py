"""The distributed ingest engine: the crossmatch on HATS catalogues with LSDB, the per-star
combination and the per-cluster estimates on Dask, with the single-machine results.

``bin/ocvo ingest --engine dask [--scheduler ADDRESS]`` selects it; everything before the
crossmatch (readers, column maps, row checks) and after the estimates (orbits,
gradients, literature, binaries, writers) is the one code path of ``ingest.pipeline``.
See docs/scaling.md.
"""
from __future__ import annotations

from ingest.pipeline.dask_engine.engine import DaskEngine, dask_engine

__all__ = ["DaskEngine", "dask_engine"]
