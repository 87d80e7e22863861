"""Which ``--out`` directories ingest may write, checked before any work.

Ingest replaces its output directory as a whole (staged beside it, then
renamed), so the directory must be new, empty, or an earlier ingest output
(recognised by its manifest.json and holding nothing else); replacing the
latter needs an explicit ``force``.  A user's directory with other files, a
directory holding an input file, or a regular file is never replaced.  The
staging directory is created here, so an unwritable parent stops the run
before the first input is read.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ingest.core.errors import OutputError

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "ocvo-ingest-manifest/"
FIGURES = "figures"             # drawn into an ingest output by ``ocvo figures``
FIGURE_SUFFIXES = (".png",)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _manifest_outputs(directory: Path) -> set[str] | None:
    """File names an ingest manifest in ``directory`` lists, or None when it holds none."""
    try:
        record = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not str(record.get("format", "")).startswith(
            MANIFEST_FORMAT):
        return None
    outputs = record.get("outputs", {})
    if not isinstance(outputs, dict):
        return None
    return {str(entry.get("file")) for entry in outputs.values() if isinstance(entry, dict)}


def _only_figures(path: Path) -> bool:
    """True when ``path`` (the figures directory) holds nothing but PNG files."""
    for root, _, files in os.walk(path):
        if any(not name.lower().endswith(FIGURE_SUFFIXES) for name in files):
            return False
    return not path.is_symlink()


def foreign_entries(directory: Path) -> list[str] | None:
    """Entries of an earlier ingest output that ingest (or ``ocvo figures``) did not write;
    None when ``directory`` is not an ingest output at all (no ingest manifest)."""
    listed = _manifest_outputs(directory)
    if listed is None:
        return None
    foreign = []
    for entry in sorted(directory.iterdir()):
        if entry.name == MANIFEST or (entry.name in listed and entry.is_file()
                                      and not entry.is_symlink()):
            continue
        if entry.name == FIGURES and entry.is_dir() and _only_figures(entry):
            continue
        foreign.append(entry.name)
    return foreign


def _inside(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def _listing(names: list[str], limit: int = 5) -> str:
    return ", ".join(names[:limit]) + (f" (and {len(names) - limit} more)"
                                       if len(names) > limit else "")


def check_output(out: Path, inputs: Iterable[Path], force: bool) -> None:
    """Stop unless ingest may (re)write ``out``: see the module docstring for the rules."""
    out = Path(out)
    target = out.resolve()
    for path in inputs:
        if _inside(Path(path).resolve(), target):
            raise OutputError(f"{out}: holds the input {path}; ingest would replace the "
                              "directory of its own inputs: choose a new output directory")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        kind = "a symbolic link" if out.is_symlink() else "a file, not a directory"
        raise OutputError(f"{out}: is {kind}; --out must be a new directory or an earlier "
                          "ingest output (nothing was changed)")
    if not out.exists() or not any(out.iterdir()):
        return
    foreign = foreign_entries(out)
    if foreign is None:
        raise OutputError(f"{out}: directory is not empty and is not an ingest output (no "
                          f"{MANIFEST} of an ingest): it holds {_listing(sorted(p.name for p in out.iterdir()))}. "
                          "Choose a new directory; ingest never replaces other files, even "
                          "with --force")
    if foreign:
        raise OutputError(f"{out}: an earlier ingest output, but it also holds files ingest did "
                          f"not write: {_listing(foreign)}. Move them or choose a new "
                          "directory; ingest never replaces other files, even with --force")
    if not force:
        raise OutputError(f"{out}: holds an earlier ingest output ({MANIFEST}); pass --force to "
                          "replace it (it is replaced only when the new run succeeds)")


def _writable_ancestor(path: Path) -> Path:
    """The nearest existing ancestor of ``path`` (the directory to be created under)."""
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path("/")


def reserve_staging(out: Path) -> Path:
    """Create the staging directory beside ``out`` now: an unwritable parent (read-only
    file system, no permission) stops the run before any work, with a clear message."""
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as exc:
        where = out.parent if out.parent.exists() else _writable_ancestor(out)
        raise OutputError(f"{out}: cannot create the output beside it in {where}: "
                          f"{exc.strerror or exc} (read-only or not writable by this user); "
                          "choose a writable --out") from None
    os.chmod(tmp, 0o777 & ~_umask())   # mkdtemp makes 0700; outputs are read by the publisher
    return tmp


def discard(tmp: Path) -> None:
    """Remove a staging directory that will not be used."""
    shutil.rmtree(tmp, ignore_errors=True)
