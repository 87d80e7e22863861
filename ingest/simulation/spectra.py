"""LAMOST-like spectra of one cluster field: MRS DR11 rows (one per exposure)
and LRS DR8 A/F/G/K rows, with the defects the ingest QC must handle.

Stars of a field share observing nights (LAMOST observes a plate at a time),
so repeat observations, mobsid and epochs look like the survey's.  Errors
scale with S/N; Teff/logg regimes carry the biases of Fu et al. (2022, §2.2).
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np

from ingest.core.vocabulary import ELEMENTS
from ingest.simulation.stars import IDS_PER_CLUSTER, KIND_CONTAMINANT, KIND_MEMBER, KIND_NEIGHBOUR

MJD_J2016 = 57388.5          # J2016.0, the Gaia DR3 reference epoch
MJD_UNIX = 40587             # MJD of 1970-01-01
MISSING_ID = -9999
LRS_OBSID_BASE = 100_000_000_000   # above every MRS obsid: ids stay unique across surveys
_UTC_NIGHT = (0.52, 0.83)    # Beijing 20:30-04:00 as a fraction of the UTC day
_SUBCLASSES = ((3900, "M0"), (4400, "K5"), (5000, "K3"), (5300, "K1"), (5600, "G8"),
               (5900, "G2"), (6300, "F9"), (6800, "F5"), (7400, "F0"), (8200, "A7"), (np.inf, "A2"))


def _mjd(iso: str) -> int:
    return (date.fromisoformat(iso) - date(1970, 1, 1)).days + MJD_UNIX


def _iso_dates(mjd_days: np.ndarray) -> np.ndarray:
    base = date(1970, 1, 1)
    return np.array([(base + timedelta(days=int(d) - MJD_UNIX)).isoformat() for d in mjd_days])


def error_law(snr: np.ndarray, floor: float, scale: float) -> np.ndarray:
    """The injected 1-sigma error versus S/N: hypot(floor, scale / snr)."""
    return np.hypot(floor, scale / snr)


def designations(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """LAMOST designations 'Jhhmmss.ss+ddmmss.s' (truncated, not rounded, like the IAU rule)."""
    cs = np.floor(ra / 15.0 * 360000.0).astype(np.int64)
    ds = np.floor(np.abs(dec) * 36000.0).astype(np.int64)
    sign = np.where(dec < 0, "-", "+")
    return np.array([f"J{h:02d}{m:02d}{s // 100:02d}.{s % 100:02d}{sg}{d:02d}{dm:02d}{dd // 10:02d}.{dd % 10}"
                     for h, m, s, sg, d, dm, dd in zip(cs // 360000, cs // 6000 % 60, cs % 6000, sign,
                                                       ds // 36000, ds // 600 % 60, ds % 600)])


def _observing_nights(n: int, lo: str, hi: str, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(np.arange(_mjd(lo), _mjd(hi) + 1), size=n, replace=False))


def _schedule(n_obs: np.ndarray, n_nights: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(star, night) index pairs: each star observed on n_obs distinct nights of its field."""
    ranks = rng.random((len(n_obs), n_nights)).argsort(axis=1).argsort(axis=1)
    return np.nonzero(ranks < n_obs[:, None])


def _propagate(stars: dict, idx: np.ndarray, mjd: np.ndarray, noise_arcsec: float,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Fibre position at the observation epoch: Gaia 2016.0 position moved by the true proper motion."""
    dt_yr = (mjd - MJD_J2016) / 365.25
    dec0 = stars["dec"][idx]
    dec = dec0 + (stars["pmdec"][idx] * dt_yr / 3.6e6) + rng.normal(0.0, noise_arcsec / 3600.0, len(idx))
    ra = (stars["ra"][idx] + stars["pmra"][idx] * dt_yr / 3.6e6 / np.cos(np.radians(dec0))
          + rng.normal(0.0, noise_arcsec / 3600.0, len(idx)) / np.cos(np.radians(dec0)))
    return ra % 360.0, dec


def _binary_offsets(stars: dict, idx: np.ndarray, mjd: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Orbital RV offsets: circular orbits with per-star K (0 for single stars), period and phase."""
    n = len(stars["G"])
    period = rng.uniform(2.0, 300.0, n)
    phase = rng.uniform(0.0, 1.0, n)
    return stars["binary_k"][idx] * np.sin(2 * np.pi * (mjd / period[idx] + phase[idx]))


def _systematics(stars: dict, spec: dict[str, Any], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-star pipeline biases: cool dwarfs low in logg and [Fe/H], hot/very cool stars unreliable."""
    teff, logg = stars["teff"], stars["logg"]
    cd = spec["cool_dwarf"]
    cool_dwarf = (teff < cd["teff_max"]) & (logg >= cd["logg_min"])
    depth = np.clip((cd["teff_max"] - teff) / 1000.0, 0.0, 1.0)
    cool_bias = np.where(cool_dwarf, cd["bias"][0] + (cd["bias"][1] - cd["bias"][0]) * depth, 0.0)
    n = len(teff)
    hot = teff > spec["hot_teff"]
    very_cool = teff < spec["very_cool_teff"]
    feh_bias = (cool_bias + np.where(hot, rng.normal(0.0, spec["hot_feh_scatter"], n), 0.0)
                + np.where(very_cool, spec["very_cool_feh_bias"]
                           + rng.normal(0.0, spec["very_cool_feh_scatter"], n), 0.0))
    return {"logg": cool_bias, "feh": feh_bias, "cool_dwarf": cool_dwarf}


def _reported(err: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Reported errors scatter by ~10% around the true ones, as pipeline errors do."""
    return (err * rng.lognormal(0.0, 0.1, len(err))).astype(np.float32)


def _measure(truth: np.ndarray, err: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (truth + rng.normal(0.0, 1.0, len(truth)) * err).astype(np.float32)


def night_zero_points(jitter_kms: float, n_nights: int, rng: np.random.Generator) -> np.ndarray:
    """Per-night RV zero-point offsets N(0, jitter) shared by every star of the night.

    Drawn from a child stream (``rng.spawn``), which leaves ``rng``'s own sequence
    untouched: with the default jitter 0 every other column stays bit for bit.
    """
    return rng.spawn(1)[0].normal(0.0, jitter_kms, n_nights)


def _rv_columns(stars, idx, mjd, snr, band, zero_point, spec, rng) -> dict[str, np.ndarray]:
    """RVs with the true errors plus the night's zero point; reported errors divided by
    ``rv_err_underestimate`` (1 = exact, >1 = a pipeline that under-estimates its errors)."""
    n = len(idx)
    err = error_law(snr, *spec["rv_err"])
    under = spec["rv_err_underestimate"]
    rv = stars["rv"][idx] + _binary_offsets(stars, idx, mjd, rng)
    flag = np.where(rng.random(n) < spec["rv_flag_fraction"], rng.choice([1, 2, 4, 8], n), 0)
    rv_obs = (rv + rng.normal(0.0, err) + (flag > 0) * rng.normal(0.0, spec["rv_flag_outlier_kms"], n)
              + zero_point)
    has_b, has_r = np.char.find(band, "B") >= 0, np.char.find(band, "R") >= 0
    columns = {"rv_br0": rv_obs.astype(np.float32), "rv_br0_err": _reported(err / under, rng),
               "rv_br_flag": flag.astype(np.int16)}
    for name, present in (("rv_b0", has_b), ("rv_r0", has_r)):
        band_err = 1.3 * err
        value = np.where(present, rv_obs + rng.normal(0.0, 0.5 * err), np.nan)
        columns[name] = value.astype(np.float32)
        columns[f"{name}_err"] = np.where(present, _reported(band_err / under, rng),
                                          np.nan).astype(np.float32)
    return columns


def _parameter_columns(stars, idx, snr, bias, spec, rng) -> dict[str, np.ndarray]:
    """LASP and CNN stellar parameters and the 12 CNN [X/Fe], with NaN where pipelines give none."""
    n = len(idx)
    teff, logg = stars["teff"][idx], stars["logg"][idx]
    teff_err, logg_err = error_law(snr, *spec["teff_err"]), error_law(snr, *spec["logg_err"])
    feh_err, xfe_err = error_law(snr, *spec["feh_err"]), error_law(snr, *spec["xfe_err"])
    logg_b, feh_b = logg + bias["logg"][idx], stars["fe_h"][idx] + bias["feh"][idx]
    cols: dict[str, np.ndarray] = {}
    for pipeline, teff_offset in (("lasp", -15.0), ("cnn", 10.0)):
        cols[f"teff_{pipeline}"] = _measure(teff + teff_offset, teff_err, rng)
        cols[f"logg_{pipeline}"] = _measure(logg_b, logg_err, rng)
        cols[f"feh_{pipeline}"] = _measure(feh_b, feh_err, rng)
        for name, err in (("teff", teff_err), ("logg", logg_err), ("feh", feh_err)):
            cols[f"{name}_{pipeline}_err"] = _reported(err, rng)
    vsini = stars["vsini"][idx]
    vsini_err = np.hypot(2.0, 0.1 * vsini)
    no_vsini = rng.random(n) < 0.1
    # A line-width fit returns v sin i >= 0: noise on a slow rotator ends at 0, not below.
    measured = np.maximum(_measure(vsini, vsini_err, rng), 0.0)
    cols["vsini_lasp"] = np.where(no_vsini, np.nan, measured).astype(np.float32)
    cols["vsini_lasp_err"] = np.where(no_vsini, np.nan, _reported(vsini_err, rng)).astype(np.float32)
    mh_truth = stars["m_h"][idx] + bias["feh"][idx]
    cols["m_h_cnn"], cols["m_h_cnn_err"] = _measure(mh_truth, feh_err, rng), _reported(feh_err, rng)
    cols["alpha_m_cnn"] = _measure(stars["alpha_m"][idx], 0.6 * feh_err, rng)
    cols["alpha_m_cnn_err"] = _reported(0.6 * feh_err, rng)
    too_hot = teff > spec["cnn_teff_max"]
    for element in ELEMENTS:
        missing = too_hot | (rng.random(n) < spec["abundance_missing"][element])
        value = _measure(stars[f"{element}_fe"][idx], xfe_err, rng)
        cols[f"{element}_fe"] = np.where(missing, np.nan, value).astype(np.float32)
        cols[f"{element}_fe_err"] = np.where(missing, np.nan, _reported(xfe_err, rng)).astype(np.float32)
    return cols


def _in_footprint(stars: dict, g_range: list[float], spec: dict[str, Any]) -> np.ndarray:
    return (stars["dec"] > spec["dec_min_deg"]) & (stars["G"] >= g_range[0]) & (stars["G"] <= g_range[1])


def _gaia_ids_in_spectra(stars: dict, spec: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """Per star: does the LAMOST catalogue carry its Gaia id (else -9999, positional match needed)?"""
    neighbour = stars["kind"] == KIND_NEIGHBOUR
    p_missing = np.where(neighbour, spec["neighbour_missing_gaia_id_fraction"], spec["missing_gaia_id_fraction"])
    return rng.random(len(neighbour)) >= p_missing


def _targets(stars: dict, g_range: list[float], coverage: float, field_coverage: float,
             spec: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """Stars in the footprint and magnitude range, chosen with a chance that differs between
    member-table stars and field stars (the field stars were made as MRS targets)."""
    listed = np.isin(stars["kind"], (KIND_MEMBER, KIND_CONTAMINANT))
    chosen = rng.random(len(listed)) < np.where(listed, coverage, field_coverage)
    return np.flatnonzero(_in_footprint(stars, g_range, spec) & chosen)


def _n_obs(n: int, spec: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    shape = spec["nobs_shape"]
    extra = rng.negative_binomial(shape, shape / (shape + spec["nobs_mean"] - 1.0), n)
    return np.minimum(1 + extra, spec["nights_per_field"])


def mrs_rows(stars: dict, index: int, coverage: float, model: dict[str, Any],
             rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """MRS DR11-like rows of one cluster field and the number of rows of each star."""
    spec = model["spectra"]
    targets = _targets(stars, spec["mrs_g_range"], coverage, 1.0, spec, rng)
    n_obs = _n_obs(len(targets), spec, rng)
    nights = _observing_nights(spec["nights_per_field"], *spec["epoch_range"], rng)
    which, night = _schedule(n_obs, spec["nights_per_field"], rng)
    idx = targets[which]
    n = len(idx)
    if n >= IDS_PER_CLUSTER:
        raise ValueError(f"cluster index {index}: {n} MRS rows exceed the obsid space of one cluster")
    mjd = nights[night] + rng.uniform(*_UTC_NIGHT, n)
    snr = spec["snr_at_g9"] * 10 ** (-0.2 * (stars["G"][idx] - 9.0)) * rng.lognormal(0.0, spec["snr_log_scatter"], n)
    bands = np.array(list(spec["band_fractions"]))
    band = rng.choice(bands, size=n, p=list(spec["band_fractions"].values()))
    ra, dec = _propagate(stars, idx, mjd, spec["fibre_noise_arcsec"], rng)
    zero_point = night_zero_points(spec["night_zp_jitter_kms"], len(nights), rng)[night]
    gaia_id = np.where(stars["has_id_mrs"][idx], stars["source_id"][idx], MISSING_ID)
    rows = {
        "obsid": (index + 1) * IDS_PER_CLUSTER + np.arange(n, dtype=np.int64),
        "mobsid": (nights[night].astype(np.int64) * 100000 + index + 1).astype(str),
        "uid": np.char.add("U", stars["gp_id"][idx].astype(str)), "gp_id": stars["gp_id"][idx],
        "designation": designations(stars["ra"][targets], stars["dec"][targets])[which],
        "gaia_source_id": gaia_id,
        "ra": ra, "dec": dec, "obsdate": _iso_dates(nights)[night],
        "lmjm": np.floor((mjd + 8.0 / 24.0) * 1440.0).astype(np.int64), "band": band,
        "snr": snr.astype(np.float32),
        **_rv_columns(stars, idx, mjd, snr, band, zero_point, spec, rng),
        **_parameter_columns(stars, idx, snr, stars["bias"], spec, rng),
    }
    return rows, _rows_per_star(len(stars["G"]), idx)


def _rows_per_star(n_stars: int, idx: np.ndarray) -> np.ndarray:
    return np.bincount(idx, minlength=n_stars).astype(np.int32)


def _subclass(teff: np.ndarray) -> np.ndarray:
    edges = np.array([edge for edge, _ in _SUBCLASSES])
    names = np.array([name for _, name in _SUBCLASSES])
    return names[np.searchsorted(edges, teff)]


def lrs_rows(stars: dict, index: int, coverage: float, model: dict[str, Any],
             rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """LRS DR8 A/F/G/K-like rows (RV zero point -4.7 km/s) and the number of rows of each star."""
    spec = model["spectra"]
    lo, hi = spec["lrs_teff_range"]
    targets = _targets(stars, spec["lrs_g_range"], coverage, coverage, spec, rng)
    targets = targets[(stars["teff"][targets] >= lo) & (stars["teff"][targets] <= hi)]
    n_obs = 1 + rng.integers(0, spec["lrs_nobs_max"], len(targets))
    idx = np.repeat(targets, n_obs)
    n = len(idx)
    nights = rng.integers(_mjd(spec["lrs_epoch_range"][0]), _mjd(spec["lrs_epoch_range"][1]) + 1, n)
    mjd = nights + rng.uniform(*_UTC_NIGHT, n)
    snr = spec["lrs_snr_at_g9"] * 10 ** (-0.2 * (stars["G"][idx] - 9.0)) * rng.lognormal(0.0, 0.3, n)
    rv_err = error_law(snr, *spec["lrs_rv_err"])
    feh_err = error_law(snr, *spec["lrs_feh_err"])
    teff_err, logg_err = error_law(snr, 30.0, 2500.0), error_law(snr, 0.04, 3.0)
    rv = (stars["rv"][idx] + _binary_offsets(stars, idx, mjd, rng) + spec["lrs_rv_zero_point_kms"])
    ra, dec = _propagate(stars, idx, mjd, spec["fibre_noise_arcsec"], rng)
    bias = stars["bias"]
    rows = {
        "obsid": LRS_OBSID_BASE + (index + 1) * IDS_PER_CLUSTER + np.arange(n, dtype=np.int64),
        "designation": np.repeat(designations(stars["ra"][targets], stars["dec"][targets]), n_obs),
        "obsdate": _iso_dates(nights),
        "lmjd": np.floor(mjd + 8.0 / 24.0).astype(np.int32),
        "gaia_source_id": np.where(stars["has_id_lrs"][idx], stars["source_id"][idx], MISSING_ID),
        "ra": ra, "dec": dec, "snrg": snr.astype(np.float32),
        "rv": _measure(rv, rv_err, rng), "rv_err": _reported(rv_err, rng),
        "teff": _measure(stars["teff"][idx], teff_err, rng), "teff_err": _reported(teff_err, rng),
        "logg": _measure(stars["logg"][idx] + bias["logg"][idx], logg_err, rng),
        "logg_err": _reported(logg_err, rng),
        "feh": _measure(stars["fe_h"][idx] + bias["feh"][idx], feh_err, rng), "feh_err": _reported(feh_err, rng),
        "class": np.full(n, "STAR"), "subclass": _subclass(stars["teff"][idx]),
    }
    return rows, _rows_per_star(len(stars["G"]), idx)


def prepare_stars(stars: dict, model: dict[str, Any], rng: np.random.Generator) -> None:
    """Per-star spectroscopic properties shared by MRS and LRS: biases and Gaia ids present."""
    spec = model["spectra"]
    stars["bias"] = _systematics(stars, spec, rng)
    stars["has_id_mrs"] = _gaia_ids_in_spectra(stars, spec, rng)
    stars["has_id_lrs"] = _gaia_ids_in_spectra(stars, spec, rng)
