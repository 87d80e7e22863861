"""Rows of the published cluster, member and spectrum tables from the matched inputs.

One row per member with a matched spectrum (identity, match summary, combined
values), one per matched (spectrum, member) pair, and one per cluster with a
matched star carrying the catalogue's columns; the estimates are added by
:mod:`ingest.pipeline.s5_estimate`.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ingest.core.config import Combine
from ingest.pipeline.s4_combine import combine

CLUSTER_FROM_CATALOGUE = ("mc_id", "ra", "dec", "glon", "glat", "r50", "pmra", "s_pmra",
                          "pmdec", "s_pmdec", "plx", "s_plx", "dist16", "dist50", "dist84",
                          "logage50", "av50", "rv_lit", "rv_lit_err", "n_rv_lit")
MEMBER_FROM_CATALOGUE = ("ra", "dec", "pmra", "pmdec", "plx", "gmag", "bp_rp", "prob")


def _first_per_group(group: np.ndarray, values: pd.Series, n_groups: int) -> pd.Series:
    """The first non-null value of each group (rows are in obsid order within a group)."""
    frame = pd.DataFrame({"g": group, "v": values.to_numpy()}).dropna()
    first = frame.drop_duplicates("g")
    return pd.Series(first["v"].to_numpy(), index=first["g"].to_numpy()).reindex(
        range(n_groups))


def _mean_position(group: np.ndarray, ra: np.ndarray, dec: np.ndarray,
                   n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean fibre position per group via unit vectors (safe across RA = 0/360)."""
    r, d = np.radians(ra), np.radians(dec)
    xyz = [np.bincount(group, weights=w, minlength=n_groups)
           for w in (np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d))]
    mean_ra = np.degrees(np.arctan2(xyz[1], xyz[0])) % 360.0
    mean_dec = np.degrees(np.arctan2(xyz[2], np.hypot(xyz[0], xyz[1])))
    return mean_ra, mean_dec


def member_rows(members: pd.DataFrame, pairs: pd.DataFrame, raw: pd.DataFrame,
                checked: pd.DataFrame, combine_settings: Combine,
                fixed_scales: Mapping[str, float] | None = None) -> pd.DataFrame:
    """One row per member with a matched spectrum: identity, match summary, combined values
    (``fixed_scales``: the RV error scales, see ``s4_combine.error_scales``)."""
    star_index, group = np.unique(pairs["member_index"].to_numpy(), return_inverse=True)
    n = len(star_index)
    order = np.lexsort((raw["obsid"].to_numpy(np.int64), group))
    g_sorted = group[order]
    source = members.loc[star_index]
    stars = pd.DataFrame({
        "member_key": source["member_key"].to_numpy(object),
        "source_id": source["source_id"].array,
        "cluster_name": source["cluster"].to_numpy(object),
        "cluster_key": source["cluster_key"].to_numpy(object),
        **{c: source[c].to_numpy(float) for c in MEMBER_FROM_CATALOGUE},
    })
    stars["uid"] = _first_per_group(g_sorted, raw["star_id"].iloc[order], n).to_numpy(object)
    stars["gp_id"] = _first_per_group(g_sorted, raw["gp_id"].iloc[order], n).astype("Int64")
    stars["ra_obs"], stars["dec_obs"] = _mean_position(group, raw["ra"].to_numpy(float),
                                                       raw["dec"].to_numpy(float), n)
    by_id = np.bincount(group, weights=(pairs["match_method"] == "source_id").to_numpy(),
                        minlength=n)
    stars["match_method"] = np.where(by_id > 0, "source_id", "position")
    largest = np.zeros(n)
    np.maximum.at(largest, group, pairs["match_sep"].to_numpy(float))
    stars["match_sep"] = largest
    stars["n_spec"] = np.bincount(group, minlength=n)
    usable_rows = (checked["qc"] == "ok").to_numpy()
    combined = combine(checked.loc[usable_rows].reset_index(drop=True), group[usable_rows], n,
                       combine_settings, fixed_scales)
    return pd.concat([stars, combined], axis=1)


def spectrum_rows(raw: pd.DataFrame, checked: pd.DataFrame, pairs: pd.DataFrame,
                  members: pd.DataFrame) -> pd.DataFrame:
    """The provenance table: one row per matched (spectrum, member) pair."""
    member = members.loc[pairs["member_index"].to_numpy()]
    return pd.DataFrame({
        "obsid": raw["obsid"].to_numpy(np.int64),
        "member_key": member["member_key"].to_numpy(object),
        "source_id": member["source_id"].array,
        "cluster_name": member["cluster"].to_numpy(object),
        **{c: raw[c].to_numpy() for c in ("survey", "band", "ra", "dec", "epoch", "snr",
                                          "rv", "rv_err", "rv_offset", "rv_flag",
                                          "teff", "logg")},
        "fe_h": raw["feh"].to_numpy(float),
        "match_method": pairs["match_method"].to_numpy(object),
        "match_sep": pairs["match_sep"].to_numpy(float),
        "qc": checked["qc"].to_numpy(object),
    })


def cluster_rows(clusters: pd.DataFrame, members: pd.DataFrame,
                 stars: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Catalogue columns of every cluster with a matched star, and each star's cluster label."""
    keys, label = np.unique(stars["cluster_key"].to_numpy(str), return_inverse=True)
    catalogue = clusters.set_index("cluster_key").loc[keys]
    counts = members["cluster_key"].value_counts()
    rows = pd.DataFrame({
        "cluster_name": catalogue["cluster"].to_numpy(object),
        "cluster_key": keys,
        "all_names": catalogue["all_names"].to_numpy(object),
        **{c: catalogue[c].to_numpy() for c in CLUSTER_FROM_CATALOGUE},
        "n_members": counts.reindex(keys).fillna(0).to_numpy(np.int64),
    })
    return rows, label
