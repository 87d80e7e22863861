"""Gradients: honest errors, recovery of injected broken and quadratic trends, table layout."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from helpers.synthetic import AT_KNEE, INNER, KNEE, OUTER
from helpers.synthetic import gradient_clusters as _clusters
from ingest.core import config
from ingest.pipeline.s7_products import gradients
from ingest.core import schema


def _fast_config() -> config.Gradients:
    """The default [gradients] with one short MCMC run (no extension: steps = max_steps)."""
    return replace(config.settings(config.defaults()).gradients, mcmc_steps=1500,
                   mcmc_burn=500, mcmc_max_steps=1500)


def test_slope_errors_are_honest_when_clusters_scatter_beyond_their_errors():
    """Over 300 realisations the spread of fitted slopes equals the mean quoted error (15%)."""
    rng = np.random.default_rng(1)
    slopes, errors = [], []
    for _ in range(300):
        x = rng.uniform(5, 15, 80)
        err = rng.uniform(0.01, 0.05, 80)
        y = 0.3 - 0.05 * x + rng.normal(0, 0.06, 80) + rng.normal(0, err)
        fit = gradients.fit_linear(x, y, err)
        slopes.append(fit.slope)
        errors.append(fit.slope_err)
    assert np.std(slopes) == pytest.approx(np.mean(errors), rel=0.15)
    assert np.mean(slopes) == pytest.approx(-0.05, abs=3 * np.std(slopes) / np.sqrt(300))


def test_no_scatter_is_added_when_the_errors_explain_the_residuals():
    rng = np.random.default_rng(2)
    x = np.linspace(0, 10, 500)
    err = np.full(500, 0.05)
    y = 1.0 + 0.1 * x + rng.normal(0, 0.05, 500) * 0.8
    _, _, scatter = gradients.weighted_lstsq(np.column_stack([np.ones_like(x), x]), y, err)
    assert scatter == 0.0


def test_broken_line_with_fixed_knee_recovers_both_slopes():
    frame = _clusters(600, seed=3)
    fit = gradients.fit_broken_fixed(frame.r_gc.to_numpy(), frame.fe_h.to_numpy(),
                                     frame.fe_h_err.to_numpy(), KNEE)
    assert abs(fit.slope - INNER) < 2 * fit.slope_err
    assert abs(fit.slope_outer - OUTER) < 2 * fit.slope_outer_err
    assert abs(fit.intercept - AT_KNEE) < 2 * fit.intercept_err


def test_fitted_knee_is_recovered_with_walkers_spread_over_the_prior_and_a_converged_chain():
    """Injected knee 11.5 kpc; walkers start uniformly over 7-16 kpc (none need be near it);
    the chain must run >= 50 autocorrelation times and recover the truth within 2 sigma."""
    frame = _clusters(600, seed=4)
    mcmc = replace(config.settings(config.defaults()).gradients, mcmc_steps=2000, mcmc_burn=500)
    fit = gradients.fit_broken_free(frame.r_gc.to_numpy(), frame.fe_h.to_numpy(),
                                    frame.fe_h_err.to_numpy(), knee_prior=(7.0, 16.0),
                                    mcmc=mcmc, rng=np.random.default_rng(5))
    print(f"knee {fit.knee:.2f} +- {fit.knee_err:.2f}; tau {fit.mcmc_tau:.0f}, "
          f"chain {fit.mcmc_chain} steps")
    assert fit.mcmc_chain >= 50 * fit.mcmc_tau
    assert 0 < fit.knee_err < 3
    assert abs(fit.knee - KNEE) < 2 * fit.knee_err
    assert abs(fit.slope - INNER) < 2 * fit.slope_err
    assert abs(fit.slope_outer - OUTER) < 2 * fit.slope_outer_err


def test_a_small_sample_with_no_cluster_beyond_part_of_the_knee_prior_still_fits():
    """A small real catalogue: 40 clusters at R_gc 6-10 kpc while the knee prior runs to
    16 kpc, so walkers starting at a knee beyond 10 kpc have no cluster outside it (a
    singular fixed-knee fit).  The fit must still run and recover the inner slope, the
    one the data constrain, within 3 sigma."""
    rng = np.random.default_rng(11)
    r_gc = rng.uniform(6.0, 10.0, 40)
    err = np.full(40, 0.05)
    fe_h = AT_KNEE + INNER * (r_gc - KNEE) + rng.normal(0, err)
    fit = gradients.fit_broken_free(r_gc, fe_h, err, knee_prior=(7.0, 16.0),
                                    mcmc=_fast_config(), rng=np.random.default_rng(12))
    assert np.isfinite([fit.slope, fit.slope_err, fit.knee]).all()
    assert abs(fit.slope - INNER) < 3 * fit.slope_err


def test_a_catalogue_inside_the_knee_gets_no_fixed_knee_broken_line(tmp_path):
    """Clusters only at R_gc 6-10 kpc (knee 11.5): the fixed-knee broken line has no
    cluster beyond the knee, so it is left out like any fit with too few clusters; the
    linear [Fe/H]-R_gc gradient is still fitted and recovers the injected inner slope."""
    frame = _clusters(400, seed=3)
    frame = frame[(frame.r_gc > 6) & (frame.r_gc < 10)].reset_index(drop=True)
    table = gradients.fit_gradients(frame, _fast_config(), 1)
    fe_rgc = table[(table["quantity"] == "fe_h") & (table["variable"] == "r_gc")]
    assert "broken_fixed" not in set(fe_rgc["model"])
    linear = fe_rgc[fe_rgc["model"] == "linear"].iloc[0]
    assert abs(linear["slope"] - INNER) < 3 * linear["slope_err"]


def test_walkers_start_over_the_whole_knee_range():
    frame = _clusters(200, seed=14)
    job = gradients.broken_free_job(frame.r_gc.to_numpy(), frame.fe_h.to_numpy(),
                                    frame.fe_h_err.to_numpy(), (7.0, 16.0), _fast_config(),
                                    np.random.default_rng(1))
    knees = job.initial[:, 3]
    assert knees.min() < 7.5 and knees.max() > 15.5
    assert np.histogram(knees, bins=4, range=(7, 16))[0].min() >= 6


def test_independent_fits_per_side_recover_both_slopes_with_n_per_side():
    frame = _clusters(800, seed=15)
    x, y, err = frame.r_gc.to_numpy(), frame.fe_h.to_numpy(), frame.fe_h_err.to_numpy()
    fit = gradients.fit_broken_split(x, y, err, KNEE)
    assert (fit.n_inner, fit.n_outer) == (int((x < KNEE).sum()), int((x >= KNEE).sum()))
    assert abs(fit.slope - INNER) < 2 * fit.slope_err
    assert abs(fit.slope_outer - OUTER) < 2 * fit.slope_outer_err


def test_quadratic_trends_in_lz_and_energy_per_age_group_are_recovered():
    """Fu et al. 2022 Figs 9-10: [Fe/H] = c + b L + a L^2 (L in 10^3 kpc km/s) injected."""
    frame = _clusters(400, seed=16)
    rng = np.random.default_rng(17)
    lz = rng.uniform(1.2, 3.5, len(frame))
    frame["lz"] = lz * 1e3
    frame["energy"] = rng.uniform(-1.9, -1.4, len(frame)) * 1e5
    frame["fe_h"] = 0.05 * lz ** 2 - 0.45 * lz + 0.6 + rng.normal(0, 0.03, len(frame))
    frame["fe_h_err"] = 0.03
    frame["logage50"] = 8.2                       # all in the 0.1-0.5 Gyr group
    table = gradients.fit_gradients(frame, _fast_config(), seed=18)
    row = table[(table.variable == "lz") & (table.age_bin == "0.1-0.5")].iloc[0]
    assert row.variable_unit == "10+3kpc.km/s" and row.model == "quadratic_mcmc"
    assert abs(row.quad - 0.05) < 2 * row.quad_err
    assert abs(row.slope + 0.45) < 2 * row.slope_err
    assert set(table[table.variable == "energy"].age_bin) == {"0.1-0.5"}
    assert row.mcmc_tau > 0 and row.mcmc_chain > 0


def test_sample_definitions_and_the_per_element_minimum():
    frame = _clusters(300, seed=19)
    frame["mg_fe_num"] = np.where(np.arange(300) % 2 == 0, 1, 5)
    table = gradients.fit_gradients(frame, replace(_fast_config(), sample="thesis"), seed=20)
    everything = table[(table.model == "linear") & (table.variable == "r_gc")
                       & (table.quantity == "fe_h") & (table.age_bin == "all")].iloc[0]
    assert everything.n == int(((frame.n_flag12 >= 1) & (frame.r_gc >= 5)).sum())
    assert everything["sample"].startswith("thesis: n_flag12 >= 1")
    mg = table[(table.quantity == "mg_fe") & (table.range_max == 18.0)].iloc[0]
    assert mg.n == int(((frame.n_flag12 >= 1) & (frame.mg_fe_num >= 3)).sum())
    assert gradients.min_flag12(replace(_fast_config(), sample="custom", good_min_flag12=10)) == 10
    cfg = config.defaults()
    cfg["gradients"]["sample"] = "everything"
    with pytest.raises(ValueError, match="gradients.sample"):
        config.settings(cfg)


def test_quadratic_mcmc_recovers_an_injected_parabola():
    rng = np.random.default_rng(6)
    x = rng.uniform(6, 16, 200)
    err = rng.uniform(0.02, 0.06, 200)
    truth = (0.002, -0.08, 0.5)
    y = truth[0] * x ** 2 + truth[1] * x + truth[2] + rng.normal(0, 0.03, 200) + \
        rng.normal(0, err)
    fit = gradients.fit_quadratic(x, y, err, _fast_config(),
                                  np.random.default_rng(7))
    assert abs(fit.quad - truth[0]) < 2 * fit.quad_err
    assert abs(fit.slope - truth[1]) < 2 * fit.slope_err
    assert abs(fit.intercept - truth[2]) < 2 * fit.intercept_err


def test_gradient_table_has_the_published_columns_and_the_good_sample():
    frame = _clusters(500, seed=8)
    table = gradients.fit_gradients(frame, _fast_config(), seed=9)
    assert list(table.columns) == schema.table("gradient").names
    assert table["gradient_id"].is_unique
    everything = table[(table.quantity == "fe_h") & (table.variable == "r_gc")
                       & (table.model == "linear") & (table.age_bin == "all")].iloc[0]
    expected_n = int(((frame.n_flag12 >= 3) & (frame.r_gc >= 5) & (frame.r_gc < 18)).sum())
    assert everything["n"] == expected_n
    assert everything["sample"].startswith("fu2022: n_flag12 >= 3")
    models = set(table.loc[table.quantity == "fe_h", "model"])
    assert models == {"linear", "broken_fixed", "broken_fit", "broken_split", "quadratic_mcmc"}
    assert set(table.loc[table.model == "quadratic_mcmc", "age_bin"]) == {
        "<0.1", "0.1-0.5", "0.5-1", "1-2", "2-4", ">4"}
    age_rows = table[(table.model == "linear") & (table.variable == "r_gc")
                     & (table.quantity == "fe_h")]
    assert set(age_rows.age_bin) == {"all", "<0.1", "0.1-0.5", "0.5-1", ">1"}
    mg = table[table.quantity == "mg_fe"].sort_values("range_max")
    assert mg.range_max.tolist() == [11.5, 18.0]
    assert np.all(np.abs(mg.slope - 0.003) < 3 * mg.slope_err)      # layout test: 3 sigma



def test_gradient_table_is_the_same_bits_with_one_or_two_worker_processes():
    """The emcee fits are seeded in table order before they are handed out, so the
    table must not depend on how many processes sample them (nor on their order)."""
    frame = _clusters(300, seed=21)
    short = replace(_fast_config(), mcmc_steps=400, mcmc_burn=100, mcmc_max_steps=400)
    inline = gradients.fit_gradients(frame, replace(short, mcmc_processes=1), seed=22)
    pooled = gradients.fit_gradients(frame, replace(short, mcmc_processes=2), seed=22)
    assert (inline["model"] == "quadratic_mcmc").sum() >= 2
    pd.testing.assert_frame_equal(inline, pooled, check_exact=True)

@pytest.mark.slow
def test_demo_ingest_recovers_the_injected_gradient(demo_sim, demo_ingest):
    from ingest.pipeline.s8_outputs.figure_jobs import read_fits_table

    truth = json.loads((demo_sim / "simulation.json").read_text())["model"]["gradient"]
    table = read_fits_table(demo_ingest / "gradient.fits")
    fe_h = table[(table.quantity == "fe_h") & (table.variable == "r_gc")
                 & (table.age_bin == "all")].set_index("model")
    fixed, free = fe_h.loc["broken_fixed"], fe_h.loc["broken_fit"]
    for fit in (fixed, free):
        assert abs(fit.slope - truth["slope_inner"]) < 2 * fit.slope_err
        assert abs(fit.slope_outer - truth["slope_outer"]) < 2 * fit.slope_outer_err
    assert abs(free.knee - truth["knee_kpc"]) < 2 * free.knee_err
