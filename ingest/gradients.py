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

from dataclasses import dataclass

import emcee
import numpy as np
import pandas as pd
from scipy.optimize import brentq

from .schema import table

ELEMENTS = ("c", "n", "o", "mg", "al", "si", "s", "ca", "ti", "cr", "ni", "cu")


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


def _run_emcee(log_prob, start: np.ndarray, spread: np.ndarray, mcmc: dict,
               rng: np.random.Generator) -> np.ndarray:
    """Flat posterior samples after burn-in (walkers start in a small ball around ``start``)."""
    walkers = int(mcmc["mcmc_walkers"])
    initial = start[None, :] + spread[None, :] * rng.standard_normal((walkers, len(start)))
    sampler = emcee.EnsembleSampler(walkers, len(start), log_prob, vectorize=True)
    # emcee draws its moves from its own legacy RandomState: seed it from ``rng``.
    sampler.random_state = np.random.RandomState(int(rng.integers(2 ** 31))).get_state()
    sampler.run_mcmc(initial, int(mcmc["mcmc_steps"]), progress=False)
    return sampler.get_chain(discard=int(mcmc["mcmc_burn"]), flat=True)


def _summary(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    low, mid, high = np.percentile(samples, [16, 50, 84], axis=0)
    return mid, (high - low) / 2.0


def fit_broken_free(x: np.ndarray, y: np.ndarray, err: np.ndarray, knee_start: float,
                    knee_prior: tuple[float, float], mcmc: dict,
                    rng: np.random.Generator) -> Fit:
    """Continuous broken line with the knee sampled (flat prior) by emcee."""
    start_fit = fit_broken_fixed(x, y, err, knee_start)
    lo, hi = knee_prior

    def log_prob(theta: np.ndarray) -> np.ndarray:
        value, inner, outer, knee, log_s = theta.T
        dx = x[None, :] - knee[:, None]
        model = value[:, None] + inner[:, None] * np.minimum(dx, 0) + \
            outer[:, None] * np.maximum(dx, 0)
        inside = (knee > lo) & (knee < hi) & (log_s > -12) & (log_s < 1)
        return np.where(inside, _log_likelihood(model, y, err, log_s), -np.inf)

    start = np.array([start_fit.intercept, start_fit.slope, start_fit.slope_outer,
                      knee_start, np.log(0.05)])
    spread = np.array([0.01, 0.002, 0.002, 0.1, 0.1])
    mid, half = _summary(_run_emcee(log_prob, start, spread, mcmc, rng))
    return Fit(intercept=mid[0], intercept_err=half[0], slope=mid[1], slope_err=half[1],
               slope_outer=mid[2], slope_outer_err=half[2], knee=mid[3], knee_err=half[3])


def fit_quadratic(x: np.ndarray, y: np.ndarray, err: np.ndarray, mcmc: dict,
                  rng: np.random.Generator) -> Fit:
    """y = quad x^2 + slope x + intercept by emcee (Fu et al. 2022 eq. 1)."""
    design = np.column_stack([np.ones_like(x), x, x ** 2])
    coef, cov, scatter = weighted_lstsq(design, y, err)

    def log_prob(theta: np.ndarray) -> np.ndarray:
        model = theta[:, :3] @ design.T
        log_s = theta[:, 3]
        inside = (log_s > -12) & (log_s < 1)
        return np.where(inside, _log_likelihood(model, y, err, log_s), -np.inf)

    start = np.append(coef, np.log(max(scatter, 1e-3)))
    spread = np.append(np.sqrt(np.diag(cov)) * 0.1, 0.1)
    mid, half = _summary(_run_emcee(log_prob, start, spread, mcmc, rng))
    return Fit(intercept=mid[0], intercept_err=half[0], slope=mid[1], slope_err=half[1],
               quad=mid[2], quad_err=half[2])


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


@dataclass
class _Sample:
    x: np.ndarray
    y: np.ndarray
    err: np.ndarray
    text: str


def _select(clusters: pd.DataFrame, quantity: str, variable: str, lo: float, hi: float,
            base_text: str, age: tuple[str, float, float] | None = None) -> _Sample:
    x = clusters[variable].to_numpy(float)
    y = clusters[quantity].to_numpy(float)
    err = clusters[f"{quantity}_err"].to_numpy(float)
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(err) & (err > 0) & (x >= lo) & (x < hi)
    text = f"{base_text}; {lo:g} <= {variable} < {hi:g} kpc"
    if age is not None:
        label, age_lo, age_hi = age
        logage = clusters["logage50"].to_numpy(float)
        keep &= (logage >= age_lo) & (logage < age_hi)
        text += f"; age {label} Gyr"
    return _Sample(x[keep], y[keep], err[keep], text)


def _row(spec: _Spec, fit: Fit, sample: _Sample) -> dict:
    return {"quantity": spec.quantity, "variable": spec.variable, "model": spec.model,
            "range_min": spec.lo, "range_max": spec.hi,
            "age_bin": spec.age[0] if spec.age else "all", **vars(fit), "n": len(sample.x),
            "sample": sample.text}


_PARAMETERS = {"linear": 2, "broken_fixed": 3, "broken_fit": 4, "quadratic_mcmc": 3}


@dataclass(frozen=True)
class _Spec:
    """One row of the gradient table to fit."""

    quantity: str
    variable: str
    model: str
    lo: float
    hi: float
    age: tuple[str, float, float] | None = None


def _specs(opts: dict) -> list[_Spec]:
    """Every fit of the gradient table, in table order (SPEC section 3.10)."""
    r_lo, r_hi = opts["rgc_range_kpc"]
    z_lo, z_hi = opts["abs_z_range_kpc"]
    specs = [_Spec("fe_h", "r_gc", model, r_lo, r_hi)
             for model in ("linear", "broken_fixed", "broken_fit")]
    specs.append(_Spec("fe_h", "abs_z", "linear", z_lo, z_hi))
    for age in _age_bins(opts["age_bins_gyr"]):
        specs += [_Spec("fe_h", "r_gc", "linear", r_lo, r_hi, age),
                  _Spec("fe_h", "abs_z", "linear", z_lo, z_hi, age)]
    specs += [_Spec(f"{element}_fe", "r_gc", "linear", r_lo, hi)
              for element in ELEMENTS for hi in (r_hi, float(opts["knee_kpc"]))]
    specs += [_Spec("fe_h", "r_gc", "quadratic_mcmc", r_lo, r_hi, age)
              for age in _age_bins(opts["quadratic_age_bins_gyr"])]
    return specs


def _fit(model: str, sample: _Sample, opts: dict, rng: np.random.Generator) -> Fit:
    knee = float(opts["knee_kpc"])
    if model == "linear":
        return fit_linear(sample.x, sample.y, sample.err)
    if model == "broken_fixed":
        return fit_broken_fixed(sample.x, sample.y, sample.err, knee)
    if model == "broken_fit":
        return fit_broken_free(sample.x, sample.y, sample.err, knee,
                               tuple(opts["knee_prior_kpc"]), opts, rng)
    return fit_quadratic(sample.x, sample.y, sample.err, opts, rng)


def fit_gradients(clusters: pd.DataFrame, config: dict, seed: int) -> pd.DataFrame:
    """The gradient table (rd.xml) for the clusters with n_flag12 >= good_min_flag12.

    Needs fe_h, fe_h_err, the [X/Fe] columns with _err, r_gc, z (kpc), logage50 and
    n_flag12.  Fits with fewer clusters than parameters + 2 are left out.
    """
    opts = config["gradients"]
    rng = np.random.default_rng(seed)
    good = clusters[clusters["n_flag12"] >= opts["good_min_flag12"]].assign(
        abs_z=lambda frame: np.abs(frame["z"]))
    base = f"n_flag12 >= {opts['good_min_flag12']}"
    rows = []
    for spec in _specs(opts):
        sample = _select(good, spec.quantity, spec.variable, spec.lo, spec.hi, base, spec.age)
        if len(sample.x) >= _PARAMETERS[spec.model] + 2:
            rows.append(_row(spec, _fit(spec.model, sample, opts, rng), sample))
    return _as_table(rows)


def _as_table(rows: list[dict]) -> pd.DataFrame:
    columns = table("gradient").names
    frame = pd.DataFrame(rows, columns=[c for c in columns if c != "gradient_id"])
    frame.insert(0, "gradient_id", np.arange(1, len(frame) + 1, dtype=np.int32))
    frame["n"] = frame["n"].astype(np.int32)
    return frame[columns]
