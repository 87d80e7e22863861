"""A private PostgreSQL cluster + GAVO DaCHS server on 127.0.0.1, all state in one directory.

Why a private instance: DaCHS roles are cluster-wide and ``dachs init`` only
works on a fresh database, so the service (and each test session) gets its
own PostgreSQL cluster and DaCHS root under a state directory, by default
``<repo>/.state`` (``OCVO_STATE`` overrides it).  Ports come from
``OCVO_PG_PORT`` / ``OCVO_WEB_PORT`` or the values recorded at the first
``init``, so ``serve``, ``stop`` and ``status`` always address the same
instance.  The recipe and its pitfalls are in ../shared/dachs/NOTES.md.
"""
from __future__ import annotations

import glob
import grp
import json
import os
import re
import shutil
import sys
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import ServiceError
from .site import defaultmeta_text, load_site, marking_stream, tap_metadata_stream

ROOT = Path(__file__).resolve().parents[2]
RD_FILE = ROOT / "rd.xml"
RESDIR = ROOT / "resdir"
RD_NAME = "ocvo"
RD_ID = f"{RD_NAME}/q"
DEFAULT_PG_PORT = 54330
DEFAULT_WEB_PORT = 18090
UAT_CACHE = "http:=2F=2Fwww.ivoa.net=2Frdf=2Fuat"
SETTINGS_FILE = "instance.json"
DACHS_PYTHON = "/usr/bin/python3"
DACHS_SERVE = Path(__file__).with_name("dachs_serve.py")


def _pg_bindir() -> Path:
    """The newest installed PostgreSQL server binaries (Debian layout)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name))
    if not found:
        raise ServiceError("no PostgreSQL server found under /usr/lib/postgresql; "
                           "run 'bin/ocvo setup'")
    return Path(found[-1]).parent


def _run(command: list[str], *, env: dict[str, str] | None = None,
         check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run a command, capturing output; on failure raise ServiceError with its stderr."""
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()[-2000:]
        raise ServiceError(f"{' '.join(command[:3])} ... failed (exit {result.returncode}):\n"
                           f"{detail}")
    return result


@dataclass(frozen=True)
class Instance:
    """One private instance: its state directory and its two loopback ports."""

    state: Path
    pg_port: int
    web_port: int

    # ------------------------------------------------------------- layout
    @classmethod
    def from_env(cls) -> Instance:
        """The instance named by OCVO_STATE (default <repo>/.state) and the port settings."""
        state = Path(os.environ.get("OCVO_STATE", ROOT / ".state")).resolve()
        recorded = {}
        if (state / SETTINGS_FILE).exists():
            recorded = json.loads((state / SETTINGS_FILE).read_text())
        pg_port = os.environ.get("OCVO_PG_PORT") or recorded.get("pg_port", DEFAULT_PG_PORT)
        web_port = os.environ.get("OCVO_WEB_PORT") or recorded.get("web_port", DEFAULT_WEB_PORT)
        return cls(state, int(pg_port), int(web_port))

    @property
    def pg_dir(self) -> Path:
        return self.state / "pg"

    @property
    def pg_data(self) -> Path:
        return self.pg_dir / "data"

    @property
    def dachs_root(self) -> Path:
        return self.state / "dachs"

    @property
    def settings_file(self) -> Path:
        return self.state / "gavo.rc"

    @property
    def resdir(self) -> Path:
        """The RD's resource directory inside the DaCHS inputs tree."""
        return self.dachs_root / "inputs" / RD_NAME

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def tap_url(self) -> str:
        return f"{self.url}/tap"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.pg_port} dbname=gavo user=postgres"

    # ------------------------------------------------------------- commands
    def _as_postgres(self, command: list[str]) -> list[str]:
        """initdb and pg_ctl refuse root: run them as the postgres user when we are root."""
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command

    def dachs_env(self) -> dict[str, str]:
        """Environment for the ``dachs`` command: this instance, Debian's python, no venv."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        venv_bin = str(Path(sys.prefix) / "bin")
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "/usr/bin:/bin").split(os.pathsep)
                                      if p != venv_bin)
        env.update(GAVOSETTINGS=str(self.settings_file), GAVOCUSTOM="/nonexistent")
        return env

    def dachs(self, *args: str, check: bool = True,
              timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run ``dachs ARGS`` against this instance, with the project's DaCHS adaptations.

        ``dachs init`` runs as it is: it writes the database profiles that the adapted
        server modules, imported first by dachs_serve.py, would otherwise miss."""
        launcher = ["dachs"] if args[:1] == ("init",) else [DACHS_PYTHON, str(DACHS_SERVE),
                                                           "dachs"]
        return _run([*launcher, *args], env=self.dachs_env(), check=check, timeout=timeout)

    def psql(self, *args: str, database: str = "gavo") -> subprocess.CompletedProcess:
        """Run psql as postgres (on DaCHS's database by default), stopping at the first error."""
        return _run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(self.pg_port),
                     "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", *args])

    def query_value(self, sql: str, database: str = "gavo") -> str:
        """The single value ``sql`` returns, as text ('' for no row)."""
        return self.psql("-A", "-t", "-c", sql, database=database).stdout.strip()

    # ------------------------------------------------------------- database
    def db_running(self) -> bool:
        if not (self.pg_data / "PG_VERSION").exists():
            return False
        status = _run(self._as_postgres([str(_pg_bindir() / "pg_ctl"), "-D", str(self.pg_data),
                                         "status"]), check=False)
        return status.returncode == 0

    def _check_traversable(self) -> None:
        """postgres must reach the data directory: every parent needs o+x when we are root."""
        if os.geteuid() != 0:
            return
        for parent in [self.pg_dir, *self.pg_dir.parents]:
            if parent.exists() and not os.stat(parent).st_mode & 0o001:
                raise ServiceError(f"{parent} is not searchable by the postgres user "
                                   f"(mode {oct(os.stat(parent).st_mode & 0o777)}); "
                                   "choose an OCVO_STATE outside private directories")

    def _initdb(self) -> None:
        self.pg_dir.mkdir(parents=True, exist_ok=True)
        self._check_traversable()
        if os.geteuid() == 0:
            shutil.chown(self.pg_dir, "postgres", "postgres")
        os.chmod(self.pg_dir, 0o700)
        _run(self._as_postgres([str(_pg_bindir() / "initdb"), "-D", str(self.pg_data),
                                "-U", "postgres", "--auth=trust", "-E", "UTF8",
                                "--locale=C.UTF-8"]))

    def start_db(self) -> None:
        """Start PostgreSQL (initialising the cluster on first use) on 127.0.0.1 only."""
        if not (self.pg_data / "PG_VERSION").exists():
            self._initdb()
        if self.db_running():
            return
        options = f"-p {self.pg_port} -k {self.pg_dir} -c listen_addresses=127.0.0.1"
        _run(self._as_postgres([str(_pg_bindir() / "pg_ctl"), "-D", str(self.pg_data),
                                "-l", str(self.pg_dir / "server.log"), "-w", "-t", "60",
                                "start", "-o", options]))

    def stop_db(self) -> None:
        if self.db_running():
            _run(self._as_postgres([str(_pg_bindir() / "pg_ctl"), "-D", str(self.pg_data),
                                    "-m", "fast", "-w", "stop"]))

    # ------------------------------------------------------------- DaCHS
    def _write_settings(self) -> None:
        """gavo.rc for this instance; rewritten each time so port or site changes take effect."""
        group = grp.getgrgid(os.getegid()).gr_name
        site = load_site()
        text = (f"[general]\nrootDir: {self.dachs_root}\ngroup: {group}\n"
                f"[web]\nbindAddress: 127.0.0.1\nserverPort: {self.web_port}\n"
                f"serverURL: {site.server_url(self.web_port)}\nuser:\nsitename: {site.name}\n"
                f"[ivoa]\nauthority: {site.authority}\n")
        self.state.mkdir(parents=True, exist_ok=True)
        self.settings_file.write_text(text)
        (self.state / SETTINGS_FILE).write_text(
            json.dumps({"pg_port": self.pg_port, "web_port": self.web_port}) + "\n")

    def server_versions(self) -> dict[str, str | None]:
        """The running server's PostgreSQL version and its pg_sphere extension, if created."""
        try:
            extension = self.query_value(
                "SELECT extversion FROM pg_extension WHERE extname = 'pg_sphere'") or None
        except ServiceError:  # no database gavo yet
            extension = None
        return {"postgresql_server": self.query_value("SHOW server_version", database="postgres"),
                "pgsphere_extension": extension}

    def _ensure_pgsphere(self) -> None:
        """Create pg_sphere before ``dachs init`` does, so that a failure names its cause.

        DaCHS keeps an extension that already exists; inside ``dachs init`` a
        broken extension script would surface as a bare SQL error.
        """
        try:
            self.psql("-c", "CREATE EXTENSION IF NOT EXISTS pg_sphere")
        except ServiceError as exc:
            from .versions import debian_version

            server = self.query_value("SHOW server_version", database="postgres")
            package = debian_version("postgresql-15-pgsphere") or "not installed"
            raise ServiceError(
                f"cannot create the PostgreSQL extension pg_sphere in {self.pg_data} "
                f"(PostgreSQL {server}, pgSphere package {package}):\n{exc}\n"
                "Run 'bin/ocvo setup': it installs pgSphere and repairs its extension "
                "scripts for current PostgreSQL releases (docs/service.md, 'pgSphere "
                "repair').") from None

    def _dachs_initialised(self) -> bool:
        return self.query_value("SELECT 1 FROM pg_namespace WHERE nspname = 'dc'") == "1"

    def _link_resdir(self) -> None:
        """inputs/ocvo: q.rd -> the repository's rd.xml, resdir/* linked, data/ private."""
        self.resdir.mkdir(parents=True, exist_ok=True)
        links = {"q.rd": RD_FILE, **{p.name: p for p in RESDIR.iterdir()}}
        for name, target in links.items():
            link = self.resdir / name
            if link.is_symlink() and link.resolve() == target.resolve():
                continue
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(target)
        (self.resdir / "data").mkdir(exist_ok=True)

    def served_simulated(self) -> bool:
        """Whether the catalogue served now came from the simulator (data/publication.json)."""
        record = self.resdir / "data" / "publication.json"
        return bool(record.exists() and json.loads(record.read_text()).get("simulated_input"))

    def write_site_metadata(self, simulated: bool) -> None:
        """defaultmeta.txt and userconfig.rd from site.toml, SIMULATED marking if ``simulated``.

        userconfig.rd is DaCHS's default with our examples in /tap/examples,
        the TAP record's metadata and the ``ocvo-marking`` macros that rd.xml
        prefixes its title and descriptions with.
        """
        site = load_site()
        etc = self.dachs_root / "etc"
        created = self.state / "created"
        if not created.exists():
            created.write_text(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()))
        (etc / "defaultmeta.txt").write_text(
            defaultmeta_text(site, site.server_url(self.web_port), created.read_text()))
        text = self.dachs("admin", "dumpDF", "//userconfig").stdout
        replacements = {
            r'<STREAM id="tapexamples">.*?</STREAM>':
                f'<STREAM id="tapexamples"><FEED source="{RD_NAME}/examples#tapexamples"/>'
                '</STREAM>',
            r'<NXSTREAM id="tapdescription">.*?</NXSTREAM>':
                tap_metadata_stream(site, simulated) + "\n  " + marking_stream(simulated)}
        for pattern, replacement in replacements.items():
            text, found = re.subn(pattern, lambda _: replacement, text, flags=re.S)
            if found != 1:
                raise ServiceError(f"DaCHS's //userconfig has no {pattern.split()[1]} to replace")
        (etc / "userconfig.rd").write_text(text)

    def init(self) -> None:
        """Make the instance usable (idempotent): database, DaCHS tree, UAT cache, RD link."""
        self._write_settings()
        self.start_db()
        if self.query_value("SELECT 1 FROM pg_database WHERE datname = 'gavo'",
                            database="postgres") != "1":
            _run(["createdb", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres",
                  "-T", "template0", "-E", "UTF8", "gavo"])
        self._ensure_pgsphere()
        if self._dachs_initialised():
            self.dachs("init", "--nodb")
        else:
            self.dachs("init", "-d", self.dsn)
        # Offline, DaCHS cannot fetch the UAT: seed its cache with the subjects the RD uses.
        shutil.copyfile(RESDIR / "uat-stub.json", self.dachs_root / "cache" / UAT_CACHE)
        self._link_resdir()
        self.write_site_metadata(self.served_simulated())

    # ------------------------------------------------------------- web server
    @property
    def _web_pid_file(self) -> Path:
        return self.dachs_root / "state" / "web.pid"

    def web_pid(self) -> int | None:
        """The pid of a live DaCHS server of this instance, if any."""
        try:
            pid = int(self._web_pid_file.read_text().strip())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid

    def web_answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.tap_url}/availability", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def serve(self, timeout: float = 60) -> None:
        """Start the DaCHS server in the background and wait until TAP answers."""
        self.init()
        if self.web_pid() is None:
            _run([DACHS_PYTHON, str(DACHS_SERVE), RD_ID, "start"], env=self.dachs_env())
        deadline = time.monotonic() + timeout
        while not self.web_answers():
            if time.monotonic() > deadline:
                log = self.dachs_root / "logs" / "dcErrors"
                raise ServiceError(f"DaCHS did not answer on {self.url} within {timeout:.0f} s; "
                                   f"see {log}")
            time.sleep(0.2)

    def reload(self) -> None:
        """Make a running server re-read the RD and its metadata (after a publication)."""
        if self.web_pid() is not None:
            self.dachs("serve", "reload")

    def stop(self) -> None:
        """Stop the web server and PostgreSQL (each only if running)."""
        if self.web_pid() is not None:
            self.dachs("serve", "stop")
        self.stop_db()

    def status(self) -> dict[str, object]:
        """What runs, where, on which versions: for ``ocvo status`` and the tests."""
        from .versions import stack_versions

        running = self.db_running()
        return {"state": str(self.state), "postgres": running,
                "pg_port": self.pg_port, "web_pid": self.web_pid(),
                "web_answers": self.web_answers(), "tap_url": self.tap_url,
                **stack_versions(self.server_versions() if running else None)}
