"""Publish an ingest output directory DIR into the private DaCHS service.

DIR is validated first (manifest.json, the SHA-256 of every table file,
the columns against rd.xml); then all tables are replaced in one database
transaction, so a failed or interrupted publication leaves the previous
catalogue serving.  A DIR whose row counts collapse against the served
catalogue (fewer than half the clusters, no members) is refused unless
--allow-shrink is given.  The instance (OCVO_STATE, default .state/) is set up on
first use; a running server picks the new catalogue up at once.
"""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "validate an ingest output DIR and publish it atomically into DaCHS"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, metavar="DIR", help="ingest output directory")
    parser.add_argument("--allow-shrink", action="store_true",
                        help="publish even if DIR has fewer than half the served clusters "
                             "or no members/spectra (refused otherwise)")


def run(args: argparse.Namespace) -> int:
    from ingest.publication.instance import Instance
    from ingest.publication.publish import publish

    instance = Instance.from_env()
    seconds = publish(args.dir, instance, say=lambda message: print(message, flush=True),
                      allow_shrink=args.allow_shrink)
    print(f"published {args.dir} in {sum(seconds.values()):.1f} s; TAP: {instance.tap_url}")
    return 0
