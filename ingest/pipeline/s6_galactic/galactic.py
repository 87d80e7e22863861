"""Galactic block of the cluster table: positions, velocities and orbits (SPEC section 3.9).

x, y, z are heliocentric Galactic Cartesian coordinates (z includes the Sun's
height z_sun, as in rd.xml); r_gc is the Galactocentric distance in the plane
for the configured R0 and z_sun (galpy's frame, the same one the orbits use);
u, v, w are heliocentric velocities not corrected for the Solar motion.
Orbits come from :mod:`ingest.pipeline.s6_galactic.orbits`; clusters without distance or RV keep
their positions/velocities where possible and get an orbit_flag instead.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from galpy.util import coords

from ingest.core.config import Galactic
from ingest.pipeline.s6_galactic import orbits


def _galactic_lb(ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lb = coords.radec_to_lb(np.asarray(ra, float), np.asarray(dec, float), degree=True)
    return lb[:, 0], lb[:, 1]


def positions(ra: np.ndarray, dec: np.ndarray, dist_kpc: np.ndarray, r0_kpc: float,
              z_sun_kpc: float) -> dict[str, np.ndarray]:
    """Heliocentric x, y (kpc), height z above the plane and Galactocentric r_gc (kpc)."""
    lon, lat = _galactic_lb(ra, dec)
    xyz = coords.lbd_to_XYZ(lon, lat, np.asarray(dist_kpc, float), degree=True)
    # galpy's frame: the Sun at cylindrical radius R0 and height z_sun (as in the orbits).
    galcen = coords.XYZ_to_galcencyl(xyz[:, 0], xyz[:, 1], xyz[:, 2],
                                     Xsun=r0_kpc, Zsun=z_sun_kpc)
    return {"x": xyz[:, 0], "y": xyz[:, 1], "z": galcen[:, 2], "r_gc": galcen[:, 0]}


def velocities(ra: np.ndarray, dec: np.ndarray, dist_kpc: np.ndarray, pmra: np.ndarray,
               pmdec: np.ndarray, rv: np.ndarray) -> dict[str, np.ndarray]:
    """Heliocentric U (towards the Galactic centre), V (rotation), W (north), km/s."""
    ra = np.asarray(ra, float)
    dec = np.asarray(dec, float)
    lon, lat = _galactic_lb(ra, dec)
    pmlb = coords.pmrapmdec_to_pmllpmbb(np.asarray(pmra, float), np.asarray(pmdec, float),
                                        ra, dec, degree=True)
    uvw = coords.vrpmllpmbb_to_vxvyvz(np.asarray(rv, float), pmlb[:, 0], pmlb[:, 1], lon, lat,
                                     np.asarray(dist_kpc, float), degree=True)
    return {"u": uvw[:, 0], "v": uvw[:, 1], "w": uvw[:, 2]}


def uncertainties(clusters: pd.DataFrame) -> orbits.Uncertainties:
    """Orbit-input errors: the cluster RV's own uncertainty ``rv_err`` (not the dispersion
    ``rv_std``), the catalogue's asymmetric distance percentiles, and the error of the mean
    proper motion s_pm / sqrt(n_members) (Hunt & Reffert 2023's e_pmRA is 1.00-1.13 times
    this, median 1.04, over their 6806 clusters)."""
    def column(name: str) -> np.ndarray:
        return clusters[name].to_numpy(float) if name in clusters else np.full(len(clusters),
                                                                               np.nan)

    root_n = np.sqrt(column("n_members"))
    return orbits.Uncertainties(
        rv_err=column("rv_err"),
        dist_lo_kpc=(column("dist50") - column("dist16")) / 1000.0,
        dist_hi_kpc=(column("dist84") - column("dist50")) / 1000.0,
        pmra_err=column("s_pmra") / root_n, pmdec_err=column("s_pmdec") / root_n)


def add_galactic(clusters: pd.DataFrame, settings: Galactic, seed: int,
                 progress: bool = False) -> pd.DataFrame:
    """Copy of ``clusters`` with the Galactic block of rd.xml's cluster table.

    Needs ra, dec, pmra, pmdec, dist50 (pc), rv; the errors come from rv_err, dist16/84,
    s_pmra, s_pmdec and n_members (:func:`uncertainties`).  Orbit parameters are the
    median and 16/84 percentiles over ``settings.orbit_draws`` seeded Monte Carlo orbits.
    """
    setup = orbits.OrbitSetup.from_config(settings)
    out = clusters.copy()
    ra, dec = out["ra"].to_numpy(float), out["dec"].to_numpy(float)
    pmra, pmdec = out["pmra"].to_numpy(float), out["pmdec"].to_numpy(float)
    dist_kpc = out["dist50"].to_numpy(float) / 1000.0
    rv = out["rv"].to_numpy(float)
    with np.errstate(invalid="ignore"):
        for name, values in positions(ra, dec, dist_kpc, setup.r0_kpc, setup.z_sun_kpc).items():
            out[name] = values
        for name, values in velocities(ra, dec, dist_kpc, pmra, pmdec, rv).items():
            out[name] = values
    flags = orbits.orbit_flags(ra, dec, dist_kpc, pmra, pmdec, rv)
    good = np.flatnonzero(flags == orbits.FLAG_OK)
    ics = np.column_stack([ra, dec, dist_kpc, pmra, pmdec, rv])[good]
    errors = uncertainties(out).take(good)
    result = orbits.orbits_with_errors(ics, errors, setup, settings.orbit_draws,
                                       np.random.default_rng(seed), progress=progress)
    for name, values in result.items():
        column = np.full(len(out), np.nan)
        column[good] = values
        out[name] = column
    failed = good[~np.isfinite(result["r_apo"])]
    flags[failed] = orbits.FLAG_NON_FINITE
    out["orbit_flag"] = flags
    return out
