"""Start the private PostgreSQL + DaCHS instance on 127.0.0.1 (set up on first use).

State lives in OCVO_STATE (default .state/ in the project); ports come from
OCVO_PG_PORT / OCVO_WEB_PORT or what the instance was first set up with.
Publish a catalogue with `ocvo publish DIR` (or run `ocvo demo`).
"""
from __future__ import annotations

import argparse

HELP = "start the private PostgreSQL + DaCHS service on 127.0.0.1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds to wait for TAP to answer (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from ..service.instance import Instance

    instance = Instance.from_env()
    instance.serve(timeout=args.timeout)
    print(f"serving: {instance.url}/  TAP: {instance.tap_url}  (state {instance.state})")
    return 0
