"""Published column metadata, read from the DaCHS resource descriptor.

rd.xml is the single source of truth for every published column (name,
type, unit, UCD, description).  The ingest writers and the publish
validator read it through this module, so the FITS files and the database
tables can never disagree.  DaCHS ``LOOP`` elements with ``csvItems`` (used
for the repetitive abundance and orbit columns) are expanded here with the
same macro rules DaCHS applies (``\\name`` and the ``\\+`` glue); their
``csvItems`` may use the RD's own ``macDef`` macros (the abundance rows that
the cluster and the member table share).
"""
from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ingest.core.paths import RD_PATH

_MACRO = re.compile(r"\\([A-Za-z_][A-Za-z_0-9]+)")
# Per-publication macros (the SIMULATED marking, ingest/publication/site.py):
# empty outside a served instance.
_PUBLICATION_MACROS = {"simulatedNote": "", "simulatedTag": ""}

# DaCHS column types -> numpy dtypes used in the FITS outputs.
_NUMPY_TYPES = {
    "double precision": np.float64,
    "real": np.float32,
    "bigint": np.int64,
    "integer": np.int32,
    "smallint": np.int16,
    "text": object,
}


@dataclass(frozen=True)
class Column:
    """One published column as declared in rd.xml."""

    name: str
    type: str
    unit: str
    ucd: str
    description: str
    tablehead: str
    verb_level: int
    required: bool
    null_literal: int | None

    @property
    def dtype(self):
        return _NUMPY_TYPES[self.type]

    @property
    def is_integer(self) -> bool:
        return self.type in ("bigint", "integer", "smallint")


@dataclass(frozen=True)
class Table:
    """A published table: its columns in declaration order and its keys."""

    name: str
    description: str
    primary: tuple[str, ...]
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"table {self.name} has no column {name!r}")


def _expand(text: str, macros: dict[str, str]) -> str:
    def substitute(match: re.Match) -> str:
        name = match.group(1)
        if name not in macros:
            raise ValueError(f"rd.xml: unknown macro \\{name} in {text!r}")
        return macros[name]

    return _MACRO.sub(substitute, text.replace("\\+", "\x00")).replace("\x00", "")


def _loop_rows(loop: ET.Element, rd_macros: dict[str, str]) -> list[dict[str, str]]:
    source = loop.findtext("csvItems")
    if source is None:
        raise ValueError("rd.xml: only LOOP with csvItems is supported by ingest.core.schema")
    source = _expand(source, rd_macros)
    lines = "\n".join(line.strip() for line in source.strip().splitlines())
    return [
        {k.strip(): (v or "").strip() for k, v in row.items()}
        for row in csv.DictReader(io.StringIO(lines), skipinitialspace=True)
    ]


def _column(element: ET.Element, macros: dict[str, str]) -> Column:
    def attr(key: str, default: str = "") -> str:
        return _expand(element.get(key, default), macros)

    description = attr("description") or _expand(
        (element.findtext("description") or "").strip(), macros)
    values = element.find("values")
    null_literal = values.get("nullLiteral") if values is not None else None
    return Column(
        name=attr("name"),
        type=attr("type", "real"),
        unit=attr("unit"),
        ucd=attr("ucd"),
        description=" ".join(description.split()),
        tablehead=attr("tablehead"),
        verb_level=int(attr("verbLevel", "20")),
        required=attr("required", "False") == "True",
        null_literal=int(null_literal) if null_literal is not None else None,
    )


def _columns(table: ET.Element, rd_macros: dict[str, str]) -> list[Column]:
    columns: list[Column] = []
    for child in table:
        if child.tag == "column":
            columns.append(_column(child, {}))
        elif child.tag == "LOOP":
            events = child.find("events")
            for macros in _loop_rows(child, rd_macros):
                columns.extend(_column(c, macros) for c in events.iter("column"))
    return columns


@lru_cache(maxsize=None)
def load_tables(rd_path: Path = RD_PATH) -> dict[str, Table]:
    """All tables of the RD, keyed by table id."""
    root = ET.parse(rd_path).getroot()
    rd_macros = {m.get("name"): m.text or "" for m in root.findall("macDef")}
    tables = {}
    for element in root.iter("table"):
        name = element.get("id")
        description = " ".join(_expand(
            element.findtext("meta[@name='description']") or "", _PUBLICATION_MACROS).split())
        primary = tuple(p.strip() for p in element.get("primary", "").split(",") if p.strip())
        tables[name] = Table(name, description, primary, tuple(_columns(element, rd_macros)))
    return tables


def table(name: str) -> Table:
    """The published table ``name`` (cluster, member, spectrum, ...)."""
    tables = load_tables()
    if name not in tables:
        raise KeyError(f"rd.xml declares no table {name!r}; known: {sorted(tables)}")
    return tables[name]


def schema_name(rd_path: Path = RD_PATH) -> str:
    """The database schema the RD publishes into."""
    return ET.parse(rd_path).getroot().get("schema")


def data_model_markdown() -> str:
    """docs/data-model.md: every published column, generated from rd.xml (never hand-edited)."""
    lines = ["# Data model", "",
             "Generated from `rd.xml` by `python -m ingest.core.schema > docs/data-model.md`;",
             "`tests/test_schema.py` fails when it is out of date.", ""]
    for tab in load_tables().values():
        lines += [f"## {schema_name()}.{tab.name}", "", tab.description, "",
                  f"Primary key: {', '.join(tab.primary)}.", "",
                  "| column | type | unit | UCD | description |", "|---|---|---|---|---|"]
        lines += [f"| {c.name} | {c.type} | {c.unit} | {c.ucd} | {c.description.replace('|', '/')} |"
                  for c in tab.columns]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(data_model_markdown(), end="")
