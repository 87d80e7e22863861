"""The simulator: the injected properties must hold in the WRITTEN files.

Expected values come from the injected model (numbers restated here, not read
from the code) or from independent computations; tolerances are stated and
sized for the demo preset (300 clusters, ~80k MRS rows).
"""
from __future__ import annotations

import hashlib
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time

from ingest.core.errors import InputError
from ingest.simulation import ingest_arguments, simulate

ELEMENTS = ["c", "n", "o", "mg", "al", "si", "s", "ca", "ti", "cr", "ni", "cu"]
HUNT_CLUSTER_NAMES = ["Name", "ID", "AllNames", "RA_ICRS", "DE_ICRS", "GLON", "GLAT", "r50", "N",
                      "pmRA", "s_pmRA", "e_pmRA", "pmDE", "s_pmDE", "e_pmDE", "Plx", "s_Plx", "e_Plx",
                      "dist16", "dist50", "dist84", "X", "Y", "Z", "RV", "s_RV", "e_RV", "n_RV",
                      "logAge16", "logAge50", "logAge84", "AV50", "CST"]
HUNT_MEMBER_NAMES = ["Name", "ID", "GaiaDR3", "Prob", "RA_ICRS", "DE_ICRS", "pmRA", "e_pmRA", "pmDE",
                     "e_pmDE", "Plx", "e_Plx", "Gmag", "BP-RP"]
MRS_NAMES = (["obsid", "mobsid", "uid", "gp_id", "designation", "gaia_source_id", "ra", "dec", "obsdate",
              "lmjm", "band", "snr", "rv_br0", "rv_br0_err", "rv_br_flag", "rv_b0", "rv_b0_err", "rv_r0",
              "rv_r0_err"]
             + [f"{p}_{s}{e}" for s in ("lasp",) for p in ("teff", "logg", "feh", "vsini") for e in ("", "_err")]
             + [f"{p}_cnn{e}" for p in ("teff", "logg", "feh", "m_h", "alpha_m") for e in ("", "_err")]
             + [f"{x}_fe{e}" for x in ELEMENTS for e in ("", "_err")])
LRS_NAMES = ["obsid", "designation", "obsdate", "lmjd", "gaia_source_id", "ra", "dec", "snrg", "rv", "rv_err",
             "teff", "teff_err", "logg", "logg_err", "feh", "feh_err", "class", "subclass"]
FITS_FILES = ["hunt2024_clusters.fits", "hunt2024_members.fits", "lamost_mrs_dr11.fits",
              "lamost_lrs_dr8.fits", "truth_clusters.fits", "truth_stars.fits"]


def _read(directory: Path, name: str) -> Table:
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # e.g. an unparsable unit would fail here
        table = Table.read(directory / name)
    table.convert_bytestring_to_unicode()
    return table


@pytest.fixture(scope="module")
def tables(demo_sim) -> dict[str, pd.DataFrame]:
    return {name.removesuffix(".fits"): _read(demo_sim, name).to_pandas() for name in FITS_FILES}


@pytest.fixture(scope="module")
def mrs(tables) -> pd.DataFrame:
    """MRS rows joined with the truth of the star each row belongs to."""
    truth = tables["truth_stars"].add_prefix("true_")
    rows = tables["lamost_mrs_dr11"].merge(truth, left_on="gp_id", right_on="true_gp_id", how="left")
    assert rows["true_GaiaDR3"].notna().all()
    return rows


def _sha256s(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


# --- formats ---------------------------------------------------------------------------------

def test_files_columns_and_units(demo_sim):
    for name, expected in (("hunt2024_clusters.fits", HUNT_CLUSTER_NAMES),
                           ("hunt2024_members.fits", HUNT_MEMBER_NAMES),
                           ("lamost_mrs_dr11.fits", MRS_NAMES), ("lamost_lrs_dr8.fits", LRS_NAMES)):
        assert _read(demo_sim, name).colnames == expected, name
    clusters = _read(demo_sim, "hunt2024_clusters.fits")
    units = {"RA_ICRS": "deg", "r50": "deg", "pmRA": "mas / yr", "Plx": "mas", "dist50": "pc", "X": "pc",
             "RV": "km / s", "AV50": "mag"}
    assert {k: str(clusters[k].unit) for k in units} == units
    mrs = _read(demo_sim, "lamost_mrs_dr11.fits")
    assert (str(mrs["ra"].unit), str(mrs["rv_br0"].unit), str(mrs["teff_cnn"].unit)) == ("deg", "km / s", "K")
    assert all(mrs[c].dtype.kind == "i" and mrs[c].dtype.itemsize == 8 for c in ("obsid", "gaia_source_id"))
    assert len(np.unique(mrs["obsid"])) == len(mrs)


def test_every_file_says_it_is_simulated(demo_sim):
    for name in FITS_FILES:
        with fits.open(demo_sim / name) as hdus:
            assert all(hdu.header["SIMULATE"] is True for hdu in hdus), name
            assert "simulated" in hdus[1].header["ORIGIN"].lower()
        assert _read(demo_sim, name).meta["SIMULATE"] is True
    summary = json.loads((demo_sim / "simulation.json").read_text())
    assert summary["simulated"] is True and summary["preset"] == "demo"
    assert "SIMULATED DATA" in (demo_sim / "README.txt").read_text()
    for csv in ("literature_a.csv", "literature_b.csv"):      # plain CSV both readers accept
        assert list(pd.read_csv(demo_sim / csv).columns[:6]) == ["Cluster", "RV", "e_RV", "N_RV", "FeH", "e_FeH"]
        assert len(Table.read(demo_sim / csv, format="ascii.csv")) > 0


def test_hunt_names_match_the_real_catalogue(shared_data, demo_sim):
    real = pd.read_csv(shared_data / "cluster_tables" / "HUNT2024.csv", nrows=5)
    assert set(HUNT_CLUSTER_NAMES) <= set(real.columns)
    assert _read(demo_sim, "hunt2024_clusters.fits")["Name"][0].startswith("OCSim_")


def test_lrs_names_and_formats_match_the_real_lamost_sample(shared_data, tables):
    real = pd.read_csv(shared_data / "lamost_sample" / "gaia_lamost_chemo_kinematic_features.csv")
    # the real sample renamed LAMOST's ra/dec to ra_lamost/dec_lamost
    ours = {"ra_lamost" if c == "ra" else "dec_lamost" if c == "dec" else c for c in LRS_NAMES}
    assert ours - {"obsdate", "lmjd"} <= set(real.columns)
    lrs = tables["lamost_lrs_dr8"]
    pattern = re.compile(r"^J\d{6}\.\d{2}[+-]\d{6}\.\d$")
    assert all(pattern.match(d) for d in real["designation"])
    assert all(pattern.match(d) for d in lrs["designation"])
    assert set(lrs["class"]) == set(real["class"]) == {"STAR"}
    assert set(lrs["subclass"]) <= {f"{t}{n}" for t in "AFGKM" for n in range(10)}


# --- Galaxy -----------------------------------------------------------------------------------

def _broken_line_fit(r, feh, knee):
    """Least-squares continuous broken line; returns (slopes, their errors, rms, sum of squares)."""
    design = np.column_stack([np.ones_like(r), np.minimum(r - knee, 0.0), np.maximum(r - knee, 0.0)])
    coef, residual, *_ = np.linalg.lstsq(design, feh, rcond=None)
    rms = np.sqrt(residual[0] / (len(r) - 3))
    cov = rms ** 2 * np.linalg.inv(design.T @ design)
    return coef[1:], np.sqrt(np.diag(cov))[1:], rms, residual[0]


def test_metallicity_gradient_slopes_and_knee(tables):
    truth = tables["truth_clusters"]
    r, feh = truth["r_gc"].to_numpy(), truth["fe_h"].to_numpy()
    assert np.mean((r > 6) & (r < 16)) > 0.8 and (r > 11.5).sum() >= 15
    slopes, errors, rms, ssr = _broken_line_fit(r, feh, 11.5)
    # injected: -0.047 inside, -0.014 outside, scatter 0.05 dex
    assert abs(slopes[0] + 0.047) < 4 * errors[0] and errors[0] < 0.006
    assert abs(slopes[1] + 0.014) < 4 * errors[1]
    assert 0.04 < rms < 0.06
    # the injected knee lies within the 99% confidence range of a fitted knee (delta chi2 < 6.63
    # with the injected 0.05 dex scatter), and a single straight line fits clearly worse
    ssr_min = min(_broken_line_fit(r, feh, k)[3] for k in np.arange(8.0, 15.01, 0.05))
    assert (ssr - ssr_min) / 0.05 ** 2 < 6.63
    line = np.linalg.lstsq(np.column_stack([np.ones_like(r), r]), feh, rcond=None)[1][0]
    assert (line - ssr) / 0.05 ** 2 > 9.0


def test_galactocentric_radius_and_rotation_are_consistent(tables):
    """Independent geometry: R_gc from heliocentric X, Y (R0 = 8 kpc); RVs from flat rotation."""
    t = tables["truth_clusters"]
    x, y = t["x"].to_numpy(), t["y"].to_numpy()
    np.testing.assert_allclose(np.hypot(8.0 - x, y), t["r_gc"], atol=0.01)
    n = np.column_stack([x, y, t["z"]]) / np.linalg.norm(np.column_stack([x, y, t["z"]]), axis=1)[:, None]
    gx, gy = x - 8.0, y
    rgc = np.hypot(gx, gy)
    v_cluster = np.column_stack([233.0 * gy / rgc, -233.0 * gx / rgc, np.zeros_like(rgc)])
    v_sun = np.array([11.1, 233.0 + 12.24, 7.25])
    predicted = np.sum((v_cluster - v_sun) * n, axis=1)
    residual = t["rv"].to_numpy() - predicted
    # peculiar velocities 10/7/5 km/s x sqrt(1 + age/Gyr): rms ~10 km/s, mean ~0
    assert abs(np.median(residual)) < 2.0 and np.std(residual) < 16.0
    assert np.corrcoef(predicted, t["rv"])[0, 1] > 0.9


def test_scale_height_grows_with_age(tables):
    t = tables["truth_clusters"]
    z_pc = 1000.0 * (t["z_gc"].to_numpy() - 0.0208)
    young, old = z_pc[t["logage"] < 8.0], z_pc[t["logage"] > 9.0]
    assert 40 < np.std(young) < 110 and np.std(old) > np.std(young)
    assert 7.0 <= t["logage"].min() and t["logage"].max() <= 9.7


def test_hunt_cluster_table_agrees_with_truth(tables):
    obs, truth = tables["hunt2024_clusters"], tables["truth_clusters"]
    dist_pull = (obs["dist50"] - truth["dist_pc"]) / ((obs["dist84"] - obs["dist16"]) / 2)
    assert 0.8 < np.std(dist_pull) < 1.2
    has_rv = obs["n_RV"] > 0
    assert 0.45 < has_rv.mean() < 0.75                        # injected 60%
    pull = (obs["RV"] - truth["rv"])[has_rv] / obs["e_RV"][has_rv]
    assert 0.8 < np.std(pull) < 1.2
    assert obs["AllNames"].str.contains("SimCat_").mean() == pytest.approx(0.3, abs=0.08)


# --- stars and spectra ------------------------------------------------------------------------

def test_member_table(tables):
    members, truth = tables["hunt2024_members"], tables["truth_stars"]
    assert members["GaiaDR3"].is_unique
    low = (members["Prob"] < 0.5).mean()
    assert 0.03 < low < 0.2
    listed = truth[truth["in_member_table"]]
    assert (listed.loc[~listed["is_member"], "prob"] < 0.5).mean() > 0.6
    counts = members.groupby("Name").size()
    assert (counts.reindex(tables["hunt2024_clusters"]["Name"]).to_numpy()
            == tables["hunt2024_clusters"]["N"].to_numpy()).all()


def test_matched_members_and_footprint(tables, mrs):
    truth = tables["truth_stars"]
    matched = truth[truth["is_member"] & (truth["n_spectra"] > 0) & (truth["prob"] > 0.5)]
    assert 6000 < len(matched) < 12000                        # demo: ~8000 matched member stars
    assert (mrs["dec"] > -10.01).all()
    assert mrs["true_Gmag"].between(9.0, 15.0).all()


def test_repeat_observation_counts(tables, mrs):
    per_star = mrs.groupby("uid").size()
    truth = tables["truth_stars"].set_index("uid")["n_spectra"]
    assert (per_star == truth.reindex(per_star.index)).all()
    assert (per_star >= 2).mean() > 0.6 and per_star.max() >= 20
    assert 4.0 < per_star.mean() < 6.0                         # injected mean 5
    assert set(mrs["band"]) == {"B", "R", "BR"} and (mrs["band"] == "BR").mean() > 0.8


def test_errors_follow_snr(mrs):
    good = mrs[(mrs["rv_br_flag"] == 0) & ~mrs["true_is_binary"]]
    for lo, hi, rv_lo, rv_hi in ((8, 12, 4.0, 9.0), (90, 110, 0.6, 1.2)):
        sel = good[good["snr"].between(lo, hi)]
        assert rv_lo < sel["rv_br0_err"].median() < rv_hi, (lo, hi)
    pull = (good["rv_br0"] - good["true_rv"]) / good["rv_br0_err"]
    assert 0.9 < np.std(pull) < 1.15
    fgk = good[good["true_teff"].between(4000, 7500) & ~good["true_is_cool_dwarf"]]
    feh_err = fgk.loc[fgk["snr"].between(10, 200), "feh_cnn_err"]
    assert 0.039 < feh_err.quantile(0.05) and feh_err.quantile(0.95) < 0.2   # ~0.05-0.2 dex
    assert np.std((fgk["feh_cnn"] - fgk["true_fe_h"]) / fgk["feh_cnn_err"]) < 1.2


def test_measured_vsini_is_never_negative(mrs):
    """A line-width fit gives v sin i >= 0: noise on slow rotators stops at 0."""
    vsini = mrs["vsini_lasp"].dropna()
    assert len(vsini) > 0 and (vsini >= 0).all()
    assert (vsini[mrs.loc[vsini.index, "true_vsini"] > 20] > 0).all()


def test_flagged_and_low_snr_fractions(mrs):
    assert 0.02 < (mrs["rv_br_flag"] != 0).mean() < 0.045    # injected 3%
    assert 0.01 < (mrs["snr"] < 10).mean() < 0.08
    hot = mrs["true_teff"] > 7000
    assert mrs.loc[hot, "mg_fe"].isna().all()
    assert 0.2 < mrs.loc[~hot, "o_fe"].isna().mean() < 0.4      # injected 30%


def test_cool_dwarf_bias(mrs):
    ok = mrs[(mrs["rv_br_flag"] == 0)]
    cool_dwarf = ok[(ok["true_teff"].between(4000, 5000)) & (ok["true_logg"] >= 4.0)]
    normal = ok[ok["true_teff"].between(5000, 7500)]
    for column, truth in (("feh_cnn", "true_fe_h"), ("logg_cnn", "true_logg")):
        assert -0.32 < (cool_dwarf[column] - cool_dwarf[truth]).mean() < -0.18, column
        assert abs((normal[column] - normal[truth]).mean()) < 0.03, column


def test_hot_and_very_cool_stars_have_unreliable_feh(mrs):
    ok = mrs[(mrs["snr"] > 30)].assign(error=lambda d: d["feh_cnn"] - d["true_fe_h"])
    per_star = ok.groupby("uid").agg(error=("error", "mean"), teff=("true_teff", "first"))
    rms = {name: np.sqrt(np.mean(sel["error"] ** 2)) for name, sel in
           (("hot", per_star[per_star["teff"] > 7500]), ("very cool", per_star[per_star["teff"] < 4000]),
            ("FGK", per_star[per_star["teff"].between(5000, 7000)]))}
    assert rms["hot"] > 0.15 and rms["very cool"] > 0.15 and rms["FGK"] < 0.08, rms


def test_binaries_scatter_in_rv(tables, mrs):
    truth = tables["truth_stars"]
    assert 0.02 < truth["is_binary"].mean() < 0.06           # injected 4%
    ok = mrs[(mrs["rv_br_flag"] == 0)]
    stats = ok.groupby("uid").agg(std=("rv_br0", "std"), n=("rv_br0", "size"), err=("rv_br0_err", "median"),
                                  binary=("true_is_binary", "first"))
    stats = stats[stats["n"] >= 4]
    assert stats.loc[stats["binary"], "std"].median() > 5.0
    assert (stats.loc[~stats["binary"], "std"] / stats.loc[~stats["binary"], "err"]).median() < 1.3


def test_missing_gaia_ids(mrs):
    star = mrs.groupby("uid").agg(missing=("gaia_source_id", lambda s: (s == -9999).mean()),
                                  kind=("true_kind", "first"))
    assert set(star["missing"]) <= {0.0, 1.0}                 # a star has its id in all rows or none
    normal = star[star["kind"] != "neighbour"]
    assert 0.07 < normal["missing"].mean() < 0.13             # injected 10%
    present = mrs["gaia_source_id"] != -9999
    assert (mrs.loc[present, "gaia_source_id"] == mrs.loc[present, "true_GaiaDR3"]).all()


def test_epoch_propagation_matters_and_is_consistent(tables, mrs):
    members = tables["hunt2024_members"].set_index("GaiaDR3")
    rows = mrs[mrs["true_GaiaDR3"].isin(members.index)]
    gaia = members.loc[rows["true_GaiaDR3"]]
    dt = Time(rows["obsdate"].to_numpy().astype(str)).jyear - 2016.0
    cosd = np.cos(np.radians(gaia["DE_ICRS"].to_numpy()))
    ra_p = gaia["RA_ICRS"].to_numpy() + gaia["pmRA"].to_numpy() * dt / 3.6e6 / cosd
    de_p = gaia["DE_ICRS"].to_numpy() + gaia["pmDE"].to_numpy() * dt / 3.6e6
    sep = 3600 * np.hypot((rows["ra"].to_numpy() - ra_p) * cosd, rows["dec"].to_numpy() - de_p)
    sep0 = 3600 * np.hypot((rows["ra"].to_numpy() - gaia["RA_ICRS"].to_numpy()) * cosd,
                           rows["dec"].to_numpy() - gaia["DE_ICRS"].to_numpy())
    assert np.quantile(sep, 0.99) < 0.5                       # 0.1" fibre noise + pm errors
    # the fibre offsets from the 2016.0 positions follow pm * dt with unit slope
    motion = np.concatenate([gaia["pmRA"].to_numpy() * dt, gaia["pmDE"].to_numpy() * dt])
    offset = 3.6e6 * np.concatenate([(rows["ra"].to_numpy() - gaia["RA_ICRS"].to_numpy()) * cosd,
                                     rows["dec"].to_numpy() - gaia["DE_ICRS"].to_numpy()])
    slope = np.sum(motion * offset) / np.sum(motion ** 2)
    slope_error = np.std(offset - slope * motion) / np.sqrt(np.sum(motion ** 2))
    assert abs(slope - 1.0) < 4 * slope_error and slope_error < 0.03
    assert sep0.max() > 0.3 and np.quantile(sep0, 0.99) > np.quantile(sep, 0.99)


def test_unrelated_neighbours_within_the_fibre_radius(tables, mrs):
    neighbours = mrs[mrs["true_kind"] == "neighbour"]
    assert len(neighbours) > 20
    assert (neighbours["gaia_source_id"] == -9999).mean() > 0.3
    assert not neighbours["true_GaiaDR3"].isin(tables["hunt2024_members"]["GaiaDR3"]).any()


def test_lrs_zero_point(tables):
    lrs = tables["lamost_lrs_dr8"]
    truth = tables["truth_stars"].set_index("GaiaDR3")
    rows = lrs[lrs["gaia_source_id"] != -9999]
    true = truth.loc[rows["gaia_source_id"]]
    single = ~true["is_binary"].to_numpy()
    assert np.median((rows["rv"].to_numpy() - true["rv"].to_numpy())[single]) == pytest.approx(-4.7, abs=0.3)


def _normalise(name: str) -> str:
    return re.sub(r"[\s_]+", "_", name.strip()).lower()


@pytest.mark.parametrize("file,rv_offset,feh_offset", [("literature_a.csv", 0.3, 0.03),
                                                       ("literature_b.csv", -4.7, -0.05)])
def test_literature_offsets_and_name_spellings(demo_sim, tables, file, rv_offset, feh_offset):
    lit = pd.read_csv(demo_sim / file)
    hunt = tables["hunt2024_clusters"]
    lookup = {_normalise(alias): name for name, names in zip(hunt["Name"], hunt["AllNames"])
              for alias in names.split(",")}
    lit["Name"] = lit["Cluster"].map(lambda s: lookup.get(_normalise(s)))
    assert lit["Name"].notna().all()
    assert (lit["Cluster"] != lit["Name"]).mean() > 0.4        # spelled differently
    assert (~lit["Name"].isin(hunt["Name"]) | lit["Cluster"].str.contains("SimCat")).any()
    assert 0.4 <= len(lit) / len(hunt) <= 0.7
    truth = tables["truth_clusters"].set_index("Name").loc[lit["Name"]]
    d_rv = lit["RV"].to_numpy() - truth["rv"].to_numpy()
    assert abs(d_rv.mean() - rv_offset) < 4 * d_rv.std() / np.sqrt(len(d_rv))
    d_feh = (lit["FeH"].to_numpy() - truth["fe_h"].to_numpy())
    d_feh = d_feh[np.isfinite(d_feh)]
    assert abs(d_feh.mean() - feh_offset) < 4 * d_feh.std() / np.sqrt(len(d_feh))


# --- API, determinism, robustness ---------------------------------------------------------------

def test_ingest_arguments_point_at_the_files(demo_sim):
    args = ingest_arguments(demo_sim)
    assert args["catalogue"] == "hunt2024"
    paths = [args["clusters"], args["members"], *(p for p, _ in args["spectra"]),
             *(p for _, p, _ in args["literature"])]
    assert all(Path(p).is_file() for p in paths)
    assert [kind for _, kind in args["spectra"]] == ["lamost-mrs", "lamost-lrs"]


@pytest.mark.slow
def test_same_seed_same_bytes_whatever_the_chunking(demo_sim, tmp_path, monkeypatch):
    from dataclasses import replace

    from ingest.simulation import presets

    seed = json.loads((demo_sim / "simulation.json").read_text())["seed"]
    monkeypatch.setitem(presets.PRESETS, "demo", replace(presets.PRESETS["demo"], block_clusters=7))
    simulate("demo", seed, tmp_path / "again", progress=False)
    again, first = _sha256s(tmp_path / "again"), _sha256s(demo_sim)
    assert again.pop("simulation.json") != first.pop("simulation.json")   # records block_clusters
    assert again == first
    simulate("demo", seed + 1, tmp_path / "other", progress=False)
    other = _sha256s(tmp_path / "other")
    assert other["lamost_mrs_dr11.fits"] != _sha256s(demo_sim)["lamost_mrs_dr11.fits"]


def test_real_cluster_catalogue_positions(shared_data, tmp_path):
    catalogue = shared_data / "cluster_tables" / "HUNT2024.csv"
    simulate("demo", 7, tmp_path / "sim", progress=False, cluster_catalogue=catalogue)
    real = pd.read_csv(catalogue)
    ours = _read(tmp_path / "sim", "truth_clusters.fits")
    dist = np.abs(ours["ra"][:, None] - real["RA_ICRS"].to_numpy()[None, :]) \
        + np.abs(ours["dec"][:, None] - real["DE_ICRS"].to_numpy()[None, :])
    assert dist.min(axis=1).max() < 1e-6


def test_failure_leaves_nothing_behind(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("RA_ICRS,DE_ICRS,dist50\n1,2,3\n")
    with pytest.raises(InputError, match=r"bad\.csv, column 'logAge50'"):
        simulate("demo", 1, tmp_path / "sim", progress=False, cluster_catalogue=bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_refuses_to_overwrite_foreign_directory(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="neither empty nor a simulator output"):
        simulate("demo", 1, tmp_path, progress=False)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_command_line_uses_the_configured_seed(tmp_path, capsys):
    import argparse

    from ingest.core import config
    from ingest.cli.commands import simulate as command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    assert command.run(parser.parse_args(["--out", str(tmp_path / "sim")])) == 0
    summary = json.loads((tmp_path / "sim" / "simulation.json").read_text())
    assert summary["seed"] == config.defaults()["seed"] and summary["preset"] == "demo"
    assert "MRS rows" in capsys.readouterr().out
