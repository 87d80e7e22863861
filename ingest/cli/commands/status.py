"""Report each component of the private service with a real probe, and where it runs.

PostgreSQL answers ``SELECT 1``; each DaCHS process and nginx in front
answer a TAP query (so a dead database shows as failing TAP too).  Exit
status 0 only when every component is up, 1 otherwise (usable in scripts
and health checks).
"""
from __future__ import annotations

import argparse

HELP = "probe PostgreSQL, each DaCHS process and nginx (exit 0 only if all are up)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options: the instance is the one OCVO_STATE names."""


def run(args: argparse.Namespace) -> int:
    from ingest.publication.instance import Instance

    status = Instance.from_env().status()
    components = status.pop("components")
    healthy = status.pop("healthy")
    for name, (up, detail) in components.items():
        print(f"{name:18s} {'up' if up else 'DOWN':5s} {detail}")
    for key, value in status.items():
        print(f"{key:18s} {value}")
    print("healthy" if healthy else "NOT healthy: a component is down")
    return 0 if healthy else 1
