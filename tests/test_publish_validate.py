"""Validation of an ingest output directory before publication, and the COPY inputs (no server)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ingest.core import manifest, schema
from ingest.pipeline.s8_outputs import writers
from ingest.core.errors import PublishError
from ingest.publication import publish


def _frame(table: schema.Table, n_rows: int) -> pd.DataFrame:
    """Rows that satisfy the table's types and required columns."""
    values = {}
    for column in table.columns:
        if column.type == "text":
            values[column.name] = [f"{column.name} {i}" for i in range(n_rows)]
        elif column.is_integer:
            values[column.name] = np.arange(n_rows)
        else:
            values[column.name] = np.arange(n_rows) * 0.5
    return pd.DataFrame(values)


def _write_manifest(out: Path) -> None:
    outputs = {name: {"file": f"{name}.fits", "sha256": manifest.sha256(out / f"{name}.fits"),
                      "rows": len(writers.read_table(out / f"{name}.fits"))}
               for name in schema.load_tables()}
    (out / "manifest.json").write_text(json.dumps({"outputs": outputs}))


@pytest.fixture
def output_dir(tmp_path) -> Path:
    """A minimal valid ingest output directory: every rd.xml table, 3 rows each."""
    out = tmp_path / "out"
    out.mkdir()
    for name, table in schema.load_tables().items():
        writers.write_table(_frame(table, 3), name, out / f"{name}.fits")
    _write_manifest(out)
    return out


def _edit_manifest(out: Path, edit) -> None:
    data = json.loads((out / "manifest.json").read_text())
    edit(data)
    (out / "manifest.json").write_text(json.dumps(data))


def test_valid_directory_lists_tables_in_foreign_key_order(output_dir):
    files = publish.validate(output_dir)
    assert [f.name for f in files] == list(schema.load_tables())
    assert [f.name for f in files][:3] == ["cluster", "member", "spectrum"]
    assert all(f.rows == 3 for f in files)


def test_not_a_directory(tmp_path):
    with pytest.raises(PublishError, match="not a directory"):
        publish.validate(tmp_path / "absent")


def test_missing_manifest(output_dir):
    (output_dir / "manifest.json").unlink()
    with pytest.raises(PublishError, match="manifest.json: missing"):
        publish.validate(output_dir)


def test_manifest_not_json(output_dir):
    (output_dir / "manifest.json").write_text("{not json")
    with pytest.raises(PublishError, match="not valid JSON"):
        publish.validate(output_dir)


def test_manifest_without_outputs(output_dir):
    _edit_manifest(output_dir, lambda m: m.pop("outputs"))
    with pytest.raises(PublishError, match="no 'outputs'"):
        publish.validate(output_dir)


def test_table_missing_from_manifest(output_dir):
    _edit_manifest(output_dir, lambda m: m["outputs"].pop("spectrum"))
    with pytest.raises(PublishError, match=r"lack the tables \['spectrum'\]"):
        publish.validate(output_dir)


def test_table_file_missing(output_dir):
    (output_dir / "member.fits").unlink()
    with pytest.raises(PublishError, match="member.fits: missing"):
        publish.validate(output_dir)


def test_corrupted_file_fails_checksum(output_dir):
    path = output_dir / "member.fits"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(PublishError, match="member.fits: SHA-256 differs"):
        publish.validate(output_dir)


def test_truncated_file_fails_checksum(output_dir):
    path = output_dir / "cluster.fits"
    path.write_bytes(path.read_bytes()[:2880])
    with pytest.raises(PublishError, match="cluster.fits: SHA-256 differs"):
        publish.validate(output_dir)


def test_file_outside_directory_rejected(output_dir, tmp_path):
    _edit_manifest(output_dir, lambda m: m["outputs"]["gradient"].update(file="../x.fits"))
    with pytest.raises(PublishError, match="outside"):
        publish.validate(output_dir)


def test_missing_column_named(output_dir):
    from astropy.io import fits

    path = output_dir / "spectrum.fits"
    with fits.open(path) as hdus:
        hdu = fits.BinTableHDU.from_columns([c for c in hdus[1].columns if c.name != "snr"])
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)
    _write_manifest(output_dir)
    with pytest.raises(PublishError, match=r"spectrum.fits: columns differ .*missing \['snr'\]"):
        publish.validate(output_dir)


def test_row_count_must_match_manifest(output_dir):
    _edit_manifest(output_dir, lambda m: m["outputs"]["cluster"].update(rows=4))
    with pytest.raises(PublishError, match="3 rows, the manifest says 4"):
        publish.validate(output_dir)


def test_copy_script_is_one_truncate_then_copies_in_key_order(output_dir, tmp_path):
    files = publish.validate(output_dir)
    script = publish._copy_script(files, tmp_path).splitlines()
    assert script[0].startswith("TRUNCATE ") and script[0].count(",") == len(files) - 1
    copied = [line.split()[1] for line in script if line.startswith("\\copy")]
    assert copied == [f"ocvo.{f.name}" for f in files]
    assert all(line.startswith(("TRUNCATE", "\\copy", "ANALYZE")) for line in script)


def test_csv_for_copy_turns_nulls_into_empty_fields(tmp_path):
    table = schema.table("member")
    frame = _frame(table, 2)
    frame.loc[0, "uid"] = None            # text NULL -> '' in FITS
    frame.loc[0, "gp_id"] = None          # integer NULL -> nullLiteral (TNULL) in FITS
    frame.loc[0, "teff"] = np.nan         # float NULL -> NaN in FITS
    path = writers.write_table(frame, "member", tmp_path / "member.fits")
    dest = tmp_path / "member.csv"
    publish._write_csv(publish.TableFile("member", path, 2), dest)
    with open(dest, newline="") as handle:
        rows = list(csv.reader(handle))
    first = dict(zip(table.names, rows[0]))
    second = dict(zip(table.names, rows[1]))
    assert len(rows) == 2 and len(rows[0]) == len(table.names)
    assert first["uid"] == first["gp_id"] == first["teff"] == ""
    assert second["uid"] == "uid 1" and second["gp_id"] == "1" and float(second["teff"]) == 0.5
    assert 'uid 1' in dest.read_text() and '""' not in dest.read_text()
