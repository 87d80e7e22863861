"""Processing configuration: the defaults of SPEC section 3, overridable by a TOML file."""
from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from .errors import OcvoError

DEFAULTS_PATH = Path(__file__).with_name("defaults.toml")


class ConfigError(OcvoError, ValueError):
    """A configuration file names an unknown key or gives a value of the wrong type."""


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
    return _merge(config, {k: v for k, v in overrides.items() if v is not None}, "command line")
