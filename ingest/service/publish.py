"""Publish an ingest output directory into the DaCHS service, atomically.

1. ``validate``: DIR holds manifest.json, every table rd.xml declares is
   listed in its ``outputs`` with a SHA-256 that matches the file, and each
   FITS file has exactly rd.xml's columns.  Nothing is touched before this
   passes.
2. The tables' rows are replaced in ONE PostgreSQL transaction (TRUNCATE of
   all tables, then COPY of each in foreign-key order, then ANALYZE): a
   failure or an interruption anywhere rolls back to the previous catalogue,
   which keeps serving.  COPY is the bulk path; ``dachs imp`` inserts rows
   one by one (~7k rows/s here).
3. Only when the tables do not exist yet (first publication) or their
   columns differ from rd.xml, ``dachs imp`` creates them from zero-row
   copies of the files, which gives DaCHS's indexes, keys and TAP_SCHEMA
   metadata; the rows then arrive by the same COPY.  Otherwise
   ``dachs imp -m`` refreshes the metadata alone (descriptions, UCDs,
   verbosity edited in rd.xml reach TAP_SCHEMA without touching rows).
4. The FITS files and figures are swapped into the resdir's data/ (what the
   DataLink service serves), then ``dachs limits -t`` (table sizes, MOC) and
   ``dachs pub`` (registry records) run and a running server reloads.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import manifest as ingest_manifest
from .. import schema
from ..errors import PublishError, ServiceError
from .instance import RD_ID, Instance


@dataclass(frozen=True)
class TableFile:
    """One validated table file of an ingest output directory."""

    name: str
    path: Path
    rows: int


def _read_manifest(out_dir: Path) -> dict:
    path = out_dir / "manifest.json"
    if not path.is_file():
        raise PublishError(f"{path}: missing; {out_dir} is not an ingest output directory")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PublishError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("outputs"), dict):
        raise PublishError(f"{path}: no 'outputs' mapping (table -> file, sha256, rows)")
    return manifest


def _fits_columns(path: Path) -> tuple[list[str], int]:
    """Column names and row count of the first table extension (header only)."""
    from astropy.io import fits

    try:
        header = fits.getheader(path, 1)
    except (OSError, IndexError, ValueError) as exc:
        raise PublishError(f"{path}: not a readable FITS table ({exc})") from None
    names = [header[f"TTYPE{i}"] for i in range(1, header.get("TFIELDS", 0) + 1)]
    return names, int(header.get("NAXIS2", 0))


def _check_table(out_dir: Path, table: schema.Table, entry: object) -> TableFile:
    where = f"{out_dir / 'manifest.json'}: outputs.{table.name}"
    if not isinstance(entry, dict) or not {"file", "sha256"} <= entry.keys():
        raise PublishError(f"{where}: needs 'file' and 'sha256'")
    path = (out_dir / entry["file"]).resolve()
    if out_dir.resolve() not in path.parents:
        raise PublishError(f"{where}: file {entry['file']!r} lies outside {out_dir}")
    if not path.is_file():
        raise PublishError(f"{path}: missing (listed in the manifest)")
    if ingest_manifest.sha256(path) != entry["sha256"]:
        raise PublishError(f"{path}: SHA-256 differs from the manifest (file changed or "
                           "truncated after the ingest)")
    names, rows = _fits_columns(path)
    if names != table.names:
        missing = [n for n in table.names if n not in names]
        extra = [n for n in names if n not in table.names]
        detail = (f"missing {missing}, unexpected {extra}" if missing or extra
                  else "same columns in another order")
        raise PublishError(f"{path}: columns differ from rd.xml table {table.name}: {detail}")
    if "rows" in entry and entry["rows"] != rows:
        raise PublishError(f"{path}: {rows} rows, the manifest says {entry['rows']}")
    return TableFile(table.name, path, rows)


def validate(out_dir: str | Path) -> list[TableFile]:
    """The table files of DIR in foreign-key (rd.xml) order; PublishError if DIR is unfit."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise PublishError(f"{out_dir}: not a directory")
    outputs = _read_manifest(out_dir)["outputs"]
    tables = schema.load_tables()
    missing = [name for name in tables if name not in outputs]
    if missing:
        raise PublishError(f"{out_dir / 'manifest.json'}: outputs lack the tables {missing}")
    return [_check_table(out_dir, table, outputs[name]) for name, table in tables.items()]


# ------------------------------------------------------------------ import
def _qualified(name: str) -> str:
    return f"{schema.schema_name()}.{name}"


def _tables_current(instance: Instance) -> bool:
    """True when every table exists with exactly rd.xml's columns, in order."""
    rows = instance.query_value(
        "SELECT string_agg(table_name || ':' || cols, ' ') FROM ("
        " SELECT table_name, string_agg(column_name, ',' ORDER BY ordinal_position) AS cols"
        " FROM information_schema.columns"
        f" WHERE table_schema = '{schema.schema_name()}' GROUP BY table_name) AS t")
    found = dict(item.split(":", 1) for item in rows.split())
    return all(found.get(name) == ",".join(table.names)
               for name, table in schema.load_tables().items())


def _write_csv(table_file: TableFile, dest: Path) -> None:
    """FITS -> headerless CSV for COPY: NaN, TNULL integers and empty text become NULL."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    from astropy.table import Table

    table = schema.table(table_file.name)
    frame = Table.read(table_file.path, hdu=1, character_as_bytes=False).to_pandas()
    frame = frame[table.names]
    text = [c.name for c in table.columns if c.type == "text"]
    frame[text] = frame[text].mask(frame[text] == "")
    pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), dest,
                    pacsv.WriteOptions(include_header=False, quoting_style="needed"))


def _copy_script(tables: list[TableFile], csv_dir: Path) -> str:
    """psql script (run with -1): truncate all tables, COPY each in FK order, ANALYZE."""
    lines = ["TRUNCATE " + ", ".join(_qualified(t.name) for t in tables) + ";"]
    for t in tables:
        columns = ", ".join(schema.table(t.name).names)
        lines.append(f"\\copy {_qualified(t.name)} ({columns}) FROM "
                     f"'{csv_dir / (t.name + '.csv')}' WITH (FORMAT csv)")
    lines += [f"ANALYZE {_qualified(t.name)};" for t in tables]
    return "\n".join(lines) + "\n"


def _link_or_copy(source: Path, dest: Path) -> None:
    """Hard-link when on the same file system (instant, no space), else copy."""
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


def _stage_data(out_dir: Path, tables: list[TableFile], staging: Path) -> None:
    """The next data/ directory: the table files and the ingest's figures."""
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for t in tables:
        _link_or_copy(t.path, staging / f"{t.name}.fits")
    if (out_dir / "figures").is_dir():
        shutil.copytree(out_dir / "figures", staging / "figures", copy_function=_link_or_copy)


def _write_publication_record(out_dir: Path, tables: list[TableFile], instance: Instance,
                              staging: Path) -> None:
    """data/publication.json: which ingest output is served, on which software stack."""
    from .versions import stack_versions

    record = {"source": str(out_dir.resolve()),
              "ingest_manifest_sha256": ingest_manifest.sha256(out_dir / "manifest.json"),
              "simulated_input": _read_manifest(out_dir).get("simulated_input"),
              "rows": {t.name: t.rows for t in tables},
              "versions": stack_versions(instance.server_versions())}
    (staging / "publication.json").write_text(json.dumps(record, indent=2) + "\n")


def _swap_in(staging: Path, data: Path) -> None:
    """Replace data/ by the staged directory (two renames)."""
    old = data.with_name("data.old")
    shutil.rmtree(old, ignore_errors=True)
    if data.exists():
        data.rename(old)
    staging.rename(data)
    shutil.rmtree(old, ignore_errors=True)


def _create_tables(instance: Instance, tables: list[TableFile], scratch: Path) -> None:
    """dachs imp on zero-row copies: tables, indexes, keys, TAP_SCHEMA, no rows."""
    from astropy.io import fits

    empty = scratch / "empty"
    empty.mkdir()
    for t in tables:
        with fits.open(t.path) as hdus:
            hdu = fits.BinTableHDU(data=hdus[1].data[:0], header=hdus[1].header)
            fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(empty / f"{t.name}.fits")
    _swap_in(empty, instance.resdir / "data")
    instance.dachs("imp", RD_ID)


def publish(out_dir: str | Path, instance: Instance,
            say: Callable[[str], None] = print) -> dict[str, float]:
    """Validate DIR and make it the served catalogue; returns seconds per step."""
    out_dir = Path(out_dir)
    seconds: dict[str, float] = {}

    def step(name: str, started: float) -> None:
        seconds[name] = round(time.perf_counter() - started, 3)
        say(f"  {name}: {seconds[name]:.1f} s")

    started = time.perf_counter()
    tables = validate(out_dir)
    step("validate", started)
    say(f"publishing {out_dir} ({', '.join(f'{t.name} {t.rows}' for t in tables)} rows)")

    started = time.perf_counter()
    instance.init()
    previously_simulated = instance.served_simulated()
    # Before any import: DaCHS writes the (SIMULATED-marked or not) table
    # descriptions into TAP_SCHEMA when it creates or refreshes the tables.
    instance.write_site_metadata(bool(_read_manifest(out_dir).get("simulated_input")))
    step("instance", started)

    scratch = Path(tempfile.mkdtemp(prefix="publish-", dir=instance.state))
    try:
        started = time.perf_counter()
        for t in tables:
            _write_csv(t, scratch / f"{t.name}.csv")
        step("convert", started)

        created = not _tables_current(instance)
        if created:
            started = time.perf_counter()
            say("  creating the tables (first publication or changed columns)")
            _create_tables(instance, tables, scratch)
            step("create", started)

        started = time.perf_counter()
        (scratch / "copy.sql").write_text(_copy_script(tables, scratch))
        try:
            instance.psql("-1", "-f", str(scratch / "copy.sql"))
        except ServiceError as exc:
            instance.write_site_metadata(previously_simulated)
            state = ("the tables were just (re)created and stay empty" if created
                     else "the previous catalogue is unchanged and still served")
            raise PublishError(f"{out_dir}: the database import failed and was rolled "
                               f"back; {state}.\n{exc}") from None
        step("copy", started)

        if not created:
            started = time.perf_counter()
            # Descriptions, UCDs, verbosity may have changed in rd.xml without
            # the columns changing: bring TAP_SCHEMA in line, rows untouched.
            instance.dachs("imp", "-m", RD_ID)
            step("metadata", started)

        started = time.perf_counter()
        _stage_data(out_dir, tables, scratch / "data")
        _write_publication_record(out_dir, tables, instance, scratch / "data")
        _swap_in(scratch / "data", instance.resdir / "data")
        step("files", started)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    started = time.perf_counter()
    # -t: table sizes and the MOC only; DaCHS's per-column statistics would put
    # attributes into /tables that VODataService validators (taplint) reject.
    instance.dachs("limits", "-t", RD_ID)
    step("limits", started)
    started = time.perf_counter()
    instance.dachs("pub", RD_ID, "//services", "//tap")
    instance.reload()
    step("pub", started)
    return seconds
