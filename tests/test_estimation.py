"""Monte Carlo cluster estimation against a brute-force 5000-draw Monte Carlo and injected truth."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats
from scipy.special import ndtr

from ingest.core import config as config_module
from ingest.pipeline import s5_estimate as estimation
from ingest.core.vocabulary import ABUNDANCES
from ingest.pipeline.s5_estimate import (RV_FLAG_FEW, RV_FLAG_NONE, RV_FLAG_OK, RV_FLAG_SINGLE,
                               estimate, mixture_median, mixture_moments)
from helpers.monte_carlo import FU_DRAWS, brute_force_stats


@pytest.fixture
def cfg() -> config_module.Settings:
    return config_module.settings(config_module.load())


def synthetic_stars(n_clusters: int, seed: int, sigma_int: float = 1.0,
                    rv_err: tuple[float, float] = (0.3, 1.5)
                    ) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """Clusters with a known systemic RV and [X/H]; stars scatter by sigma_int plus their error."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 25, n_clusters)
    cluster = np.repeat(np.arange(n_clusters), sizes)
    n = len(cluster)
    truth = {"rv": rng.normal(0, 30, n_clusters), "abund": rng.normal(-0.1, 0.2, n_clusters)}
    err = rng.uniform(*rv_err, n)
    stars = pd.DataFrame({
        "rv": truth["rv"][cluster] + rng.normal(0, sigma_int, n) + rng.normal(0, err),
        "rv_err": err, "rv_var_flag": np.zeros(n, np.int16),
        "teff": rng.uniform(5200, 6500, n), "logg": rng.uniform(2.0, 4.5, n)})
    for par in ABUNDANCES:
        e = rng.uniform(0.03, 0.12, n)
        stars[par] = truth["abund"][cluster] + rng.normal(0, 0.02, n) + rng.normal(0, e)
        stars[par + "_err"] = e
    return stars, cluster, truth


def brentq_median(x: np.ndarray, s: np.ndarray) -> float:
    """Median of an equal-weight Gaussian mixture by scalar root finding (independent check)."""
    def cdf(t):
        return stats.norm.cdf(t, x, s).mean() - 0.5
    return optimize.brentq(cdf, (x - 10 * s).min(), (x + 10 * s).max(), xtol=1e-12)


def test_mixture_median_matches_scalar_root_finding():
    rng = np.random.default_rng(5)
    group = rng.integers(0, 40, 300)
    x = rng.normal(0, 20, 300) + 100 * (group % 3)      # multimodal groups too
    s = rng.uniform(0.1, 5.0, 300)
    got = mixture_median(group, x, s, 41)                # group 40 empty
    for g in range(40):
        assert got[g] == pytest.approx(brentq_median(x[group == g], s[group == g]), abs=1e-6)
    assert np.isnan(got[40])


def test_mixture_moments_match_explicit_draws():
    rng = np.random.default_rng(9)
    x, s = np.array([1.0, 4.0, 10.0]), np.array([0.5, 2.0, 1.0])
    draws = rng.normal(x[:, None], s[:, None], (3, 400_000)).ravel()
    n, mean, std = mixture_moments(np.zeros(3, np.int64), x, s, 1)
    # MC standard errors: std/sqrt(1.2e6) ~ 0.004 for the mean, smaller for the std
    assert n[0] == 3
    assert mean[0] == pytest.approx(draws.mean(), abs=0.02)
    assert std[0] == pytest.approx(draws.std(), abs=0.02)


def symmetric_rv_clusters(sizes: list[int], seed: int) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """Clusters whose FLAG=1 and FLAG=12 sets are known beforehand: all stars.

    RVs lie evenly spaced over rv_c -+ 1 km/s, mirror images with the same
    error, so each cluster's pooled distribution is symmetric about the true
    rv_c: its median and mean are rv_c exactly, and the clip window (2 x 1.4826
    x the MAD, >= 0.5 km/s: at least -+1.48 km/s) holds every star.  The
    abundances scatter freely around their truth (0.02 dex plus errors
    0.03-0.12 dex); Teff/log g pass the parameter QC.
    """
    rng = np.random.default_rng(seed)
    cluster = np.repeat(np.arange(len(sizes)), sizes)
    truth = {"rv": rng.normal(0, 30, len(sizes)), "abund": rng.normal(-0.1, 0.2, len(sizes))}
    offsets, errors = [], []
    for size in sizes:
        half = rng.uniform(0.3, 1.5, (size + 1) // 2)
        offsets.append(np.linspace(-1.0, 1.0, size))
        errors.append(np.r_[half, half[: size // 2][::-1]])
    n = len(cluster)
    stars = pd.DataFrame({"rv": truth["rv"][cluster] + np.concatenate(offsets),
                          "rv_err": np.concatenate(errors), "rv_var_flag": np.zeros(n, np.int16),
                          "teff": np.full(n, 5800.0), "logg": np.full(n, 4.2)})
    for par in ABUNDANCES:
        e = rng.uniform(0.03, 0.12, n)
        stars[par] = truth["abund"][cluster] + rng.normal(0, 0.02, n) + rng.normal(0, e)
        stars[par + "_err"] = e
    return stars, cluster, truth


def test_estimate_matches_a_brute_force_5000_draw_monte_carlo(cfg):
    """Fu et al.'s recipe done literally in the test (5000 draws per star from
    N(value, error), pooled per cluster, numpy median/mean/std) on 8 clusters of
    5-30 stars, RV and 15 abundances: the production estimator (the exact
    infinite-draw limit) lies within 5 Monte Carlo standard errors of every
    brute-force statistic, and those standard errors are below 1/10 of the
    cluster's own uncertainty, so the comparison would see any bias that
    matters.  The brute force's RV median and mean also hit the injected
    centre of the symmetric RV distributions within the same noise."""
    sizes = [5, 6, 9, 12, 15, 20, 25, 30]
    stars, cluster, truth = symmetric_rv_clusters(sizes, seed=41)
    out, flags = estimate(stars, cluster, len(sizes), cfg.montecarlo, cfg.params_qc)
    assert (flags["flag"] == 12).all()
    rng = np.random.default_rng(42)
    worst = 0.0
    for par, num in [("rv", "n_flag1")] + [(p, p + "_num") for p in ABUNDANCES]:
        assert out[num].tolist() == sizes, par
        for c in range(len(sizes)):
            here = cluster == c
            values = stars[par].to_numpy()[here]
            errors = stars[par + "_err"].to_numpy()[here]
            brute, noise = brute_force_stats(values, errors, FU_DRAWS, rng)
            for stat, column in (("median", par), ("mean", par + "_mean"),
                                 ("std", par + "_std")):
                pull = (out[column][c] - brute[stat]) / noise[stat]
                worst = max(worst, abs(pull))
                assert abs(pull) < 5, (column, c, out[column][c], brute[stat], noise[stat])
                assert noise[stat] < 0.1 * out[par + "_err"][c], (column, c)
            if par == "rv":
                for stat in ("median", "mean"):
                    assert abs(brute[stat] - truth["rv"][c]) < 5 * noise[stat], (stat, c)
    print(f"largest |production - brute force| / Monte Carlo error: {worst:.2f}")


def test_outlier_and_rv_variable_star_do_not_pull_cluster_rv(cfg):
    rng = np.random.default_rng(4)
    rv = np.concatenate([rng.normal(12.0, 1.0, 15), [55.0, 17.0]])
    stars = pd.DataFrame({"rv": rv, "rv_err": np.full(17, 0.5),
                          "rv_var_flag": np.r_[np.zeros(16), 1].astype(np.int16),
                          "teff": np.full(17, 5800.0), "logg": np.full(17, 4.2)})
    for par in ABUNDANCES:
        stars[par], stars[par + "_err"] = 0.0, 0.05
    clean, _ = estimate(stars.iloc[:15], np.zeros(15, np.int64), 1, cfg.montecarlo, cfg.params_qc)
    dirty, flags = estimate(stars, np.zeros(17, np.int64), 1, cfg.montecarlo, cfg.params_qc)
    assert flags["flag"].tolist()[15:] == [0, 0]
    assert dirty["n_all"][0] == 17 and dirty["n_flag1"][0] == 15
    assert dirty["rv"][0] == clean["rv"][0] and dirty["rv_std"][0] == clean["rv_std"][0]


def test_rv_flag_categories(cfg):
    sizes = [1, 3, 12, 0]
    cluster = np.repeat(np.arange(4), sizes)
    rng = np.random.default_rng(8)
    stars = pd.DataFrame({"rv": rng.normal(0, 1, len(cluster)), "rv_err": 0.5,
                          "rv_var_flag": np.int16(0), "teff": 5800.0, "logg": 4.2})
    for par in ABUNDANCES:
        stars[par], stars[par + "_err"] = 0.0, 0.05
    out, _ = estimate(stars, cluster, 4, cfg.montecarlo, cfg.params_qc)
    assert out["rv_flag"].tolist() == [RV_FLAG_SINGLE, RV_FLAG_FEW, RV_FLAG_OK, RV_FLAG_NONE]
    assert out["rv_fit_mu"][2] == pytest.approx(out["rv"][2], abs=0.5 * out["rv_std"][2])
    assert np.isnan(out["rv"][3]) and out["n_all"][3] == 0


def test_parameter_qc_removes_cool_dwarf_bias(cfg):
    """Cool dwarfs with LAMOST-like [Fe/H] underestimates bias the cluster unless QC drops them."""
    rng = np.random.default_rng(12)
    n = 40
    dwarf = np.arange(n) < 18
    stars = pd.DataFrame({"rv": rng.normal(0, 1, n), "rv_err": 0.5, "rv_var_flag": np.int16(0),
                          "teff": np.where(dwarf, 4600.0, 5800.0),
                          "logg": np.where(dwarf, 4.6, 4.0)})
    for par in ABUNDANCES:
        stars[par] = np.where(dwarf, -0.3, 0.0) + rng.normal(0, 0.05, n)
        stars[par + "_err"] = 0.05
    on, flags = estimate(stars, np.zeros(n, np.int64), 1, cfg.montecarlo, cfg.params_qc)
    off_qc = replace(cfg.params_qc, enabled=False)
    off, _ = estimate(stars, np.zeros(n, np.int64), 1, cfg.montecarlo, off_qc)
    assert (flags["param_qc"][dwarf] == "cool_dwarf").all()
    flag1 = (flags["flag"] >= 1).to_numpy()
    assert flag1.sum() >= n - 3                 # a 2-sigma clip of 40 Gaussian RVs
    assert on["n_flag12"][0] == (flag1 & ~dwarf).sum() and off["n_flag12"][0] == flag1.sum()
    assert abs(on["fe_h"][0]) < 2 * on["fe_h_err"][0]          # truth is 0
    assert off["fe_h"][0] < on["fe_h"][0] - 0.05                # dwarfs pull it down


def test_pulls_against_injected_truth(cfg):
    stars, cluster, truth = synthetic_stars(1500, seed=21)
    out, _ = estimate(stars, cluster, 1500, cfg.montecarlo, cfg.params_qc)
    for par, num, true in (("rv", "n_flag1", truth["rv"]), ("fe_h", "fe_h_num", truth["abund"])):
        good = out[num].to_numpy() >= 3
        pull = (out[par].to_numpy() - true)[good] / out[par + "_err"].to_numpy()[good]
        median = np.median(pull)
        robust = 1.4826 * np.median(np.abs(pull - median))
        assert abs(median) < 0.1, (par, median)
        assert 0.7 <= robust <= 1.3, (par, robust)


def test_error_stays_finite_for_precise_stars_far_apart(cfg):
    """Two precise stars 20 km/s apart: mixture density ~0 at the median, error = SEM."""
    x, s = np.array([0.0, 20.0]), np.array([0.1, 0.1])
    from ingest.pipeline.s5_estimate import pooled_stats
    st = pooled_stats(np.zeros(2, np.int64), x, s, 1)
    assert st["median"][0] == pytest.approx(10.0)
    assert st["err"][0] == pytest.approx(np.std(x, ddof=1) / np.sqrt(2))


def test_error_never_below_the_no_dispersion_limit():
    """Identical values (one blended spectrum matched to two members) must not give 0."""
    from ingest.pipeline.s5_estimate import pooled_stats
    st = pooled_stats(np.zeros(2, np.int64), np.array([0.1, 0.1]), np.array([0.05, 0.05]), 1)
    assert st["err"][0] == pytest.approx(0.05 / np.sqrt(2))


def test_error_falls_back_when_density_at_median_is_tiny():
    """Stars 6 km/s apart with 0.1 km/s errors: slope ~1e-78, sandwich absurd -> SEM."""
    from ingest.pipeline.s5_estimate import pooled_stats
    x = np.array([0.0, 0.0, 6.0, 6.0])
    st = pooled_stats(np.zeros(4, np.int64), x, np.full(4, 0.1), 1)
    assert np.isfinite(st["err"][0])
    assert st["err"][0] == pytest.approx(np.std(x, ddof=1) / 2)


def _rv_only_clusters(n_clusters: int, size: int, seed: int, sigma_int: float,
                      outlier_fraction: float = 0.0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Clusters of ``size`` stars, errors 0.5-4 km/s, plus outliers 8-40 km/s away (truth mask)."""
    rng = np.random.default_rng(seed)
    cluster = np.repeat(np.arange(n_clusters), size)
    n = len(cluster)
    err = rng.uniform(0.5, 4.0, n)
    rv = rng.normal(0, 30, n_clusters)[cluster] + rng.normal(0, sigma_int, n) + rng.normal(0, err)
    outlier = rng.random(n) < outlier_fraction
    rv[outlier] += rng.choice([-1, 1], outlier.sum()) * rng.uniform(8, 40, outlier.sum())
    stars = pd.DataFrame({"rv": rv, "rv_err": err, "rv_var_flag": np.zeros(n, np.int16),
                          "teff": 5800.0, "logg": 4.2})
    for par in ABUNDANCES:
        stars[par], stars[par + "_err"] = 0.0, 0.05
    return stars, cluster, outlier


def test_iterated_robust_clip_removes_outliers_that_one_pooled_std_pass_keeps(cfg):
    """Injected truth: 40 clusters of 50 stars, 10% outliers 8-40 km/s off (members: 2 km/s
    dispersion, 0.5-4 km/s errors).  Measured: the iterated MAD clip must keep <= 10% of the
    outliers and >= 90% of the members; one pass with the pooled std (the old clip) keeps
    several times more outliers."""
    stars, cluster, outlier = _rv_only_clusters(40, 50, seed=30, sigma_int=2.0,
                                                outlier_fraction=0.1)
    out, flags = estimate(stars, cluster, 40, cfg.montecarlo, cfg.params_qc)
    flag1 = flags["flag"].to_numpy() >= 1
    kept_outliers, kept_members = flag1[outlier].mean(), flag1[~outlier].mean()
    rv, err = stars.rv.to_numpy(), stars.rv_err.to_numpy()
    pooled = estimation.pooled_stats(cluster, rv, err, 40)
    one_pass = np.abs(rv - pooled["median"][cluster]) <= 2.0 * pooled["std"][cluster]
    print(f"outliers kept: iterated MAD {kept_outliers:.3f}, one pooled-std pass "
          f"{one_pass[outlier].mean():.3f}; members kept {kept_members:.3f} "
          f"(one pass {one_pass[~outlier].mean():.3f})")
    assert kept_outliers <= 0.10 and kept_members >= 0.90
    assert one_pass[outlier].mean() >= 3 * kept_outliers
    # the published window is exactly the FLAG=1 selection
    lo, hi = out["rv_clip_lo"].to_numpy()[cluster], out["rv_clip_hi"].to_numpy()[cluster]
    np.testing.assert_array_equal(flag1, (rv >= lo) & (rv <= hi))


def test_likelihood_fit_recovers_the_injected_dispersion(cfg):
    """60 clusters of 40 stars, intrinsic 2 km/s, errors 0.5-4 km/s: the fitted sigma
    averages to 2 within 5% and no more than 2 of 60 true Gaussians are rejected."""
    stars, cluster, _ = _rv_only_clusters(60, 40, seed=31, sigma_int=2.0)
    out, _ = estimate(stars, cluster, 60, cfg.montecarlo, cfg.params_qc)
    ok = out["rv_flag"].to_numpy() == RV_FLAG_OK
    print(f"fitted sigma mean {out.rv_fit_sigma.mean():.3f}, median "
          f"{out.rv_fit_sigma.median():.3f}; accepted {ok.sum()}/60")
    assert ok.sum() >= 58
    assert out["rv_fit_sigma"].mean() == pytest.approx(2.0, rel=0.05)


def test_a_double_peaked_cluster_is_not_called_a_good_gaussian_fit(cfg):
    """Two equal groups 12 km/s apart with 0.5 km/s errors and no outliers: the fit converges
    but a single Gaussian is rejected (rv_flag 4), unlike the old histogram fit."""
    rng = np.random.default_rng(32)
    rv = np.r_[rng.normal(-6, 0.7, 30), rng.normal(6, 0.7, 30)]
    stars = pd.DataFrame({"rv": rv, "rv_err": 0.5, "rv_var_flag": np.int16(0),
                          "teff": 5800.0, "logg": 4.2})
    for par in ABUNDANCES:
        stars[par], stars[par + "_err"] = 0.0, 0.05
    out, flags = estimate(stars, np.zeros(60, np.int64), 1, cfg.montecarlo, cfg.params_qc)
    assert (flags["flag"] >= 1).all()
    assert out["rv_flag"][0] == estimation.RV_FLAG_REJECTED


def _scipy_rv_fit(x: np.ndarray, s: np.ndarray, lo: float, hi: float) -> tuple[int, float, float]:
    """The RV fit of one cluster done the plain way, as the reference for the lockstep fit:
    ``scipy.optimize.minimize`` (Nelder-Mead) on the truncated-Gaussian likelihood, then
    ``scipy.stats.kstest`` of the probability integral transform."""
    def nll(params: np.ndarray) -> float:
        sigma = np.exp(params[1])
        tau = np.sqrt(sigma ** 2 + s ** 2)
        inside = ndtr((hi - params[0]) / tau) - ndtr((lo - params[0]) / tau)
        z = (x - params[0]) / tau
        return float(np.sum(0.5 * z * z + np.log(tau) + np.log(np.fmax(inside, 1e-300))))

    excess = np.var(x) - np.mean(s ** 2)
    start = np.array([np.median(x), 0.5 * np.log(max(excess, 0.01 * np.mean(s ** 2)))])
    result = optimize.minimize(nll, start, method="Nelder-Mead",
                               options={"xatol": 1e-6, "fatol": 1e-8, "maxiter": 4000})
    if not (result.success and np.all(np.isfinite(result.x)) and lo <= result.x[0] <= hi):
        return estimation.RV_FLAG_FAILED, np.nan, np.nan
    mu, sigma = float(result.x[0]), float(np.exp(result.x[1]))
    tau = np.sqrt(sigma ** 2 + s ** 2)
    inside = ndtr((hi - mu) / tau) - ndtr((lo - mu) / tau)
    pit = np.clip((ndtr((x - mu) / tau) - ndtr((lo - mu) / tau)) / np.fmax(inside, 1e-300),
                  0.0, 1.0)
    good = stats.kstest(pit, "uniform").pvalue >= estimation.FIT_REJECT_P
    return (RV_FLAG_OK if good else estimation.RV_FLAG_REJECTED), mu, sigma


def _fit_clusters(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Clusters of 2-300 stars (many of equal size, some above numpy's 128-element summation
    block), Gaussian, double-peaked or with outliers: their FLAG=1 stars and windows."""
    rng = np.random.default_rng(seed)
    sizes = np.r_[rng.integers(2, 12, 40), np.full(15, 25), rng.integers(129, 300, 5)]
    group = np.repeat(np.arange(len(sizes)), sizes)
    kind = rng.integers(0, 3, len(sizes))[group]
    peaks = kind == 1                                   # two groups 12 km/s apart
    err = np.where(peaks, 0.5, rng.uniform(0.3, 4.0, len(group)))
    rv = (rng.normal(0, 30, len(sizes))[group] + rng.normal(0, np.where(peaks, 0.7, 2.0))
          + rng.normal(0, err) + np.where(peaks, rng.choice([-6.0, 6.0], len(group)), 0)
          + np.where((kind == 2) & (rng.random(len(group)) < 0.15),
                     rng.uniform(-40, 40, len(group)), 0))
    flag1, lo, hi = estimation.rv_members(group, rv, err, np.ones(len(group), bool),
                                          len(sizes), 2.0)
    # the clip would cut a double peak down to one: fit those in a window around all stars
    double = np.bincount(group, peaks, len(sizes)) > 0
    flag1 |= double[group]
    lo = np.where(double, np.minimum.reduceat(rv, np.r_[0, np.cumsum(sizes)[:-1]]) - 1, lo)
    hi = np.where(double, np.maximum.reduceat(rv, np.r_[0, np.cumsum(sizes)[:-1]]) + 1, hi)
    return group[flag1], rv[flag1], err[flag1], lo, hi


def test_lockstep_rv_fit_is_scipy_minimize_bit_for_bit():
    """The fit of all clusters at once gives the same bits of mu and sigma, and the same
    rv_flag, as one scipy.optimize.minimize and kstest per cluster."""
    group, rv, err, lo, hi = _fit_clusters(seed=40)
    flag, mu, sigma = estimation.fit_rv_likelihood(group, rv, err, lo, hi)
    expected = np.array([_scipy_rv_fit(rv[group == c], err[group == c], lo[c], hi[c])
                         for c in range(len(lo))])
    print(f"rv_flag counts {np.unique(flag, return_counts=True)}")
    np.testing.assert_array_equal(flag, expected[:, 0].astype(np.int16))
    assert mu.tobytes() == expected[:, 1].tobytes()
    assert sigma.tobytes() == expected[:, 2].tobytes()
    assert (flag == estimation.RV_FLAG_REJECTED).any() and (flag == RV_FLAG_OK).any()


def test_a_fit_centred_outside_its_window_is_no_fit():
    """Five stars crowded towards the low edge of their 6 km/s window (a full-preset
    simulator cluster): the truncated likelihood keeps rising as mu runs off to about
    -1800 km/s with sigma ~240 km/s, the far tail of a wide Gaussian.  That is no cluster
    RV: rv_flag 1 and no mu, sigma; the median RV of the stars is still published."""
    rv = np.array([-47.828, -49.513, -51.436, -45.742, -48.644])
    err = np.array([0.59, 0.982, 1.45, 1.281, 1.098])
    lo, hi = np.array([-51.458435]), np.array([-45.586170])
    nll = estimation._FitStars(rv, err, np.zeros(5, dtype=np.int64), lo, hi).nll
    far, near = np.array([[-1793.0, np.log(241.0)]]), np.array([[-48.5, np.log(1.0)]])
    assert nll(far)[0] < nll(near)[0]          # the runaway really is the better "fit"
    flag, mu, sigma = estimation.fit_rv_likelihood(np.zeros(5, dtype=np.int64), rv, err, lo, hi)
    assert flag[0] == estimation.RV_FLAG_FAILED and np.isnan(mu[0]) and np.isnan(sigma[0])


def test_group_median_is_pandas_groupby_median():
    """Odd and even group sizes, NaN values ignored, a group of NaN only and empty groups."""
    rng = np.random.default_rng(41)
    group = rng.integers(0, 60, 2000)
    values = np.abs(rng.normal(0, 3, 2000)).round(2)       # ties too
    values[rng.random(2000) < 0.05] = np.nan
    values[group == 7] = np.nan
    expected = pd.Series(values).groupby(group).median()
    got = estimation._group_median(group, values, 64)
    assert got[expected.index].tobytes() == expected.to_numpy().tobytes()
    assert np.isnan(got[[7, 60, 61, 62, 63]]).all()


def test_clip_recomputing_only_changed_clusters_matches_recomputing_all():
    """The iterated clip gives the same FLAG=1 stars and the same window bits as repeating
    every cluster's centre and width each pass until no cluster changes."""
    stars, cluster, _ = _rv_only_clusters(60, 30, seed=42, sigma_int=2.0, outlier_fraction=0.2)
    rv, err = stars.rv.to_numpy(), stars.rv_err.to_numpy()
    candidate = np.ones(len(rv), bool)
    kept = np.ones(len(rv), bool)
    for passes in range(1, estimation.CLIP_MAX_ITER + 1):
        centre = mixture_median(cluster[kept], rv[kept], err[kept], 60)
        dev = pd.Series(np.abs(rv - centre[cluster])).groupby(cluster).median().to_numpy()
        lo, hi = centre - 2.0 * 1.4826 * dev, centre + 2.0 * 1.4826 * dev
        new = (rv >= lo[cluster]) & (rv <= hi[cluster])
        if np.array_equal(new, kept):
            break
        kept = new
    flag1, got_lo, got_hi = estimation.rv_members(cluster, rv, err, candidate, 60, 2.0)
    print(f"{passes} passes")
    assert passes >= 3
    np.testing.assert_array_equal(flag1, kept)
    assert got_lo.tobytes() == lo.tobytes() and got_hi.tobytes() == hi.tobytes()


def test_likelihood_of_all_clusters_at_once_is_each_clusters_own():
    """The likelihood summed for all clusters in one call is, bit for bit, the value of each
    cluster's own numpy expression (sigma^2 a float's ``**``, np.sum over its stars) at
    many (mu, log sigma) points, so the lockstep optimiser takes scipy's steps."""
    group, rv, err, lo, hi = _fit_clusters(seed=43)
    stars, by_size, members = estimation._fit_layout(group, rv, err, lo, hi)
    rng = np.random.default_rng(44)
    # half the points at a sigma whose square libm's pow (a float's **) and x * x round
    # differently, large enough against the errors to show in tau
    log_sigma = rng.uniform(2.5, 5.0, 20000)
    odd = np.array([float(np.exp(u)) ** 2 != np.exp(u) * np.exp(u) for u in log_sigma])
    assert odd.sum() >= 5
    for k in range(60):
        picks = log_sigma[odd][rng.integers(0, odd.sum(), len(lo))] if k % 2 else \
            rng.uniform(-3, 5, len(lo))
        params = np.c_[rng.normal(0, 30, len(lo)), picks]
        got = stars.nll(params)
        for i, c in enumerate(by_size):
            x, s, mu = rv[members[c]], err[members[c]], params[i, 0]
            sigma = np.exp(params[i, 1])
            tau = np.sqrt(sigma ** 2 + s ** 2)
            inside = ndtr((hi[c] - mu) / tau) - ndtr((lo[c] - mu) / tau)
            z = (x - mu) / tau
            want = np.sum(0.5 * z * z + np.log(tau) + np.log(np.fmax(inside, 1e-300)))
            assert got[i].tobytes() == want.tobytes(), (c, params[i])
