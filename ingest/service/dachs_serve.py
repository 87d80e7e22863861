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
"""
import gc
import sys

from twisted.internet import reactor

from gavo import adql, base
from gavo.base import meta
from gavo.adql import grammar, nodes
from gavo.protocols import tap
from gavo.registry import tableset
from gavo.user import cli, serve
from gavo.web import common, root, vosi

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


def run_tap_job(job_id: str) -> None:
    """DaCHS's ``gavo taprun JOBID`` with the adapted ADQL grammar."""
    accept_not_equal()
    one_line_paragraphs()
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
    root.site.requestFactory = RequestWithoutNagle
    serve._reloadConfig = refreezing(serve._reloadConfig, preload)
    reactor.callWhenRunning(warm_and_freeze, preload)
    sys.argv = ["dachs", "serve", *sys.argv[2:]]
    cli.main()
