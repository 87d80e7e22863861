"""Stars around one cluster: members on an isochrone-like sequence, membership
contaminants, field stars that LAMOST observed, and unrelated neighbours
within a fibre radius of members.  Each star carries its true parameters and
its Gaia DR3-like astrometry and photometry at epoch 2016.0.

The sequence is deliberately simple (power-law mass-luminosity relation,
main-sequence brightening, a subgiant and a red-giant branch, Andrae et al.
2018 bolometric corrections): realistic enough for magnitude cuts, Kiel
diagrams and the Teff/logg regimes that the QC of Fu et al. 2022 removes.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ingest.core.constants import KMS_PER_MASYR_KPC
from ingest.simulation.galaxy import salaris_mh
from ingest.core.vocabulary import ELEMENTS, XFE

KIND_MEMBER, KIND_CONTAMINANT, KIND_FIELD, KIND_NEIGHBOUR = 0, 1, 2, 3
SOURCE_ID_BASE = 1_000_000_000_000_000
IDS_PER_CLUSTER = 1_000_000
T_SUN = 5772.0

_BC_G = (6.000e-02, 6.731e-05, -6.647e-08, 2.859e-11, -7.197e-15)   # Andrae+2018, 4000-8000 K
_BC_COOL_SLOPE = 0.8 / 700.0   # mag/K below 4000 K (BC_G ~ -1.3 at 3300 K)


def turnoff_mass(log_age: float) -> float:
    """Main-sequence turn-off mass (Msun) for t_MS = 10 Gyr * M^-2.5."""
    return float(10 ** (-0.4 * (log_age - 10.0)))


def _main_sequence(mass: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    teff = np.where(mass >= 0.5, T_SUN * mass ** 0.57, 2900.0 + 2475.0 * (mass - 0.1))
    log_l = np.where(mass > 0.43, 4.0 * np.log10(mass), np.log10(0.23) + 2.3 * np.log10(mass))
    return teff, log_l


def sequence(mass: np.ndarray, log_age: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Teff (K), logg and log L/Lsun on an isochrone-like sequence of age 10**log_age yr."""
    m_to = turnoff_mass(log_age)
    x = mass / m_to
    teff, log_l = _main_sequence(mass)
    evolved = np.clip(x, 0.0, 0.92) ** 3
    teff = teff * (1.0 - 0.05 * evolved)
    log_l = log_l + np.log10(1.0 + 1.2 * evolved)
    teff_to, log_l_to = _main_sequence(np.array(0.92 * m_to))
    teff_to, log_l_to = teff_to * (1.0 - 0.05 * 0.92 ** 3), log_l_to + np.log10(1.0 + 1.2 * 0.92 ** 3)
    sub = np.clip((x - 0.92) / 0.08, 0.0, 1.0)
    giant = np.clip((x - 1.0) / 0.08, 0.0, 1.0)
    is_sub, is_giant = (x >= 0.92) & (x < 1.0), x >= 1.0
    teff = np.where(is_sub, teff_to * (1 - sub) + 4950.0 * sub, teff)
    log_l = np.where(is_sub, log_l_to + 0.3 * sub, log_l)
    teff = np.where(is_giant, 4900.0 - 500.0 * giant, teff)
    log_l = np.where(is_giant, log_l_to + 0.3 + 2.2 * giant, log_l)
    log_r = 0.5 * log_l - 2.0 * np.log10(teff / T_SUN)
    logg = 4.438 + np.log10(mass) - 2.0 * log_r
    return teff, logg, log_l


def bolometric_correction_g(teff: np.ndarray) -> np.ndarray:
    """Gaia G bolometric correction: Andrae et al. (2018) for 4000-8000 K (held constant
    above), extrapolated linearly below 4000 K."""
    dt = np.clip(teff, 4000.0, 8000.0) - T_SUN
    bc = sum(a * dt ** i for i, a in enumerate(_BC_G))
    return bc - _BC_COOL_SLOPE * np.clip(4000.0 - teff, 0.0, 700.0)


def absolute_g(teff: np.ndarray, log_l: np.ndarray) -> np.ndarray:
    """M_G = M_bol - BC_G."""
    return 4.74 - 2.5 * log_l - bolometric_correction_g(teff)


def intrinsic_bp_rp(teff: np.ndarray) -> np.ndarray:
    """A linear colour-temperature relation in theta = 5040/Teff (Sun: 0.82)."""
    return np.maximum(0.82 + 2.53 * (5040.0 / teff - 0.873), -0.35)


def _power_law(n: int, lo: float, hi: float, slope: float, rng: np.random.Generator) -> np.ndarray:
    """Masses from dN/dM ~ M^-slope between lo and hi (inverse CDF)."""
    k = 1.0 - slope
    return (lo ** k + rng.random(n) * (hi ** k - lo ** k)) ** (1.0 / k)


def _faintest_mass(log_age: float, modulus: float, a_g: float, g_limit: float) -> float:
    """Lowest main-sequence mass brighter than the Gaia-like limit."""
    m_to = turnoff_mass(log_age)
    grid = np.geomspace(0.1, 0.9 * m_to, 200)
    teff, _, log_l = sequence(grid, log_age)
    visible = absolute_g(teff, log_l) + modulus + a_g <= g_limit
    return float(grid[np.argmax(visible)]) if visible.any() else 0.9 * m_to


def _sky_offsets(ra: float, dec: float, dx_deg: np.ndarray, dy_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tangent-plane offsets (deg) to RA, Dec; the fields are small enough for this."""
    return (ra + dx_deg / np.cos(np.radians(dec))) % 360.0, np.clip(dec + dy_deg, -89.999, 89.999)


def _gaia_errors(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gaia DR3-like parallax (mas) and proper-motion (mas/yr) uncertainties versus G."""
    e_plx = np.hypot(0.015, 0.13 * 10 ** (0.2 * (g - 17.0)))
    return e_plx, 1.1 * e_plx


def _photometry(teff, log_l, modulus, av, rng) -> tuple[np.ndarray, np.ndarray]:
    g = absolute_g(teff, log_l) + modulus + 0.83 * av + rng.normal(0.0, 0.003, len(teff))
    bp_rp = intrinsic_bp_rp(teff) + 0.43 * av + rng.normal(0.0, 0.01, len(teff))
    return g, bp_rp


def _members(c: Mapping[str, Any], n: int, model: dict[str, Any], rng: np.random.Generator) -> dict:
    """True members: IMF masses down to the Gaia-like limit, a Gaussian sky profile with the
    cluster's r50, the cluster's motion plus its internal dispersion, its chemistry."""
    cfg = model["stars"]
    log_age, dist = float(c["logage"]), float(c["dist_pc"])
    modulus = 5.0 * np.log10(dist / 10.0)
    m_to = turnoff_mass(log_age)
    m_lo = _faintest_mass(log_age, modulus, 0.83 * c["av"], cfg["g_limit"])
    mass = _power_law(n, m_lo, 1.08 * m_to, cfg["imf_slope"], rng)
    teff, logg, log_l = sequence(mass, log_age)
    is_binary = rng.random(n) < cfg["binary_fraction"]
    g, bp_rp = _photometry(teff, log_l, modulus, c["av"], rng)
    g = g - is_binary * rng.uniform(0.0, 0.75, n)
    sigma_deg = np.degrees(c["r50_pc"] / dist) / 1.1774
    ra, dec = _sky_offsets(c["ra"], c["dec"], rng.normal(0, sigma_deg, n), rng.normal(0, sigma_deg, n))
    star_dist = dist + rng.normal(0.0, c["r50_pc"], n)
    pm_scatter = c["sigma_int"] / (KMS_PER_MASYR_KPC * star_dist / 1000.0)
    scatter = cfg["star_abundance_scatter"]
    chem = {name: c[name] + rng.normal(0.0, scatter, n) for name in _abundance_names()}
    chem["m_h"] = salaris_mh(chem["fe_h"], chem["alpha_m"])
    return {
        "kind": np.full(n, KIND_MEMBER), "ra": ra, "dec": dec, "dist_pc": star_dist,
        "pmra": c["pmra"] + rng.normal(0.0, 1.0, n) * pm_scatter,
        "pmdec": c["pmdec"] + rng.normal(0.0, 1.0, n) * pm_scatter,
        "rv": c["rv"] + rng.normal(0.0, c["sigma_int"], n),
        "teff": teff, "logg": logg, "G": g, "bp_rp": bp_rp, "is_binary": is_binary,
        "prob": rng.beta(6.0, 1.0, n), **chem,
    }


def _abundance_names() -> list[str]:
    return ["fe_h", "alpha_m", *XFE]


def _field_parameters(n: int, model: dict[str, Any], rng: np.random.Generator) -> dict:
    """Teff, logg and chemistry of disc field stars: dwarfs, giants, a few hot and M stars."""
    kind = rng.choice(4, size=n, p=[0.62, 0.28, 0.05, 0.05])
    teff = np.select([kind == 0, kind == 1, kind == 2],
                     [rng.uniform(4300, 6800, n), rng.uniform(4200, 5200, n), rng.uniform(7000, 9500, n)],
                     rng.uniform(3400, 4000, n))
    logg = np.select([kind == 0, kind == 1, kind == 2],
                     [rng.uniform(4.0, 4.6, n), rng.uniform(1.8, 3.3, n), rng.uniform(3.8, 4.3, n)],
                     rng.uniform(4.5, 4.9, n))
    feh = np.clip(rng.normal(-0.15, 0.25, n), -2.0, 0.5)
    alpha_m = np.clip(0.05 - 0.2 * feh, -0.05, 0.35) + rng.normal(0.0, 0.03, n)
    chem = {"fe_h": feh, "alpha_m": alpha_m, "m_h": salaris_mh(feh, alpha_m)}
    for element in ELEMENTS:
        chem[f"{element}_fe"] = model["elements"][element][0] + rng.normal(0.0, 0.08, n)
    return {"teff": teff, "logg": logg, "is_binary": rng.random(n) < model["stars"]["binary_fraction"],
            **chem}


def _field_kinematics(n: int, rng: np.random.Generator) -> dict:
    dist = rng.uniform(200.0, 4000.0, n)
    return {"dist_pc": dist, "pmra": rng.normal(-1.0, 8.0, n), "pmdec": rng.normal(-2.0, 8.0, n),
            "rv": rng.normal(0.0, 40.0, n)}


def _g_magnitudes(n: int, lo: float, hi: float, rng: np.random.Generator) -> np.ndarray:
    """G between lo and hi with counts rising as 10**(0.3 G), like a magnitude-limited sample."""
    a, b = 10 ** (0.3 * lo), 10 ** (0.3 * hi)
    return np.log10(a + rng.random(n) * (b - a)) / 0.3


def _contaminants(c: Mapping[str, Any], n: int, model: dict[str, Any], rng: np.random.Generator) -> dict:
    """Field stars in the member list: astrometry close to the cluster's, mostly low Prob."""
    stars = _field_parameters(n, model, rng)
    sigma_deg = 2.0 * np.degrees(c["r50_pc"] / c["dist_pc"])
    ra, dec = _sky_offsets(c["ra"], c["dec"], rng.normal(0, sigma_deg, n), rng.normal(0, sigma_deg, n))
    pm_spread = 0.5 + 3.0 * c["sigma_int"] / (KMS_PER_MASYR_KPC * c["dist_pc"] / 1000.0)
    g = _g_magnitudes(n, 9.0, model["stars"]["g_limit"], rng)
    return {**stars, "kind": np.full(n, KIND_CONTAMINANT), "ra": ra, "dec": dec,
            "dist_pc": c["dist_pc"] * rng.uniform(0.8, 1.25, n),
            "pmra": c["pmra"] + rng.normal(0.0, pm_spread, n), "pmdec": c["pmdec"] + rng.normal(0.0, pm_spread, n),
            "rv": rng.normal(0.0, 40.0, n), "G": g, "bp_rp": intrinsic_bp_rp(stars["teff"]) + 0.43 * c["av"],
            "prob": rng.uniform(0.02, 0.7, n)}


def _field(c: Mapping[str, Any], n: int, model: dict[str, Any], rng: np.random.Generator) -> dict:
    """Non-members LAMOST observed in the cluster's field (MRS targets, G 9-15)."""
    stars = _field_parameters(n, model, rng)
    radius = max(4.0 * np.degrees(c["r50_pc"] / c["dist_pc"]), 0.2)
    r = radius * np.sqrt(rng.random(n))
    angle = rng.uniform(0.0, 2 * np.pi, n)
    ra, dec = _sky_offsets(c["ra"], c["dec"], r * np.cos(angle), r * np.sin(angle))
    g = _g_magnitudes(n, *model["spectra"]["mrs_g_range"], rng)
    return {**stars, **_field_kinematics(n, rng), "kind": np.full(n, KIND_FIELD), "ra": ra, "dec": dec,
            "G": g, "bp_rp": intrinsic_bp_rp(stars["teff"]) + 0.3, "prob": np.full(n, np.nan)}


def _neighbours(members: dict, model: dict[str, Any], rng: np.random.Generator) -> dict:
    """Unrelated stars within a fibre radius of some bright members (blends for positional matching)."""
    g_lo, g_hi = model["spectra"]["mrs_g_range"]
    bright = np.flatnonzero((members["G"] >= g_lo) & (members["G"] <= g_hi))
    hosts = bright[rng.random(len(bright)) < model["stars"]["neighbour_fraction"]]
    n = len(hosts)
    stars = _field_parameters(n, model, rng)
    sep = rng.uniform(*model["stars"]["neighbour_sep_arcsec"], n) / 3600.0
    angle = rng.uniform(0.0, 2 * np.pi, n)
    dec = members["dec"][hosts] + sep * np.sin(angle)
    ra = (members["ra"][hosts] + sep * np.cos(angle) / np.cos(np.radians(dec))) % 360.0
    g = np.minimum(members["G"][hosts] + rng.uniform(0.3, 3.0, n), g_hi)
    return {**stars, **_field_kinematics(n, rng), "kind": np.full(n, KIND_NEIGHBOUR), "ra": ra, "dec": dec,
            "G": g, "bp_rp": intrinsic_bp_rp(stars["teff"]) + 0.3, "prob": np.full(n, np.nan)}


def _concatenate(parts: list[dict]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([np.asarray(part[key]) for part in parts]) for key in parts[0]}


def _add_gaia_observables(stars: dict, rng: np.random.Generator) -> None:
    """Observed parallax and proper motions with G-dependent errors; vsini and binary orbits."""
    n = len(stars["G"])
    e_plx, e_pm = _gaia_errors(stars["G"])
    stars["plx"] = 1000.0 / stars["dist_pc"]
    stars["e_Plx"], stars["e_pm"] = e_plx, e_pm
    stars["Plx"] = stars["plx"] + rng.normal(0.0, e_plx)
    stars["pmRA"] = stars["pmra"] + rng.normal(0.0, e_pm)
    stars["pmDE"] = stars["pmdec"] + rng.normal(0.0, e_pm)
    fast = stars["teff"] > 6500.0
    stars["vsini"] = np.where(fast, rng.lognormal(np.log(40.0), 0.6, n), rng.lognormal(np.log(5.0), 0.5, n))


def cluster_stars(c: Mapping[str, Any], index: int, model: dict[str, Any], field_mean: float,
                  rng: np.random.Generator) -> dict[str, np.ndarray]:
    """All simulated stars of cluster number ``index`` (0-based), with unique Gaia-like ids."""
    members = _members(c, int(c["n_members"]), model, rng)
    parts = [members, _contaminants(c, int(c["n_contaminants"]), model, rng)]
    parts.append(_field(c, int(rng.poisson(field_mean)), model, rng))
    parts.append(_neighbours(members, model, rng))
    stars = _concatenate(parts)
    n = len(stars["G"])
    if n >= IDS_PER_CLUSTER:
        raise ValueError(f"cluster {c['name']}: {n} stars exceed the id space of one cluster")
    _add_gaia_observables(stars, rng)
    stars["binary_k"] = np.where(stars["is_binary"], rng.uniform(*model["stars"]["binary_k_kms"], n), 0.0)
    local = (index + 1) * IDS_PER_CLUSTER + np.arange(n, dtype=np.int64)
    stars["source_id"] = SOURCE_ID_BASE + local
    stars["gp_id"] = local
    stars["cluster_index"] = np.full(n, index, dtype=np.int64)
    return stars
