"""Everything about one cluster field, from its own random stream.

Each cluster gets ``default_rng([seed, 1, index])``, so its stars and
spectra do not depend on how clusters are grouped into chunks or on any
other cluster: the output is the same whatever the block size.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ingest.core.vocabulary import XFE
from ingest.simulation.presets import Preset
from ingest.simulation.spectra import lrs_rows, mrs_rows, prepare_stars
from ingest.simulation.stars import KIND_CONTAMINANT, KIND_MEMBER, cluster_stars

KIND_NAMES = np.array(["member", "contaminant", "field", "neighbour"])


@dataclass
class FieldOutput:
    """Rows of each product for one cluster field, plus truth counts."""

    members: dict[str, np.ndarray]
    mrs: dict[str, np.ndarray]
    lrs: dict[str, np.ndarray]
    truth_stars: dict[str, np.ndarray]
    n_with_spectra: int
    n_spectra: int


def _member_rows(stars: dict, listed: np.ndarray, c: Mapping[str, Any], cluster_id: int) -> dict:
    n = len(listed)
    return {
        "Name": np.full(n, c["name"]), "ID": np.full(n, cluster_id, dtype=np.int32),
        "GaiaDR3": stars["source_id"][listed], "Prob": stars["prob"][listed],
        "RA_ICRS": stars["ra"][listed], "DE_ICRS": stars["dec"][listed],
        "pmRA": stars["pmRA"][listed], "e_pmRA": stars["e_pm"][listed],
        "pmDE": stars["pmDE"][listed], "e_pmDE": stars["e_pm"][listed],
        "Plx": stars["Plx"][listed], "e_Plx": stars["e_Plx"][listed],
        "Gmag": stars["G"][listed], "BP-RP": stars["bp_rp"][listed],
    }


def _truth_rows(stars: dict, keep: np.ndarray, c: Mapping[str, Any], n_mrs: np.ndarray,
                n_lrs: np.ndarray) -> dict:
    kind = stars["kind"][keep]
    rows = {
        "GaiaDR3": stars["source_id"][keep], "Name": np.full(len(keep), c["name"]), "kind": KIND_NAMES[kind],
        "is_member": kind == KIND_MEMBER, "in_member_table": np.isin(kind, (KIND_MEMBER, KIND_CONTAMINANT)),
        "Gmag": stars["G"][keep],
        "is_cool_dwarf": stars["bias"]["cool_dwarf"][keep],
        "logg_bias": stars["bias"]["logg"][keep], "feh_bias": stars["bias"]["feh"][keep],
        "uid": np.char.add("U", stars["gp_id"][keep].astype(str)),
        "n_spectra": n_mrs[keep], "n_lrs": n_lrs[keep],
        "has_gaia_id_in_spectra": stars["has_id_mrs"][keep], "has_gaia_id_in_lrs": stars["has_id_lrs"][keep],
    }
    for name in ("prob", "ra", "dec", "pmra", "pmdec", "dist_pc", "rv", "teff", "logg", "fe_h", "m_h",
                 "alpha_m", "vsini", "is_binary", "binary_k", "gp_id", *XFE):
        rows[name] = stars[name][keep]
    return rows


def simulate_field(c: Mapping[str, Any], index: int, p: Preset, model: dict[str, Any],
                   seed: int) -> FieldOutput:
    """Stars, member-table rows, MRS and LRS rows and truth of cluster ``index`` (0-based)."""
    rng = np.random.default_rng([seed, 1, index])
    stars = cluster_stars(c, index, model, p.field_spectra_stars, rng)
    prepare_stars(stars, model, rng)
    mrs, n_mrs = mrs_rows(stars, index, p.mrs_coverage, model, rng)
    lrs, n_lrs = lrs_rows(stars, index, p.lrs_coverage, model, rng)
    listed = np.flatnonzero(np.isin(stars["kind"], (KIND_MEMBER, KIND_CONTAMINANT)))
    keep = np.flatnonzero(np.isin(stars["kind"], (KIND_MEMBER, KIND_CONTAMINANT)) | (n_mrs > 0) | (n_lrs > 0))
    true_members = stars["kind"] == KIND_MEMBER
    return FieldOutput(
        members=_member_rows(stars, listed, c, index + 1), mrs=mrs, lrs=lrs,
        truth_stars=_truth_rows(stars, keep, c, n_mrs, n_lrs),
        n_with_spectra=int(np.count_nonzero(true_members & (n_mrs > 0))),
        n_spectra=int(n_mrs[true_members].sum()),
    )
