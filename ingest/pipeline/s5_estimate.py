"""Monte Carlo cluster estimates (Fu et al. 2022, sections 2.1-2.2; SPEC section 3 steps 5-7).

Fu et al. draw every member's value 5000 times from N(value, error), pool the
draws of a cluster and take their median, mean and standard deviation.  The
pooled draws are samples of an equal-weight Gaussian mixture, so the fast path
here (``estimate``) evaluates the statistics of that mixture exactly — the
limit of infinitely many draws — instead of drawing: the mean and variance in
closed form, the median as the root of the mixture CDF (safeguarded Newton,
all clusters at once).  This takes seconds for ~7000 clusters and a million
stars and is free of sampling noise.  tests/test_estimation.py checks it
against Fu et al.'s recipe done literally (5000 draws per star, numpy
statistics of the pooled draws).  The uncertainty of a cluster value is the
sandwich standard error of the mixture median (``standard_error``), not
std/sqrt(n) of the pooled draws, which counts measurement errors twice.

FLAG=1 (RV members): stars whose RV lies within ``clip_sigma`` robust standard
deviations (1.4826 x MAD of the candidates' RVs) of the pooled median of the kept
stars, iterated until the member set no longer changes (``rv_members``).  With
``montecarlo.exclude_rv_variable`` RV-variable stars (binary candidates, see
``ingest.pipeline.s4_combine``) are kept out of the pooled sample beforehand, so they can
neither pull the cluster RV nor inflate its dispersion.
FLAG=12: FLAG=1 stars whose Teff/log g pass the parameter QC
(``ingest.pipeline.s3_quality.param_qc``; with ``params_qc.enabled = false`` all pass).
The abundances use FLAG=12 stars.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.stats import kstest
from scipy.special import ndtr

from ingest.core.vocabulary import ABUNDANCES, FLAG_NOT_USED, FLAG_RELIABLE, FLAG_RV_MEMBER
from ingest.core.vocabulary import (RV_FLAG_FAILED, RV_FLAG_FEW, RV_FLAG_NONE, RV_FLAG_OK,
                                    RV_FLAG_REJECTED, RV_FLAG_SINGLE)
from ingest.core.config import MonteCarlo, ParamsQC
from ingest.pipeline.s4_combine import group_sum

MEDIAN_EPS = 1e-9      # the median is the middle of CDF in [1/2 - eps, 1/2 + eps]
MAD_TO_SIGMA = 1.4826  # sigma of a Gaussian = 1.4826 x its median absolute deviation
CLIP_MAX_ITER = 50     # the iterated clip stops here if the member set still changes
FIT_REJECT_P = 1e-3    # KS p-value below which the fitted Gaussian is rejected (rv_flag 4)

ParamQC = Callable[[np.ndarray, np.ndarray, ParamsQC, np.ndarray | None], np.ndarray]


def usable(value: np.ndarray, error: np.ndarray) -> np.ndarray:
    """Values that can be sampled: finite value and finite positive error."""
    return np.isfinite(value) & np.isfinite(error) & (error > 0)


def mixture_moments(group: np.ndarray, x: np.ndarray, s: np.ndarray,
                    n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, mean and standard deviation of the pooled draws of each group.

    For an equal-weight mixture of N(x_i, s_i): mean = <x>, var = <s^2> + <(x-<x>)^2>.
    """
    n = np.bincount(group, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = group_sum(group, x, n_groups) / n
        spread = group_sum(group, (x - mean[group]) ** 2 + s ** 2, n_groups) / n
    return n, mean, np.sqrt(spread)


def mixture_quantile(group: np.ndarray, x: np.ndarray, s: np.ndarray, n_groups: int,
                     q: float, start: np.ndarray | None = None, tol: float = 1e-7,
                     max_iter: int = 100) -> np.ndarray:
    """Quantile ``q`` of each group's Gaussian mixture: root of CDF(t) = q for all groups at once.

    Newton steps on the mixture CDF, falling back to bisection whenever a step
    leaves the bracket; a group stops (keeps its value) at its first step below
    ``tol``, so its result depends on its own values only, not on which other
    groups share the call (the Dask engine computes clusters in partitions).
    ``start`` (default: the group means) is the first guess.
    """
    n = np.bincount(group, minlength=n_groups)
    active = n > 0
    lo = np.full(n_groups, np.inf)
    hi = np.full(n_groups, -np.inf)
    np.minimum.at(lo, group, x - 10 * s)
    np.maximum.at(hi, group, x + 10 * s)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = group_sum(group, x, n_groups) / n if start is None else start.copy()
        for _ in range(max_iter):
            z = (t[group] - x) / s
            cdf = group_sum(group, ndtr(z), n_groups) / n - q
            pdf = group_sum(group, np.exp(-0.5 * z * z) / s, n_groups) / (n * np.sqrt(2 * np.pi))
            hi = np.where(cdf > 0, t, hi)
            lo = np.where(cdf <= 0, t, lo)
            step = t - cdf / pdf
            bisect = ~np.isfinite(step) | (step < lo) | (step > hi)
            new = np.where(bisect, 0.5 * (lo + hi), step)
            done = np.abs(new - t) < tol
            t = np.where(active, new, t)
            active &= ~done
            if not active.any():
                break
    t[n == 0] = np.nan
    return t


def mixture_median(group: np.ndarray, x: np.ndarray, s: np.ndarray,
                   n_groups: int) -> np.ndarray:
    """Median of each group's mixture: the midpoint of the quantiles 1/2 -+ 1e-9.

    Where stars lie far apart compared with their errors the CDF is flat at
    1/2 over a whole interval; like ``np.median`` of draws, take its middle.
    """
    low = mixture_quantile(group, x, s, n_groups, 0.5 - MEDIAN_EPS)
    high = mixture_quantile(group, x, s, n_groups, 0.5 + MEDIAN_EPS, start=low)
    return 0.5 * (low + high)


def standard_error(group: np.ndarray, x: np.ndarray, s: np.ndarray, n_groups: int,
                   median: np.ndarray) -> np.ndarray:
    """Uncertainty of the mixture median: the M-estimator sandwich formula.

    The median m solves sum_i psi_i(m) = 0 with psi_i = Phi((m - x_i)/s_i) - 1/2,
    so Var(m) = n/(n-1) * sum psi_i^2 / (sum psi_i')^2 with psi_i' = phi(z_i)/s_i.
    Empirical in the residuals, it holds the intrinsic dispersion and the
    measurement errors once each, and lets precise stars near the centre count
    more — as they do in the median.  (The std/sqrt(n) of the pooled draws
    counts measurement errors twice and is dominated by imprecise stars; on the
    simulator it overestimates the error by ~1.5-2.)  A single star's error is
    its own s.  Where the mixture density at the median (nearly) vanishes (a
    few precise stars far apart) the sandwich is undefined or exceeds the
    spread of the values themselves; then the standard error of the mean,
    sqrt(max(sample variance, <s^2>) / n), is used instead.  No value is
    below 1/sqrt(sum 1/s^2), the error with no dispersion at all (identical
    values, e.g. one blended spectrum matched to two members, give 0 otherwise).
    """
    n = np.bincount(group, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (median[group] - x) / s
        psi = ndtr(z) - 0.5
        slope = group_sum(group, np.exp(-0.5 * z * z) / s, n_groups) / np.sqrt(2 * np.pi)
        sandwich = np.sqrt(group_sum(group, psi ** 2, n_groups) * n / (n - 1)) / slope
        mean = group_sum(group, x, n_groups) / n
        spread = group_sum(group, (x - mean[group]) ** 2, n_groups) / (n - 1)
        width = np.sqrt(np.fmax(spread, group_sum(group, s ** 2, n_groups) / n))
        single = np.sqrt(group_sum(group, s ** 2, n_groups))
        best = 1.0 / np.sqrt(group_sum(group, s ** -2.0, n_groups))
        degenerate = ~(sandwich <= width)          # also NaN / inf
        sandwich = np.fmax(np.where(degenerate, width / np.sqrt(n), sandwich), best)
    return np.where(n > 1, sandwich, np.where(n == 1, single, np.nan))


def pooled_stats(group: np.ndarray, x: np.ndarray, s: np.ndarray,
                 n_groups: int) -> dict[str, np.ndarray]:
    """Median, mean and std of the pooled Monte Carlo samples per group, its error and n."""
    n, mean, std = mixture_moments(group, x, s, n_groups)
    median = mixture_median(group, x, s, n_groups)
    err = standard_error(group, x, s, n_groups, median)
    return {"median": median, "mean": mean, "std": std, "err": err, "n": n}


def _truncated_terms(mu: float, sigma: float, x: np.ndarray, s: np.ndarray, lo: float,
                     hi: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-star z, total width tau and the probability mass inside the clip window."""
    tau = np.sqrt(sigma ** 2 + s ** 2)
    inside = ndtr((hi - mu) / tau) - ndtr((lo - mu) / tau)
    return (x - mu) / tau, tau, inside


def fit_rv_likelihood(x: np.ndarray, s: np.ndarray, lo: float,
                      hi: float) -> tuple[int, float, float]:
    """Maximum-likelihood centre and intrinsic dispersion of the FLAG=1 RVs.

    Each star is N(mu, sigma^2 + s_i^2) truncated to the clip window [lo, hi] that
    selected it, so the clip does not bias sigma low.  Returns (rv_flag, mu, sigma):
    0 converged and a Gaussian is acceptable; 4 converged but the stars' probability
    integral transform fails a KS test (p < FIT_REJECT_P): not one Gaussian; 1 the
    optimiser failed (mu, sigma NaN).
    """
    def nll(params: np.ndarray) -> float:
        z, tau, inside = _truncated_terms(params[0], np.exp(params[1]), x, s, lo, hi)
        return float(np.sum(0.5 * z * z + np.log(tau) + np.log(np.fmax(inside, 1e-300))))

    excess = np.var(x) - np.mean(s ** 2)
    start = np.array([np.median(x), 0.5 * np.log(max(excess, 0.01 * np.mean(s ** 2)))])
    result = optimize.minimize(nll, start, method="Nelder-Mead",
                               options={"xatol": 1e-6, "fatol": 1e-8, "maxiter": 4000})
    if not (result.success and np.all(np.isfinite(result.x))):
        return RV_FLAG_FAILED, np.nan, np.nan
    mu, sigma = float(result.x[0]), float(np.exp(result.x[1]))
    _, tau, inside = _truncated_terms(mu, sigma, x, s, lo, hi)
    # A star whose window holds no probability under the fit (inside underflows to 0)
    # sits at the window's edge of the transform rather than making it NaN.
    pit = np.clip((ndtr((x - mu) / tau) - ndtr((lo - mu) / tau)) / np.fmax(inside, 1e-300),
                  0.0, 1.0)
    pvalue = kstest(pit, "uniform").pvalue
    return (RV_FLAG_OK if pvalue >= FIT_REJECT_P else RV_FLAG_REJECTED), mu, sigma


def fit_flags(n_fit: np.ndarray, min_fit_stars: int) -> np.ndarray:
    """rv_flag before fitting: 3 single star, 2 too few stars, -1 none, 0 to be fitted."""
    flag = np.full(len(n_fit), RV_FLAG_OK, dtype=np.int16)
    flag[n_fit < min_fit_stars] = RV_FLAG_FEW
    flag[n_fit == 1] = RV_FLAG_SINGLE
    flag[n_fit == 0] = RV_FLAG_NONE
    return flag


def gaussian_fits(group: np.ndarray, x: np.ndarray, s: np.ndarray, stats: dict,
                  min_fit_stars: int, lo: np.ndarray,
                  hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """rv_flag, fitted centre and intrinsic dispersion per cluster from the FLAG=1 star RVs
    with their own errors (:func:`fit_rv_likelihood`), within each cluster's clip window."""
    n_groups = len(stats["n"])
    flag = fit_flags(stats["n"], min_fit_stars)
    mu = np.full(n_groups, np.nan)
    sigma = np.full(n_groups, np.nan)
    order = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[order], np.arange(n_groups + 1))
    for c in np.flatnonzero(flag == RV_FLAG_OK):
        members = order[starts[c]:starts[c + 1]]
        flag[c], mu[c], sigma[c] = fit_rv_likelihood(x[members], s[members], lo[c], hi[c])
    return flag, mu, sigma


def _group_median(group: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    medians = pd.Series(values).groupby(group).median()
    out = np.full(n_groups, np.nan)
    out[medians.index.to_numpy()] = medians.to_numpy()
    return out


def rv_members(group: np.ndarray, rv: np.ndarray, rv_err: np.ndarray, candidate: np.ndarray,
               n_groups: int, clip_sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FLAG=1 mask and each cluster's clip window [lo, hi], iterated to convergence.

    Each pass takes the centre m as the pooled median of the stars kept so far and the
    width as 1.4826 x the median absolute deviation of all candidates' RVs about m
    (robust up to 50% outliers, and not shrunk by the clip itself); FLAG=1 is
    m - clip_sigma w <= rv <= m + clip_sigma w.  Stops when no cluster's member set
    changes (at most CLIP_MAX_ITER passes).  One pass with the pooled std (Fu et al.)
    let about a third of 10% outliers through (docs/methods.md).
    """
    idx = np.flatnonzero(candidate)
    g, x, s = group[idx], rv[idx], rv_err[idx]
    kept = np.ones(len(idx), dtype=bool)
    for _ in range(CLIP_MAX_ITER):
        centre = mixture_median(g[kept], x[kept], s[kept], n_groups)
        width = MAD_TO_SIGMA * _group_median(g, np.abs(x - centre[g]), n_groups)
        lo, hi = centre - clip_sigma * width, centre + clip_sigma * width
        new = (x >= lo[g]) & (x <= hi[g])
        if np.array_equal(new, kept):
            break
        kept = new
    flag1 = np.zeros(len(rv), dtype=bool)
    flag1[idx] = kept
    return flag1, lo, hi


def quality_labels(stars: pd.DataFrame, settings: ParamsQC,
                   param_qc: ParamQC | None) -> np.ndarray:
    """Parameter-QC label per star ('ok', 'hot', 'cool', 'cool_dwarf', 'no_teff')."""
    if param_qc is None:
        from ingest.pipeline.s3_quality import param_qc
    abs_gmag = stars["abs_gmag"].to_numpy(np.float64) if "abs_gmag" in stars else None
    return np.asarray(param_qc(stars["teff"].to_numpy(np.float64),
                               stars["logg"].to_numpy(np.float64), settings,
                               abs_gmag))


def star_flags(flag1: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Fu et al. FLAG per star: 0, 1 (RV member) or 12 (RV member whose parameters passed QC)."""
    flag = np.where(flag1, FLAG_RV_MEMBER, FLAG_NOT_USED).astype(np.int16)
    flag[flag1 & (labels == "ok")] = FLAG_RELIABLE
    return flag


def estimate(stars: pd.DataFrame, cluster: np.ndarray, n_clusters: int, mc: MonteCarlo,
             params_qc: ParamsQC, param_qc: ParamQC | None = None
             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cluster RV and abundance estimates plus per-star FLAG and param_qc.

    ``stars`` is the per-star table of ``ingest.pipeline.s4_combine.combine`` (with teff,
    logg); ``cluster`` labels each star with its cluster in ``0..n_clusters-1``.
    Returns (cluster table with one row per label, star table with ``flag``
    and ``param_qc``).
    """
    cluster = np.asarray(cluster, dtype=np.int64)
    rv = stars["rv"].to_numpy(np.float64)
    rv_err = stars["rv_err"].to_numpy(np.float64)
    has_rv = usable(rv, rv_err)
    candidate = has_rv
    if mc.exclude_rv_variable:
        candidate = has_rv & (stars["rv_var_flag"].to_numpy() == 0)
    flag1, clip_lo, clip_hi = rv_members(cluster, rv, rv_err, candidate, n_clusters,
                                         mc.clip_sigma)
    labels = quality_labels(stars, params_qc, param_qc)
    flag = star_flags(flag1, labels)

    out = {"n_all": np.bincount(cluster[has_rv], minlength=n_clusters)}
    idx = np.flatnonzero(flag1)
    rv_stats = pooled_stats(cluster[idx], rv[idx], rv_err[idx], n_clusters)
    fit_flag, fit_mu, fit_sigma = gaussian_fits(cluster[idx], rv[idx], rv_err[idx], rv_stats,
                                                mc.min_fit_stars, clip_lo, clip_hi)
    out.update(rv=rv_stats["median"], rv_mean=rv_stats["mean"], rv_std=rv_stats["std"],
               rv_err=rv_stats["err"], n_flag1=rv_stats["n"], rv_flag=fit_flag,
               rv_fit_mu=fit_mu, rv_fit_sigma=fit_sigma, rv_clip_lo=clip_lo,
               rv_clip_hi=clip_hi)
    flag12 = flag == FLAG_RELIABLE
    for par in ABUNDANCES:
        value = stars[par].to_numpy(np.float64)
        error = stars[par + "_err"].to_numpy(np.float64)
        idx = np.flatnonzero(flag12 & usable(value, error))
        st = pooled_stats(cluster[idx], value[idx], error[idx], n_clusters)
        out.update({par: st["median"], par + "_mean": st["mean"], par + "_std": st["std"],
                    par + "_err": st["err"], par + "_num": st["n"]})
    out["n_flag12"] = np.bincount(cluster[flag12], minlength=n_clusters)
    star_table = pd.DataFrame({"flag": flag, "param_qc": labels}, index=stars.index)
    return pd.DataFrame(out), star_table

