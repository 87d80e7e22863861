"""Every bad-input case of issue 3: an InputError naming file and column, or a counted rejection."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from ingest.pipeline.s1_inputs import formats, readers
from ingest.core.errors import InputError
from test_readers import hunt_clusters_table, hunt_members_table, mrs_table, write


def raises_naming(path, column, call, *args, **kwargs) -> InputError:
    """Run ``call`` and check its InputError names ``path`` and ``column``."""
    with pytest.raises(InputError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert str(path) in message
    if column is not None:
        assert column in message and info.value.column is not None
    return info.value


def test_missing_required_column(tmp_path):
    table = hunt_members_table()
    table.remove_column("DE_ICRS")
    path = write(table, tmp_path / "members.fits")
    error = raises_naming(path, "DE_ICRS", readers.read_members, path)
    assert "missing required column" in str(error)


def test_missing_required_spectra_error_column(tmp_path):
    table = mrs_table()
    table.remove_column("rv_br0_err")
    path = write(table, tmp_path / "mrs.fits")
    raises_naming(path, "rv_br0_err", readers.read_spectra, path, survey="lamost-mrs")


def test_text_in_numeric_column(tmp_path):
    table = mrs_table()
    table.replace_column("rv_br0", ["5.5", "fast", "35.2"])
    path = write(table, tmp_path / "mrs.csv")
    error = raises_naming(path, "rv_br0", readers.read_spectra, path, survey="lamost-mrs")
    assert "'fast'" in str(error) and "row 2" in str(error)


def test_text_in_source_id_column(tmp_path):
    table = hunt_members_table()
    table.replace_column("GaiaDR3", ["11", "12", "n/a", "13"])
    path = write(table, tmp_path / "members.csv")
    raises_naming(path, "GaiaDR3", readers.read_members, path)


def test_all_nan_required_column(tmp_path):
    table = mrs_table()
    table["rv_br0_err"] = np.nan
    path = write(table, tmp_path / "mrs.fits")
    error = raises_naming(path, "rv_br0_err", readers.read_spectra, path)
    assert "all NaN" in str(error)


def test_duplicate_obsids(tmp_path):
    table = mrs_table()
    table["obsid"] = [101, 102, 101]
    path = write(table, tmp_path / "mrs.fits")
    error = raises_naming(path, "obsid", readers.read_spectra, path)
    assert "2 rows share an obsid" in str(error)


def test_duplicate_member_source_ids_are_counted_not_fatal(tmp_path):
    frame, rejections = readers.read_members(write(hunt_members_table(), tmp_path / "m.fits"))
    assert rejections["members_duplicate_source_id"] == 1
    assert frame["source_id"].is_unique


def test_duplicate_cluster_names(tmp_path):
    table = hunt_clusters_table()
    table["Name"] = ["NGC_2632", "NGC 2632"]
    path = write(table, tmp_path / "clusters.fits")
    raises_naming(path, "Name", readers.read_clusters, path)


@pytest.mark.parametrize("name", ["empty.fits", "empty.csv", "empty.parquet"])
def test_empty_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    assert "empty" in str(raises_naming(path, None, formats.read_table, path))


def test_table_without_rows(tmp_path):
    path = write(mrs_table()[:0], tmp_path / "mrs.fits")
    assert "no rows" in str(raises_naming(path, None, readers.read_spectra, path))


def test_header_only_csv(tmp_path):
    path = tmp_path / "members.csv"
    path.write_text("Name,RA_ICRS,DE_ICRS\n")
    raises_naming(path, None, readers.read_members, path)


def test_corrupt_fits(tmp_path):
    path = tmp_path / "mrs.fits"
    path.write_bytes(b"this is not a FITS file at all\n" * 200)
    assert "corrupt" in str(raises_naming(path, None, readers.read_spectra, path))


def test_truncated_fits(tmp_path):
    full = write(mrs_table(), tmp_path / "full.fits").read_bytes()
    path = tmp_path / "truncated.fits"
    path.write_bytes(full[: len(full) - 2000])
    raises_naming(path, None, readers.read_spectra, path)


def test_member_clusters_missing_from_cluster_file(tmp_path):
    clusters_path = write(hunt_clusters_table()[:1], tmp_path / "clusters.fits")
    members_path = write(hunt_members_table(), tmp_path / "members.fits")
    clusters = readers.read_clusters(clusters_path)
    members, _ = readers.read_members(members_path)
    error = raises_naming(members_path, "cluster", readers.link_members_to_clusters,
                          members, clusters, members_path, clusters_path)
    assert "NGC 2632" in str(error) and str(clusters_path) in str(error)


def test_map_naming_absent_column(tmp_path):
    mapfile = tmp_path / "my-map.toml"
    mapfile.write_text('[spectra]\nrv = ["vhelio", "VHELIO_AVG"]\n')
    path = write(mrs_table(), tmp_path / "mrs.fits")
    error = raises_naming(mapfile, "vhelio", readers.read_spectra, path,
                          survey="lamost-mrs", colmap=mapfile)
    assert str(path) in str(error)


def test_map_naming_unknown_field(tmp_path):
    mapfile = tmp_path / "typo.toml"
    mapfile.write_text('[members]\nparalax = "Plx"\n')
    path = write(hunt_members_table(), tmp_path / "members.fits")
    raises_naming(mapfile, "paralax", readers.read_members, path, colmap=mapfile)


def test_map_without_required_field(tmp_path):
    mapfile = tmp_path / "partial.toml"
    mapfile.write_text('[spectra]\nra = "ra"\ndec = "dec"\nrv = "rv_br0"\n')
    path = write(mrs_table(), tmp_path / "mrs.fits")
    raises_naming(path, "rv_err", readers.read_spectra, path, survey=mapfile)


def test_unknown_survey_columns(tmp_path):
    path = write(Table({"ra": [1.0], "dec": [2.0], "vel": [3.0]}), tmp_path / "x.fits")
    assert "survey" in str(raises_naming(path, None, readers.read_spectra, path))


def test_unparsable_observation_date(tmp_path):
    table = mrs_table()
    table.remove_column("lmjm")
    table["obsdate"] = ["2019-01-01", "yesterday", "2020-07-02"]
    path = write(table, tmp_path / "mrs.fits")
    raises_naming(path, "obsdate", readers.read_spectra, path)


def test_rows_without_position_are_counted(tmp_path):
    table = mrs_table()
    table["ra"][1] = np.nan
    frame, rejections = readers.read_spectra(write(table, tmp_path / "mrs.fits"))
    assert rejections["spectra_no_position"] == 1
    assert frame["obsid"].tolist() == [101, 103]
