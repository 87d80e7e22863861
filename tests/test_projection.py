"""Spectra kept against the members (ingest/pipeline/s1_inputs/projection.py): same pairs, same errors, same tables."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import DEMO_SEED, demo_ingest_arguments
from helpers.synthetic import mrs_table
from ingest.core.config import Crossmatch
from ingest.pipeline import s2_crossmatch as crossmatch
from ingest.pipeline.s1_inputs import coerce, projection, readers
from ingest.pipeline.s8_outputs import writers
from ingest.core.errors import InputError
from ingest.pipeline.run import run_ingest

TABLES = ("cluster", "member", "spectrum", "gradient", "lit_comparison", "lit_summary",
          "binary_candidate")


def _sky(n: int, rng: np.random.Generator, ra0: float, dec0: float, size_deg: float):
    return ra0 + rng.uniform(-size_deg, size_deg, n), dec0 + rng.uniform(-size_deg, size_deg, n)


def _members(rng: np.random.Generator, n: int = 300) -> pd.DataFrame:
    """Members in a 0.1 deg field, some without a Gaia id, a few fast movers."""
    ra, dec = _sky(n, rng, 120.0, -30.0, 0.05)
    ids = pd.array(np.arange(1, n + 1) * 1000, dtype="Int64")
    ids[rng.random(n) < 0.2] = pd.NA
    pm = rng.normal(0, 10, (n, 2))
    pm[:3] = [[900.0, -400.0], [-300.0, 700.0], [0.0, 1200.0]]
    return pd.DataFrame({"ra": ra, "dec": dec, "source_id": ids,
                         "pmra": pm[:, 0], "pmdec": pm[:, 1]})


def _spectra(members: pd.DataFrame, rng: np.random.Generator, n: int = 4000) -> pd.DataFrame:
    """Field spectra around the members, some on them, ids of members, of others or none."""
    ra, dec = _sky(n, rng, 120.0, -30.0, 0.08)
    on = rng.choice(len(members), n // 4, replace=True)
    ra[: n // 4] = members["ra"].to_numpy()[on] + rng.normal(0, 1e-4, n // 4)
    dec[: n // 4] = members["dec"].to_numpy()[on] + rng.normal(0, 1e-4, n // 4)
    ids = pd.array(rng.integers(10**6, 10**7, n), dtype="Int64")
    ids[: n // 8] = members["source_id"].to_numpy()[on[: n // 8]]
    ids[rng.random(n) < 0.4] = pd.NA
    epoch = rng.uniform(2011.0, 2024.0, n)
    epoch[rng.random(n) < 0.1] = np.nan
    # the fast movers observed without an id where they were in 2023 (~6-8" away)
    fast = members.iloc[:3]
    years = 2023.0 - 2016.0
    ra[-3:] = fast["ra"] + fast["pmra"] * years / 3.6e6 / np.cos(np.radians(fast["dec"]))
    dec[-3:] = fast["dec"] + fast["pmdec"] * years / 3.6e6
    ids[-3:] = pd.NA
    epoch[-3:] = 2023.0
    return pd.DataFrame({"ra": ra, "dec": dec, "source_id": ids, "epoch": epoch})


@pytest.mark.parametrize("id_fallback", [False, True])
def test_crossmatch_of_the_kept_spectra_equals_the_crossmatch_of_all(id_fallback):
    rng = np.random.default_rng(3)
    members = _members(rng)
    spectra = _spectra(members, rng)
    xm = Crossmatch(radius_arcsec=3.5, gaia_epoch=2016.0, gaia_epoch_dr2=2015.5,
                    id_fallback=id_fallback)
    keep = projection.member_selector(members, xm.radius_arcsec, xm.epoch("DR3"))(spectra)
    assert 0 < keep.sum() < len(spectra)          # the selection does drop rows
    everything = crossmatch.match(members, spectra, xm, "DR3")
    kept = crossmatch.match(members, spectra.loc[keep], xm, "DR3")
    assert len(everything) > 100
    assert set(everything["spec_index"]) >= {len(spectra) - 3, len(spectra) - 2,
                                              len(spectra) - 1}   # the fast movers matched
    pd.testing.assert_frame_equal(everything, kept)
    assert (crossmatch.id_spectra_on_id_members(members, spectra, xm, "DR3")
            == crossmatch.id_spectra_on_id_members(members, spectra.loc[keep], xm, "DR3"))


def test_selected_read_keeps_labels_and_values_of_the_full_read(tmp_path, monkeypatch):
    monkeypatch.setattr(coerce, "ROW_SUBSET_GROUP", 3)      # several raw-column passes
    table = mrs_table(500, np.random.default_rng(4))
    table["ra"][7] = np.nan                                   # dropped, counted, not a label
    path = tmp_path / "mrs.fits"
    table.write(path)
    full, full_rejections = readers.read_spectra(path)
    seen = {}

    def every_third(frame: pd.DataFrame) -> np.ndarray:
        seen["columns"] = list(frame.columns)
        return np.arange(len(frame)) % 3 == 0

    kept, kept_rejections = readers.read_spectra(path, select=every_third)
    assert set(readers.SELECTION_FIELDS) <= set(seen["columns"])
    assert kept_rejections == full_rejections
    assert {k: v for k, v in kept_rejections.items() if v} == {"spectra_no_position": 1}
    assert kept.attrs["rows_read"] == len(full) == 499
    assert kept.index.tolist() == list(range(0, 499, 3))
    pd.testing.assert_frame_equal(kept, full.iloc[::3], check_categorical=False)


def test_a_bad_value_in_a_row_not_kept_stops_the_read_the_same_way(tmp_path):
    frame = mrs_table(50, np.random.default_rng(5)).to_pandas()
    frame["snr"] = frame["snr"].astype(object)
    frame.loc[40, "snr"] = "bad"
    path = tmp_path / "mrs.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InputError) as full:
        readers.read_spectra(path, survey="lamost-mrs")
    with pytest.raises(InputError) as kept:
        readers.read_spectra(path, survey="lamost-mrs",
                             select=lambda f: np.arange(len(f)) < 10)
    assert str(kept.value) == str(full.value) and "row 41" in str(full.value)


def test_duplicate_obsids_in_rows_not_kept_are_still_refused(tmp_path):
    table = mrs_table(30, np.random.default_rng(6))
    table["obsid"][25] = table["obsid"][26]
    path = tmp_path / "mrs.fits"
    table.write(path)
    with pytest.raises(InputError, match="2 rows share an obsid"):
        readers.read_spectra(path, select=lambda f: np.arange(len(f)) < 5)


@pytest.mark.slow
def test_demo_tables_equal_those_of_reading_every_spectrum(demo_sim, tmp_path, monkeypatch):
    """The whole demo with the selection and with every row kept: identical tables and
    manifest counts (only timings and memory differ)."""
    config = tmp_path / "fast.toml"
    config.write_text("[galactic]\norbit_steps = 201\norbit_draws = 10\n")
    args = demo_ingest_arguments(demo_sim)
    run_ingest(**args, out=tmp_path / "kept", config=config, seed=DEMO_SEED, progress=False)
    monkeypatch.setattr(projection, "member_selector",
                        lambda *_: (lambda frame: np.ones(len(frame), bool)))
    run_ingest(**args, out=tmp_path / "all", config=config, seed=DEMO_SEED, progress=False)
    for name in TABLES:
        pd.testing.assert_frame_equal(writers.read_table(tmp_path / "kept" / f"{name}.fits"),
                                      writers.read_table(tmp_path / "all" / f"{name}.fits"))
    kept, every = (json.loads((tmp_path / d / "manifest.json").read_text())
                   for d in ("kept", "all"))
    for key in ("row_counts", "rejections", "surveys"):
        assert kept[key] == every[key], key
    assert kept["rejections"]["spectra_unmatched"] > 0
