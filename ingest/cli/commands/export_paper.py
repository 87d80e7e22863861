"""Write the thesis catalogues (Tables 4-8..4-11) from an ingest output directory.

The four FITS files carry the thesis column names (Cluster, Ra, Dec, GLON, ...,
RV_MRS, RV_MRS_Std, RV_MRS_Num, RV_MRS_flag; Uid, GP_id, GaiaDR3, Ra_obs, ...;
M_H, M_H_Std, M_H_Num, ...; Teff, Teff_Std, Teff_Nobs, ..., Vsini_Lasp) and
are written to DIR/paper unless --out is given.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ingest.core.errors import InputError

HELP = "write thesis Tables 4-8..4-11 (thesis column names) from an ingest output"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, metavar="DIR", help="ingest output directory")
    parser.add_argument("--out", type=Path, metavar="DIR2",
                        help="where to write the tables (default: DIR/paper)")


def run(args: argparse.Namespace) -> int:
    from ingest.pipeline.s8_outputs.paper import export

    for table in ("cluster", "member", "spectrum"):
        if not (args.directory / f"{table}.fits").is_file():
            raise InputError(args.directory, f"not an ingest output directory: no {table}.fits")
    out = args.out or args.directory / "paper"
    for name, rows in export(args.directory, out).items():
        print(f"{out / name}: {rows:,} rows")
    return 0
