"""The four real-data checks of ``ocvo validate``, each run with the project's own pipeline code.

1. Hunt & Reffert (2023) members x Gaia DR3 RVs (gyrointerp cross-matches) through
   ``load.read_inputs`` / ``pipeline.catalogue_tables`` -> cluster RVs vs HUNT2023.
2. FU2022 orbits recomputed with ``ingest.pipeline.s6_galactic.orbits`` from CANTAT2020 astrometry.
3. The LAMOST LRS sample through ``readers.read_spectra`` and ``quality.spectrum_qc``.
4. Literature cross-checks among the shared cluster tables with ``ingest.pipeline.s7_products.literature``.

Every function takes the shared-data directory (../shared/data) and returns plain
tables; pass/fail criteria live in :mod:`ingest.validation.criteria`.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ingest.pipeline.s7_products import literature
from ingest.pipeline.s6_galactic import orbits
from ingest.pipeline import run as pipeline
from ingest.pipeline.s1_inputs import load
from ingest.pipeline.s1_inputs import colmap, formats, readers
from ingest.core.config import settings
from ingest.core.errors import InputError
from ingest.pipeline.s3_quality import spectrum_qc

HUNT2023 = Path("cluster_tables") / "HUNT2023.csv"
CANTAT2020 = Path("cluster_tables") / "CANTAT2020.csv"
FU2022 = Path("cluster_tables") / "FU2022.csv"
HUNT_MEMBERS = Path("members") / "hunt2023_subset" / "hunt2023_members_29nearby_prob_gt0.5.csv"
GAIA_RV_DIR = Path("members") / "gyrointerp"
GAIA_RV_GLOB = "*_x_dr3.csv"
LAMOST_DIR = Path("lamost_sample")
MEMBER_MAP = colmap.COLMAP_DIR / "hunt2023-subset.toml"
# The shipped map declares survey = "gaia-dr3": the survey is named explicitly, never
# detected from the generic rv/rv_err columns, and its [rv_offsets] entry is 0 (the
# reference scale), so no zero point (in particular not the LAMOST LRS +4.7 km/s) is added.
GAIA_RV_MAP = colmap.COLMAP_DIR / "gaia-dr3-rvs.toml"

# Fu et al. (2022) orbit setup: R0 8.21 kpc, McMillan17, circular speed 232.8 km/s,
# Solar motion (11.1, 12.24, 7.25) km/s; compared where FU2022's R_gc is 7-12 kpc.
FU_GALACTIC = {"r0_kpc": 8.21, "v_circ_kms": 232.8, "solar_motion_kms": (11.1, 12.24, 7.25)}
FU_RGC_RANGE_KPC = (7.0, 12.0)
# (name, our orbit column, FU2022 column, relative difference?)
ORBIT_QUANTITIES = (("peri", "r_peri", "Peri", True), ("apo", "r_apo", "Apo", True),
                    ("ecc", "ecc", "ecc", False), ("lz", "lz", "LZ", True))

# Literature pairs (reference, other): differences are other minus reference.
# HUNT2023 (Gaia DR3) is kept where n_RV >= 5, as its RVs from fewer stars are noisy.
HUNT_MIN_N_RV = 5
LITERATURE_TABLES = {name: Path("cluster_tables") / f"{name}.csv"
                     for name in ("HUNT2023", "FU2022", "ZHONG2020", "DIAS2021")}
LITERATURE_PAIRS = (("HUNT2023", "FU2022"), ("HUNT2023", "ZHONG2020"), ("HUNT2023", "DIAS2021"),
                    ("FU2022", "ZHONG2020"), ("FU2022", "DIAS2021"), ("ZHONG2020", "DIAS2021"))
MAD_TO_SIGMA = 1.4826


def robust_sigma(values: np.ndarray) -> float:
    """1.4826 x median absolute deviation: a scatter that a few outliers do not inflate."""
    values = np.asarray(values, float)
    if not len(values):
        return float("nan")
    return float(MAD_TO_SIGMA * np.median(np.abs(values - np.median(values))))


# ---------------------------------------------------------------- 1. cluster RVs

def gaia_rv_files(data: Path) -> list[Path]:
    """The gyrointerp Gaia DR3 cross-matches (one per cluster sample), sorted."""
    return sorted((data / GAIA_RV_DIR).glob(GAIA_RV_GLOB))


def hunt_gaia_cluster_rvs(data: Path, config: dict,
                          spectra: list[tuple[Path, Path | None]] | None = None,
                          colmap: Path = MEMBER_MAP) -> dict[str, pd.DataFrame]:
    """Cluster, member and spectrum tables of the pipeline on Hunt members x Gaia DR3 RVs.

    By default spectra are passed as (file, GAIA_RV_MAP) pairs: the survey is explicit,
    so the result does not depend on survey detection (see GAIA_RV_MAP).  Tests pass
    other (file, map) pairs and member maps to read the same stars as a user would.
    """
    if spectra is None:
        spectra = [(path, GAIA_RV_MAP) for path in gaia_rv_files(data)]
    rejections: dict[str, int] = {}
    clusters, members, rvs = load.read_inputs(
        data / HUNT2023, data / HUNT_MEMBERS, spectra, "hunt2023", colmap, settings(config),
        rejections)
    cluster, member, spectrum = pipeline.catalogue_tables(
        clusters, members, rvs, settings(config), rejections, pipeline.StageClock(progress=False))
    return {"cluster": cluster, "member": member, "spectrum": spectrum,
            "rejections": pd.Series(rejections, dtype=int)}


def cluster_rv_comparison(cluster: pd.DataFrame) -> pd.DataFrame:
    """Per cluster: our RV vs HUNT2023's (read by the pipeline as rv_lit), diff and pull.

    The pull divides by our error and Hunt's e_RV in quadrature.
    """
    rows = cluster[np.isfinite(cluster["rv"].to_numpy(float))
                   & np.isfinite(cluster["rv_lit"].to_numpy(float))]
    diff = rows["rv"].to_numpy(float) - rows["rv_lit"].to_numpy(float)
    diff_err = np.hypot(rows["rv_err"].to_numpy(float), rows["rv_lit_err"].to_numpy(float))
    table = pd.DataFrame({
        "cluster": rows["cluster_name"].to_numpy(str), "n_flag1": rows["n_flag1"].to_numpy(int),
        "rv": rows["rv"].to_numpy(float), "rv_err": rows["rv_err"].to_numpy(float),
        "rv_hunt": rows["rv_lit"].to_numpy(float),
        "rv_hunt_err": rows["rv_lit_err"].to_numpy(float),
        "n_rv_hunt": rows["n_rv_lit"].to_numpy(float).astype(int),   # finite where RV is
        "diff": diff, "diff_err": diff_err, "pull": diff / diff_err})
    return table.sort_values("cluster", ignore_index=True)


def star_rv_pulls(member: pd.DataFrame, cluster: pd.DataFrame) -> pd.DataFrame:
    """RV members (FLAG >= 1): (star RV - its cluster RV) / star RV error.

    Width ~1 means the Gaia DR3 errors explain the spread; wider means internal
    velocity dispersion or unresolved binaries add to it.
    """
    rv_of = dict(zip(cluster["cluster_name"], cluster["rv"].to_numpy(float)))
    stars = member[member["flag"].to_numpy() >= 1]
    centre = stars["cluster_name"].map(rv_of).to_numpy(float)
    pull = (stars["rv"].to_numpy(float) - centre) / stars["rv_err"].to_numpy(float)
    return pd.DataFrame({"cluster": stars["cluster_name"].to_numpy(str), "pull": pull})


# ---------------------------------------------------------------- 2. orbits

def fu_with_cantat(data: Path) -> pd.DataFrame:
    """FU2022 rows joined to CANTAT2020 astrometry, within FU's R_gc 7-12 kpc, finite ICs."""
    fu = pd.read_csv(data / FU2022)
    cantat = pd.read_csv(data / CANTAT2020)
    merged = fu.merge(cantat, on="Cluster", how="inner")
    lo, hi = FU_RGC_RANGE_KPC
    merged = merged[(merged["RGC"] >= lo) & (merged["RGC"] <= hi)]
    finite = np.all(np.isfinite(_fu_initial_conditions(merged)), axis=1)
    return merged[finite].reset_index(drop=True)


def _fu_initial_conditions(clusters: pd.DataFrame) -> np.ndarray:
    """(N, 6) ra, dec, distance (kpc), pmra, pmdec, RV: CANTAT2020 astrometry + FU2022 RVmed."""
    ics = np.column_stack([clusters[c].to_numpy(float) for c in
                           ("RA_ICRS", "DE_ICRS", "DistPc", "pmRA*", "pmDE", "RVmed")])
    ics[:, 2] /= 1000.0
    return ics


def fu2022_orbits(data: Path, config: dict, progress: bool = False) -> pd.DataFrame:
    """Per cluster: our orbit parameters (Fu's setup) next to FU2022's and their difference."""
    clusters = fu_with_cantat(data)
    setup = orbits.OrbitSetup.from_config(replace(settings(config).galactic, **FU_GALACTIC))
    result = orbits.orbit_parameters(_fu_initial_conditions(clusters), setup, progress)
    table = pd.DataFrame({"cluster": clusters["Cluster"].str.replace("_", " ").to_numpy(str)})
    for name, ours, theirs, relative in ORBIT_QUANTITIES:
        table[f"{name}_ours"] = result[ours]
        table[f"{name}_fu"] = clusters[theirs].to_numpy(float)
        table[f"{name}_diff"] = (result[ours] / table[f"{name}_fu"] - 1.0 if relative
                                 else result[ours] - table[f"{name}_fu"])
    return table


def orbit_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per quantity: N, signed median, median |d| and 90th percentile |d| of ours vs FU2022."""
    rows = []
    for name, _, _, relative in ORBIT_QUANTITIES:
        diff = table[f"{name}_diff"].to_numpy(float)
        diff = diff[np.isfinite(diff)]
        rows.append({"quantity": name, "relative": relative, "n": len(diff),
                     "median": float(np.median(diff)),
                     "median_abs": float(np.median(np.abs(diff))),
                     "p90_abs": float(np.percentile(np.abs(diff), 90))})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- 3. LAMOST LRS sample

def lamost_lrs_sample(data: Path, config: dict) -> pd.DataFrame:
    """Per LAMOST sample file: rows in the file, rows read, and rows rejected and why.

    A file the reader refuses (e.g. no rv_err column) counts all its rows as
    rejected with the reader's message as the reason.
    """
    rows = []
    for path in sorted((data / LAMOST_DIR).glob("*.csv")):
        n_file = len(formats.read_table(path))
        try:
            frame, rejections = readers.read_spectra(path, survey="lamost-lrs")
        except InputError as exc:
            rows.append({"file": path.name, "rows_in_file": n_file, "rows_read": 0,
                         "qc_ok": 0, "refused": str(exc), "rejections": {}})
            continue
        checked, counts = spectrum_qc(frame, settings(config).spectra)
        reasons = {**rejections, **{k: v for k, v in counts.items() if k != "qc_ok"}}
        rows.append({"file": path.name, "rows_in_file": n_file, "rows_read": len(frame),
                     "qc_ok": int((checked["qc"] == "ok").sum()), "refused": "",
                     "rejections": {k: int(v) for k, v in sorted(reasons.items()) if v}})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- 4. literature

def _reference_table(data: Path, name: str) -> pd.DataFrame:
    """A cluster table as literature.compare's reference: cluster_name, all_names, values."""
    path = data / LITERATURE_TABLES[name]
    if name == "HUNT2023":
        hunt = readers.read_clusters(path, "hunt2023")
        hunt = hunt[hunt["n_rv_lit"] >= HUNT_MIN_N_RV]
        return pd.DataFrame({"cluster_name": hunt["cluster"].to_numpy(object),
                             "all_names": hunt["all_names"].to_numpy(object),
                             "rv": hunt["rv_lit"].to_numpy(float),
                             "rv_err": hunt["rv_lit_err"].to_numpy(float)})
    return literature.read_literature(path).rename(columns={"name": "cluster_name"})


def literature_crosschecks(data: Path, config: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-cluster differences, per pair and quantity: N, median, robust sigma, mean, std)."""
    parts = []
    for reference, other in LITERATURE_PAIRS:
        comparison, _ = literature.compare(
            _reference_table(data, reference),
            [(other, data / LITERATURE_TABLES[other], None)], settings(config).literature)
        parts.append(comparison.assign(reference=reference))
    comparison = pd.concat(parts, ignore_index=True)
    comparison = comparison[comparison["quantity"].isin(["rv", "fe_h"])].reset_index(drop=True)
    rows = []
    for (reference, other, quantity), group in comparison.groupby(
            ["reference", "catalogue", "quantity"], sort=False):
        diff = group["diff"].to_numpy(float)
        rows.append({"reference": reference, "other": other, "quantity": quantity,
                     "n": len(diff), "median": float(np.median(diff)),
                     "robust_sigma": robust_sigma(diff), "mean": float(diff.mean()),
                     "std": float(np.std(diff, ddof=1)) if len(diff) > 1 else float("nan")})
    return comparison, pd.DataFrame(rows)
