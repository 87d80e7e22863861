"""Per-star combination of repeat spectra (SPEC section 3 step 4).

LAMOST observes many stars several times.  For every parameter each star gets
the error-weighted mean of its accepted spectra, the formal error of that mean,
the scatter of the repeats and the number of spectra used (thesis Tables 4-9,
4-11).  A star whose repeat RVs scatter far beyond their errors is flagged as
RV-variable (a binary candidate).  The test widens every per-epoch error by a
jitter term in quadrature and a per-survey scale calibrated on the repeats:
survey errors are formal, and night-to-night zero-point shifts of a few tenths of a km/s would
otherwise flag the precise, often-observed stars as binaries (docs/methods.md).

Everything is vectorised with ``numpy.bincount`` over an integer group label,
so ten million spectra combine in seconds.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ingest.core.config import Combine
from ingest.core.vocabulary import ABUNDANCES

PARAMS = ("rv", "teff", "logg", "vsini") + ABUNDANCES

MAX_ERR_SCALE = 10.0   # calibrated RV error scales stop here (errors 10x too small)
MIN_CALIBRATION_STARS = 50   # fewer multi-epoch stars: median too noisy, scale not calibrated

# Published (member-table) parameter name -> spectrum-catalogue column name.
SPECTRUM_COLUMN = {"fe_h": "feh"}


def spectrum_column(param: str) -> str:
    """Column of the canonical spectra table holding ``param`` (``fe_h`` is ``feh``)."""
    return SPECTRUM_COLUMN.get(param, param)


def group_sum(group: np.ndarray, weights: np.ndarray, n_groups: int) -> np.ndarray:
    """Float sums per group (``np.bincount`` returns integers for empty input)."""
    return np.bincount(group, weights=weights, minlength=n_groups).astype(np.float64)


def weighted_stats(group: np.ndarray, value: np.ndarray, error: np.ndarray,
                   n_groups: int) -> dict[str, np.ndarray]:
    """Weighted mean, formal error, repeat std, count and chi2 per group.

    A value counts only when it and its error are finite and the error is
    positive; groups without any usable value get NaN (and count 0).  The std
    is the sample standard deviation (ddof=1) of the repeats, NaN for one.
    """
    value = np.asarray(value, dtype=np.float64)
    error = np.asarray(error, dtype=np.float64)
    good = np.isfinite(value) & np.isfinite(error) & (error > 0)
    g, x = group[good], value[good]
    w = 1.0 / error[good] ** 2
    nobs = np.bincount(g, minlength=n_groups)
    sum_w = group_sum(g, w, n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = group_sum(g, w * x, n_groups) / sum_w
        err = 1.0 / np.sqrt(sum_w)
        chi2 = group_sum(g, w * (x - mean[g]) ** 2, n_groups)
        plain_mean = group_sum(g, x, n_groups) / nobs
        std = np.sqrt(group_sum(g, (x - plain_mean[g]) ** 2, n_groups) / (nobs - 1))
    empty = nobs == 0
    mean[empty] = err[empty] = chi2[empty] = np.nan
    std[nobs < 2] = np.nan
    chi2[nobs < 2] = np.nan
    return {"mean": mean, "err": err, "std": std, "nobs": nobs, "chi2": chi2}


def widened_errors(error: np.ndarray, jitter: float,
                   scale: float | np.ndarray) -> np.ndarray:
    """Per-epoch RV errors for the variability test: hypot(scale * err, jitter).

    Unusable errors (non-finite or not positive) stay unusable (NaN), so the
    test uses exactly the epochs the combined RV uses.
    """
    error = np.asarray(error, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(error) & (error > 0)
    return np.where(ok, np.hypot(scale * error, jitter), np.nan)


def rv_variability(chi2: np.ndarray, nobs: np.ndarray, pvalue: float) -> np.ndarray:
    """1 where the repeat RVs are inconsistent with a constant (p < ``pvalue``), else 0."""
    multi = nobs >= 2
    p = np.ones(len(chi2))
    p[multi] = stats.chi2.sf(chi2[multi], nobs[multi] - 1)
    return (multi & (p < pvalue)).astype(np.int16)


def median_probability(group: np.ndarray, rv: np.ndarray, sigma: np.ndarray,
                       n_groups: int) -> float:
    """Median chi-square probability of the stars with two or more epochs.

    NaN with fewer than ``MIN_CALIBRATION_STARS`` of them (the median of n
    uniform probabilities scatters by ~1/(2 sqrt(n))).
    """
    result = weighted_stats(group, rv, sigma, n_groups)
    multi = result["nobs"] >= 2
    if multi.sum() < MIN_CALIBRATION_STARS:
        return np.nan
    return float(np.median(stats.chi2.sf(result["chi2"][multi], result["nobs"][multi] - 1)))


def calibrated_scale(group: np.ndarray, rv: np.ndarray, rv_err: np.ndarray, n_groups: int,
                     jitter: float, minimum: float, maximum: float = MAX_ERR_SCALE) -> float:
    """Smallest error scale >= ``minimum`` that brings the median chi-square probability to 1/2.

    For constant stars with correct errors the probabilities are uniform, so
    their median is 1/2; errors under-estimated by a factor push it towards 0.
    The median ignores a minority of true variables, so the sample calibrates
    itself.  Errors are never shrunk below ``minimum`` (which stays when the
    median is already 1/2 or more, or too few stars have repeats).
    """
    def excess(scale: float) -> float:
        sigma = widened_errors(rv_err, jitter, scale)
        return median_probability(group, rv, sigma, n_groups) - 0.5

    return scale_root(excess, minimum, maximum)


def scale_root(excess: Callable[[float], float], minimum: float, maximum: float) -> float:
    """Smallest scale in [minimum, maximum] where ``excess`` (median probability - 1/2)
    reaches 0: ``minimum`` if it is already >= 0 there (or NaN: nothing to calibrate on),
    ``maximum`` if it is still < 0 there."""
    if not excess(minimum) < 0:
        return minimum
    if excess(maximum) < 0:
        return maximum
    return float(optimize.brentq(excess, minimum, maximum, xtol=1e-3))


def error_scales(group: np.ndarray, rv: np.ndarray, rv_err: np.ndarray, survey: np.ndarray,
                 n_groups: int, settings: Combine,
                 fixed: Mapping[str, float] | None = None) -> dict[str, float]:
    """Per-survey RV error scale: ``rv_err_scale``, or calibrated on that survey's repeats,
    or ``fixed`` when given (calibrated once on all stars when the stars are combined
    in parts, see ingest.pipeline.dask_engine)."""
    labels = np.unique(survey).tolist()
    if fixed is not None:
        return {label: fixed[label] for label in labels}
    if not settings.rv_err_scale_auto:
        return {label: settings.rv_err_scale for label in labels}
    return {label: calibrated_scale(group[survey == label], rv[survey == label],
                                    rv_err[survey == label], n_groups,
                                    settings.rv_jitter_kms, settings.rv_err_scale)
            for label in labels}


def variability(group: np.ndarray, rv: np.ndarray, rv_err: np.ndarray, survey: np.ndarray,
                n_groups: int, settings: Combine, fixed_scales: Mapping[str, float] | None = None
                ) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """(chi2, rv_var_flag, error scale per survey) per group from the ``[combine]`` settings.

    chi2 is taken about the mean weighted with the widened errors
    hypot(scale * err, ``rv_jitter_kms``); p < ``rv_var_pvalue`` flags the star.
    """
    survey = np.asarray(survey, dtype=str)
    scales = error_scales(group, rv, rv_err, survey, n_groups, settings, fixed_scales)
    labels, row_label = np.unique(survey, return_inverse=True)
    scale = np.array([scales[label] for label in labels.tolist()], dtype=np.float64)[row_label]
    sigma = widened_errors(rv_err, settings.rv_jitter_kms, scale)
    result = weighted_stats(group, rv, sigma, n_groups)
    flag = rv_variability(result["chi2"], result["nobs"], settings.rv_var_pvalue)
    return result["chi2"], flag, scales


def combine(spectra: pd.DataFrame, group: np.ndarray, n_groups: int, settings: Combine,
            fixed_scales: Mapping[str, float] | None = None) -> pd.DataFrame:
    """One row per group (star) with ``<par>``, ``_err``, ``_std``, ``_nobs`` for every parameter.

    ``spectra`` holds the canonical spectrum columns (missing parameters are
    simply NULL in the output); ``group`` gives each row's star label in
    ``0..n_groups-1``; ``settings`` is the ``[combine]`` configuration (``fixed_scales``:
    see ``error_scales``).  Also
    returns ``rv_chi2`` and ``rv_var_flag`` (see ``variability``).
    """
    group = np.asarray(group, dtype=np.int64)
    out: dict[str, np.ndarray] = {}
    nan = np.full(len(spectra), np.nan)
    for param in PARAMS:
        column = spectrum_column(param)
        value = spectra[column].to_numpy(np.float64) if column in spectra else nan
        error = (spectra[column + "_err"].to_numpy(np.float64)
                 if column + "_err" in spectra else nan)
        result = weighted_stats(group, value, error, n_groups)
        out[param] = result["mean"]
        out[param + "_err"] = result["err"]
        out[param + "_std"] = result["std"]
        out[param + "_nobs"] = result["nobs"].astype(np.int16)
        if param == "rv":
            survey = (spectra["survey"].astype(str).to_numpy() if "survey" in spectra
                      else np.full(len(spectra), ""))
            out["rv_chi2"], out["rv_var_flag"], _ = variability(group, value, error, survey,
                                                                n_groups, settings, fixed_scales)
    return pd.DataFrame(out)


def apply_rv_offsets(spectra: pd.DataFrame, offsets: Mapping[str, float]) -> pd.DataFrame:
    """Add each survey's configured zero-point offset to its RVs; record it as ``rv_offset``."""
    offset = spectra["survey"].map(lambda s: float(offsets.get(s, 0.0))).to_numpy(float)
    return spectra.assign(rv=spectra["rv"].to_numpy(float) + offset, rv_offset=offset)
