"""Shared fixtures: the simulated demo catalogue, its ingest, and the real reference data."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from ingest.validation import default_data_dir

SHARED_DATA = default_data_dir()     # $OCVO_SHARED_DATA or ../shared/data, as ocvo validate
DEMO_SEED = 12345
# The published-service tests (test_service.py, test_browser.py) share one instance.
TEST_PG_PORT = int(os.environ.get("OCVO_TEST_PG_PORT", 54341))
TEST_WEB_PORT = int(os.environ.get("OCVO_TEST_WEB_PORT", 18101))


@pytest.fixture(scope="session")
def service(demo_ingest):
    """The demo ingest published into a fresh private instance, served on 127.0.0.1."""
    from ingest.publication.instance import Instance
    from ingest.publication.publish import publish

    # Not under pytest's tmp dirs: those are 0700 and PostgreSQL runs as postgres.
    state = Path(tempfile.mkdtemp(prefix="ocvo-test-"))
    state.chmod(0o755)
    instance = Instance(state / "state", TEST_PG_PORT, TEST_WEB_PORT)
    try:
        publish(demo_ingest, instance, say=lambda message: None)
        instance.serve()
        yield instance
    finally:
        instance.stop()
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def tap(service):
    pyvo = pytest.importorskip("pyvo")
    return pyvo.dal.TAPService(service.tap_url)


@pytest.fixture(scope="session")
def richest(tap):
    """The cluster with most FLAG=12 members, as a row dict."""
    row = tap.search("SELECT TOP 1 cluster_name, ra, dec, n_flag12 FROM ocvo.cluster "
                     "ORDER BY n_flag12 DESC, cluster_name").to_table()[0]
    return {name: row[name] for name in row.colnames}


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real third-party reference files); skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real reference data not available at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def demo_sim(tmp_path_factory) -> Path:
    """The simulator's demo preset with a fixed seed, written once per test session."""
    from ingest.simulation import simulate

    out = tmp_path_factory.mktemp("demo_sim")
    simulate(preset="demo", seed=DEMO_SEED, out=out, progress=False)
    return out


@pytest.fixture(scope="session")
def demo_ingest(demo_sim, tmp_path_factory) -> Path:
    """The demo simulation ingested with default configuration (incl. literature tables)."""
    from ingest.pipeline.run import run_ingest

    out = tmp_path_factory.mktemp("demo_ingest") / "out"
    run_ingest(**demo_ingest_arguments(demo_sim), out=out, progress=False)
    return out


@pytest.fixture(scope="session")
def dachs_rd_columns() -> dict[str, list[list[str]]]:
    """rd.xml's tables as DaCHS's own parser reads them (Debian's python3 with python3-gavo):
    {table id: [[name, type, unit, ucd, description], ...] in rd order}; skip without DaCHS."""
    from ingest.core import schema
    from ingest.publication.instance import DACHS_PYTHON

    probe = subprocess.run([DACHS_PYTHON, "-c", "import gavo"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("DaCHS (python3-gavo) is not installed; run bin/ocvo setup")
    helper = Path(__file__).with_name("helpers") / "dachs_columns.py"
    result = subprocess.run([DACHS_PYTHON, str(helper), str(schema.RD_PATH)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"DaCHS could not parse rd.xml:\n{result.stderr[-3000:]}"
    return json.loads(result.stdout)


def demo_ingest_arguments(sim: Path) -> dict:
    """Ingest arguments for a simulator output directory (shared by tests and the demo)."""
    from ingest.simulation import ingest_arguments

    return ingest_arguments(sim)
