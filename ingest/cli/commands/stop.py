"""Stop the private DaCHS server and its PostgreSQL cluster (whatever of them runs)."""
from __future__ import annotations

import argparse

HELP = "stop the private DaCHS server and PostgreSQL"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options: the instance is the one OCVO_STATE names."""


def run(args: argparse.Namespace) -> int:
    from ingest.publication.instance import Instance

    instance = Instance.from_env()
    instance.stop()
    print(f"stopped (state {instance.state})")
    return 0
