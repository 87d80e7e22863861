"""Cluster orbits in the McMillan (2017) potential with galpy.

Every orbit is integrated with galpy's ``dop853_c`` in an axisymmetric
interpolation of ``McMillan17`` (``interpRZPotential``, evaluated in C): the
full McMillan17 costs ~14 orbits/s on two idle cores, the interpolation ~700/s,
which makes Monte Carlo orbit errors (RV, asymmetric distance and proper motions
sampled together) affordable for ~7000 clusters (docs/science.md).  The interpolation agrees with the full potential to ~1e-6 in
peri/apocentre (tests/test_orbits.py); orbits leaving the grid are integrated
again in the full potential.

Initial conditions are validated before any integration: galpy's C
integrator can run for ever on a NaN.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np

if TYPE_CHECKING:                     # galpy is imported lazily: McMillan17 takes ~20 s
    from galpy.potential import interpRZPotential

# orbit_flag codes (rd.xml, cluster.orbit_flag)
FLAG_OK = 0
FLAG_NO_RV = 1
FLAG_NO_DISTANCE = 2
FLAG_NON_FINITE = 3

# Interpolation grid of the potential (kpc): Galactocentric R (log-spaced) and |z|;
# 10 pc steps in z keep z_max of thin-disc orbits exact to ~1e-4 relative
# (40 pc steps gave 40% errors for z_max ~ 15 pc); building it takes ~5 s
# (importing McMillan17 itself takes ~20 s).
_GRID_R_KPC = (0.05, 60.0, 201)
_GRID_Z_KPC = (0.0, 4.0, 401)
# Orbits reaching beyond this fraction of the grid are integrated in the full potential.
_GRID_SAFE_FRACTION = 0.9
# Orbits integrated per galpy call: bounds memory (steps x 6 doubles per orbit).
_CHUNK_ORBITS = 2000

RESULT_NAMES = ("z_max", "r_peri", "r_apo", "ecc", "lz", "energy")


@dataclass(frozen=True)
class OrbitSetup:
    """Galaxy model and integration settings (config section [galactic])."""

    r0_kpc: float
    z_sun_kpc: float
    solar_motion_kms: tuple[float, float, float]   # (U, V, W), U towards the Galactic centre
    v_circ_kms: float
    time_gyr: float
    steps: int
    cores: int

    @classmethod
    def from_config(cls, galactic: dict) -> "OrbitSetup":
        """Read the [galactic] section of the processing configuration."""
        return cls(r0_kpc=float(galactic["r0_kpc"]),
                   z_sun_kpc=float(galactic["z_sun_pc"]) / 1000.0,
                   solar_motion_kms=tuple(float(v) for v in galactic["solar_motion_kms"]),
                   v_circ_kms=float(galactic["v_circ_kms"]),
                   time_gyr=float(galactic["orbit_time_gyr"]),
                   steps=int(galactic["orbit_steps"]),
                   cores=int(galactic.get("orbit_cores", 1)))


def orbit_flags(ra: np.ndarray, dec: np.ndarray, dist_kpc: np.ndarray, pmra: np.ndarray,
                pmdec: np.ndarray, rv: np.ndarray) -> np.ndarray:
    """orbit_flag per cluster before integration: 2 no distance, 1 no RV, 3 other non-finite
    or impossible (|dec| > 90, ra outside [0, 360)); only flag 0 reaches galpy."""
    dist_kpc = np.asarray(dist_kpc, float)
    flags = np.full(dist_kpc.shape, FLAG_OK, dtype=np.int16)
    astrometry = np.column_stack([ra, dec, pmra, pmdec]).astype(float)
    with np.errstate(invalid="ignore"):
        impossible = (np.abs(astrometry[:, 1]) > 90) | (astrometry[:, 0] < 0) | (
            astrometry[:, 0] >= 360)
    flags[~np.all(np.isfinite(astrometry), axis=1) | impossible] = FLAG_NON_FINITE
    flags[~np.isfinite(np.asarray(rv, float))] = FLAG_NO_RV
    flags[~(np.isfinite(dist_kpc) & (dist_kpc > 0))] = FLAG_NO_DISTANCE
    return flags


def _potential_units() -> tuple[float, float]:
    """(ro kpc, vo km/s) in which galpy's McMillan17 is defined (8.21, 233.1)."""
    from galpy.potential.mwpotentials import McMillan17
    from galpy.util.conversion import get_physical

    physical = get_physical(McMillan17)
    return float(physical["ro"]), float(physical["vo"])


@lru_cache(maxsize=1)
def interpolated_potential() -> interpRZPotential:
    """McMillan17 tabulated on an (R, |z|) grid in its natural units, evaluated in C."""
    from galpy.potential import interpRZPotential
    from galpy.potential.mwpotentials import McMillan17

    ro, _ = _potential_units()
    rmin, rmax, nr = _GRID_R_KPC
    zmin, zmax, nz = _GRID_Z_KPC
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return interpRZPotential(
            RZPot=McMillan17, rgrid=(np.log(rmin / ro), np.log(rmax / ro), nr),
            zgrid=(zmin / ro, zmax / ro, nz), logR=True, zsym=True,
            interpPot=True, interpRforce=True, interpzforce=True, enable_c=True, use_c=True)


def galactocentric_ics(ics: np.ndarray, setup: OrbitSetup) -> np.ndarray:
    """(N, 6) R, vR, vT, z, vz, phi (kpc, km/s, rad) for ra, dec, d, pmra, pmdec, RV.

    Done here rather than by galpy's ``radec=True`` so that R0 and z_sun can differ from
    the length unit in which McMillan17 is defined.
    """
    from galpy.util import coords

    ra, dec, dist, pmra, pmdec, rv = np.asarray(ics, float).T
    lb = coords.radec_to_lb(ra, dec, degree=True)
    pmlb = coords.pmrapmdec_to_pmllpmbb(pmra, pmdec, ra, dec, degree=True)
    x, y, z, vx, vy, vz = coords.sphergal_to_rectgal(
        lb[:, 0], lb[:, 1], dist, rv, pmlb[:, 0], pmlb[:, 1], degree=True).T
    usun, vsun, wsun = setup.solar_motion_kms
    cyl = coords.XYZ_to_galcencyl(x, y, z, Xsun=setup.r0_kpc, Zsun=setup.z_sun_kpc)
    vcyl = coords.vxvyvz_to_galcencyl(
        vx, vy, vz, cyl[:, 0], cyl[:, 1], cyl[:, 2],
        vsun=[-usun, setup.v_circ_kms + vsun, wsun], Xsun=setup.r0_kpc,
        Zsun=setup.z_sun_kpc, galcen=True)
    return np.column_stack([cyl[:, 0], vcyl[:, 0], vcyl[:, 1], cyl[:, 2], vcyl[:, 2],
                            cyl[:, 1]])


def _make_orbits(ics: np.ndarray, setup: OrbitSetup):
    from galpy.orbit import Orbit

    ro, vo = _potential_units()
    galcen = galactocentric_ics(ics, setup)
    natural = galcen / np.array([ro, vo, vo, ro, vo, 1.0])
    return Orbit(natural, ro=ro, vo=vo)


def _integrate_chunk(ics: np.ndarray, setup: OrbitSetup, potential) -> dict[str, np.ndarray]:
    orbits = _make_orbits(ics, setup)
    times = np.linspace(0.0, setup.time_gyr, setup.steps) * u.Gyr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        orbits.integrate(times, potential, method="dop853_c", numcores=setup.cores,
                         progressbar=False)
        return {"z_max": orbits.zmax(), "r_peri": orbits.rperi(), "r_apo": orbits.rap(),
                "ecc": orbits.e(), "lz": orbits.Lz(), "energy": orbits.E(pot=potential)}


def _outside_grid(result: dict[str, np.ndarray]) -> np.ndarray:
    return ((result["r_apo"] > _GRID_SAFE_FRACTION * _GRID_R_KPC[1])
            | (result["z_max"] > _GRID_SAFE_FRACTION * _GRID_Z_KPC[1])
            | ~np.isfinite(result["r_apo"]))


def integrate(ics: np.ndarray, setup: OrbitSetup, progress: bool = False,
              full_potential: bool = False) -> dict[str, np.ndarray]:
    """Orbit parameters for validated initial conditions.

    ``ics`` is (N, 6): ra, dec (deg), distance (kpc), pmra, pmdec (mas/yr), RV (km/s),
    all finite (use :func:`orbit_flags` first).  Returns arrays named as
    :data:`RESULT_NAMES` in kpc, km/s kpc and km^2/s^2.  ``full_potential`` integrates
    in McMillan17 itself (slow; used to validate the interpolation).
    """
    ics = np.asarray(ics, float).reshape(-1, 6)
    if not np.all(np.isfinite(ics)):
        raise ValueError("orbit initial conditions must be finite (validate with orbit_flags)")
    out = {name: np.full(len(ics), np.nan) for name in RESULT_NAMES}
    if not len(ics):
        return out                      # spares the ~20 s import of McMillan17
    from galpy.potential.mwpotentials import McMillan17

    potential = McMillan17 if full_potential else interpolated_potential()
    starts = range(0, len(ics), _CHUNK_ORBITS)
    if progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc="orbits", unit="chunk")
    for start in starts:
        part = slice(start, start + _CHUNK_ORBITS)
        for name, values in _integrate_chunk(ics[part], setup, potential).items():
            out[name][part] = values
    if not full_potential:
        _redo_outside_grid(ics, setup, out)
    return out


def _redo_outside_grid(ics: np.ndarray, setup: OrbitSetup, out: dict[str, np.ndarray]) -> None:
    """Orbits that left the interpolation grid: integrate again in the full potential."""
    from galpy.potential.mwpotentials import McMillan17

    redo = np.flatnonzero(_outside_grid(out))
    if redo.size:
        for name, values in _integrate_chunk(ics[redo], setup, McMillan17).items():
            out[name][redo] = values


@dataclass(frozen=True)
class Uncertainties:
    """1-sigma uncertainties of the initial conditions, one value per cluster.

    The distance is asymmetric: ``dist_lo_kpc`` = d50 - d16 and ``dist_hi_kpc`` = d84 - d50
    of the membership catalogue.  NaN anywhere means the cluster's errors are unknown.
    """

    rv_err: np.ndarray
    dist_lo_kpc: np.ndarray
    dist_hi_kpc: np.ndarray
    pmra_err: np.ndarray
    pmdec_err: np.ndarray

    def known(self) -> np.ndarray:
        """Clusters whose every uncertainty is finite and non-negative."""
        values = np.column_stack([self.rv_err, self.dist_lo_kpc, self.dist_hi_kpc,
                                  self.pmra_err, self.pmdec_err]).astype(float)
        return np.all(np.isfinite(values) & (values >= 0), axis=1)

    def take(self, rows: np.ndarray) -> "Uncertainties":
        """The uncertainties of the clusters at positions ``rows``."""
        return Uncertainties(*(np.asarray(getattr(self, f), float)[rows]
                               for f in self.__dataclass_fields__))


def orbit_draws(galactic: dict) -> int:
    """[galactic] orbit_draws: Monte Carlo draws per cluster (at least 10 for percentiles)."""
    draws = int(galactic["orbit_draws"])
    if draws < 10:
        raise ValueError(f"galactic.orbit_draws must be at least 10, not {draws}")
    return draws


def split_normal(centre: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                 z: np.ndarray) -> np.ndarray:
    """Split-normal deviates for standard normals ``z``: width ``lower`` below the centre,
    ``upper`` above, so the 16th/50th/84th percentiles are centre - lower, centre,
    centre + upper, exactly the catalogue's dist16/50/84."""
    return centre + z * np.where(z < 0, lower, upper)


# Drawn distances are kept above this fraction of the catalogue's d16: a split normal
# has a tail to zero and negative distances that the catalogue does not allow.
_MIN_DISTANCE_FRACTION = 0.1


def draw_initial_conditions(ics: np.ndarray, errors: Uncertainties, draws: int,
                            rng: np.random.Generator) -> np.ndarray:
    """(N, draws, 6) initial conditions sampled within all five uncertainties at once."""
    ics = np.asarray(ics, float).reshape(-1, 6)
    z = rng.standard_normal((len(ics), draws, 4))
    out = np.repeat(ics[:, None, :], draws, axis=1)
    dist = ics[:, 2, None]
    lower = np.asarray(errors.dist_lo_kpc, float)[:, None]
    floor = _MIN_DISTANCE_FRACTION * np.maximum(dist - lower, 0.0)
    out[..., 2] = np.maximum(split_normal(dist, lower,
                                          np.asarray(errors.dist_hi_kpc, float)[:, None],
                                          z[..., 0]), np.maximum(floor, 1e-4))
    out[..., 3] += z[..., 1] * np.asarray(errors.pmra_err, float)[:, None]
    out[..., 4] += z[..., 2] * np.asarray(errors.pmdec_err, float)[:, None]
    out[..., 5] += z[..., 3] * np.asarray(errors.rv_err, float)[:, None]
    return out


def orbits_with_errors(ics: np.ndarray, errors: Uncertainties, setup: OrbitSetup, draws: int,
                       rng: np.random.Generator,
                       progress: bool = False) -> dict[str, np.ndarray]:
    """Median and 16th/84th percentiles of each orbit parameter over ``draws`` orbits per
    cluster, sampled within the RV, distance (asymmetric) and proper-motion errors.

    Returns ``<name>`` (median), ``<name>_p16``, ``<name>_p84`` and ``<name>_err``
    (half the 16-84 range).  Clusters with unknown errors get their nominal orbit and
    NaN percentiles: no uncertainty is claimed that was not computed.
    """
    ics = np.asarray(ics, float).reshape(-1, 6)
    known = np.flatnonzero(errors.known())
    sampled = draw_initial_conditions(ics[known], errors.take(known), draws, rng)
    result = integrate(np.vstack([ics, sampled.reshape(-1, 6)]), setup, progress=progress)
    out: dict[str, np.ndarray] = {}
    for name in RESULT_NAMES:
        samples = result[name][len(ics):].reshape(len(known), draws)
        p16, p50, p84 = (np.full(len(ics), np.nan) for _ in range(3))
        if len(known):
            p16[known], p50[known], p84[known] = np.percentile(samples, [16, 50, 84], axis=1)
        out[name] = np.where(np.isfinite(p50), p50, result[name][:len(ics)])
        out[f"{name}_p16"], out[f"{name}_p84"] = p16, p84
        out[f"{name}_err"] = (p84 - p16) / 2.0
    return out

