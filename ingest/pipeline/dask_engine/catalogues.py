"""HATS catalogues of the members and spectra as read, built with hats-import and cached.

The catalogues hold what the readers returned after their row checks (so a bad input
is stopped by the one reader code path before any catalogue is built), only the
columns the crossmatch needs, and each row's label in the tables of the run
(``member_index``, ``spec_index``), so that pairs found on them name the same rows as
the single-machine crossmatch.  They are cached beside the inputs under a key made of
the inputs' SHA-256 checksums, the crossmatch settings and a fingerprint of the rows
written (another column map or membership cut over the same files gives other rows,
hence another key); where that directory is not writable, under $OCVO_CACHE or
~/.cache/ocvo.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ingest.pipeline import s2_crossmatch as crossmatch
from ingest.core import manifest

CACHE_DIR_NAME = ".ocvo-cache"
CACHE_FORMAT = 1                 # bump when the catalogue layout changes
MIN_PIXEL_ROWS = 1_000           # HATS pixels are split down to about this many rows ...
MAX_PIXEL_ROWS = 1_000_000       # ... and up to this many (hats-import's default)
PARTITIONS_PER_WORKER = 2        # pixels aimed at per worker, for balance
HIGHEST_ORDER = 9                # 6.9' pixels: margins of up to ~1' still fit above them
MARGIN_PAD_ARCSEC = 1.0          # margin beyond radius + largest proper-motion shift


@dataclass(frozen=True)
class HatsCatalogues:
    """Paths of the spectrum and member catalogues and the members' margin cache."""

    spectra: Path
    members: Path
    margin: Path | None
    margin_arcsec: float


def member_columns(members: pd.DataFrame) -> pd.DataFrame:
    """The member columns the positional crossmatch reads, with each row's label."""
    return pd.DataFrame({
        "member_index": members.index.to_numpy(np.int64),
        "ra": members["ra"].to_numpy(float), "dec": members["dec"].to_numpy(float),
        "pmra": crossmatch._optional(members, "pmra"),
        "pmdec": crossmatch._optional(members, "pmdec"),
        "source_id": members["source_id"].astype("Int64").array,
    })


def spectrum_columns(spectra: pd.DataFrame) -> pd.DataFrame:
    """The spectrum columns the crossmatch reads, with each row's label."""
    return pd.DataFrame({
        "spec_index": spectra.index.to_numpy(np.int64),
        "ra": spectra["ra"].to_numpy(float), "dec": spectra["dec"].to_numpy(float),
        "epoch": crossmatch._optional(spectra, "epoch"),
        "source_id": spectra["source_id"].astype("Int64").array,
    })


def margin_arcsec(members: pd.DataFrame, spectra: pd.DataFrame, radius_arcsec: float,
                  gaia_epoch: float) -> float:
    """Margin that holds every member a spectrum can match from a neighbouring pixel: the
    radius plus the largest proper-motion shift between the Gaia and any spectrum epoch."""
    motion = np.hypot(np.nan_to_num(members["pmra"].to_numpy(float)),
                      np.nan_to_num(members["pmdec"].to_numpy(float)))
    epoch = spectra["epoch"].to_numpy(float)
    years = np.abs(np.where(np.isfinite(epoch), epoch - gaia_epoch, 0.0))
    shift = float(np.max(motion, initial=0.0)) * float(np.max(years, initial=0.0)) / 1000.0
    return radius_arcsec + shift + MARGIN_PAD_ARCSEC


def _writable(directory: Path) -> bool:
    """Writable for this process and not marked read-only (no write bit at all: an archive
    copy of the inputs, which even root should leave alone)."""
    return (os.access(directory, os.W_OK | os.X_OK)
            and directory.stat().st_mode & 0o222 != 0)


def cache_root(inputs: Sequence[Path]) -> Path:
    """Beside the first input when its directory is writable, else $OCVO_CACHE or
    ~/.cache/ocvo (a read-only archive of inputs still gets a cache)."""
    beside = Path(inputs[0]).resolve().parent
    if _writable(beside):
        return beside / CACHE_DIR_NAME
    return Path(os.environ.get("OCVO_CACHE") or Path.home() / ".cache" / "ocvo")


def cache_key(inputs: Sequence[Path], settings: dict, frames: Sequence[pd.DataFrame]) -> str:
    """SHA-256 of the inputs' checksums, the crossmatch settings and the rows written."""
    digest = hashlib.sha256()
    record = {"format": CACHE_FORMAT, "settings": settings,
              "inputs": [manifest.sha256(Path(p)) for p in inputs]}
    digest.update(json.dumps(record, sort_keys=True, default=str).encode())
    for frame in frames:
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def pixel_threshold(rows: int, workers: int) -> int:
    """Rows per HATS pixel: about PARTITIONS_PER_WORKER pixels per worker."""
    wanted = rows // max(1, PARTITIONS_PER_WORKER * workers)
    return int(np.clip(wanted, MIN_PIXEL_ROWS, MAX_PIXEL_ROWS))


def _import(client, frame: pd.DataFrame, name: str, work: Path, threshold: int) -> Path:
    """One hats-import run over ``frame`` (written as Parquet first) into work/name."""
    from hats_import.catalog.arguments import ImportArguments
    from hats_import.pipeline import pipeline_with_client

    source = work / f"{name}.input.parquet"
    frame.to_parquet(source, index=False)
    args = ImportArguments(
        output_artifact_name=name, output_path=work, input_file_list=[source],
        file_reader="parquet", ra_column="ra", dec_column="dec",
        pixel_threshold=threshold, highest_healpix_order=HIGHEST_ORDER,
        progress_bar=False, resume=False, tmp_dir=work / f"{name}.tmp")
    pipeline_with_client(args, client)
    source.unlink()
    shutil.rmtree(work / f"{name}.tmp", ignore_errors=True)
    return work / name


def _margin(client, catalogue: Path, threshold_arcsec: float, work: Path) -> Path | None:
    """The member margin cache (None when no member lies near a pixel edge)."""
    from hats_import.margin_cache.margin_cache_arguments import MarginCacheArguments
    from hats_import.pipeline import pipeline_with_client

    args = MarginCacheArguments(
        input_catalog_path=catalogue, output_path=work, output_artifact_name="members_margin",
        margin_threshold=threshold_arcsec, progress_bar=False, resume=False,
        tmp_dir=work / "members_margin.tmp")
    pipeline_with_client(args, client)
    shutil.rmtree(work / "members_margin.tmp", ignore_errors=True)
    margin = work / "members_margin"
    properties = (margin / "hats.properties").read_text() if margin.is_dir() else ""
    return None if "hats_nrows=0\n" in properties + "\n" else margin


def build(client, members: pd.DataFrame, spectra: pd.DataFrame, inputs: Sequence[Path],
          radius_arcsec: float, gaia_epoch: float, workers: int) -> HatsCatalogues:
    """The cached catalogues of these rows, built (once per key) with hats-import on ``client``."""
    member_frame, spectrum_frame = member_columns(members), spectrum_columns(spectra)
    margin = margin_arcsec(member_frame, spectrum_frame, radius_arcsec, gaia_epoch)
    settings = {"radius_arcsec": radius_arcsec, "gaia_epoch": gaia_epoch, "margin": margin}
    root = cache_root(inputs)
    final = root / f"hats-{cache_key(inputs, settings, [member_frame, spectrum_frame])[:32]}"
    if not (final / "complete.json").is_file():
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
        try:
            _import(client, spectrum_frame, "spectra", work,
                    pixel_threshold(len(spectrum_frame), workers))
            members_path = _import(client, member_frame, "members", work,
                                   pixel_threshold(len(member_frame), workers))
            has_margin = _margin(client, members_path, margin, work) is not None
            if has_margin:      # the margin names its catalogue by path: the final one
                _repoint(work / "members_margin" / "hats.properties", work, final)
            (work / "complete.json").write_text(json.dumps(
                {**settings, "has_margin": has_margin,
                 "inputs": [str(Path(p).resolve()) for p in inputs]}, indent=1))
            _publish(work, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    record = json.loads((final / "complete.json").read_text())
    return HatsCatalogues(final / "spectra", final / "members",
                          final / "members_margin" if record["has_margin"] else None, margin)


def _repoint(properties: Path, work: Path, final: Path) -> None:
    """Replace the build directory by the final one in a HATS properties file."""
    properties.write_text(properties.read_text().replace(str(work), str(final)))


def _publish(work: Path, final: Path) -> None:
    """Move a finished build into place; a concurrent identical build may have won."""
    try:
        os.rename(work, final)
    except OSError:
        if not (final / "complete.json").is_file():
            raise
