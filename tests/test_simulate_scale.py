"""Scaled simulations (``ocvo simulate --scale``): the inputs grow with the factor, the
default (scale 1) stays the preset itself."""
from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.table import Table

from ingest.simulation import simulate
from ingest.simulation.presets import preset, scaled


def test_scale_one_is_the_preset_itself():
    assert scaled(preset("full"), 1.0) is preset("full")


def test_scaled_cluster_count_and_name():
    p = scaled(preset("full"), 0.25)
    assert (p.n_clusters, p.name) == (1750, "full-x0.25")
    assert scaled(preset("full"), 2).n_clusters == 14000
    assert scaled(preset("full"), 2).members_median == preset("full").members_median


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_non_positive_scale_is_refused(bad):
    with pytest.raises(ValueError, match="scale must be a positive number"):
        scaled(preset("demo"), bad)


def test_rows_grow_with_the_scale(tmp_path):
    """0.1 and 0.2 of the demo: twice the clusters, about twice the members and spectra
    (Poisson-like scatter of 30 vs 60 clusters' sizes: within a factor 1.3-3)."""
    small = simulate("demo", 7, tmp_path / "a", progress=False, scale=0.1)
    large = simulate("demo", 7, tmp_path / "b", progress=False, scale=0.2)
    assert (small["counts"]["clusters"], large["counts"]["clusters"]) == (30, 60)
    assert small["preset"] == "demo-x0.1"
    for key in ("members", "mrs"):
        assert 1.3 < large["counts"][key] / small["counts"][key] < 3.0, key
    meta = json.loads((tmp_path / "b" / "simulation.json").read_text())
    assert meta["preset_config"]["n_clusters"] == 60
    clusters = Table.read(tmp_path / "b" / "hunt2024_clusters.fits")
    assert len(clusters) == 60 and len(np.unique(clusters["Name"])) == 60
