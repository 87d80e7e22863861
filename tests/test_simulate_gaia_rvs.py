"""The simulator's Gaia-RVS-like file (generic rv/rv_err, no survey) through a plain map:
no zero-point offset, and cluster RVs that recover the injected truth."""
from __future__ import annotations

import pandas as pd

from ingest.core import config as config_module
from ingest.pipeline import run as pipeline
from ingest.pipeline.s1_inputs import load
from ingest.pipeline.s1_inputs import colmap
from ingest.simulation import ingest_arguments
from ingest.simulation.gaia_rvs import PLAIN_MAP, write_gaia_rvs
from test_pipeline import robust_pulls, truth_clusters


def test_gaia_like_rvs_without_survey_recover_truth(demo_sim, tmp_path):
    rvs = write_gaia_rvs(demo_sim, tmp_path / "gaia_rvs.csv", seed=1)
    assert list(pd.read_csv(rvs, nrows=1).columns) == ["source_id", "ra", "dec", "rv", "rv_err"]
    mapfile = tmp_path / "plain.toml"
    mapfile.write_text(PLAIN_MAP)
    args = ingest_arguments(demo_sim)
    cfg, rejections = config_module.settings(config_module.load()), {}
    clusters, members, spectra = load.read_inputs(
        args["clusters"], args["members"], [(rvs, None)], "hunt2024", mapfile, cfg, rejections)
    cluster, _, spectrum = pipeline.catalogue_tables(
        clusters, members, spectra, cfg, rejections, pipeline.StageClock(progress=False))
    assert (spectrum["survey"] == colmap.UNDECLARED_SURVEY).all()
    assert (spectrum["rv_offset"] == 0.0).all()
    good = cluster["n_flag1"].to_numpy() >= 3
    assert good.sum() >= 50
    truth = truth_clusters(demo_sim).loc[cluster["cluster_name"]]
    median, width = robust_pulls(cluster["rv"].to_numpy(float)[good],
                                 truth["rv"].to_numpy(float)[good],
                                 cluster["rv_err"].to_numpy(float)[good])
    assert abs(median) < 0.2 and 0.7 <= width <= 1.5, (median, width)   # a +4.7 shift: >> 1


def test_gaia_like_rvs_are_deterministic(demo_sim, tmp_path):
    first = write_gaia_rvs(demo_sim, tmp_path / "a.csv", seed=1).read_bytes()
    assert first == write_gaia_rvs(demo_sim, tmp_path / "b.csv", seed=1).read_bytes()
