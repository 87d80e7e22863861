"""A Gaia-RVS-like radial-velocity file (one row per star, generic column names, no survey).

Real users bring RV tables like this (a Gaia archive extract with source_id, ra,
dec, rv, rv_err) and read them through a column map that need not name a survey;
issue 9 showed such a file being taken for LAMOST LRS.  It is written from an
existing simulation's truth, so the default simulator outputs stay unchanged.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from astropy.table import Table

from ingest.simulation.output import FILES

FILE = "gaia_rvs.csv"
G_MAX = 14.0                 # Gaia DR3 RVS: radial velocities down to G_RVS ~ 14
ERR_FLOOR_KMS = 0.5          # bright-star floor of the DR3 RV errors
ERR_AT_G_MAX_KMS = 4.0       # typical DR3 RV error at the faint end
PLAIN_MAP = ('[spectra]\nsource_id = "source_id"\nra = "ra"\ndec = "dec"\nrv = "rv"\n'
             'rv_err = "rv_err"\n')


def rv_error(gmag: np.ndarray) -> np.ndarray:
    """Gaia-DR3-like RV error: a floor, growing by 10^(0.2 dG) towards G_MAX."""
    return np.hypot(ERR_FLOOR_KMS, ERR_AT_G_MAX_KMS * 10 ** (0.2 * (gmag - G_MAX)))


def write_gaia_rvs(sim_dir: str | Path, out: str | Path, seed: int) -> Path:
    """Write ``out`` (CSV: source_id, ra, dec, rv, rv_err) for the member-table stars of the
    simulation in ``sim_dir`` with G <= G_MAX; RVs are truth plus Gaussian noise of rv_err."""
    truth = Table.read(Path(sim_dir) / FILES["truth_stars"], memmap=True)
    stars = truth[["GaiaDR3", "in_member_table", "ra", "dec", "Gmag", "rv"]].to_pandas()
    stars = stars[stars["in_member_table"].astype(bool) & (stars["Gmag"] <= G_MAX)]
    stars = stars.drop_duplicates("GaiaDR3").sort_values("GaiaDR3")
    rng = np.random.default_rng([seed, 3])
    err = rv_error(stars["Gmag"].to_numpy(float))
    table = pd.DataFrame({"source_id": stars["GaiaDR3"].to_numpy(np.int64),
                          "ra": stars["ra"].to_numpy(float), "dec": stars["dec"].to_numpy(float),
                          "rv": stars["rv"].to_numpy(float) + rng.normal(0.0, err),
                          "rv_err": err})
    out = Path(out)
    table.to_csv(out, index=False, lineterminator="\n", float_format="%.6f")
    return out
