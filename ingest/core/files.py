"""File-system helpers shared by the ingest, the simulator and publication."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def replace_directory(staging: Path, target: Path, parking: Path | None = None,
                      before_removal: Callable[[Path], None] | None = None) -> None:
    """Put the finished ``staging`` directory in place of ``target`` by two renames.

    Readers see the old directory or the new one, never a half-written one.  An
    existing ``target`` waits at ``parking`` (default: inside a fresh hidden
    directory beside it; a fixed name lets crash recovery find it) until
    ``staging`` is in place; if that rename fails it is put back, so ``target`` is
    never lost.  ``before_removal(parked)`` may take files from the old directory
    before it is deleted.  Both directories must be on one file system.
    """
    staging, target = Path(staging), Path(target)
    holder = parked = None
    if target.exists():
        if parking is None:
            holder = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            parked = holder / target.name
        else:
            holder = parked = Path(parking)
        os.rename(target, parked)
    try:
        os.rename(staging, target)
    except OSError:
        if parked is not None:
            os.rename(parked, target)
            if holder != parked:
                holder.rmdir()
        raise
    if parked is not None:
        if before_removal is not None:
            before_removal(parked)
        shutil.rmtree(holder, ignore_errors=True)
