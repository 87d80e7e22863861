"""The Dask engine (LSDB/HATS crossmatch, Dask combination and estimates) publishes the
local engine's tables: the demo through both engines, every table column by column,
on a LocalCluster of 2 worker processes; a bad input stops both the same way."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from ingest.core import config
from ingest.pipeline import s5_estimate as estimation
from ingest.pipeline.dask_engine import aggregate, catalogues, dask_engine
from ingest.core.errors import CatalogueError, InputError
from ingest.core.vocabulary import TABLES
from ingest.pipeline.run import run_ingest
from ingest.simulation import ingest_arguments

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine():
    """One Dask engine (LocalCluster, 2 worker processes on 127.0.0.1) for the module."""
    with dask_engine(n_workers=2) as opened:
        yield opened


@pytest.fixture(scope="module")
def dask_inputs(demo_sim, tmp_path_factory) -> Path:
    """A copy of the demo inputs, so the HATS cache built beside them is this module's."""
    copy = tmp_path_factory.mktemp("dask_inputs") / "sim"
    shutil.copytree(demo_sim, copy)
    return copy


def _config() -> dict:
    """The default configuration with short gradient MCMC chains: the gradients are the
    same code for both engines and took most of each run's time."""
    cfg = config.defaults()
    cfg["gradients"].update(mcmc_steps=300, mcmc_burn=100, mcmc_max_steps=600)
    return cfg


@pytest.fixture(scope="module")
def local_ingest(dask_inputs, tmp_path_factory) -> Path:
    """The demo ingested with the local engine."""
    out = tmp_path_factory.mktemp("local_ingest") / "out"
    run_ingest(**ingest_arguments(dask_inputs), out=out, config=_config(), progress=False)
    return out


@pytest.fixture(scope="module")
def dask_ingest(dask_inputs, engine, tmp_path_factory) -> Path:
    """The demo ingested with the Dask engine, same inputs and configuration."""
    out = tmp_path_factory.mktemp("dask_ingest") / "out"
    run_ingest(**ingest_arguments(dask_inputs), out=out, config=_config(), progress=False,
               engine=engine)
    return out


def _column_difference(local: np.ndarray, dask: np.ndarray) -> str:
    """Rows that differ and, for floats, the largest relative difference."""
    if local.shape != dask.shape:
        return f"shapes {local.shape} and {dask.shape}"
    differ = local != dask
    if local.dtype.kind == "f":
        differ &= ~(np.isnan(local) & np.isnan(dask))
        scale = np.fmax(np.abs(local[differ]), np.finfo(float).tiny)
        largest = np.max(np.abs(local[differ] - dask[differ]) / scale, initial=0.0)
        return f"{int(differ.sum())} rows differ, largest relative difference {largest:.3g}"
    return f"{int(np.sum(differ))} rows differ"


@pytest.mark.parametrize("name", TABLES)
def test_tables_equal_column_by_column(local_ingest, dask_ingest, name):
    """Same rows in the same order, same columns, and every value bit for bit (the
    partitions keep each group's summation order, so no column needs a tolerance)."""
    with fits.open(local_ingest / f"{name}.fits") as a, fits.open(dask_ingest / f"{name}.fits") as b:
        local, dask = a[1], b[1]
        assert local.columns.names == dask.columns.names
        assert [c.format for c in local.columns] == [c.format for c in dask.columns]
        assert local.header["NAXIS2"] == dask.header["NAXIS2"]
        unequal = {column: _column_difference(np.asarray(local.data[column]),
                                              np.asarray(dask.data[column]))
                   for column in local.columns.names
                   if local.data[column].tobytes() != dask.data[column].tobytes()}
    assert not unequal, f"{name}: columns differ between the engines: {unequal}"
    assert len(Table.read(dask_ingest / f"{name}.fits")) > 0 or name == "binary_candidate"


def test_manifests_name_the_engine(local_ingest, dask_ingest):
    """The manifest says which engine made the tables (with the Dask packages' versions)."""
    local = json.loads((local_ingest / "manifest.json").read_text())["engine"]
    dask = json.loads((dask_ingest / "manifest.json").read_text())["engine"]
    assert local == {"name": "local"}
    assert dask["name"] == "dask" and dask["workers"] == 2
    assert dask["versions"]["lsdb"] and dask["versions"]["hats-import"]


def test_hats_catalogues_cached_beside_inputs(dask_inputs, dask_ingest):
    """The run built partitioned HATS catalogues (more than one pixel, so the margin and
    the partitioning were exercised) beside the inputs, with the members' margin."""
    import lsdb

    cached = sorted((dask_inputs / catalogues.CACHE_DIR_NAME).glob("hats-*/complete.json"))
    assert len(cached) == 1
    root = cached[0].parent
    assert lsdb.open_catalog(root / "spectra").npartitions > 1
    assert lsdb.open_catalog(root / "members").npartitions > 1
    assert (root / "members_margin").is_dir()
    assert f"hats_primary_table_url={root / 'members'}\n" in (
        root / "members_margin" / "hats.properties").read_text()


def _tree_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode() + file.read_bytes())
    return digest.hexdigest()


def _far_from_members(data: fits.FITS_rec) -> None:
    """Every spectrum near the south celestial pole with a Gaia id no member has."""
    data["ra"] = np.linspace(0.0, 1.0, len(data))
    data["dec"] = -89.9
    data["gaia_source_id"] = np.arange(1, len(data) + 1)


def _low_snr(data: fits.FITS_rec) -> None:
    """Every spectrum below the S/N cut (matched, then rejected by quality control)."""
    data["snrg"] = 1.0


@pytest.mark.parametrize("spoil, error", [(_far_from_members, InputError),
                                          (_low_snr, CatalogueError)])
def test_bad_input_rejected_alike_and_out_untouched(demo_sim, local_ingest, engine, tmp_path,
                                                    spoil, error):
    """LRS spectra that match no member (stopped after the crossmatch) or that all fail
    quality control (stopped after the estimates): both engines stop with the same
    error and message, and the earlier output in --out stays as it was."""
    arguments = ingest_arguments(demo_sim)
    for role in ("clusters", "members"):
        arguments[role] = Path(shutil.copy(arguments[role], tmp_path))
    spoilt = tmp_path / "spoilt_lrs.fits"
    with fits.open(arguments["spectra"][1][0]) as hdus:
        spoil(hdus[1].data)
        hdus.writeto(spoilt)
    arguments.update(spectra=[(spoilt, "lamost-lrs")], literature=[])
    out = tmp_path / "out"
    shutil.copytree(local_ingest, out)
    before = _tree_digest(out)
    messages = []
    for chosen in (None, engine):
        with pytest.raises(error) as caught:
            run_ingest(**arguments, out=out, config=_config(), progress=False, force=True,
                       engine=chosen)
        messages.append(str(caught.value))
        assert _tree_digest(out) == before
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    assert messages[0] == messages[1]
    assert str(arguments["members"]) in messages[0]


def test_partitions_hold_whole_clusters():
    """Every cluster's pairs go to one partition, partitions are contiguous in key order
    and balanced by pair count."""
    import pandas as pd

    members = pd.DataFrame({"cluster_key": ["a", "a", "b", "c", "c", "d"]},
                           index=[10, 11, 12, 13, 14, 15])
    pairs = pd.DataFrame({"member_index": [10, 11, 11, 12, 13, 14, 14, 15, 15, 15]})
    part, groups = aggregate.partition_of_pairs(pairs, members, 2)
    keys = members.loc[pairs["member_index"], "cluster_key"].to_numpy()
    for key in set(keys):
        assert len(set(part[keys == key])) == 1
    assert [list(g) for g in groups] == [["a", "b"], ["c", "d"]]


def test_mixture_quantile_of_a_group_ignores_the_other_groups():
    """A cluster's median is the same bits computed alone or beside a slowly converging
    cluster (the Dask engine estimates clusters in partitions)."""
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(0, 1, 40), [-50.0, 50.0, 0.3]])
    s = np.concatenate([rng.uniform(0.1, 2, 40), [0.01, 0.01, 30.0]])
    group = np.concatenate([np.zeros(40, np.int64), np.ones(3, np.int64)])
    together = estimation.mixture_median(group, x, s, 2)
    alone = estimation.mixture_median(np.zeros(40, np.int64), x[:40], s[:40], 1)
    assert together[0].tobytes() == alone[0].tobytes()


def test_id_fallback_tie_goes_to_the_same_member_in_both_engines():
    """A spectrum whose Gaia id matches no member, exactly as far from two members without
    ids (one star listed in two clusters): both engines give it to the first member row,
    whatever order the candidate pairs were found in."""
    import pandas as pd
    from dataclasses import replace

    from ingest.pipeline import s2_crossmatch as crossmatch
    from ingest.pipeline.dask_engine import xmatch

    members = pd.DataFrame({"ra": [10.0, 10.0, 50.0], "dec": [5.0, 5.0, 5.0],
                            "pmra": 0.0, "pmdec": 0.0,
                            "source_id": pd.array([None, None, 7], dtype="Int64")},
                           index=[4, 9, 12])
    spectra = pd.DataFrame({"ra": [10.0], "dec": [5.0 + 1.0 / 3600], "epoch": [2016.0],
                            "source_id": pd.array([123], dtype="Int64")}, index=[3])
    xm = replace(config.settings(config.defaults()).crossmatch, radius_arcsec=3.5,
                 gaia_epoch=2016.0, id_fallback=False)
    local = crossmatch.match(members, spectra, xm, "DR3")
    assert local[["spec_index", "member_index"]].to_numpy().tolist() == [[3, 4]]
    sep = float(local["match_sep"].iloc[0])
    near = pd.DataFrame({"spec_index": [3, 3], "member_index": [9, 4], "match_sep": [sep, sep],
                         "spec_has_id": True, "member_has_id": False,
                         "spec_source_id": pd.array([123, 123], dtype="Int64")})
    ids = pd.DataFrame({"spec_index": np.empty(0, np.int64),
                        "member_index": np.empty(0, np.int64)})
    kept = xmatch._fallback(near, ids, False, members, spectra)
    assert kept[["spec_index", "member_index"]].to_numpy().tolist() == [[3, 4]]


def test_cache_beside_inputs_or_in_ocvo_cache(tmp_path, monkeypatch):
    """The HATS cache goes beside the inputs, or under $OCVO_CACHE when their directory
    is read-only."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "clusters.fits").write_bytes(b"x")
    monkeypatch.setenv("OCVO_CACHE", str(tmp_path / "cache"))
    assert catalogues.cache_root([inputs / "clusters.fits"]) == inputs / catalogues.CACHE_DIR_NAME
    inputs.chmod(0o555)
    try:
        assert catalogues.cache_root([inputs / "clusters.fits"]) == tmp_path / "cache"
    finally:
        inputs.chmod(0o755)
