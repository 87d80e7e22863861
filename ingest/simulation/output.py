"""File names, column layouts (real catalogue names and units) and the
'this is simulated' labelling of every file the simulator writes."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ingest.core.fitsstream import ColumnSpec, FitsTableWriter

from ingest.core.vocabulary import ABUNDANCES, XFE

FILES = {
    "clusters": "hunt2024_clusters.fits",
    "members": "hunt2024_members.fits",
    "mrs": "lamost_mrs_dr11.fits",
    "lrs": "lamost_lrs_dr8.fits",
    "litA": "literature_a.csv",
    "litB": "literature_b.csv",
    "truth_clusters": "truth_clusters.fits",
    "truth_stars": "truth_stars.fits",
    "simulation": "simulation.json",
    "readme": "README.txt",
}

# Versions recorded in simulation.json: the packages the simulator computes with.
VERSIONED_PACKAGES = ("numpy", "astropy", "pandas")
NAME = "S24"
MAS_YR = "mas/yr"

CLUSTER_COLUMNS: list[ColumnSpec] = [
    ("Name", NAME, ""), ("ID", "i4", ""), ("AllNames", "S64", ""),
    ("RA_ICRS", "f8", "deg"), ("DE_ICRS", "f8", "deg"), ("GLON", "f8", "deg"), ("GLAT", "f8", "deg"),
    ("r50", "f4", "deg"), ("N", "i4", ""),
    ("pmRA", "f4", MAS_YR), ("s_pmRA", "f4", MAS_YR), ("e_pmRA", "f4", MAS_YR),
    ("pmDE", "f4", MAS_YR), ("s_pmDE", "f4", MAS_YR), ("e_pmDE", "f4", MAS_YR),
    ("Plx", "f4", "mas"), ("s_Plx", "f4", "mas"), ("e_Plx", "f4", "mas"),
    ("dist16", "f4", "pc"), ("dist50", "f4", "pc"), ("dist84", "f4", "pc"),
    ("X", "f4", "pc"), ("Y", "f4", "pc"), ("Z", "f4", "pc"),
    ("RV", "f4", "km/s"), ("s_RV", "f4", "km/s"), ("e_RV", "f4", "km/s"), ("n_RV", "i4", ""),
    ("logAge16", "f4", ""), ("logAge50", "f4", ""), ("logAge84", "f4", ""),
    ("AV50", "f4", "mag"), ("CST", "f4", ""),
]

MEMBER_COLUMNS: list[ColumnSpec] = [
    ("Name", NAME, ""), ("ID", "i4", ""), ("GaiaDR3", "i8", ""), ("Prob", "f4", ""),
    ("RA_ICRS", "f8", "deg"), ("DE_ICRS", "f8", "deg"),
    ("pmRA", "f4", MAS_YR), ("e_pmRA", "f4", MAS_YR), ("pmDE", "f4", MAS_YR), ("e_pmDE", "f4", MAS_YR),
    ("Plx", "f4", "mas"), ("e_Plx", "f4", "mas"), ("Gmag", "f4", "mag"), ("BP-RP", "f4", "mag"),
]


def _with_errors(names: list[str], unit: str) -> list[ColumnSpec]:
    return [spec for name in names for spec in ((name, "f4", unit), (f"{name}_err", "f4", unit))]


MRS_COLUMNS: list[ColumnSpec] = [
    ("obsid", "i8", ""), ("mobsid", "S12", ""), ("uid", "S16", ""), ("gp_id", "i8", ""),
    ("designation", "S19", ""), ("gaia_source_id", "i8", ""), ("ra", "f8", "deg"), ("dec", "f8", "deg"),
    ("obsdate", "S10", ""), ("lmjm", "i8", "min"), ("band", "S2", ""), ("snr", "f4", ""),
    ("rv_br0", "f4", "km/s"), ("rv_br0_err", "f4", "km/s"), ("rv_br_flag", "i2", ""),
    *_with_errors(["rv_b0", "rv_r0"], "km/s"),
    *_with_errors(["teff_lasp"], "K"), *_with_errors(["logg_lasp", "feh_lasp"], ""),
    *_with_errors(["vsini_lasp"], "km/s"),
    *_with_errors(["teff_cnn"], "K"), *_with_errors(["logg_cnn", "feh_cnn", "m_h_cnn", "alpha_m_cnn"], ""),
    *_with_errors(list(XFE), ""),
]

LRS_COLUMNS: list[ColumnSpec] = [
    ("obsid", "i8", ""), ("designation", "S19", ""), ("obsdate", "S10", ""), ("lmjd", "i4", "d"),
    ("gaia_source_id", "i8", ""), ("ra", "f8", "deg"), ("dec", "f8", "deg"), ("snrg", "f4", ""),
    ("rv", "f4", "km/s"), ("rv_err", "f4", "km/s"), ("teff", "f4", "K"), ("teff_err", "f4", "K"),
    ("logg", "f4", ""), ("logg_err", "f4", ""), ("feh", "f4", ""), ("feh_err", "f4", ""),
    ("class", "S8", ""), ("subclass", "S4", ""),
]


TRUTH_CLUSTER_COLUMNS: list[ColumnSpec] = [
    ("Name", NAME, ""), ("ra", "f8", "deg"), ("dec", "f8", "deg"),
    ("rv", "f8", "km/s"), ("sigma_int", "f8", "km/s"), *[(a, "f8", "") for a in ABUNDANCES],
    ("dist_pc", "f8", "pc"), ("logage", "f8", ""), ("av", "f8", "mag"),
    ("pmra", "f8", MAS_YR), ("pmdec", "f8", MAS_YR),
    ("x", "f8", "kpc"), ("y", "f8", "kpc"), ("z", "f8", "kpc"), ("r_gc", "f8", "kpc"), ("z_gc", "f8", "kpc"),
    ("r50_pc", "f8", "pc"), ("n_members", "i4", ""), ("n_contaminants", "i4", ""),
    ("n_with_spectra", "i4", ""), ("n_spectra", "i4", ""), ("pair", NAME, ""),
]

TRUTH_STAR_COLUMNS: list[ColumnSpec] = [
    ("GaiaDR3", "i8", ""), ("Name", NAME, ""), ("kind", "S12", ""), ("is_member", bool, ""),
    ("in_member_table", bool, ""), ("prob", "f4", ""), ("ra", "f8", "deg"), ("dec", "f8", "deg"),
    ("pmra", "f8", MAS_YR), ("pmdec", "f8", MAS_YR), ("dist_pc", "f8", "pc"), ("Gmag", "f4", "mag"),
    ("rv", "f8", "km/s"), ("teff", "f4", "K"), ("logg", "f4", ""),
    *[(a, "f4", "") for a in ABUNDANCES], ("vsini", "f4", "km/s"),
    ("is_binary", bool, ""), ("binary_k", "f4", "km/s"), ("is_cool_dwarf", bool, ""),
    ("logg_bias", "f4", ""), ("feh_bias", "f4", ""),
    ("uid", "S16", ""), ("gp_id", "i8", ""), ("n_spectra", "i4", ""), ("n_lrs", "i4", ""),
    ("has_gaia_id_in_spectra", bool, ""), ("has_gaia_id_in_lrs", bool, ""),
]

_FORMATS = {
    "clusters": "Hunt & Reffert 2024 (J/A+A/686/A42) cluster table format",
    "members": "Hunt & Reffert 2024 (J/A+A/686/A42) member table format",
    "mrs": "LAMOST MRS DR11 v1.1 parameter catalogue format (one row per exposure)",
    "lrs": "LAMOST LRS DR8 A/F/G/K catalogue format",
    "truth_clusters": "injected truth per cluster",
    "truth_stars": "injected truth per star",
}


def header_cards(kind: str, preset: str, seed: int) -> dict[str, Any]:
    """FITS cards that label a file as simulated (no dates: files must be byte-identical)."""
    return {
        "SIMULATE": (True, "SIMULATED DATA, not real observations"),
        "ORIGIN": ("simulated by ocvo (ingest.simulation)", "not real data"),
        "SIMPRSET": (preset, "simulator preset"),
        "SIMSEED": (seed, "simulator seed"),
        "COMMENT": [f"SIMULATED DATA in the {_FORMATS[kind]}.",
                    "Made by 'ocvo simulate'; injected truth is in truth_*.fits and simulation.json.",
                    "Not real Gaia or LAMOST measurements; do not use for science."],
    }


def open_writer(directory: Path, kind: str, columns: list[ColumnSpec], preset: str, seed: int) -> FitsTableWriter:
    """A streaming writer for one of the simulator's FITS products."""
    return FitsTableWriter(directory / FILES[kind], columns, header_cards(kind, preset, seed),
                           extname=kind.upper())


def write_json(path: Path, content: dict[str, Any]) -> None:
    path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")


README = """SIMULATED DATA - NOT REAL OBSERVATIONS
======================================

Every file in this directory was written by `ocvo simulate` (preset {preset}, seed {seed}).
The catalogues use the column names and units of the real ones, so that the same
ingest commands run on them and on real data, but no value is a measurement:

  hunt2024_clusters.fits  Hunt & Reffert 2024-format cluster table
  hunt2024_members.fits   Hunt & Reffert 2024-format member table
  lamost_mrs_dr11.fits    LAMOST MRS DR11-format parameter catalogue, one row per exposure
  lamost_lrs_dr8.fits     LAMOST LRS DR8-format A/F/G/K catalogue (RV zero point -4.7 km/s)
  literature_a.csv        literature-style cluster RV/[Fe/H] table (high-resolution-like)
  literature_b.csv        literature-style cluster RV/[Fe/H] table (LAMOST-LRS-like)
  truth_clusters.fits     injected truth per cluster
  truth_stars.fits        injected truth per star
  simulation.json         preset, seed, the full model, counts and package versions

FITS files carry SIMULATE = T in every header.  The CSV files have no comment line
(so any CSV reader takes them as they are); this README labels them.  Cluster names
(OCSim_NNNN, SimCat_NNN) and Gaia/LAMOST identifiers are synthetic.
See docs/simulator.md in the project for what is simulated and how.
"""
