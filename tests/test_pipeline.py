"""The ingest pipeline on the simulator's demo preset: truth, determinism, atomic output."""
from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from conftest import DEMO_SEED, demo_ingest_arguments
from ingest.core import config as config_module
from ingest.core import manifest
from ingest.pipeline import run as pipeline
from ingest.pipeline.s8_outputs import tables
from ingest.pipeline.s1_inputs import load
from ingest.pipeline.s8_outputs import writers
from ingest.cli.commands import ingest as ingest_command
from ingest.pipeline.s2_crossmatch import match
from ingest.core.errors import InputError
from ingest.pipeline.s5_estimate import estimate
from ingest.core.vocabulary import TABLES
from ingest.pipeline.run import run_ingest, staged_output

# Orbits dominate the run time and are not what these tests check: few, short orbits.
# LRS RVs sit 4.7 km/s below the truth (the Gaia scale); the offset puts them on it.
FAST_CONFIG = """
[rv_offsets]
lamost-lrs = 4.7
[galactic]
orbit_steps = 201
orbit_draws = 10
"""


# |median pull| allowed over the ~140 demo clusters (the median of that many pulls
# scatters by ~0.1 between realisations).
MEDIAN_PULL_LIMIT = {"rv": 0.2, "fe_h": 0.2}
# The same in absolute terms: the demo's cluster [Fe/H] errors are ~0.013 dex, so a
# 0.2-sigma median pull is a 0.003 dex bias; these bounds keep it far below science use.
MEDIAN_BIAS_LIMIT = {"rv": 0.1, "fe_h": 0.01}      # km/s, dex


def robust_pulls(estimate_: np.ndarray, truth: np.ndarray,
                 error: np.ndarray) -> tuple[float, float]:
    """Median and 1.4826 * MAD of (estimate - truth) / error."""
    pull = (estimate_ - truth) / error
    median = float(np.median(pull))
    return median, float(1.4826 * np.median(np.abs(pull - median)))


def truth_clusters(sim: Path) -> pd.DataFrame:
    truth = Table.read(sim / "truth_clusters.fits").to_pandas()
    truth["Name"] = [n.decode() if isinstance(n, bytes) else n for n in truth["Name"]]
    return truth.assign(Name=truth["Name"].str.replace("_", " ")).set_index("Name")


def truth_stars(sim: Path) -> pd.DataFrame:
    stars = Table.read(sim / "truth_stars.fits").to_pandas()
    return stars.set_index(stars["GaiaDR3"].astype(np.int64))


@pytest.fixture(scope="module")
def fast_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "fast.toml"
    path.write_text(FAST_CONFIG)
    return path


@pytest.fixture(scope="module")
def fast_runs(demo_sim, fast_config, tmp_path_factory) -> tuple[Path, Path]:
    """The demo ingested twice with the same inputs and seed: in Python and by the command."""
    base = tmp_path_factory.mktemp("fast_runs")
    run_ingest(**demo_ingest_arguments(demo_sim), out=base / "a", config=fast_config,
               seed=DEMO_SEED, progress=False)
    args = demo_ingest_arguments(demo_sim)
    argv = ["ingest", "--clusters", str(args["clusters"]), "--members", str(args["members"]),
            "--config", str(fast_config), "--seed", str(DEMO_SEED), "--out", str(base / "b"),
            "--no-progress"]
    for path, survey in args["spectra"]:
        assert survey in ("lamost-mrs", "lamost-lrs")   # detected from the columns by the CLI
        argv += ["--spectra", str(path)]
    for name, path, _ in args["literature"]:
        argv += ["--literature", f"{name}={path}"]
    parser = argparse.ArgumentParser()
    ingest_command.add_arguments(parser)
    assert ingest_command.run(parser.parse_args(argv[1:])) == 0
    return base / "a", base / "b"


@pytest.fixture(scope="module")
def demo_stages(demo_sim) -> dict:
    """The demo through the pipeline's stages up to the per-star combination."""
    merged = config_module.load()
    merged["rv_offsets"]["lamost-lrs"] = 4.7
    cfg = config_module.settings(merged)
    args = demo_ingest_arguments(demo_sim)
    clusters, members, spectra = load.read_inputs(
        args["clusters"], args["members"], load.spectra_entries(args["spectra"], None),
        "hunt2024", None, cfg, {})
    pairs = match(members, spectra, cfg.crossmatch, "DR3")
    raw, checked, _ = pipeline.matched_spectra(spectra, pairs, cfg)
    stars = tables.member_rows(members, pairs, raw, checked, cfg.combine)
    cluster_table, label = tables.cluster_rows(clusters, members, stars)
    return {"cfg": cfg, "members": members, "pairs": pairs, "raw": raw, "checked": checked,
            "stars": stars, "clusters": cluster_table, "label": label}


def test_demo_outputs_all_tables_and_a_complete_manifest(demo_ingest, demo_sim):
    record = manifest.read(demo_ingest)
    for name in TABLES:
        assert len(writers.read_table(demo_ingest / f"{name}.fits")) == record["row_counts"][name]
    assert record["simulated_input"] is True
    assert {"python", "numpy", "astropy", "scipy", "pandas", "galpy"} <= set(record["versions"])
    by_path = {Path(r["path"]).name: r for r in record["inputs"]}
    members = demo_ingest_arguments(demo_sim)["members"]
    assert by_path[members.name]["sha256"] == manifest.sha256(members)
    assert by_path[members.name]["size"] == members.stat().st_size
    assert record["config"] == config_module.defaults()      # the whole effective config
    assert record["rejections"]["members_below_prob_min"] > 0
    assert set(record["stage_seconds"]) >= {"read", "crossmatch", "estimate", "galactic"}
    assert not [p for p in demo_ingest.parent.iterdir() if p.name.startswith(".")]


def test_manifest_records_the_configuration_the_run_used(fast_runs):
    """Both runs (Python and command line) record FAST_CONFIG's settings and the seed
    they were given, and the defaults for every setting the file leaves out, so a
    run can be repeated from its manifest alone."""
    defaults = config_module.defaults()
    for run in fast_runs:
        record = manifest.read(run)
        used = record["config"]
        assert record["seed"] == DEMO_SEED
        assert used["rv_offsets"]["lamost-lrs"] == 4.7
        assert (used["galactic"]["orbit_steps"], used["galactic"]["orbit_draws"]) == (201, 10)
        for section in set(defaults) - {"rv_offsets", "galactic", "seed"}:
            assert used[section] == defaults[section], section
        changed = {k for k in defaults["galactic"] if used["galactic"][k] != defaults["galactic"][k]}
        assert changed == {"orbit_steps", "orbit_draws"}


def test_demo_cluster_rv_and_feh_pulls_against_truth(fast_runs, demo_sim):
    cluster = writers.read_table(fast_runs[0] / "cluster.fits")
    truth = truth_clusters(demo_sim).loc[cluster["cluster_name"]]
    for par, num in (("rv", "n_flag1"), ("fe_h", "fe_h_num")):
        good = cluster[num].to_numpy() >= 3
        assert good.sum() >= 50
        median, width = robust_pulls(cluster[par].to_numpy(float)[good],
                                     truth[par].to_numpy(float)[good],
                                     cluster[par + "_err"].to_numpy(float)[good])
        assert abs(median) < MEDIAN_PULL_LIMIT[par], (par, median)
        assert 0.7 <= width <= 1.5, (par, width)
        bias = np.median(cluster[par].to_numpy(float)[good] - truth[par].to_numpy(float)[good])
        assert abs(bias) < MEDIAN_BIAS_LIMIT[par], (par, bias)


def test_same_inputs_and_seed_give_identical_tables(fast_runs):
    first, second = fast_runs
    for name in TABLES:
        assert (first / f"{name}.fits").read_bytes() == (second / f"{name}.fits").read_bytes(), name


def test_cool_dwarf_bias_shows_without_parameter_qc_and_is_gone_with_it(demo_stages, demo_sim):
    cfg, stars, clusters, label = (demo_stages[k] for k in ("cfg", "stars", "clusters", "label"))
    off_qc = replace(cfg.params_qc, enabled=False)
    on, on_flags = estimate(stars, label, len(clusters), cfg.montecarlo, cfg.params_qc)
    off, off_flags = estimate(stars, label, len(clusters), cfg.montecarlo, off_qc)
    truth = truth_clusters(demo_sim).loc[clusters["cluster_name"], "fe_h"].to_numpy()
    true_dwarf = truth_stars(demo_sim).loc[stars["source_id"], "is_cool_dwarf"].to_numpy(bool)
    dwarfs_used = np.bincount(label, weights=true_dwarf & (off_flags["flag"] == 12),
                              minlength=len(clusters))
    affected = (dwarfs_used > 0) & (off["fe_h_num"] >= 3) & (on["fe_h_num"] >= 3)
    assert affected.sum() >= 10
    off_median, _ = robust_pulls(off["fe_h"][affected], truth[affected], off["fe_h_err"][affected])
    on_median, _ = robust_pulls(on["fe_h"][affected], truth[affected], on["fe_h_err"][affected])
    assert off_median < -0.5 and abs(on_median) < 0.3, (off_median, on_median)
    assert on_median - off_median > 0.5, (off_median, on_median)


def cluster_rv_pulls(out: pd.DataFrame, truth_rv: np.ndarray,
                     select: np.ndarray) -> tuple[float, float]:
    sel = select & (out["n_flag1"].to_numpy() >= 3)
    return robust_pulls(out["rv"][sel], truth_rv[sel], out["rv_err"][sel])


def test_binaries_do_not_pull_cluster_rvs(demo_stages, demo_sim):
    cfg, stars, clusters, label = (demo_stages[k] for k in ("cfg", "stars", "clusters", "label"))
    out, _ = estimate(stars, label, len(clusters), cfg.montecarlo, cfg.params_qc)
    binary = truth_stars(demo_sim).loc[stars["source_id"], "is_binary"].to_numpy(bool)
    clean, _ = estimate(stars[~binary].reset_index(drop=True), label[~binary],
                        len(clusters), cfg.montecarlo, cfg.params_qc)   # no binary at all
    both = (out["n_flag1"] >= 3) & (clean["n_flag1"] >= 3)
    assert binary.sum() > 100 and both.sum() > 50
    shift = (np.abs(out["rv"] - clean["rv"]) / clean["rv_err"])[both]
    assert np.quantile(shift, 0.95) < 0.5
    truth_rv = truth_clusters(demo_sim).loc[clusters["cluster_name"], "rv"].to_numpy()
    has_binary = np.bincount(label, weights=binary, minlength=len(clusters)) > 0
    median, width = cluster_rv_pulls(out, truth_rv, has_binary)
    assert abs(median) < 0.3 and width < 1.5, (median, width)


def test_bad_flag_rows_do_not_pull_cluster_rvs(demo_stages, demo_sim):
    cfg, clusters, label = (demo_stages[k] for k in ("cfg", "clusters", "label"))
    checked, pairs = demo_stages["checked"], demo_stages["pairs"]
    bad = (checked["qc"] == "rv_flag").to_numpy()
    star_members = np.unique(pairs["member_index"])        # member_rows' star order
    with_bad = np.isin(star_members, pairs["member_index"].to_numpy()[bad])
    affected = np.bincount(label, weights=with_bad, minlength=len(clusters)) > 0
    assert bad.sum() > 100 and affected.sum() > 20
    truth_rv = truth_clusters(demo_sim).loc[clusters["cluster_name"], "rv"].to_numpy()
    out, _ = estimate(demo_stages["stars"], label, len(clusters), cfg.montecarlo,
                      cfg.params_qc)
    median, width = cluster_rv_pulls(out, truth_rv, affected)
    assert abs(median) < 0.3 and width < 1.5, (median, width)
    # Structure: a star's RV uses exactly its accepted spectra, never a bad-flag one.
    accepted = np.bincount(np.searchsorted(star_members, pairs["member_index"]),
                           weights=(checked["qc"] == "ok").to_numpy(), minlength=len(star_members))
    np.testing.assert_array_equal(demo_stages["stars"]["rv_nobs"], accepted)


def test_failed_ingest_keeps_previous_output_and_leaves_no_temporary(fast_runs, demo_sim,
                                                                     fast_config, tmp_path,
                                                                     monkeypatch):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(fast_runs[0], out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    broken = tmp_path / "broken.fits"
    broken.write_bytes(b"SIMPLE  =                    T" + b"\0" * 100)
    args = demo_ingest_arguments(demo_sim)
    with pytest.raises(InputError):
        run_ingest(**{**args, "spectra": [(broken, "lamost-mrs")]}, out=out, force=True,
                   config=fast_config, progress=False)

    def fail_on_lit_summary(frame, table, path):
        if table == "lit_summary":
            raise OSError("disk full (simulated)")
        return original(frame, table, path)

    original = writers.write_table
    monkeypatch.setattr(writers, "write_table", fail_on_lit_summary)
    with pytest.raises(OSError, match="disk full"):
        run_ingest(**args, out=out, config=fast_config, progress=False, force=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.fits", "out"]


def test_staged_output_replaces_only_on_success(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with staged_output(out) as tmp:
            (tmp / "new.txt").write_text("new")
            raise RuntimeError("stage failed")
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    with staged_output(out) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in out.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_summary_fits_one_screen_and_names_every_rejection_reason():
    from ingest.pipeline.s8_outputs.summary import format_summary

    rejections = {f"reason_{i:02d}": 100 - i for i in range(20)} | {"never": 0}
    text = format_summary({
        "out": "/x/out", "row_counts": {name: 10 for name in TABLES},
        "clusters_with_rv": 9, "clusters_good_flag12": 4, "good_min_flag12": 3,
        "stars_by_flag": {"0": 1, "1": 2, "12": 7}, "rv_variable_stars": 1,
        "surveys": {"lamost-lrs": {"spectra": 5, "declared": True, "rv_offset_kms": 4.7,
                                   "parameter_source": ["lasp"]},
                    "lamost-mrs": {"spectra": 9, "declared": True, "rv_offset_kms": 0.0,
                                   "parameter_source": ["cnn"]}},
        "rejections": rejections, "stage_seconds": {"read": 1.0, "write": 2.5}})
    lines = text.splitlines()
    assert len(lines) <= 24 and max(map(len, lines)) <= 100
    assert "9 with an RV" in text and "4 with >= 3 FLAG=12 stars" in text
    assert "lamost-lrs +4.7 (lasp), lamost-mrs +0 (cnn)" in text
    assert "WARNING" not in text
    assert "reason_00" in text and "never" not in text
    assert "(other reasons)" in text and f"{sum(range(81, 89)):>12,}" in text   # 8 left over


def test_literature_argument_parsing():
    assert ingest_command.parse_literature("litA=a.csv") == ("litA", Path("a.csv"), None)
    assert ingest_command.parse_literature("B=b.csv:m.toml") == ("B", Path("b.csv"),
                                                                 Path("m.toml"))
    with pytest.raises(InputError):
        ingest_command.parse_literature("no-equals-sign.csv")


def test_staged_output_directory_is_readable_by_others(tmp_path):
    old_mask = os.umask(0o022)
    try:
        with staged_output(tmp_path / "out") as tmp:
            (tmp / "t.txt").write_text("x")
    finally:
        os.umask(old_mask)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755


def test_unknown_survey_is_rejected_when_parsing_arguments(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    ingest_command.add_arguments(parser)
    base = ["--clusters", "c", "--members", "m", "--spectra", "s", "--out", str(tmp_path)]
    assert parser.parse_args(base + ["--survey", "lamost-lrs"]).survey == "lamost-lrs"
    assert parser.parse_args(base + ["--survey", "apogee.toml"]).survey == Path("apogee.toml")
    with pytest.raises(SystemExit):
        parser.parse_args(base + ["--survey", "lamost-hrs"])
    assert "lamost-hrs" in capsys.readouterr().err
