"""Readers on the real third-party files in ../shared/data (skipped when absent).

Expected values are read from the files with the standard-library csv module, not
through the code under test.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from ingest.core import config
from ingest.pipeline import s2_crossmatch as crossmatch
from ingest.pipeline.s1_inputs import colmap, readers
from ingest.core.errors import InputError

pytestmark = pytest.mark.realdata

HUNT_SUBSET = "hunt2023_members_29nearby_prob_gt0.5.csv"
HUNT_SUBSET_MAP = colmap.COLMAP_DIR / "hunt2023-subset.toml"
GAIA_RV_MAP = colmap.COLMAP_DIR / "gaia-dr3-rvs.toml"



def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_lamost_lrs_sample_reads_with_default_map(shared_data):
    path = shared_data / "lamost_sample" / "gaia_lamost_chemo_kinematic_features.csv"
    rows = csv_rows(path)
    frame, rejections = readers.read_spectra(path)
    assert len(frame) == len(rows) and rejections["spectra_no_position"] == 0
    assert (frame["survey"] == "lamost-lrs").all()
    assert frame["source_id"].tolist() == [int(r["gaia_source_id"]) for r in rows]
    assert frame["obsid"].tolist() == [int(r["obsid"]) for r in rows]
    np.testing.assert_array_equal(frame["ra"], [float(r["ra_lamost"]) for r in rows])
    np.testing.assert_array_equal(frame["rv_err"], [float(r["rv_err"]) for r in rows])
    np.testing.assert_array_equal(frame["snr"], [float(r["snrg"]) for r in rows])


def test_lamost_lrs_extract_without_rv_errors_is_refused(shared_data):
    path = shared_data / "lamost_sample" / "gaia_lamost_larger_velocity_features.csv"
    with pytest.raises(InputError, match="rv_err") as info:
        readers.read_spectra(path, survey="lamost-lrs")
    assert str(path) in str(info.value)


def test_hunt2023_subset_reads_via_map_and_links_to_hunt2023_clusters(shared_data):
    mapfile = HUNT_SUBSET_MAP
    path = shared_data / "members" / "hunt2023_subset" / HUNT_SUBSET
    rows = csv_rows(path)
    members, rejections = readers.read_members(path, "hunt2023", colmap=mapfile, prob_min=0.5)
    assert len(members) == len(rows) and sum(rejections.values()) == 0
    assert members["source_id"].tolist() == [int(r["source_id"]) for r in rows]
    clusters_path = shared_data / "cluster_tables" / "HUNT2023.csv"
    clusters = readers.read_clusters(clusters_path, "hunt2023")
    assert len(clusters) == len(csv_rows(clusters_path))
    linked = readers.link_members_to_clusters(members, clusters, path, clusters_path)
    pleiades = sum(r["hunt_name"] == "Melotte 22" for r in rows)
    assert (linked["cluster_key"] == "melotte22").sum() == pleiades


def test_gyrointerp_gaia_rvs_read_as_spectra_and_match_hunt_by_id(shared_data):
    mapfile = GAIA_RV_MAP
    path = shared_data / "members" / "gyrointerp" / "pleiades_rebull2016_x_dr3.csv"
    rows = csv_rows(path)
    spectra, _ = readers.read_spectra(path, survey=mapfile)
    assert len(spectra) == len(rows)
    assert (spectra["survey"] == "gaia-dr3").all()
    assert spectra["rv"].notna().sum() == sum(r["radial_velocity"] != "" for r in rows)
    members_map = HUNT_SUBSET_MAP
    members_path = shared_data / "members" / "hunt2023_subset" / HUNT_SUBSET
    members, _ = readers.read_members(members_path, "hunt2023", colmap=members_map)
    pairs = crossmatch.match(members, spectra, config.settings(config.load()).crossmatch, "DR3")
    shared_ids = {int(r["dr3_source_id"]) for r in rows} & {
        int(r["source_id"]) for r in csv_rows(members_path)}
    by_id = pairs[pairs["match_method"] == "source_id"]
    assert len(by_id) == len(shared_ids) > 0


def test_cantat2020_tables_read_with_default_map(shared_data):
    clusters_path = shared_data / "cluster_tables" / "CANTAT2020.csv"
    clusters = readers.read_clusters(clusters_path, "cg20")
    assert len(clusters) == len(csv_rows(clusters_path))
    assert clusters["n_members"].notna().all()
    members_path = shared_data / "members" / "cantat2020" / "cantat2020_blanco1_members_dr2.csv"
    members, rejections = readers.read_members(members_path, "cg20", prob_min=0.7)
    expected = [r for r in csv_rows(members_path) if float(r["proba"]) > 0.7]
    assert len(members) == len(expected)
    assert rejections["members_below_prob_min"] == len(csv_rows(members_path)) - len(expected)
    linked = readers.link_members_to_clusters(members, clusters, members_path, clusters_path)
    assert set(linked["cluster"]) == {"Blanco 1"}


def test_hunt2024_cluster_table_reads_with_default_map(shared_data):
    path = shared_data / "cluster_tables" / "HUNT2024.csv"
    clusters = readers.read_clusters(path)
    rows = csv_rows(path)
    assert len(clusters) == len(rows)
    np.testing.assert_allclose(clusters["rv_lit"], [float(r["RV"]) if r["RV"] else np.nan
                                                    for r in rows], equal_nan=True)
