"""pgSphere on this machine's PostgreSQL: the extension is created and answers a cone.

Why: PostgreSQL 15.19+ rejects Debian's pgSphere 1.1.1 extension script unless
bin/repair-pgsphere has removed its two obsolete operators; without the repair
``CREATE EXTENSION pg_sphere`` fails here and so does the whole service.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

ROOT = Path(__file__).resolve().parent.parent
TEST_PG_PORT = int(os.environ.get("OCVO_TEST_PGSPHERE_PORT", 54342))

# Two operators as Debian's pg_sphere--1.2.0.sql declares them, between two that stay.
DEBIAN_EXCERPT = """\
CREATE OPERATOR !@> (
   LEFTARG    = smoc,
   RIGHTARG   = spoint,
   PROCEDURE  = smoc_not_superset_spoint,
   COMMUTATOR = '!<@',
   NEGATOR    = '@>',
   RESTRICT   = contsel,
   JOIN       = contjoinsel
);

-- a minimal set of backwards-compatible operators for GAVO DaCHS,
-- see http://soft.g-vo.org/dachs

CREATE OPERATOR @ (
   LEFTARG    = bigint,
   RIGHTARG   = smoc,
   PROCEDURE  = healpix_subset_smoc,
   COMMUTATOR = '@>',
   NEGATOR    = '!<@',
   RESTRICT   = contsel,
   JOIN       = contjoinsel
);

CREATE OPERATOR @ (
   LEFTARG    = spoint,
   RIGHTARG   = smoc,
   PROCEDURE  = spoint_subset_smoc,
   COMMUTATOR = '@>',
   NEGATOR    = '!<@',
   RESTRICT   = contsel,
   JOIN       = contjoinsel
);
-- debugging

CREATE OPERATOR @ (
   LEFTARG    = spoint,
   RIGHTARG   = scircle,
   PROCEDURE  = spoint_contained_by_circle_com,
   COMMUTATOR = '~',
   NEGATOR    = '!@'
);
"""


def _repair_module():
    """bin/repair-pgsphere, imported as a module (it has no .py suffix)."""
    path = str(ROOT / "bin" / "repair-pgsphere")
    loader = importlib.machinery.SourceFileLoader("repair_pgsphere", path)
    spec = importlib.util.spec_from_loader("repair_pgsphere", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_repair_removes_exactly_the_two_obsolete_operators(tmp_path):
    repair = _repair_module()
    script = tmp_path / "pg_sphere--1.2.0.sql"
    script.write_text(DEBIAN_EXCERPT)
    assert repair.scripts_needing_repair([str(tmp_path)]) == [script]
    assert repair.main([str(tmp_path)]) == 0
    text = script.read_text()
    assert "smoc_not_superset_spoint" in text and "spoint_contained_by_circle_com" in text
    assert "healpix_subset_smoc" not in text and "spoint_subset_smoc" not in text
    assert "backwards-compatible" not in text
    assert text.count("CREATE OPERATOR") == 2
    assert repair.main(["--check", str(tmp_path)]) == 0  # idempotent: nothing left to do


def test_check_reports_an_unrepaired_script(tmp_path):
    (tmp_path / "pg_sphere--1.2.0.sql").write_text(DEBIAN_EXCERPT)
    assert _repair_module().main(["--check", str(tmp_path)]) == 1


@pytest.fixture(scope="module")
def scratch_database():
    """A private PostgreSQL on 127.0.0.1 with an empty scratch database; always stopped."""
    from ingest.publication.instance import Instance

    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        pytest.skip("no PostgreSQL server installed (run bin/ocvo setup)")
    state = Path(tempfile.mkdtemp(prefix="ocvo-pgsphere-"))
    state.chmod(0o755)
    instance = Instance(state / "state", TEST_PG_PORT, TEST_PG_PORT + 1)
    try:
        instance.start_db()
        instance.psql("-c", "CREATE DATABASE scratch", database="postgres")
        yield instance
    finally:
        instance.stop_db()
        shutil.rmtree(state, ignore_errors=True)


@pytest.mark.integration
def test_create_extension_and_cone_query(scratch_database):
    db = scratch_database
    db.psql("-c", "CREATE EXTENSION pg_sphere", database="scratch")
    rng = np.random.default_rng(8)
    ra = rng.uniform(9.0, 11.0, 400)
    dec = rng.uniform(39.0, 41.0, 400)
    values = ",".join(f"({i},{a:.10f},{d:.10f})" for i, (a, d) in enumerate(zip(ra, dec)))
    db.psql("-c", f"CREATE TABLE star (id int, ra float8, dec float8);"
                  f"INSERT INTO star VALUES {values};"
                  "CREATE INDEX ON star USING gist (spoint(radians(ra), radians(dec)))",
            database="scratch")
    answer = db.query_value(
        "SELECT string_agg(id::text, ',' ORDER BY id) FROM star WHERE "
        "spoint(radians(ra), radians(dec)) @ scircle(spoint(radians(10), radians(40)), "
        "radians(0.5))", database="scratch")
    found = {int(i) for i in answer.split(",")}
    separation = SkyCoord(ra, dec, unit="deg").separation(SkyCoord(10, 40, unit="deg"))
    expected = set(np.flatnonzero(separation < 0.5 * u.deg))
    assert found == expected and 50 < len(found) < 250


@pytest.mark.integration
def test_status_reports_the_stack_versions(scratch_database):
    status = scratch_database.status()
    assert status["postgresql_server"].split(".")[0] == "15"
    assert status["pgsphere_package"] and status["dachs"] and status["stilts"]
    assert status["ingest_python"].startswith("3.")
