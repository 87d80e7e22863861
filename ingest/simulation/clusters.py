"""Cluster structure (size, richness, internal dispersion, names) and the
Hunt & Reffert 2024-format cluster table with its observational noise."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ingest.core.constants import KMS_PER_MASYR_KPC
from ingest.simulation.presets import Preset



def cluster_names(n: int) -> np.ndarray:
    """Synthetic names in Hunt & Reffert's underscore style; never a real cluster's name."""
    return np.array([f"OCSim_{i:04d}" for i in range(1, n + 1)])


def alias_names(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A second designation (like MWSC/FSR numbers) for a fraction of clusters, else ''."""
    has_alias = rng.random(n) < fraction
    numbers = rng.permutation(np.arange(100, 100 + n))
    return np.where(has_alias, np.char.add("SimCat_", numbers.astype(str)), "")


def add_structure(clusters: pd.DataFrame, p: Preset, model: dict[str, Any],
                  rng: np.random.Generator) -> pd.DataFrame:
    """Names, r50, internal RV dispersion and member counts (true members and contaminants)."""
    cfg = model["clusters"]
    n = len(clusters)
    out = clusters.copy()
    out.insert(0, "name", cluster_names(n))
    out.insert(1, "alias", alias_names(n, cfg["alias_fraction"], rng))
    out["r50_pc"] = rng.uniform(*cfg["r50_pc"], n)
    out["sigma_int"] = rng.uniform(*cfg["sigma_int_kms"], n)
    lo, hi = cfg["members_range"]
    n_true = np.clip(np.round(rng.lognormal(np.log(p.members_median), cfg["members_sigma"], n)), lo, hi)
    out["n_members"] = n_true.astype(np.int64)
    out["n_contaminants"] = rng.binomial(out["n_members"].to_numpy(), cfg["contaminant_fraction"])
    out["has_gaia_rv"] = rng.random(n) < cfg["rv_fraction"]
    return out


def _hunt_astrometry(c: pd.DataFrame, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Cluster mean astrometry: errors of the mean shrink with the number of stars."""
    n_stars = (c["n_members"] + c["n_contaminants"]).to_numpy()
    d_kpc = c["dist_pc"].to_numpy() / 1000.0
    s_pm = np.hypot(c["sigma_int"].to_numpy() / (KMS_PER_MASYR_KPC * d_kpc), 0.05)
    e_pm = s_pm / np.sqrt(n_stars)
    plx = 1.0 / d_kpc
    s_plx = np.hypot(0.05, 0.02 * plx)
    e_plx = s_plx / np.sqrt(n_stars)
    plx_obs = plx + rng.normal(0.0, e_plx)
    frac = np.hypot(e_plx, 0.01) / plx
    dist50 = c["dist_pc"].to_numpy() * (1.0 + rng.normal(0.0, frac))
    return {
        "pmRA": c["pmra"].to_numpy() + rng.normal(0.0, e_pm), "s_pmRA": s_pm, "e_pmRA": e_pm,
        "pmDE": c["pmdec"].to_numpy() + rng.normal(0.0, e_pm), "s_pmDE": s_pm, "e_pmDE": e_pm,
        "Plx": plx_obs, "s_Plx": s_plx, "e_Plx": e_plx,
        "dist16": dist50 * (1.0 - frac), "dist50": dist50, "dist84": dist50 * (1.0 + frac),
    }


def _hunt_rv(c: pd.DataFrame, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Gaia DR3-like cluster RVs for a subset: few bright stars, each with ~1-3 km/s errors."""
    n = len(c)
    n_rv = np.where(c["has_gaia_rv"], 1 + rng.poisson(0.08 * c["n_members"].to_numpy()), 0)
    star_err = rng.uniform(1.0, 3.0, n)
    s_rv = np.hypot(c["sigma_int"].to_numpy(), star_err)
    e_rv = s_rv / np.sqrt(np.maximum(n_rv, 1))
    rv = c["rv"].to_numpy() + rng.normal(0.0, e_rv)
    missing = n_rv == 0
    return {"RV": np.where(missing, np.nan, rv), "s_RV": np.where(missing | (n_rv < 2), np.nan, s_rv),
            "e_RV": np.where(missing, np.nan, e_rv), "n_RV": n_rv.astype(np.int32)}


def hunt_cluster_table(c: pd.DataFrame, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The observed cluster table, VizieR J/A+A/686/A42 column names, from the truth ``c``."""
    n = len(c)
    d_kpc = c["dist_pc"].to_numpy() / 1000.0
    astrometry = _hunt_astrometry(c, rng)
    dist50 = astrometry["dist50"]
    scale = dist50 / c["dist_pc"].to_numpy()
    log_age_err = rng.uniform(0.05, 0.25, n)
    log_age = c["logage"].to_numpy() + rng.normal(0.0, log_age_err)
    all_names = np.where(c["alias"] != "", np.char.add(np.char.add(c["name"].to_numpy().astype(str), ","),
                                                      c["alias"].to_numpy().astype(str)), c["name"])
    return {
        "Name": c["name"].to_numpy(), "ID": np.arange(1, n + 1, dtype=np.int32), "AllNames": all_names,
        "RA_ICRS": c["ra"].to_numpy(), "DE_ICRS": c["dec"].to_numpy(),
        "GLON": c["glon"].to_numpy(), "GLAT": c["glat"].to_numpy(),
        "r50": np.degrees(c["r50_pc"].to_numpy() / (1000.0 * d_kpc)),
        "N": (c["n_members"] + c["n_contaminants"]).to_numpy().astype(np.int32),
        **astrometry,
        "X": 1000.0 * c["x"].to_numpy() * scale, "Y": 1000.0 * c["y"].to_numpy() * scale,
        "Z": 1000.0 * c["z"].to_numpy() * scale,
        **_hunt_rv(c, rng),
        "logAge16": log_age - log_age_err, "logAge50": log_age, "logAge84": log_age + log_age_err,
        "AV50": np.clip(c["av"].to_numpy() + rng.normal(0.0, 0.05, n), 0.0, None),
        "CST": 5.0 + 40.0 * rng.random(n) * np.sqrt(c["n_members"].to_numpy() / 100.0),
    }
