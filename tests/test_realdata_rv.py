"""Real data: Hunt 2023 members x gyrointerp Gaia DR3 RVs -> cluster RVs close to Hunt 2023's.

Hunt & Reffert (2023) derived their cluster RVs from more Gaia DR3 RVs than this
subset holds, so agreement is expected only to ~1 km/s (issue 3: each within
1.5 km/s, on average within 0.8 km/s).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ingest import config as config_module
from ingest.validation import checks

pytestmark = pytest.mark.realdata

CLUSTERS = ("Melotte 22", "NGC 2632", "Melotte 20", "Blanco 1", "NGC 3532")

@pytest.fixture(scope="module")
def real_tables(shared_data) -> tuple[pd.DataFrame, pd.DataFrame]:
    tables = checks.hunt_gaia_cluster_rvs(shared_data, config_module.load())
    return tables["cluster"].set_index("cluster_name"), tables["spectrum"]


def test_cluster_rvs_agree_with_hunt2023(real_tables, shared_data):
    real_clusters = real_tables[0]
    hunt = pd.read_csv(shared_data / "cluster_tables" / "HUNT2023.csv")
    hunt_rv = hunt.assign(Name=hunt["Name"].str.replace("_", " ")).set_index("Name")["RV"]
    ours = real_clusters.loc[list(CLUSTERS)]
    assert (ours["n_flag1"] >= 70).all()          # 74-260 Gaia RVs per cluster here
    diff = ours["rv"].to_numpy() - hunt_rv.loc[list(CLUSTERS)].to_numpy()
    assert np.all(np.abs(diff) < 1.5), dict(zip(CLUSTERS, diff.round(2)))
    assert np.mean(np.abs(diff)) < 0.8, dict(zip(CLUSTERS, diff.round(2)))


def test_rv_tables_without_obsid_get_unique_negative_surrogates(real_tables):
    spectrum = real_tables[1]
    assert (spectrum["obsid"] < 0).all()
    assert not spectrum.duplicated(["obsid", "source_id"]).any()
    assert (spectrum["survey"] == "gaia-dr3-rvs").all()
