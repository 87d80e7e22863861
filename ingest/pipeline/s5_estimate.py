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

The Gaussian fit of the FLAG=1 RVs (``fit_rv_likelihood``: rv_flag, rv_fit_mu,
rv_fit_sigma) runs scipy's Nelder-Mead for all clusters in lockstep: the same
arithmetic, comparisons and stopping as one ``scipy.optimize.minimize`` per
cluster, so the same bits, at the cost of a few array passes per step instead
of thousands of small-array likelihood calls; its KS test (rv_flag 4) is
``scipy.stats.kstest``'s, for all clusters at once.

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
from scipy.stats import kstwo
from scipy.special import ndtr, smirnov

from ingest.core.vocabulary import ABUNDANCES, FLAG_NOT_USED, FLAG_RELIABLE, FLAG_RV_MEMBER
from ingest.core.vocabulary import (RV_FLAG_FAILED, RV_FLAG_FEW, RV_FLAG_NONE, RV_FLAG_OK,
                                    RV_FLAG_REJECTED, RV_FLAG_SINGLE)
from ingest.core.config import MonteCarlo, ParamsQC
from ingest.pipeline.s4_combine import group_sum

MEDIAN_EPS = 1e-9      # the median is the middle of CDF in [1/2 - eps, 1/2 + eps]
MAD_TO_SIGMA = 1.4826  # sigma of a Gaussian = 1.4826 x its median absolute deviation
CLIP_MAX_ITER = 50     # the iterated clip stops here if the member set still changes
FIT_REJECT_P = 1e-3    # KS p-value below which the fitted Gaussian is rejected (rv_flag 4)
# Nelder-Mead as scipy.optimize.minimize runs it (non-adaptive coefficients, initial
# simplex) with the tolerances and iteration limit of the RV fit
NM_RHO, NM_CHI, NM_PSI, NM_SIGMA = 1, 2, 0.5, 0.5
NM_NONZDELT, NM_ZDELT = 0.05, 0.00025
NM_XATOL, NM_FATOL, NM_MAXITER = 1e-6, 1e-8, 4000

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
    ``start`` (default: the group means) is the first guess.  The iterations
    work on the stars of the groups still iterating (:class:`_Working`): most
    groups converge in a few steps, and a group's sums over its own stars, in
    their order, are the same bits in a smaller set.
    """
    n = np.bincount(group, minlength=n_groups)
    lo = np.full(n_groups, np.inf)
    hi = np.full(n_groups, -np.inf)
    np.minimum.at(lo, group, x - 10 * s)
    np.maximum.at(hi, group, x + 10 * s)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = group_sum(group, x, n_groups) / n if start is None else start.copy()
        work = _Working(group, np.flatnonzero(n > 0), x, s)
        active = np.ones(len(work.ids), dtype=bool)
        t_w, lo_w, hi_w, n_w = t[work.ids], lo[work.ids], hi[work.ids], n[work.ids]
        for _ in range(max_iter):
            if not active.any():
                break
            z = (t_w[work.label] - work.x) / work.s
            cdf = group_sum(work.label, ndtr(z), len(work.ids)) / n_w - q
            pdf = (group_sum(work.label, np.exp(-0.5 * z * z) / work.s, len(work.ids))
                   / (n_w * np.sqrt(2 * np.pi)))
            hi_w = np.where(cdf > 0, t_w, hi_w)
            lo_w = np.where(cdf <= 0, t_w, lo_w)
            step = t_w - cdf / pdf
            bisect = ~np.isfinite(step) | (step < lo_w) | (step > hi_w)
            new = np.where(bisect, 0.5 * (lo_w + hi_w), step)
            done = np.abs(new - t_w) < tol
            t_w = np.where(active, new, t_w)
            active &= ~done
            t[work.ids] = t_w
            if work.worth_compacting(active):
                work, (t_w, lo_w, hi_w, n_w) = work.compact(active, t_w, lo_w, hi_w, n_w)
                active = np.ones(len(work.ids), dtype=bool)
    t[n == 0] = np.nan
    return t


class _Working:
    """The stars of the groups an iteration still works on, labelled 0..k-1 in group order.

    ``ids`` are the groups' labels in the caller's numbering; star order within a
    group is kept, so per-group ``np.bincount`` sums are the same bits as over all
    stars."""

    def __init__(self, group: np.ndarray, ids: np.ndarray, *columns: np.ndarray) -> None:
        local = np.full(int(group.max(initial=-1)) + 1, -1, dtype=np.int64)
        local[ids] = np.arange(len(ids))
        label = local[group]
        mine = label >= 0
        self.ids = ids
        self.label = label[mine]
        self.x, self.s = (c[mine] for c in columns)

    def worth_compacting(self, active: np.ndarray) -> bool:
        """Compact when the still-active groups hold under 70% of the working stars."""
        return np.count_nonzero(active[self.label]) < 0.7 * len(self.label)

    def compact(self, active: np.ndarray, *per_group: np.ndarray
                ) -> tuple[_Working, tuple[np.ndarray, ...]]:
        """The working set of the active groups only, and the per-group arrays cut to them."""
        keep = np.flatnonzero(active)
        smaller = _Working(self.label, keep, self.x, self.s)
        smaller.ids = self.ids[keep]
        return smaller, tuple(a[keep] for a in per_group)


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


class _FitStars:
    """The stars of the clusters being fitted, cluster after cluster in each cluster's own
    star order, the clusters sorted by star count: clusters of equal size are adjacent,
    so their likelihood terms sum as the rows of one 2-d block, each row summed by numpy
    exactly as ``np.sum`` sums that cluster's array alone."""

    def __init__(self, x: np.ndarray, s: np.ndarray, label: np.ndarray, lo: np.ndarray,
                 hi: np.ndarray) -> None:
        self.x, self.s, self.s2, self.label, self.lo, self.hi = x, s, s ** 2, label, lo, hi
        n = np.bincount(label, minlength=len(lo))
        edges = np.flatnonzero(np.diff(n)) + 1
        first = np.concatenate(([0], edges))
        last = np.concatenate((edges, [len(n)]))
        star0 = np.concatenate(([0], np.cumsum(n)))
        self.runs = [(int(a), int(b), int(n[a]), int(star0[a]), int(star0[b]))
                     for a, b in zip(first, last) if b > a]
        self.n = n

    def subset(self, keep: np.ndarray) -> _FitStars:
        """The stars of the clusters ``keep`` (ascending positions), relabelled 0..k-1."""
        local = np.full(len(self.lo), -1, dtype=np.int64)
        local[keep] = np.arange(len(keep))
        label = local[self.label]
        mine = label >= 0
        return _FitStars(self.x[mine], self.s[mine], label[mine], self.lo[keep], self.hi[keep])

    def nll(self, params: np.ndarray) -> np.ndarray:
        """Negative log-likelihood per cluster at its (mu, log sigma) row of ``params``.

        Per star 0.5 z^2 + log tau + log P(window), z = (x - mu)/tau, tau^2 = sigma^2 + s^2;
        sigma^2 is taken with libm's pow (``np.float_power``), as a float scalar's ``**``."""
        mu, sigma = params[:, 0], np.exp(params[:, 1])
        at = self.label
        tau = np.sqrt(np.float_power(sigma, 2.0)[at] + self.s2)
        inside = ndtr((self.hi - mu)[at] / tau) - ndtr((self.lo - mu)[at] / tau)
        z = (self.x - mu[at]) / tau
        terms = 0.5 * z * z + np.log(tau) + np.log(np.fmax(inside, 1e-300))
        out = np.empty(len(self.n))
        for a, b, size, s0, s1 in self.runs:
            out[a:b] = np.add.reduce(terms[s0:s1].reshape(b - a, size), axis=1)
        return out


def _initial_simplex(x0: np.ndarray) -> np.ndarray:
    """scipy's Nelder-Mead start, per row of ``x0``: x0 and x0 with one coordinate
    scaled by 1.05 (0.00025 where it is 0)."""
    sim = np.empty((len(x0), 3, 2))
    sim[:, 0] = x0
    for k in range(2):
        y = x0.copy()
        y[:, k] = np.where(y[:, k] != 0, (1 + NM_NONZDELT) * y[:, k], NM_ZDELT)
        sim[:, k + 1] = y
    return sim


def _nll_where(stars: _FitStars, params: np.ndarray, needed: np.ndarray) -> np.ndarray:
    """``stars.nll(params)`` where ``needed`` (NaN elsewhere), on the needed clusters'
    stars only when they are a minority."""
    if np.count_nonzero(needed) > 0.5 * len(needed):
        return stars.nll(params)
    out = np.full(len(needed), np.nan)
    rows = np.flatnonzero(needed)
    if len(rows):
        out[rows] = stars.subset(rows).nll(params[rows])
    return out


def _sort_simplex(sim: np.ndarray, fsim: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each simplex ordered by its function values, best first (scipy's argsort)."""
    ind = np.argsort(fsim, axis=1)
    rows = np.arange(len(fsim))[:, None]
    return sim[rows, ind], fsim[rows, ind]


def _nelder_mead_step(stars: _FitStars, sim: np.ndarray,
                      fsim: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One iteration of scipy's Nelder-Mead (reflect, expand, contract, shrink) in every
    row: the same arithmetic and comparisons as ``scipy.optimize.minimize``."""
    xbar = np.add.reduce(sim[:, :-1], 1) / 2
    worst = sim[:, -1]
    xr = (1 + NM_RHO) * xbar - NM_RHO * worst
    fxr = stars.nll(xr)
    expand = fxr < fsim[:, 0]
    reflect = ~expand & (fxr < fsim[:, -2])
    outside = ~expand & ~reflect & (fxr < fsim[:, -1])
    inside = ~expand & ~reflect & ~outside
    second = np.where(expand[:, None], (1 + NM_RHO * NM_CHI) * xbar - NM_RHO * NM_CHI * worst,
                      np.where(outside[:, None],
                               (1 + NM_PSI * NM_RHO) * xbar - NM_PSI * NM_RHO * worst,
                               (1 - NM_PSI) * xbar + NM_PSI * worst))
    f2 = _nll_where(stars, second, ~reflect)
    take2 = (expand & (f2 < fxr)) | (outside & (f2 <= fxr)) | (inside & (f2 < fsim[:, -1]))
    shrink = (outside & ~(f2 <= fxr)) | (inside & ~(f2 < fsim[:, -1]))
    sim, fsim = sim.copy(), fsim.copy()
    replace = ~shrink
    sim[replace, -1] = np.where(take2[:, None], second, xr)[replace]
    fsim[replace, -1] = np.where(take2, f2, fxr)[replace]
    if shrink.any():
        for j in (1, 2):
            moved = sim[:, 0] + NM_SIGMA * (sim[:, j] - sim[:, 0])
            sim[shrink, j] = moved[shrink]
            fsim[shrink, j] = _nll_where(stars, moved, shrink)[shrink]
    return _sort_simplex(sim, fsim)


def _nelder_mead(stars: _FitStars, x0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimise each cluster's ``nll`` from its row of ``x0``, all clusters in lockstep.

    ``scipy.optimize.minimize(method="Nelder-Mead")`` with xatol NM_XATOL, fatol
    NM_FATOL and maxiter NM_MAXITER, step for step: a cluster stops at the iteration
    at which scipy's loop would stop for it and keeps its best vertex.  Returns the
    minima and whether each converged (False: maxiter reached)."""
    with np.errstate(over="ignore"):       # exp of a far-out trial log sigma: nll inf
        k = len(x0)
        best = np.full((k, 2), np.nan)
        converged = np.zeros(k, dtype=bool)
        ids = np.arange(k)
        sim = _initial_simplex(x0)
        fsim = np.stack([stars.nll(sim[:, j]) for j in range(3)], axis=1)
        sim, fsim = _sort_simplex(*_sort_simplex(sim, fsim))
        active = np.ones(k, dtype=bool)
        iterations = 1
        while iterations < NM_MAXITER:
            small = ((np.maximum.reduce(np.abs(sim[:, 1:] - sim[:, :1]), axis=(1, 2)) <= NM_XATOL)
                     & (np.maximum.reduce(np.abs(fsim[:, :1] - fsim[:, 1:]), axis=1) <= NM_FATOL))
            stop = active & small
            best[ids[stop]] = sim[stop, 0]
            converged[ids[stop]] = True
            active &= ~small
            if not active.any():
                return best, converged
            if np.count_nonzero(active[stars.label]) < 0.9 * len(stars.label):
                keep = np.flatnonzero(active)
                stars, sim, fsim, ids = stars.subset(keep), sim[keep], fsim[keep], ids[keep]
                active = np.ones(len(keep), dtype=bool)
            sim, fsim = _nelder_mead_step(stars, sim, fsim)
            iterations += 1
        best[ids[active]] = sim[active, 0]
        return best, converged


def fit_rv_likelihood(group: np.ndarray, x: np.ndarray, s: np.ndarray, lo: np.ndarray,
                      hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximum-likelihood centre and intrinsic dispersion of each group's FLAG=1 RVs.

    Each star is N(mu, sigma^2 + s_i^2) truncated to its group's clip window [lo, hi]
    that selected it, so the clip does not bias sigma low.  Nelder-Mead in (mu, log
    sigma) from (median, log of the excess variance), all groups at once
    (:func:`_nelder_mead`; the same minima as one ``scipy.optimize.minimize`` per group).
    Returns (rv_flag, mu, sigma) per group: 0 converged and a Gaussian is acceptable;
    4 converged but the stars' probability integral transform fails a KS test
    (p < FIT_REJECT_P): not one Gaussian; 1 no fit (mu, sigma NaN): the optimiser
    failed, or the maximum lies outside the window.  A few stars crowded towards one
    edge of their window look like the far tail of a wide Gaussian, whose likelihood
    keeps rising as mu runs away (on the full simulator preset, 5 stars in a 6 km/s
    window gave mu = -1793 km/s, sigma = 241 km/s): such a centre is no cluster RV.
    """
    n_groups = len(lo)
    stars, by_size, members = _fit_layout(group, x, s, lo, hi)
    x0 = np.array([_fit_start(x[m], s[m]) for m in members]).reshape(n_groups, 2)
    best = np.full((n_groups, 2), np.nan)
    converged = np.zeros(n_groups, dtype=bool)
    best[by_size], converged[by_size] = _nelder_mead(stars, x0[by_size])
    ok = converged & np.isfinite(best).all(axis=1) & (best[:, 0] >= lo) & (best[:, 0] <= hi)
    flag = np.where(ok, RV_FLAG_OK, RV_FLAG_FAILED).astype(np.int16)
    mu = np.where(ok, best[:, 0], np.nan)
    with np.errstate(over="ignore"):
        sigma = np.where(ok, np.exp(best[:, 1]), np.nan)
    flag[by_size[_ks_rejected(stars, mu[by_size], sigma[by_size])]] = RV_FLAG_REJECTED
    return flag, mu, sigma


def _fit_layout(group: np.ndarray, x: np.ndarray, s: np.ndarray, lo: np.ndarray,
                hi: np.ndarray) -> tuple[_FitStars, np.ndarray, list[np.ndarray]]:
    """The groups' stars as :class:`_FitStars`, the group at each of its positions, and
    each group's star indices (in star order)."""
    n_groups = len(lo)
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(n_groups + 1))
    members = [order[bounds[c]:bounds[c + 1]] for c in range(n_groups)]
    by_size = np.argsort(np.diff(bounds), kind="stable")
    stars = _FitStars(np.concatenate([x[members[c]] for c in by_size] or [np.empty(0)]),
                      np.concatenate([s[members[c]] for c in by_size] or [np.empty(0)]),
                      np.repeat(np.arange(n_groups), np.diff(bounds)[by_size]),
                      lo[by_size], hi[by_size])
    return stars, by_size, members


def _fit_start(x: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """(median, log sigma) with sigma^2 the excess of the variance over the mean error^2
    (at least 1% of it)."""
    excess = np.var(x) - np.mean(s ** 2)
    return np.median(x), 0.5 * np.log(max(excess, 0.01 * np.mean(s ** 2)))


def _ks_rejected(stars: _FitStars, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Clusters whose stars' probability integral transform under the fitted truncated
    Gaussian fails a KS test against uniform (p < FIT_REJECT_P; False where mu is NaN).

    The statistic D as ``scipy.stats.kstest(pit, "uniform")`` computes it, cluster by
    cluster, and its p-value ``scipy.stats.kstwo.sf(D, n)`` (kstest's exact method)
    where the one-sided bound does not already settle the test."""
    at = stars.label
    with np.errstate(invalid="ignore", over="ignore"):
        tau = np.sqrt(np.float_power(sigma, 2.0)[at] + stars.s2)
        below = ndtr((stars.lo - mu)[at] / tau)
        inside = ndtr((stars.hi - mu)[at] / tau) - below
        # A star whose window holds no probability under the fit (inside underflows to 0)
        # sits at the window's edge of the transform rather than making it NaN.
        pit = np.clip((ndtr((stars.x - mu[at]) / tau) - below) / np.fmax(inside, 1e-300),
                      0.0, 1.0)
    pit = pit[np.lexsort((pit, at))]
    first = np.concatenate(([0], np.cumsum(stars.n)[:-1]))
    rank = np.arange(len(at)) - first[at]
    size = stars.n[at]
    rejected = np.zeros(len(mu), dtype=bool)
    fitted = np.flatnonzero(np.isfinite(mu))
    if len(fitted):
        d_plus = np.maximum.reduceat((rank + 1.0) / size - pit, first)
        d_minus = np.maximum.reduceat(pit - rank / size, first)
        d = np.where(d_plus > d_minus, d_plus, d_minus)[fitted]
        n = stars.n[fitted]
        # p >= P(one-sided D+ >= d) = smirnov(n, d), which is faster to evaluate: where
        # that is twice the threshold the test passes whatever kstwo.sf would add
        doubt = np.flatnonzero(~(smirnov(n, d) >= 2 * FIT_REJECT_P))
        pvalue = np.clip(kstwo.sf(d[doubt], n[doubt]), 0.0, 1.0)
        rejected[fitted[doubt]] = ~(pvalue >= FIT_REJECT_P)
    return rejected


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
    fit = np.flatnonzero(flag == RV_FLAG_OK)
    local = np.full(n_groups, -1, dtype=np.int64)
    local[fit] = np.arange(len(fit))
    mine = local[group] >= 0
    flag[fit], mu[fit], sigma[fit] = fit_rv_likelihood(local[group[mine]], x[mine], s[mine],
                                                       lo[fit], hi[fit])
    return flag, mu, sigma


def _group_median(group: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Median of each group's values (NaN ignored, NaN for a group without any): the
    middle value, or the mean (a + b) / 2 of the two middle ones, as pandas' groupby median."""
    finite = ~np.isnan(values)
    group, values = group[finite], values[finite]
    order = np.lexsort((values, group))
    ordered = values[order]
    n = np.bincount(group, minlength=n_groups)
    first = np.concatenate(([0], np.cumsum(n)[:-1]))
    out = np.full(n_groups, np.nan)
    has = n > 0
    low = ordered[(first + (n - 1) // 2)[has]]
    high = ordered[(first + n // 2)[has]]
    out[has] = (low + high) / 2
    return out


def rv_members(group: np.ndarray, rv: np.ndarray, rv_err: np.ndarray, candidate: np.ndarray,
               n_groups: int, clip_sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FLAG=1 mask and each cluster's clip window [lo, hi], iterated to convergence.

    Each pass takes the centre m as the pooled median of the stars kept so far and the
    width as 1.4826 x the median absolute deviation of all candidates' RVs about m
    (robust up to 50% outliers, and not shrunk by the clip itself); FLAG=1 is
    m - clip_sigma w <= rv <= m + clip_sigma w.  Stops when no cluster's member set
    changes (at most CLIP_MAX_ITER passes).  One pass with the pooled std (Fu et al.)
    let about a third of 10% outliers through (docs/methods.md).  A cluster whose set
    did not change in a pass is at its fixed point (the next pass would repeat the
    same arithmetic on the same stars), so later passes recompute only the clusters
    that changed.
    """
    idx = np.flatnonzero(candidate)
    g, x, s = group[idx], rv[idx], rv_err[idx]
    kept = np.ones(len(idx), dtype=bool)
    lo = np.full(n_groups, np.nan)
    hi = np.full(n_groups, np.nan)
    changed = np.ones(n_groups, dtype=bool)
    for _ in range(CLIP_MAX_ITER):
        again = np.flatnonzero(changed[g])
        ga, xa = g[again], x[again]
        mine = again[kept[again]]
        centre = mixture_median(g[mine], x[mine], s[mine], n_groups)
        width = MAD_TO_SIGMA * _group_median(ga, np.abs(xa - centre[ga]), n_groups)
        lo[changed] = (centre - clip_sigma * width)[changed]
        hi[changed] = (centre + clip_sigma * width)[changed]
        new = (xa >= lo[ga]) & (xa <= hi[ga])
        moved = new != kept[again]
        if not moved.any():
            break
        kept[again] = new
        changed = np.zeros(n_groups, dtype=bool)
        changed[ga[moved]] = True
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

