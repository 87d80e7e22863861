"""Configuration: SPEC defaults, user overrides, and clear errors for bad files."""
from __future__ import annotations

from dataclasses import asdict

import pytest

from ingest.core import config
from ingest.core.config import ConfigError


def test_defaults_follow_the_source_papers():
    cfg = config.load()
    assert cfg["members"]["prob_min"] == 0.5
    assert cfg["crossmatch"]["radius_arcsec"] == 3.5
    assert cfg["spectra"]["snr_min"] == 10.0
    assert cfg["montecarlo"]["n_draws"] == 5000
    assert cfg["montecarlo"]["clip_sigma"] == 2.0
    assert (cfg["params_qc"]["teff_min"], cfg["params_qc"]["teff_max"]) == (4000.0, 7500.0)
    assert cfg["galactic"]["solar_motion_kms"] == [11.1, 12.24, 7.25]


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
            "montecarlo.n_draws", "montecarlo.clip_sigma", "galactic.orbit_draws"} <= ranged


@pytest.mark.parametrize("text, key, shown", [
    ("[members]\nprob_min = 2.0\n", "members.prob_min", "[0, 1)"),
    ("[crossmatch]\nradius_arcsec = -3.5\n", "crossmatch.radius_arcsec", "(0, 60]"),
    ("[spectra]\nsnr_min = -1\n", "spectra.snr_min", ">= 0"),
    ("[montecarlo]\nn_draws = 0\n", "montecarlo.n_draws", "[10, "),
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
    cfg["montecarlo"]["n_draws"] = 0
    with pytest.raises(ConfigError, match="'montecarlo.n_draws' = 0"):
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
