"""Per-star combination of repeat spectra (SPEC section 3 step 4).

LAMOST observes many stars several times.  For every parameter each star gets
the error-weighted mean of its accepted spectra, the formal error of that mean,
the scatter of the repeats and the number of spectra used (thesis Tables 4-9,
4-11).  A star whose repeat RVs scatter far beyond their errors is flagged as
RV-variable (a binary candidate), which keeps it out of the cluster RV.

Everything is vectorised with ``numpy.bincount`` over an integer group label,
so ten million spectra combine in seconds.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

XFE = ("c_fe", "n_fe", "o_fe", "mg_fe", "al_fe", "si_fe", "s_fe",
       "ca_fe", "ti_fe", "cr_fe", "ni_fe", "cu_fe")
ABUNDANCES = ("fe_h", "m_h", "alpha_m") + XFE
PARAMS = ("rv", "teff", "logg", "vsini") + ABUNDANCES

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


def rv_variability(chi2: np.ndarray, nobs: np.ndarray, pvalue: float) -> np.ndarray:
    """1 where the repeat RVs are inconsistent with a constant (p < ``pvalue``), else 0."""
    multi = nobs >= 2
    p = np.ones(len(chi2))
    p[multi] = stats.chi2.sf(chi2[multi], nobs[multi] - 1)
    return (multi & (p < pvalue)).astype(np.int16)


def combine(spectra: pd.DataFrame, group: np.ndarray, n_groups: int,
            rv_var_pvalue: float) -> pd.DataFrame:
    """One row per group (star) with ``<par>``, ``_err``, ``_std``, ``_nobs`` for every parameter.

    ``spectra`` holds the canonical spectrum columns (missing parameters are
    simply NULL in the output); ``group`` gives each row's star label in
    ``0..n_groups-1``.  Also returns ``rv_chi2`` and ``rv_var_flag``.
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
            out["rv_chi2"] = result["chi2"]
            out["rv_var_flag"] = rv_variability(result["chi2"], result["nobs"], rv_var_pvalue)
    return pd.DataFrame(out)
