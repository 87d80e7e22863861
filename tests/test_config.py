"""Configuration: SPEC defaults, user overrides, and clear errors for bad files."""
from __future__ import annotations

import pytest

from ingest import config
from ingest.config import ConfigError


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
