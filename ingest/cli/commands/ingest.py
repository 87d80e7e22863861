"""Ingest a membership catalogue and spectroscopic catalogues into the published tables.

Reads the cluster and member files (Hunt & Reffert 2024/2023 or Cantat-Gaudin
2020) and one or more spectrum catalogues (LAMOST MRS/LRS or any survey via a
column map), crossmatches, applies quality control, combines repeat spectra,
estimates cluster RVs and abundances by Monte Carlo (Fu et al. 2022), adds
Galactic positions, orbits, gradients, literature comparisons and binary
clusters, and writes cluster/member/spectrum/... FITS tables and manifest.json
into DIR (replaced only when the whole run succeeds).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ingest.core.errors import InputError
from ingest.pipeline.s1_inputs import colmap

HELP = "crossmatch, QC and Monte Carlo estimation -> FITS tables + manifest"
ENGINES = ("local", "dask")


def survey_argument(value: str) -> str | Path:
    """A known survey name or a column-map file (checked here so typos fail at parse time)."""
    try:
        return colmap.survey_argument(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clusters", required=True, type=Path, metavar="FILE",
                        help="cluster table of the membership catalogue")
    parser.add_argument("--members", required=True, type=Path, metavar="FILE",
                        help="member-star table of the membership catalogue")
    parser.add_argument("--spectra", required=True, type=Path, action="append", metavar="FILE",
                        help="spectrum catalogue (repeat for several files)")
    parser.add_argument("--survey", type=survey_argument, metavar="lamost-mrs|lamost-lrs|MAP.toml",
                        help="survey of the spectrum files (default: detected from columns)")
    parser.add_argument("--catalogue", choices=colmap.CATALOGUES, default="hunt2024",
                        help="membership catalogue format (default: %(default)s)")
    parser.add_argument("--map", type=Path, metavar="MAP.toml",
                        help="column map overriding the defaults ([clusters]/[members]/[spectra])")
    parser.add_argument("--literature", action="append", default=[], metavar="NAME=FILE[:MAP]",
                        help="literature catalogue to compare with (repeatable)")
    parser.add_argument("--config", type=Path, metavar="CONFIG.toml",
                        help="processing configuration overriding ingest/defaults.toml")
    parser.add_argument("--seed", type=int, help="random seed (default: the config's seed)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="output directory: new, empty, or an earlier ingest output "
                             "(replaced with --force)")
    parser.add_argument("--force", action="store_true",
                        help="replace an earlier ingest output in DIR (never other files)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--engine", choices=ENGINES, default="local",
                        help="local: this machine (default); dask: crossmatch on HATS "
                             "catalogues with LSDB, combination and estimates on Dask "
                             "(docs/scaling.md)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="with --engine dask: an existing Dask scheduler, e.g. "
                             "tcp://host:8786 (default: a local cluster, one worker per core)")


def parse_literature(spec: str) -> tuple[str, Path, Path | None]:
    """'NAME=FILE[:MAP]' -> (name, file, map or None)."""
    name, sep, rest = spec.partition("=")
    if not sep or not name or not rest:
        raise InputError(spec, "literature must be given as NAME=FILE or NAME=FILE:MAP.toml")
    path, _, colmap = rest.partition(":")
    return name, Path(path), Path(colmap) if colmap else None


def run(args: argparse.Namespace) -> int:
    from ingest.pipeline.run import run_ingest
    from ingest.pipeline.s8_outputs.summary import format_summary

    if args.scheduler is not None and args.engine != "dask":
        raise InputError(args.scheduler, "--scheduler needs --engine dask")
    arguments = dict(
        clusters=args.clusters, members=args.members, spectra=args.spectra, out=args.out,
        catalogue=args.catalogue, colmap=args.map, survey=args.survey,
        literature=[parse_literature(s) for s in args.literature], config=args.config,
        seed=args.seed, progress=not args.no_progress, force=args.force)
    if args.engine == "dask":
        from ingest.pipeline.dask_engine import dask_engine

        with dask_engine(args.scheduler) as engine:
            summary = run_ingest(**arguments, engine=engine)
    else:
        summary = run_ingest(**arguments)
    print(format_summary(summary))
    return 0
