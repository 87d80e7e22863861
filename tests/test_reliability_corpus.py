"""The bad-input corpus of ``ocvo ingest``: every case stops with a clear message or
rejects the bad value with a counted reason, and none crashes or touches --out.

All cases share one tiny input set cut from the simulated demo (four clusters, their
members and MRS spectra) and run the real command line in this process; cases that
stop do so before the Galactic stage, so the corpus takes seconds.  Classes:
output directories, configuration ranges, cluster values, member and spectrum values
(rejected rows and values), duplicate inputs and catalogues that would be empty.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from astropy.table import Table

from ingest import cli
from ingest.core import manifest
from ingest.pipeline.s1_inputs import load
from ingest.pipeline.s8_outputs import writers
from ingest.core.vocabulary import TABLES

ROOT = Path(__file__).resolve().parent.parent
FAST_CONFIG = """
[galactic]
orbit_steps = 201
orbit_draws = 10
orbit_cores = 1
[gradients]
mcmc_walkers = 16
mcmc_steps = 200
mcmc_burn = 50
mcmc_max_steps = 400
"""
CLUSTER_RANKS = slice(6, 10)    # four mid-sized clusters of the demo (by matched members)


@dataclass(frozen=True)
class Tiny:
    """The shared tiny inputs: tables in memory and their files in ``base``."""

    base: Path
    clusters: Table
    members: Table
    mrs: Table

    def path(self, name: str) -> Path:
        return self.base / f"{name}.fits"


def _strip(column) -> np.ndarray:
    return np.char.strip(np.asarray(column).astype(str))


@pytest.fixture(scope="module")
def tiny(demo_sim, tmp_path_factory) -> Tiny:
    clusters = Table.read(demo_sim / "hunt2024_clusters.fits")
    members = Table.read(demo_sim / "hunt2024_members.fits")
    mrs = Table.read(demo_sim / "lamost_mrs_dr11.fits")
    matched = np.isin(members["GaiaDR3"], mrs["gaia_source_id"]) & (members["Prob"] > 0.5)
    names, counts = np.unique(_strip(members["Name"])[matched], return_counts=True)
    keep = names[np.argsort(-counts, kind="stable")][CLUSTER_RANKS]
    clusters = clusters[np.isin(_strip(clusters["Name"]), keep)]
    members = members[np.isin(_strip(members["Name"]), keep)]
    mrs = mrs[np.isin(mrs["gaia_source_id"], members["GaiaDR3"])]
    base = tmp_path_factory.mktemp("tiny")
    for name, table in (("clusters", clusters), ("members", members), ("mrs", mrs)):
        table.write(base / f"{name}.fits")
    (base / "fast.toml").write_text(FAST_CONFIG)
    return Tiny(base, clusters, members, mrs)


# ---------------------------------------------------------------- harness

@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


def snapshot(path: Path) -> object:
    """What --out is now (absent, a file's bytes, or a directory's files) and the parent's
    entries (a stray staging directory would show there)."""
    if path.is_symlink():
        state: object = ("link", os.readlink(path))
    elif path.is_file():
        state = path.read_bytes()
    elif path.is_dir():
        state = {str(p.relative_to(path)): p.read_bytes() if p.is_file() else None
                 for p in sorted(path.rglob("*"))}
    else:
        state = None
    parent = sorted(p.name for p in path.parent.iterdir()) if path.parent.is_dir() else None
    return state, parent


def ocvo(argv: list[str], capsys) -> Run:
    """``ocvo`` in this process; any exception that escapes is a traceback and fails."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:           # argparse errors
        code = exc.code
    except Exception as exc:            # noqa: BLE001 - exactly what the corpus forbids
        pytest.fail(f"traceback instead of a message: {type(exc).__name__}: {exc}")
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def ingest_argv(tiny: Tiny, out: Path, clusters: Path | None = None,
                members: Path | None = None, spectra: list[Path] | None = None,
                config: Path | None = None, extra: tuple[str, ...] = ()) -> list[str]:
    argv = ["ingest", "--clusters", str(clusters or tiny.path("clusters")),
            "--members", str(members or tiny.path("members"))]
    for path in spectra or [tiny.path("mrs")]:
        argv += ["--spectra", str(path)]
    return argv + ["--config", str(config or tiny.base / "fast.toml"), "--out", str(out),
                   "--no-progress", *extra]


def assert_stops(run: Run, names: list[str], before: object, out: Path) -> None:
    """Exit 2, one 'ocvo ingest: error:' message naming each of ``names``, no traceback,
    and --out exactly as before."""
    assert run.code == 2, (run.code, run.stderr)
    assert run.stderr.startswith("ocvo ingest: error: "), run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    for name in names:
        assert name in run.stderr, (name, run.stderr)
    assert snapshot(out) == before


def variant(tiny: Tiny, tmp: Path, name: str, change: Callable[[Table], None]) -> Path:
    """A copy of one tiny input with ``change`` applied."""
    table = getattr(tiny, name).copy()
    change(table)
    path = tmp / f"{name}_bad.fits"
    table.write(path)
    return path


def config_file(tmp: Path, text: str) -> Path:
    path = tmp / "bad-config.toml"
    path.write_text(text)
    return path


def earlier_output(out: Path) -> None:
    """What an earlier ingest left: its tables and manifest (and figures, if drawn)."""
    out.mkdir(parents=True)
    outputs = {}
    for name in TABLES:
        (out / f"{name}.fits").write_bytes(b"earlier " + name.encode())
        outputs[name] = {"file": f"{name}.fits", "rows": 1, "sha256": "0"}
    manifest.write({"format": "ocvo-ingest-manifest/1", "outputs": outputs}, out / "manifest.json")


# ---------------------------------------------------------------- output directories

def _user_directory(tmp: Path, tiny: Tiny) -> tuple[Path, list[str]]:
    out = tmp / "d"
    out.mkdir()
    (out / "thesis.tex").write_text("keep\n")
    return out, ["thesis.tex", "not an ingest output"]


def _regular_file(tmp: Path, tiny: Tiny) -> tuple[Path, list[str]]:
    out = tmp / "results.txt"
    out.write_text("my results\n")
    return out, ["results.txt", "a file, not a directory"]


def _inputs_directory(tmp: Path, tiny: Tiny) -> tuple[Path, list[str]]:
    return tiny.base, [str(tiny.base), "holds the input"]


def _ancestor_of_inputs(tmp: Path, tiny: Tiny) -> tuple[Path, list[str]]:
    return tiny.base.parent, [str(tiny.base.parent), "holds the input"]


def _earlier_output_with_other_file(tmp: Path, tiny: Tiny) -> tuple[Path, list[str]]:
    out = tmp / "out"
    earlier_output(out)
    (out / "notes.md").write_text("mine\n")
    return out, ["notes.md", "did", "not write"]


def _foreign_manifest(tmp: Path, tiny: Tiny) -> tuple[Path, list[str]]:
    out = tmp / "web"
    out.mkdir()
    (out / "manifest.json").write_text('{"name": "my web app", "icons": []}\n')
    return out, ["manifest.json", "not an ingest output"]


def _earlier_output_figures_with_other_file(tmp: Path, tiny: Tiny) -> tuple[Path, list[str]]:
    out = tmp / "out"
    earlier_output(out)
    (out / "figures").mkdir()
    (out / "figures" / "draft.tex").write_text("mine\n")
    return out, ["figures", "did", "not write"]


def _symbolic_link(tmp: Path, tiny: Tiny) -> tuple[Path, list[str]]:
    target = tmp / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("keep\n")
    out = tmp / "link"
    out.symlink_to(target)
    return out, ["link", "symbolic link"]


def _under_a_file(tmp: Path, tiny: Tiny) -> tuple[Path, list[str]]:
    blocker = tmp / "plain.txt"
    blocker.write_text("x\n")
    return blocker / "out", [str(blocker / "out"), "cannot create"]


NEVER_REPLACED = [_user_directory, _regular_file, _inputs_directory, _ancestor_of_inputs,
                  _earlier_output_with_other_file, _foreign_manifest,
                  _earlier_output_figures_with_other_file, _symbolic_link, _under_a_file]


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
@pytest.mark.parametrize("make", NEVER_REPLACED, ids=lambda f: f.__name__.strip("_"))
def test_output_directory_never_replaced(tiny, tmp_path, capsys, make, force):
    out, names = make(tmp_path, tiny)
    before = snapshot(out)
    argv = ingest_argv(tiny, out, extra=("--force",) if force else ())
    assert_stops(ocvo(argv, capsys), names, before, out)


def test_reported_case_thesis_tex_is_kept(tiny, tmp_path, capsys):
    """mkdir -p d && echo keep > d/thesis.tex; ocvo ingest ... --out d"""
    out = tmp_path / "d"
    out.mkdir()
    (out / "thesis.tex").write_text("keep\n")
    run = ocvo(ingest_argv(tiny, out), capsys)
    assert run.code == 2 and (out / "thesis.tex").read_text() == "keep\n"
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]


def test_earlier_output_needs_force(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    earlier_output(out)
    before = snapshot(out)
    assert_stops(ocvo(ingest_argv(tiny, out), capsys), [str(out), "--force"], before, out)


def _run_as_nobody(argv: list[str], home: Path) -> subprocess.CompletedProcess:
    """``ocvo`` as the unprivileged user nobody (root may write anywhere), with ``home``."""
    command = [sys.executable, "-m", "ingest", *argv]
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, HOME=str(home),
                                   XDG_CACHE_HOME=str(home), XDG_CONFIG_HOME=str(home),
                                   PYTHONDONTWRITEBYTECODE="1"))


def test_read_only_out_parent_stops_before_any_work(tiny):
    """An --out whose parent this user cannot write: a clear message within seconds,
    not a traceback after the whole run."""
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("needs setpriv to drop root privileges")
    work = Path(tempfile.mkdtemp(prefix="ocvo-readonly-"))
    try:
        work.chmod(0o755)
        for name in ("clusters.fits", "members.fits", "mrs.fits", "fast.toml"):
            shutil.copy(tiny.base / name, work / name)
            (work / name).chmod(0o644)
        locked = work / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        argv = ["ingest", "--clusters", str(work / "clusters.fits"), "--members",
                str(work / "members.fits"), "--spectra", str(work / "mrs.fits"), "--config",
                str(work / "fast.toml"), "--out", str(locked / "out"), "--no-progress"]
        home = work / "home"
        home.mkdir()
        home.chmod(0o777)
        result = _run_as_nobody(argv, home)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert str(locked) in result.stderr and "not writable" in result.stderr
        assert list(locked.iterdir()) == []
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------- configuration

CONFIG_CASES = [
    ("[members]\nprob_min = 2.0\n", "members.prob_min"),
    ("[members]\nprob_min = -0.1\n", "members.prob_min"),
    ("[members]\nprob_min_cg20 = 1.5\n", "members.prob_min_cg20"),
    ("[crossmatch]\nradius_arcsec = -3.5\n", "crossmatch.radius_arcsec"),
    ("[crossmatch]\nradius_arcsec = 0.0\n", "crossmatch.radius_arcsec"),
    ("[spectra]\nsnr_min = -1.0\n", "spectra.snr_min"),
    ("[spectra]\nsnr_min = inf\n", "spectra.snr_min"),
    ("[montecarlo]\nclip_sigma = 0.0\n", "montecarlo.clip_sigma"),
    ("[montecarlo]\nclip_sigma = nan\n", "montecarlo.clip_sigma"),
    ("[montecarlo]\nmin_fit_stars = 0\n", "montecarlo.min_fit_stars"),
    ("[galactic]\norbit_draws = 0\n", "galactic.orbit_draws"),
    ("[galactic]\norbit_steps = 1\n", "galactic.orbit_steps"),
    ("[galactic]\nr0_kpc = -8.0\n", "galactic.r0_kpc"),
    ("[combine]\nrv_var_pvalue = 1.5\n", "combine.rv_var_pvalue"),
    ("[params_qc]\nteff_min = 8000.0\n", "params_qc.teff_min"),
    ("[gradients]\nrgc_range_kpc = [18.0, 5.0]\n", "gradients.rgc_range_kpc"),
    ("[gradients]\nmcmc_walkers = 2\n", "gradients.mcmc_walkers"),
    ("[binaries]\nmin_p_close = 2.0\n", "binaries.min_p_close"),
    ("seed = -1\n", "seed"),
]


@pytest.mark.parametrize("text, key", CONFIG_CASES, ids=[c[0].split("\n")[-2] for c in CONFIG_CASES])
def test_config_value_outside_its_range(tiny, tmp_path, capsys, text, key):
    path = config_file(tmp_path, text)
    out = tmp_path / "out"
    before = snapshot(out)
    run = ocvo(ingest_argv(tiny, out, config=path), capsys)
    assert_stops(run, [str(path), repr(key)], before, out)
    assert "allowed range" in run.stderr or "increasing" in run.stderr \
        or "smaller than" in run.stderr


def test_negative_seed_on_the_command_line(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    run = ocvo(ingest_argv(tiny, out, extra=("--seed", "-5")), capsys)
    assert_stops(run, ["'seed'", "-5"], None if False else snapshot(out), out)


# ---------------------------------------------------------------- cluster values (stop)

def _set(column: str, value, row: int = 1) -> Callable[[Table], None]:
    def change(table: Table) -> None:
        table[column] = np.asarray(table[column], float) if np.asarray(
            table[column]).dtype.kind in "iu" and not float(value).is_integer() else table[column]
        table[column][row] = value
    return change


CLUSTER_CASES = [("DE_ICRS", 95.0), ("RA_ICRS", 658.0), ("RA_ICRS", -200.0), ("RA_ICRS", np.nan),
                 ("DE_ICRS", np.inf), ("pmRA", np.inf), ("RV", 1e30), ("dist50", -100.0),
                 ("r50", -0.5), ("Plx", -np.inf), ("e_RV", -1.0)]


@pytest.mark.parametrize("column, value", CLUSTER_CASES, ids=[f"{c}={v}" for c, v in CLUSTER_CASES])
def test_impossible_cluster_value_stops(tiny, tmp_path, capsys, column, value):
    """A cluster with NaN, inf or |dec| > 90 must not reach galpy: it stops at read time."""
    path = variant(tiny, tmp_path, "clusters", _set(column, value))
    out = tmp_path / "out"
    before = snapshot(out)
    assert_stops(ocvo(ingest_argv(tiny, out, clusters=path), capsys),
                 [str(path), repr(column), "row 2"], before, out)


def test_signed_ra_is_the_same_position_wrapped_not_refused(tiny, tmp_path):
    """Real tables write RA near 0h as a signed longitude (CANTAT2020.csv: NGC 7789 at
    -0.666 deg): read as ra + 360, the cluster is kept at its position."""
    from ingest.pipeline.s1_inputs import readers

    path = variant(tiny, tmp_path, "clusters", _set("RA_ICRS", -0.666))
    clusters = readers.read_clusters(path, "hunt2024")
    assert clusters["ra"].iloc[1] == pytest.approx(359.334, abs=1e-9)


# ---------------------------------------------------------------- duplicate inputs (stop)

def _same_path(tmp: Path, tiny: Tiny) -> list[Path]:
    return [tiny.path("mrs"), tiny.path("mrs")]


def _other_spelling(tmp: Path, tiny: Tiny) -> list[Path]:
    return [tiny.path("mrs"), tiny.base / ".." / tiny.base.name / "mrs.fits"]


def _hard_link(tmp: Path, tiny: Tiny) -> list[Path]:
    link = tmp / "linked.fits"
    os.link(tiny.path("mrs"), link)
    return [tiny.path("mrs"), link]


def _copy(tmp: Path, tiny: Tiny) -> list[Path]:
    copy = tmp / "copy-of-mrs.fits"
    shutil.copy(tiny.path("mrs"), copy)
    return [tiny.path("mrs"), copy]


@pytest.mark.parametrize("make", [_same_path, _other_spelling, _hard_link, _copy],
                         ids=lambda f: f.__name__.strip("_"))
def test_the_same_spectra_file_twice_stops(tiny, tmp_path, capsys, make):
    spectra = make(tmp_path, tiny)
    out = tmp_path / "out"
    before = snapshot(out)
    assert_stops(ocvo(ingest_argv(tiny, out, spectra=spectra), capsys),
                 [str(spectra[1]), "given twice"], before, out)


# ---------------------------------------------------------------- empty catalogues (stop)

def _all_below_cut(tmp: Path, tiny: Tiny) -> tuple[dict, list[str]]:
    path = variant(tiny, tmp, "members", lambda t: t.__setitem__("Prob", 0.3))
    return {"members": path}, [str(path), "members.prob_min = 0.5", "members_below_prob_min"]


def _cut_above_every_member(tmp: Path, tiny: Tiny) -> tuple[dict, list[str]]:
    return ({"config": config_file(tmp, "[members]\nprob_min = 0.99999\n")},
            [str(tiny.path("members")), "members.prob_min = 0.99999"])


def _spectra_match_nothing(tmp: Path, tiny: Tiny) -> tuple[dict, list[str]]:
    def move(table: Table) -> None:
        table["dec"] = -80.0
        table["gaia_source_id"] = -9999
    path = variant(tiny, tmp, "mrs", move)
    return {"spectra": [path]}, [str(path), "0 clusters", "none of"]


def _no_spectrum_passes_qc(tmp: Path, tiny: Tiny) -> tuple[dict, list[str]]:
    return ({"config": config_file(tmp, "[spectra]\nsnr_min = 100000.0\n")},
            [str(tiny.path("mrs")), "quality control", "low_snr"])


def _every_rv_flag_bad(tmp: Path, tiny: Tiny) -> tuple[dict, list[str]]:
    path = variant(tiny, tmp, "mrs", lambda t: t.__setitem__("rv_br_flag", 1))
    return {"spectra": [path]}, [str(path), "quality control", "rv_flag"]


def _every_rv_missing(tmp: Path, tiny: Tiny) -> tuple[dict, list[str]]:
    path = variant(tiny, tmp, "mrs", lambda t: t.__setitem__("rv_br0_err", 0.0))
    return {"spectra": [path]}, [str(path), "quality control", "bad_rv"]


def _only_rv_variable_stars(tmp: Path, tiny: Tiny) -> tuple[dict, list[str]]:
    """Every star has several epochs 100 km/s apart: all RV-variable, so no FLAG=1."""
    def binaries(table: Table) -> None:
        ids, counts = np.unique(table["gaia_source_id"], return_counts=True)
        keep = np.isin(table["gaia_source_id"], ids[counts >= 2])
        table.remove_rows(np.flatnonzero(~keep))
        order = np.lexsort((np.arange(len(table)), table["gaia_source_id"]))
        rank = np.empty(len(table), int)
        rank[order] = np.arange(len(table))      # alternate within each star's epochs
        table["rv_br0"] = table["rv_br0"] + np.where(rank % 2, 50.0, -50.0)
        table["snr"], table["rv_br_flag"] = 100.0, 0
    path = variant(tiny, tmp, "mrs", binaries)
    config = config_file(tmp, "[combine]\nrv_err_scale_auto = false\n")
    return {"spectra": [path], "config": config}, [str(path), "FLAG=1", "no cluster RV"]


def _no_member_with_a_position(tmp: Path, tiny: Tiny) -> tuple[dict, list[str]]:
    path = variant(tiny, tmp, "members", lambda t: t.__setitem__("DE_ICRS", 95.0))
    return {"members": path}, [str(path), "members_position_out_of_range", "0 clusters"]


EMPTY_CASES = [_all_below_cut, _cut_above_every_member, _spectra_match_nothing,
               _no_spectrum_passes_qc, _every_rv_flag_bad, _every_rv_missing,
               _only_rv_variable_stars, _no_member_with_a_position]


@pytest.mark.parametrize("make", EMPTY_CASES, ids=lambda f: f.__name__.strip("_"))
def test_a_catalogue_that_would_be_empty_stops(tiny, tmp_path, capsys, make):
    inputs, names = make(tmp_path, tiny)
    out = tmp_path / "out"
    earlier_output(out)                 # a served catalogue's source is never replaced
    before = snapshot(out)
    run = ocvo(ingest_argv(tiny, out, **inputs, extra=("--force",)), capsys)
    assert_stops(run, names, before, out)


# ---------------------------------------------------------------- rejected rows and values

MEMBER_CASES = [("DE_ICRS", 95.0, "members_position_out_of_range"),
                ("RA_ICRS", 658.0, "members_position_out_of_range"),
                ("RA_ICRS", -185.0, "members_position_out_of_range"),
                ("Prob", 1.5, "members_prob_out_of_range"),
                ("Prob", -0.3, "members_prob_out_of_range"),
                ("Prob", np.inf, "members_prob_out_of_range"),
                ("pmRA", np.inf, "members_value_invalid"),
                ("e_Plx", -1.0, "members_value_invalid")]
SPECTRUM_CASES = [("dec", 95.0, "spectra_position_out_of_range"),
                  ("ra", 658.0, "spectra_position_out_of_range"),
                  ("rv_br0", 1e30, "spectra_value_invalid"),
                  ("rv_br0", np.inf, "spectra_value_invalid"),
                  ("rv_br0", -np.inf, "spectra_value_invalid"),
                  ("rv_br0", -2000.0, "spectra_value_invalid"),
                  ("rv_br0_err", 0.0, "spectra_error_invalid"),
                  ("rv_br0_err", -1.0, "spectra_error_invalid"),
                  ("rv_br0_err", np.inf, "spectra_error_invalid"),
                  ("snr", -5.0, "spectra_snr_invalid"),
                  ("snr", np.inf, "spectra_snr_invalid"),
                  ("teff_cnn", np.inf, "spectra_value_invalid"),
                  ("teff_cnn", -100.0, "spectra_value_invalid"),
                  ("feh_cnn", 1e5, "spectra_value_invalid"),
                  ("mg_fe", np.inf, "spectra_value_invalid")]
ROW = 1


def read(tiny: Tiny, members: Path | None = None, spectra: list[Path] | None = None):
    from ingest.core import config as config_module

    rejections: dict[str, int] = {}
    details: list[dict] = []
    entries = [(p, None) for p in spectra or [tiny.path("mrs")]]
    tables = load.read_inputs(tiny.path("clusters"), members or tiny.path("members"),
                                  entries, "hunt2024", None,
                                  config_module.settings(config_module.load()),
                                  rejections, details)
    return tables, rejections, details


def assert_described(details: list[dict], path: Path, column: str, key: str) -> None:
    (detail,) = [d for d in details if d["key"] == key]
    assert detail["file"] == str(path) and column in detail["column"]
    assert detail["count"] == 1 and detail["first_row"] == ROW + 1


@pytest.mark.parametrize("column, value, key", MEMBER_CASES,
                         ids=[f"{c}={v}" for c, v, _ in MEMBER_CASES])
def test_impossible_member_value_is_rejected_and_counted(tiny, tmp_path, column, value, key):
    path = variant(tiny, tmp_path, "members", _set(column, value, ROW))
    (_, members, _), rejections, details = read(tiny, members=path)
    assert rejections[key] == 1
    assert_described(details, path, column, key)
    if key == "members_value_invalid":
        assert not np.isinf(members.select_dtypes("number").to_numpy(float)).any()
        assert (members[["pmra_err", "pmdec_err", "plx_err"]].fillna(0) >= 0).all().all()
    else:
        assert members["prob"].between(0, 1).all() and members["dec"].abs().le(90).all()
        assert members["ra"].between(0, 360, inclusive="left").all()


@pytest.mark.parametrize("column, value, key", SPECTRUM_CASES,
                         ids=[f"{c}={v}" for c, v, _ in SPECTRUM_CASES])
def test_impossible_spectrum_value_is_rejected_and_counted(tiny, tmp_path, column, value, key):
    path = variant(tiny, tmp_path, "mrs", _set(column, value, ROW))
    obsid = int(tiny.mrs["obsid"][ROW])
    (_, _, spectra), rejections, details = read(tiny, spectra=[path])
    assert rejections[key] == 1
    assert_described(details, path, column, key)
    row = spectra[spectra["obsid"] == obsid]
    if key in ("spectra_position_out_of_range", "spectra_snr_invalid"):
        assert row.empty                                    # the row is dropped
    else:
        assert len(row) == 1
        field = {"rv_br0": "rv", "rv_br0_err": "rv", "teff_cnn": "teff", "feh_cnn": "feh",
                 "mg_fe": "mg_fe"}[column]
        assert row[[field, f"{field}_err"]].isna().all(axis=None)   # value and error nulled
    numbers = spectra.select_dtypes("number").to_numpy(float)
    assert not np.isinf(numbers).any() and not (spectra["rv"].abs() >= 1000).any()


def test_duplicate_spectra_across_files_are_dropped_naming_both(tiny, tmp_path):
    overlap = tiny.mrs[:10].copy()
    overlap["rv_br0"] = overlap["rv_br0"] + 0.1     # another release: not a byte-identical file
    second = tmp_path / "mrs_next_release.fits"
    overlap.write(second)
    (_, _, spectra), rejections, details = read(tiny, spectra=[tiny.path("mrs"), second])
    assert rejections["spectra_duplicate_obsid"] == 10
    (detail,) = [d for d in details if d["key"] == "spectra_duplicate_obsid"]
    assert detail["file"] == str(second) and str(tiny.path("mrs")) in detail["reason"]
    (_, _, once), _, _ = read(tiny, spectra=[tiny.path("mrs")])
    assert spectra["obsid"].is_unique and len(spectra) == len(once)


def test_end_to_end_rejected_values_are_printed_recorded_and_never_published(
        tiny, tmp_path, capsys):
    """One run through the command with the reported values at once: exit 0, every
    rejection printed and in the manifest with file and column, none of them published."""
    def members(table: Table) -> None:
        table["Prob"][1], table["Prob"][2], table["DE_ICRS"][3] = 1.5, -0.3, 95.0

    def spectra(table: Table) -> None:
        table["rv_br0"][1], table["rv_br0"][2], table["dec"][3] = 1e30, np.inf, 95.0
        table["ra"][4], table["snr"][5] = 658.0, -5.0

    member_path = variant(tiny, tmp_path, "members", members)
    spectra_path = variant(tiny, tmp_path, "mrs", spectra)
    second = tmp_path / "mrs_overlap.fits"
    tiny.mrs[10:20].write(second)
    out = tmp_path / "out"
    run = ocvo(ingest_argv(tiny, out, members=member_path, spectra=[spectra_path, second]),
               capsys)
    assert run.code == 0, run.stderr
    record = manifest.read(out)
    expected = {"members_prob_out_of_range": 2, "members_position_out_of_range": 1,
                "spectra_value_invalid": 2, "spectra_position_out_of_range": 2,
                "spectra_snr_invalid": 1, "spectra_duplicate_obsid": 10}
    assert {k: record["rejections"][k] for k in expected} == expected
    described = {(Path(d["file"]).name, d["column"]) for d in record["rejected_values"]}
    assert {("members_bad.fits", "Prob"), ("mrs_bad.fits", "rv_br0"), ("mrs_bad.fits", "snr"),
            ("mrs_overlap.fits", "obsid")} <= described
    assert "rejected at read" in run.stdout and "column 'rv_br0'" in run.stdout
    spectrum = writers.read_table(out / "spectrum.fits")
    member = writers.read_table(out / "member.fits")
    assert not (np.abs(spectrum["rv"].to_numpy(float)) >= 1000).any()
    assert spectrum["dec"].abs().le(90).all() and spectrum["ra"].lt(360).all()
    assert (spectrum["snr"].dropna() >= 0).all()
    assert not spectrum.duplicated(["obsid", "member_key"]).any()
    assert member["prob"].between(0, 1).all() and member["dec"].abs().le(90).all()


def test_empty_directory_and_earlier_output_with_figures_are_written(tiny, tmp_path, capsys):
    """The two accepted targets besides a new directory: an empty one, and (with --force)
    an earlier ingest output with the figures ``ocvo figures`` drew into it."""
    empty = tmp_path / "empty"
    empty.mkdir()
    assert ocvo(ingest_argv(tiny, empty), capsys).code == 0
    earlier = tmp_path / "earlier"
    earlier_output(earlier)
    (earlier / "figures" / "cluster").mkdir(parents=True)
    (earlier / "figures" / "cluster" / "x_rv.png").write_bytes(b"png")
    assert ocvo(ingest_argv(tiny, earlier, extra=("--force",)), capsys).code == 0
    assert manifest.read(earlier)["row_counts"] == manifest.read(empty)["row_counts"]
    assert not (earlier / "figures").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier", "empty"]
