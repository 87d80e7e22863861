"""Print every table's columns as DaCHS itself parses rd.xml (run with Debian's python3)."""
import json
import sys

from gavo import base, rscdesc

rd = base.parseFromString(rscdesc.RD, open(sys.argv[1], encoding="utf-8").read())
print(json.dumps({
    table.id: [[c.name, c.type, c.unit or "", c.ucd or "", " ".join((c.description or "").split())]
               for c in table.columns]
    for table in rd.tables}))
