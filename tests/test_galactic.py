"""Galactic block: positions and velocities against astropy, flags and columns of add_galactic."""
from __future__ import annotations

import astropy.coordinates as apc
import astropy.units as u
import numpy as np
import pandas as pd
import pytest

from ingest.core import config
from ingest.pipeline.s6_galactic import galactic, orbits
from ingest.core import schema

GALACTIC_COLUMNS = [name for name in schema.table("cluster").names
                    if name in ("x", "y", "z", "r_gc", "u", "v", "w", "orbit_flag")
                    or name.startswith(("z_max", "r_peri", "r_apo", "ecc", "lz", "energy"))]


def _sky(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"ra": rng.uniform(0, 360, n), "dec": rng.uniform(-60, 80, n),
            "dist_kpc": rng.uniform(0.1, 5.0, n), "pmra": rng.normal(0, 4, n),
            "pmdec": rng.normal(0, 4, n), "rv": rng.normal(0, 30, n)}


@pytest.mark.parametrize("r0_kpc, z_sun_pc", [(8.0, 20.8), (8.21, 0.0)])
def test_positions_match_astropy_galactocentric(r0_kpc, z_sun_pc):
    sky = _sky(200, seed=1)
    ours = galactic.positions(sky["ra"], sky["dec"], sky["dist_kpc"], r0_kpc, z_sun_pc / 1000)
    frame = apc.Galactocentric(
        galcen_coord=apc.SkyCoord(l=0 * u.deg, b=0 * u.deg, frame="galactic").icrs,
        galcen_distance=np.hypot(r0_kpc, z_sun_pc / 1000) * u.kpc, z_sun=z_sun_pc * u.pc,
        roll=0 * u.deg)
    coord = apc.SkyCoord(ra=sky["ra"] * u.deg, dec=sky["dec"] * u.deg,
                         distance=sky["dist_kpc"] * u.kpc)
    centric = coord.transform_to(frame).cartesian
    helio = coord.galactic.cartesian
    np.testing.assert_allclose(ours["x"], helio.x.to_value(u.kpc), atol=1e-6)
    np.testing.assert_allclose(ours["y"], helio.y.to_value(u.kpc), atol=1e-6)
    np.testing.assert_allclose(ours["z"], centric.z.to_value(u.kpc), atol=1e-5)
    np.testing.assert_allclose(ours["r_gc"], np.hypot(centric.x, centric.y).to_value(u.kpc),
                               atol=1e-5)


def test_velocities_match_astropy_heliocentric_galactic():
    sky = _sky(200, seed=2)
    ours = galactic.velocities(sky["ra"], sky["dec"], sky["dist_kpc"], sky["pmra"],
                               sky["pmdec"], sky["rv"])
    coord = apc.SkyCoord(ra=sky["ra"] * u.deg, dec=sky["dec"] * u.deg,
                         distance=sky["dist_kpc"] * u.kpc,
                         pm_ra_cosdec=sky["pmra"] * u.mas / u.yr,
                         pm_dec=sky["pmdec"] * u.mas / u.yr,
                         radial_velocity=sky["rv"] * u.km / u.s)
    vel = coord.galactic.velocity
    for name, component in zip("uvw", (vel.d_x, vel.d_y, vel.d_z)):
        np.testing.assert_allclose(ours[name], component.to_value(u.km / u.s), atol=2e-3)


def _clusters() -> pd.DataFrame:
    sky = _sky(5, seed=3)
    frame = pd.DataFrame({"cluster_name": [f"C{i}" for i in range(5)], "ra": sky["ra"],
                          "dec": sky["dec"], "pmra": sky["pmra"], "pmdec": sky["pmdec"],
                          "dist50": sky["dist_kpc"] * 1000, "rv": sky["rv"],
                          "rv_std": [2.0, 1.0, np.nan, 3.0, 1.0],
                          "rv_err": [0.5, 0.3, 1.5, 1.0, np.nan],
                          "s_pmra": 0.2, "s_pmdec": 0.2, "n_members": 100})
    frame["dist16"], frame["dist84"] = frame.dist50 * 0.97, frame.dist50 * 1.04
    frame.loc[1, "rv"] = np.nan          # no RV
    frame.loc[3, "dist50"] = np.nan      # no distance
    frame.loc[4, "pmdec"] = np.inf       # broken astrometry
    return frame


def test_add_galactic_adds_the_rd_columns_and_flags_what_it_skips():
    cfg = config.defaults()
    cfg["galactic"].update(orbit_draws=10, orbit_time_gyr=0.3, orbit_steps=601)
    clusters = _clusters()
    before = clusters.copy()
    out = galactic.add_galactic(clusters, config.settings(cfg).galactic, seed=4)
    pd.testing.assert_frame_equal(clusters, before)          # input untouched
    assert set(GALACTIC_COLUMNS) <= set(out.columns)
    assert out["orbit_flag"].tolist() == [orbits.FLAG_OK, orbits.FLAG_NO_RV, orbits.FLAG_OK,
                                          orbits.FLAG_NO_DISTANCE, orbits.FLAG_NON_FINITE]
    assert out.loc[[0, 2], "r_apo"].notna().all()
    assert out.loc[[1, 3, 4], ["r_peri", "ecc", "lz", "energy"]].isna().all().all()
    assert np.isfinite(out.loc[1, "r_gc"]) and np.isnan(out.loc[1, "u"])   # position, no RV
    assert np.isnan(out.loc[3, "r_gc"])
    assert out.loc[[0, 2], "ecc_err"].gt(0).all()
    assert (out.loc[[0, 2], "ecc_p16"] < out.loc[[0, 2], "ecc_p84"]).all()
    np.testing.assert_array_less(out.loc[[0, 2], "r_peri"], out.loc[[0, 2], "r_apo"] + 1e-9)


def test_uncertainties_use_the_rv_error_distance_percentiles_and_pm_error_of_the_mean():
    clusters = pd.DataFrame({"rv_err": [0.7], "rv_std": [5.0], "dist16": [2900.0],
                             "dist50": [3000.0], "dist84": [3150.0], "s_pmra": [0.4],
                             "s_pmdec": [0.2], "n_members": [16]})
    errors = galactic.uncertainties(clusters)
    assert errors.rv_err[0] == 0.7                      # the RV's error, not its dispersion
    assert (errors.dist_lo_kpc[0], errors.dist_hi_kpc[0]) == pytest.approx((0.1, 0.15))
    assert (errors.pmra_err[0], errors.pmdec_err[0]) == pytest.approx((0.1, 0.05))
    assert not galactic.uncertainties(clusters.drop(columns="dist16")).known()[0]
