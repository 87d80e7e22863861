"""Real check (../shared/data): FU2022 orbits and the LAMOST LRS RV zero point.

Orbits from CANTAT2020 astrometry (RA/Dec, pm, DistPc) plus FU2022's RVmed in
Fu et al. (2022)'s setup (R0 8.21 kpc, McMillan17, Solar motion 11.1/12.24/7.25
km/s, circular speed 232.8 km/s) must reproduce FU2022's Peri, Apo and ecc
(computed by Fu with GALPOT) for the clusters with FU2022 R_gc 7-12 kpc.
Measured (galpy 1.12.1; signed median / median |d| / 90th percentile |d|):
Peri +1.6% / 2.2% / 11%, Apo -1.2% / 1.8% / 7.3%, ecc -0.014 / 0.020 / 0.089
over 331 clusters.  The offsets are systematic (same initial velocities as
FU2022's U/V/W to 0.01 km/s), i.e. the two McMillan17 implementations differ.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ingest import config, literature, orbits

pytestmark = pytest.mark.realdata


def _fu_with_cantat(shared_data) -> pd.DataFrame:
    tables = shared_data / "cluster_tables"
    fu = pd.read_csv(tables / "FU2022.csv")
    cantat = pd.read_csv(tables / "CANTAT2020.csv")
    merged = fu.merge(cantat, on="Cluster", how="inner")
    return merged[(merged.RGC >= 7) & (merged.RGC <= 12)]


@pytest.mark.slow
def test_orbits_reproduce_fu2022_peri_apo_ecc(shared_data):
    clusters = _fu_with_cantat(shared_data)
    galactic = dict(config.defaults()["galactic"], r0_kpc=8.21, v_circ_kms=232.8,
                    solar_motion_kms=[11.1, 12.24, 7.25])
    setup = orbits.OrbitSetup.from_config(galactic)
    ics = np.column_stack([clusters[c].to_numpy(float) for c in
                           ("RA_ICRS", "DE_ICRS", "DistPc", "pmRA*", "pmDE", "RVmed")])
    ics[:, 2] /= 1000.0
    finite = np.all(np.isfinite(ics), axis=1)
    assert finite.sum() > 300
    result = orbits.integrate(ics[finite], setup)
    fu = clusters[finite]
    relative = {name: result[ours] / fu[theirs].to_numpy() - 1.0
                for name, ours, theirs in (("peri", "r_peri", "Peri"), ("apo", "r_apo", "Apo"))}
    d_ecc = result["ecc"] - fu["ecc"].to_numpy()
    report = {name: (np.median(d), np.median(np.abs(d)), np.percentile(np.abs(d), 90))
              for name, d in (*relative.items(), ("ecc", d_ecc))}
    print("signed median, median |d|, 90th percentile |d|:", report)
    assert abs(report["peri"][0]) <= 0.03
    assert abs(report["apo"][0]) <= 0.03
    assert abs(report["ecc"][0]) <= 0.02
    # the bulk agrees too, not only on average
    assert report["peri"][1] <= 0.03 and report["apo"][1] <= 0.03
    assert report["ecc"][1] <= 0.025


def test_fu2022_minus_hunt2023_rv_is_the_lamost_lrs_zero_point(shared_data):
    """LAMOST LRS sits ~4.75 km/s below Gaia DR3 (clusters with Hunt n_RV >= 5)."""
    tables = shared_data / "cluster_tables"
    hunt = pd.read_csv(tables / "HUNT2023.csv")
    hunt = hunt[hunt.n_RV >= 5].rename(columns={"Name": "cluster", "AllNames": "all_names",
                                               "RV": "rv", "e_RV": "rv_err"})
    comparison, summary = literature.compare(
        hunt, [("FU2022", tables / "FU2022.csv", None)], config.defaults())
    rv = summary.set_index("quantity").loc["rv"]
    print(f"FU2022 - HUNT2023 RV: median {rv.median_diff:.2f}, mean {rv.mean_diff:.2f} "
          f"+- {rv.mean_diff_err:.2f}, std {rv.std_diff:.2f} km/s, N = {rv.n}")
    assert 150 <= rv.n <= 386
    assert rv.median_diff == pytest.approx(-4.75, abs=0.5)
