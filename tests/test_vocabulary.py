"""rd.xml states the published vocabulary for DaCHS; ingest.core.vocabulary states it for
the code.  rd.xml cannot import Python, so these tests make the two one fact: they read
rd.xml as XML (not through the code under test) and compare."""
from __future__ import annotations

import ast
import re
import textwrap
import xml.etree.ElementTree as ET

import pytest

from ingest.core import config, schema, vocabulary

RD = ET.parse(schema.RD_PATH).getroot()


def _descriptions() -> list[tuple[str, str]]:
    """(where, text) of every table and column description, as published."""
    found = []
    for table in schema.load_tables().values():
        found.append((table.name, table.description))
        found += [(f"{table.name}.{c.name}", c.description) for c in table.columns]
    return found


def test_rd_tables_are_the_vocabulary_tables_in_order():
    assert tuple(schema.load_tables()) == vocabulary.TABLES
    imports = [loop for loop in RD.iter("LOOP") if loop.find("events/data") is not None]
    assert len(imports) == 1, "rd.xml: expected one LOOP of import data elements"
    assert tuple(imports[0].get("listItems").split()) == vocabulary.TABLES


def test_rd_abundance_rows_are_the_vocabulary_abundances():
    rows = RD.find("macDef[@name='abundanceRows']").text.strip().splitlines()
    assert tuple(row.split(",")[0].strip() for row in rows) == vocabulary.ABUNDANCES
    for table, suffixes in (("cluster", ("", "_mean", "_std", "_err", "_num")),
                            ("member", ("", "_err", "_std", "_nobs"))):
        names = schema.table(table).names
        expected = [par + suffix for par in vocabulary.ABUNDANCES for suffix in suffixes]
        assert [n for n in names if n in expected] == expected, table


def test_datalink_figure_list_is_the_vocabulary_list():
    stream = RD.find("STREAM[@id='figureLinks']")
    code = textwrap.dedent(stream.find("metaMaker/setup/code").text)
    assignment = next(node for node in ast.parse(code).body
                      if isinstance(node, ast.Assign) and node.targets[0].id == "FIGURES")
    assert tuple(ast.literal_eval(assignment.value)) == vocabulary.CLUSTER_FIGURES


def test_flag_descriptions_explain_every_code():
    flag = schema.table("member").column("flag").description
    for code in vocabulary.MEMBER_FLAGS:
        assert re.search(rf"(^|[:,] ){code} ", flag), f"member.flag does not explain {code}"
    rv_flag = schema.table("cluster").column("rv_flag").description
    codes = [c for c in vocabulary.RV_FLAG_TEXT if c != vocabulary.RV_FLAG_NONE]
    for code in codes:
        assert re.search(rf"[:,] {code} ", rv_flag), f"cluster.rv_flag does not explain {code}"


@pytest.mark.parametrize("where,text", _descriptions(), ids=lambda x: x[:40])
def test_descriptions_state_no_threshold_as_a_number(where, text):
    """Thresholds are configurable: a description naming one as a number goes stale the
    moment a user changes the config (the manifest carries the values used)."""
    assert not re.search(r"(<=?|>=?)\s*\d", text), f"{where}: compares with a literal number"
    assert not re.search(r"\d+(\.\d+)?[ -]sigma", text), f"{where}: states a sigma cut"
    assert not re.search(r"default \d", text), f"{where}: states a default value"


def test_config_keys_named_in_descriptions_exist():
    defaults = config.defaults()
    named = {(section, key) for _, text in _descriptions()
             for section, key in re.findall(r"\b([a-z_]+)\.([a-z_0-9]+)\b", text)
             if section in defaults and isinstance(defaults[section], dict)}
    assert named, "no description names a configuration key"
    missing = sorted(f"{s}.{k}" for s, k in named if k not in defaults[s])
    assert missing == []
