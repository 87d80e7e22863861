"""Shared fixtures: the simulated demo catalogue, its ingest, and the real reference data."""
from __future__ import annotations

from pathlib import Path

import pytest

from ingest.validation import default_data_dir

SHARED_DATA = default_data_dir()     # $OCVO_SHARED_DATA or ../shared/data, as ocvo validate
DEMO_SEED = 12345


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real third-party reference files); skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real reference data not available at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def demo_sim(tmp_path_factory) -> Path:
    """The simulator's demo preset with a fixed seed, written once per test session."""
    from ingest.simulate import simulate

    out = tmp_path_factory.mktemp("demo_sim")
    simulate(preset="demo", seed=DEMO_SEED, out=out, progress=False)
    return out


@pytest.fixture(scope="session")
def demo_ingest(demo_sim, tmp_path_factory) -> Path:
    """The demo simulation ingested with default configuration (incl. literature tables)."""
    from ingest.pipeline import run_ingest

    out = tmp_path_factory.mktemp("demo_ingest") / "out"
    run_ingest(**demo_ingest_arguments(demo_sim), out=out, progress=False)
    return out


def demo_ingest_arguments(sim: Path) -> dict:
    """Ingest arguments for a simulator output directory (shared by tests and the demo)."""
    from ingest.simulate import ingest_arguments

    return ingest_arguments(sim)
