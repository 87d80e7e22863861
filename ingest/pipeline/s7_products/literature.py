"""Comparison with literature cluster catalogues (SPEC section 3.11; thesis Tables 4-1, 4-3, 4-4).

Literature tables name clusters in their own way ('Melotte 22', 'melotte_22',
'Pleiades', names padded with spaces), so names are matched on a normalised
key and through the aliases of Hunt's AllNames.  Their columns are found by
common VizieR spellings unless a TOML map (``[literature]``, canonical =
column) says otherwise.  Differences are literature minus this catalogue.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from ingest.core.errors import InputError
from ingest.core.config import Literature
from ingest.pipeline.s1_inputs.formats import read_table
from ingest.pipeline.s1_inputs.readers import normalise_name
from ingest.core.schema import table
from ingest.core.vocabulary import ELEMENTS, XFE

# canonical quantity -> column spellings tried in order (case-insensitive)
_GUESSES: dict[str, tuple[str, ...]] = {
    "name": ("Cluster", "Name", "cluster_name", "OC"),
    "rv": ("RV", "RVmed", "RV_med", "Vr", "rv"),
    "rv_err": ("e_RV", "e_RVmed", "RV_err", "rv_err"),
    "fe_h": ("[Fe/H]", "FeH", "[Fe/H]med", "Fe_H", "fe_h", "Fe"),
    "fe_h_err": ("e_[Fe/H]", "e_FeH", "e_[Fe/H]med", "FeH_err", "e_Fe_H", "fe_h_err", "Fe_err"),
}
for _element in ELEMENTS:
    _symbol = _element.capitalize()
    _GUESSES[f"{_element}_fe"] = (f"[{_symbol}/Fe]", f"{_symbol}_Fe", f"{_element}_fe")
    _GUESSES[f"{_element}_fe_err"] = (f"e_[{_symbol}/Fe]", f"e_{_symbol}_Fe",
                                      f"{_symbol}_Fe_err", f"{_element}_fe_err")

QUANTITIES = ("rv", "fe_h", *XFE)


def cluster_names(clusters: pd.DataFrame) -> pd.Series:
    """The cluster name column: cluster_name (published) or cluster (ingest stage)."""
    return clusters["cluster_name" if "cluster_name" in clusters else "cluster"]


_LEADING_ZEROS = re.compile(r"(?<![0-9])0+(?=[0-9])")


def match_key(name: str) -> str:
    """Matching key: the reader's normalised name without leading zeros in numbers, so that
    'NGC 0752' (WEBDA/Dias style) meets 'NGC 752' (Hunt) and 'FSR 0498' meets 'FSR 498'."""
    return _LEADING_ZEROS.sub("", normalise_name(name))


def name_index(clusters: pd.DataFrame) -> dict[str, int]:
    """Matching key of a name or alias -> row position; primary names win, ambiguous
    aliases drop."""
    index = {match_key(name): row for row, name in enumerate(cluster_names(clusters))}
    if "all_names" not in clusters:
        return index
    alias_rows: dict[str, set[int]] = {}
    for row, aliases in enumerate(clusters["all_names"]):
        if isinstance(aliases, str):
            for alias in re.split(r"[,;]", aliases):
                if alias.strip():
                    alias_rows.setdefault(match_key(alias), set()).add(row)
    for key, rows in alias_rows.items():
        if key not in index and len(rows) == 1:
            index[key] = rows.pop()
    return index


def _load_map(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        with open(path, "rb") as handle:
            mapping = tomllib.load(handle).get("literature", {})
    except FileNotFoundError:
        raise InputError(path, "column map not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, f"column map is not valid TOML: {exc}") from None
    unknown = sorted(set(mapping) - set(_GUESSES))
    if unknown:
        raise InputError(path, f"unknown literature field(s) {unknown}; known: {sorted(_GUESSES)}")
    return mapping


def resolve_columns(columns: list[str], path: Path, mapping: dict[str, str]) -> dict[str, str]:
    """Canonical quantity -> file column, from the explicit map or the default guesses."""
    lower = {column.strip().lower(): column for column in columns}
    resolved = {}
    for canonical, guesses in _GUESSES.items():
        if canonical in mapping:
            if mapping[canonical] not in columns:
                raise InputError(path, "mapped column not in the file", column=mapping[canonical])
            resolved[canonical] = mapping[canonical]
            continue
        found = next((lower[g.lower()] for g in guesses if g.lower() in lower), None)
        if found is not None:
            resolved[canonical] = found
    if "name" not in resolved:
        raise InputError(path, "no cluster-name column (tried Cluster, Name, ...; "
                               "map it with [literature] name = \"COLUMN\")")
    return resolved


def read_literature(path: Path, map_path: Path | None = None) -> pd.DataFrame:
    """Literature table with canonical columns (name plus whatever quantities it has)."""
    data = read_table(path)
    resolved = resolve_columns(list(data.colnames), Path(path), _load_map(map_path))
    frame = pd.DataFrame({"name": [str(v).strip() for v in data[resolved["name"]]]})
    for canonical, column in resolved.items():
        if canonical != "name":
            frame[canonical] = _numeric(data[column])
    return frame


def _numeric(column) -> np.ndarray:
    """Floats from a (possibly masked or text) column; masked or unparsable -> NaN."""
    text = np.asarray(column).astype(str)
    mask = np.ma.getmaskarray(column)
    values = pd.to_numeric(pd.Series(text), errors="coerce").to_numpy(float)
    return np.where(mask, np.nan, values)


def _matched_rows(clusters: pd.DataFrame, literature: pd.DataFrame) -> pd.DataFrame:
    """Literature rows joined to their cluster row position (first literature row wins)."""
    index = name_index(clusters)
    position = literature["name"].map(lambda name: index.get(match_key(name)))
    matched = literature.assign(row=position).dropna(subset=["row"])
    return matched.drop_duplicates("row").astype({"row": int})


def star_count_column(quantity: str) -> str:
    """Cluster-table column counting the stars behind ``quantity`` (FLAG=1 for the RV)."""
    return "n_flag1" if quantity == "rv" else f"{quantity}_num"


def compare_one(label: str, clusters: pd.DataFrame, literature: pd.DataFrame,
                min_stars: int = 1) -> pd.DataFrame:
    """lit_comparison rows of one catalogue: every quantity present in both, finite in both,
    from clusters with at least ``min_stars`` stars behind our value (when counted)."""
    matched = _matched_rows(clusters, literature)
    here = clusters.iloc[matched["row"].to_numpy()]
    names = cluster_names(here).to_numpy()
    parts = []
    for quantity in QUANTITIES:
        if quantity not in matched or quantity not in clusters:
            continue
        value_lit = matched[quantity].to_numpy(float)
        value_here = here[quantity].to_numpy(float)
        err_here = here.get(f"{quantity}_err", pd.Series(np.nan, index=here.index))
        err_lit = matched.get(f"{quantity}_err", pd.Series(np.nan, index=matched.index))
        keep = np.isfinite(value_lit) & np.isfinite(value_here)
        count = star_count_column(quantity)
        if count in here:
            keep &= here[count].to_numpy(float) >= min_stars
        parts.append(pd.DataFrame({
            "catalogue": label, "cluster_name": names[keep], "quantity": quantity,
            "value_here": value_here[keep], "value_here_err": err_here.to_numpy(float)[keep],
            "value_lit": value_lit[keep], "value_lit_err": err_lit.to_numpy(float)[keep],
            "diff": value_lit[keep] - value_here[keep]}))
    columns = table("lit_comparison").names
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(
        columns=columns)


def summarise(comparison: pd.DataFrame) -> pd.DataFrame:
    """lit_summary: mean (with its standard error), median, standard deviation and N."""
    rows = []
    for (label, quantity), group in comparison.groupby(["catalogue", "quantity"], sort=False):
        diff = group["diff"].to_numpy(float)
        std = float(np.std(diff, ddof=1)) if len(diff) > 1 else np.nan
        rows.append({"catalogue": label, "quantity": quantity, "mean_diff": float(diff.mean()),
                     "mean_diff_err": std / np.sqrt(len(diff)), "median_diff":
                     float(np.median(diff)), "std_diff": std, "n": len(diff)})
    summary = pd.DataFrame(rows, columns=table("lit_summary").names)
    return summary.astype({"n": np.int32})


def compare(clusters: pd.DataFrame, literature: list[tuple[str, Path, Path | None]],
            settings: Literature) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(lit_comparison, lit_summary) for every (label, file, optional TOML map) given.

    ``settings.min_stars`` drops clusters whose value rests on fewer stars
    (Fu et al. 2022 compared clusters with >= 3).
    """
    min_stars = settings.min_stars
    parts = [compare_one(label, clusters, read_literature(Path(path), map_path and Path(map_path)),
                         min_stars)
             for label, path, map_path in literature]
    columns = table("lit_comparison").names
    comparison = (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns))
    return comparison, summarise(comparison)
