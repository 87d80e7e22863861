"""The cluster population: Galactic positions, ages, chemistry and space motions.

Positions are drawn in the disc (surface density falling with R_gc, selected
by heliocentric distance as a magnitude-limited survey would be), or taken
from a real Hunt & Reffert 2024 table.  Chemistry follows a broken-line
[Fe/H] gradient; velocities follow a flat rotation curve plus a peculiar
velocity, converted to heliocentric observables with astropy's Galactocentric
frame so that the ingest's own conversions are an independent check.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ingest.simulation import binary_pairs
from ingest.core.vocabulary import ELEMENTS


def galactocentric_frame(galaxy: dict[str, Any]):
    """astropy Galactocentric frame with the model's R0, z_sun and Solar motion."""
    import astropy.units as u
    from astropy.coordinates import CartesianDifferential, Galactocentric

    u_sun, v_sun, w_sun = galaxy["solar_motion_kms"]
    return Galactocentric(
        galcen_distance=galaxy["r0_kpc"] * u.kpc,
        z_sun=galaxy["z_sun_pc"] * u.pc,
        galcen_v_sun=CartesianDifferential([u_sun, galaxy["v_circ_kms"] + v_sun, w_sun] * u.km / u.s))


def _disc_positions(n: int, galaxy: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """(n, 2) Galactocentric x, y (kpc) by rejection: exp(-R/h) disc times exp(-d/s) visibility."""
    r0 = galaxy["r0_kpc"]
    d_max = galaxy["max_distance_kpc"]
    r_lo, r_hi = galaxy["rgc_range_kpc"]
    accepted: list[np.ndarray] = []
    total = 0
    while total < n:
        xy = rng.uniform(-d_max, d_max, size=(4 * n, 2))
        dist = np.hypot(xy[:, 0], xy[:, 1])
        rgc = np.hypot(xy[:, 0] - r0, xy[:, 1])
        weight = (np.exp(-(rgc - r_lo) / galaxy["disc_scale_length_kpc"])
                  * np.exp(-dist / galaxy["visibility_scale_kpc"]))
        keep = (dist < d_max) & (dist > 0.05) & (rgc >= r_lo) & (rgc <= r_hi)
        keep &= rng.random(len(xy)) < weight
        accepted.append(xy[keep])
        total += int(keep.sum())
    helio = np.concatenate(accepted)[:n]
    nearby = rng.random(n) < galaxy["nearby_fraction"]
    helio[nearby] = _nearby_positions(int(nearby.sum()), galaxy, rng)
    return np.column_stack([helio[:, 0] - r0, helio[:, 1]])


def _nearby_positions(n: int, galaxy: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """Heliocentric x, y (kpc) of the few clusters within a few hundred pc, whose large proper
    motions make epoch propagation matter for a 3.5" match."""
    dist = rng.uniform(*galaxy["nearby_distance_pc"], n) / 1000.0
    angle = rng.uniform(0.0, 2 * np.pi, n)
    return np.column_stack([dist * np.cos(angle), dist * np.sin(angle)])


def _log_ages(n: int, galaxy: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    lo, hi = galaxy["log_age_range"]
    ages = rng.normal(galaxy["log_age_mean"], galaxy["log_age_sigma"], size=4 * n + 100)
    return ages[(ages >= lo) & (ages <= hi)][:n]


def _scale_height_pc(log_age: np.ndarray, galaxy: dict[str, Any]) -> np.ndarray:
    a, b = galaxy["scale_height_pc"]
    return a + b * np.sqrt(10 ** (log_age - 9.0))


def feh_gradient(r_gc: np.ndarray, gradient: dict[str, Any]) -> np.ndarray:
    """The injected broken-line [Fe/H](R_gc), continuous at the knee."""
    knee = gradient["knee_kpc"]
    at_knee = gradient["intercept"] + gradient["slope_inner"] * knee
    slope = np.where(r_gc < knee, gradient["slope_inner"], gradient["slope_outer"])
    return at_knee + slope * (r_gc - knee)


def salaris_mh(feh: np.ndarray, alpha_m: np.ndarray) -> np.ndarray:
    """[M/H] from [Fe/H] and alpha enhancement (Salaris et al. 1993)."""
    return feh + np.log10(0.638 * 10 ** alpha_m + 0.362)


def _chemistry(r_gc: np.ndarray, log_age: np.ndarray, model: dict[str, Any],
               rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = len(r_gc)
    grad, alpha = model["gradient"], model["alpha"]
    r0 = model["galaxy"]["r0_kpc"]
    feh = feh_gradient(r_gc, grad) + rng.normal(0.0, grad["scatter"], n)
    alpha_m = (alpha["at_r0"] + alpha["slope_per_kpc"] * (r_gc - r0)
               + alpha["per_gyr"] * 10 ** (log_age - 9.0) + rng.normal(0.0, alpha["scatter"], n))
    chem = {"fe_h": feh, "alpha_m": alpha_m, "m_h": salaris_mh(feh, alpha_m)}
    for element in ELEMENTS:
        base, slope, scatter = model["elements"][element]
        chem[f"{element}_fe"] = base + slope * (r_gc - r0) + rng.normal(0.0, scatter, n)
    return chem


def _space_velocities(x: np.ndarray, y: np.ndarray, log_age: np.ndarray,
                      galaxy: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """(n, 3) Galactocentric velocities: flat circular rotation plus a peculiar velocity."""
    r = np.hypot(x, y)
    v_c = galaxy["v_circ_kms"]
    heating = np.sqrt(1.0 + 10 ** (log_age - 9.0))[:, None]
    peculiar = rng.normal(0.0, 1.0, (len(x), 3)) * np.asarray(galaxy["peculiar_velocity_kms"]) * heating
    rotation = np.column_stack([v_c * y / r, -v_c * x / r, np.zeros_like(r)])
    return rotation + peculiar


def _observables(x, y, z, v, galaxy: dict[str, Any]) -> dict[str, np.ndarray]:
    """ICRS position, distance, proper motion and RV, and heliocentric Galactic X, Y, Z."""
    import astropy.units as u
    from astropy.coordinates import ICRS, SkyCoord

    frame = galactocentric_frame(galaxy)
    gc = SkyCoord(x=x * u.kpc, y=y * u.kpc, z=z * u.kpc,
                  v_x=v[:, 0] * u.km / u.s, v_y=v[:, 1] * u.km / u.s, v_z=v[:, 2] * u.km / u.s,
                  frame=frame)
    icrs = gc.transform_to(ICRS())
    gal = icrs.galactic
    helio = gal.cartesian.xyz.to_value(u.kpc)
    return {
        "ra": icrs.ra.deg, "dec": icrs.dec.deg, "glon": gal.l.deg, "glat": gal.b.deg,
        "dist_pc": icrs.distance.to_value(u.pc),
        "pmra": icrs.pm_ra_cosdec.to_value(u.mas / u.yr), "pmdec": icrs.pm_dec.to_value(u.mas / u.yr),
        "rv": icrs.radial_velocity.to_value(u.km / u.s),
        "x": helio[0], "y": helio[1], "z": helio[2],
    }


def _galactocentric_xyz_kpc(position, galaxy: dict[str, Any]) -> np.ndarray:
    """(3, n) Galactocentric x, y, z (kpc) of an astropy SkyCoord with distances."""
    import astropy.units as u

    return position.transform_to(galactocentric_frame(galaxy)).cartesian.xyz.to_value(u.kpc)


def _sky(lon_deg, lat_deg, distance, frame: str):
    """A SkyCoord of longitudes and latitudes (deg) with ``distance`` (an astropy Quantity)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    return SkyCoord(lon_deg * u.deg, lat_deg * u.deg, distance=distance, frame=frame)


def _inject_pairs(x: np.ndarray, y: np.ndarray, z: np.ndarray, log_age: np.ndarray,
                  velocity: np.ndarray, model: dict[str, Any], rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Move one partner next to each chosen primary (in place), the first pair to the
    h & chi Persei-like position; returns the rows of primaries and of their partners."""
    cfg, galaxy = model["binary_pairs"], model["galaxy"]
    sky = _observables(x, y, z, velocity, galaxy)
    primaries, partners = binary_pairs.choose_pairs(sky["dist_pc"], sky["dec"], cfg, rng)
    if not len(primaries):
        return primaries, partners
    hchi = cfg["h_chi_persei"]
    import astropy.units as u

    glon, glat, dist_kpc = binary_pairs.h_chi_persei_like(hchi)
    hchi_xyz = _galactocentric_xyz_kpc(_sky(glon, glat, dist_kpc * u.kpc, "galactic"), galaxy)
    first = primaries[:1]
    x[first], y[first], z[first] = hchi_xyz[:, :1]
    log_age[first] = hchi["log_age"]
    velocity[first] = _space_velocities(x[first], y[first], log_age[first], galaxy, rng)
    d_pos, d_vel = binary_pairs.partner_offsets(len(primaries), cfg, rng)
    x[partners], y[partners], z[partners] = (np.column_stack([x, y, z])[primaries] + d_pos).T
    x[partners[:1]], y[partners[:1]], z[partners[:1]] = hchi_xyz[:, 1:]
    velocity[partners] = velocity[primaries] + d_vel
    log_age[partners] = log_age[primaries] + rng.normal(0.0, cfg["dlogage"], len(primaries))
    return primaries, partners


def read_cluster_catalogue(path: Path, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Positions, distances, ages and extinctions of up to ``n`` clusters of a real HUNT2024.csv."""
    from ingest.core.errors import InputError

    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read the cluster catalogue: {exc}") from None
    needed = ["RA_ICRS", "DE_ICRS", "dist50", "logAge50", "AV50"]
    for column in needed:
        if column not in table.columns:
            raise InputError(path, "missing; a Hunt & Reffert 2024 cluster table is expected "
                             f"(columns {', '.join(needed)})", column=column)
        if not pd.api.types.is_numeric_dtype(table[column]):
            raise InputError(path, "must be numeric", column=column)
    usable = table[needed].dropna()
    usable = usable[(usable["dist50"] > 0) & (usable["dist50"] < 20000)]
    if usable.empty:
        raise InputError(path, "no row has finite RA_ICRS, DE_ICRS, dist50, logAge50 and AV50")
    take = np.sort(rng.choice(len(usable), size=min(n, len(usable)), replace=False))
    return usable.iloc[take].reset_index(drop=True)


def draw_clusters(n: int, model: dict[str, Any], rng: np.random.Generator,
                  catalogue: Path | None = None,
                  pairs_rng: np.random.Generator | None = None) -> pd.DataFrame:
    """The true cluster population (one row per cluster), ordered as drawn.  With
    ``pairs_rng`` and no real ``catalogue`` (whose positions stay as published), binary
    pairs are injected; ``partner`` is each cluster's pair partner row (-1: none)."""
    galaxy = model["galaxy"]
    if catalogue is None:
        xy = _disc_positions(n, galaxy, rng)
        log_age = _log_ages(n, galaxy, rng)
        z = rng.normal(0.0, _scale_height_pc(log_age, galaxy) / 1000.0) + galaxy["z_sun_pc"] / 1000.0
        x, y = xy[:, 0], xy[:, 1]
        av = None
    else:
        real = read_cluster_catalogue(catalogue, n, rng)
        import astropy.units as u

        x, y, z = _galactocentric_xyz_kpc(_sky(real["RA_ICRS"].to_numpy(), real["DE_ICRS"].to_numpy(),
                                               real["dist50"].to_numpy() * u.pc, "icrs"), galaxy)
        log_age = real["logAge50"].to_numpy(dtype=float)
        av = real["AV50"].to_numpy(dtype=float)
    velocity = _space_velocities(x, y, log_age, galaxy, rng)
    primaries = partners = np.empty(0, int)
    if catalogue is None and pairs_rng is not None:
        primaries, partners = _inject_pairs(x, y, z, log_age, velocity, model, pairs_rng)
    clusters = pd.DataFrame(_observables(x, y, z, velocity, galaxy))
    clusters["r_gc"] = np.hypot(x, y)
    clusters["z_gc"] = z
    clusters["logage"] = log_age
    if av is None:
        av = galaxy["extinction_mag_per_kpc"] * clusters["dist_pc"].to_numpy() / 1000.0
        av = av * np.exp(-np.abs(clusters["z"].to_numpy()) / 0.15) * rng.lognormal(0.0, 0.3, len(x))
    clusters["av"] = np.clip(av, 0.0, 6.0)
    for name, values in _chemistry(clusters["r_gc"].to_numpy(), log_age, model, rng).items():
        values[partners] = values[primaries]      # born from one cloud
        clusters[name] = values
    clusters["partner"] = -1
    clusters.loc[primaries, "partner"], clusters.loc[partners, "partner"] = partners, primaries
    return clusters
