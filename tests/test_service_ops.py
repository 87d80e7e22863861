"""Operating the service safely: a locked database, queries that end with their clients,
health probes that see a dead component, recovery after kill -9, and publications that
clean up, repair themselves and never shrink the catalogue or delete figures by surprise.

These run against the shared private instance of tests/conftest.py (nginx in front of
several DaCHS processes); tests that kill a component start it again through
``ocvo serve`` and check the instance is whole before they end.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from astropy.io import votable

pytestmark = [pytest.mark.integration, pytest.mark.slow]

pyvo = pytest.importorskip("pyvo")

ROOT = Path(__file__).resolve().parents[1]
# A query ADQL allows that keeps PostgreSQL busy for minutes: a triple cross join.
SLOW_QUERY = ("SELECT COUNT(*) AS n FROM ocvo.member AS a, ocvo.member AS b, ocvo.member AS c "
              "WHERE a.ra > {marker}")
GONE_WITHIN_S = 5.0


def _ocvo(service, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """bin/ocvo ARGS against the test instance."""
    env = {**os.environ, "OCVO_STATE": str(service.state), "OCVO_PG_PORT": str(service.pg_port),
           "OCVO_WEB_PORT": str(service.web_port)}
    return subprocess.run([str(ROOT / "bin" / "ocvo"), *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def _marker() -> str:
    """A number unique to one test query, to find it in pg_stat_activity."""
    return f"-{time.time_ns() % 10**9}.25"


def _running_queries(service) -> int:
    """Queries running for TAP users (DaCHS's untrusted role) in this private instance.

    DaCHS runs a TAP query as a cursor, so pg_stat_activity shows its FETCH,
    not its text."""
    return int(service.query_value(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
        "AND usename = 'untrusted' AND query LIKE 'FETCH%' AND pid <> pg_backend_pid()"))


def _wait_for(condition, timeout: float, what: str) -> float:
    """Seconds until condition() holds; fails the test after timeout."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"{what} not within {timeout} s")
        time.sleep(0.1)
    return time.monotonic() - started


def _uid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def _healthy(service) -> None:
    result = _ocvo(service, "status")
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------ a locked database
needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="switching to another local user needs root")


@needs_root
@pytest.mark.parametrize("role", ["postgres", "gavoadmin", "untrusted"])
def test_another_local_user_cannot_connect(service, role):
    result = subprocess.run(
        ["runuser", "-u", "nobody", "--", "psql", "-X", "-w", "-h", "127.0.0.1", "-p",
         str(service.pg_port), "-U", role, "-d", "gavo", "-c", "SELECT 1"],
        capture_output=True, text=True, timeout=30, env={"PATH": os.environ["PATH"]})
    assert result.returncode != 0, result.stdout
    assert "password" in result.stderr, result.stderr


@needs_root
def test_credentials_are_readable_by_their_owner_only(service):
    secrets = [service.passfile, *(service.dachs_root / "etc" / name
                                   for name in ("feed", "trustedquery", "untrustedquery"))]
    for path in secrets:
        assert path.stat().st_mode & 0o777 == 0o600, path
        cat = subprocess.run(["runuser", "-u", "nobody", "--", "cat", str(path)],
                             capture_output=True, text=True, timeout=30)
        assert cat.returncode != 0 and "Permission denied" in cat.stderr, path
    hba = (service.pg_data / "pg_hba.conf").read_text().split()
    assert "trust" not in hba and "scram-sha-256" in hba


@needs_root
def test_dachs_nginx_and_postgres_do_not_run_as_root(service):
    postmaster = int((service.pg_data / "postmaster.pid").read_text().split()[0])
    pids = [postmaster, *service.dachs_pids().values(), service.nginx_pid()]
    assert None not in pids and len(pids) >= 3
    assert all(_uid(pid) != 0 for pid in pids), {pid: _uid(pid) for pid in pids}


# ------------------------------------------------------------------ queries end with clients
def _delete_over_http(job) -> None:
    request = urllib.request.Request(job.url, method="DELETE")
    try:
        urllib.request.urlopen(request, timeout=30).read()
    except urllib.error.HTTPError as answer:  # UWS answers 303 to the job list
        assert answer.code == 303, answer


def _delete_by_action(job) -> None:
    data = urllib.parse.urlencode({"ACTION": "DELETE"}).encode()
    urllib.request.urlopen(urllib.request.Request(job.url, data=data), timeout=30).read()


@pytest.mark.parametrize("delete", [_delete_over_http, _delete_by_action],
                         ids=["DELETE", "ACTION=DELETE"])
def test_deleting_an_async_job_ends_its_query(service, tap, delete):
    marker = _marker()
    job = tap.submit_job(SLOW_QUERY.format(marker=marker))
    job.run()
    _wait_for(lambda: _running_queries(service) == 1, 60, "the job's query running")
    delete(job)
    seconds = _wait_for(lambda: _running_queries(service) == 0, GONE_WITHIN_S,
                        "the deleted job's query ending")
    print(f"query gone {seconds:.1f} s after the delete")
    with pytest.raises(urllib.error.HTTPError) as gone:
        urllib.request.urlopen(job.url, timeout=30)
    assert gone.value.code == 404


def _hang_up_during_sync_query(service, port: int) -> float:
    marker = _marker()
    query = urllib.parse.urlencode({"REQUEST": "doQuery", "LANG": "ADQL",
                                    "QUERY": SLOW_QUERY.format(marker=marker)})
    with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
        client.sendall(f"GET /tap/sync?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                       "Connection: close\r\n\r\n".encode())
        _wait_for(lambda: _running_queries(service) == 1, 60, "the sync query running")
    return _wait_for(lambda: _running_queries(service) == 0, GONE_WITHIN_S,
                     "the abandoned sync query ending")


def test_sync_query_ends_when_its_client_hangs_up(service):
    """Through nginx (the service's address) and at one DaCHS process directly."""
    front = _hang_up_during_sync_query(service, service.web_port)
    backend = _hang_up_during_sync_query(service, next(iter(service.dachs_pids())))
    print(f"query gone {front:.1f} s (nginx) / {backend:.1f} s (DaCHS) after the hang-up")


def test_job_list_shows_no_one_elses_jobs(service, tap):
    marker = _marker()
    job = tap.submit_job(f"SELECT TOP 1 cluster_name FROM ocvo.cluster WHERE ra > {marker}")
    try:
        listing = urllib.request.urlopen(f"{service.tap_url}/async", timeout=30).read().decode()
        assert job.job_id not in listing and marker not in listing
        assert "<uws:jobs" in listing
        # Its creator still reaches it by its URL.
        assert marker in urllib.request.urlopen(job.url, timeout=30).read().decode()
    finally:
        job.delete()


def test_async_job_crosses_dachs_processes(service):
    """Created at one DaCHS process, run by another, read back at the first: the UWS
    state is in the database and the job directory is shared."""
    first, second = list(service.dachs_pids())[:2]
    create = urllib.parse.urlencode({"REQUEST": "doQuery", "LANG": "ADQL",
                                     "QUERY": "SELECT COUNT(*) AS n FROM ocvo.cluster"}).encode()
    with urllib.request.urlopen(f"http://127.0.0.1:{first}/tap/async", data=create,
                                timeout=30) as response:
        path = urllib.parse.urlparse(response.url).path
    run = urllib.parse.urlencode({"PHASE": "RUN"}).encode()
    urllib.request.urlopen(f"http://127.0.0.1:{second}{path}/phase", data=run, timeout=30)

    def phase() -> str:
        url = f"http://127.0.0.1:{first}{path}/phase"
        return urllib.request.urlopen(url, timeout=30).read().decode().strip()
    _wait_for(lambda: phase() in ("COMPLETED", "ERROR", "ABORTED"), 120, "the job finishing")
    assert phase() == "COMPLETED"
    result = urllib.request.urlopen(f"http://127.0.0.1:{first}{path}/results/result",
                                    timeout=30).read()
    table = votable.parse_single_table(io.BytesIO(result)).to_table()
    assert int(table["n"][0]) == int(service.query_value("SELECT count(*) FROM ocvo.cluster"))
    with pytest.raises(urllib.error.HTTPError, match="303"):
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{second}{path}",
                                                      method="DELETE"), timeout=30)


# ------------------------------------------------------------------ health and recovery
def test_status_probes_components_and_fails_when_postgres_is_dead(service):
    _healthy(service)
    postmaster = int((service.pg_data / "postmaster.pid").read_text().split()[0])
    os.kill(postmaster, signal.SIGKILL)
    try:
        result = _ocvo(service, "status")
        assert result.returncode != 0, result.stdout
        assert any(line.startswith("postgres") and " DOWN " in line
                   for line in result.stdout.splitlines()), result.stdout
        assert any(line.startswith("nginx") and " DOWN " in line
                   for line in result.stdout.splitlines()), result.stdout
    finally:
        served = _ocvo(service, "serve")
    assert served.returncode == 0, served.stdout + served.stderr
    _healthy(service)


def test_serve_recovers_from_kill_9_of_everything_at_the_first_try(service, tap):
    pids = [*service.dachs_pids().values(), service.nginx_pid(),
            int((service.pg_data / "postmaster.pid").read_text().split()[0])]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    assert _ocvo(service, "status").returncode != 0
    served = _ocvo(service, "serve")
    assert served.returncode == 0, served.stdout + served.stderr
    _healthy(service)
    assert len(tap.search("SELECT TOP 2 * FROM ocvo.member")) == 2


def test_serve_recovers_from_a_dead_dachs_process(service):
    port, pid = next(iter(service.dachs_pids().items()))
    os.kill(pid, signal.SIGKILL)
    result = _ocvo(service, "status")
    assert result.returncode != 0 and f"dachs :{port}" in result.stdout
    served = _ocvo(service, "serve")
    assert served.returncode == 0, served.stdout + served.stderr
    _healthy(service)


# ------------------------------------------------------------------ publication
def _publish(service, directory: Path, **kwargs) -> None:
    from ingest.publication.publish import publish

    publish(directory, service, say=lambda message: None, **kwargs)


def _count(service, table: str) -> int:
    return int(service.query_value(f"SELECT count(*) FROM ocvo.{table}"))


def _shrunk_copy(demo_ingest: Path, dest: Path, keep: int) -> Path:
    """A valid ingest directory with the first `keep` clusters and what belongs to them."""
    from ingest.core import manifest
    from ingest.pipeline.s8_outputs import writers

    shutil.copytree(demo_ingest, dest)
    record = json.loads((dest / "manifest.json").read_text())
    clusters = writers.read_table(dest / "cluster.fits").iloc[:keep]
    names = set(clusters["cluster_name"])
    member = writers.read_table(dest / "member.fits")
    keys = set(member.loc[member["cluster_name"].isin(names), "member_key"])
    frames = {"cluster": clusters}
    for table in ("member", "spectrum", "lit_comparison"):
        frame = writers.read_table(dest / f"{table}.fits")
        frames[table] = frame[frame["cluster_name"].isin(names)]
    frames["spectrum"] = frames["spectrum"][frames["spectrum"]["member_key"].isin(keys)]
    pairs = writers.read_table(dest / "binary_candidate.fits")
    frames["binary_candidate"] = pairs[pairs["cluster_a"].isin(names)
                                       & pairs["cluster_b"].isin(names)]
    for table, frame in frames.items():
        writers.write_table(frame, table, dest / f"{table}.fits")
        record["outputs"][table].update(sha256=manifest.sha256(dest / f"{table}.fits"),
                                        rows=len(frame))
    (dest / "manifest.json").write_text(json.dumps(record))
    return dest


def test_publish_refuses_a_collapsing_catalogue_unless_told(service, demo_ingest, tmp_path):
    from ingest.core.errors import PublishError

    served = _count(service, "cluster")
    keep = max(1, served // 3)
    shrunk = _shrunk_copy(demo_ingest, tmp_path / "shrunk", keep)
    with pytest.raises(PublishError) as refused:
        _publish(service, shrunk)
    message = str(refused.value)
    assert f"{keep} clusters against {served} served" in message and "--allow-shrink" in message
    assert _count(service, "cluster") == served
    cli = _ocvo(service, "publish", str(shrunk))
    assert cli.returncode != 0 and f"{keep} clusters against {served}" in cli.stderr + cli.stdout
    try:
        _publish(service, shrunk, allow_shrink=True)
        assert _count(service, "cluster") == keep
    finally:
        _publish(service, demo_ingest)
    assert _count(service, "cluster") == served


def test_republishing_keeps_figures_it_did_not_create(service, demo_ingest, tmp_path):
    """A preview drawn into the served directory survives republication; a figure the
    previous publication brought is replaced by what the next one brings."""
    with_figure = tmp_path / "with_figure"
    shutil.copytree(demo_ingest, with_figure)
    (with_figure / "figures" / "cluster").mkdir(parents=True, exist_ok=True)
    (with_figure / "figures" / "cluster" / "From_the_ingest_rv.png").write_bytes(b"ingest")
    _publish(service, with_figure)
    figures = service.resdir / "data" / "figures" / "cluster"
    drawn_later = figures / "Drawn_later_by_the_demo_cmd.png"
    drawn_later.write_bytes(b"\x89PNG\r\n\x1a\n preview drawn into the served directory")
    try:
        _publish(service, demo_ingest)
        assert drawn_later.read_bytes().endswith(b"served directory")
        assert not (figures / "From_the_ingest_rv.png").exists()
        _publish(service, with_figure)
        assert drawn_later.exists() and (figures / "From_the_ingest_rv.png").exists()
    finally:
        drawn_later.unlink(missing_ok=True)
        _publish(service, demo_ingest)


def test_publication_scratch_is_removed_on_failure_and_after_a_kill(service, demo_ingest,
                                                                     tmp_path):
    from ingest.core.errors import PublishError

    leftover = service.state / "publish-killed0"  # what a kill -9 leaves
    (leftover / "data").mkdir(parents=True)
    (leftover / "member.csv").write_text("1,2,3\n")
    broken = tmp_path / "broken"
    shutil.copytree(demo_ingest, broken)
    (broken / "member.fits").write_bytes(b"not a FITS file")
    with pytest.raises(PublishError):
        _publish(service, broken)  # refused before any scratch is made
    _publish(service, demo_ingest)
    assert not list(service.state.glob("publish-*"))


def test_kill_after_commit_is_repaired_by_the_next_serve(service, demo_ingest, tmp_path):
    """Rows, MOC and DataLink files move together: a publication killed right after its
    database commit is finished by the next 'ocvo serve'."""
    from ingest.core import manifest

    other = tmp_path / "other"
    shutil.copytree(demo_ingest, other)
    record = json.loads((other / "manifest.json").read_text())
    record["note"] = "the same rows under another manifest"
    (other / "manifest.json").write_text(json.dumps(record))
    env = {**os.environ, "OCVO_STATE": str(service.state),
           "OCVO_PG_PORT": str(service.pg_port), "OCVO_WEB_PORT": str(service.web_port)}
    process = subprocess.Popen([str(ROOT / "bin" / "ocvo"), "publish", str(other)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in process.stdout:
            if line.strip().startswith("copy:"):
                process.kill()
                break
    finally:
        process.kill()
        process.wait()
    served = _ocvo(service, "serve")
    assert served.returncode == 0, served.stdout + served.stderr
    files = json.loads((service.resdir / "data" / "publication.json").read_text())
    database = json.loads(service.query_value(
        "SELECT row_to_json(p) FROM ocvo_admin.publication AS p"))
    assert database["manifest_sha256"] == manifest.sha256(other / "manifest.json")
    assert files["ingest_manifest_sha256"] == database["manifest_sha256"]
    assert database["metadata_pending"] is False
    assert not list(service.state.glob("publish-*"))
    _publish(service, demo_ingest)
    _healthy(service)
