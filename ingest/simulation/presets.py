"""Simulation sizes (presets) and the physical model with its injected truth.

Every number the simulator injects lives here, so that simulation.json can
record it and the tests can compare the written files against it.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Preset:
    """How much to simulate.  Output never depends on ``block_clusters``
    (every cluster has its own random stream); it only bounds memory."""

    name: str
    n_clusters: int
    members_median: float        # median members per cluster (lognormal, sigma 0.8)
    field_spectra_stars: float   # mean field stars with MRS spectra per cluster
    mrs_coverage: float          # chance a member in footprint and G 9-15 has MRS spectra
    lrs_coverage: float          # chance a star in footprint and G 9-17 has LRS spectra
    block_clusters: int          # clusters generated and written per chunk


PRESETS = {
    "demo": Preset("demo", n_clusters=300, members_median=190.0, field_spectra_stars=40.0,
                   mrs_coverage=0.75, lrs_coverage=0.3, block_clusters=100),
    "full": Preset("full", n_clusters=7000, members_median=135.0, field_spectra_stars=480.0,
                   mrs_coverage=0.75, lrs_coverage=0.3, block_clusters=100),
}

_MODEL: dict[str, Any] = {
    "galaxy": {
        "r0_kpc": 8.0,                     # Sun-Galactic centre distance (thesis value)
        "z_sun_pc": 20.8,
        "v_circ_kms": 233.0,               # flat rotation curve
        "solar_motion_kms": [11.1, 12.24, 7.25],
        "rgc_range_kpc": [5.0, 17.0],
        "disc_scale_length_kpc": 6.0,      # surface density exp(-R/h) of the observed sample
        "visibility_scale_kpc": 3.0,       # heliocentric selection exp(-d/s)
        "max_distance_kpc": 9.0,
        "nearby_fraction": 0.02,           # Hyades/Pleiades-like clusters, large proper motions
        "nearby_distance_pc": [45.0, 250.0],
        "scale_height_pc": [70.0, 80.0],   # h_z = a + b * sqrt(age / Gyr)
        "peculiar_velocity_kms": [10.0, 7.0, 5.0],  # U, V, W dispersion (x sqrt(1 + age/Gyr))
        "log_age_mean": 8.25, "log_age_sigma": 0.6, "log_age_range": [7.0, 9.7],
        "extinction_mag_per_kpc": 0.7,
    },
    "gradient": {
        "intercept": 0.33,                 # [Fe/H] at R_gc = 0 of the inner line
        "slope_inner": -0.047,             # dex/kpc, R_gc < knee
        "slope_outer": -0.014,             # dex/kpc, R_gc >= knee (continuous at the knee)
        "knee_kpc": 11.5,
        "scatter": 0.05,                   # intrinsic cluster-to-cluster scatter (dex)
    },
    "alpha": {"at_r0": 0.02, "slope_per_kpc": 0.004, "per_gyr": 0.01, "scatter": 0.02},
    # [X/Fe] at R0, slope with R_gc (dex/kpc) and cluster-to-cluster scatter.
    "elements": {
        "c": [-0.05, 0.005, 0.05], "n": [0.10, 0.000, 0.08], "o": [0.05, 0.006, 0.06],
        "mg": [0.02, 0.004, 0.03], "al": [0.00, 0.002, 0.05], "si": [0.01, 0.003, 0.03],
        "s": [0.00, 0.004, 0.08], "ca": [0.02, 0.003, 0.03], "ti": [0.00, 0.002, 0.04],
        "cr": [-0.01, 0.000, 0.03], "ni": [0.00, -0.002, 0.03], "cu": [-0.05, 0.003, 0.08],
    },
    # Physical pairs (ingest/simulation/binary_pairs.py): partners a few pc from their
    # primary, moving with it to dv_kms, same age (to dlogage) and chemistry.  Nearer than
    # 1 kpc the simulated distance errors (>= 1%) still let a 20 pc pair be shown close.
    "binary_pairs": {
        "n_pairs": 6, "dist_kpc": [0.3, 1.0], "min_dec_deg": 0.0,
        "sep_pc": [6.0, 18.0], "dv_kms": 1.0, "dlogage": 0.02,
        "h_chi_persei": {"glon_deg": 134.6, "glat_deg": -3.7, "dist_kpc": 0.9,
                         "sep_pc": 16.0, "log_age": 7.15},
    },
    "clusters": {
        "members_sigma": 0.8, "members_range": [15, 4000],
        "contaminant_fraction": 0.12,      # field stars in the member list (mostly Prob < 0.5)
        "r50_pc": [1.0, 6.0],
        "sigma_int_kms": [0.5, 2.0],
        "rv_fraction": 0.6,                # clusters with a Gaia DR3 RV (n_RV >= 1)
        "alias_fraction": 0.3,             # clusters with a second name in AllNames
    },
    "stars": {
        "g_limit": 18.0,
        "imf_slope": 2.3,
        "binary_fraction": 0.04,
        "binary_k_kms": [10.0, 40.0],      # RV semi-amplitude of binaries
        "star_abundance_scatter": 0.02,
        "neighbour_fraction": 0.02,        # members with an unrelated star within 3.5"
        "neighbour_sep_arcsec": [0.8, 3.4],
    },
    "spectra": {
        "dec_min_deg": -10.0,
        "mrs_g_range": [9.0, 15.0],
        "lrs_g_range": [9.0, 17.0],
        "epoch_range": ["2018-09-01", "2023-06-30"],
        "nights_per_field": 30,
        "nobs_mean": 5.0, "nobs_shape": 0.9,   # 1 + negative binomial
        "snr_at_g9": 300.0, "snr_log_scatter": 0.45,
        "rv_err": [0.6, 60.0],             # err = hypot(a, b / snr) km/s
        "rv_err_underestimate": 1.0,       # reported MRS RV errors = true / this (1: exact)
        "night_zp_jitter_kms": 0.0,        # per-night MRS RV zero-point scatter (0: none)
        "teff_err": [25.0, 1500.0], "logg_err": [0.03, 1.5], "feh_err": [0.04, 1.3],
        "xfe_err": [0.04, 1.8],
        "rv_flag_fraction": 0.03, "rv_flag_outlier_kms": 30.0,
        "band_fractions": {"BR": 0.88, "B": 0.06, "R": 0.06},
        "fibre_noise_arcsec": 0.1,
        "missing_gaia_id_fraction": 0.1,
        "neighbour_missing_gaia_id_fraction": 0.5,
        "cool_dwarf": {"teff_max": 5000.0, "logg_min": 4.0, "bias": [-0.2, -0.3]},
        "hot_teff": 7500.0, "hot_feh_scatter": 0.3,
        "very_cool_teff": 4000.0, "very_cool_feh_bias": -0.3, "very_cool_feh_scatter": 0.2,
        "abundance_missing": {"c": 0.05, "n": 0.10, "o": 0.30, "mg": 0.03, "al": 0.10,
                              "si": 0.03, "s": 0.40, "ca": 0.05, "ti": 0.10, "cr": 0.10,
                              "ni": 0.05, "cu": 0.30},
        "cnn_teff_max": 7000.0,            # CNN abundances NaN for hotter stars
        "lrs_rv_zero_point_kms": -4.7,
        "lrs_rv_err": [2.5, 120.0], "lrs_feh_err": [0.03, 3.0],
        "lrs_nobs_max": 3, "lrs_epoch_range": ["2011-10-01", "2020-06-30"],
        "lrs_snr_at_g9": 500.0, "lrs_teff_range": [3800.0, 8500.0],
    },
    "literature": {
        "litA": {"file": "literature_a.csv", "fraction": 0.45, "rv_offset": 0.3,
                 "rv_noise": 0.5, "feh_offset": 0.03, "feh_noise": 0.04, "mg_fe": True},
        "litB": {"file": "literature_b.csv", "fraction": 0.65, "rv_offset": -4.7,
                 "rv_noise": 3.0, "feh_offset": -0.05, "feh_noise": 0.10, "mg_fe": False},
    },
}


def model() -> dict[str, Any]:
    """A fresh copy of the physical model (the injected truth and noise laws)."""
    return copy.deepcopy(_MODEL)


def preset(name: str) -> Preset:
    """The named preset; a clear error lists the valid names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None


def scaled(p: Preset, scale: float) -> Preset:
    """``p`` with ``scale`` times its clusters: members and spectra come per cluster, so
    every input file grows linearly with ``scale`` (benchmarks of how cost grows).
    Scale 1 returns ``p`` itself, so the default products stay byte-identical."""
    if not scale > 0:
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    if scale == 1:
        return p
    n_clusters = max(1, round(p.n_clusters * scale))
    return replace(p, name=f"{p.name}-x{scale:g}", n_clusters=n_clusters)


def describe(p: Preset) -> dict[str, Any]:
    """The preset as a JSON-ready dict for simulation.json."""
    return asdict(p)
