"""``dachs serve ARGS`` tuned for query latency and standard ADQL.

Run with Debian's python3 (DaCHS's interpreter, not the ingest venv):
``python3 dachs_serve.py RD_ID start``, RD_ID being the RD to preload;
``python3 dachs_serve.py dachs ARGS`` runs any other ``dachs`` command with
the metadata adaptation below.  This is the one place where the project
adapts DaCHS 2.7.

Descriptions without hard line breaks.  DaCHS 2.7 reflows every "plain"
meta text (table and resource descriptions) to lines of 70 characters
(gavo/base/meta.py, ``MetaValue.plainWrapper = _NoHyphenWrapper(...)``
with textwrap's default width, used in ``_preprocessContent``), so
TAP_SCHEMA.tables, VOSI, VOTable and registry descriptions carry newlines
in mid-sentence that clients show verbatim.  Here the wrapper's width is
unlimited: each paragraph becomes one line, paragraphs stay apart.  This
must hold for ``dachs imp`` (which writes TAP_SCHEMA) as for the server, so
the project runs every ``dachs`` command through this file.

ADQL ``<>``.  The ADQL 2.0 and 2.1 BNF (IVOA REC, ``<comp_op>``,
``<not_equals_operator1> ::= <less_than_operator><greater_than_operator>``)
and SQL spell "not equal" ``<>``; DaCHS 2.7's grammar
(/usr/lib/python3/dist-packages/gavo/adql/grammar.py, getADQLGrammarCopy:
``g.compOp = Regex("=|!=|<=|>=|<|>")``) only knows ``!=``, so
``WHERE a <> b`` fails with "Expected boolean expression, found '>'".
Here the comparison operator also matches
``<>`` and hands it on as ``!=``, so every later DaCHS step (the
``CONTAINS(...) <> 0`` booleanisation, the SQL morphing) sees the spelling
it knows.  Async TAP jobs run in a child process (``gavo taprun``): that
child is started through this file too (``dachs_serve.py taprun JOBID``) so
sync, async and examples all parse the same ADQL.

Foreign keys per table.  DaCHS 2.7's VOSI response for one table
(``/tap/tables/ocvo.member``; gavo/web/vosi.py, VOSITableResponse._getTree)
calls ``tableset.getTableForTableDef(self.tableDef, [], ...)``: with no
target names every foreign key is dropped, so pyvo's
``tap.tables['ocvo.member'].foreignkeys`` and TOPCAT's per-table metadata
see none, while ``/tap/tables`` and TAP_SCHEMA.keys list them.  Here the
targets of the table's ADQL-queryable keys (``ForeignKey.isADQLKey``) are
passed, as the whole-tableset response does.

Two changes for latency, both measured with ``bench/bench_publish.py`` (see
docs/service.md):

* Nagle's algorithm off on client connections.  Twisted leaves it on; on
  a keep-alive connection, which pyvo's requests session and TOPCAT both
  use, the second segment of a response then waits for the client's
  delayed ACK: about 40 ms added to each query.
* The long-lived objects (DaCHS, our RD, the ADQL grammar) moved out of
  the garbage collector's reach with ``gc.freeze`` once loaded.  Otherwise
  every dozenth TAP query pays a full collection over ~170k objects
  (~120 ms here).  A reload (``dachs serve reload``, after a publication)
  unfreezes first, so replaced RDs are still collected, then freezes again.

Queries end with their clients.  DaCHS 2.7 deletes an async job (DELETE or
ACTION=DELETE; gavo/protocols/uwsactions.py, doDELETE -> UWS.destroy)
without stopping it: its ``taprun`` worker and its database query ran on up
to the async limit (3600 s).  Here a TAP job's destruction first cancels its
database query (the worker writes its backend's pid into the job's
directory, which every server process shares; ``pg_cancel_backend`` as
DaCHS's untrusted role, the role the query runs as) and then ends the worker.
A sync TAP query runs in a thread of the server; when its client hangs up
(Twisted's ``notifyFinish`` fails) its connection's query is cancelled
(psycopg2 ``connection.cancel``), instead of running on to the 60 s limit.
The private PostgreSQL also ends any query whose client process died
(``client_connection_check_interval``, instance.py).

Job lists.  ``GET /tap/async`` (gavo/web/asyncrender.py, JoblistResource)
lists every job of every user, each with its URL and so its query text.
Here an anonymous request gets an empty list; an authenticated one its own
jobs.  A job is reached by the URL its creator was given (ids are random).

Several processes.  ``OCVO_DACHS_PORT`` makes this server listen on that
port, with its own pid file (state/web-PORT.pid), while ``serverURL``
stays the address of nginx in front (ingest/publication/proxy.py).
"""
import gc
import os
import secrets
import signal
import sys
import threading

from twisted.internet import reactor

from gavo import adql, base, utils
from gavo.base import meta
from gavo.adql import grammar, nodes
from gavo.protocols import tap, taprunner, uws, uwsactions
from gavo.registry import tableset
from gavo.user import cli, serve
from gavo.web import common, grend, root, syncrender, vosi

# Parsing builds the ADQL grammar; no table is looked up.
WARM_QUERY = "SELECT TOP 1 * FROM t WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE(0, 0, 1))"
ADQL_SYNTAX_ERRORS = (adql.ParseException, adql.ParseSyntaxException)
# DaCHS 2.7's comparison operators, exactly as in gavo/adql/grammar.py.
DACHS_COMPARISON = "=|!=|<=|>=|<|>"
NOT_EQUAL_CHECK = "SELECT a FROM t WHERE a <> b"


def _comparison_with_not_equal(make_regex):
    """grammar.Regex, except that DaCHS's comparison operator also accepts ``<>``."""
    def regex(pattern, *args, **kwargs):
        if pattern != DACHS_COMPARISON:
            return make_regex(pattern, *args, **kwargs)
        return make_regex("<>|" + pattern, *args, **kwargs).addParseAction(
            lambda tokens: "!=" if tokens[0] == "<>" else tokens[0])
    return regex


def accept_not_equal() -> None:
    """Make DaCHS's ADQL parser accept the standard ``<>`` (see the module docstring)."""
    try:
        adql.parseToTree(NOT_EQUAL_CHECK)
        return  # this DaCHS knows <> already
    except ADQL_SYNTAX_ERRORS:
        pass
    original = grammar.Regex
    grammar.Regex = _comparison_with_not_equal(original)
    try:
        nodes.getTreeBuildingGrammar.cache_clear()
        adql.parseToTree(NOT_EQUAL_CHECK)
    except ADQL_SYNTAX_ERRORS as exc:
        raise SystemExit(f"dachs_serve: could not teach DaCHS's ADQL grammar '<>' (its "
                         f"comparison operator is no longer {DACHS_COMPARISON!r}?): {exc}")
    finally:
        grammar.Regex = original


def one_line_paragraphs() -> None:
    """Plain meta text reflowed to one line per paragraph (see the module docstring)."""
    meta.MetaValue.plainWrapper.width = sys.maxsize


def taprun_through_this_file(wjob) -> tuple[str, list[str]]:
    """TAPTransitions.getCommandLine: async jobs run here too, with the same ADQL."""
    return sys.executable, [sys.executable, __file__, "taprun", str(wjob.jobId)]


class RequestWithoutNagle(common.Request):
    """DaCHS's request that first sets TCP_NODELAY on its connection."""

    def process(self):
        set_no_delay = getattr(self.channel.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)
        super().process()


def warm_and_freeze(rd_ids: tuple[str, ...]) -> None:
    """Load what every query needs, then exempt it from garbage collection."""
    for rd_id in rd_ids:
        try:
            base.caches.getRD(rd_id)
        except Exception as exc:  # the server still answers; the error shows on use
            base.ui.notifyError(f"Could not preload {rd_id}: {exc}")
    adql.parseToTree(WARM_QUERY)
    gc.collect()
    gc.freeze()


def refreezing(reload, rd_ids: tuple[str, ...]):
    """DaCHS's reload, with the frozen objects released first and refrozen after."""
    def reload_then_refreeze():
        gc.unfreeze()
        try:
            reload()  # DaCHS 2.7's raises after clearing the caches (loadUserVanity)
        finally:
            warm_and_freeze(rd_ids)
    return reload_then_refreeze


def table_with_foreign_keys(response, request):
    """VOSITableResponse._getTree, keeping the keys to other TAP tables (see above)."""
    targets = [fk.destTableName.lower() for fk in response.tableDef.foreignKeys
               if fk.isADQLKey]
    return tableset.getTableForTableDef(response.tableDef, targets, rootElement=vosi.VTM.table)


# ------------------------------------------------------------------ cancelling
# The worker's database backend pid, in the job's directory (shared by all servers).
BACKEND_PID_FILE = "ocvo-backend.pid"
_thread_state = threading.local()
# Sync queries running now: request label -> the psycopg2 connection of its query.
_sync_queries = {}


def noting_the_backend(note_worker_pid):
    """taprunner._noteWorkerPID, also telling a sync request or an async job's directory."""
    def note(conn):
        note_worker_pid(conn)
        label = getattr(_thread_state, "label", None)
        job = getattr(_thread_state, "job", None)
        if label is not None:
            _sync_queries[label] = conn
        elif job is not None and taprunner._WORKER_PID:
            with open(os.path.join(job.getWD(), BACKEND_PID_FILE), "w") as handle:
                handle.write(str(taprunner._WORKER_PID))
    return note


def knowing_the_job(get_table):
    """taprunner.getQTableFromJob, with its job known to noting_the_backend."""
    def get_table_of_job(parameters, job, *args):
        _thread_state.job = job
        try:
            return get_table(parameters, job, *args)
        finally:
            _thread_state.job = None
    return get_table_of_job


def labelled_run_sync(run_sync):
    """ServiceBasedPage.runSync (a server thread) with its request's label known."""
    def run(self, raw_data):
        label = self.queryMeta.get("ocvo_request")
        _thread_state.label = label
        try:
            return run_sync(self, raw_data)
        finally:
            _thread_state.label = None
            _sync_queries.pop(label, None)
    return run


def cancel_on_hang_up(render):
    """SyncRenderer.render: when the client disconnects, cancel its running query."""
    def render_cancellable(self, request):
        label = secrets.token_hex(8)
        self.queryMeta["ocvo_request"] = label

        def hung_up(failure):
            connection = _sync_queries.pop(label, None)
            if connection is not None:
                base.ui.notifyInfo(f"Client hung up: cancelling its query ({label})")
                connection.cancel()
        request.notifyFinish().addErrback(hung_up)
        return render(self, request)
    return render_cancellable


def _cancel_backend(pid_file: str) -> None:
    try:
        with open(pid_file) as handle:
            backend = int(handle.read().strip())
    except (OSError, ValueError):
        return
    with base.getUntrustedConn() as conn:
        conn.execute("SELECT pg_cancel_backend(%(pid)s)", {"pid": backend})


def _is_worker_of(pid: int, job_id: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            arguments = handle.read().split(b"\0")
    except OSError:
        return False
    return b"taprun" in arguments and job_id.encode() in arguments


def stopping_before_destruction(prepare):
    """UWSJobWithWD.prepareForDestruction: a running TAP job is stopped, then removed."""
    def prepare_for_destruction(job):
        if job.phase in (uws.QUEUED, uws.EXECUTING) and (job.pid or 0) > 1:
            try:
                _cancel_backend(os.path.join(job.getWD(), BACKEND_PID_FILE))
            except Exception as exc:  # still end the worker and remove the job
                base.ui.notifyWarning(f"Could not cancel the query of {job.jobId}: {exc}")
            if _is_worker_of(job.pid, job.jobId):
                os.kill(job.pid, signal.SIGTERM)
        prepare(job)
    return prepare_for_destruction


def own_jobs_only(get_job_list):
    """uwsactions.getJobList: anonymous callers see no jobs, others only their own."""
    def job_list(worker_system, forOwner=None, phase=None, last=None, after=None):
        if forOwner is None:
            return utils.stanxml.xmlrender(uwsactions.UWS.jobs(),
                                           worker_system.joblistPreamble)
        return get_job_list(worker_system, forOwner, phase=phase, last=last, after=after)
    return job_list


def cancellable_queries() -> None:
    """Install the cancelling and job-list adaptations (see the module docstring)."""
    taprunner._noteWorkerPID = noting_the_backend(taprunner._noteWorkerPID)
    taprunner.getQTableFromJob = knowing_the_job(taprunner.getQTableFromJob)
    uws.UWSJobWithWD.prepareForDestruction = stopping_before_destruction(
        uws.UWSJobWithWD.prepareForDestruction)


def listen_on_own_port() -> None:
    """OCVO_DACHS_PORT: this process's port and pid file; serverURL (nginx) unchanged."""
    port = os.environ.get("OCVO_DACHS_PORT")
    if port:
        base.setConfig("web", "serverPort", port)
        serve.PIDManager.path = os.path.join(base.getConfig("stateDir"), f"web-{port}.pid")


def run_tap_job(job_id: str) -> None:
    """DaCHS's ``gavo taprun JOBID`` with the adapted ADQL grammar."""
    accept_not_equal()
    one_line_paragraphs()
    cancellable_queries()
    sys.argv = ["gavo", "--ui", "stingy", "taprun", "--", job_id]
    cli.main()


if __name__ == "__main__" and sys.argv[1] == "taprun":
    run_tap_job(sys.argv[2])
elif __name__ == "__main__" and sys.argv[1] == "dachs":
    one_line_paragraphs()
    sys.argv = ["dachs", *sys.argv[2:]]
    cli.main()
elif __name__ == "__main__":
    preload = (sys.argv[1], "//tap")
    accept_not_equal()
    one_line_paragraphs()
    tap.TAPTransitions.getCommandLine = lambda self, wjob: taprun_through_this_file(wjob)
    vosi.VOSITableResponse._getTree = table_with_foreign_keys
    cancellable_queries()
    grend.ServiceBasedPage.runSync = labelled_run_sync(grend.ServiceBasedPage.runSync)
    syncrender.SyncRenderer.render = cancel_on_hang_up(syncrender.SyncRenderer.render)
    uwsactions.getJobList = own_jobs_only(uwsactions.getJobList)
    listen_on_own_port()
    root.site.requestFactory = RequestWithoutNagle
    serve._reloadConfig = refreezing(serve._reloadConfig, preload)
    reactor.callWhenRunning(warm_and_freeze, preload)
    sys.argv = ["dachs", "serve", *sys.argv[2:]]
    cli.main()
