"""Start the private PostgreSQL + DaCHS instance on 127.0.0.1 (set up on first use).

State lives in OCVO_STATE (default .state/ in the project); ports come from
OCVO_PG_PORT / OCVO_WEB_PORT or what the instance was first set up with.
After a crash (kill -9 of DaCHS or PostgreSQL) it cleans up what was left
and starts at the first try; a publication killed after its database commit
is finished first.  Publish a catalogue with `ocvo publish DIR` (or run `ocvo demo`).
"""
from __future__ import annotations

import argparse

HELP = "start the private PostgreSQL + DaCHS service on 127.0.0.1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds to wait for TAP to answer (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=None,
                        help="DaCHS processes (default: OCVO_WEB_WORKERS, else cores + 1); "
                             "more than one run behind nginx on the web port")


def run(args: argparse.Namespace) -> int:
    from ingest.publication.instance import Instance
    from ingest.publication.publish import publication_lock, repair

    instance = Instance.from_env()
    instance.init()
    with publication_lock(instance):  # a publication killed after its commit is finished
        repair(instance)
    instance.serve(timeout=args.timeout, workers=args.workers)
    pids = ", ".join(f":{port} pid {pid}" for port, pid in instance.dachs_pids().items())
    print(f"serving: {instance.url}/  TAP: {instance.tap_url}  (state {instance.state}; "
          f"DaCHS {pids}{'; nginx in front' if instance.nginx_pid() else ''})")
    return 0
