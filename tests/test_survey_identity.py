"""Issue 9 items 2, 3, 6, 7: declared survey identities, maps that are applied or refused,
one LRS zero-point choice, and the stellar-parameter source of each survey."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from ingest.core import config as config_module
from ingest.core import manifest
from ingest.pipeline import run as pipeline
from ingest.pipeline import s4_combine
from ingest.pipeline.s1_inputs import colmap, readers
from ingest.core.errors import InputError
from ingest.pipeline.s8_outputs.summary import format_summary
from test_readers import lrs_table, mrs_table, write

ROOT = Path(__file__).resolve().parent.parent


def gaia_like_table() -> Table:
    """Gaia-RVS-like rows with the generic column names rv/rv_err (no LAMOST columns)."""
    return Table({"source_id": np.array([11, 12], np.int64), "ra": [56.75, 56.8],
                  "dec": [24.1, 24.2], "rv": [5.6, 6.1], "rv_err": [0.3, 0.5]})


PLAIN_MAP = ('[spectra]\nsource_id = "source_id"\nra = "ra"\ndec = "dec"\nrv = "rv"\n'
             'rv_err = "rv_err"\n')


# ---------------------------------------------------------------- item 2: declared surveys

def test_generic_rv_columns_through_a_map_without_survey_get_no_offset(tmp_path):
    path = write(gaia_like_table(), tmp_path / "gaia.csv")
    mapfile = tmp_path / "plain.toml"
    mapfile.write_text(PLAIN_MAP)
    frame, _ = readers.read_spectra(path, colmap=mapfile)          # as with --map
    assert (frame["survey"] == colmap.UNDECLARED_SURVEY).all()
    shifted = s4_combine.apply_rv_offsets(frame, config_module.load()["rv_offsets"])
    np.testing.assert_array_equal(shifted["rv"], [5.6, 6.1])
    assert (shifted["rv_offset"] == 0.0).all()


def test_generic_rv_columns_alone_are_no_survey(tmp_path):
    path = write(gaia_like_table(), tmp_path / "gaia.csv")
    error = pytest.raises(InputError, readers.read_spectra, path).value
    assert str(path) in str(error) and "survey" in str(error)


def test_snrg_without_lamost_ids_is_not_lrs(tmp_path):
    table = gaia_like_table()
    table["snrg"] = [50.0, 60.0]
    with pytest.raises(InputError, match="cannot tell the survey"):
        readers.read_spectra(write(table, tmp_path / "x.csv"))


def test_lamost_defaults_recognised_by_distinctive_columns(tmp_path):
    lrs, _ = readers.read_spectra(write(lrs_table(), tmp_path / "lrs.csv"))
    mrs, _ = readers.read_spectra(write(mrs_table(), tmp_path / "mrs.fits"))
    assert (lrs["survey"] == "lamost-lrs").all() and (mrs["survey"] == "lamost-mrs").all()


def test_shipped_gaia_map_declares_gaia_dr3_without_offset(tmp_path):
    table = gaia_like_table()
    table.rename_columns(["rv", "rv_err"], ["radial_velocity", "radial_velocity_error"])
    frame, _ = readers.read_spectra(write(table, tmp_path / "g.csv"),
                                    survey=colmap.COLMAP_DIR / "gaia-dr3-rvs.toml")
    assert (frame["survey"] == "gaia-dr3").all()
    assert config_module.load()["rv_offsets"]["gaia-dr3"] == 0.0


def test_manifest_and_summary_record_surveys_and_warn_on_undeclared():
    spectra = pd.DataFrame({"survey": ["lamost-lrs", colmap.UNDECLARED_SURVEY,
                                       colmap.UNDECLARED_SURVEY],
                            "param_source": ["lasp", "none", "none"]})
    surveys = manifest.survey_records(spectra, {"lamost-lrs": 4.7, "lamost-mrs": 0.0},
                                      colmap.UNDECLARED_SURVEY)
    assert surveys == {
        "lamost-lrs": {"spectra": 1, "declared": True, "rv_offset_kms": 4.7,
                       "parameter_source": ["lasp"]},
        "undeclared": {"spectra": 2, "declared": False, "rv_offset_kms": 0.0,
                       "parameter_source": ["none"]}}
    text = format_summary({
        "out": "o", "row_counts": {"cluster": 1, "member": 1, "spectrum": 3},
        "clusters_with_rv": 1, "clusters_good_flag12": 0, "good_min_flag12": 3,
        "stars_by_flag": {"0": 0, "1": 1, "12": 0}, "rv_variable_stars": 0,
        "rejections": {}, "surveys": surveys})
    assert "WARNING: 2 spectra" in text and "without a 'survey' key" in text
    assert "lamost-lrs +4.7 (lasp)" in text


# ---------------------------------------------------------------- item 3: ignored map tables

def _run(tmp_path, **kwargs):
    """run_ingest on files that need not exist: the map checks come before any reading."""
    return pipeline.run_ingest(clusters=tmp_path / "c.fits", members=tmp_path / "m.fits",
                               spectra=[tmp_path / "s.fits"], out=tmp_path / "out",
                               progress=False, **kwargs)


def test_survey_map_with_members_table_stops_and_names_map(tmp_path):
    mapfile = ROOT / "ingest" / "colmaps" / "apogee-members.toml"
    error = pytest.raises(InputError, _run, tmp_path, survey=mapfile).value
    assert str(mapfile) in str(error) and "--map" in str(error) and error.column == "members"


def test_same_map_as_survey_and_map_is_applied_not_refused(tmp_path):
    mapfile = ROOT / "ingest" / "colmaps" / "apogee-members.toml"
    colmap.check_map_usage(mapfile, [mapfile])       # both tables applied: no error


def test_map_spectra_table_ignored_by_a_survey_map_stops(tmp_path):
    survey_map = tmp_path / "survey.toml"
    survey_map.write_text(PLAIN_MAP)
    user_map = tmp_path / "user.toml"
    user_map.write_text('[spectra]\nsnr = "snr"\n')
    error = pytest.raises(InputError, _run, tmp_path, survey=survey_map, colmap=user_map).value
    assert str(user_map) in str(error) and "[spectra]" in str(error)


def test_unknown_map_table_stops(tmp_path):
    mapfile = tmp_path / "typo.toml"
    mapfile.write_text(PLAIN_MAP + '[member]\ncluster = "c"\n')
    path = write(gaia_like_table(), tmp_path / "g.csv")
    error = pytest.raises(InputError, readers.read_spectra, path, survey=mapfile).value
    assert str(mapfile) in str(error) and error.column == "member"


# ---------------------------------------------------------------- item 6: one LRS choice

def test_lrs_offset_default_is_stated_alike_in_docs_and_readme():
    offset = config_module.defaults()["rv_offsets"]["lamost-lrs"]
    statement = f"`rv_offsets.lamost-lrs = {offset:g}`"
    for doc in ("README.md", "docs/methods.md"):
        text = (ROOT / doc).read_text()
        assert statement in text, doc
        assert not re.search(r"default applies none|no LRS offset", text, re.I), doc


def test_demo_manifest_records_each_survey_offset_and_parameter_source(demo_ingest):
    record = manifest.read(demo_ingest)
    defaults = config_module.defaults()["rv_offsets"]
    assert record["surveys"]["lamost-lrs"]["rv_offset_kms"] == defaults["lamost-lrs"]
    assert record["surveys"]["lamost-mrs"]["rv_offset_kms"] == defaults["lamost-mrs"]
    assert record["surveys"]["lamost-mrs"]["parameter_source"] == ["cnn"]
    assert record["surveys"]["lamost-lrs"]["parameter_source"] == ["lasp"]


# ---------------------------------------------------------------- item 7: parameter source

def test_mrs_parameters_default_to_cnn_as_in_the_thesis(tmp_path):
    frame, _ = readers.read_spectra(write(mrs_table(), tmp_path / "mrs.fits"))
    assert frame["teff"].tolist() == [5650.0, 6050.0, 6150.0]        # teff_cnn
    assert (frame["param_source"] == "cnn").all()


def test_lasp_chosen_in_a_user_map(tmp_path):
    mapfile = tmp_path / "lasp.toml"
    mapfile.write_text('[spectra]\nparameter_source = "lasp"\n')
    table = mrs_table()
    for name, value in (("logg", 4.4), ("feh", -0.1)):
        table[f"{name}_lasp"], table[f"{name}_lasp_err"] = [value] * 3, [0.1] * 3
    frame, _ = readers.read_spectra(write(table, tmp_path / "mrs.fits"), colmap=mapfile)
    assert frame["teff"].tolist() == [5600.0, 6000.0, 6100.0]        # teff_lasp
    assert frame["feh"].tolist() == [-0.1] * 3
    table.remove_column("feh_lasp")                  # an explicit choice must be complete
    error = pytest.raises(InputError, readers.read_spectra,
                          write(table, tmp_path / "short.fits"), colmap=mapfile).value
    assert error.column == "feh_lasp"
    assert (frame["param_source"] == "lasp").all()


@pytest.mark.parametrize("text, column", [
    ('[spectra]\nparameter_source = "gspphot"\n', "parameter_source"),
    ('[spectra]\nteff = "teff_lasp"\n', "teff"),
])
def test_bad_parameter_source_choices_name_the_map(tmp_path, text, column):
    mapfile = tmp_path / "bad.toml"
    mapfile.write_text(text)
    path = write(mrs_table(), tmp_path / "mrs.fits")
    error = pytest.raises(InputError, readers.read_spectra, path, colmap=mapfile).value
    assert str(mapfile) in str(error) and error.column == column


def test_file_with_lasp_columns_only_asks_for_lasp(tmp_path):
    table = mrs_table()
    table.remove_columns(["teff_cnn", "teff_cnn_err"])
    path = write(table, tmp_path / "mrs.fits")
    error = pytest.raises(InputError, readers.read_spectra, path).value
    assert str(path) in str(error) and "parameter_source = 'lasp'" in str(error)
