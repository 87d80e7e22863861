"""rd.xml is the single source of column metadata: check it is complete and read identically."""
from __future__ import annotations

import pytest
from astropy import units as u
from astropy.io.votable.ucd import check_ucd

from ingest.core import schema

ABUNDANCES = ["fe_h", "m_h", "alpha_m"] + [f"{el}_fe" for el in
              ("c", "n", "o", "mg", "al", "si", "s", "ca", "ti", "cr", "ni", "cu")]

ALL_COLUMNS = [(t.name, c) for t in schema.load_tables().values() for c in t.columns]


def test_ingest_reads_the_rd_exactly_as_dachs_does(dachs_rd_columns):
    ours = {t.name: [[c.name, c.type, c.unit, c.ucd, c.description] for c in t.columns]
            for t in schema.load_tables().values()}
    assert ours == dachs_rd_columns


@pytest.mark.parametrize("table,column", ALL_COLUMNS, ids=lambda x: getattr(x, "name", x))
def test_every_column_has_description_valid_ucd_and_vounit(table, column):
    assert column.description, f"{table}.{column.name} has no description"
    assert column.tablehead, f"{table}.{column.name} has no tablehead"
    check_ucd(column.ucd, check_controlled_vocabulary=True)
    if column.unit:
        u.Unit(column.unit, format="vounit")


def test_repetitive_blocks_are_complete():
    cluster = set(schema.table("cluster").names)
    for par in ABUNDANCES:
        assert {par, f"{par}_mean", f"{par}_std", f"{par}_err", f"{par}_num"} <= cluster
    member = set(schema.table("member").names)
    for par in ABUNDANCES + ["rv", "teff", "logg", "vsini"]:
        assert {par, f"{par}_err", f"{par}_std", f"{par}_nobs"} <= member


def test_primary_keys_are_declared_columns():
    for table in schema.load_tables().values():
        assert table.primary and set(table.primary) <= set(table.names), table.name


def test_unknown_macro_is_an_error(tmp_path):
    rd = tmp_path / "rd.xml"
    rd.write_text('<resource schema="x"><table id="t"><LOOP><csvItems>a,bb\n1,2'
                  '</csvItems><events><column name="\\zz" type="real"/></events>'
                  '</LOOP></table></resource>')
    with pytest.raises(ValueError, match="unknown macro"):
        schema.load_tables(rd)


def test_data_model_doc_is_generated_from_the_rd():
    doc = schema.RD_PATH.parent / "docs" / "data-model.md"
    assert doc.read_text() == schema.data_model_markdown(), \
        "docs/data-model.md is stale: python -m ingest.schema > docs/data-model.md"


@pytest.mark.parametrize("table_name", ["cluster", "member"])
def test_cone_search_shows_errors_with_their_values(table_name):
    """At every VERB level a cone search that shows a value shows its error too
    (issue 11: the cluster cone's default had [X/Fe] without their errors)."""
    columns = {c.name: c for c in schema.load_tables()[table_name].columns}
    hidden = [f"{name} (verbLevel {c.verb_level}) without {name}_err "
              f"({columns[name + '_err'].verb_level})"
              for name, c in columns.items()
              if name + "_err" in columns and columns[name + "_err"].verb_level > c.verb_level]
    assert hidden == []


def test_gradient_slope_descriptions_agree_with_their_units():
    """Slopes are dex per unit of the fitted variable (kpc for r_gc, 10+3 kpc km/s for L_z,
    ...): the unit differs between rows, so the columns carry none and the descriptions
    point at variable_unit instead of claiming one unit."""
    columns = {c.name: c for c in schema.load_tables()["gradient"].columns}
    for name in ("slope", "slope_err", "slope_outer", "slope_outer_err", "quad", "quad_err"):
        assert not columns[name].unit, name
    for name in ("slope", "quad"):
        assert "variable_unit" in columns[name].description
        assert "dex/kpc" not in columns[name].description
