"""Orbits: input validation, frame conventions, interpolated vs full McMillan17, RV resampling."""
from __future__ import annotations

import numpy as np
import pytest
from galpy.util import coords

from helpers.synthetic import disc_cluster_kinematics
from ingest.core import config
from ingest.pipeline.s6_galactic import orbits


def _setup(**changes) -> orbits.OrbitSetup:
    cfg = config.defaults()
    cfg["galactic"].update(changes)
    return orbits.OrbitSetup.from_config(config.settings(cfg).galactic)


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


def _errors(n: int, rv=0.0, lo=0.0, hi=0.0, pm=0.0) -> orbits.Uncertainties:
    full = lambda value: np.broadcast_to(np.asarray(value, float), (n,)).copy()  # noqa: E731
    return orbits.Uncertainties(rv_err=full(rv), dist_lo_kpc=full(lo), dist_hi_kpc=full(hi),
                                pmra_err=full(pm), pmdec_err=full(pm))


def _disc_clusters(n: int, seed: int) -> np.ndarray:
    """Thin-disc clusters 0.3-6 kpc away (helpers.synthetic.disc_cluster_kinematics)."""
    return disc_cluster_kinematics(n, np.random.default_rng(seed), dist_min_kpc=0.3)


def test_split_normal_has_the_catalogue_percentiles():
    z = np.random.default_rng(1).standard_normal(200_000)
    drawn = orbits.split_normal(np.full(z.size, 3.0), np.full(z.size, 0.2),
                                np.full(z.size, 0.5), z)
    np.testing.assert_allclose(np.percentile(drawn, [16, 50, 84]), [2.8, 3.0, 3.5], atol=0.01)


def test_drawn_initial_conditions_have_the_injected_spreads():
    ics = np.tile([[100.0, 10.0, 4.0, 1.0, -2.0, 30.0]], (2, 1))
    errors = _errors(2, rv=3.0, lo=0.4, hi=0.8, pm=0.05)
    drawn = orbits.draw_initial_conditions(ics, errors, 20_000, np.random.default_rng(2))
    d16, d50, d84 = np.percentile(drawn[..., 2], [16, 50, 84])
    assert (d16, d50, d84) == pytest.approx((3.6, 4.0, 4.8), abs=0.03)
    assert drawn[..., 3].std() == pytest.approx(0.05, rel=0.02)
    assert drawn[..., 5].std() == pytest.approx(3.0, rel=0.02)
    np.testing.assert_array_equal(drawn[..., :2], np.broadcast_to(ics[:, None, :2], (2, 20_000, 2)))


@pytest.mark.slow
def test_orbit_percentiles_cover_the_truth_at_68_percent():
    """Simulated truth: each cluster's true distance, proper motion and RV are drawn from the
    distributions its catalogue errors state (distance split-normal, 3% per kpc below and
    4.5% per kpc above, i.e. 18-27% at 6 kpc where it dominates z_max, peri and apo).  The
    truth's orbit must then lie inside the published 16-84 range for 68% +- 5% of clusters
    (pooled over the six parameters; each within +-10%, 3 binomial sigma for 150).
    100 draws put the expected coverage of empirical percentiles at 66.7%."""
    n, draws = 150, 100
    setup = _setup(orbit_time_gyr=0.3, orbit_steps=301)
    catalogue = _disc_clusters(n, seed=20)
    errors = _errors(n, rv=1.5, pm=0.03)
    errors = orbits.Uncertainties(errors.rv_err, 0.03 * catalogue[:, 2] ** 2,
                                  0.045 * catalogue[:, 2] ** 2, errors.pmra_err,
                                  errors.pmdec_err)
    truth_ics = orbits.draw_initial_conditions(catalogue, errors, 1,
                                               np.random.default_rng(21))[:, 0]
    truth = orbits.integrate(truth_ics, setup)
    result = orbits.orbits_with_errors(catalogue, errors, setup, draws,
                                       np.random.default_rng(22))
    coverage = {name: np.mean((result[f"{name}_p16"] <= truth[name])
                              & (truth[name] <= result[f"{name}_p84"]))
                for name in orbits.RESULT_NAMES}
    pooled = float(np.mean(list(coverage.values())))
    print("coverage of the 16-84 range:", {k: round(v, 3) for k, v in coverage.items()},
          f"pooled {pooled:.3f}")
    assert pooled == pytest.approx(0.68, abs=0.05)
    for name, value in coverage.items():
        assert value == pytest.approx(0.68, abs=0.10), name


def test_rv_only_errors_follow_the_linear_propagation():
    """With only an RV error, half the 16-84 range must match |dP/dRV| * sigma (finite
    differences) within 20% (100 draws: ~10% percentile noise)."""
    setup = _setup(orbit_time_gyr=0.5, orbit_steps=1001)
    ics = _random_ics(2, seed=5)
    result = orbits.orbits_with_errors(ics, _errors(2, rv=2.0), setup, 100,
                                       rng=np.random.default_rng(6))
    plus, minus = ics.copy(), ics.copy()
    plus[:, 5] += 0.5
    minus[:, 5] -= 0.5
    derivative = (orbits.integrate(plus, setup)["r_apo"]
                  - orbits.integrate(minus, setup)["r_apo"]) / 1.0
    np.testing.assert_allclose(result["r_apo_err"], np.abs(derivative) * 2.0, rtol=0.2)
    assert np.all(result["r_apo_p16"] < result["r_apo"])
    assert np.all(result["r_apo"] < result["r_apo_p84"])


def test_unknown_errors_keep_the_nominal_orbit_and_claim_no_uncertainty():
    setup = _setup(orbit_time_gyr=0.2, orbit_steps=201)
    ics = _random_ics(2, seed=7)
    errors = _errors(2, rv=1.0, lo=0.05, hi=0.05, pm=0.02)
    errors.dist_hi_kpc[1] = np.nan
    result = orbits.orbits_with_errors(ics, errors, setup, 10, np.random.default_rng(8))
    nominal = orbits.orbit_parameters(ics[1:], setup)
    assert result["ecc"][1] == nominal["ecc"][0]
    assert np.isnan(result["ecc_p16"][1]) and np.isnan(result["ecc_err"][1])
    assert np.isfinite(result["ecc_p84"][0])


def test_monte_carlo_is_reproducible_with_the_seed():
    setup = _setup(orbit_time_gyr=0.2, orbit_steps=201)
    ics = _random_ics(2, seed=7)
    runs = [orbits.orbits_with_errors(ics, _errors(2, rv=2.0, lo=0.1, hi=0.2, pm=0.05), setup,
                                      10, np.random.default_rng(8)) for _ in range(2)]
    np.testing.assert_array_equal(runs[0]["ecc_p84"], runs[1]["ecc_p84"])


def test_draw_count_is_validated():
    with pytest.raises(ValueError, match="orbit_draws"):
        _setup(orbit_draws=3)


def test_staeckel_estimates_agree_with_integration_for_disc_clusters():
    """The pipeline's Staeckel estimates against 1 Gyr dop853 integrations (docs/science.md:
    on FU2022's 331 clusters peri/apo agree to <= 0.5%, ecc to <= 0.003, z_max to a
    median 0.07%); L_z and the energy do not depend on the method."""
    setup = _setup()
    ics = _disc_clusters(60, seed=30)
    fast = orbits.staeckel(ics, setup)
    slow = orbits.integrate(ics, setup)
    for name in ("r_peri", "r_apo"):
        np.testing.assert_allclose(fast[name], slow[name], rtol=0.01)
        assert np.median(np.abs(fast[name] / slow[name] - 1)) < 1e-3
    np.testing.assert_allclose(fast["ecc"], slow["ecc"], atol=0.005)
    assert np.median(np.abs(fast["z_max"] / slow["z_max"] - 1)) < 0.01
    np.testing.assert_allclose(fast["lz"], slow["lz"], rtol=1e-12)
    np.testing.assert_allclose(fast["energy"], slow["energy"], rtol=1e-12)


def test_orbit_method_is_validated_and_selects_the_integrator():
    with pytest.raises(ValueError, match="orbit_method"):
        _setup(orbit_method="epicycles")
    setup = _setup(orbit_method="integrate", orbit_time_gyr=0.2, orbit_steps=201)
    ics = _random_ics(2, seed=9)
    np.testing.assert_array_equal(orbits.orbit_parameters(ics, setup)["z_max"],
                                  orbits.integrate(ics, setup)["z_max"])


@pytest.mark.slow
def test_cached_interpolation_gives_bit_identical_orbits(tmp_path, monkeypatch):
    """The pickled grid replaces McMillan17's ~20 s set-up without changing any result."""
    monkeypatch.setenv("OCVO_CACHE", str(tmp_path))
    setup = _setup(orbit_time_gyr=0.2, orbit_steps=201)
    ics = _random_ics(3, seed=10)
    orbits.interpolated_potential.cache_clear()
    try:
        built = orbits.integrate(ics, setup)
        assert orbits._cache_path().is_file()
        orbits.interpolated_potential.cache_clear()
        loaded_potential = orbits.interpolated_potential()
        assert type(loaded_potential).__name__ == "CachedInterpRZPotential"
        loaded = orbits.integrate(ics, setup)
    finally:
        orbits.interpolated_potential.cache_clear()
    for name in orbits.RESULT_NAMES:
        np.testing.assert_array_equal(built[name], loaded[name])
