"""Write simulated input catalogues (Hunt & Reffert 2024 clusters and members,
LAMOST MRS DR11 and LRS DR8 rows, two literature tables) in the real formats,
with the injected truth beside them.  Same preset and seed give byte-identical
files.  Every file is labelled as simulated; see docs/simulator.md."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "write simulated input catalogues (real formats, injected truth)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=["demo", "full"], default="demo",
                        help="demo: ~300 clusters, a few seconds; full: ~7000 clusters, "
                             "~1.3M members, ~10M MRS rows (default: demo)")
    parser.add_argument("--scale", type=float, default=1.0, metavar="X",
                        help="X times the preset's clusters, so members and spectra grow "
                             "linearly too (e.g. 0.25, 2 for ~20M MRS rows at full; default 1)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed (default: 'seed' of the configuration defaults)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output directory (created; an earlier simulation there is replaced)")
    parser.add_argument("--cluster-catalogue", type=Path, default=None, metavar="HUNT2024.csv",
                        help="draw cluster positions, distances, ages and extinctions from a real "
                             "Hunt & Reffert 2024 cluster table instead of the parametric model")
    parser.add_argument("--rv-err-underestimate", type=float, default=1.0, metavar="FACTOR",
                        help="MRS RV errors reported FACTOR times smaller than the true ones "
                             "(default 1: exact)")
    parser.add_argument("--night-zp-jitter", type=float, default=0.0, metavar="KMS",
                        help="per-night MRS RV zero-point scatter in km/s (default 0: none)")
    parser.add_argument("--member-variant", choices=["hunt2024", "positional", "cg20"],
                        default="hunt2024",
                        help="also write the member list without Gaia ids (positional) or with "
                             "Gaia DR2 ids and epoch 2015.5 (cg20) (default: hunt2024 only)")
    parser.add_argument("--gaia-rvs", action="store_true",
                        help="also write gaia_rvs.csv: Gaia-RVS-like RVs of the bright members "
                             "with generic column names and no survey (read with a column map)")


def run(args: argparse.Namespace) -> int:
    from ingest.core import config
    from ingest.simulation import simulate

    seed = config.defaults()["seed"] if args.seed is None else args.seed
    summary = simulate(args.preset, seed, args.out, progress=sys.stderr.isatty(),
                       cluster_catalogue=args.cluster_catalogue,
                       spectra_options={"rv_err_underestimate": args.rv_err_underestimate,
                                        "night_zp_jitter_kms": args.night_zp_jitter},
                       member_variant=args.member_variant, scale=args.scale)
    counts = summary["counts"]
    if args.gaia_rvs:
        from ingest.simulation.gaia_rvs import FILE, write_gaia_rvs

        write_gaia_rvs(args.out, args.out / FILE, seed)
    print(f"simulated preset {summary['preset']!r} (seed {seed}) into {args.out}: "
          f"{counts['clusters']} clusters, {counts['members']} member-table rows, "
          f"{counts['mrs']} MRS rows, {counts['lrs']} LRS rows "
          f"({counts['members_with_spectra']} true members with MRS spectra)")
    return 0
