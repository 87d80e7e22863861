"""Per-star combination of repeat spectra against a plain per-star reference."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ingest.core import config
from ingest.pipeline.s4_combine import PARAMS, combine, rv_variability, weighted_stats


def reference_star(values: np.ndarray, errors: np.ndarray) -> tuple[float, float, float, int]:
    """Textbook weighted mean, its error, the ddof=1 std and the count, one star at a time."""
    good = np.isfinite(values) & np.isfinite(errors) & (errors > 0)
    v, e = values[good], errors[good]
    if len(v) == 0:
        return np.nan, np.nan, np.nan, 0
    w = 1 / e**2
    mean = np.sum(w * v) / np.sum(w)
    return mean, 1 / np.sqrt(np.sum(w)), (np.std(v, ddof=1) if len(v) > 1 else np.nan), len(v)


def test_weighted_stats_match_per_star_reference():
    rng = np.random.default_rng(7)
    group = rng.integers(0, 50, 400)
    value = rng.normal(5000, 100, 400)
    error = rng.uniform(10, 80, 400)
    value[::17] = np.nan          # rejected per value
    error[::23] = 0.0             # non-positive error: rejected
    error[::29] = -5.0
    got = weighted_stats(group, value, error, 52)   # groups 50, 51 are empty
    for g in range(52):
        mean, err, std, n = reference_star(value[group == g], error[group == g])
        assert got["nobs"][g] == n
        np.testing.assert_allclose([got["mean"][g], got["err"][g], got["std"][g]],
                                   [mean, err, std], rtol=1e-10, equal_nan=True)


def test_single_observation_has_no_scatter_and_no_chi2():
    got = weighted_stats(np.array([0, 1, 1]), np.array([1.0, 2.0, 4.0]),
                         np.array([0.5, 1.0, 1.0]), 2)
    assert np.isnan(got["std"][0]) and np.isnan(got["chi2"][0])
    assert got["mean"][0] == 1.0 and got["err"][0] == 0.5
    assert got["chi2"][1] == pytest.approx(2.0)   # (1^2 + 1^2) / 1


def test_rv_variability_flags_binary_and_keeps_constant_star():
    rng = np.random.default_rng(3)
    n_epochs, err = 6, 1.0
    constant = rng.normal(10.0, err, n_epochs)
    binary = 10.0 + 15.0 * np.sin(np.arange(n_epochs)) + rng.normal(0, err, n_epochs)
    group = np.repeat([0, 1, 2], [n_epochs, n_epochs, 1])
    rv = np.concatenate([constant, binary, [50.0]])
    got = weighted_stats(group, rv, np.full(len(rv), err), 3)
    flag = rv_variability(got["chi2"], got["nobs"], 1e-3)
    assert flag.tolist() == [0, 1, 0]       # single epoch is never flagged


def test_rv_variability_false_alarm_rate_matches_pvalue():
    rng = np.random.default_rng(11)
    n_stars, n_epochs, pvalue = 20000, 4, 0.05
    group = np.repeat(np.arange(n_stars), n_epochs)
    rv = rng.normal(0, 2.0, n_stars * n_epochs)
    got = weighted_stats(group, rv, np.full(len(rv), 2.0), n_stars)
    rate = rv_variability(got["chi2"], got["nobs"], pvalue).mean()
    # binomial standard error sqrt(0.05*0.95/20000) = 0.0015; allow 4 sigma
    assert abs(rate - pvalue) < 0.006


def test_combine_outputs_every_parameter_and_maps_feh():
    spectra = pd.DataFrame({"rv": [1.0, 3.0, 5.0], "rv_err": [1.0, 1.0, 2.0],
                            "feh": [-0.1, 0.1, 0.0], "feh_err": [0.1, 0.1, np.nan],
                            "teff": [5000.0, 5100.0, 6000.0], "teff_err": [50.0, 50.0, 100.0]})
    out = combine(spectra, np.array([0, 0, 1]), 2, config.settings(config.defaults()).combine)
    expected = {p + suffix for p in PARAMS for suffix in ("", "_err", "_std", "_nobs")}
    assert expected | {"rv_chi2", "rv_var_flag"} == set(out.columns)
    assert out["fe_h"].tolist() == pytest.approx([0.0, np.nan], nan_ok=True)
    assert out["fe_h_nobs"].tolist() == [2, 0]
    assert out["mg_fe_nobs"].tolist() == [0, 0] and out["mg_fe"].isna().all()
    assert out["rv"][0] == pytest.approx(2.0) and out["rv_err"][0] == pytest.approx(2**-0.5)
