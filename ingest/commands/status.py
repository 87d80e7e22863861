"""Report whether the private PostgreSQL and DaCHS server run, and where.

Exit status 0 when TAP answers, 1 otherwise (usable in scripts).
"""
from __future__ import annotations

import argparse

HELP = "show whether the private service runs (exit 0 if TAP answers)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options: the instance is the one OCVO_STATE names."""


def run(args: argparse.Namespace) -> int:
    from ..service.instance import Instance

    status = Instance.from_env().status()
    for key, value in status.items():
        print(f"{key:18s} {value}")
    return 0 if status["web_answers"] else 1
