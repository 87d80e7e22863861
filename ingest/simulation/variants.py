"""Member-list variants: the simulated Hunt & Reffert member table in other real shapes.

Real membership lists come without Gaia ids (APOGEE-based and pre-Gaia lists: cluster,
position, probability and the list's own star id) or with the ids and epoch of an
older Gaia release (Cantat-Gaudin 2020: DR2 ids, positions at 2015.5).  These files are
derived from the default member table after it is written, so the default products
stay byte-identical; the spectra keep their (DR3-like) Gaia ids.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.time import Time

from ingest.simulation.stars import SOURCE_ID_BASE

MEMBER_VARIANTS = ("hunt2024", "positional", "cg20")
FILES = {
    "positional": {"members": "members_positional.fits", "colmap": "members_positional.toml"},
    "cg20": {"clusters": "cg20_clusters.csv", "members": "cg20_members.csv"},
}
OWN_ID_COLUMN = "APOGEE_ID"
# Simulated DR2 ids live in their own range, so no DR2 id equals any DR3 id: the worst
# case of a release change (in the real DR2 -> DR3 change most ids were kept).
DR2_ID_BASE = 2 * SOURCE_ID_BASE
DR3_EPOCH, DR2_EPOCH = 2016.0, 2015.5
POSITIONAL_MAP = f"""# Column map of the simulated positional-only member list: no Gaia id column;
# each member keeps its own id (APOGEE-style) as the member key.
[members]
member_id = "{OWN_ID_COLUMN}"
"""
CG20_CLUSTER_COLUMNS = {"Name": "Cluster", "RA_ICRS": "RA_ICRS", "DE_ICRS": "DE_ICRS",
                        "GLON": "GLON", "GLAT": "GLAT", "r50": "r50", "N": "nbstars07",
                        "pmRA": "pmRA*", "pmDE": "pmDE", "Plx": "plx", "dist50": "DistPc",
                        "logAge50": "AgeNN", "AV50": "AVNN"}
CG20_MEMBER_COLUMNS = {"Name": "Cluster", "Prob": "proba", "pmRA": "pmRA", "e_pmRA": "e_pmRA",
                       "pmDE": "pmDE", "e_pmDE": "e_pmDE", "Plx": "plx", "e_Plx": "e_plx",
                       "Gmag": "Gmag", "BP-RP": "BP-RP"}


def _own_ids(members: Table) -> np.ndarray:
    """'S<cluster id>-<running number>': unique, stable ids unrelated to Gaia."""
    cluster = np.asarray(members["ID"], np.int64)
    running = np.arange(len(members))
    return np.char.add(np.char.add("S", np.char.zfill(cluster.astype(str), 5)),
                       np.char.add("-", np.char.zfill(running.astype(str), 7)))


def positional_members(members: Table) -> Table:
    """The member table without its Gaia id column, with an own-id column instead."""
    table = members.copy()
    table.remove_column("GaiaDR3")
    table.add_column(_own_ids(members), name=OWN_ID_COLUMN, index=1)
    return table


def dr2_positions(members: Table) -> tuple[np.ndarray, np.ndarray]:
    """Member positions moved from the DR3 epoch (2016.0) back to DR2's (2015.5)."""
    coords = SkyCoord(ra=np.asarray(members["RA_ICRS"]) * u.deg,
                      dec=np.asarray(members["DE_ICRS"]) * u.deg,
                      pm_ra_cosdec=np.asarray(members["pmRA"], float) * u.mas / u.yr,
                      pm_dec=np.asarray(members["pmDE"], float) * u.mas / u.yr,
                      obstime=Time(DR3_EPOCH, format="jyear"))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*distance overridden.*")
        moved = coords.apply_space_motion(new_obstime=Time(DR2_EPOCH, format="jyear"))
    return moved.ra.deg, moved.dec.deg


def cg20_members(members: Table) -> Table:
    """The member table as Cantat-Gaudin 2020 lists it: DR2 ids and epoch-2015.5 positions."""
    ra, dec = dr2_positions(members)
    table = Table({"Cluster": members["Name"],
                   "GaiaDR2": np.asarray(members["GaiaDR3"], np.int64) - SOURCE_ID_BASE
                   + DR2_ID_BASE,
                   "RA_ICRS": ra, "DE_ICRS": dec})
    for old, new in CG20_MEMBER_COLUMNS.items():
        if new != "Cluster":
            table[new] = members[old]
    return table


def cg20_clusters(clusters: Table) -> Table:
    """The cluster table under Cantat-Gaudin 2020 column names."""
    return Table({new: clusters[old] for old, new in CG20_CLUSTER_COLUMNS.items()})


def write_variant(directory: Path, variant: str, files: dict[str, str]) -> dict[str, str]:
    """Write the files of ``variant`` ("positional" or "cg20") next to the default products;
    return their names."""
    members = Table.read(directory / files["members"], character_as_bytes=False)
    names = FILES[variant]
    if variant == "positional":
        positional_members(members).write(directory / names["members"])
        (directory / names["colmap"]).write_text(POSITIONAL_MAP)
    else:
        clusters = Table.read(directory / files["clusters"], character_as_bytes=False)
        cg20_clusters(clusters).write(directory / names["clusters"], format="ascii.csv")
        cg20_members(members).write(directory / names["members"], format="ascii.csv")
    return dict(names)
