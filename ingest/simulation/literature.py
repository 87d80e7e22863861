"""Two literature-style cluster tables with known offsets and noise.

litA mimics a high-resolution compilation (small RV and [Fe/H] offsets),
litB a LAMOST-LRS-based one (the -4.7 km/s zero point, larger noise).  Names
are spelled the way real compilations spell them (spaces, case, aliases), so
that the ingest's name normalisation and AllNames lookup are exercised.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

COLUMNS = ["Cluster", "RV", "e_RV", "N_RV", "FeH", "e_FeH"]


def spell(name: str, alias: str, style: int) -> str:
    """One of five spellings: as is, spaces, upper case, lower case with spaces, alias."""
    if style == 4 and alias:
        return alias.replace("_", " ")
    return [name, name.replace("_", " "), name.upper(), name.lower().replace("_", " "), name][style]


def literature_table(truth: pd.DataFrame, spec: dict[str, Any], rng: np.random.Generator) -> pd.DataFrame:
    """Measurements of a random subset of clusters: truth + offset + noise, with stated errors."""
    n = len(truth)
    chosen = np.sort(rng.choice(n, size=int(round(spec["fraction"] * n)), replace=False))
    sub = truth.iloc[chosen]
    k = len(sub)
    n_rv = rng.integers(2, 40, k)
    e_rv = spec["rv_noise"] * rng.uniform(0.7, 1.3, k)
    e_feh = spec["feh_noise"] * rng.uniform(0.7, 1.3, k)
    rv = sub["rv"].to_numpy() + spec["rv_offset"] + rng.normal(0.0, e_rv)
    feh = sub["fe_h"].to_numpy() + spec["feh_offset"] + rng.normal(0.0, e_feh)
    no_feh = rng.random(k) < 0.15
    styles = rng.integers(0, 5, k)
    table = pd.DataFrame({
        "Cluster": [spell(nm, al, st) for nm, al, st in zip(sub["name"], sub["alias"], styles)],
        "RV": np.round(rv, 2), "e_RV": np.round(e_rv, 2), "N_RV": n_rv,
        "FeH": np.where(no_feh, np.nan, np.round(feh, 3)),
        "e_FeH": np.where(no_feh, np.nan, np.round(e_feh, 3)),
    })
    if spec["mg_fe"]:
        table["Mg_Fe"] = np.round(sub["mg_fe"].to_numpy() + rng.normal(0.0, 0.05, k), 3)
    return table
