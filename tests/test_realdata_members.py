"""Real data: Cantat-Gaudin 2020 Blanco 1 members (Gaia DR2 ids, epoch 2015.5) x Gaia DR3 RVs.

``--catalogue cg20`` must read the members as DR2 without any setting by hand.  Most
DR2 ids survived into DR3, so most RVs match by id; the few stars whose id changed
match only with ``crossmatch.id_fallback``, at a separation equal to the cluster's
proper motion times the 0.5 yr between the DR2 and DR3 epochs (the DR3 RV table has
no epoch column, so the fibre-less "spectra" sit at their DR3 positions).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ingest.core import config as config_module
from ingest.pipeline import run as pipeline
from ingest.pipeline.s1_inputs import load
from ingest.pipeline.s1_inputs import colmap

pytestmark = pytest.mark.realdata

GAIA_RV_MAP = colmap.COLMAP_DIR / "gaia-dr3-rvs.toml"


def blanco1(shared_data, id_fallback: bool) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(cluster rows, member frame, spectrum rows) of the CG20 Blanco 1 x DR3 RV run."""
    merged = config_module.load()
    merged["crossmatch"]["id_fallback"] = id_fallback
    cfg = config_module.settings(merged)
    members_path = shared_data / "members" / "cantat2020" / "cantat2020_blanco1_members_dr2.csv"
    spectra = [(shared_data / "members" / "gyrointerp" / "blanco1_gillen2020_x_dr3.csv",
                GAIA_RV_MAP)]
    rejections: dict[str, int] = {}
    clusters, members, rvs = load.read_inputs(
        shared_data / "cluster_tables" / "CANTAT2020.csv", members_path, spectra, "cg20", None,
        cfg, rejections)
    cluster_table, _, spectrum_table = pipeline.catalogue_tables(
        clusters, members, rvs, cfg, rejections, pipeline.StageClock(progress=False),
        (members_path, [p for p, _ in spectra]), colmap.member_gaia_release("cg20", None))
    return cluster_table, members, spectrum_table


def test_cg20_members_are_dr2_and_their_rv_agrees_with_hunt2023(shared_data):
    cluster_table, _, spectrum = blanco1(shared_data, id_fallback=False)
    assert (spectrum["match_method"] == "source_id").all()
    assert spectrum["member_key"].str.startswith("Gaia DR2 ").all()
    hunt = pd.read_csv(shared_data / "cluster_tables" / "HUNT2023.csv").set_index("Name")
    (rv,) = cluster_table["rv"]
    assert abs(rv - hunt.loc["Blanco 1", "RV"]) < 1.5     # the bar of test_realdata_rv


def test_id_fallback_finds_the_stars_whose_gaia_id_changed(shared_data):
    # A position match here is a DR3 RV whose id is no DR2 member's id (method
    # "position" is only tried for those), at the member's DR2 position moved by 0.5 yr.
    _, _, spectrum = blanco1(shared_data, id_fallback=True)
    by_position = spectrum[spectrum["match_method"] == "position"]
    assert len(by_position) >= 1
    cg20 = pd.read_csv(shared_data / "cluster_tables" / "CANTAT2020.csv").set_index("Cluster")
    expected_mas = np.hypot(cg20.loc["Blanco_1", "pmRA*"], cg20.loc["Blanco_1", "pmDE"]) * 0.5
    np.testing.assert_allclose(by_position["match_sep"].to_numpy() * 1000, expected_mas, atol=2.0)
