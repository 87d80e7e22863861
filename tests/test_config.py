"""Configuration: what the defaults and a user's overrides do, and clear errors for bad files."""
from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np
import pandas as pd
import pytest

from ingest.core import config
from ingest.core.vocabulary import ABUNDANCES
from ingest.core.config import ConfigError
from ingest.pipeline.s2_crossmatch import match
from ingest.pipeline.s5_estimate import estimate
from ingest.pipeline.s3_quality import param_qc, spectrum_qc


def _one_gaussian_cluster(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """n stars of one cluster: RVs with 1 km/s dispersion and 0.1 km/s errors."""
    rng = np.random.default_rng(seed)
    stars = pd.DataFrame({"rv": rng.normal(0, 1, n), "rv_err": np.full(n, 0.1),
                          "rv_var_flag": np.zeros(n, np.int16),
                          "teff": np.full(n, 5800.0), "logg": np.full(n, 4.2)})
    for par in ABUNDANCES:
        stars[par], stars[par + "_err"] = 0.0, 0.05
    return stars, np.zeros(n, np.int64)


@pytest.mark.parametrize("clip_sigma, inside", [(None, 0.9545), (1.0, 0.6827), (3.0, 0.9973)])
def test_clip_sigma_sets_the_gaussian_fraction_kept_as_flag1(tmp_path, clip_sigma, inside):
    """Measured on 4000 Gaussian RVs: the default clip keeps the fraction of N(0, 1)
    within -+2 sigma, a user file's clip_sigma = 1 or 3 that within -+1 or -+3 sigma
    (4 binomial standard errors; the robust width 1.4826 MAD estimates sigma)."""
    path = tmp_path / "c.toml"
    path.write_text("" if clip_sigma is None else f"[montecarlo]\nclip_sigma = {clip_sigma}\n")
    stars, cluster = _one_gaussian_cluster(4000, seed=3)
    cfg = config.settings(config.load(path))
    _, flags = estimate(stars, cluster, 1, cfg.montecarlo, cfg.params_qc)
    kept = float(np.mean(flags["flag"].to_numpy() >= 1))
    assert kept == pytest.approx(inside, abs=4 * np.sqrt(inside * (1 - inside) / 4000) + 0.005)


def test_snr_cut_rejects_below_it_and_a_user_file_moves_it(tmp_path):
    """Spectra at S/N 5, 9.9, 10 and 30: the default cut rejects the first two; a user
    file with snr_min = 5 keeps all four, one with 20 rejects three."""
    spectra = pd.DataFrame({"rv": [1.0, 2.0, 3.0, 4.0], "rv_err": 0.5,
                            "snr": [5.0, 9.9, 10.0, 30.0], "rv_flag": 0})

    def labels(text: str) -> list[str]:
        path = tmp_path / "c.toml"
        path.write_text(text)
        cfg = config.settings(config.load(path)).spectra
        return spectrum_qc(spectra, cfg)[0]["qc"].tolist()

    assert labels("") == ["low_snr", "low_snr", "ok", "ok"]
    assert labels("[spectra]\nsnr_min = 5\n") == ["ok"] * 4
    assert labels("[spectra]\nsnr_min = 20\n") == ["low_snr"] * 3 + ["ok"]


def test_parameter_qc_window_follows_the_configuration(tmp_path):
    """Stars at Teff 3900, 4800 (dwarf and giant), 5800 and 7600 K: by default the hot,
    the cool and the cool dwarf are dropped; widening the Teff window in a user file
    lets the hot and cool stars through and leaves the cool dwarf out."""
    teff = np.array([3900.0, 4800.0, 4800.0, 5800.0, 7600.0])
    logg = np.array([2.0, 4.6, 2.5, 4.3, 4.0])
    default = param_qc(teff, logg, config.settings(config.load()).params_qc)
    assert default.tolist() == ["cool", "cool_dwarf", "ok", "ok", "hot"]
    path = tmp_path / "c.toml"
    path.write_text("[params_qc]\nteff_min = 3500.0\nteff_max = 8000.0\n")
    wide = param_qc(teff, logg, config.settings(config.load(path)).params_qc)
    assert wide.tolist() == ["ok", "cool_dwarf", "ok", "ok", "ok"]


def test_crossmatch_radius_bounds_the_positional_match():
    """Spectra 3.0 and 4.0 arcsec from a member without Gaia id: the default radius
    matches the nearer only, a 5 arcsec radius both, a 2 arcsec one neither."""
    members = pd.DataFrame({"ra": [100.0], "dec": [0.0], "pmra": [0.0], "pmdec": [0.0],
                            "source_id": pd.array([None], dtype="Int64")})
    spectra = pd.DataFrame({"ra": [100.0, 100.0], "dec": [3.0 / 3600, -4.0 / 3600],
                            "epoch": [np.nan, np.nan],
                            "source_id": pd.array([None, None], dtype="Int64")})

    def matched(**override) -> list[int]:
        xm = replace(config.settings(config.load()).crossmatch, **override)
        pairs = match(members, spectra, xm, "DR3")
        return pairs["spec_index"].tolist()

    assert matched() == [0]
    assert matched(radius_arcsec=5.0) == [0, 1]
    assert matched(radius_arcsec=2.0) == []


def test_user_file_overrides_a_subset(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("seed = 7\n[spectra]\nsnr_min = 20\n")
    cfg = config.load(path)
    assert cfg["seed"] == 7 and cfg["spectra"]["snr_min"] == 20.0
    assert cfg["spectra"]["rv_flag_good"] == 0


@pytest.mark.parametrize("text,match", [
    ("[spectra]\nsnr_cut = 5\n", "unknown configuration key 'spectra.snr_cut'"),
    ("[spectra]\nsnr_min = 'high'\n", "'spectra.snr_min' must be float"),
    ("spectra = 3\n", "'spectra' must be a table"),
    ("[spectra\n", "not valid TOML"),
])
def test_bad_files_name_the_file_and_key(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        config.load(path)
    assert str(path) in str(info.value)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "absent.toml")


def test_keyword_overrides_win_and_none_is_ignored():
    assert config.load(seed=3)["seed"] == 3
    assert config.load(seed=None)["seed"] == config.defaults()["seed"]


def test_defaults_lie_inside_every_allowed_range():
    cfg = config.defaults()
    assert config.validate(cfg, "defaults") is cfg
    ranged = {key for key, _ in config._leaves(cfg) if config._range_of(key)}
    assert {"members.prob_min", "crossmatch.radius_arcsec", "spectra.snr_min",
            "montecarlo.clip_sigma", "galactic.orbit_draws"} <= ranged


@pytest.mark.parametrize("text, key, shown", [
    ("[members]\nprob_min = 2.0\n", "members.prob_min", "[0, 1)"),
    ("[crossmatch]\nradius_arcsec = -3.5\n", "crossmatch.radius_arcsec", "(0, 60]"),
    ("[spectra]\nsnr_min = -1\n", "spectra.snr_min", ">= 0"),
    ("[montecarlo]\nmin_fit_stars = 0\n", "montecarlo.min_fit_stars", ">= 2"),
    ("[montecarlo]\nclip_sigma = -2\n", "montecarlo.clip_sigma", "> 0"),
    ("[galactic]\norbit_draws = 5\n", "galactic.orbit_draws", "[10, "),
    ("[galactic]\nsolar_motion_kms = [11.1, 1e9, 7.25]\n", "galactic.solar_motion_kms",
     "[-100, 100]"),
])
def test_out_of_range_values_name_file_key_value_and_range(tmp_path, text, key, shown):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    message = str(info.value)
    assert str(path) in message and repr(key) in message and shown in message
    assert text.split("= ")[1].strip().split(",")[0].strip("[") in message.replace("-2.0", "-2")


def test_a_config_dict_is_checked_too():
    from ingest.pipeline.run import _resolve_config

    cfg = config.load()
    cfg["montecarlo"]["clip_sigma"] = 0.0
    with pytest.raises(ConfigError, match="'montecarlo.clip_sigma' = 0.0"):
        _resolve_config(cfg)


def test_typed_sections_carry_every_merged_value(tmp_path):
    """Each stage's section holds exactly the merged file's values (lists as tuples), so no
    stage needs a default of its own."""
    path = tmp_path / "c.toml"
    path.write_text("[crossmatch]\nradius_arcsec = 2\n[gradients]\nage_bins_gyr = [0.2, 2.0]\n")
    merged = config.load(path)
    settings = config.settings(merged)
    for name, table in merged.items():
        if name in ("seed", "rv_offsets"):
            continue
        section = asdict(getattr(settings, name))
        assert section == {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    assert settings.crossmatch.radius_arcsec == 2.0
    assert isinstance(settings.crossmatch.radius_arcsec, float)
    assert settings.gradients.age_bins_gyr == (0.2, 2.0)
    assert dict(settings.rv_offsets) == merged["rv_offsets"]
    assert settings.crossmatch.epoch("DR2") == 2015.5 and settings.crossmatch.epoch("DR3") == 2016.0
    assert settings.members.prob_cut("cg20") == ("members.prob_min_cg20", 0.7)


@pytest.mark.parametrize("text, key", [
    ('[galactic]\norbit_method = "epicycles"\n', "galactic.orbit_method"),
    ('[gradients]\nsample = "everything"\n', "gradients.sample"),
    ("[binaries]\nmin_p_close = 0.3\n", "binaries.min_p_close"),
])
def test_invalid_choices_stop_when_the_file_is_read(tmp_path, text, key):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=repr(key)):
        config.load(path)


def test_a_section_missing_a_key_is_named():
    cfg = config.load()
    del cfg["combine"]["rv_jitter_kms"]
    with pytest.raises(ConfigError, match=r"\[combine\] lacks rv_jitter_kms"):
        config.settings(cfg)
