"""Export of the thesis catalogues (Tables 4-8..4-11) with the thesis column names.

Readers of the thesis (and anyone comparing with it) expect its four
catalogues with its own column names; they are views of the published
cluster and member tables, so they are derived from an ingest output
directory rather than computed again.

Row selection: Table 4-8 clusters with an RV; 4-9 member stars with an RV;
4-10 clusters with at least one FLAG=12 star; 4-11 FLAG=12 stars (those used
for the cluster abundances).  RV_MRS_flag is written as text (the thesis
column is a string): fit_ok, fit_failed, few_stars, single_star.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from astropy.table import MaskedColumn, Table

from ingest.core.schema import table as schema_table
from ingest.core.vocabulary import FLAG_RELIABLE, RV_FLAG_TEXT, XFE
from ingest.pipeline.s8_outputs.writers import read_table

# (thesis name, column of our table, description); units are the published columns' (rd.xml)
Spec = tuple[str, str, str]

CLUSTER_ID: list[Spec] = [
    ("Cluster", "cluster_name", "Cluster name"),
    ("Ra", "ra", "Mean right ascension of members from the membership catalogue"),
    ("Dec", "dec", "Mean declination of members from the membership catalogue"),
]
TABLE_4_8: list[Spec] = CLUSTER_ID + [
    ("GLON", "glon", "Galactic longitude"),
    ("GLAT", "glat", "Galactic latitude"),
    ("PMRa", "pmra", "Mean proper motion along RA of members"),
    ("s_PMRa", "s_pmra", "Standard deviation of PMRa of members"),
    ("PMDe", "pmdec", "Mean proper motion along Dec of members"),
    ("s_PMDe", "s_pmdec", "Standard deviation of PMDe of members"),
    ("PLX", "plx", "Mean parallax"),
    ("s_PLX", "s_plx", "Standard deviation of parallax"),
    ("RV_MRS", "rv", "Cluster radial velocity (MC median of FLAG=1 stars)"),
    ("RV_MRS_Std", "rv_std", "Standard deviation of RV_MRS"),
    ("RV_MRS_Num", "n_flag1", "Number of stars used for RV_MRS"),
    ("RV_MRS_flag", "rv_flag_text", "Gaussian fit of the RV distribution"),
    ("Zmax", "z_max", "Maximum height above the Galactic plane on the orbit"),
    ("Rgc", "r_gc", "Galactocentric distance"),
    ("Dist50", "dist50", "50th percentile distance from the membership catalogue"),
    ("LogAge50", "logage50", "50th percentile of log10(age/yr)"),
]
STAR_ID: list[Spec] = [
    ("Cluster", "cluster_name", "Cluster name"),
    ("Uid", "uid", "LAMOST-MRS unique source identifier"),
    ("GP_id", "gp_id", "LAMOST-MRS group identifier"),
    ("GaiaDR3", "source_id", "Gaia DR3 source ID from the membership catalogue"),
    ("Ra_obs", "ra_obs", "Fibre right ascension (mean over spectra)"),
    ("Dec_obs", "dec_obs", "Fibre declination (mean over spectra)"),
]
TABLE_4_9: list[Spec] = STAR_ID + [
    ("PMRa", "pmra", "Proper motion along RA"),
    ("PMDe", "pmdec", "Proper motion along Dec"),
    ("PLX", "plx", "Parallax"),
    ("Gmag", "gmag", "G-band magnitude"),
    ("BP-RP", "bp_rp", "BP-RP colour"),
    ("Band", "band", "MRS arm(s) of the RVs (most frequent over the spectra)"),
    ("RV_MRS", "rv", "Error-weighted mean radial velocity of the star"),
    ("RV_MRS_Err", "rv_err", "Error of RV_MRS"),
    ("RV_MRS_Nobs", "rv_nobs", "Number of observations for RV_MRS"),
]
THESIS_ABUNDANCE = [("M_H", "m_h", "[M/H]"), ("a_M", "alpha_m", "[alpha/M]"),
                    ("Fe_H", "fe_h", "[Fe/H]")] + [
    (x.split("_")[0].capitalize() + "_Fe", x, f"[{x.split('_')[0].capitalize()}/Fe]")
    for x in XFE]
TABLE_4_10: list[Spec] = CLUSTER_ID + [
    spec for thesis, ours, label in THESIS_ABUNDANCE for spec in (
        (thesis, ours, f"Cluster {label} (MC median of FLAG=12 stars)"),
        (f"{thesis}_Std", f"{ours}_std", f"Standard deviation of {label}"),
        (f"{thesis}_Num", f"{ours}_num", f"Number of stars used for {label}"))]
STAR_PARAMETERS = [("Teff", "teff", "Teff"), ("Logg", "logg", "log g")] + [
    (thesis, ours, label) for thesis, ours, label in THESIS_ABUNDANCE] + [
    ("Vsini_Lasp", "vsini", "v sin i")]
TABLE_4_11: list[Spec] = STAR_ID + [
    spec for thesis, ours, label in STAR_PARAMETERS for spec in (
        (thesis, ours, f"Error-weighted mean {label} of the star"),
        (f"{thesis}_Std", f"{ours}_std", f"Standard deviation of {label} over spectra"),
        (f"{thesis}_Nobs", f"{ours}_nobs", f"Number of observations for {label}"))]

FILES = {"table4-8_cluster_rv.fits": ("cluster", TABLE_4_8),
         "table4-9_member_rv.fits": ("member", TABLE_4_9),
         "table4-10_cluster_abundances.fits": ("cluster", TABLE_4_10),
         "table4-11_member_abundances.fits": ("member", TABLE_4_11)}


def thesis_table(frame: pd.DataFrame, spec: list[Spec], source: str) -> Table:
    """An astropy Table with the thesis names and descriptions and the units of the
    published ``source`` table's columns (-1 ids masked)."""
    units = {column.name: column.unit for column in schema_table(source).columns}
    table = Table()
    for thesis, ours, description in spec:
        unit = units.get(ours, "")
        values = frame[ours].to_numpy()
        if values.dtype == object:
            values = values.astype(str)
        if ours == "gp_id":
            values = MaskedColumn(values, mask=values == -1)
        table[thesis] = values
        table[thesis].unit = unit or None
        table[thesis].description = description
    return table


def most_frequent_band(spectrum: pd.DataFrame) -> pd.Series:
    """Most frequent MRS band per member_key among accepted spectra (ties: alphabetical);
    keyed on member_key because positional-only members have no source_id."""
    ok = spectrum[(spectrum["qc"] == "ok") & (spectrum["band"] != "")]
    counts = ok.groupby(["member_key", "band"]).size().reset_index(name="n")
    best = counts.sort_values(["member_key", "n", "band"], ascending=[True, False, True])
    return best.drop_duplicates("member_key").set_index("member_key")["band"]


def selections(directory: Path) -> dict[str, pd.DataFrame]:
    """The cluster and member rows of each thesis table, with derived columns added."""
    cluster = read_table(directory / "cluster.fits")
    member = read_table(directory / "member.fits")
    band = most_frequent_band(read_table(directory / "spectrum.fits"))
    cluster["rv_flag_text"] = cluster["rv_flag"].map(RV_FLAG_TEXT)
    member["band"] = member["member_key"].map(band).fillna("").to_numpy(object)
    return {"table4-8_cluster_rv.fits": cluster[np.isfinite(cluster["rv"])],
            "table4-9_member_rv.fits": member[member["rv_nobs"] > 0],
            "table4-10_cluster_abundances.fits": cluster[cluster["n_flag12"] > 0],
            "table4-11_member_abundances.fits": member[member["flag"] == FLAG_RELIABLE]}


def export(directory: str | Path, out: str | Path | None = None) -> dict[str, int]:
    """Write the four thesis tables from ingest output ``directory`` into ``out``; rows per file."""
    directory = Path(directory)
    out = Path(out) if out is not None else directory / "paper"
    out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for name, frame in selections(directory).items():
        source, spec = FILES[name]
        table = thesis_table(frame, spec, source)
        table.write(out / name, format="fits", overwrite=True)
        rows[name] = len(table)
    return rows
