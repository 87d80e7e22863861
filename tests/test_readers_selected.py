"""Reading only the kept spectrum rows (coerce._kept_rows_frame, formats._fits_columns with
rows, projection's sky map): the values, errors and selections of reading every row."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.synthetic import mrs_table
from ingest.core.errors import InputError
from ingest.pipeline.s1_inputs import formats, projection, readers


def _every_tenth(frame: pd.DataFrame) -> np.ndarray:
    return np.arange(len(frame)) % 10 == 0


def test_chunked_read_of_some_rows_equals_the_rows_of_the_whole_read(tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "FITS_CHUNK_BYTES", 300)     # a few rows per chunk
    rng = np.random.default_rng(1)
    table = mrs_table(997, rng, parameters=False)
    table["gp_id"] = np.ma.MaskedArray(table["gp_id"], rng.random(997) < 0.2)   # TNULL
    path = tmp_path / "mrs.fits"
    table.write(path)
    source = formats.open_source(path)
    names = ["gp_id", "uid", "rv_br0", "obsid"]
    every = source.load(names)
    rows = np.flatnonzero(rng.random(997) < 0.05)            # most chunks keep no row
    some = source.load(names, rows, frozenset({"uid"}))
    assert len(some["uid"]) == 997 and len(some["rv_br0"]) == len(rows)
    np.testing.assert_array_equal(some["uid"], every["uid"])
    for name in ("gp_id", "rv_br0", "obsid"):
        np.testing.assert_array_equal(np.ma.getdata(some[name]),
                                      np.ma.getdata(every[name])[rows])
        np.testing.assert_array_equal(np.ma.getmaskarray(some[name]),
                                      np.ma.getmaskarray(every[name])[rows])


def test_non_ascii_text_is_kept_and_bad_utf8_in_a_row_not_kept_stops_the_read(tmp_path):
    table = mrs_table(40, np.random.default_rng(2), parameters=False)
    table["uid"] = np.array([f"G{i}".encode() for i in range(40)], dtype="S8")
    table["uid"][0] = "Gé".encode()                           # kept, valid UTF-8
    path = tmp_path / "mrs.fits"
    table.write(path)
    full, _ = readers.read_spectra(path)
    kept, _ = readers.read_spectra(path, select=_every_tenth)
    assert kept["star_id"].tolist() == full["star_id"].iloc[::10].tolist()
    assert kept["star_id"].iloc[0] == "Gé"
    table["uid"][33] = b"G\xff"                                # row 34 is not kept
    table.write(path, overwrite=True)
    with pytest.raises(InputError) as every:
        readers.read_spectra(path)
    with pytest.raises(InputError) as some:
        readers.read_spectra(path, select=_every_tenth)
    assert str(some.value) == str(every.value) and "UTF-8" in str(some.value)


def test_required_column_empty_only_in_the_kept_rows_is_no_error(tmp_path):
    table = mrs_table(40, np.random.default_rng(3), parameters=False)
    table["rv_br0"][::10] = np.nan                            # every kept row
    path = tmp_path / "mrs.fits"
    table.write(path)
    kept, _ = readers.read_spectra(path, select=_every_tenth)
    assert kept["rv"].isna().all() and len(kept) == 4
    table["rv_br0"][:] = -9999.0                              # LAMOST's missing, every row
    table.write(path, overwrite=True)
    with pytest.raises(InputError, match="empty or all NaN") as error:
        readers.read_spectra(path, select=_every_tenth)
    assert error.value.column == "rv_br0"


def test_epoch_unit_is_decided_on_every_row_not_the_kept_ones(tmp_path):
    table = mrs_table(40, np.random.default_rng(4), parameters=False)
    del table["lmjm"]
    table["obsdate"] = ["2019-01-01"] * 40
    table["obsdate"][5] = "not a date"                        # a row not kept
    path = tmp_path / "mrs.csv"
    table.write(path)
    with pytest.raises(InputError, match="expected ISO dates"):
        readers.read_spectra(path, survey="lamost-mrs", select=_every_tenth)


def _brute_force_near(members: pd.DataFrame, ra: np.ndarray, dec: np.ndarray,
                      radius_arcsec: np.ndarray) -> np.ndarray:
    """Haversine separation to every member (small inputs only)."""
    r1, d1 = np.radians(ra)[:, None], np.radians(dec)[:, None]
    r2 = np.radians(members["ra"].to_numpy())[None]
    d2 = np.radians(members["dec"].to_numpy())[None]
    hav = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    sep = np.degrees(2 * np.arcsin(np.sqrt(np.clip(hav, 0, 1)))).min(axis=1) * 3600.0
    return sep <= radius_arcsec


def test_sky_map_finds_members_across_ra_zero_near_poles_and_cell_edges():
    rng = np.random.default_rng(5)
    # Members at ra ~ 0/360, at the poles, at high declination just off a cell edge
    # (their reach spans ten times more ra than dec) and on the edges of the cells.
    centres = [(0.0005, 10.0), (359.9995, -20.0), (45.0, 89.9995), (200.0, -89.9999),
               (10.048, 84.0), (10.052, -84.0), (120.05, 30.05), (240.0, 0.0)]
    ra = np.concatenate([np.full(5, c[0]) for c in centres])
    dec = np.concatenate([np.full(5, c[1]) for c in centres])
    members = pd.DataFrame({"ra": np.mod(ra, 360.0), "dec": dec})
    radius = 4.0
    # Spectra around each member, some in reach and some just beyond, any direction.
    n = 4000
    pick = rng.integers(0, len(members), n)
    distance = rng.uniform(0.5, 1.5, n) * radius / 3600.0
    angle = rng.uniform(0, 2 * np.pi, n)
    s_dec = np.clip(members["dec"].to_numpy()[pick] + distance * np.sin(angle), -90, 90)
    s_ra = np.mod(members["ra"].to_numpy()[pick] + distance * np.cos(angle)
                  / np.maximum(np.cos(np.radians(s_dec)), 1e-6), 360.0)
    reach = np.full(n, radius)
    expected = _brute_force_near(members, s_ra, s_dec, reach)
    assert 0.3 < expected.mean() < 0.7
    found = projection.near_members(members, s_ra, s_dec, reach)
    # Only separations within rounding of the radius may differ from the brute force.
    differ = found != expected
    assert differ.sum() <= 2
    far = projection.near_members(members, np.array([100.0, 300.0]), np.array([-45.0, 60.0]),
                                  np.full(2, radius))
    assert not far.any()
