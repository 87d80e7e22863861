"""Thesis Tables 4-8..4-11: names, units, row selection and values from the published tables."""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from ingest.core import schema
from ingest.cli.commands import export_paper
from ingest.core.errors import InputError
from ingest.pipeline.s8_outputs.paper import FILES, export
from ingest.pipeline.s8_outputs.writers import write_table

THESIS_4_8 = ["Cluster", "Ra", "Dec", "GLON", "GLAT", "PMRa", "s_PMRa", "PMDe", "s_PMDe", "PLX",
              "s_PLX", "RV_MRS", "RV_MRS_Std", "RV_MRS_Num", "RV_MRS_flag", "Zmax", "Rgc",
              "Dist50", "LogAge50"]


def frame_for(table: str, n: int, **values) -> pd.DataFrame:
    """A frame with every column of ``table``: counts 0, text 'x', floats NaN, then ``values``."""
    frame = {}
    for column in schema.table(table).columns:
        if column.is_integer:
            frame[column.name] = np.zeros(n, int)
        elif column.type == "text":
            frame[column.name] = ["x"] * n
        else:
            frame[column.name] = np.full(n, 0.0 if column.required else np.nan)
    frame.update(values)
    return pd.DataFrame(frame)


@pytest.fixture
def ingest_dir(tmp_path):
    cluster = frame_for("cluster", 3, cluster_name=["A 1", "B 2", "C 3"],
                        rv=[5.0, np.nan, -3.0], rv_std=[1.0, np.nan, 2.0], n_flag1=[4, 0, 1],
                        rv_flag=[2, -1, 3], n_flag12=[2, 0, 0], fe_h=[-0.1, np.nan, np.nan],
                        fe_h_std=[0.05, np.nan, np.nan], fe_h_num=[2, 0, 0],
                        z_max=[0.1, 0.2, 0.3], r_gc=[8.5, 9.0, 10.0], dist50=[500.0, 1e3, 2e3])
    member = frame_for("member", 3, source_id=[11, 12, 13],
                       member_key=["Gaia DR3 11", "Gaia DR3 12", "Gaia DR3 13"], cluster_name=["A 1", "A 1", "C 3"],
                       uid=["u11", "", "u13"], gp_id=[7, -1, 9], rv=[5.1, np.nan, -3.0],
                       rv_nobs=[2, 0, 1], flag=[12, 0, 1], teff=[5800.0, np.nan, 6000.0],
                       teff_std=[30.0, np.nan, np.nan], teff_nobs=[2, 0, 1],
                       vsini=[10.0, np.nan, np.nan])
    spectrum = frame_for("spectrum", 4, obsid=[1, 2, 3, 4], source_id=[11, 11, 11, 13],
                         member_key=["Gaia DR3 11"] * 3 + ["Gaia DR3 13"],
                         cluster_name=["A 1"] * 3 + ["C 3"], band=["B", "R", "R", ""],
                         qc=["ok", "ok", "ok", "ok"])
    for name, frame in (("cluster", cluster), ("member", member), ("spectrum", spectrum)):
        write_table(frame, name, tmp_path / f"{name}.fits")
    return tmp_path


def test_tables_have_thesis_names_and_selected_rows(ingest_dir, tmp_path):
    rows = export(ingest_dir, tmp_path / "paper")
    assert rows == {"table4-8_cluster_rv.fits": 2, "table4-9_member_rv.fits": 2,
                    "table4-10_cluster_abundances.fits": 1, "table4-11_member_abundances.fits": 1}
    t48 = Table.read(tmp_path / "paper" / "table4-8_cluster_rv.fits")
    assert t48.colnames == THESIS_4_8
    assert list(t48["Cluster"]) == ["A 1", "C 3"]
    assert list(t48["RV_MRS_flag"]) == ["few_stars", "single_star"]
    assert str(t48["RV_MRS"].unit) == "km / s" and str(t48["Dist50"].unit) == "pc"
    t49 = Table.read(tmp_path / "paper" / "table4-9_member_rv.fits")
    assert t49["Band"][0] == "R"                    # most frequent accepted band of star 11
    assert t49["Band"][1] is np.ma.masked or t49["Band"][1] == ""   # no band: empty
    assert t49["GP_id"].tolist() == [7, 9]
    t410 = Table.read(tmp_path / "paper" / "table4-10_cluster_abundances.fits")
    assert t410.colnames[:6] == ["Cluster", "Ra", "Dec", "M_H", "M_H_Std", "M_H_Num"]
    assert t410.colnames[-3:] == ["Cu_Fe", "Cu_Fe_Std", "Cu_Fe_Num"]
    assert t410["Fe_H"][0] == pytest.approx(-0.1) and t410["Fe_H_Num"][0] == 2
    t411 = Table.read(tmp_path / "paper" / "table4-11_member_abundances.fits")
    assert t411.colnames[6:9] == ["Teff", "Teff_Std", "Teff_Nobs"]
    assert t411.colnames[-3:] == ["Vsini_Lasp", "Vsini_Lasp_Std", "Vsini_Lasp_Nobs"]
    assert t411["GaiaDR3"].tolist() == [11] and t411["Vsini_Lasp"][0] == 10.0


def test_every_thesis_column_names_a_published_column():
    derived = {"rv_flag_text", "band"}
    for table_name, spec in FILES.values():
        published = set(schema.table(table_name).names) | derived
        assert {ours for _, ours, _ in spec} <= published


def command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    export_paper.add_arguments(parser)
    return export_paper.run(parser.parse_args(argv))


def test_export_paper_command_writes_four_files(ingest_dir, tmp_path, capsys):
    assert command([str(ingest_dir), "--out", str(tmp_path / "p")]) == 0
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == sorted(FILES)
    assert "table4-8_cluster_rv.fits: 2 rows" in capsys.readouterr().out


def test_export_paper_command_rejects_a_non_ingest_directory(tmp_path):
    with pytest.raises(InputError, match="no cluster.fits"):
        command([str(tmp_path / "empty")])


def test_demo_export_matches_the_published_tables(demo_ingest, tmp_path):
    from ingest.pipeline.s8_outputs.writers import read_table

    rows = export(demo_ingest, tmp_path)
    cluster = read_table(demo_ingest / "cluster.fits")
    member = read_table(demo_ingest / "member.fits")
    assert rows["table4-8_cluster_rv.fits"] == np.isfinite(cluster["rv"]).sum() > 100
    assert rows["table4-11_member_abundances.fits"] == (member["flag"] == 12).sum() > 1000
    t48 = Table.read(tmp_path / "table4-8_cluster_rv.fits")
    first = cluster[np.isfinite(cluster["rv"])].iloc[0]
    assert t48["Cluster"][0] == first["cluster_name"]
    assert t48["RV_MRS"][0] == first["rv"] and t48["RV_MRS_Num"][0] == first["n_flag1"]
    assert t48["Zmax"][0] == first["z_max"] and t48["Rgc"][0] == first["r_gc"]
