"""FITS writers: metadata from rd.xml, NULL handling and loud failures."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from ingest.core import schema
from ingest.pipeline.s8_outputs.writers import TableError, read_table, write_table


def spectrum_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "obsid": [101, 102, 103], "member_key": ["Gaia DR3 7", "Gaia DR3 7", "Gaia DR3 9"],
        "source_id": [7, 7, 9],
        "cluster_name": ["Melotte 22", "Melotte 22", "NGC 2632"],
        "survey": ["lamost-mrs", "lamost-mrs", None], "band": ["BR", None, "B"],
        "rv": [5.5, np.nan, 33.0], "rv_flag": pd.array([0, None, 1], dtype="Int64"),
        "qc": ["ok", "bad_rv", "rv_flag"], "not_published": [1, 2, 3]})


def test_header_carries_rd_metadata_in_rd_order(tmp_path):
    path = write_table(spectrum_frame(), "spectrum", tmp_path / "spectrum.fits")
    header = fits.getheader(path, 1)
    table = schema.table("spectrum")
    assert header["EXTNAME"] == "SPECTRUM"
    for i, column in enumerate(table.columns, start=1):
        assert header[f"TTYPE{i}"] == column.name
        assert header.get(f"TUNIT{i}", "") == column.unit
        assert header[f"TUCD{i}"] == column.ucd
        assert header[f"TCOMM{i}"] == column.description
    assert header["TFIELDS"] == len(table.columns)       # extra column dropped


def test_values_types_and_nulls_round_trip(tmp_path):
    path = write_table(spectrum_frame(), "spectrum", tmp_path / "spectrum.fits")
    back = read_table(path)
    header = fits.getheader(path, 1)
    flag_index = schema.table("spectrum").names.index("rv_flag") + 1
    assert header[f"TNULL{flag_index}"] == -1 and header[f"TFORM{flag_index}"] == "I"
    assert back["rv_flag"].tolist() == [0, -1, 1]
    assert back["obsid"].dtype == np.int64 and back["rv"].dtype == np.float32
    assert back["band"].tolist() == ["BR", "", "B"]
    assert back["survey"].tolist() == ["lamost-mrs", "lamost-mrs", ""]
    np.testing.assert_array_equal(back["rv"], np.array([5.5, np.nan, 33.0], np.float32))
    assert back["epoch"].isna().all()                    # absent optional column: NULL


def test_missing_required_column_fails_loudly(tmp_path):
    frame = spectrum_frame().drop(columns="cluster_name")
    with pytest.raises(TableError, match="cluster_name"):
        write_table(frame, "spectrum", tmp_path / "x.fits")


def test_null_in_required_column_fails_loudly(tmp_path):
    frame = spectrum_frame()
    frame.loc[1, "cluster_name"] = None
    with pytest.raises(TableError, match="spectrum.cluster_name: required"):
        write_table(frame, "spectrum", tmp_path / "x.fits")


def test_null_in_required_integer_column_fails(tmp_path):
    frame = pd.DataFrame({"gradient_id": [1], "n": pd.array([None], dtype="Int64")})
    with pytest.raises(TableError, match="gradient.n"):
        write_table(frame, "gradient", tmp_path / "x.fits")


def test_empty_table_is_written(tmp_path):
    frame = pd.DataFrame({c: [] for c in ("cluster_a", "cluster_b")})
    back = read_table(write_table(frame, "binary_candidate", tmp_path / "b.fits"))
    assert len(back) == 0 and list(back.columns) == schema.table("binary_candidate").names


def test_identical_frames_give_identical_bytes(tmp_path):
    a = write_table(spectrum_frame(), "spectrum", tmp_path / "a.fits").read_bytes()
    b = write_table(spectrum_frame(), "spectrum", tmp_path / "b.fits").read_bytes()
    assert a == b
