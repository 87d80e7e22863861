"""Range and sanity checks of values as read, before anything is matched or published.

A value no catalogue can hold (dec = 95, ra = 658, a membership probability of
1.5, rv = 1e30 km/s, +inf, a negative S/N or a negative error) means a damaged
row or a misread column.  Cluster rows are few and every one is published, so
a bad cluster position or an infinite cluster value stops the run, naming file,
column and row.  In member and spectrum files such a row is dropped (bad
position, probability or S/N) or the value is nulled with its error (RV,
parameters, errors); each is counted under a reason in the manifest's
``rejections`` and described, with file and column, in ``rejected_values``.
NaN stays what it is in these files: a missing value.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ingest.core.errors import InputError

RV_LIMIT_KMS = 1000.0           # |rv| at or above this: not a Galactic star (fastest ~ 900 km/s)
ABUNDANCE_LIMIT_DEX = 10.0      # |[Fe/H]|, |[X/Fe]| at or above this: not a measurement
TEFF_RANGE_K = (1000.0, 100_000.0)
LOGG_RANGE = (-2.0, 10.0)
DROPPED, NULLED = "row dropped", "value nulled"

Details = list[dict[str, Any]]


def _numbers(frame: pd.DataFrame, field: str) -> np.ndarray:
    return frame[field].to_numpy(float, na_value=np.nan)


def wrap_signed_ra(frame: pd.DataFrame) -> pd.DataFrame:
    """RA written as a signed longitude in [-180, 0) (e.g. NGC 7789 at -0.666 deg in
    a real Cantat-Gaudin 2020 table) means ra + 360: the same position, wrapped into
    [0, 360) rather than rejected.  Anything else outside [0, 360) stays impossible."""
    ra = _numbers(frame, "ra")
    with np.errstate(invalid="ignore"):
        signed = (ra >= -180.0) & (ra < 0.0)
    if not signed.any():
        return frame
    frame = frame.copy()
    frame["ra"] = np.where(signed, ra + 360.0, ra)
    return frame


def position_out_of_range(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Finite positions outside ra [0, 360), dec [-90, 90] (NaN is 'missing', counted apart)."""
    with np.errstate(invalid="ignore"):
        return (np.isfinite(ra) & ((ra < 0) | (ra >= 360))) | (np.isfinite(dec) & (np.abs(dec) > 90))


def _record(details: Details, rejections: dict[str, int], key: str, path: Path,
            column: str, field: str, reason: str, bad: np.ndarray, index: pd.Index,
            action: str) -> None:
    """Count ``bad`` under ``key`` and describe it (file, column, first row) in ``details``."""
    count = int(np.count_nonzero(bad))
    rejections[key] = rejections.get(key, 0) + count
    if count:
        details.append({"file": str(path), "column": column, "field": field, "reason": reason,
                        "count": count, "action": action, "key": key,
                        "first_row": int(index[np.flatnonzero(bad)[0]]) + 1})


def _drop_rows(frame: pd.DataFrame, bad: np.ndarray, key: str, rejections: dict[str, int],
               details: Details, path: Path, column: str, field: str,
               reason: str) -> pd.DataFrame:
    _record(details, rejections, key, path, column, field, reason, bad, frame.index, DROPPED)
    return frame.loc[~bad] if bad.any() else frame


def _null(frame: pd.DataFrame, fields: tuple[str, ...], bad: np.ndarray) -> None:
    for name in fields:
        if bad.any() and name in frame:
            frame[name] = frame[name].mask(pd.Series(bad, index=frame.index))


def _first_bad(frame: pd.DataFrame, bad: np.ndarray, field: str) -> str:
    row = int(np.flatnonzero(bad)[0])
    name = frame["cluster"].iloc[row] if "cluster" in frame else None
    return (f"{int(np.count_nonzero(bad))} row(s), e.g. row {int(frame.index[row]) + 1}"
            + (f" ({name})" if isinstance(name, str) else "")
            + f" = {frame[field].iloc[row]!r}")


# ---------------------------------------------------------------- clusters

CLUSTER_NON_NEGATIVE = ("r50", "s_pmra", "s_pmdec", "s_plx", "rv_lit_err", "n_members",
                        "n_rv_lit")
CLUSTER_POSITIVE = ("dist16", "dist50", "dist84")


def check_clusters(frame: pd.DataFrame, path: Path, resolved: Mapping[str, str]) -> None:
    """Stop on any cluster row a catalogue cannot hold: a missing or impossible position,
    an infinite value, an impossible RV, negative sizes, errors or counts, distance <= 0."""
    def stop(field: str, bad: np.ndarray, expected: str) -> None:
        if bad.any():
            raise InputError(path, f"{expected}: {_first_bad(frame, bad, field)}; every "
                                   "cluster is published, so fix or remove these rows",
                             column=resolved.get(field, field))

    ra, dec = _numbers(frame, "ra"), _numbers(frame, "dec")
    stop("ra", ~np.isfinite(ra), "cluster position missing or not finite")
    stop("dec", ~np.isfinite(dec), "cluster position missing or not finite")
    stop("ra", (ra < 0) | (ra >= 360), "ra must lie in [0, 360) degrees (or [-180, 0), read as ra + 360)")
    stop("dec", np.abs(dec) > 90, "dec must lie in [-90, 90] degrees")
    for field in resolved:
        if field in frame and pd.api.types.is_numeric_dtype(frame[field]):
            stop(field, np.isinf(_numbers(frame, field)), "value is infinite")
    with np.errstate(invalid="ignore"):
        stop("rv_lit", np.abs(_numbers(frame, "rv_lit")) >= RV_LIMIT_KMS,
             f"|rv| must be below {RV_LIMIT_KMS:g} km/s")
        for field in CLUSTER_NON_NEGATIVE:
            stop(field, _numbers(frame, field) < 0, "must not be negative")
        for field in CLUSTER_POSITIVE:
            stop(field, _numbers(frame, field) <= 0, "distance must be positive")


# ---------------------------------------------------------------- members

MEMBER_VALUES = ("pmra", "pmra_err", "pmdec", "pmdec_err", "plx", "plx_err", "gmag", "bp_rp")


def check_members(frame: pd.DataFrame, path: Path, resolved: Mapping[str, str],
                  rejections: dict[str, int], details: Details) -> pd.DataFrame:
    """Drop members with an impossible position or probability; null infinite values and
    negative errors."""
    frame = wrap_signed_ra(frame)
    bad = position_out_of_range(_numbers(frame, "ra"), _numbers(frame, "dec"))
    frame = _drop_rows(frame, bad, "members_position_out_of_range", rejections, details, path,
                       f"{resolved['ra']}/{resolved['dec']}", "ra/dec",
                       "outside ra [0, 360) / dec [-90, 90]")
    prob = _numbers(frame, "prob")
    with np.errstate(invalid="ignore"):
        bad = np.isinf(prob) | (prob < 0) | (prob > 1)
    frame = _drop_rows(frame, bad, "members_prob_out_of_range", rejections, details, path,
                       resolved.get("prob", "prob"), "prob", "membership probability outside "
                       "[0, 1]")
    frame = frame.copy()
    rejections.setdefault("members_value_invalid", 0)
    for field in MEMBER_VALUES:
        if field not in resolved:
            continue
        values = _numbers(frame, field)
        with np.errstate(invalid="ignore"):
            bad = np.isinf(values) | (field.endswith("_err") & (values < 0))
        _record(details, rejections, "members_value_invalid", path, resolved[field], field,
                "infinite" + (" or negative" if field.endswith("_err") else ""), bad,
                frame.index, NULLED)
        _null(frame, (field,), bad)
    return frame


# ---------------------------------------------------------------- spectra

def _parameter_limits(name: str) -> tuple[float, float]:
    """Open interval a stellar parameter must lie in."""
    if name == "rv":
        return -RV_LIMIT_KMS, RV_LIMIT_KMS
    if name == "teff":
        return TEFF_RANGE_K
    if name == "logg":
        return LOGG_RANGE
    if name == "vsini":
        return -np.inf, 1000.0          # negative vsini is already nulled by the reader
    return -ABUNDANCE_LIMIT_DEX, ABUNDANCE_LIMIT_DEX


def check_spectrum_positions(frame: pd.DataFrame, path: Path, resolved: Mapping[str, str],
                             rejections: dict[str, int], details: Details) -> pd.DataFrame:
    """Drop spectra with an impossible position.  Run on every row, before the rows that
    can match no member are set aside (ingest.pipeline.s1_inputs.projection): a wrapped ra of 658 deg must
    be counted, not matched."""
    frame = wrap_signed_ra(frame)
    bad = position_out_of_range(_numbers(frame, "ra"), _numbers(frame, "dec"))
    return _drop_rows(frame, bad, "spectra_position_out_of_range", rejections, details, path,
                      f"{resolved['ra']}/{resolved['dec']}", "ra/dec",
                      "outside ra [0, 360) / dec [-90, 90]")


def check_spectra(frame: pd.DataFrame, path: Path, resolved: Mapping[str, str],
                  parameters: tuple[str, ...], rejections: dict[str, int],
                  details: Details) -> pd.DataFrame:
    """Drop spectra with an impossible S/N; null (value, error) pairs with an impossible
    value (|rv| >= 1000 km/s, +-inf, ...) or an error that is not finite and > 0.
    Positions: :func:`check_spectrum_positions`, first (a selected re-read brings back the
    file's signed RAs, hence the wrap here too)."""
    frame = wrap_signed_ra(frame)
    snr = _numbers(frame, "snr")
    with np.errstate(invalid="ignore"):
        bad = np.isinf(snr) | (snr < 0)
    frame = _drop_rows(frame, bad, "spectra_snr_invalid", rejections, details, path,
                       resolved.get("snr", "snr"), "snr", "S/N negative or infinite")
    frame = frame.copy()
    rejections.setdefault("spectra_value_invalid", 0)
    rejections.setdefault("spectra_error_invalid", 0)
    for name in parameters:
        if name not in resolved:
            continue
        value, err_name = _numbers(frame, name), f"{name}_err"
        low, high = _parameter_limits(name)
        with np.errstate(invalid="ignore"):
            bad_value = np.isinf(value) | (value <= low) | (value >= high)
        _record(details, rejections, "spectra_value_invalid", path, resolved[name], name,
                f"infinite or outside ({low:g}, {high:g})", bad_value, frame.index, NULLED)
        bad_err = np.zeros(len(frame), bool)
        if err_name in resolved:
            err = _numbers(frame, err_name)
            with np.errstate(invalid="ignore"):
                bad_err = np.isfinite(value) & ~bad_value & (np.isinf(err) | (err <= 0))
            _record(details, rejections, "spectra_error_invalid", path, resolved[err_name],
                    err_name, "error not finite and > 0", bad_err, frame.index, NULLED)
        _null(frame, (name, err_name), bad_value | bad_err)
    return frame


def drop_duplicate_obsids(frames: list[pd.DataFrame], paths: list[Path],
                          rejections: dict[str, int], details: Details) -> list[pd.DataFrame]:
    """Drop spectra whose obsid an earlier file already holds (the same spectrum in two
    catalogues, e.g. overlapping data releases): counted, naming both files.  Surrogate
    (negative) obsids of files without one are unique by construction."""
    seen_ids = np.empty(0, np.int64)        # sorted obsids read so far
    seen_file = np.empty(0, np.int64)       # ... and the file each came from
    rejections.setdefault("spectra_duplicate_obsid", 0)
    out = []
    for number, (frame, path) in enumerate(zip(frames, paths)):
        ids = frame["obsid"].to_numpy(float, na_value=np.nan)
        valid = np.isfinite(ids) & (ids > 0)
        at = np.searchsorted(seen_ids, np.where(valid, ids, 0).astype(np.int64))
        hit = valid & (at < len(seen_ids))
        hit[hit] = seen_ids[at[hit]] == ids[hit].astype(np.int64)
        if hit.any():
            first = paths[int(seen_file[at[np.flatnonzero(hit)[0]]])]
            frame = _drop_rows(frame, hit, "spectra_duplicate_obsid", rejections, details,
                               path, "obsid", "obsid",
                               f"the same spectrum (obsid) was already read from {first}")
            valid = valid[~hit]
            ids = ids[~hit]
        new = ids[valid].astype(np.int64)
        seen_ids = np.concatenate([seen_ids, new])
        seen_file = np.concatenate([seen_file, np.full(len(new), number, np.int64)])
        order = np.argsort(seen_ids, kind="stable")
        seen_ids, seen_file = seen_ids[order], seen_file[order]
        out.append(frame)
    return out
