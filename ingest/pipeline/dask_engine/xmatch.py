"""The member x spectrum crossmatch of ``ingest.pipeline.s2_crossmatch.match`` on HATS catalogues with LSDB.

Gaia-id pairs come from a Dask join of the two catalogues on source_id.  Positional
pairs come from an LSDB crossmatch of the spectrum catalogue (left) against the
member catalogue with its margin (right) whose per-pixel algorithm is
``crossmatch._position_pairs`` itself: every (spectrum, member) pair within the
radius after moving the member to the spectrum's epoch, all pairs (a blended fibre
matches every member in it).  The margin is the radius plus the largest proper-motion
shift, so a member just across a pixel edge is seen too; each spectrum lies in one
pixel, so each pair is found once.  Which of those pairs count follows ``match``:
spectra without an id keep all of theirs; spectra whose id matched no member keep
those with members without an id (and, with ``id_fallback``, members no id matched),
reduced to mutually nearest (id, member) pairs.  The pairs found within the radius
do not depend on how the rows are grouped, so they and their separations are those
of the single-machine crossmatch.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from lsdb.core.crossmatch.abstract_crossmatch_algorithm import AbstractCrossmatchAlgorithm

from ingest.pipeline import s2_crossmatch as crossmatch

from ingest.pipeline.dask_engine.catalogues import HatsCatalogues


def _floats(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A float column with nulls as NaN (HATS catalogues read back with Arrow types)."""
    return frame[name].astype("float64").to_numpy(float, na_value=np.nan)


def _ids(frame: pd.DataFrame) -> pd.Series:
    return pd.Series(frame["source_id"].astype("Int64").to_numpy(), dtype="Int64")


class PropagatedPairs(AbstractCrossmatchAlgorithm):
    """LSDB crossmatch algorithm: all pairs within the radius after epoch propagation,
    computed per pixel by ``ingest.pipeline.s2_crossmatch._position_pairs`` (the local path's code)."""

    extra_columns = pd.DataFrame({"match_sep": pd.Series(dtype=np.float64)})

    def __init__(self, radius_arcsec: float, gaia_epoch: float):
        super().__init__()
        self.radius_arcsec = radius_arcsec
        self.gaia_epoch = gaia_epoch

    def perform_crossmatch(self, crossmatch_args) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
        """(spectrum row, member row, separation) of one pixel's spectra and its members."""
        left, right = crossmatch_args.left_df, crossmatch_args.right_df
        spectra = pd.DataFrame({"ra": _floats(left, "ra"), "dec": _floats(left, "dec"),
                                "epoch": _floats(left, "epoch"), "source_id": _ids(left)})
        members = pd.DataFrame({c: _floats(right, c) for c in ("ra", "dec", "pmra", "pmdec")})
        members["source_id"] = _ids(right)
        s, m, sep = crossmatch._position_pairs(
            members, spectra, np.arange(len(spectra)), np.arange(len(members)),
            self.radius_arcsec, self.gaia_epoch)
        return s, m, pd.DataFrame({"match_sep": np.asarray(sep, np.float64)})


def _open(catalogues: HatsCatalogues):
    import lsdb

    spectra = lsdb.open_catalog(catalogues.spectra)
    members = lsdb.open_catalog(catalogues.members, margin_cache=catalogues.margin)
    return spectra, members


def _join_ids(spectra: pd.DataFrame, member_ids: pd.DataFrame) -> pd.DataFrame:
    """(spec_index, member_index) of one partition's spectra whose id is a member's."""
    left = pd.DataFrame({"spec_index": spectra["spec_index"].to_numpy(np.int64),
                         "source_id": _ids(spectra)}).dropna(subset=["source_id"])
    joined = left.merge(member_ids, on="source_id", how="inner", sort=False)
    return joined[["spec_index", "member_index"]].astype(np.int64)


def id_pairs(client, spectra_cat, members_cat) -> pd.DataFrame:
    """(spec_index, member_index) of every shared Gaia source_id: a broadcast join of the
    member ids (one per member, small) against each spectrum partition."""
    import dask

    members = members_cat.to_dask_dataframe(divisions=False)[["member_index", "source_id"]]
    members = members.compute()
    member_ids = pd.DataFrame({"member_index": members["member_index"].to_numpy(np.int64),
                               "source_id": _ids(members)}).dropna(subset=["source_id"])
    shared = client.scatter(member_ids, broadcast=True)
    partitions = spectra_cat.to_dask_dataframe(divisions=False)[
        ["spec_index", "source_id"]].to_delayed()
    joined = client.gather(client.compute([dask.delayed(_join_ids)(p, shared)
                                           for p in partitions]))
    frames = [f for f in joined if len(f)]
    return (pd.concat(frames, ignore_index=True) if frames
            else pd.DataFrame({"spec_index": np.empty(0, np.int64),
                               "member_index": np.empty(0, np.int64)}))


def position_pairs(spectra_cat, members_cat, radius_arcsec: float,
                   gaia_epoch: float) -> pd.DataFrame:
    """Every (spectrum, member) pair within the radius after propagation, ids ignored:
    spec_index, member_index, match_sep, spec_has_id, member_has_id."""
    result = spectra_cat.crossmatch(
        members_cat, algorithm=PropagatedPairs(radius_arcsec, gaia_epoch),
        suffixes=("_s", "_m"), suffix_method="all_columns")
    columns = ["spec_index_s", "member_index_m", "match_sep", "source_id_s", "source_id_m"]
    frame = result.to_dask_dataframe(divisions=False)[columns].compute()
    return pd.DataFrame({
        "spec_index": frame["spec_index_s"].to_numpy(np.int64),
        "member_index": frame["member_index_m"].to_numpy(np.int64),
        "match_sep": _floats(frame, "match_sep"),
        "spec_has_id": frame["source_id_s"].notna().to_numpy(),
        "member_has_id": frame["source_id_m"].notna().to_numpy(),
        "spec_source_id": _ids(frame.rename(columns={"source_id_s": "source_id"})),
    })


def _fallback(near: pd.DataFrame, ids: pd.DataFrame, id_fallback: bool,
              members: pd.DataFrame, spectra: pd.DataFrame) -> pd.DataFrame:
    """The pairs of spectra whose id matched no member with the members ``match`` lets them
    try by position, reduced to mutually nearest (id, member) pairs as ``match`` does (in
    row order, as there, so exact ties are broken alike)."""
    unmatched = near["spec_has_id"].to_numpy() & ~np.isin(near["spec_index"], ids["spec_index"])
    candidate = ~near["member_has_id"].to_numpy()
    if id_fallback:
        candidate |= ~np.isin(near["member_index"], ids["member_index"])
    extra = near[unmatched & candidate]
    extra = extra.iloc[np.lexsort((members.index.get_indexer(extra["member_index"]),
                                   spectra.index.get_indexer(extra["spec_index"])))]
    sids = pd.DataFrame({"source_id": extra["spec_source_id"].to_numpy()})
    keep = crossmatch._one_star_per_member(sids, np.arange(len(extra)),
                                           extra["member_index"].to_numpy(),
                                           extra["match_sep"].to_numpy(float))
    return extra[keep]


def match(client, catalogues: HatsCatalogues, members: pd.DataFrame, spectra: pd.DataFrame,
          radius_arcsec: float, gaia_epoch: float, id_fallback: bool) -> pd.DataFrame:
    """The pairs of ``crossmatch.match(members, spectra, ...)``, found on the catalogues."""
    spectra_cat, members_cat = _open(catalogues)
    ids = id_pairs(client, spectra_cat, members_cat)
    near = position_pairs(spectra_cat, members_cat, radius_arcsec, gaia_epoch)
    by_position = pd.concat([near[~near["spec_has_id"].to_numpy()],
                             _fallback(near, ids, id_fallback, members, spectra)])
    s_label = np.concatenate([ids["spec_index"].to_numpy(np.int64),
                              by_position["spec_index"].to_numpy(np.int64)])
    m_label = np.concatenate([ids["member_index"].to_numpy(np.int64),
                              by_position["member_index"].to_numpy(np.int64)])
    method = np.concatenate([np.full(len(ids), "source_id", dtype=object),
                             np.full(len(by_position), "position", dtype=object)])
    sep = np.concatenate([np.zeros(len(ids)), by_position["match_sep"].to_numpy(float)])
    order = np.lexsort((members.index.get_indexer(m_label), spectra.index.get_indexer(s_label)))
    return pd.DataFrame({"spec_index": s_label[order], "member_index": m_label[order],
                         "match_method": method[order], "match_sep": sep[order]},
                        columns=crossmatch.PAIR_COLUMNS)
