"""Orbits: input validation, frame conventions, interpolated vs full McMillan17, RV resampling."""
from __future__ import annotations

import numpy as np
import pytest
from galpy.util import coords

from ingest import config, orbits


def _setup(**changes) -> orbits.OrbitSetup:
    galactic = dict(config.defaults()["galactic"], **changes)
    return orbits.OrbitSetup.from_config(galactic)


def _random_ics(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(0, 360, n), rng.uniform(-20, 20, n),
                            rng.uniform(0.2, 3.0, n), rng.normal(0, 3, n),
                            rng.normal(0, 3, n), rng.normal(0, 20, n)])


def _comoving_with_lsr(ra: float, dec: float, dist_kpc: float,
                       solar_motion: tuple[float, float, float]) -> list[float]:
    """ra, dec, d, pmra, pmdec, RV of a point at rest in the LSR (heliocentric -Solar motion)."""
    lb = coords.radec_to_lb(ra, dec, degree=True)
    vr_pm = coords.vxvyvz_to_vrpmllpmbb(-solar_motion[0], -solar_motion[1], -solar_motion[2],
                                        lb[0], lb[1], dist_kpc, XYZ=False, degree=True)
    pm = coords.pmllpmbb_to_pmrapmdec(vr_pm[1], vr_pm[2], lb[0], lb[1], degree=True)
    return [ra, dec, dist_kpc, pm[0], pm[1], vr_pm[0]]


def test_flags_name_the_missing_input():
    nan = np.nan
    flags = orbits.orbit_flags(ra=[10, 10, 10, 10, 10], dec=[5, 5, 5, 5, 5],
                               dist_kpc=[1.0, 1.0, nan, -1.0, 1.0],
                               pmra=[1, 1, 1, 1, nan], pmdec=[1, 1, 1, 1, 1],
                               rv=[3.0, nan, nan, 3.0, 3.0])
    assert flags.tolist() == [orbits.FLAG_OK, orbits.FLAG_NO_RV, orbits.FLAG_NO_DISTANCE,
                              orbits.FLAG_NO_DISTANCE, orbits.FLAG_NON_FINITE]


def test_non_finite_initial_conditions_are_refused_before_integration():
    ics = _random_ics(3, seed=1)
    ics[1, 2] = np.nan
    with pytest.raises(ValueError, match="finite"):
        orbits.integrate(ics, _setup())


def test_galactocentric_conversion_equals_galpys_own_for_its_units():
    """With R0 = 8.21 kpc (McMillan17's unit) our conversion must equal galpy's radec=True."""
    from galpy.orbit import Orbit

    setup = _setup(r0_kpc=8.21, v_circ_kms=233.1)
    ics = _random_ics(50, seed=2)
    ours = orbits.galactocentric_ics(ics, setup)
    usun, vsun, wsun = setup.solar_motion_kms
    theirs = Orbit(ics, radec=True, ro=8.21, vo=233.1, zo=setup.z_sun_kpc,
                   solarmotion=[-usun, vsun, wsun])
    np.testing.assert_allclose(ours[:, 0], theirs.R(), atol=1e-6)
    np.testing.assert_allclose(ours[:, 3], theirs.z(), atol=1e-6)
    np.testing.assert_allclose(ours[:, 1], theirs.vR(), atol=1e-3)
    np.testing.assert_allclose(ours[:, 2], theirs.vT(), atol=1e-3)
    np.testing.assert_allclose(ours[:, 4], theirs.vz(), atol=1e-3)


def test_a_cluster_at_rest_in_the_lsr_has_a_circular_orbit():
    """Checks the Solar-motion sign convention: LSR = circular speed of McMillan17 at R0."""
    from galpy.potential import vcirc
    from galpy.potential.mwpotentials import McMillan17

    r0 = 8.0
    v_circ = float(vcirc(McMillan17, r0 / 8.21, ro=8.21, vo=233.1))
    setup = _setup(r0_kpc=r0, z_sun_pc=0.0, v_circ_kms=v_circ)
    ics = np.array([_comoving_with_lsr(266.4, -28.9, 0.01, setup.solar_motion_kms)])
    result = orbits.integrate(ics, setup)
    assert result["ecc"][0] < 0.005
    assert result["r_peri"][0] == pytest.approx(r0, rel=0.01)
    assert result["r_apo"][0] == pytest.approx(r0, rel=0.01)
    assert result["lz"][0] == pytest.approx(r0 * v_circ, rel=0.01)


def test_interpolated_potential_reproduces_full_mcmillan17():
    setup = _setup(orbit_time_gyr=0.5, orbit_steps=1001)
    ics = _random_ics(12, seed=3)
    fast = orbits.integrate(ics, setup)
    full = orbits.integrate(ics, setup, full_potential=True)
    for name in ("r_peri", "r_apo", "z_max"):
        np.testing.assert_allclose(fast[name], full[name], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(fast["ecc"], full["ecc"], atol=1e-4)
    np.testing.assert_allclose(fast["energy"], full["energy"], rtol=1e-5)
    np.testing.assert_allclose(fast["lz"], full["lz"], rtol=1e-10)


def test_orbits_leaving_the_grid_fall_back_to_the_full_potential():
    setup = _setup(orbit_time_gyr=0.5, orbit_steps=1001)
    ics = _random_ics(2, seed=4)
    ics[0, :] = [192.86, 27.13, 1.0, 0.0, 0.0, 200.0]     # towards the NGP, fast upwards
    fast = orbits.integrate(ics, setup)
    full = orbits.integrate(ics, setup, full_potential=True)
    assert full["z_max"][0] > orbits._GRID_SAFE_FRACTION * orbits._GRID_Z_KPC[1]
    np.testing.assert_allclose(fast["z_max"], full["z_max"], rtol=1e-6)


def test_orbit_errors_follow_the_rv_scatter_linearly():
    """The resampling error must match |dP/dRV| * sigma (finite differences), within 20%."""
    setup = _setup(orbit_time_gyr=0.5, orbit_steps=1001)
    ics = _random_ics(3, seed=5)
    sigma = np.array([2.0, 2.0, 0.0])
    result = orbits.orbits_with_errors(ics, sigma, setup, orbits.RvSampling("montecarlo", 200),
                                       rng=np.random.default_rng(6))
    plus, minus = ics.copy(), ics.copy()
    plus[:, 5] += 0.5
    minus[:, 5] -= 0.5
    derivative = (orbits.integrate(plus, setup)["r_apo"]
                  - orbits.integrate(minus, setup)["r_apo"]) / 1.0
    expected = np.abs(derivative[:2]) * 2.0
    np.testing.assert_allclose(result["r_apo_err"][:2], expected, rtol=0.2)
    assert np.isnan(result["r_apo_err"][2])           # no scatter: no error claimed
    assert np.isfinite(result["r_apo"][2])


def test_resampling_is_reproducible_with_the_seed():
    setup = _setup(orbit_time_gyr=0.2, orbit_steps=401)
    ics = _random_ics(2, seed=7)
    runs = [orbits.orbits_with_errors(ics, np.array([3.0, 1.0]), setup,
                                      orbits.RvSampling("montecarlo", 10),
                                      np.random.default_rng(8)) for _ in range(2)]
    np.testing.assert_array_equal(runs[0]["ecc_err"], runs[1]["ecc_err"])


def test_quadrature_errors_equal_monte_carlo_resampling():
    """5 Gauss-Hermite nodes give the Monte Carlo spread (400 draws, ~4-5% noise) within 15%."""
    setup = _setup(orbit_time_gyr=0.5, orbit_steps=1001)
    ics = _random_ics(3, seed=9)
    sigma = np.array([1.0, 5.0, 15.0])
    quadrature = orbits.orbits_with_errors(ics, sigma, setup, orbits.RvSampling("quadrature", 5),
                                           np.random.default_rng(10))
    monte_carlo = orbits.orbits_with_errors(ics, sigma, setup,
                                            orbits.RvSampling("montecarlo", 400),
                                            np.random.default_rng(11))
    for name in ("r_peri", "r_apo", "ecc", "z_max", "lz"):
        np.testing.assert_array_equal(quadrature[name], monte_carlo[name])   # nominal orbit
        np.testing.assert_allclose(quadrature[f"{name}_err"], monte_carlo[f"{name}_err"],
                                   rtol=0.15, err_msg=name)


def test_quadrature_energy_error_equals_the_analytic_value():
    """E = const + d (v.n) + d^2 / 2 for an RV change d: Var E = (v.n)^2 s^2 + s^4 / 2,
    with v.n the line-of-sight component of the Galactocentric velocity."""
    setup = _setup(orbit_time_gyr=0.1, orbit_steps=201)
    ics = _random_ics(5, seed=12)
    sigma = np.array([0.5, 2.0, 5.0, 15.0, 30.0])
    result = orbits.orbits_with_errors(ics, sigma, setup, orbits.RvSampling("quadrature", 5),
                                       np.random.default_rng(13))
    lb = coords.radec_to_lb(ics[:, 0], ics[:, 1], degree=True)
    lon, lat = np.radians(lb[:, 0]), np.radians(lb[:, 1])
    line_of_sight = np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon),
                                     np.sin(lat)])
    usun, vsun, wsun = setup.solar_motion_kms
    v_los = ics[:, 5] + line_of_sight @ np.array([usun, setup.v_circ_kms + vsun, wsun])
    expected = np.sqrt(v_los ** 2 * sigma ** 2 + sigma ** 4 / 2)
    np.testing.assert_allclose(result["energy_err"], expected, rtol=1e-3)


def test_sampling_settings_are_validated():
    galactic = dict(config.defaults()["galactic"], orbit_error_method="bootstrap")
    with pytest.raises(ValueError, match="orbit_error_method"):
        orbits.RvSampling.from_config(galactic)
    galactic.update(orbit_error_method="quadrature", orbit_quadrature_nodes=1)
    with pytest.raises(ValueError, match="orbit_quadrature_nodes"):
        orbits.RvSampling.from_config(galactic)
