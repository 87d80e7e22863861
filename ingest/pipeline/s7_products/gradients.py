"""Galactic abundance gradients of the cluster sample (SPEC section 3.10; thesis Tables 4-5..4-7).

Straight and broken lines with the knee fixed are weighted least-squares fits
in which an intrinsic cluster-to-cluster scatter is added to the measurement
errors until the reduced chi-square is one: without it the [Fe/H] errors of
well-populated clusters (~0.01 dex) would claim slope errors several times too
small, since real clusters scatter by ~0.05 dex about any gradient.  The
fitted knee and Fu et al. (2022)'s quadratic trends are sampled with emcee
(same likelihood, scatter as a free parameter); their errors are half the
16-84 percentile range of the posterior.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import emcee
import numpy as np
import pandas as pd
from scipy.optimize import brentq

from ingest.core.config import Gradients
from ingest.core.schema import table
from ingest.core.vocabulary import ELEMENTS

# Chains are extended until they are mcmc_tau_factor autocorrelation times long and the
# result is published (mcmc_tau, mcmc_chain); emcee's warning about each still-short
# intermediate chain would only clutter the ingest log.
logging.getLogger("emcee.autocorr").setLevel(logging.ERROR)


@dataclass
class Fit:
    """Parameters of one model; NaN where the model has no such parameter."""

    slope: float = np.nan
    slope_err: float = np.nan
    slope_outer: float = np.nan
    slope_outer_err: float = np.nan
    knee: float = np.nan
    knee_err: float = np.nan
    intercept: float = np.nan
    intercept_err: float = np.nan
    quad: float = np.nan
    quad_err: float = np.nan
    n_inner: int = -1
    n_outer: int = -1
    mcmc_tau: float = np.nan
    mcmc_chain: int = -1


def weighted_lstsq(design: np.ndarray, y: np.ndarray,
                   err: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Coefficients, covariance and intrinsic scatter of y ~ design @ coef.

    The scatter s is 0 if the fit is already consistent with the errors, else the
    value for which chi2 / (N - p) = 1 with weights 1 / (err^2 + s^2).
    """
    n, p = design.shape
    if n <= p:
        raise ValueError(f"{n} points cannot constrain {p} parameters")

    def solve(scatter: float) -> tuple[np.ndarray, np.ndarray, float]:
        weight = 1.0 / (err ** 2 + scatter ** 2)
        normal = design.T @ (design * weight[:, None])
        cov = np.linalg.inv(normal)
        coef = cov @ (design.T @ (weight * y))
        chi2 = float(np.sum(weight * (y - design @ coef) ** 2))
        return coef, cov, chi2

    coef, cov, chi2 = solve(0.0)
    if chi2 <= n - p:
        return coef, cov, 0.0
    upper = float(np.std(y)) + float(np.max(err))
    scatter = brentq(lambda s: solve(s)[2] - (n - p), 0.0, upper, xtol=1e-6)
    coef, cov, _ = solve(scatter)
    return coef, cov, scatter


def _hinge(x: np.ndarray, knee: float) -> np.ndarray:
    """Design matrix of a continuous broken line: value at the knee, inner and outer slope."""
    return np.column_stack([np.ones_like(x), np.minimum(x - knee, 0.0),
                            np.maximum(x - knee, 0.0)])


def fit_linear(x: np.ndarray, y: np.ndarray, err: np.ndarray) -> Fit:
    """Straight line; intercept at x = 0."""
    coef, cov, _ = weighted_lstsq(np.column_stack([np.ones_like(x), x]), y, err)
    sd = np.sqrt(np.diag(cov))
    return Fit(slope=coef[1], slope_err=sd[1], intercept=coef[0], intercept_err=sd[0])


def fit_broken_fixed(x: np.ndarray, y: np.ndarray, err: np.ndarray, knee: float) -> Fit:
    """Continuous broken line with the knee fixed; intercept = value at the knee."""
    coef, cov, _ = weighted_lstsq(_hinge(x, knee), y, err)
    sd = np.sqrt(np.diag(cov))
    return Fit(slope=coef[1], slope_err=sd[1], slope_outer=coef[2], slope_outer_err=sd[2],
               knee=knee, intercept=coef[0], intercept_err=sd[0])


def _log_likelihood(model: np.ndarray, y: np.ndarray, err: np.ndarray,
                    log_scatter: np.ndarray) -> np.ndarray:
    """Gaussian log-likelihood per walker; model is (walkers, N)."""
    var = err[None, :] ** 2 + np.exp(2.0 * log_scatter)[:, None]
    return -0.5 * np.sum((y[None, :] - model) ** 2 / var + np.log(var), axis=1)


@dataclass
class Chain:
    """Flat posterior samples with the convergence measure reported per fit."""

    samples: np.ndarray
    tau: float          # largest integrated autocorrelation time over the parameters (steps)
    steps: int          # chain length after burn-in (steps)


@dataclass(frozen=True)
class BrokenLinePosterior:
    """Log-posterior of the continuous broken line with a free knee (flat prior on the knee
    inside ``knee_prior``), for all walkers at once.  A module-level class rather than a
    closure, so a fit can be sampled in a worker process."""

    x: np.ndarray
    y: np.ndarray
    err: np.ndarray
    knee_prior: tuple[float, float]

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        value, inner, outer, knee, log_s = theta.T
        dx = self.x[None, :] - knee[:, None]
        model = value[:, None] + inner[:, None] * np.minimum(dx, 0) + \
            outer[:, None] * np.maximum(dx, 0)
        lo, hi = self.knee_prior
        inside = (knee > lo) & (knee < hi) & (log_s > -12) & (log_s < 1)
        return np.where(inside, _log_likelihood(model, self.y, self.err, log_s), -np.inf)


@dataclass(frozen=True)
class QuadraticPosterior:
    """Log-posterior of y = quad x^2 + slope x + intercept with a free scatter."""

    design: np.ndarray
    y: np.ndarray
    err: np.ndarray

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        model = theta[:, :3] @ self.design.T
        log_s = theta[:, 3]
        inside = (log_s > -12) & (log_s < 1)
        return np.where(inside, _log_likelihood(model, self.y, self.err, log_s), -np.inf)


@dataclass(frozen=True)
class McmcJob:
    """One emcee run, fully determined before it starts: the posterior, the walkers'
    start and the seed of emcee's own generator (drawn from the run's generator in table
    order, so results do not depend on where or in which order the jobs run)."""

    log_prob: BrokenLinePosterior | QuadraticPosterior
    initial: np.ndarray
    seed: int


def run_emcee(job: McmcJob, mcmc: Gradients) -> Chain:
    """Sample ``job`` until the chain after burn-in is at least ``mcmc_tau_factor``
    integrated autocorrelation times long (emcee's estimate); the burn-in is the larger of
    ``mcmc_burn`` and 5 tau.  After the first ``mcmc_steps`` a short chain is extended to
    the length its current tau asks for (:func:`_extension`), and checked again, up to
    ``mcmc_max_steps``.  Where tau cannot be estimated (a walker that never moved, as
    where the data leave a parameter unconstrained) the chain runs to ``mcmc_max_steps``
    and tau is published as NaN."""
    walkers, ndim = job.initial.shape
    sampler = emcee.EnsembleSampler(walkers, ndim, job.log_prob, vectorize=True)
    # emcee draws its moves from its own legacy RandomState
    sampler.random_state = np.random.RandomState(job.seed).get_state()
    state = sampler.run_mcmc(job.initial, int(mcmc.mcmc_steps), progress=False)
    while True:
        tau = float(np.max(sampler.get_autocorr_time(quiet=True, discard=int(mcmc.mcmc_burn))))
        burn = max(int(mcmc.mcmc_burn), int(np.ceil(5 * tau)) if np.isfinite(tau) else 0)
        steps = _extension(sampler.iteration, burn, tau, mcmc)
        if steps == 0:
            break
        state = sampler.run_mcmc(state, steps, progress=False)
    return Chain(sampler.get_chain(discard=burn, flat=True), tau, sampler.iteration - burn)


EXTEND_MARGIN = 1.1   # an extension aims 10% beyond the length tau asks for (tau still grows)


def _extension(done: int, burn: int, tau: float, mcmc: Gradients) -> int:
    """Steps to add to a chain of ``done`` steps: none once it is ``mcmc_tau_factor`` tau
    long after ``burn`` (or at ``mcmc_max_steps``); else up to that length plus
    EXTEND_MARGIN, or ``mcmc_steps`` more while tau cannot be estimated.  Extending by a
    fixed block instead ran typical chains (tau ~45, first run 3000) to 6000 steps where
    ~3700 meet the criterion."""
    factor, limit = float(mcmc.mcmc_tau_factor), int(mcmc.mcmc_max_steps)
    if done >= limit or (np.isfinite(tau) and done - burn >= factor * tau):
        return 0
    if not np.isfinite(tau):
        return min(int(mcmc.mcmc_steps), limit - done)
    wanted = int(np.ceil(EXTEND_MARGIN * (burn + factor * tau)))
    return min(max(wanted - done, 1), limit - done)


def _emcee_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2 ** 31))


def _summary(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    low, mid, high = np.percentile(samples, [16, 50, 84], axis=0)
    return mid, (high - low) / 2.0


def broken_free_job(x: np.ndarray, y: np.ndarray, err: np.ndarray,
                    knee_prior: tuple[float, float], mcmc: Gradients,
                    rng: np.random.Generator) -> McmcJob:
    """Continuous broken line with the knee sampled (flat prior) by emcee; the walkers
    start spread over the whole prior, so a second solution is not missed."""
    lo, hi = knee_prior
    walkers = int(mcmc.mcmc_walkers)
    knees = lo + (hi - lo) * (np.arange(walkers) + rng.uniform(0, 1, walkers)) / walkers
    initial = np.array([_hinge_start(x, y, err, knee) for knee in knees])
    # the stretch move cannot separate walkers that start equal in a coordinate
    initial[:, 4] += 0.1 * rng.standard_normal(walkers)
    return McmcJob(BrokenLinePosterior(x, y, err, (lo, hi)), initial, _emcee_seed(rng))


def fit_broken_free(x: np.ndarray, y: np.ndarray, err: np.ndarray,
                    knee_prior: tuple[float, float], mcmc: Gradients,
                    rng: np.random.Generator) -> Fit:
    """:func:`broken_free_job` sampled here and summarised."""
    return broken_free_fit(run_emcee(broken_free_job(x, y, err, knee_prior, mcmc, rng), mcmc))


def broken_free_fit(chain: Chain) -> Fit:
    mid, half = _summary(chain.samples)
    return Fit(intercept=mid[0], intercept_err=half[0], slope=mid[1], slope_err=half[1],
               slope_outer=mid[2], slope_outer_err=half[2], knee=mid[3], knee_err=half[3],
               mcmc_tau=chain.tau, mcmc_chain=chain.steps)


def _hinge_start(x: np.ndarray, y: np.ndarray, err: np.ndarray, knee: float) -> np.ndarray:
    """A walker's start: the fixed-knee fit at its own knee (stratified over the prior, so
    a second solution anywhere in the knee range is explored), scatter 0.05 dex.  A knee
    with no cluster on one side (a small sample) leaves that slope free: the walker starts
    on the straight-line fit through all clusters instead."""
    try:
        fit = fit_broken_fixed(x, y, err, knee)
        value, inner, outer = fit.intercept, fit.slope, fit.slope_outer
    except np.linalg.LinAlgError:
        coef, _, _ = weighted_lstsq(np.column_stack([np.ones_like(x), x - knee]), y, err)
        value, inner, outer = coef[0], coef[1], coef[1]
    return np.array([value, inner, outer, knee, np.log(0.05)])


def quadratic_job(x: np.ndarray, y: np.ndarray, err: np.ndarray, mcmc: Gradients,
                  rng: np.random.Generator) -> McmcJob:
    """y = quad x^2 + slope x + intercept by emcee (Fu et al. 2022 eq. 1), walkers started
    around the weighted least-squares solution."""
    design = np.column_stack([np.ones_like(x), x, x ** 2])
    coef, cov, scatter = weighted_lstsq(design, y, err)
    start = np.append(coef, np.log(max(scatter, 1e-3)))
    spread = np.append(np.sqrt(np.diag(cov)) * 0.1, 0.1)
    initial = start[None, :] + spread[None, :] * rng.standard_normal(
        (int(mcmc.mcmc_walkers), len(start)))
    return McmcJob(QuadraticPosterior(design, y, err), initial, _emcee_seed(rng))


def fit_quadratic(x: np.ndarray, y: np.ndarray, err: np.ndarray, mcmc: Gradients,
                  rng: np.random.Generator) -> Fit:
    """:func:`quadratic_job` sampled here and summarised."""
    return quadratic_fit(run_emcee(quadratic_job(x, y, err, mcmc, rng), mcmc))


def quadratic_fit(chain: Chain) -> Fit:
    mid, half = _summary(chain.samples)
    return Fit(intercept=mid[0], intercept_err=half[0], slope=mid[1], slope_err=half[1],
               quad=mid[2], quad_err=half[2], mcmc_tau=chain.tau, mcmc_chain=chain.steps)


def fit_broken_split(x: np.ndarray, y: np.ndarray, err: np.ndarray, knee: float) -> Fit:
    """Independent straight lines inside and outside the knee (not joined at it), as the
    thesis' 387 / 55-cluster fits; intercepts at x = 0 are not comparable, so only the
    slopes and N per side are reported."""
    inner, outer = x < knee, x >= knee
    fits = [fit_linear(x[side], y[side], err[side]) for side in (inner, outer)]
    return Fit(slope=fits[0].slope, slope_err=fits[0].slope_err, slope_outer=fits[1].slope,
               slope_outer_err=fits[1].slope_err, knee=knee, n_inner=int(inner.sum()),
               n_outer=int(outer.sum()))


def _age_bins(edges_gyr: list[float]) -> list[tuple[str, float, float]]:
    """Labels and log-age limits, e.g. ('<0.1', -inf, 8.0), ('0.1-0.5', 8.0, 8.7)..."""
    edges = [0.0, *edges_gyr, np.inf]
    bins = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        if lo == 0:
            label = f"<{hi:g}"
        elif np.isinf(hi):
            label = f">{lo:g}"
        else:
            label = f"{lo:g}-{hi:g}"
        bins.append((label, np.log10(lo * 1e9) if lo else -np.inf, np.log10(hi * 1e9)))
    return bins


# Independent variables: column of the cluster table, divisor and the unit after division.
# L_z and E are scaled so that Fu et al. (2022)'s quadratic coefficients are O(0.01-1).
VARIABLES = {"r_gc": (1.0, "kpc"), "abs_z": (1.0, "kpc"), "lz": (1e3, "10+3kpc.km/s"),
             "energy": (1e5, "10+5km**2/s**2")}
# Named samples (gradients.sample): minimum FLAG=12 stars per cluster.  "thesis": every
# cluster with an [Fe/H] (thesis Tables 4-5..4-7: 442 of 446); "fu2022": n_flag12 >= 3
# (Fu et al. 2022); "custom": gradients.good_min_flag12.
SAMPLES = {"thesis": 1, "fu2022": 3}


def min_flag12(opts: Gradients) -> int:
    """Minimum n_flag12 of the configured gradient sample (names checked by the config)."""
    return opts.good_min_flag12 if opts.sample == "custom" else SAMPLES[opts.sample]


@dataclass
class _Sample:
    x: np.ndarray
    y: np.ndarray
    err: np.ndarray
    text: str


@dataclass(frozen=True)
class _Spec:
    """One row of the gradient table to fit."""

    quantity: str
    variable: str
    model: str
    lo: float
    hi: float
    age: tuple[str, float, float] | None = None


def _select(clusters: pd.DataFrame, spec: _Spec, base_text: str, min_element: int) -> _Sample:
    scale, unit = VARIABLES[spec.variable]
    x = clusters[spec.variable].to_numpy(float) / scale
    y = clusters[spec.quantity].to_numpy(float)
    err = clusters[f"{spec.quantity}_err"].to_numpy(float)
    keep = (np.isfinite(x) & np.isfinite(y) & np.isfinite(err) & (err > 0) & (x >= spec.lo)
            & (x < spec.hi))
    text = base_text
    if np.isfinite(spec.lo) or np.isfinite(spec.hi):
        text += f"; {spec.lo:g} <= {spec.variable} < {spec.hi:g} {unit}"
    if spec.quantity != "fe_h" and f"{spec.quantity}_num" in clusters:
        keep &= clusters[f"{spec.quantity}_num"].to_numpy(float) >= min_element
        text += f"; {spec.quantity}_num >= {min_element}"
    if spec.age is not None:
        label, age_lo, age_hi = spec.age
        logage = clusters["logage50"].to_numpy(float)
        keep &= (logage >= age_lo) & (logage < age_hi)
        text += f"; age {label} Gyr"
    return _Sample(x[keep], y[keep], err[keep], text)


def _row(spec: _Spec, fit: Fit, sample: _Sample) -> dict:
    return {"quantity": spec.quantity, "variable": spec.variable,
            "variable_unit": VARIABLES[spec.variable][1], "model": spec.model,
            "range_min": spec.lo if np.isfinite(spec.lo) else np.nan,
            "range_max": spec.hi if np.isfinite(spec.hi) else np.nan,
            "age_bin": spec.age[0] if spec.age else "all", **vars(fit), "n": len(sample.x),
            "sample": sample.text}


_PARAMETERS = {"linear": 2, "broken_fixed": 3, "broken_fit": 4, "broken_split": 4,
               "quadratic_mcmc": 3}


def _specs(opts: Gradients) -> list[_Spec]:
    """Every fit of the gradient table, in table order (SPEC section 3.10)."""
    r_lo, r_hi = opts.rgc_range_kpc
    z_lo, z_hi = opts.abs_z_range_kpc
    specs = [_Spec("fe_h", "r_gc", model, r_lo, r_hi)
             for model in ("linear", "broken_fixed", "broken_fit", "broken_split")]
    specs.append(_Spec("fe_h", "abs_z", "linear", z_lo, z_hi))
    for age in _age_bins(opts.age_bins_gyr):
        specs += [_Spec("fe_h", "r_gc", "linear", r_lo, r_hi, age),
                  _Spec("fe_h", "abs_z", "linear", z_lo, z_hi, age)]
    specs += [_Spec(f"{element}_fe", "r_gc", "linear", r_lo, hi)
              for element in ELEMENTS for hi in (r_hi, float(opts.knee_kpc))]
    quadratic_ages = _age_bins(opts.quadratic_age_bins_gyr)
    specs += [_Spec("fe_h", "r_gc", "quadratic_mcmc", r_lo, r_hi, age) for age in quadratic_ages]
    # Fu et al. (2022) Figs 9-10: [Fe/H] against L_z and orbital energy per age group
    specs += [_Spec("fe_h", variable, "quadratic_mcmc", -np.inf, np.inf, age)
              for variable in ("lz", "energy") for age in quadratic_ages]
    return specs


def _enough(spec: _Spec, sample: _Sample, knee: float) -> bool:
    """Enough clusters for the model (parameters + 2; broken_split: 4 on each side; the
    fixed-knee broken line: 2 on each side, else the slope beyond the knee is free)."""
    inner = int((sample.x < knee).sum())
    if spec.model == "broken_split":
        return min(inner, len(sample.x) - inner) >= 4
    if spec.model == "broken_fixed" and min(inner, len(sample.x) - inner) < 2:
        return False
    return len(sample.x) >= _PARAMETERS[spec.model] + 2


def _least_squares(model: str, sample: _Sample, knee: float) -> Fit:
    if model == "linear":
        return fit_linear(sample.x, sample.y, sample.err)
    if model == "broken_fixed":
        return fit_broken_fixed(sample.x, sample.y, sample.err, knee)
    return fit_broken_split(sample.x, sample.y, sample.err, knee)


def _mcmc_job(model: str, sample: _Sample, opts: Gradients, rng: np.random.Generator) -> McmcJob:
    if model == "broken_fit":
        return broken_free_job(sample.x, sample.y, sample.err, tuple(opts.knee_prior_kpc),
                               opts, rng)
    return quadratic_job(sample.x, sample.y, sample.err, opts, rng)


_SUMMARIES = {"broken_fit": broken_free_fit, "quadratic_mcmc": quadratic_fit}


def sample_all(jobs: list[McmcJob], opts: Gradients) -> list[Chain]:
    """Run the emcee jobs, in ``mcmc_processes`` worker processes when there is more than
    one job (each job is fixed with its seed beforehand, so the chains are the same bits
    however many processes run them).  Spawned, not forked: the ingest may hold threads."""
    processes = min(len(jobs), int(opts.mcmc_processes) or len(os.sched_getaffinity(0)))
    if processes <= 1:
        return [run_emcee(job, opts) for job in jobs]
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(run_emcee, jobs, [opts] * len(jobs)))


def fit_gradients(clusters: pd.DataFrame, opts: Gradients, seed: int) -> pd.DataFrame:
    """The gradient table (rd.xml) for the configured sample (``gradients.sample``).

    Needs fe_h, fe_h_err, the [X/Fe] columns with _err and _num, r_gc, z (kpc), lz,
    energy, logage50 and n_flag12.  [X/Fe] fits use clusters with at least
    ``min_element_stars`` stars for that element.  Fits with too few clusters are left out.
    The least-squares fits are done here; the emcee fits are prepared in table order
    (drawing their starts and seeds from one generator) and then sampled together
    (:func:`sample_all`).
    """
    rng = np.random.default_rng(seed)
    minimum = min_flag12(opts)
    good = clusters[clusters["n_flag12"] >= minimum].assign(
        abs_z=lambda frame: np.abs(frame["z"]))
    base = f"{opts.sample}: n_flag12 >= {minimum}"
    knee = float(opts.knee_kpc)
    planned: list[tuple[_Spec, _Sample, Fit | McmcJob]] = []
    for spec in _specs(opts):
        if spec.variable not in good:
            continue
        sample = _select(good, spec, base, int(opts.min_element_stars))
        if not _enough(spec, sample, knee):
            continue
        planned.append((spec, sample, _mcmc_job(spec.model, sample, opts, rng)
                        if spec.model in _SUMMARIES else _least_squares(spec.model, sample, knee)))
    chains = iter(sample_all([p for _, _, p in planned if isinstance(p, McmcJob)], opts))
    rows = [_row(spec, _SUMMARIES[spec.model](next(chains)) if isinstance(fit, McmcJob)
                 else fit, sample) for spec, sample, fit in planned]
    return _as_table(rows)


def _as_table(rows: list[dict]) -> pd.DataFrame:
    columns = table("gradient").names
    frame = pd.DataFrame(rows, columns=[c for c in columns if c != "gradient_id"])
    frame.insert(0, "gradient_id", np.arange(1, len(frame) + 1, dtype=np.int32))
    for column in ("n", "n_inner", "n_outer", "mcmc_chain"):
        frame[column] = frame[column].astype(np.int32)
    return frame[columns]
