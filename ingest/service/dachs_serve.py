"""``dachs serve ARGS`` tuned for query latency.

Run with Debian's python3 (DaCHS's interpreter, not the ingest venv):
``python3 dachs_serve.py RD_ID start``, RD_ID being the RD to preload.  Two changes to the stock server, both
measured with ``bench/bench_publish.py`` (see docs/service.md):

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
from gavo.user import cli, serve
from gavo.web import common, root

# Parsing builds the ADQL grammar; no table is looked up.
WARM_QUERY = "SELECT TOP 1 * FROM t WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE(0, 0, 1))"


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


if __name__ == "__main__":
    preload = (sys.argv[1], "//tap")
    root.site.requestFactory = RequestWithoutNagle
    serve._reloadConfig = refreezing(serve._reloadConfig, preload)
    reactor.callWhenRunning(warm_and_freeze, preload)
    sys.argv = ["dachs", "serve", *sys.argv[2:]]
    cli.main()
