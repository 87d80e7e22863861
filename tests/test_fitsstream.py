"""The streaming FITS writer against astropy: what it writes, astropy must read back unchanged."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.table import Table

from ingest.core.fitsstream import BLOCK, FitsTableWriter

COLUMNS = [("name", "S8", ""), ("source_id", "i8", ""), ("n", "i4", ""), ("flag", "i2", ""),
           ("byte", "u1", ""), ("ok", bool, ""), ("ra", "f8", "deg"), ("rv", "f4", "km/s")]


def _chunk(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "name": np.array([f"s{i}" for i in rng.integers(0, 10**6, n)]),
        "source_id": rng.integers(-2**62, 2**62, n), "n": rng.integers(-2**31, 2**31 - 1, n, dtype=np.int32),
        "flag": rng.integers(-100, 100, n).astype(np.int16), "byte": rng.integers(0, 255, n).astype(np.uint8),
        "ok": rng.random(n) < 0.5, "ra": rng.uniform(0, 360, n),
        "rv": np.where(rng.random(n) < 0.1, np.nan, rng.normal(0, 30, n)).astype(np.float32),
    }


def test_chunked_write_reads_back_identically_in_astropy(tmp_path):
    rng = np.random.default_rng(1)
    chunks = [_chunk(rng, n) for n in (5, 0, 1000, 37)]
    path = tmp_path / "t.fits"
    with FitsTableWriter(path, COLUMNS, {"SIMULATE": (True, "test"), "COMMENT": ["hello"]}) as writer:
        for chunk in chunks:
            writer.write(chunk)
    expected = {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}
    table = Table.read(path)
    assert len(table) == 1042
    for name, _, _ in COLUMNS:
        got = np.asarray(table[name])
        want = expected[name].astype(str) if name == "name" else expected[name]
        np.testing.assert_array_equal(got.astype(str) if name == "name" else got, want)
    assert str(table["ra"].unit) == "deg" and str(table["rv"].unit) == "km / s"
    assert table.meta["SIMULATE"] is True


def test_file_is_valid_fits_with_block_padding(tmp_path):
    path = tmp_path / "t.fits"
    with FitsTableWriter(path, COLUMNS, {}) as writer:
        writer.write(_chunk(np.random.default_rng(2), 123))
    assert path.stat().st_size % BLOCK == 0
    with fits.open(path) as hdus:
        hdus.verify("exception")
        assert hdus[1].header["NAXIS2"] == 123
        assert hdus[1].header["NAXIS1"] == 8 + 8 + 4 + 2 + 1 + 1 + 8 + 4


def test_same_bytes_as_astropy_for_the_data_part(tmp_path):
    """The data block must equal what astropy itself writes for the same table."""
    chunk = _chunk(np.random.default_rng(3), 200)
    ours = tmp_path / "ours.fits"
    with FitsTableWriter(ours, COLUMNS, {}) as writer:
        writer.write(chunk)
    theirs = tmp_path / "theirs.fits"
    Table({k: (v.astype("S8") if k == "name" else v) for k, v in chunk.items()}).write(theirs)
    with fits.open(ours) as a, fits.open(theirs) as b:
        assert a[1].data.tobytes() == b[1].data.tobytes()


def test_dataframe_chunks_and_empty_table(tmp_path):
    frame = pd.DataFrame({"a": np.arange(4, dtype=np.int64), "b": np.linspace(0, 1, 4)})
    path = tmp_path / "df.fits"
    with FitsTableWriter(path, [("a", "i8", ""), ("b", "f8", "")]) as writer:
        writer.write(frame)
        writer.write(frame)
    np.testing.assert_array_equal(Table.read(path)["a"], np.tile(np.arange(4), 2))
    empty = tmp_path / "empty.fits"
    FitsTableWriter(empty, [("a", "i8", "")]).close()
    assert len(Table.read(empty)) == 0


def test_bad_chunks_are_rejected_with_the_column_named(tmp_path):
    with FitsTableWriter(tmp_path / "t.fits", [("name", "S3", ""), ("x", "f4", "")]) as writer:
        with pytest.raises(ValueError, match="'name'.*longer than 3"):
            writer.write({"name": np.array(["abcd"]), "x": np.zeros(1)})
        with pytest.raises(KeyError, match="x"):
            writer.write({"name": np.array(["abc"])})
        with pytest.raises(ValueError, match="differ in length"):
            writer.write({"name": np.array(["abc"]), "x": np.zeros(2)})
