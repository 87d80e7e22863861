"""Literature comparison: name matching, column guessing/maps, recovery of injected offsets."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ingest.core import config
from ingest.pipeline.s7_products import literature
from ingest.core import schema
from ingest.core.errors import InputError


def _clusters(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "cluster": [f"Test_{i}" for i in range(n)],
        "all_names": [f"Test_{i},Alias-{i};Other {i}" for i in range(n)],
        "rv": rng.normal(0, 20, n), "rv_err": rng.uniform(0.3, 1.0, n),
        "fe_h": rng.normal(-0.1, 0.15, n), "fe_h_err": rng.uniform(0.01, 0.05, n),
        "mg_fe": rng.normal(0.02, 0.05, n), "mg_fe_err": 0.03})


def test_names_match_across_case_separators_padding_and_aliases():
    clusters = pd.DataFrame({"cluster": ["Melotte 22", "NGC 869", "UBC 1"],
                             "all_names": ["Melotte_22,Pleiades", "NGC_869;h_Per", np.nan]})
    index = literature.name_index(clusters)
    lookup = [index.get(literature.normalise_name(name)) for name in
              ["Melotte_22", "melotte-22", "  PLEIADES   ", "h Per", "ngc869", "UBC_1", "UBC 2"]]
    assert lookup == [0, 0, 0, 1, 1, 2, None]


def test_an_alias_shared_by_two_clusters_matches_neither():
    clusters = pd.DataFrame({"cluster": ["A 1", "B 1"], "all_names": ["Twin", "Twin"]})
    assert "twin" not in literature.name_index(clusters)


def test_default_guesses_find_vizier_spellings(tmp_path):
    path = tmp_path / "fu.csv"
    pd.DataFrame({"Cluster": ["X"], "RVmed": [1.0], "e_RVmed": [0.1], "s_RV": [3.0],
                  "[Fe/H]med": [0.0], "e_[Fe/H]med": [0.02], "[Mg/Fe]": [0.1]}).to_csv(
        path, index=False)
    resolved = literature.resolve_columns(list(pd.read_csv(path).columns), path, {})
    assert resolved == {"name": "Cluster", "rv": "RVmed", "rv_err": "e_RVmed",
                        "fe_h": "[Fe/H]med", "fe_h_err": "e_[Fe/H]med", "mg_fe": "[Mg/Fe]"}


def test_toml_map_overrides_and_bad_maps_name_the_problem(tmp_path):
    path = tmp_path / "lit.csv"
    pd.DataFrame({"OCname": ["Test 1"], "RV": [5.0], "Vhelio": [7.0]}).to_csv(path, index=False)
    good = tmp_path / "good.toml"
    good.write_text('[literature]\nname = "OCname"\nrv = "Vhelio"\n')
    frame = literature.read_literature(path, good)
    assert frame["rv"].tolist() == [7.0] and frame["name"].tolist() == ["Test 1"]
    wrong_column = tmp_path / "wrong.toml"
    wrong_column.write_text('[literature]\nrv = "RV_missing"\n')
    with pytest.raises(InputError, match="RV_missing"):
        literature.read_literature(path, wrong_column)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('[literature]\nvelocity = "RV"\n')
    with pytest.raises(InputError, match="velocity"):
        literature.read_literature(path, unknown)


def test_injected_offsets_are_recovered_with_padded_and_aliased_names(tmp_path):
    clusters = _clusters(400, seed=1)
    rng = np.random.default_rng(2)
    pick = rng.choice(400, 250, replace=False)
    sub = clusters.iloc[pick]
    spelled = [f"  alias {i}  " if k % 3 == 0 else f"TEST {i}" for k, i in enumerate(pick)]
    lit = pd.DataFrame({"Cluster": spelled,
                        "RV": sub.rv + 0.3 + rng.normal(0, 0.5, 250), "e_RV": 0.5,
                        "FeH": sub.fe_h - 0.05 + rng.normal(0, 0.1, 250), "e_FeH": 0.1,
                        "Mg_Fe": sub.mg_fe + rng.normal(0, 0.05, 250)})
    lit.loc[lit.index[:20], "FeH"] = np.nan
    path = tmp_path / "lit.csv"
    lit.to_csv(path, index=False)
    comparison, summary = literature.compare(clusters, [("litX", path, None)], config.settings(config.defaults()).literature)
    assert list(comparison.columns) == schema.table("lit_comparison").names
    assert list(summary.columns) == schema.table("lit_summary").names
    summary = summary.set_index("quantity")
    assert summary.loc["rv", "n"] == 250 and summary.loc["fe_h", "n"] == 230
    for quantity, offset in (("rv", 0.3), ("fe_h", -0.05), ("mg_fe", 0.0)):
        row = summary.loc[quantity]
        assert abs(row.mean_diff - offset) < 2 * row.mean_diff_err
    # "here" is noiseless in this test: the spread is the injected literature noise
    assert summary.loc["rv", "std_diff"] == pytest.approx(0.5, abs=0.1)


def test_simulated_literature_tables_against_the_injected_truth(demo_sim):
    """Every literature row finds its cluster (spellings, aliases) and the offsets come back."""
    from ingest.pipeline.s8_outputs.figure_jobs import read_fits_table

    model = json.loads((demo_sim / "simulation.json").read_text())["model"]["literature"]
    truth = read_fits_table(demo_sim / "truth_clusters.fits")
    hunt = read_fits_table(demo_sim / "hunt2024_clusters.fits")
    clusters = truth.merge(hunt[["Name", "AllNames"]], on="Name").rename(
        columns={"Name": "cluster", "AllNames": "all_names"})
    literature_args = [(label, demo_sim / spec["file"], None) for label, spec in model.items()]
    comparison, summary = literature.compare(clusters, literature_args,
                                             config.settings(config.defaults()).literature)
    summary = summary.set_index(["catalogue", "quantity"])
    for label, spec in model.items():
        rows = len(pd.read_csv(demo_sim / spec["file"]))
        assert summary.loc[(label, "rv"), "n"] == rows            # nobody left unmatched
        for quantity, offset in (("rv", spec["rv_offset"]), ("fe_h", spec["feh_offset"])):
            row = summary.loc[(label, quantity)]
            assert abs(row.mean_diff - offset) < 2 * row.mean_diff_err, (label, quantity)


@pytest.mark.slow
def test_demo_ingest_recovers_the_simulated_literature_offsets(demo_sim, demo_ingest):
    """End to end: literature minus the ingested cluster values."""
    from ingest.pipeline.s8_outputs.figure_jobs import read_fits_table

    model = json.loads((demo_sim / "simulation.json").read_text())["model"]["literature"]
    summary = read_fits_table(demo_ingest / "lit_summary.fits").set_index(
        ["catalogue", "quantity"])
    for label, spec in model.items():
        for quantity, offset in (("rv", spec["rv_offset"]), ("fe_h", spec["feh_offset"])):
            row = summary.loc[(label, quantity)]
            assert abs(row.mean_diff - offset) < 2 * row.mean_diff_err, (label, quantity)


def test_leading_zeros_do_not_prevent_a_match():
    clusters = pd.DataFrame({"cluster": ["NGC 752", "FSR 0498", "Cluster 10"],
                             "all_names": ["Melotte 12", np.nan, np.nan]})
    index = literature.name_index(clusters)
    lookup = [index.get(literature.match_key(name)) for name in
              ["NGC 0752", "NGC_752", "FSR 498", "FSR 0498", "Cluster 10", "Cluster 1",
               "Melotte 012"]]
    assert lookup == [0, 0, 1, 1, 2, None, 0]


def test_minimum_stars_drops_thinly_supported_clusters(tmp_path):
    clusters = pd.DataFrame({"cluster": ["A 1", "A 2", "A 3"], "rv": [1.0, 2.0, 3.0],
                             "n_flag1": [1, 3, 8], "fe_h": [0.0, 0.1, 0.2],
                             "fe_h_num": [5, 2, 3]})
    path = tmp_path / "lit.csv"
    pd.DataFrame({"Cluster": ["A 01", "A 2", "A 3"], "RV": [1.5, 2.5, 3.5],
                  "FeH": [0.05, 0.15, 0.25]}).to_csv(path, index=False)
    cfg = config.defaults()
    everything, _ = literature.compare(clusters, [("lit", path, None)], config.settings(cfg).literature)
    assert len(everything) == 6                       # "A 01" matches "A 1"
    cfg["literature"]["min_stars"] = 3
    comparison, summary = literature.compare(clusters, [("lit", path, None)], config.settings(cfg).literature)
    kept = set(zip(comparison.quantity, comparison.cluster_name))
    assert kept == {("rv", "A 2"), ("rv", "A 3"), ("fe_h", "A 1"), ("fe_h", "A 3")}
    assert summary.set_index("quantity").loc["rv", "n"] == 2
