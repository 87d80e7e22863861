"""Quality control: spectrum-level cuts (SPEC 3.3) and stellar-parameter QC (SPEC 3.6).

Spectrum QC rejects single bad values, not whole spectra: a spectrum with a good RV
but a non-finite [Mg/Fe] still contributes its RV.  Every rejected value is counted
per column so the manifest can report what was thrown away and why.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ingest.core.config import ParamsQC, Spectra
from ingest.pipeline.s1_inputs.colmap import SPECTRUM_PARAMETERS

QC_OK, QC_LOW_SNR, QC_RV_FLAG, QC_BAD_RV = "ok", "low_snr", "rv_flag", "bad_rv"
PARAM_OK, PARAM_HOT, PARAM_COOL, PARAM_COOL_DWARF, PARAM_NO_TEFF = (
    "ok", "hot", "cool", "cool_dwarf", "no_teff")


def _labels(conditions: list[np.ndarray], labels: list[str], default: str) -> np.ndarray:
    """Object array of the label of the first true condition (np.select on small codes,
    so 10M rows never materialise a fixed-width string array)."""
    codes = np.select(conditions, list(range(1, len(labels) + 1)), default=0)
    return np.array([default, *labels], dtype=object)[codes]


def _reject_bad_values(frame: pd.DataFrame, counts: dict[str, int]) -> None:
    """NaN out (value, error) where either is non-finite or the error is <= 0; count per column."""
    for name in SPECTRUM_PARAMETERS:
        err_name = f"{name}_err"
        if name not in frame or err_name not in frame:
            continue
        value, err = frame[name].to_numpy(), frame[err_name].to_numpy()
        good_value, good_err = np.isfinite(value), np.isfinite(err)
        bad = (good_value | good_err) & ~(good_value & good_err & (err > 0))
        counts[f"bad_value_{name}"] = int(np.count_nonzero(bad))
        if counts[f"bad_value_{name}"]:     # replace only the columns that change
            frame[name] = np.where(bad, np.nan, value).astype(value.dtype)
            frame[err_name] = np.where(bad, np.nan, err).astype(err.dtype)


def spectrum_qc(spectra: pd.DataFrame, settings: Spectra) -> tuple[pd.DataFrame, dict[str, int]]:
    """``spectra`` with bad values NaN'ed and a ``qc`` column (input untouched), plus counts.

    ``qc`` is the first failing test of: 'bad_rv' (no usable RV after value
    rejection), 'low_snr' (snr < ``settings.snr_min``), 'rv_flag' (rv_flag !=
    ``settings.rv_flag_good``), else
    'ok'.  A NaN snr or rv_flag means the survey does not provide it (e.g. Gaia RVs,
    LAMOST LRS has no RV flag), so that test is not applied.
    """
    frame = spectra.copy(deep=False)   # copy-on-write: only the columns changed are copied
    counts: dict[str, int] = {}
    _reject_bad_values(frame, counts)
    snr = frame["snr"].to_numpy(float) if "snr" in frame else np.full(len(frame), np.nan)
    flag = frame["rv_flag"].to_numpy(float) if "rv_flag" in frame else np.full(len(frame), np.nan)
    qc = _labels([~np.isfinite(frame["rv"].to_numpy(float)),
                  np.isfinite(snr) & (snr < settings.snr_min),
                  np.isfinite(flag) & (flag != settings.rv_flag_good)],
                 [QC_BAD_RV, QC_LOW_SNR, QC_RV_FLAG], QC_OK)
    frame["qc"] = qc
    for outcome in (QC_OK, QC_LOW_SNR, QC_RV_FLAG, QC_BAD_RV):
        counts[f"qc_{outcome}"] = int(np.count_nonzero(qc == outcome))
    return frame, counts


def absolute_gmag(gmag: np.ndarray, dist_pc: np.ndarray, av: np.ndarray) -> np.ndarray:
    """Gaia absolute G from the cluster distance and A_V (A_G = 0.789 A_V, Wang & Chen 2019).

    The cluster distance is far more precise than a member's own parallax; a
    missing A_V counts as 0 (the magnitude is then an upper limit, which only
    makes a dwarf look brighter, never a giant fainter).
    """
    extinction = 0.789 * np.nan_to_num(np.asarray(av, float), nan=0.0)
    return np.asarray(gmag, float) - 5.0 * np.log10(np.asarray(dist_pc, float) / 10.0) - extinction


def param_qc(teff: np.ndarray, logg: np.ndarray, settings: ParamsQC,
             abs_gmag: np.ndarray | None = None) -> np.ndarray:
    """Per-star outcome of Fu et al. 2022 sec. 2.2: whose [Fe/H] is trusted ('ok').

    'no_teff' (Teff unknown), 'hot' (> teff_max), 'cool' (< teff_min), 'cool_dwarf'
    (Teff < cool_dwarf_teff on the main sequence), else 'ok'.  A star is on the
    main sequence when its spectroscopic log g >= cool_dwarf_logg or, since the
    pipelines bias exactly these stars' log g low, when its absolute G (from
    Gaia photometry and the cluster distance) is fainter than
    cool_dwarf_abs_gmag.  With ``enabled = false`` every star is 'ok', which
    reproduces the unfiltered (biased) estimates.
    """
    teff = np.asarray(teff, float)
    logg = np.asarray(logg, float)
    if not settings.enabled:
        return np.full(teff.shape, PARAM_OK, dtype=object)
    dwarf = logg >= settings.cool_dwarf_logg
    if abs_gmag is not None:
        dwarf |= np.asarray(abs_gmag, float) >= settings.cool_dwarf_abs_gmag
    return _labels(
        [~np.isfinite(teff),
         teff > settings.teff_max,
         teff < settings.teff_min,
         (teff < settings.cool_dwarf_teff) & dwarf],
        [PARAM_NO_TEFF, PARAM_HOT, PARAM_COOL, PARAM_COOL_DWARF], PARAM_OK)
