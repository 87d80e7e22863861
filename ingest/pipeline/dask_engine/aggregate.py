"""Per-star combination and per-cluster estimates on Dask, partitioned by cluster.

Every matched pair goes to the partition of its member's cluster, so each star (a
member row belongs to one cluster) and each cluster lies wholly in one partition,
and the partitions run ``pipeline.member_rows`` and ``estimation.estimate``
unchanged.  Within a partition a star's spectra and a cluster's stars keep the
order they have in the whole table, so every per-group sum adds the same numbers
in the same order and gives the same bits.  The one statistic over all stars, the
per-survey RV error scale of the variability test (the median chi-square
probability of all multi-epoch stars of a survey), is found once with the same
root search over a median gathered from all partitions (``error_scales``) and
handed to each partition.  Partitions are contiguous runs of clusters (by key)
with about equal numbers of pairs.
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from scipy import stats

from ingest.pipeline import s4_combine as combine
from ingest.pipeline import s5_estimate as estimation
from ingest.core.config import Combine, Settings
from ingest.pipeline.s8_outputs import tables
from ingest.pipeline import s3_quality as quality

PARTITIONS_PER_WORKER = 2


def partition_of_pairs(pairs: pd.DataFrame, members: pd.DataFrame,
                       n_parts: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Partition number of every pair and the cluster keys of each partition."""
    keys = members["cluster_key"].to_numpy(object)[
        members.index.get_indexer(pairs["member_index"].to_numpy())].astype(str)
    clusters, label, weight = np.unique(keys, return_inverse=True, return_counts=True)
    n_parts = max(1, min(n_parts, len(clusters)))
    bounds = np.searchsorted(np.cumsum(weight), np.arange(1, n_parts) * len(pairs) / n_parts)
    cluster_part = np.searchsorted(bounds, np.arange(len(clusters)), side="right")
    groups = [clusters[cluster_part == p] for p in range(n_parts)]
    return cluster_part[label], [g for g in groups if len(g)]


def _star_groups(pairs: pd.DataFrame, checked: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Star label of each usable (QC ok) pair row, as ``pipeline.member_rows`` forms it,
    and the mask of those rows."""
    _, group = np.unique(pairs["member_index"].to_numpy(), return_inverse=True)
    usable = (checked["qc"] == quality.QC_OK).to_numpy()
    return group[usable], usable


def _rv_columns(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RV, its error and the survey label of each row, as ``combine.combine`` reads them."""
    survey = (rows["survey"].astype(str).to_numpy() if "survey" in rows
              else np.full(len(rows), ""))
    return (rows["rv"].to_numpy(np.float64), rows["rv_err"].to_numpy(np.float64),
            np.asarray(survey, dtype=str))


def part_probabilities(part: dict, survey: str, scale: float, jitter: float) -> np.ndarray:
    """Chi-square probabilities of one partition's stars with >= 2 epochs of ``survey``
    for the error scale ``scale`` (``combine.median_probability`` before its median)."""
    group, usable = _star_groups(part["pairs"], part["checked"])
    rv, rv_err, labels = _rv_columns(part["checked"].loc[usable])
    own = labels == survey
    n_groups = int(group.max()) + 1 if len(group) else 0
    sigma = combine.widened_errors(rv_err[own], jitter, scale)
    result = combine.weighted_stats(group[own], rv[own], sigma, n_groups)
    multi = result["nobs"] >= 2
    return stats.chi2.sf(result["chi2"][multi], result["nobs"][multi] - 1)


def surveys_used(part: dict) -> np.ndarray:
    """Survey labels of one partition's usable spectra."""
    _, usable = _star_groups(part["pairs"], part["checked"])
    return np.unique(_rv_columns(part["checked"].loc[usable])[2])


def error_scales(client, parts: list, surveys: list[str], settings: Combine) -> dict[str, float]:
    """``combine.error_scales`` over all partitions: per survey the smallest scale >=
    ``rv_err_scale`` with median chi-square probability 1/2 (``combine.calibrated_scale``),
    each median taken over the probabilities gathered from every partition."""
    minimum = settings.rv_err_scale
    if not settings.rv_err_scale_auto:
        return {label: minimum for label in surveys}

    def excess(label: str, scale: float) -> float:
        futures = [client.submit(part_probabilities, part, label, scale,
                                 settings.rv_jitter_kms, pure=False) for part in parts]
        probabilities = np.concatenate(client.gather(futures))
        if len(probabilities) < combine.MIN_CALIBRATION_STARS:
            return np.nan
        return float(np.median(probabilities)) - 0.5

    return {label: combine.scale_root(functools.partial(excess, label), minimum,
                                      combine.MAX_ERR_SCALE)
            for label in surveys}


def combine_part(part: dict, settings: Combine, scales: dict[str, float]) -> pd.DataFrame:
    """``tables.member_rows`` of one partition with the error ``scales`` of all stars,
    indexed by the members' row labels."""
    stars = tables.member_rows(part["members"], part["pairs"], part["raw"], part["checked"],
                               settings, scales)
    return stars.set_axis(np.unique(part["pairs"]["member_index"].to_numpy()))


def estimate_part(part: dict, stars: pd.DataFrame,
                  settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The estimate stage of ``run.catalogue_tables`` on one partition's clusters."""
    cluster_table, label = tables.cluster_rows(part["clusters"], part["members"], stars)
    stars = stars.copy()
    stars["abs_gmag"] = quality.absolute_gmag(stars["gmag"].to_numpy(float),
                                              cluster_table["dist50"].to_numpy(float)[label],
                                              cluster_table["av50"].to_numpy(float)[label])
    estimates, star_flags = estimation.estimate(stars, label, len(cluster_table),
                                                settings.montecarlo, settings.params_qc)
    return (pd.concat([cluster_table, estimates], axis=1),
            pd.concat([stars, star_flags], axis=1))


def split(clusters: pd.DataFrame, members: pd.DataFrame, pairs: pd.DataFrame,
          raw: pd.DataFrame, checked: pd.DataFrame, n_parts: int) -> list[dict]:
    """The rows of each partition (pairs, raw and checked spectra keep their order)."""
    part_of_pair, groups = partition_of_pairs(pairs, members, n_parts)
    member_keys = members["cluster_key"].to_numpy(object).astype(str)
    cluster_keys = clusters["cluster_key"].to_numpy(object).astype(str)
    parts = []
    for number, keys in enumerate(groups):
        rows = np.flatnonzero(part_of_pair == number)
        parts.append({
            "pairs": pairs.iloc[rows].reset_index(drop=True),
            "raw": raw.iloc[rows].reset_index(drop=True),
            "checked": checked.iloc[rows].reset_index(drop=True),
            "members": members[np.isin(member_keys, keys)],
            "clusters": clusters[np.isin(cluster_keys, keys)],
        })
    return parts


def gather_tables(results: list[tuple[pd.DataFrame, pd.DataFrame]]
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cluster rows in key order and star rows in member-row order, as the local path."""
    cluster_table = pd.concat([c for c, _ in results], ignore_index=True)
    cluster_table = cluster_table.iloc[np.argsort(cluster_table["cluster_key"].to_numpy(str),
                                                  kind="stable")].reset_index(drop=True)
    stars = pd.concat([s for _, s in results]).sort_index(kind="stable").reset_index(drop=True)
    return cluster_table, stars
