"""Print every table's columns as DaCHS itself parses rd.xml (run with Debian's python3).

Only the <table> and <macDef> elements are handed to DaCHS, without the tables' <mixin>s:
services, data elements and mixins (which resolve //scs and so open a
database connection) need a running instance; columns do not.
"""
import json
import sys
import xml.etree.ElementTree as ET

from gavo import base, rscdesc

root = ET.parse(sys.argv[1]).getroot()
for child in list(root):
    if child.tag not in ("table", "macDef"):
        root.remove(child)
for table in root.iter("table"):
    for mixin in table.findall("mixin"):
        table.remove(mixin)
rd = base.parseFromString(rscdesc.RD, ET.tostring(root, encoding="unicode"))
print(json.dumps({
    table.id: [[c.name, c.type, c.unit or "", c.ucd or "", " ".join((c.description or "").split())]
               for c in table.columns]
    for table in rd.tables}))
