"""Readers: formats, default column maps, user maps, name normalisation, cluster linking."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table
from astropy.time import Time

from ingest.pipeline.s1_inputs import colmap, formats, readers

ROOT = Path(__file__).resolve().parent.parent


def hunt_members_table() -> Table:
    """Four Hunt-2024-style members; source 11 appears twice (two clusters)."""
    return Table({
        "Name": ["Melotte_22", "Melotte_22", "NGC_2632", "NGC_2632"],
        "ID": [1, 1, 2, 2],
        "GaiaDR3": np.array([11, 12, 11, 5_000_000_000_000_000_001], np.int64),
        "Prob": [0.9, 0.4, 0.95, 0.7],
        "RA_ICRS": [56.75, 56.8, 130.1, 130.2],
        "DE_ICRS": [24.1, 24.2, 19.6, 19.7],
        "pmRA": [20.0, 19.0, -36.0, -35.0], "e_pmRA": [0.1] * 4,
        "pmDE": [-45.0, -44.0, -13.0, -12.0], "e_pmDE": [0.1] * 4,
        "Plx": [7.3, 7.4, 5.4, 5.3], "e_Plx": [0.02] * 4,
        "Gmag": [12.0, 13.0, 11.0, 14.0], "BP-RP": [0.9, 1.1, 0.8, 1.4],
    })


def hunt_clusters_table() -> Table:
    return Table({
        "Name": ["Melotte_22", "NGC_2632"], "ID": [1, 2],
        "AllNames": ["Melotte_22,Pleiades,M45", "NGC_2632,Praesepe,M44"],
        "RA_ICRS": [56.6, 130.1], "DE_ICRS": [24.1, 19.6], "RV": [5.7, 35.0],
        "e_RV": [0.1, 0.2], "n_RV": [200, 150], "logAge50": [8.0, 8.8],
    })


def mrs_table() -> Table:
    """Three MRS-style spectra: one without a Gaia id (-9999), one with a -9999 [Mg/Fe]."""
    return Table({
        "obsid": np.array([101, 102, 103], np.int64),
        "uid": ["G1", "G2", "G2"], "gp_id": np.array([7, 8, 8], np.int64),
        "gaia_source_id": np.array([11, -9999, 5_000_000_000_000_000_001], np.int64),
        "ra": [56.75, 130.2, 130.2], "dec": [24.1, 19.7, 19.7],
        "obsdate": ["2019-01-01", "2016-01-01", "2020-07-02"],
        "lmjm": np.array([84_000_000, 83_000_000, 85_000_000], np.int64),
        "band": ["B", "B", "R"], "snr": [50.0, 8.0, 30.0],
        "rv_br0": [5.5, 34.0, 35.2], "rv_br0_err": [0.5, 1.0, 0.7], "rv_br_flag": [0, 0, 1],
        "teff_lasp": [5600.0, 6000.0, 6100.0], "teff_lasp_err": [50.0, 60.0, 70.0],
        "teff_cnn": [5650.0, 6050.0, 6150.0], "teff_cnn_err": [40.0, 45.0, 55.0],
        "mg_fe": [0.1, -9999.0, 0.05], "mg_fe_err": [0.05, -9999.0, 0.04],
    })


def lrs_table() -> Table:
    return Table({
        "obsid": np.array([1, 2], np.int64), "designation": ["J1", "J2"],
        "gaia_source_id": np.array([11, 12], np.int64), "ra": [56.75, 56.8],
        "dec": [24.1, 24.2], "lmjd": [58000.0, 58001.0], "snrg": [40.0, 60.0],
        "rv": [1.0, 2.0], "rv_err": [5.0, 4.0], "teff": [5000.0, 5100.0],
        "teff_err": [50.0, 40.0], "logg": [4.5, 4.4], "logg_err": [0.1, 0.1],
        "feh": [0.0, 0.1], "feh_err": [0.05, 0.05],
    })


def write(table: Table, path: Path, **kwargs) -> Path:
    table.write(path, **kwargs)
    return path


@pytest.mark.parametrize("name, kwargs", [
    ("t.fits", {}), ("t.fits.gz", {}), ("t.vot", {"format": "votable"}),
    ("t.csv", {}), ("t.csv.gz", {"format": "ascii.csv"}), ("t.ecsv", {}),
    ("t.parquet", {}), ("t_fits_without_suffix.dat", {"format": "fits"}),
])
def test_read_table_formats_give_the_same_values(tmp_path, name, kwargs):
    original = hunt_members_table()
    table = formats.read_table(write(original, tmp_path / name, **kwargs))
    assert table.colnames == original.colnames
    assert [int(v) for v in table["GaiaDR3"]] == [int(v) for v in original["GaiaDR3"]]
    np.testing.assert_allclose(np.asarray(table["Prob"], float), original["Prob"])
    assert [str(v) for v in table["Name"]] == list(original["Name"])


def test_normalise_name_unifies_spacing_case_and_separators():
    names = ("Melotte 22", "Melotte_22", "melotte-22", " MELOTTE  22")
    keys = {readers.normalise_name(n) for n in names}
    assert keys == {"melotte22"}
    assert readers.display_name(" Melotte_22  ") == "Melotte 22"


def test_read_members_hunt2024_canonical_columns(tmp_path):
    frame, rejections = readers.read_members(write(hunt_members_table(), tmp_path / "m.fits"))
    assert list(frame.columns) == list(colmap.FIELDS["members"]) + ["cluster_key", "member_key"]
    assert frame["cluster"].tolist() == ["Melotte 22", "NGC 2632", "NGC 2632"]
    assert frame["member_key"].tolist() == ["Gaia DR3 12", "Gaia DR3 11",
                                            "Gaia DR3 5000000000000000001"]
    assert frame["cluster_key"].tolist() == ["melotte22", "ngc2632", "ngc2632"]
    assert frame["source_id"].tolist() == [12, 11, 5_000_000_000_000_000_001]
    assert rejections["members_duplicate_source_id"] == 1
    assert frame["bp_rp"].tolist() == [1.1, 0.8, 1.4]


def test_read_members_duplicate_keeps_highest_probability(tmp_path):
    frame, _ = readers.read_members(write(hunt_members_table(), tmp_path / "m.fits"))
    kept = frame[frame["source_id"] == 11]
    assert kept["cluster"].tolist() == ["NGC 2632"] and kept["prob"].tolist() == [0.95]


def test_read_members_probability_cut_is_strict_and_counted(tmp_path):
    frame, rejections = readers.read_members(write(hunt_members_table(), tmp_path / "m.fits"),
                                             prob_min=0.7)
    assert frame["prob"].tolist() == [0.95]
    assert rejections["members_below_prob_min"] == 2


def test_read_members_without_prob_column_defaults_to_one(tmp_path):
    table = hunt_members_table()
    table.remove_column("Prob")
    frame, rejections = readers.read_members(write(table, tmp_path / "m.csv"), prob_min=0.5)
    assert frame["prob"].tolist() == [1.0, 1.0, 1.0]
    assert rejections["members_below_prob_min"] == 0


def test_read_clusters_hunt2024(tmp_path):
    path = write(hunt_clusters_table(), tmp_path / "c.vot", format="votable")
    frame = readers.read_clusters(path)
    assert frame["cluster"].tolist() == ["Melotte 22", "NGC 2632"]
    assert frame["rv_lit"].tolist() == [5.7, 35.0]
    assert frame["rv_lit_err"].tolist() == [0.1, 0.2]
    assert frame["n_rv_lit"].tolist() == [200, 150]
    assert frame["dist50"].isna().all()


def test_read_spectra_mrs_autodetected(tmp_path):
    frame, rejections = readers.read_spectra(write(mrs_table(), tmp_path / "mrs.fits"))
    assert (frame["survey"] == "lamost-mrs").all()
    assert frame["source_id"].isna().tolist() == [False, True, False]
    assert frame["source_id"].iloc[2] == 5_000_000_000_000_000_001
    assert frame["star_id"].tolist() == ["G1", "G2", "G2"]
    assert frame["rv"].tolist() == [5.5, 34.0, 35.2]
    assert frame["rv_flag"].tolist() == [0.0, 0.0, 1.0]
    assert np.isnan(frame["mg_fe"].iloc[1]) and np.isnan(frame["mg_fe_err"].iloc[1])
    expected = Time(np.array([84_000_000, 83_000_000, 85_000_000]) / 1440.0, format="mjd").jyear
    np.testing.assert_allclose(frame["epoch"], expected, atol=1e-6)
    assert "spectra_no_position" in rejections and not any(rejections.values())


def test_negative_vsini_is_no_measurement(tmp_path):
    """v sin i is a line width: a negative catalogue value becomes NaN, zero stays."""
    table = mrs_table()
    table["vsini_lasp"] = [-3.0, 0.0, 12.5]
    table["vsini_lasp_err"] = [2.0, 2.0, 2.5]
    frame, _ = readers.read_spectra(write(table, tmp_path / "mrs.fits"))
    assert np.isnan(frame["vsini"].iloc[0])
    assert frame["vsini"].iloc[1:].tolist() == [0.0, 12.5]


def test_epoch_from_iso_dates_when_no_lmjm(tmp_path):
    table = mrs_table()
    table.remove_column("lmjm")
    table["obsdate"][1] = ""
    frame, _ = readers.read_spectra(write(table, tmp_path / "mrs.csv"), survey="lamost-mrs")
    expected = Time(["2019-01-01", "2016-01-01", "2020-07-02"], scale="utc").jyear
    np.testing.assert_allclose(frame["epoch"].iloc[[0, 2]], expected[[0, 2]], atol=1e-6)
    assert np.isnan(frame["epoch"].iloc[1])


def test_read_spectra_lrs_autodetected_with_mjd_epoch(tmp_path):
    frame, _ = readers.read_spectra(write(lrs_table(), tmp_path / "lrs.parquet"))
    assert (frame["survey"] == "lamost-lrs").all()
    assert frame["star_id"].tolist() == ["J1", "J2"]
    np.testing.assert_allclose(frame["epoch"], Time([58000.0, 58001.0], format="mjd").jyear)
    assert frame["snr"].tolist() == [40.0, 60.0]


def test_map_alternatives_first_present_wins(tmp_path):
    table = lrs_table()
    table.rename_columns(["ra", "dec"], ["ra_lamost", "dec_lamost"])
    table["ra_obs"] = [0.0, 0.0]
    frame, _ = readers.read_spectra(write(table, tmp_path / "lrs.csv"), survey="lamost-lrs")
    assert frame["ra"].tolist() == [56.75, 56.8]


def test_user_map_overrides_default_entry_by_entry(tmp_path):
    table = mrs_table()
    table["rv_b0"] = [5.0, 33.0, 35.0]
    mapfile = tmp_path / "blue.toml"
    mapfile.write_text('[spectra]\nrv = "rv_b0"\n')
    frame, _ = readers.read_spectra(write(table, tmp_path / "mrs.fits"), survey="lamost-mrs",
                                    colmap=mapfile)
    assert frame["rv"].tolist() == [5.0, 33.0, 35.0]
    assert frame["rv_err"].tolist() == [0.5, 1.0, 0.7]
    assert frame["teff"].tolist() == [5650.0, 6050.0, 6150.0]


def test_map_matches_column_names_case_insensitively(tmp_path):
    table = lrs_table()
    table.rename_columns(["rv", "rv_err"], ["RV", "RV_ERR"])
    frame, _ = readers.read_spectra(write(table, tmp_path / "lrs.fits"), survey="lamost-lrs")
    assert frame["rv_err"].tolist() == [5.0, 4.0]


def test_apogee_example_map_reads_members_and_spectra(tmp_path):
    mapfile = ROOT / "ingest" / "colmaps" / "apogee-members.toml"
    table = Table({
        "CLUSTER": ["NGC 6791", "NGC 6791"], "APOGEE_ID": ["2M1", "2M2"],
        "GAIAEDR3_SOURCE_ID": np.array([21, 22], np.int64), "CG_PROB": [0.9, 0.6],
        "RA": [290.2, 290.3], "DEC": [37.7, 37.8], "VHELIO_AVG": [-47.1, -47.5],
        "VERR": [0.1, 0.2], "FE_H": [0.35, 0.30], "FE_H_ERR": [0.01, 0.02],
    })
    for kind in ("members", "spectra"):
        for names in colmap.column_map(kind, None, mapfile).entries.values():
            if names[0] not in table.colnames:
                table[names[0]] = [1.0, 2.0]
    path = write(table, tmp_path / "apogee.fits")
    members, _ = readers.read_members(path, colmap=mapfile, prob_min=0.7)
    spectra, _ = readers.read_spectra(path, survey=mapfile)
    assert members["source_id"].tolist() == [21]
    assert spectra["rv"].tolist() == [-47.1, -47.5]
    assert spectra["feh"].tolist() == [0.35, 0.30]
    assert (spectra["survey"] == "apogee-dr17").all()


def test_link_members_resolves_aliases_to_primary_names(tmp_path):
    clusters = readers.read_clusters(write(hunt_clusters_table(), tmp_path / "c.fits"))
    members = pd.DataFrame({"cluster": ["Pleiades", "NGC 2632", "M44"]})
    members["cluster_key"] = members["cluster"].map(readers.normalise_name)
    linked = readers.link_members_to_clusters(members, clusters, "m.csv", "c.fits")
    assert linked["cluster"].tolist() == ["Melotte 22", "NGC 2632", "NGC 2632"]
    assert linked["cluster_key"].tolist() == ["melotte22", "ngc2632", "ngc2632"]


@pytest.mark.parametrize("catalogue", colmap.CATALOGUES)
def test_every_default_catalogue_map_loads(catalogue):
    for kind in ("clusters", "members"):
        cmap = colmap.column_map(kind, catalogue, None)
        assert set(colmap.REQUIRED[kind]) <= set(cmap.entries)


@pytest.mark.parametrize("survey", colmap.SURVEYS)
def test_every_default_survey_map_loads(survey):
    cmap = colmap.column_map("spectra", survey, None)
    assert set(colmap.REQUIRED["spectra"]) <= set(cmap.entries)
    assert cmap.survey == survey


def test_missing_probability_values_do_not_pass_the_cut(tmp_path):
    table = hunt_members_table()
    table["Prob"] = [0.9, np.nan, 0.95, 0.9]
    frame, rejections = readers.read_members(write(table, tmp_path / "m.fits"), prob_min=0.5)
    assert frame["source_id"].tolist() == [11, 5_000_000_000_000_000_001]
    assert rejections["members_below_prob_min"] == 1
    assert rejections["members_duplicate_source_id"] == 1


def test_duplicate_with_equal_probability_keeps_first_row(tmp_path):
    table = hunt_members_table()
    table["Prob"] = [0.8, 0.8, 0.8, 0.8]
    frame, _ = readers.read_members(write(table, tmp_path / "m.fits"))
    assert frame.loc[frame["source_id"] == 11, "cluster"].tolist() == ["Melotte 22"]


def test_fits_chunked_column_reads_equal_astropy(tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "FITS_CHUNK_BYTES", 200)   # several rows per pass, many passes
    rng = np.random.default_rng(5)
    n = 1001
    table = Table({"ra": rng.uniform(0, 360, n), "dec": rng.uniform(-90, 90, n),
                   "rv_br0": rng.normal(0, 30, n).astype(np.float32),
                   "rv_br0_err": rng.uniform(0.1, 2, n).astype(np.float32),
                   "obsid": np.arange(n, dtype=np.int64), "uid": [f"U{i}" for i in range(n)],
                   "gp_id": rng.integers(1, 10**12, n), "rv_br_flag": np.zeros(n, np.int16)})
    path = write(table, tmp_path / "mrs.fits")
    frame, _ = readers.read_spectra(path)
    reference = Table.read(path)
    np.testing.assert_array_equal(frame["rv"], reference["rv_br0"])
    assert frame["rv"].dtype == np.float32 and frame["ra"].dtype == np.float64
    assert frame["gp_id"].tolist() == reference["gp_id"].tolist()
    assert frame["star_id"].tolist() == list(reference["uid"])


def test_fits_null_and_scaled_integer_columns(tmp_path):
    table = mrs_table()
    table["gp_id"] = np.array([7, 8, 9], np.uint64) + np.uint64(2**63 - 100)   # stored with TZERO
    table["obsid"] = np.ma.MaskedArray(np.array([101, 102, 103], np.int64), [False, True, False])
    frame, _ = readers.read_spectra(write(table, tmp_path / "mrs.fits"))
    assert frame["obsid"].isna().tolist() == [False, True, False]
    assert frame["gp_id"].tolist() == [2**63 - 93, 2**63 - 92, 2**63 - 91]
