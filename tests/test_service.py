"""The published service, end to end: a private PostgreSQL + DaCHS on loopback ports of
its own, serving the demo ingest, queried as TOPCAT/pyvo users and validators would.

The instance lives in a temporary state directory and is always stopped and
removed at the end of the session, also when tests fail.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord

pytestmark = [pytest.mark.integration, pytest.mark.slow]

pyvo = pytest.importorskip("pyvo")

def _manifest_rows(demo_ingest: Path) -> dict[str, int]:
    outputs = json.loads((demo_ingest / "manifest.json").read_text())["outputs"]
    return {name: entry["rows"] for name, entry in outputs.items()}


def _count(service, table: str) -> int:
    return int(service.query_value(f"SELECT count(*) FROM ocvo.{table}"))


# ------------------------------------------------------------------ TAP
def test_published_row_counts_match_the_manifest(service, demo_ingest):
    for table, rows in _manifest_rows(demo_ingest).items():
        assert _count(service, table) == rows, table


def test_tap_sync_top_clusters(tap):
    result = tap.search("SELECT TOP 5 * FROM ocvo.cluster ORDER BY n_flag12 DESC")
    table = result.to_table()
    assert len(table) == 5
    assert list(table["n_flag12"]) == sorted(table["n_flag12"], reverse=True)
    assert str(table["ra"].unit) == "deg" and str(table["rv"].unit) == "km / s"
    assert result.getdesc("ra").ucd == "pos.eq.ra;meta.main"


def test_tap_async_with_polling(tap, service):
    job = tap.submit_job("SELECT cluster_name, COUNT(*) AS n FROM ocvo.member "
                         "GROUP BY cluster_name")
    try:
        job.run()
        job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=120)
        assert job.phase == "COMPLETED", job.phase
        table = job.fetch_result().to_table()
        assert int(table["n"].sum()) == _count(service, "member")
    finally:
        job.delete()


def test_tap_upload_crossmatch(tap):
    stars = tap.search("SELECT TOP 5 source_id, ra, dec FROM ocvo.member "
                       "ORDER BY source_id").to_table()
    mine = stars.copy()
    mine.rename_column("source_id", "my_id")
    result = tap.search(
        "SELECT u.my_id, m.source_id FROM TAP_UPLOAD.mine AS u JOIN ocvo.member AS m "
        "ON 1 = CONTAINS(POINT(m.ra, m.dec), CIRCLE(u.ra, u.dec, 1./3600.))",
        uploads={"mine": mine}).to_table()
    pairs = {(int(a), int(b)) for a, b in zip(result["my_id"], result["source_id"])}
    assert {(int(s), int(s)) for s in stars["source_id"]} <= pairs


def test_maxrec_overflow_is_flagged(tap, service):
    assert _count(service, "member") > 5
    result = tap.search("SELECT source_id FROM ocvo.member", maxrec=5)
    assert len(result) == 5
    assert result.query_status == "OVERFLOW"


def test_server_row_limit_overflow_warns(tap):
    """Without MAXREC the service's default limit truncates, and says so."""
    query = "SELECT a.source_id FROM ocvo.member AS a, ocvo.member AS b, ocvo.member AS c"
    with pytest.warns(pyvo.dal.DALOverflowWarning):
        result = tap.search(query)
    assert len(result) == tap.maxrec
    assert result.query_status == "OVERFLOW"


# ------------------------------------------------------------------ ADQL syntax
NOT_EQUAL = "SELECT COUNT(*) AS n FROM ocvo.cluster WHERE n_flag1 <> n_all"
BANG_EQUAL = "SELECT COUNT(*) AS n FROM ocvo.cluster WHERE n_flag1 != n_all"


def test_standard_not_equal_sync_and_async(tap):
    """ADQL's <> (what papers and TOPCAT use) means what DaCHS's != means."""
    expected = int(tap.search(BANG_EQUAL).to_table()["n"][0])
    assert 0 < expected < int(tap.search("SELECT COUNT(*) AS n FROM ocvo.cluster")
                              .to_table()["n"][0])
    assert int(tap.search(NOT_EQUAL).to_table()["n"][0]) == expected
    job = tap.submit_job(NOT_EQUAL)
    try:
        job.run()
        job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=120)
        assert job.phase == "COMPLETED", job.phase
        assert int(job.fetch_result().to_table()["n"][0]) == expected
    finally:
        job.delete()


def test_not_equal_with_a_geometry_function(tap, richest):
    """1 <> CONTAINS(...) is DaCHS's booleanised NOT CONTAINS, as 1 != CONTAINS(...) is."""
    circle = f"CIRCLE({richest['ra']}, {richest['dec']}, 1)"
    counts = [int(tap.search(f"SELECT COUNT(*) AS n FROM ocvo.member WHERE 1 {op} "
                             f"CONTAINS(POINT(ra, dec), {circle})").to_table()["n"][0])
              for op in ("<>", "!=", "=")]
    total = int(tap.search("SELECT COUNT(*) AS n FROM ocvo.member").to_table()["n"][0])
    assert counts[0] == counts[1] == total - counts[2] and counts[2] > 0


def test_other_adql21_syntax_topcat_users_type(tap):
    """||, ILIKE, OFFSET and IN_UNIT work and mean what ADQL 2.1 says."""
    joined = tap.search("SELECT TOP 1 cluster_name || '/' || survey AS s, cluster_name, "
                        "survey FROM ocvo.spectrum ORDER BY obsid").to_table()[0]
    assert joined["s"] == f"{joined['cluster_name']}/{joined['survey']}"
    upper = tap.search("SELECT COUNT(*) AS n FROM ocvo.spectrum "
                       "WHERE survey ILIKE 'LAMOST-%'").to_table()["n"][0]
    assert upper == tap.search("SELECT COUNT(*) AS n FROM ocvo.spectrum "
                               "WHERE survey LIKE 'lamost-%'").to_table()["n"][0] > 0
    names = list(tap.search("SELECT cluster_name FROM ocvo.cluster ORDER BY cluster_name")
                 .to_table()["cluster_name"])
    page = tap.search("SELECT cluster_name FROM ocvo.cluster ORDER BY cluster_name "
                      "OFFSET 3").to_table()
    assert list(page["cluster_name"]) == names[3:]
    row = tap.search("SELECT TOP 1 dist50, IN_UNIT(dist50, 'kpc') AS dist_kpc "
                     "FROM ocvo.cluster WHERE dist50 IS NOT NULL").to_table()[0]
    assert row["dist_kpc"] == pytest.approx(row["dist50"] / 1000, rel=1e-6)


def test_stilts_tapquery_with_not_equal(service):
    """A TOPCAT-style client (STILTS tapquery, sync) sends <> as typed."""
    report = _stilts("tapquery", f"tapurl={service.tap_url}", f"adql={NOT_EQUAL}",
                     "sync=true", "ofmt=csv", timeout=120)
    expected = service.query_value("SELECT count(*) FROM ocvo.cluster WHERE n_flag1 <> n_all")
    assert report.split() == ["n", expected], report


# ------------------------------------------------------------------ cone search
@pytest.mark.parametrize("service_id, table", [("cone", "cluster"), ("mcone", "member")])
def test_cone_search(service, tap, richest, service_id, table):
    scs = pyvo.dal.SCSService(f"{service.url}/ocvo/q/{service_id}/scs.xml")
    radius = 0.5
    result = scs.search(pos=(richest["ra"], richest["dec"]), radius=radius).to_table()
    assert richest["cluster_name"] in set(result["cluster_name"])
    centre = SkyCoord(richest["ra"], richest["dec"], unit="deg")
    found = SkyCoord(np.asarray(result["ra"]), np.asarray(result["dec"]), unit="deg")
    assert np.all(centre.separation(found).deg <= radius + 1e-6)
    expected = tap.search(
        f"SELECT COUNT(*) AS n FROM ocvo.{table} WHERE 1 = CONTAINS(POINT(ra, dec), "
        f"CIRCLE({richest['ra']}, {richest['dec']}, {radius}))").to_table()["n"][0]
    assert len(result) == expected


@pytest.mark.parametrize("verb, max_level", [(1, 10), (2, 20), (3, 30)])
def test_cone_search_verbosity_follows_the_rd(service, richest, verb, max_level):
    """VERB selects columns by rd.xml's verbLevel; the default (2) leaves out the detail."""
    from ingest.core import schema

    scs = pyvo.dal.SCSService(f"{service.url}/ocvo/q/mcone/scs.xml")
    result = scs.search(pos=(richest["ra"], richest["dec"]), radius=0.05, verbosity=verb)
    served = {field.name for field in result.fielddescs} - {"_r"}
    expected = {c.name for c in schema.load_tables()["member"].columns
                if c.verb_level <= max_level}
    assert served == expected


# ------------------------------------------------------------------ DataLink
def _links(service, cluster_name: str):
    return pyvo.dal.adhoc.DatalinkResults.from_result_url(
        f"{service.url}/ocvo/q/dl/dlmeta?" + urllib.parse.urlencode({"ID": cluster_name}))


def test_datalink_from_tap_result_to_members_and_spectra(tap, service, richest):
    name = richest["cluster_name"]
    result = tap.search(f"SELECT * FROM ocvo.cluster WHERE cluster_name = '{name}'")
    links = next(result.iter_datalinks())
    assert not [row.error_message for row in links if row.error_message]
    by_query = {row.semantics: [] for row in links}
    for row in links:
        by_query[row.semantics].append(row.access_url)
    assert {"#this", "#progenitor"} <= set(by_query)
    members = [url for url in by_query["#progenitor"] if "ocvo.member" in url]
    table = pyvo.dal.DALResults.from_result_url(members[0]).to_table()
    assert len(table) > 0 and set(table["cluster_name"]) == {name}
    expected = tap.search(f"SELECT COUNT(*) AS n FROM ocvo.member "
                          f"WHERE cluster_name = '{name}'").to_table()["n"][0]
    assert len(table) == expected


def test_member_datalink_is_the_star(service, tap, richest):
    """A member cone row's DataLink is the star's own: its row, its spectra, its cluster,
    the cluster's figures; once each, not once per sibling member."""
    scs = pyvo.dal.SCSService(f"{service.url}/ocvo/q/mcone/scs.xml")
    result = scs.search(pos=(richest["ra"], richest["dec"]), radius=0.5)
    assert len(result) > 1
    links = next(result.iter_datalinks())
    star = str(links.original_row["member_key"])  # batches need not keep the row order
    assert not [row.error_message for row in links if row.error_message]
    pairs = [(row.semantics, row.access_url) for row in links]
    assert len(pairs) == len(set(pairs))
    by_semantics = {}
    for semantics, url in pairs:
        by_semantics.setdefault(semantics, []).append(url)
    assert {"#this", "#progenitor", "#auxiliary"} <= set(by_semantics)

    this = pyvo.dal.DALResults.from_result_url(by_semantics["#this"][0]).to_table()
    assert list(this["member_key"]) == [star]
    spectra = pyvo.dal.DALResults.from_result_url(by_semantics["#progenitor"][0]).to_table()
    assert set(spectra["member_key"]) == {star} and len(spectra) == int(this["n_spec"][0])
    cluster = pyvo.dal.DALResults.from_result_url(by_semantics["#auxiliary"][0]).to_table()
    assert list(cluster["cluster_name"]) == [this["cluster_name"][0]]
    cluster_previews = {row.access_url for row in _links(service, str(this["cluster_name"][0]))
                        if row.semantics == "#preview-plot"}
    assert set(by_semantics.get("#preview-plot", [])) == cluster_previews


@pytest.mark.parametrize("spelling", [lambda name: name, lambda name: name.replace(" ", "_")],
                         ids=["spaces", "underscores"])
def test_cluster_datalink_accepts_the_figure_file_stem(service, richest, spelling):
    """"NGC 2682" and "NGC_2682" (Hunt & Reffert's and the figure files' spelling) both
    resolve to the cluster; the response echoes the ID as asked."""
    from ingest.pipeline.s8_outputs.figures import safe_name

    name = richest["cluster_name"]
    assert " " in name, "the demo's richest cluster should have a space in its name"
    asked = spelling(name)
    links = list(_links(service, asked))
    assert not [row.error_message for row in links if row.error_message]
    assert {row["ID"] for row in links} == {asked}
    this = [row.access_url for row in links if row.semantics == "#this"]
    assert list(pyvo.dal.DALResults.from_result_url(this[0]).to_table()["cluster_name"]) == [name]
    figures = {row.access_url.rsplit("/", 1)[1] for row in links
               if row.semantics == "#preview-plot"}
    assert all(f.startswith(safe_name(name) + "_") for f in figures)


def test_datalink_figures_follow_the_files(service, richest):
    """Preview links exist exactly for the figure files present, and serve them."""
    from ingest.pipeline.s8_outputs.figures import safe_name

    name = richest["cluster_name"]
    folder = service.resdir / "data" / "figures" / "cluster"
    folder.mkdir(parents=True, exist_ok=True)
    added = folder / f"{safe_name(name)}_kiel.png"
    existed = added.exists()
    if not existed:
        added.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    try:
        present = {p.name for p in folder.glob(f"{safe_name(name)}_*.png")}
        previews = [row for row in _links(service, name) if row.semantics == "#preview-plot"]
        assert {row.access_url.rsplit("/", 1)[1] for row in previews} == present
        with urllib.request.urlopen(previews[0].access_url, timeout=10) as response:
            assert response.headers["Content-Type"] == "image/png"
    finally:
        if not existed:
            added.unlink()
    remaining = {p.name for p in folder.glob(f"{safe_name(name)}_*.png")}
    previews = [row for row in _links(service, name) if row.semantics == "#preview-plot"]
    assert {row.access_url.rsplit("/", 1)[1] for row in previews} == remaining


def test_datalink_unknown_id_is_a_fault(service):
    links = _links(service, "no such cluster")
    assert [row.error_message for row in links][0].startswith("NotFoundFault")


# ------------------------------------------------------------------ metadata
def test_tap_schema_columns_have_description_ucd_and_vounit(tap):
    from astropy import units
    from astropy.io.votable import ucd as ucd_parser

    columns = tap.search("SELECT table_name, column_name, description, ucd, unit "
                         "FROM TAP_SCHEMA.columns WHERE table_name LIKE 'ocvo.%'",
                         maxrec=10000).to_table()
    assert len(columns) > 250
    problems = []
    for row in columns:
        where = f"{row['table_name']}.{row['column_name']}"
        if not str(row["description"] or "").strip():
            problems.append(f"{where}: no description")
        try:
            ucd_parser.parse_ucd(str(row["ucd"]), check_controlled_vocabulary=True)
        except ValueError as exc:
            problems.append(f"{where}: UCD {row['ucd']!r}: {exc}")
        unit = str(row["unit"] or "")
        if unit:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                try:
                    units.Unit(unit, format="vounit")
                except (ValueError, units.UnitsWarning) as exc:
                    problems.append(f"{where}: unit {unit!r}: {exc}")
    assert problems == []


def test_table_descriptions_have_no_hard_line_breaks(tap):
    """DaCHS reflows descriptions to 70 columns; ours keep one line per paragraph."""
    rows = tap.search("SELECT table_name, description FROM TAP_SCHEMA.tables "
                      "WHERE table_name LIKE 'ocvo.%'").to_table()
    assert len(rows) == 7
    broken = [str(row["table_name"]) for row in rows
              if "\n" in str(row["description"]).replace("\n\n", "")]
    assert broken == []


def _tap_count(tap, table: str, where: str) -> int:
    return int(tap.search(f"SELECT COUNT(*) AS n FROM ocvo.{table} WHERE {where}")
               .to_table()["n"][0])


def test_no_negative_vsini_and_lrs_band_is_null(tap):
    assert _tap_count(tap, "member", "vsini < 0") == 0
    assert _tap_count(tap, "member", "vsini >= 0") > 0
    assert _tap_count(tap, "spectrum", "band = ''") == 0
    lrs = _tap_count(tap, "spectrum", "survey = 'lamost-lrs'")
    assert lrs > 0 and _tap_count(tap, "spectrum", "survey = 'lamost-lrs' AND band IS NULL") == lrs


def _example_query(service, title: str) -> str:
    """The ADQL of one TAP example, as a client reads it from the examples page."""
    from xml.etree import ElementTree

    page = ElementTree.fromstring(_get(f"{service.url}/ocvo/q/ex/examples"))
    for example in page.iter():
        if example.get("typeof") != "example":
            continue
        fields = {element.get("property"): "".join(element.itertext())
                  for element in example.iter() if element.get("property")}
        if fields.get("name") == title:
            return fields["query"]
    raise AssertionError(f"no example titled {title!r}")


def test_crossmatch_example_gives_arcsec_in_arcsec(service, tap):
    """The example's separation is declared in the unit its name says."""
    query = _example_query(service, "Crossmatch your own star list")
    mine = tap.search("SELECT TOP 3 ra, dec FROM ocvo.member ORDER BY member_key").to_table()
    result = tap.search(query, uploads={"mine": mine})
    table = result.to_table()
    assert len(table) >= 3
    assert result.getdesc("sep_arcsec").unit == "arcsec"
    assert float(np.max(table["sep_arcsec"])) <= 2.0


def test_binary_candidate_example_lists_the_injected_pairs(service, tap):
    """The demo injects 6 physical pairs (one h & chi Persei-like); the example shows them
    with both partners' RVs and ages, which agree as a bound pair's must."""
    table = tap.search(_example_query(service, "Binary-cluster candidates")).to_table()
    assert len(table) >= 6
    assert np.all(np.abs(table["rv_a"] - table["rv_b"]) < 5.0)
    assert np.all(np.abs(table["logage_a"] - table["logage_b"]) < 0.5)


def test_tap_schema_foreign_keys(tap):
    keys = tap.search("SELECT k.from_table, k.target_table, c.from_column, c.target_column "
                      "FROM TAP_SCHEMA.keys AS k JOIN TAP_SCHEMA.key_columns AS c "
                      "ON k.key_id = c.key_id WHERE k.from_table LIKE 'ocvo.%'").to_table()
    found = {(str(r["from_table"]), str(r["from_column"]), str(r["target_table"]))
             for r in keys}
    assert {("ocvo.member", "cluster_name", "ocvo.cluster"),
            ("ocvo.spectrum", "member_key", "ocvo.member")} <= found


def test_pyvo_sees_foreign_keys_per_table(tap):
    """pyvo reads /tap/tables/<table>: its keys are the ones TAP_SCHEMA.keys has."""
    expected = {"ocvo.member": {("ocvo.cluster", (("cluster_name", "cluster_name"),))},
                "ocvo.spectrum": {("ocvo.member", (("member_key", "member_key"),))},
                "ocvo.binary_candidate": {("ocvo.cluster", (("cluster_a", "cluster_name"),)),
                                          ("ocvo.cluster", (("cluster_b", "cluster_name"),))}}
    for name, keys in expected.items():
        found = {(fk.targettable, tuple((c.fromcolumn, c.targetcolumn) for c in fk.fkcolumns))
                 for fk in tap.tables[name].foreignkeys}
        assert found == keys, name


def test_votables_declare_icrs_and_epoch(service, tmp_path):
    """rd.xml's STC reaches TAP results as COOSYS, read back by astropy."""
    from astropy.io.votable import parse

    query = "SELECT TOP 3 source_id, ra, dec, ra_obs, dec_obs FROM ocvo.member"
    path = tmp_path / "member.vot"
    path.write_bytes(_get(f"{service.url}/tap/sync?REQUEST=doQuery&LANG=ADQL&QUERY="
                          + urllib.parse.quote(query)))
    votable = parse(str(path))
    systems = {c.ID: c for c in votable.iter_coosys()}
    fields = {f.name: f for f in votable.get_first_table().fields}
    gaia, fibre = systems[fields["ra"].ref], systems[fields["ra_obs"].ref]
    assert (gaia.system, gaia.epoch) == ("ICRS", "J2016.0")
    assert fields["dec"].ref == fields["ra"].ref
    assert fibre.system == "ICRS" and fibre.epoch is None


# ------------------------------------------------------------------ validators
def test_dachs_val_is_clean(service):
    result = service.dachs("val", "ocvo/q", check=False)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and output == "ocvo/q -- OK", output


def _regtests(tagged: bool) -> int:
    """How many regTests rd.xml holds without a tag (+ those tagged "demo")."""
    import xml.etree.ElementTree as ET

    from ingest.core import schema

    tests = ET.parse(schema.RD_PATH).getroot().iter("regTest")
    return sum(1 for t in tests if not t.get("tags") or (tagged and t.get("tags") == "demo"))


def test_dachs_regression_tests_pass(service):
    """The regSuite for any published catalogue: every untagged regTest runs and passes."""
    result = service.dachs("test", "-v", "ocvo/q", check=False, timeout=300)
    summary = re.search(r"(\d+) of (\d+) bad", result.stdout)
    assert summary, result.stdout + result.stderr
    assert result.returncode == 0 and summary.group(1) == "0", result.stdout
    assert int(summary.group(2)) == _regtests(tagged=False) >= 12


def _stilts(*args: str, timeout: float = 600) -> str:
    result = subprocess.run(["stilts", *args], capture_output=True, text=True, timeout=timeout)
    return result.stdout + result.stderr


def test_taplint_reports_no_errors(service):
    """0 errors; the only failure allowed is the ObsLocTAP stage (no ivoa.obsplan: we
    are not an observation locator), see docs/service.md."""
    report = _stilts("taplint", f"tapurl={service.tap_url}", "report=EWF", "maxrepeat=3")
    totals = re.search(r"Totals: Errors: (\d+); Warnings: (\d+);.*Failures: (\d+)", report)
    assert totals, report[-3000:]
    errors = [line for line in report.splitlines() if line.startswith("E-")]
    failures = [line for line in report.splitlines() if line.startswith("F-")]
    assert totals.group(1) == "0", "\n".join(errors)
    assert [f for f in failures if not f.startswith("F-LOC-NOTP")] == []


@pytest.mark.parametrize("path", [
    "/tap/sync?REQUEST=doQuery&LANG=ADQL&QUERY=" + urllib.parse.quote(
        "SELECT TOP 20 * FROM ocvo.member"),
    "/tap/sync?REQUEST=doQuery&LANG=ADQL&QUERY=" + urllib.parse.quote(
        "SELECT TOP 20 * FROM ocvo.spectrum"),
    "/ocvo/q/cone/scs.xml?RA=0&DEC=0&SR=180&VERB=3",
])
def test_votlint_on_results(service, path, tmp_path):
    votable = tmp_path / "result.vot"
    with urllib.request.urlopen(service.url + path, timeout=60) as response:
        votable.write_bytes(response.read())
    report = _stilts("votlint", f"votable={votable}")
    problems = [line for line in report.splitlines() if "ERROR" in line or "WARNING" in line]
    assert problems == [], report


def test_oai_pmh_records_validate_against_dachs_schemata(service):
    from ingest.publication.instance import DACHS_PYTHON

    url = f"{service.url}/oai.xml?verb=ListRecords&metadataPrefix=ivo_vor"
    with urllib.request.urlopen(url, timeout=60) as response:
        records = response.read()
    assert b"ocvo/q/cone" in records and b"ocvo/q/mcone" in records
    # lxml + the XSDs DaCHS ships, on Debian's python (DaCHS's own validator).
    check = subprocess.run(
        [DACHS_PYTHON, "-c",
         "import sys\nfrom gavo.helpers import testtricks\n"
         "errors = testtricks.getXSDErrors(sys.stdin.buffer.read())\n"
         "print(errors or 'valid')\nsys.exit(1 if errors else 0)"],
        input=records, capture_output=True, env=service.dachs_env(), timeout=300)
    assert check.returncode == 0, (check.stdout + check.stderr).decode()[-3000:]


# ------------------------------------------------------------------ site metadata
VOSI_PATHS = ["/tap/capabilities", "/tap/tables", "/tap/availability",
              "/ocvo/q/cone/capabilities", "/ocvo/q/mcone/capabilities",
              "/tap/tables/ocvo.member"]
VR = "{http://www.ivoa.net/xml/VOResource/v1.0}"


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def _oai_records(service) -> list:
    """The ivo_vor resource elements of OAI-PMH ListRecords."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(_get(f"{service.url}/oai.xml?verb=ListRecords&metadataPrefix=ivo_vor"))
    return [el for el in root.iter() if el.tag.endswith("}Resource") or el.tag == "Resource"]


def _text(resource, path: str) -> list[str]:
    return [(el.text or "").strip() for el in resource.iterfind(path)]


def test_no_dachs_placeholders_in_registry_or_vosi(service):
    from ingest.publication.site import DACHS_PLACEHOLDERS

    documents = {"OAI-PMH ListRecords": _get(
        f"{service.url}/oai.xml?verb=ListRecords&metadataPrefix=ivo_vor").decode()}
    documents.update({path: _get(service.url + path).decode() for path in VOSI_PATHS})
    found = [(where, p) for where, text in documents.items()
             for p in DACHS_PLACEHOLDERS if p in text]
    assert found == []
    assert "ocvo.local" in documents["OAI-PMH ListRecords"]


def test_registry_records_have_creators_coverage_and_content_level(service):
    records = {(_text(r, "identifier") or [""])[0]: r for r in _oai_records(service)}
    tap_record = records["ivo://ocvo.local/tap"]
    cone = records["ivo://ocvo.local/ocvo/q/cone"]
    for record in (tap_record, cone):
        creators = _text(record, "curation/creator/name")
        assert creators and not [c for c in creators if "et al" in c or not c]
        assert _text(record, "content/contentLevel") == ["Research"]
        assert _text(record, "coverage/temporal") == ["55858 60125"]
        assert _text(record, "coverage/spectral") == ["2.2072e-19 5.3688e-19"]
        assert _text(record, "coverage/waveband") == ["Optical"]
    assert set(_text(cone, "curation/creator/name")) >= {"Fu, X.", "Bragaglia, A.", "Liu, C."}
    assert _text(cone, "coverage/spatial")[0].startswith(("5/", "6/", "4/"))
    assert "open-star-clusters" in _text(tap_record, "content/subject")


def _marked_everywhere(service, tap) -> dict[str, bool]:
    """Where the SIMULATED marking shows: registry title, TAP_SCHEMA, VOTable INFO."""
    from ingest.publication.site import SIMULATED_NOTE

    record = next(r for r in _oai_records(service)
                  if _text(r, "identifier") == ["ivo://ocvo.local/ocvo/q/cone"])
    descriptions = tap.search("SELECT description FROM TAP_SCHEMA.tables "
                              "WHERE table_name LIKE 'ocvo.%'").to_table()["description"]
    result = tap.search("SELECT TOP 1 * FROM ocvo.member")
    infos = [info for info in result.votable.resources[0].infos
             if info.name in ("src_res", "src_table")]
    return {"title": _text(record, "title")[0].startswith("SIMULATED: "),
            "tables": all(str(d).startswith(SIMULATED_NOTE.strip()) for d in descriptions),
            "tables_none": not any("SIMULATED" in str(d) for d in descriptions),
            "infos": len(infos) == 2 and all(
                " ".join(str(i.content).split()).startswith(SIMULATED_NOTE.strip())
                for i in infos)}


def test_simulated_catalogue_is_marked_and_real_one_is_not(service, demo_ingest, tap,
                                                           tmp_path):
    from ingest.publication.publish import publish

    assert json.loads((demo_ingest / "manifest.json").read_text())["simulated_input"]
    marked = _marked_everywhere(service, tap)
    assert marked == {"title": True, "tables": True, "tables_none": False, "infos": True}
    real = _copy_of(demo_ingest, tmp_path)
    record = json.loads((real / "manifest.json").read_text())
    record["simulated_input"] = False
    (real / "manifest.json").write_text(json.dumps(record))
    try:
        publish(real, service, say=lambda message: None)
        unmarked = _marked_everywhere(service, tap)
        assert unmarked == {"title": False, "tables": False, "tables_none": True,
                            "infos": False}
    finally:
        publish(demo_ingest, service, say=lambda message: None)


# ------------------------------------------------------------------ atomic publication
def test_republishing_replaces_the_catalogue(service, demo_ingest, tap):
    from ingest.publication.publish import publish

    publish(demo_ingest, service, say=lambda message: None)
    for table, rows in _manifest_rows(demo_ingest).items():
        assert _count(service, table) == rows, table
    assert len(tap.search("SELECT TOP 1 * FROM ocvo.cluster")) == 1


def test_republishing_refreshes_edited_column_metadata(service, demo_ingest, tap):
    """An rd.xml edit that keeps the columns (a description, a verbLevel) reaches TAP_SCHEMA."""
    from ingest.core import schema
    from ingest.publication.publish import publish

    service.psql("-c", "UPDATE tap_schema.columns SET description = 'stale', principal = 0 "
                       "WHERE table_name = 'ocvo.member' AND column_name = 'rv'")
    publish(demo_ingest, service, say=lambda message: None)
    row = tap.search("SELECT description, principal FROM TAP_SCHEMA.columns "
                     "WHERE table_name = 'ocvo.member' AND column_name = 'rv'").to_table()[0]
    rv = next(c for c in schema.load_tables()["member"].columns if c.name == "rv")
    assert str(row["description"]) == rv.description
    assert row["principal"] == 1


def _copy_of(demo_ingest: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(demo_ingest, copy)
    return copy


def test_corrupt_directory_is_refused_and_previous_data_serves(service, demo_ingest, tap,
                                                                tmp_path):
    from ingest.core.errors import PublishError
    from ingest.publication.publish import publish

    before = {t: _count(service, t) for t in _manifest_rows(demo_ingest)}
    corrupt = _copy_of(demo_ingest, tmp_path)
    data = bytearray((corrupt / "member.fits").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (corrupt / "member.fits").write_bytes(bytes(data))
    with pytest.raises(PublishError, match="SHA-256"):
        publish(corrupt, service, say=lambda message: None)
    assert {t: _count(service, t) for t in before} == before
    assert len(tap.search("SELECT TOP 3 * FROM ocvo.member")) == 3


def test_failing_import_rolls_back_to_previous_catalogue(service, demo_ingest, tap, tmp_path):
    """A DIR that validates but breaks a foreign key mid-import: nothing changes."""
    from ingest.core import manifest
    from ingest.pipeline.s8_outputs import writers
    from ingest.core.errors import PublishError
    from ingest.publication.publish import publish

    before = {t: _count(service, t) for t in _manifest_rows(demo_ingest)}
    broken = _copy_of(demo_ingest, tmp_path)
    clusters = writers.read_table(broken / "cluster.fits")
    writers.write_table(clusters.iloc[1:], "cluster", broken / "cluster.fits")
    record = json.loads((broken / "manifest.json").read_text())
    record["outputs"]["cluster"].update(sha256=manifest.sha256(broken / "cluster.fits"),
                                        rows=len(clusters) - 1)
    (broken / "manifest.json").write_text(json.dumps(record))

    with pytest.raises(PublishError, match="previous catalogue"):
        publish(broken, service, say=lambda message: None)
    assert {t: _count(service, t) for t in before} == before
    first = str(clusters["cluster_name"].iloc[0])
    assert len(tap.search(f"SELECT * FROM ocvo.cluster WHERE cluster_name = '{first}'")) == 1


def test_the_demo_regression_tests_pass_against_the_running_service(service):
    """rd.xml's regSuites with the demo's own tests (`-t demo`: README's TOP 5 answer, the
    catalogue size, the injected gradient, cluster pairs and literature offsets), run by
    DaCHS's test runner against this instance's URL; the demo's regTests really ran."""
    result = service.dachs("test", "-v", "-t", "demo", "-u", service.url, "ocvo/q",
                           check=False, timeout=300)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    summary = re.search(r"\b(\d+) of (\d+) bad\b", report)
    assert summary and summary.group(1) == "0", report
    assert int(summary.group(2)) == _regtests(tagged=True) > _regtests(tagged=False)
