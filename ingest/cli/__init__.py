"""The ``ocvo`` command line: one subcommand per module in ingest.cli.commands."""
from __future__ import annotations

import argparse
import importlib
import sys

from ingest.core.errors import OcvoError

# (subcommand, module in ingest.cli.commands); order is the order of --help.
COMMANDS = [
    ("simulate", "simulate"),
    ("ingest", "ingest"),
    ("export-paper", "export_paper"),
    ("figures", "figures"),
    ("publish", "publish"),
    ("serve", "serve"),
    ("stop", "stop"),
    ("status", "status"),
    ("demo", "demo"),
    ("bench", "bench"),
    ("validate", "validate"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocvo",
        description="Open clusters x LAMOST: simulate, ingest and publish a VO service.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS:
        module = importlib.import_module(f"ingest.cli.commands.{module_name}")
        sub_parser = sub.add_parser(name, help=module.HELP, description=module.__doc__)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args._run(args) or 0
    except OcvoError as exc:
        print(f"ocvo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ocvo {args.command}: interrupted", file=sys.stderr)
        return 130
