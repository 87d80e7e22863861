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

Rows, files and MOC as one step.  The COPY transaction also records the
publication (its manifest's SHA-256, its directory, "metadata pending") in
``ocvo_admin.publication``; data/publication.json carries the same SHA-256
and the list of files the publication put there.  When the two disagree or
the metadata is still pending (a publication killed after its commit), the
next ``publish`` or ``serve`` repairs: the committed directory's files are
swapped in again and ``dachs limits``/``dachs pub`` rerun.  Only one
publication runs at a time (a lock file); it works in ``STATE/publish-*``
scratch directories, removed on every exit and, after a kill, by the next
publication.  Files in data/figures that no publication put there (the
demo's per-cluster previews) are carried over, never deleted.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest.core import manifest as ingest_manifest
from ingest.core import schema
from ingest.core.errors import PublishError, ServiceError
from ingest.core.files import replace_directory
from ingest.publication.instance import RD_ID, Instance


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


RECORD_TABLE = "ocvo_admin.publication"
# Not visible through TAP (not in TAP_SCHEMA; DaCHS's roles have no rights on it).
RECORD_DDL = ("CREATE SCHEMA IF NOT EXISTS ocvo_admin;\n"
              f"CREATE TABLE IF NOT EXISTS {RECORD_TABLE} (manifest_sha256 text NOT NULL, "
              "source text NOT NULL, metadata_pending boolean NOT NULL, "
              "published_at timestamptz NOT NULL DEFAULT now());\n")


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _copy_script(tables: list[TableFile], csv_dir: Path, record: dict | None = None) -> str:
    """psql script (run with -1): truncate all tables, COPY each in FK order, ANALYZE.

    With ``record`` (source, manifest SHA-256) the same transaction notes the
    publication in RECORD_TABLE, so rows and record commit together."""
    lines = ["TRUNCATE " + ", ".join(_qualified(t.name) for t in tables) + ";"]
    for t in tables:
        columns = ", ".join(schema.table(t.name).names)
        lines.append(f"\\copy {_qualified(t.name)} ({columns}) FROM "
                     f"'{csv_dir / (t.name + '.csv')}' WITH (FORMAT csv)")
    if record is not None:
        lines += [RECORD_DDL + f"DELETE FROM {RECORD_TABLE};",
                  f"INSERT INTO {RECORD_TABLE} (manifest_sha256, source, metadata_pending) "
                  f"VALUES ({_sql_text(record['sha256'])}, {_sql_text(record['source'])}, true);"]
    lines += [f"ANALYZE {_qualified(t.name)};" for t in tables]
    return "\n".join(lines) + "\n"


def _link_or_copy(source: Path, dest: Path) -> None:
    """Hard-link when on the same file system (instant, no space), else copy."""
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


def _relative_files(top: Path) -> list[str]:
    return sorted(str(p.relative_to(top)) for p in top.rglob("*") if p.is_file())


def _published_files(data: Path) -> set[str] | None:
    """The files the served publication put into data/ (None: an older record, unknown)."""
    try:
        return set(json.loads((data / "publication.json").read_text())["files"])
    except (FileNotFoundError, KeyError, ValueError):
        return None


def _stage_data(out_dir: Path, tables: list[TableFile], staging: Path) -> None:
    """The next data/ directory: the table files and the ingest's figures."""
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for t in tables:
        _link_or_copy(t.path, staging / f"{t.name}.fits")
    if (out_dir / "figures").is_dir():
        shutil.copytree(out_dir / "figures", staging / "figures", copy_function=_link_or_copy)


def _carry_over_foreign_figures(data: Path, staging: Path) -> list[str]:
    """Figures in data/figures no publication made (the demo's previews) go along.

    Files the new publication brings win; those of the previous publication
    are replaced.  An old data/ without a file list: every figure the new one
    lacks is kept (nothing is deleted that might not be ours)."""
    ours = _published_files(data) or set()
    carried = []
    figures = data / "figures"
    if not figures.is_dir():
        return carried
    for name in _relative_files(data):
        if not name.startswith("figures/") or name in ours or (staging / name).exists():
            continue
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        _link_or_copy(data / name, staging / name)
        carried.append(name)
    return carried


def _write_publication_record(out_dir: Path, tables: list[TableFile], instance: Instance,
                              staging: Path, carried: list[str]) -> None:
    """data/publication.json: which ingest output is served, on which stack, which files."""
    from ingest.publication.versions import stack_versions

    files = [name for name in _relative_files(staging) if name not in carried]
    record = {"source": str(out_dir.resolve()),
              "ingest_manifest_sha256": ingest_manifest.sha256(out_dir / "manifest.json"),
              "simulated_input": _read_manifest(out_dir).get("simulated_input"),
              "rows": {t.name: t.rows for t in tables},
              "versions": stack_versions(instance.server_versions()),
              "files": files + ["publication.json"]}
    (staging / "publication.json").write_text(json.dumps(record, indent=2) + "\n")


def _swap_in(staging: Path, data: Path) -> None:
    """Replace data/ by the staged directory (two renames).

    Figures drawn into data/ while the staging ran (the demo's previews) are
    carried over from the replaced directory before it is removed."""
    old = data.with_name("data.old")       # the name _clean_after_kill looks for
    shutil.rmtree(old, ignore_errors=True)
    replace_directory(staging, data, parking=old,
                      before_removal=lambda parked: _carry_over_foreign_figures(parked, data))


def _create_tables(instance: Instance, tables: list[TableFile], scratch: Path) -> None:
    """dachs imp on zero-row copies: tables, indexes, keys, TAP_SCHEMA, no rows."""
    from astropy.io import fits

    empty = scratch / "empty"
    empty.mkdir()
    for t in tables:
        with fits.open(t.path) as hdus:
            hdu = fits.BinTableHDU(data=hdus[1].data[:0], header=hdus[1].header)
            fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(empty / f"{t.name}.fits")
    # The previous data/ (figures drawn into it included) waits beside it; a
    # kill meanwhile is undone by the next publication_lock.
    data, previous = instance.resdir / "data", instance.resdir / "data.previous"
    if data.exists():
        data.rename(previous)
    empty.rename(data)
    instance.dachs("imp", RD_ID)
    shutil.rmtree(data)
    if previous.exists():
        previous.rename(data)


# ------------------------------------------------------------------ safety
@contextlib.contextmanager
def publication_lock(instance: Instance) -> Iterator[None]:
    """One publication (or repair) at a time; leftovers of killed ones are removed.

    The lock is a flock on STATE/publish.lock: the kernel releases it when
    its holder dies, so whoever holds it knows every STATE/publish-* is an
    orphan.  The commands run meanwhile inherit it: one that outlives a
    killed publication (psql in mid-COPY) keeps it until it ends, so that
    whoever takes the lock next sees its outcome, committed or not."""
    from ingest.publication import instance as instance_module

    instance.state.mkdir(parents=True, exist_ok=True)
    with open(instance.state / "publish.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        instance_module.INHERITED_FDS.add(lock.fileno())
        try:
            _clean_after_kill(instance)
            yield
        finally:
            instance_module.INHERITED_FDS.discard(lock.fileno())


def _clean_after_kill(instance: Instance) -> None:
    """What a killed publication left: scratch directories, a data/ in mid-swap."""
    for orphan in instance.state.glob("publish-*"):
        shutil.rmtree(orphan, ignore_errors=True)
    data = instance.resdir / "data"
    if (instance.resdir / "data.previous").exists():  # killed while creating tables
        shutil.rmtree(data, ignore_errors=True)
        (instance.resdir / "data.previous").rename(data)
    old = instance.resdir / "data.old"
    if old.exists() and not data.exists():  # killed between the two renames
        old.rename(data)
    elif old.exists():  # killed before the figures drawn meanwhile were carried over
        _carry_over_foreign_figures(old, data)
        shutil.rmtree(old)


def _served_record(instance: Instance) -> dict | None:
    """RECORD_TABLE's row (what the database serves), or None before any such publication."""
    exists = instance.query_value("SELECT to_regclass('ocvo_admin.publication') IS NOT NULL")
    if exists != "t":
        return None
    row = instance.query_value(
        f"SELECT json_build_object('sha256', manifest_sha256, 'source', source, "
        f"'metadata_pending', metadata_pending) FROM {RECORD_TABLE}")
    return json.loads(row) if row else None


def _files_sha(instance: Instance) -> str | None:
    try:
        record = json.loads((instance.resdir / "data" / "publication.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return record.get("ingest_manifest_sha256")


def _refresh_metadata(instance: Instance, step, columns: bool = True) -> None:
    """Column metadata, MOC and table sizes, registry records, servers reloaded; then the
    publication's record is complete (a kill before that is repaired on the next start)."""
    if columns:
        started = time.perf_counter()
        # Descriptions, UCDs, verbosity may have changed in rd.xml without
        # the columns changing: bring TAP_SCHEMA in line, rows untouched.
        instance.dachs("imp", "-m", RD_ID)
        step("metadata", started)
    started = time.perf_counter()
    # -t: table sizes and the MOC only; DaCHS's per-column statistics would put
    # attributes into /tables that VODataService validators (taplint) reject.
    instance.dachs("limits", "-t", RD_ID)
    step("limits", started)
    started = time.perf_counter()
    instance.dachs("pub", RD_ID, "//services", "//tap")
    instance.psql("-c", f"UPDATE {RECORD_TABLE} SET metadata_pending = false")
    instance.reload()
    step("pub", started)


def repair(instance: Instance, say: Callable[[str], None] = print) -> bool:
    """Finish a publication killed after its commit: files, MOC and registry to match the rows.

    Call with the publication lock held.  Returns whether anything was repaired."""
    record = _served_record(instance)
    if record is None:
        return False
    files_current = _files_sha(instance) == record["sha256"]
    if files_current and not record["metadata_pending"]:
        return False
    say(f"repairing an interrupted publication of {record['source']}")
    if not files_current:
        source = Path(record["source"])
        if (not (source / "manifest.json").is_file()
                or ingest_manifest.sha256(source / "manifest.json") != record["sha256"]):
            raise ServiceError(
                f"the database serves the catalogue of {source}, but data/ holds other files "
                f"(an interrupted publication) and {source} has changed or is gone: publish an "
                "ingest directory again ('ocvo publish DIR') to make both agree")
        tables = validate(source)
        scratch = Path(tempfile.mkdtemp(prefix="publish-", dir=instance.state))
        try:
            _stage_data(source, tables, scratch / "data")
            carried = _carry_over_foreign_figures(instance.resdir / "data", scratch / "data")
            _write_publication_record(source, tables, instance, scratch / "data", carried)
            _swap_in(scratch / "data", instance.resdir / "data")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    _refresh_metadata(instance, lambda name, started: say(f"  {name}: repaired"))
    return True


def _served_count(instance: Instance, table: str) -> int | None:
    """Rows of a served table (None when the table does not exist yet)."""
    exists = instance.query_value(f"SELECT to_regclass('{_qualified(table)}') IS NOT NULL")
    return int(instance.query_value(f"SELECT count(*) FROM {_qualified(table)}")) \
        if exists == "t" else None


def check_no_collapse(out_dir: Path, tables: list[TableFile], instance: Instance) -> None:
    """Refuse a catalogue whose rows collapse against the served one (PublishError).

    Fewer than half the served clusters, or no rows at all in a table that
    has rows now, is far more likely a broken ingest than a real change."""
    rows = {t.name: t.rows for t in tables}
    served_clusters = _served_count(instance, "cluster")
    if not served_clusters:
        return
    if rows["cluster"] < served_clusters / 2:
        raise PublishError(
            f"{out_dir}: {rows['cluster']} clusters against {served_clusters} served (fewer "
            "than half); refusing to replace the catalogue. If this is intended, publish "
            "with --allow-shrink")
    for name in ("member", "spectrum"):
        count, served = rows[name], _served_count(instance, name)
        if count == 0 and served:
            raise PublishError(
                f"{out_dir}: table {name} has 0 rows against {served} served; refusing to "
                "replace the catalogue. If this is intended, publish with --allow-shrink")


def publish(out_dir: str | Path, instance: Instance, say: Callable[[str], None] = print,
            allow_shrink: bool = False) -> dict[str, float]:
    """Validate DIR and make it the served catalogue; returns seconds per step."""
    out_dir = Path(out_dir)
    seconds: dict[str, float] = {}

    def step(name: str, started: float) -> None:
        seconds[name] = round(time.perf_counter() - started, 3)
        say(f"  {name}: {seconds[name]:.1f} s")

    started = time.perf_counter()
    tables = validate(out_dir)
    step("validate", started)

    started = time.perf_counter()
    instance.init()
    with publication_lock(instance):
        repair(instance, say)
        if not allow_shrink:
            check_no_collapse(out_dir, tables, instance)
        say(f"publishing {out_dir} ({', '.join(f'{t.name} {t.rows}' for t in tables)} rows)")
        _publish_locked(out_dir, tables, instance, say, step, started)
    return seconds


def _publish_locked(out_dir: Path, tables: list[TableFile], instance: Instance,
                    say: Callable[[str], None], step, started: float) -> None:
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
        # The files are staged before the commit, so only two renames follow it.
        _stage_data(out_dir, tables, scratch / "data")
        carried = _carry_over_foreign_figures(instance.resdir / "data", scratch / "data")
        _write_publication_record(out_dir, tables, instance, scratch / "data", carried)
        step("convert", started)

        created = not _tables_current(instance)
        if created:
            started = time.perf_counter()
            say("  creating the tables (first publication or changed columns)")
            _create_tables(instance, tables, scratch)
            step("create", started)

        started = time.perf_counter()
        record = {"sha256": ingest_manifest.sha256(out_dir / "manifest.json"),
                  "source": str(out_dir.resolve())}
        (scratch / "copy.sql").write_text(_copy_script(tables, scratch, record))
        try:
            instance.psql("-1", "-f", str(scratch / "copy.sql"))
        except ServiceError as exc:
            instance.write_site_metadata(previously_simulated)
            state = ("the tables were just (re)created and stay empty" if created
                     else "the previous catalogue is unchanged and still served")
            raise PublishError(f"{out_dir}: the database import failed and was rolled "
                               f"back; {state}.\n{exc}") from None
        step("copy", started)

        started = time.perf_counter()
        _swap_in(scratch / "data", instance.resdir / "data")
        step("files", started)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _refresh_metadata(instance, step, columns=not created)
