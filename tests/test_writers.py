"""FITS writers: metadata from rd.xml, NULL handling and loud failures."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from astropy.io import fits

from ingest.core import schema
from ingest.core.vocabulary import TABLES
from ingest.pipeline.s8_outputs.writers import TableError, read_table, write_table


def spectrum_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "obsid": [101, 102, 103], "member_key": ["Gaia DR3 7", "Gaia DR3 7", "Gaia DR3 9"],
        "source_id": [7, 7, 9],
        "cluster_name": ["Melotte 22", "Melotte 22", "NGC 2632"],
        "survey": ["lamost-mrs", "lamost-mrs", None], "band": ["BR", None, "B"],
        "rv": [5.5, np.nan, 33.0], "rv_flag": pd.array([0, None, 1], dtype="Int64"),
        "qc": ["ok", "bad_rv", "rv_flag"], "not_published": [1, 2, 3]})


# DaCHS column type -> the FITS TFORM a DaCHS fitsTableGrammar reads back into it.
FITS_FORM = {"smallint": "I", "integer": "J", "bigint": "K", "real": "E",
             "double precision": "D", "text": "A"}


def header_columns(header: fits.Header) -> list[list[str]]:
    """[name, TFORM letter, unit, UCD, comment] of each FITS column, in order."""
    return [[header[f"TTYPE{i}"], header[f"TFORM{i}"].lstrip("0123456789"),
             header.get(f"TUNIT{i}", ""), header.get(f"TUCD{i}", ""), header.get(f"TCOMM{i}", "")]
            for i in range(1, header["TFIELDS"] + 1)]


def dachs_expected(columns: list[list[str]]) -> list[list[str]]:
    return [[name, FITS_FORM[kind], unit, ucd, description]
            for name, kind, unit, ucd, description in columns]


def test_every_table_is_written_as_dachs_reads_rd_xml(tmp_path, dachs_rd_columns):
    """Each output table, written from an empty frame, and the spectrum table with data
    and an extra column: names in rd order, FITS types DaCHS maps to the declared
    types, units, UCDs and descriptions exactly as DaCHS's own parser reads rd.xml."""
    assert set(TABLES) == set(dachs_rd_columns)
    for name, columns in dachs_rd_columns.items():
        frame = pd.DataFrame({column[0]: [] for column in columns})
        header = fits.getheader(write_table(frame, name, tmp_path / f"{name}.fits"), 1)
        assert header["EXTNAME"] == name.upper()
        assert header_columns(header) == dachs_expected(columns), name
    path = write_table(spectrum_frame(), "spectrum", tmp_path / "spectrum.fits")
    header = fits.getheader(path, 1)
    assert header_columns(header) == dachs_expected(dachs_rd_columns["spectrum"])
    assert header["NAXIS2"] == 3


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


# Optional text as the ingest hands it over: a NULL, an empty string, non-ASCII text
# (UTF-8 is written as is and read back by read_table; "Čech 1" is the longest value in
# bytes but not in characters) and trailing blanks, which FITS does not keep.
TEXT = ["Gaia 7", None, "Čech 1", "", "B  "]
TEXT_BYTES = [b"Gaia 7", b"", "Čech 1".encode("utf-8"), b"", b"B"]


def text_series(storage: str) -> pd.Series:
    """TEXT in one of the storages pandas gives text columns."""
    if storage == "str, sliced":
        return pd.Series(["dropped", *TEXT], dtype="str").iloc[1:]
    if storage == "arrow, two chunks":
        chunks = pa.chunked_array([pa.array(TEXT[:2]), pa.array(TEXT[2:])])
        return pd.Series(pd.arrays.ArrowStringArray(chunks))
    if storage == "arrow, bytes under the NULL":
        data = "Gaia 7xyzČech 1B  ".encode("utf-8")
        offsets = np.cumsum([0, 6, 3, 7, 0, 3], dtype=np.int64)
        valid = pa.array([value is not None for value in TEXT]).buffers()[1]
        array = pa.Array.from_buffers(pa.large_string(), len(TEXT),
                                      [valid, pa.py_buffer(offsets), pa.py_buffer(data)])
        return pd.Series(pd.arrays.ArrowStringArray(array))
    return pd.Series(TEXT, dtype=storage)


def write_gradient_text(values: pd.Series, path) -> tuple[str, list[bytes], list[str]]:
    """TFORM, raw bytes and read_table values of ``values`` written as gradient.model."""
    frame = pd.DataFrame({"gradient_id": range(len(values)), "n": 1, "model": values})
    write_table(frame, "gradient", path)
    index = schema.table("gradient").names.index("model") + 1
    with fits.open(path, character_as_bytes=True) as hdus:
        tform = hdus[1].header[f"TFORM{index}"]
        raw = hdus[1].data["model"].tolist()
    return tform, raw, read_table(path)["model"].tolist()


@pytest.mark.parametrize("storage", ["object", "str", "string[python]", "str, sliced",
                                     "arrow, two chunks", "arrow, bytes under the NULL"])
def test_text_is_written_as_utf8_bytes_with_nulls_empty(tmp_path, storage):
    """Whatever the storage, a text column is as wide as its longest value in UTF-8 bytes,
    each row holds that value's bytes, and NULLs are empty strings."""
    values = text_series(storage)
    assert values.isna().tolist() == [False, True, False, False, False]
    tform, raw, back = write_gradient_text(values, tmp_path / "g.fits")
    assert tform == "7A"
    assert raw == TEXT_BYTES
    assert back == ["Gaia 7", "", "Čech 1", "", "B"]


def test_text_column_of_nulls_or_numbers(tmp_path):
    """An all-NULL text column is one byte wide (TFORM 1A); values that are not text are
    written as their str."""
    tform, raw, back = write_gradient_text(pd.Series([None, np.nan], dtype=object),
                                           tmp_path / "a.fits")
    assert (tform, raw, back) == ("1A", [b"", b""], ["", ""])
    tform, raw, back = write_gradient_text(pd.Series([7, None, 2.5], dtype=object),
                                           tmp_path / "b.fits")
    assert (tform, raw, back) == ("3A", [b"7", b"", b"2.5"], ["7", "", "2.5"])


def test_text_cut_from_a_longer_column_keeps_only_its_rows(tmp_path):
    """Rows sliced out of a larger frame (Arrow text with an offset, no NULL to rebuild it)
    are written as themselves, not as the first rows of the parent column."""
    values = pd.Series(["dropped", "Gaia 7", "Čech 1", "B"], dtype="str").iloc[1:]
    tform, raw, back = write_gradient_text(values, tmp_path / "g.fits")
    assert (tform, raw, back) == ("7A", [b"Gaia 7", "Čech 1".encode("utf-8"), b"B"],
                                  ["Gaia 7", "Čech 1", "B"])
