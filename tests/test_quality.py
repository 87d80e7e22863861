"""Spectrum QC (S/N, RV flag, per-value rejection) and stellar-parameter QC (FLAG=12 inputs)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from ingest.core import config
from ingest.pipeline import s3_quality as quality


def spectra() -> pd.DataFrame:
    nan = np.nan
    return pd.DataFrame({
        "rv":      [10.0, 11.0, 12.0, 13.0, nan, 15.0, 16.0, 17.0],
        "rv_err":  [1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, -2.0],
        "snr":     [50.0, 5.0, 50.0, 50.0, 50.0, nan, 9.99, 50.0],
        "rv_flag": [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, nan],
        "teff":    [5000.0, np.inf, 5000.0, 5000.0, 5000.0, 5000.0, 5000.0, nan],
        "teff_err": [50.0, 50.0, 0.0, 50.0, 50.0, 50.0, 50.0, nan],
    })


def test_qc_outcomes_in_order_of_precedence():
    frame, counts = quality.spectrum_qc(spectra(), config.Spectra(snr_min=10.0, rv_flag_good=0))
    assert frame["qc"].tolist() == ["ok", "low_snr", "rv_flag", "bad_rv", "bad_rv", "ok",
                                    "low_snr", "bad_rv"]
    outcomes = ("qc_ok", "qc_low_snr", "qc_rv_flag", "qc_bad_rv")
    assert [counts[k] for k in outcomes] == [2, 2, 1, 3]


def test_bad_values_are_rejected_per_value_and_counted():
    frame, counts = quality.spectrum_qc(spectra(), config.Spectra(snr_min=10.0, rv_flag_good=0))
    assert np.isnan(frame["rv"].iloc[[3, 7]]).all() and np.isnan(frame["rv_err"].iloc[[3, 7]]).all()
    assert counts["bad_value_rv"] == 3            # zero error, NaN value, negative error
    assert np.isnan(frame["teff"].iloc[[1, 2]]).all()   # infinite value, zero error
    assert frame["rv"].iloc[[1, 2]].tolist() == [11.0, 12.0]   # their RVs survive
    assert counts["bad_value_teff"] == 2          # the all-missing row 7 is not a rejection
    assert frame["teff"].iloc[0] == 5000.0


def test_input_frame_is_not_modified():
    original = spectra()
    quality.spectrum_qc(original, config.Spectra(snr_min=10.0, rv_flag_good=0))
    pd.testing.assert_frame_equal(original, spectra())


def test_missing_snr_and_flag_columns_skip_those_tests():
    frame, _ = quality.spectrum_qc(pd.DataFrame({"rv": [1.0, 2.0], "rv_err": [0.5, 0.5]}),
                                   config.Spectra(snr_min=10.0, rv_flag_good=0))
    assert frame["qc"].tolist() == ["ok", "ok"]


def test_param_qc_classes_follow_fu2022():
    cfg = config.settings(config.defaults()).params_qc
    teff = [np.nan, 7600.0, 7500.0, 3900.0, 4500.0, 4500.0, 4500.0, 5200.0, 4999.0]
    logg = [4.5, 4.0, 4.0, 1.0, 4.0, 3.9, np.nan, 4.6, 4.0]
    assert quality.param_qc(np.array(teff), np.array(logg), cfg).tolist() == [
        "no_teff", "hot", "ok", "cool", "cool_dwarf", "ok", "ok", "ok", "cool_dwarf"]


def test_param_qc_finds_cool_dwarfs_whose_logg_is_biased_low_by_photometry():
    cfg = config.settings(config.defaults()).params_qc
    # A K dwarf at 4500 K (M_G ~ 6.5) whose pipeline log g came out at 3.7, a K
    # giant (M_G ~ 0.8) and a dwarf of unknown distance (no magnitude).
    teff = np.array([4500.0, 4500.0, 4500.0])
    logg = np.array([3.7, 2.5, 3.7])
    extinction = 0.789 * 0.5                           # A_G for A_V = 0.5
    gmag = np.array([11.5, 5.8, np.nan]) + extinction   # at 100 pc: M_G = 6.5, 0.8, unknown
    abs_gmag = quality.absolute_gmag(gmag, np.full(3, 100.0), np.full(3, 0.5))
    np.testing.assert_allclose(abs_gmag[:2], [6.5, 0.8])
    labels = quality.param_qc(teff, logg, cfg, abs_gmag)
    assert labels.tolist() == ["cool_dwarf", "ok", "ok"]


def test_param_qc_disabled_passes_everything():
    cfg = replace(config.settings(config.defaults()).params_qc, enabled=False)
    labels = quality.param_qc(np.array([8000.0, 3000.0]), np.array([4.0, 4.5]), cfg)
    assert labels.tolist() == ["ok", "ok"]
