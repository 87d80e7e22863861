"""Cluster orbits in the McMillan (2017) potential with galpy.

Two methods share one axisymmetric interpolation of ``McMillan17``
(``interpRZPotential``, evaluated in C):

* ``integrate``: galpy's ``dop853_c`` over ``orbit_time_gyr``; z_max, peri and apocentre
  are the extremes of the sampled orbit.  The reference: the full McMillan17 costs ~14
  orbits/s on two idle cores, the interpolation ~700/s, and it agrees with the full
  potential to ~1e-6 in peri/apocentre (tests/test_orbits.py).
* ``staeckel`` (the pipeline's default, ``galactic.orbit_method``): galpy's Staeckel
  approximation (``actionAngleStaeckel.EccZmaxRperiRap``, Mackereth & Bovy 2018) with
  the focal length estimated at the cluster's nominal position (Sanders 2012, eq. 9);
  ~100 times faster, which makes the Monte Carlo orbit errors (RV, asymmetric distance and proper
  motions sampled together) of a full catalogue take seconds.  Its agreement with
  integration is measured in docs/science.md and tests/test_orbits.py.

L_z and the energy are exact for both (they are set by the initial conditions).
Orbits leaving the interpolation grid are integrated in the full potential.
Building the interpolation needs McMillan17 itself (~20 s to import); the tabulated
grid is cached on disk (:func:`interpolated_potential`).

Initial conditions are validated before any integration: galpy's C
integrator can run for ever on a NaN.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np

from ingest.core.config import Galactic

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
# The Staeckel focal length is estimated at |z| >= this height (kpc): Sanders' eq. 9 is
# 0/0 in the plane, and clusters sit within tens of pc of it.
_DELTA_MIN_Z_KPC = 0.1
# Step (natural units) of the finite differences of the tabulated forces for delta.
_DELTA_STEP = 1e-4

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
    method: str                                    # "staeckel" or "integrate"

    @classmethod
    def from_config(cls, galactic: Galactic) -> "OrbitSetup":
        """The [galactic] section of the processing configuration, in the units used here."""
        return cls(r0_kpc=galactic.r0_kpc, z_sun_kpc=galactic.z_sun_pc / 1000.0,
                   solar_motion_kms=tuple(float(v) for v in galactic.solar_motion_kms),
                   v_circ_kms=galactic.v_circ_kms, time_gyr=galactic.orbit_time_gyr,
                   steps=galactic.orbit_steps, cores=galactic.orbit_cores,
                   method=galactic.orbit_method)


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
    """(ro kpc, vo km/s) in which galpy's McMillan17 is defined (8.21, 233.1); the
    interpolation carries them, so the cached grid spares importing McMillan17."""
    from galpy.util.conversion import get_physical

    physical = get_physical(interpolated_potential())
    return float(physical["ro"]), float(physical["vo"])


def _build_interpolation() -> interpRZPotential:
    """McMillan17 tabulated on the (R, |z|) grid (imports McMillan17: ~20 s)."""
    from galpy.potential import interpRZPotential
    from galpy.potential.mwpotentials import McMillan17
    from galpy.util.conversion import get_physical

    ro = float(get_physical(McMillan17)["ro"])
    rmin, rmax, nr = _GRID_R_KPC
    zmin, zmax, nz = _GRID_Z_KPC
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return interpRZPotential(
            RZPot=McMillan17, rgrid=(np.log(rmin / ro), np.log(rmax / ro), nr),
            zgrid=(zmin / ro, zmax / ro, nz), logR=True, zsym=True,
            interpPot=True, interpRforce=True, interpzforce=True, enable_c=True, use_c=True)


def _cache_path() -> Path:
    """Grid cache file, keyed by galpy's version and the grid (OCVO_CACHE or ~/.cache/ocvo)."""
    import galpy

    key = hashlib.sha256(repr((galpy.__version__, _GRID_R_KPC, _GRID_Z_KPC,
                               "McMillan17")).encode()).hexdigest()[:16]
    root = Path(os.environ.get("OCVO_CACHE") or Path.home() / ".cache" / "ocvo")
    return root / f"mcmillan17-grid-{key}.pickle"


def _lazy_interpolation_class():
    """interpRZPotential whose original McMillan17 is imported only if ever needed
    (points off the grid); the tables themselves come from the cache."""
    from galpy.potential import interpRZPotential

    class CachedInterpRZPotential(interpRZPotential):
        @property
        def _origPot(self):
            from galpy.potential.mwpotentials import McMillan17
            return McMillan17

        @_origPot.setter
        def _origPot(self, value) -> None:
            pass

    return CachedInterpRZPotential


def _load_cached(path: Path) -> interpRZPotential | None:
    try:
        with open(path, "rb") as handle:
            state = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError):
        return None
    cls = _lazy_interpolation_class()
    potential = cls.__new__(cls)
    potential.__dict__.update(state)
    return potential


def _store_cache(potential: interpRZPotential, path: Path) -> None:
    """Write atomically; a cache that cannot be written is only a lost speed-up."""
    state = {k: v for k, v in potential.__dict__.items() if k != "_origPot"}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(state, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        pass


@lru_cache(maxsize=1)
def interpolated_potential() -> interpRZPotential:
    """McMillan17 tabulated on an (R, |z|) grid in its natural units, evaluated in C.

    The tables (a pure function of galpy's version and the grid) are pickled to
    :func:`_cache_path` on first use: later runs skip McMillan17's ~20 s set-up and get
    bit-identical tables."""
    path = _cache_path()
    cached = _load_cached(path) if path.is_file() else None
    if cached is not None:
        return cached
    built = _build_interpolation()
    _store_cache(built, path)
    return built


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
        return out                      # spares building the interpolation
    if full_potential:
        from galpy.potential.mwpotentials import McMillan17
        potential = McMillan17
    else:
        potential = interpolated_potential()
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
    redo = np.flatnonzero(_outside_grid(out))
    if redo.size:
        from galpy.potential.mwpotentials import McMillan17
        for name, values in _integrate_chunk(ics[redo], setup, McMillan17).items():
            out[name][redo] = values


def staeckel_delta(potential, R: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Focal length of the Staeckel approximation at (R, z) (natural units): Sanders (2012)
    eq. 9 as galpy's ``estimateDeltaStaeckel`` evaluates it, with the second derivatives
    taken as central differences of the tabulated forces (vectorised: galpy evaluates the
    full McMillan17's second derivatives one point at a time, ~60 ms each), at
    |z| >= :data:`_DELTA_MIN_Z_KPC` where the formula is not 0/0."""
    from galpy.potential import evaluateRforces, evaluatezforces

    ro, _ = _potential_units()
    R = np.asarray(R, float)
    z = np.maximum(np.abs(np.asarray(z, float)), _DELTA_MIN_Z_KPC / ro)
    h = _DELTA_STEP
    # one call per force component: galpy re-reads the whole table on every C call
    f_r = evaluateRforces(potential, np.concatenate([R, R + h, R - h, R, R]),
                          np.concatenate([z, z, z, z + h, z - h]),
                          use_physical=False).reshape(5, -1)
    f_z = evaluatezforces(potential, np.concatenate([R, R, R]),
                          np.concatenate([z, z + h, z - h]), use_physical=False).reshape(3, -1)
    d2r = -(f_r[1] - f_r[2]) / (2 * h)
    d2z = -(f_z[1] - f_z[2]) / (2 * h)
    drz = -(f_r[3] - f_r[4]) / (2 * h)
    delta2 = z ** 2 - R ** 2 + (3 * R * f_z[0] - 3 * z * f_r[0] + R * z * (d2r - d2z)) / drz
    return np.sqrt(np.abs(delta2))


def _staeckel_shape(natural: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """(N, 4) ecc, z_max, r_peri, r_apo (natural units) for (N, 6) R, vR, vT, z, vz, phi."""
    from galpy.actionAngle import actionAngleStaeckel

    R, vR, vT, z, vz, phi = natural.T
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        action_angle = actionAngleStaeckel(pot=interpolated_potential(),
                                           delta=float(np.median(delta)), c=True)
        return np.column_stack(action_angle.EccZmaxRperiRap(R, vR, vT, z, vz, phi,
                                                            delta=delta, c=True))


def staeckel(ics: np.ndarray, setup: OrbitSetup,
             delta_from: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Orbit parameters like :func:`integrate`, z_max/peri/apo/ecc from the Staeckel
    approximation in the interpolated McMillan17 (L_z and energy exact).

    The focal length of orbit i is estimated at the position of orbit ``delta_from[i]``
    (default: its own): Monte Carlo draws use their cluster's nominal position, which
    costs one estimate per cluster.  Orbits the approximation cannot place
    (non-finite) or that reach beyond the grid are integrated instead
    (:func:`integrate`, which itself falls back to the full potential off the grid).
    One thread: galpy's C Staeckel code is not thread-safe, and forking after its
    integrator started OpenMP threads can hang.
    """
    ics = np.asarray(ics, float).reshape(-1, 6)
    if not np.all(np.isfinite(ics)):
        raise ValueError("orbit initial conditions must be finite (validate with orbit_flags)")
    out = {name: np.full(len(ics), np.nan) for name in RESULT_NAMES}
    if not len(ics):
        return out
    potential = interpolated_potential()
    ro, _ = _potential_units()
    orbits = _make_orbits(ics, setup)
    natural = np.asarray(orbits.vxvv, float).reshape(-1, 6)
    where = np.arange(len(ics)) if delta_from is None else np.asarray(delta_from, np.int64)
    sites, site_of = np.unique(where, return_inverse=True)
    delta = staeckel_delta(potential, natural[sites, 0], natural[sites, 3])[site_of]
    shape = _staeckel_shape(natural, delta)
    out["ecc"] = shape[:, 0]
    out["z_max"], out["r_peri"], out["r_apo"] = (shape[:, k] * ro for k in (1, 2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["lz"] = np.asarray(orbits.Lz(), float)
        out["energy"] = np.asarray(orbits.E(pot=potential), float)
    redo = np.flatnonzero(_outside_grid(out) | ~np.all(np.isfinite(shape), axis=1))
    if redo.size:
        integrated = integrate(ics[redo], setup)
        for name in RESULT_NAMES:
            out[name][redo] = integrated[name]
    return out


def orbit_parameters(ics: np.ndarray, setup: OrbitSetup, progress: bool = False,
                     delta_from: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Orbit parameters by ``setup.method``: :func:`staeckel` or :func:`integrate`."""
    if setup.method == "integrate":
        return integrate(ics, setup, progress=progress)
    return staeckel(ics, setup, delta_from)


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
    # each draw's Staeckel focal length is its cluster's, at the nominal position
    delta_from = np.concatenate([np.arange(len(ics)), np.repeat(known, draws)])
    result = orbit_parameters(np.vstack([ics, sampled.reshape(-1, 6)]), setup, progress,
                              delta_from)
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

