"""Processing configuration: the defaults of SPEC section 3, overridable by a TOML file."""
from __future__ import annotations

import copy
import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from ingest.core.errors import OcvoError
from ingest.core.paths import DEFAULTS_PATH


class ConfigError(OcvoError, ValueError):
    """A configuration file names an unknown key or gives a value of the wrong type."""


INF = math.inf
# Allowed range of each numeric setting: (low, high, low included, high included).
# A value outside it is a configuration error naming the key, the value and the range.
RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "seed": (0, 2**63 - 1, True, True),
    "members.prob_min": (0, 1, True, False),
    "members.prob_min_cg20": (0, 1, True, False),
    "crossmatch.radius_arcsec": (0, 60, False, True),
    "crossmatch.gaia_epoch": (1990, 2100, True, True),
    "crossmatch.gaia_epoch_dr2": (1990, 2100, True, True),
    "spectra.snr_min": (0, INF, True, False),
    "rv_offsets.*": (-100, 100, True, True),
    "combine.rv_var_pvalue": (0, 1, False, False),
    "combine.rv_jitter_kms": (0, 100, True, True),
    "combine.rv_err_scale": (0, 100, False, True),
    "montecarlo.clip_sigma": (0, INF, False, False),
    "montecarlo.min_fit_stars": (2, INF, True, False),
    "params_qc.teff_max": (0, 100_000, False, True),
    "params_qc.teff_min": (0, 100_000, True, True),
    "params_qc.cool_dwarf_teff": (0, 100_000, True, True),
    "params_qc.cool_dwarf_logg": (-1, 7, True, True),
    "params_qc.cool_dwarf_abs_gmag": (-10, 30, True, True),
    "galactic.r0_kpc": (0, 30, False, True),
    "galactic.z_sun_pc": (-500, 500, True, True),
    "galactic.solar_motion_kms": (-100, 100, True, True),
    "galactic.v_circ_kms": (0, 1000, False, True),
    "galactic.orbit_time_gyr": (0, 14, False, True),
    "galactic.orbit_steps": (10, 10**7, True, True),
    "galactic.orbit_draws": (10, 10**6, True, True),
    "galactic.orbit_cores": (1, 1024, True, True),
    "gradients.good_min_flag12": (1, INF, True, False),
    "gradients.min_element_stars": (1, INF, True, False),
    "gradients.rgc_range_kpc": (0, 100, True, True),
    "gradients.knee_kpc": (0, 100, False, True),
    "gradients.knee_prior_kpc": (0, 100, True, True),
    "gradients.abs_z_range_kpc": (0, 100, True, True),
    "gradients.age_bins_gyr": (0, 14, True, True),
    "gradients.quadratic_age_bins_gyr": (0, 14, True, True),
    "gradients.mcmc_walkers": (8, 10_000, True, True),
    "gradients.mcmc_steps": (1, INF, True, False),
    "gradients.mcmc_burn": (0, INF, True, False),
    "gradients.mcmc_tau_factor": (0, INF, False, False),
    "gradients.mcmc_max_steps": (1, INF, True, False),
    "gradients.mcmc_processes": (0, 1024, True, True),
    "literature.min_stars": (1, INF, True, False),
    "binaries.max_sep_pc": (0, INF, False, False),
    # below 0.5 the 3D pre-selection could miss a pair whose measured separation exceeds
    # max_sep_pc yet qualifies
    "binaries.min_p_close": (0.5, 1, True, True),
    "binaries.max_dv_tan_kms": (0, INF, True, False),
    "binaries.pm_nsigma": (0, INF, True, False),
    "binaries.max_drv_kms": (0, INF, True, False),
    "binaries.rv_nsigma": (0, INF, True, False),
    "binaries.max_dlogage": (0, INF, True, False),
}
# Lists of numbers that must hold this many values (None: any number >= 1) in increasing order.
INCREASING_LISTS: dict[str, int | None] = {
    "gradients.rgc_range_kpc": 2, "gradients.knee_prior_kpc": 2,
    "gradients.abs_z_range_kpc": 2, "gradients.age_bins_gyr": None,
    "gradients.quadratic_age_bins_gyr": None,
}
# (smaller, larger): settings that only make sense in this order.
ORDERED = (("params_qc.teff_min", "params_qc.teff_max"),
           ("gradients.mcmc_steps", "gradients.mcmc_max_steps"))


def describe_range(low: float, high: float, low_in: bool, high_in: bool) -> str:
    """'[0, 1)', '> 0', '>= 10' ...: the allowed range as users read it."""
    if high == INF:
        return f"{'>=' if low_in else '>'} {low:g}"
    return f"{'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"


def _range_of(key: str) -> tuple[float, float, bool, bool] | None:
    section = key.partition(".")[0]
    return RANGES.get(key) or RANGES.get(f"{section}.*" if "." in key else "")


def check_value(key: str, value: Any, source: str) -> None:
    """Stop when a numeric setting lies outside its allowed range (lists: each element)."""
    limits = _range_of(key)
    if limits is None or isinstance(value, bool):
        return
    values = value if isinstance(value, list) else [value]
    low, high, low_in, high_in = limits
    for item in values:
        if not isinstance(item, (int, float)) or isinstance(item, bool):
            raise ConfigError(f"{source}: {key!r} must hold numbers, got {item!r}")
        inside = math.isfinite(item) and (item >= low if low_in else item > low) and (
            item <= high if high_in else item < high)
        if not inside:
            raise ConfigError(f"{source}: {key!r} = {value!r} is outside its allowed range "
                              f"{describe_range(*limits)}")
    wanted = INCREASING_LISTS.get(key, 0)
    if isinstance(value, list) and wanted != 0:
        if (wanted is not None and len(value) != wanted) or not value or any(
                b <= a for a, b in zip(value, value[1:])):
            count = f"{wanted} numbers" if wanted else "one or more numbers"
            raise ConfigError(f"{source}: {key!r} = {value!r} must be {count} in "
                              "increasing order")


def check_seed(seed: Any, source: str = "seed") -> None:
    """The random seed must be a non-negative integer (numpy's generators refuse others)."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"{source}: the seed must be an integer, got {seed!r}")
    check_value("seed", seed, source)


def _leaves(config: dict, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for key, value in config.items():
        if isinstance(value, dict):
            out += _leaves(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def _get(config: dict, key: str) -> Any:
    for part in key.split("."):
        config = config[part]
    return config


def validate(config: dict, source: str = "configuration") -> dict:
    """Check every setting against its range, the ordered pairs and the named choices;
    return ``config``."""
    for key, value in _leaves(config):
        check_value(key, value, source)
    for smaller, larger in ORDERED:
        a, b = _get(config, smaller), _get(config, larger)
        if not a < b:
            raise ConfigError(f"{source}: {smaller!r} = {a!r} must be smaller than "
                              f"{larger!r} = {b!r}")
    _check_choices(config, source)
    return config


def defaults() -> dict[str, Any]:
    """The built-in defaults (a fresh copy)."""
    with open(DEFAULTS_PATH, "rb") as handle:
        return tomllib.load(handle)


def _merge(base: dict, override: dict, source: str, prefix: str = "") -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        where = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(f"{source}: unknown configuration key {where!r}; "
                              f"known: {', '.join(sorted(base))}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {where!r} must be a table")
            merged[key] = _merge(base[key], value, source, where + ".")
        else:
            expected = type(base[key])
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, expected):
                raise ConfigError(f"{source}: {where!r} must be {expected.__name__}, "
                                  f"got {type(value).__name__} {value!r}")
            check_value(where, value, source)
            merged[key] = value
    return merged


def load(path: str | Path | None = None, **overrides: Any) -> dict[str, Any]:
    """Defaults merged with the TOML file ``path`` and keyword ``overrides`` (top level)."""
    config = defaults()
    if path is not None:
        path = Path(path)
        try:
            with open(path, "rb") as handle:
                user = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"{path}: configuration file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        config = _merge(config, user, str(path))
        validate(config, str(path))
    merged = _merge(config, {k: v for k, v in overrides.items() if v is not None}, "command line")
    return validate(merged, "command line" if overrides else str(path or DEFAULTS_PATH))


# ---------------------------------------------------------------- typed sections
#
# Every stage takes its section of the merged configuration as one of these frozen
# objects (``match(members, spectra, settings.crossmatch, release)``); their values come
# only from defaults.toml and the user's file, so no stage restates a default.  Lists
# become tuples.  The manifest records the merged dict itself.

@dataclass(frozen=True)
class Members:
    """[members]: membership-probability cuts."""

    prob_min: float
    prob_min_cg20: float

    def prob_cut(self, catalogue: str) -> tuple[str, float]:
        """(key, value) of the probability cut of ``catalogue`` (CG20 has its own)."""
        key = "prob_min_cg20" if catalogue == "cg20" else "prob_min"
        return f"members.{key}", getattr(self, key)


@dataclass(frozen=True)
class Crossmatch:
    """[crossmatch]: radius, Gaia reference epochs, position fallback for unmatched ids."""

    radius_arcsec: float
    gaia_epoch: float
    gaia_epoch_dr2: float
    id_fallback: bool

    def epoch(self, release: str) -> float:
        """Reference epoch of member positions of Gaia ``release`` (DR2 2015.5, (E)DR3 2016.0)."""
        return self.gaia_epoch_dr2 if release == "DR2" else self.gaia_epoch


@dataclass(frozen=True)
class Spectra:
    """[spectra]: spectrum-level quality control."""

    snr_min: float
    rv_flag_good: int


@dataclass(frozen=True)
class Combine:
    """[combine]: per-star combination and the RV-variability test."""

    rv_var_pvalue: float
    rv_jitter_kms: float
    rv_err_scale: float
    rv_err_scale_auto: bool


@dataclass(frozen=True)
class MonteCarlo:
    """[montecarlo]: Monte Carlo cluster estimates (FLAG=1 selection, Gaussian fit)."""

    clip_sigma: float
    min_fit_stars: int
    exclude_rv_variable: bool


@dataclass(frozen=True)
class ParamsQC:
    """[params_qc]: stellar-parameter quality control (FLAG=12)."""

    teff_max: float
    teff_min: float
    cool_dwarf_teff: float
    cool_dwarf_logg: float
    cool_dwarf_abs_gmag: float
    enabled: bool


@dataclass(frozen=True)
class Galactic:
    """[galactic]: Galaxy model, orbit integration and its Monte Carlo."""

    r0_kpc: float
    z_sun_pc: float
    solar_motion_kms: tuple[float, ...]
    v_circ_kms: float
    orbit_time_gyr: float
    orbit_steps: int
    orbit_draws: int
    orbit_cores: int
    orbit_method: str


@dataclass(frozen=True)
class Gradients:
    """[gradients]: cluster sample, ranges, age bins and MCMC settings of the gradient fits."""

    sample: str
    good_min_flag12: int
    min_element_stars: int
    rgc_range_kpc: tuple[float, ...]
    knee_kpc: float
    knee_prior_kpc: tuple[float, ...]
    abs_z_range_kpc: tuple[float, ...]
    age_bins_gyr: tuple[float, ...]
    quadratic_age_bins_gyr: tuple[float, ...]
    mcmc_walkers: int
    mcmc_steps: int
    mcmc_burn: int
    mcmc_tau_factor: float
    mcmc_max_steps: int
    mcmc_processes: int


@dataclass(frozen=True)
class Literature:
    """[literature]: which clusters are compared with the literature."""

    min_stars: int


@dataclass(frozen=True)
class Binaries:
    """[binaries]: binary-cluster candidate criteria."""

    max_sep_pc: float
    min_p_close: float
    max_dv_tan_kms: float
    pm_nsigma: float
    max_drv_kms: float
    rv_nsigma: float
    require_rv: bool
    max_dlogage: float


@dataclass(frozen=True)
class Settings:
    """The merged configuration as typed sections; ``rv_offsets``: survey -> km/s."""

    seed: int
    members: Members
    crossmatch: Crossmatch
    spectra: Spectra
    rv_offsets: Mapping[str, float]
    combine: Combine
    montecarlo: MonteCarlo
    params_qc: ParamsQC
    galactic: Galactic
    gradients: Gradients
    literature: Literature
    binaries: Binaries


# Settings that name one of a few choices: key -> the allowed values.
CHOICES: dict[str, tuple[str, ...]] = {
    "galactic.orbit_method": ("staeckel", "integrate"),
    "gradients.sample": ("thesis", "fu2022", "custom"),
}
def _check_choices(config: dict, source: str) -> None:
    for key, allowed in CHOICES.items():
        value = _get(config, key)
        if value not in allowed:
            raise ConfigError(f"{source}: {key!r} must be one of {', '.join(allowed)}, "
                              f"got {value!r}")


def _section(kind: type, values: dict[str, Any], name: str, source: str) -> Any:
    """One frozen section from its table; a missing or extra key is a ConfigError."""
    wanted = {f.name for f in fields(kind)}
    if set(values) != wanted:
        missing, extra = sorted(wanted - set(values)), sorted(set(values) - wanted)
        raise ConfigError(f"{source}: [{name}] "
                          + "; ".join(part for part in (
                              f"lacks {', '.join(missing)}" if missing else "",
                              f"has unknown {', '.join(extra)}" if extra else "") if part))
    floats = {f.name for f in fields(kind) if f.type == "float"}
    return kind(**{k: tuple(v) if isinstance(v, list) else float(v) if k in floats else v
                   for k, v in values.items()})


def settings(config: dict, source: str = "configuration") -> Settings:
    """The typed sections of a merged configuration dict, after checking it (ranges,
    order, choices)."""
    validate(config, source)
    built = {name: _section(kind, config[name], name, source)
             for name, kind in _SECTION_TYPES.items()}
    return Settings(seed=config["seed"],
                    rv_offsets=MappingProxyType({k: float(v) for k, v in
                                                 config["rv_offsets"].items()}),
                    **built)


_SECTION_TYPES: dict[str, type] = {
    "members": Members, "crossmatch": Crossmatch, "spectra": Spectra, "combine": Combine,
    "montecarlo": MonteCarlo, "params_qc": ParamsQC, "galactic": Galactic,
    "gradients": Gradients, "literature": Literature, "binaries": Binaries,
}
