"""Figures: file names, content not blank, CLI on an ingest-like directory."""
from __future__ import annotations

import argparse
from dataclasses import replace

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from helpers.synthetic import gradient_clusters
from ingest.core import config
from ingest.pipeline.s8_outputs import figure_jobs, figures
from ingest.pipeline.s7_products import gradients, literature
from ingest.cli.commands import figures as figures_command
from ingest.core.errors import InputError


def _members(name: str, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    bp_rp = rng.uniform(0.2, 2.0, n)
    flag = rng.choice([0, 1, 12], n, p=[0.2, 0.3, 0.5])
    return pd.DataFrame({
        "cluster_name": name, "source_id": np.arange(n, dtype=np.int64) + 10 ** 15,
        "gmag": 10 + 3 * bp_rp + rng.normal(0, 0.3, n), "bp_rp": bp_rp,
        "rv": np.where(flag > 0, rng.normal(-12, 1.5, n), rng.normal(-12, 15, n)),
        "rv_err": rng.uniform(0.5, 2, n), "teff": 7000 - 1800 * bp_rp,
        "logg": 4.3 - 0.4 * bp_rp, "fe_h": rng.normal(-0.05, 0.05, n),
        "flag": flag.astype(np.int16), "rv_var_flag": np.zeros(n, np.int16)})


def _cluster_row(name: str) -> pd.Series:
    return pd.Series({"cluster_name": name, "rv": -12.0, "rv_std": 1.6, "rv_fit_mu": -12.1,
                      "rv_fit_sigma": 1.5, "rv_flag": 0, "rv_clip_lo": -16.3,
                      "rv_clip_hi": -7.9, "n_flag1": 40, "fe_h": -0.05})


def _not_blank(path) -> bool:
    image = mpimg.imread(path)
    return image.shape[0] > 100 and float(image[..., :3].std()) > 0.05


@pytest.mark.parametrize("name, expected", [
    ("NGC 869", "NGC_869"), ("Melotte_22", "Melotte_22"), (" Alpha Per ", "Alpha_Per"),
    ("IC 4665/ext?", "IC_4665ext"), ("Gulliver 9+10", "Gulliver_9+10")])
def test_safe_name(name, expected):
    assert figures.safe_name(name) == expected


def test_cluster_figures_are_written_under_safe_names(tmp_path):
    paths = figures.render_cluster_figures(_cluster_row("NGC 869"),
                                           _members("NGC 869", 120, 1), tmp_path)
    assert [p.name for p in paths] == ["NGC_869_cmd.png", "NGC_869_kiel.png", "NGC_869_rv.png"]
    assert all(p.parent == tmp_path / "cluster" and _not_blank(p) for p in paths)


@pytest.mark.parametrize("draw", [figures.cmd_figure, figures.kiel_figure])
def test_magnitude_and_gravity_axes_point_the_astronomers_way(draw, tmp_path, monkeypatch):
    kept = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: kept.append(fig) or path)
    draw("X", _members("X", 50, 3), tmp_path / "f.png")
    for ax in kept[0].axes:
        if ax.get_ylabel().startswith(("G ", "log g")):
            bottom, top = ax.get_ylim()
            assert bottom > top, ax.get_ylabel()     # faint / high gravity at the bottom


def test_a_cluster_without_spectra_still_gets_its_figures(tmp_path):
    row = _cluster_row("Empty 1").copy()
    row[["rv", "rv_std", "rv_fit_mu", "rv_fit_sigma"]] = np.nan
    paths = figures.render_cluster_figures(row, _members("Empty 1", 0, 2), tmp_path)
    assert len(paths) == 3 and all(p.is_file() for p in paths)


def _fast_config() -> config.Gradients:
    """The default [gradients] with one very short MCMC run (steps = max_steps)."""
    return replace(config.settings(config.defaults()).gradients, mcmc_steps=300,
                   mcmc_burn=100, mcmc_max_steps=300)


def _write_lit(tmp_path, clusters: pd.DataFrame):
    path = tmp_path / "lit.csv"
    pd.DataFrame({"Cluster": clusters.cluster_name, "RV": clusters.rv - 4.7,
                  "FeH": clusters.fe_h + 0.02}).to_csv(path, index=False)
    return literature.compare(clusters, [("litB", path, None)],
                              config.settings(config.defaults()).literature)[0]


def test_catalogue_figures(tmp_path):
    clusters = gradient_clusters(200, seed=3)
    table = gradients.fit_gradients(clusters, _fast_config(), seed=4)
    comparison = _write_lit(tmp_path, clusters)
    paths = figures.render_catalogue_figures(clusters, table, comparison, tmp_path)
    names = sorted(p.name for p in paths)
    assert names == ["gradient_fe_h_age_bins.png", "gradient_fe_h_rgc.png",
                     "literature_fe_h.png", "literature_rv.png"]
    assert all(_not_blank(p) for p in paths)


def _fake_ingest_dir(tmp_path):
    clusters = gradient_clusters(6, seed=5)
    clusters["rv_std"], clusters["rv_fit_mu"], clusters["rv_fit_sigma"] = 1.5, clusters.rv, 1.4
    members = pd.concat([_members(name, 40, k) for k, name in enumerate(clusters.cluster_name)])
    out = tmp_path / "ingest"
    out.mkdir()
    Table.from_pandas(clusters).write(out / "cluster.fits")
    Table.from_pandas(members).write(out / "member.fits")
    Table.from_pandas(gradients.fit_gradients(gradient_clusters(200, seed=6), _fast_config(),
                                              7)).write(
        out / "gradient.fits")
    Table.from_pandas(_write_lit(tmp_path, clusters)).write(out / "lit_comparison.fits")
    return out


def _run_cli(*argv: str) -> int:
    """``ocvo figures ARGV`` through the subcommand's own parser and run()."""
    parser = argparse.ArgumentParser()
    figures_command.add_arguments(parser)
    return figures_command.run(parser.parse_args(list(argv)))


def test_cli_renders_all_clusters_in_parallel_and_single_clusters_on_demand(tmp_path):
    directory = _fake_ingest_dir(tmp_path)
    assert _run_cli(str(directory), "--jobs", "2") == 0
    produced = sorted(p.name for p in (directory / "figures" / "cluster").glob("*.png"))
    assert len(produced) == 6 * 3 and "Test_0_rv.png" in produced
    assert (directory / "figures" / "catalogue" / "gradient_fe_h_rgc.png").is_file()
    for png in (directory / "figures" / "cluster").glob("*.png"):
        png.unlink()
    assert _run_cli(str(directory), "--cluster", "test_3", "--jobs", "1") == 0
    assert sorted(p.name for p in (directory / "figures" / "cluster").glob("*.png")) == [
        "Test_3_cmd.png", "Test_3_kiel.png", "Test_3_rv.png"]
    with pytest.raises(InputError, match="Nonexistent 9"):
        _run_cli(str(directory), "--cluster", "Nonexistent 9")


@pytest.mark.slow
def test_figures_of_the_demo_ingest(demo_ingest, tmp_path):
    import shutil

    directory = tmp_path / "demo"
    shutil.copytree(demo_ingest, directory)
    paths = figure_jobs.render_directory(directory, jobs=2)
    assert any(p.name == "gradient_fe_h_rgc.png" for p in paths)
    per_cluster = [p for p in paths if p.parent.name == "cluster"]
    assert len(per_cluster) == 3 * len(figure_jobs.read_fits_table(directory / "cluster.fits"))


def test_orbit_error_figure_is_drawn_when_orbit_errors_exist(tmp_path):
    rng = np.random.default_rng(9)
    dist = rng.uniform(200, 6000, 60)
    clusters = pd.DataFrame({"dist50": dist, "dist16": dist * 0.98, "dist84": dist * 1.03})
    for column in ("z_max", "r_peri", "r_apo", "ecc"):
        clusters[f"{column}_err"] = 1e-3 * dist / 1000 * rng.uniform(0.5, 2, 60)
    path = figures.orbit_error_figure(clusters, tmp_path / "orbit.png")
    assert _not_blank(path)
    empty = figures.render_catalogue_figures(clusters.assign(z_max_err=np.nan), pd.DataFrame(),
                                             pd.DataFrame({"quantity": pd.Series([], dtype=object)}),
                                             tmp_path / "e")
    assert empty == []


def test_rv_figure_draws_exactly_the_flag1_window(tmp_path, monkeypatch):
    drawn = []
    original = figures.plt.Axes.axvline

    def record(ax, x=0, *args, **kwargs):
        drawn.append(x)
        return original(ax, x, *args, **kwargs)

    monkeypatch.setattr(figures.plt.Axes, "axvline", record)
    row = _cluster_row("C")
    path = figures.rv_figure("C", row, _members("C", 60, 1), tmp_path / "rv.png")
    assert drawn == [row.rv_clip_lo, row.rv_clip_hi]
    assert _not_blank(path)


def test_dynamics_trend_figure_has_one_column_per_age_group(tmp_path):
    clusters = gradient_clusters(300, seed=21)
    rng = np.random.default_rng(22)
    clusters["lz"] = rng.uniform(1200, 3500, 300)
    clusters["energy"] = rng.uniform(-1.9e5, -1.4e5, 300)
    table = gradients.fit_gradients(clusters, _fast_config(), seed=23)
    paths = figures.render_catalogue_figures(clusters, table, pd.DataFrame(
        {"quantity": pd.Series([], dtype=object)}), tmp_path)
    trend = [p for p in paths if p.name == "fe_h_lz_energy_age_groups.png"]
    assert len(trend) == 1 and _not_blank(trend[0])
    image = mpimg.imread(trend[0])
    groups = table.loc[table.variable == "lz", "age_bin"].nunique()
    assert groups == 6 and image.shape[1] > image.shape[0]


def test_binary_cluster_figure_draws_each_candidate(tmp_path):
    """The figure is drawn only when there are candidates."""
    clusters = pd.DataFrame({"cluster_name": ["A", "B", "C", "D"], "glon": [10.0, 10.5, 200.0, 200.2],
                             "glat": [1.0, 1.2, -2.0, -2.1], "dist50": [800.0, 805.0, 600.0, 598.0]})
    pairs = pd.DataFrame({"cluster_a": ["A", "C"], "cluster_b": ["B", "D"], "sep_3d": [8.0, 3.0],
                          "sep_3d_err": [4.0, 2.0], "dv_tan": [1.0, 0.5],
                          "dv_tan_err": [0.2, 0.1], "p_close": [0.9, 0.99]})
    none = figures.render_catalogue_figures(clusters.assign(z_max_err=np.nan), pd.DataFrame(),
                                            pd.DataFrame({"quantity": pd.Series([], dtype=object)}), tmp_path,
                                            pairs.iloc[:0])
    assert none == []
    path = figures.binary_pairs_figure(clusters, pairs, tmp_path / "pairs.png")
    assert _not_blank(path)
