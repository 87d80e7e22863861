"""Print every table's columns as DaCHS itself parses rd.xml (run with Debian's python3).

Only the <table> elements are handed to DaCHS: services and data elements
need a full instance (inputs directory, database), tables do not.
"""
import json
import sys
import xml.etree.ElementTree as ET

from gavo import base, rscdesc

root = ET.parse(sys.argv[1]).getroot()
for child in list(root):
    if child.tag != "table":
        root.remove(child)
rd = base.parseFromString(rscdesc.RD, ET.tostring(root, encoding="unicode"))
print(json.dumps({
    table.id: [[c.name, c.type, c.unit or "", c.ucd or "", " ".join((c.description or "").split())]
               for c in table.columns]
    for table in rd.tables}))
