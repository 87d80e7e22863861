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
import pwd
import re
import secrets
import shutil
import signal
import sys
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ingest.core.errors import ServiceError
from ingest.publication.site import defaultmeta_text, load_site, marking_stream, tap_metadata_stream

from ingest.core.paths import PROJECT_ROOT as ROOT, RD_PATH as RD_FILE, RESDIR
RD_NAME = "ocvo"
RD_ID = f"{RD_NAME}/q"
DEFAULT_PG_PORT = 54330
DEFAULT_WEB_PORT = 18090
UAT_CACHE = "http:=2F=2Fwww.ivoa.net=2Frdf=2Fuat"
SETTINGS_FILE = "instance.json"
# DaCHS (and nginx in front of it) run as this user when ocvo runs as root: the
# system user Debian's gavodachs2-server creates for exactly this purpose.
SERVICE_USER = "gavo"
PASSFILE = "pgpass"
# Only password (SCRAM) logins, on the socket (in a 0700 directory) and on 127.0.0.1.
PG_HBA = ("# ocvo: no trust; passwords (SCRAM) only.  The superuser's is in STATE/pgpass\n"
          "# (mode 0600), DaCHS's roles' in STATE/dachs/etc/{feed,trustedquery,untrustedquery}.\n"
          "local all all scram-sha-256\n"
          "host all all 127.0.0.1/32 scram-sha-256\n")
# The directories a DaCHS server or command writes to; owned by SERVICE_USER.
DACHS_WRITABLE = ("etc", "logs", "state", "tmp", "cache", "web")
DACHS_PROFILES = ("dsn", "feed", "trustedquery", "untrustedquery")
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


# File descriptors every command inherits: the publication lock while it is held, so
# that commands outliving a killed publication (psql in mid-COPY) keep holding it.
INHERITED_FDS: set[int] = set()


def _run(command: list[str], *, env: dict[str, str] | None = None, check: bool = True,
         timeout: float | None = None, input: str | None = None) -> subprocess.CompletedProcess:
    """Run a command, capturing output; on failure raise ServiceError with its stderr."""
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout,
                            input=input, pass_fds=tuple(INHERITED_FDS))
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()[-2000:]
        raise ServiceError(f"{' '.join(command[:3])} ... failed (exit {result.returncode}):\n"
                           f"{detail}")
    return result


def write_atomically(path: Path, text: str) -> None:
    """Write a file so that a kill at any moment leaves the old or the new text, never a
    truncated one (a temporary file beside it, then a rename)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    if path.exists():
        shutil.copymode(path, temporary)
        stat = path.stat()
        if os.geteuid() == 0:
            os.chown(temporary, stat.st_uid, stat.st_gid)
    temporary.rename(path)


def service_user() -> str | None:
    """The user DaCHS and nginx run as: SERVICE_USER when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise ServiceError(f"no user {SERVICE_USER!r}: DaCHS must not run as root, and Debian's "
                           "gavodachs2-server creates that user; run 'bin/ocvo setup'") from None
    return SERVICE_USER


def _alive(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _orphaned_backends(data_dir: Path) -> list[int]:
    """PostgreSQL processes still working in data_dir (their cwd) after their postmaster died."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.readlink(proc / "cwd") == str(data_dir.resolve()) and _alive(int(proc.name)):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


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

    @property
    def passfile(self) -> Path:
        """The superuser's password as a libpq password file (mode 0600)."""
        return self.state / PASSFILE

    # ------------------------------------------------------------- commands
    def _as_postgres(self, command: list[str]) -> list[str]:
        """initdb and pg_ctl refuse root: run them as the postgres user when we are root."""
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command

    def as_service_user(self, command: list[str]) -> list[str]:
        """DaCHS and nginx never run as root: as root, run them as SERVICE_USER."""
        if os.geteuid() != 0:
            return command
        service_user()
        return ["runuser", "-u", SERVICE_USER, "--", *command]

    def superuser_env(self) -> dict[str, str]:
        """Environment for psql/createdb as the database superuser (its password file)."""
        return {**os.environ, "PGPASSFILE": str(self.passfile)}

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
        server modules, imported first by dachs_serve.py, would otherwise miss.  It
        runs as root (it needs the database superuser's password to
        create DaCHS's roles); every other command runs as the service user with
        DaCHS's own, less privileged roles."""
        if args[:1] == ("init",):
            env = {**self.dachs_env(), "PGPASSFILE": str(self.passfile)}
            return _run(["dachs", *args], env=env, check=check, timeout=timeout)
        command = self.as_service_user([DACHS_PYTHON, str(DACHS_SERVE), "dachs", *args])
        return _run(command, env=self.dachs_env(), check=check, timeout=timeout)

    def psql(self, *args: str, database: str = "gavo",
             input: str | None = None) -> subprocess.CompletedProcess:
        """Run psql as postgres (on DaCHS's database by default), stopping at the first error."""
        return _run(["psql", "-X", "-q", "-w", "-h", "127.0.0.1", "-p", str(self.pg_port),
                     "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", *args],
                    env=self.superuser_env(), input=input)

    def query_value(self, sql: str, database: str = "gavo") -> str:
        """The single value ``sql`` returns, as text ('' for no row)."""
        return self.psql("-A", "-t", "-c", sql, database=database).stdout.strip()

    # ------------------------------------------------------------- database
    def db_running(self) -> bool:
        if not (self.pg_data / "PG_VERSION").exists():
            return False
        # pg_ctl status takes a killed postmaster left as a zombie (no process reaps it
        # in some containers) for a running server: look at the process first.
        try:
            postmaster = int((self.pg_data / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return False
        if not _alive(postmaster):
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

    def _password(self) -> str:
        """The superuser's password, generated (mode 0600) on first use."""
        self.state.mkdir(parents=True, exist_ok=True)
        if not self.passfile.exists():
            password = secrets.token_urlsafe(32)
            fd = os.open(self.passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(f"127.0.0.1:*:*:postgres:{password}\n")
        os.chmod(self.passfile, 0o600)
        return self.passfile.read_text().strip().rsplit(":", 1)[1]

    def _initdb(self) -> None:
        self.pg_dir.mkdir(parents=True, exist_ok=True)
        self._check_traversable()
        if os.geteuid() == 0:
            shutil.chown(self.pg_dir, "postgres", "postgres")
        os.chmod(self.pg_dir, 0o700)
        pwfile = self.pg_dir / "initdb.pw"  # inside the 0700 directory, removed at once
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self._password() + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        try:
            _run(self._as_postgres([str(_pg_bindir() / "initdb"), "-D", str(self.pg_data),
                                    "-U", "postgres", "--auth=scram-sha-256",
                                    f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8"]))
        finally:
            pwfile.unlink(missing_ok=True)

    def _hba_trusts(self) -> bool:
        hba = self.pg_data / "pg_hba.conf"
        return any(line.split()[-1:] == ["trust"] for line in hba.read_text().splitlines()
                   if line.strip() and not line.lstrip().startswith("#"))

    def _lock(self) -> None:
        """An instance made before passwords (pg_hba 'trust'): set one, then require it."""
        if not self._hba_trusts():
            return
        password = self._password()
        _run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres",
              "-d", "postgres", "-v", "ON_ERROR_STOP=1"],
             input=f"ALTER ROLE postgres PASSWORD '{password}';\n")
        write_atomically(self.pg_data / "pg_hba.conf", PG_HBA)
        _run(self._as_postgres([str(_pg_bindir() / "pg_ctl"), "-D", str(self.pg_data),
                                "reload"]))

    def _clear_stale_postmaster(self, grace: float = 3) -> None:
        """After a kill -9 of PostgreSQL: end its orphaned backends, drop its pid file.

        Idle backends notice their postmaster's death within a second or so;
        one busy with a long query does not, and while any lives the shared
        memory is in use and a new postmaster refuses to start.  Without a
        postmaster they can serve nothing new, so after a short grace they
        are killed."""
        lock = self.pg_data / "postmaster.pid"
        try:
            pid = int(lock.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return
        if _alive(pid):
            return
        deadline = time.monotonic() + grace
        while _orphaned_backends(self.pg_data) and time.monotonic() < deadline:
            time.sleep(0.2)
        for orphan in _orphaned_backends(self.pg_data):
            _terminate(orphan, signal.SIGKILL)
        lock.unlink(missing_ok=True)
        # The socket's lock file names the dead postmaster too; PostgreSQL removes a stale
        # one itself, but takes an unreaped zombie's pid for a live server and refuses.
        for socket_lock in self.pg_dir.glob(f".s.PGSQL.{self.pg_port}.lock"):
            socket_lock.unlink(missing_ok=True)

    def start_db(self) -> None:
        """Start PostgreSQL (initialising the cluster on first use) on 127.0.0.1 only."""
        if not (self.pg_data / "PG_VERSION").exists():
            self._initdb()
        self._password()
        if not self.db_running():
            self._clear_stale_postmaster()
            # client_connection_check_interval: a query whose client went away (a
            # killed async worker) is ended within a second, not at its timeout.
            options = (f"-p {self.pg_port} -k {self.pg_dir} -c listen_addresses=127.0.0.1 "
                       "-c client_connection_check_interval=1s")
            _run(self._as_postgres([str(_pg_bindir() / "pg_ctl"), "-D", str(self.pg_data),
                                    "-l", str(self.pg_dir / "server.log"), "-w", "-t", "60",
                                    "start", "-o", options]))
        self._lock()

    def stop_db(self) -> None:
        if self.db_running():
            _run(self._as_postgres([str(_pg_bindir() / "pg_ctl"), "-D", str(self.pg_data),
                                    "-m", "fast", "-w", "stop"]))

    # ------------------------------------------------------------- DaCHS
    def _write_settings(self) -> None:
        """gavo.rc for this instance; rewritten each time so port or site changes take effect."""
        group = service_user() or grp.getgrgid(os.getegid()).gr_name
        site = load_site()
        text = (f"[general]\nrootDir: {self.dachs_root}\ngroup: {group}\n"
                f"[web]\nbindAddress: 127.0.0.1\nserverPort: {self.web_port}\n"
                f"serverURL: {site.server_url(self.web_port)}\nuser:\nsitename: {site.name}\n"
                f"[ivoa]\nauthority: {site.authority}\n")
        self.state.mkdir(parents=True, exist_ok=True)
        write_atomically(self.settings_file, text)
        write_atomically(self.state / SETTINGS_FILE,
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
            from ingest.publication.versions import debian_version

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
            write_atomically(created, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()))
        write_atomically(etc / "defaultmeta.txt",
                         defaultmeta_text(site, site.server_url(self.web_port),
                                          created.read_text()))
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
        write_atomically(etc / "userconfig.rd", text)

    def init(self) -> None:
        """Make the instance usable (idempotent): database, DaCHS tree, UAT cache, RD link."""
        self._write_settings()
        self.start_db()
        if self.query_value("SELECT 1 FROM pg_database WHERE datname = 'gavo'",
                            database="postgres") != "1":
            _run(["createdb", "-w", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres",
                  "-T", "template0", "-E", "UTF8", "gavo"], env=self.superuser_env())
        self._ensure_pgsphere()
        if self._dachs_initialised():
            self.dachs("init", "--nodb")
        else:
            self.dachs("init", "-d", self.dsn)
        self._hand_dachs_tree_to_service_user()
        # Offline, DaCHS cannot fetch the UAT: seed its cache with the subjects the RD uses.
        shutil.copyfile(RESDIR / "uat-stub.json", self.dachs_root / "cache" / UAT_CACHE)
        self._link_resdir()
        self.write_site_metadata(self.served_simulated())

    def _hand_dachs_tree_to_service_user(self) -> None:
        """DaCHS's writable directories to the service user; its role passwords 0600.

        ``dachs init`` (run as root, it needs the superuser) leaves them to
        root; the server and every later ``dachs`` command run as SERVICE_USER.
        inputs/ stays as it is: data/ holds hard links to ingest outputs."""
        user = service_user()
        for name in DACHS_PROFILES:
            profile = self.dachs_root / "etc" / name
            if profile.exists():
                os.chmod(profile, 0o600)
        if user is None:
            return
        for name in DACHS_WRITABLE:
            top = self.dachs_root / name
            if not top.exists():
                continue
            for path in [top, *top.rglob("*")]:
                if not path.is_symlink():
                    shutil.chown(path, user, user)

    # ------------------------------------------------------------- web server
    @property
    def web_dir(self) -> Path:
        """nginx's configuration, pid, log and buffers, and the record of the web processes."""
        return self.state / "web"

    @property
    def _workers_file(self) -> Path:
        return self.web_dir / "workers.json"

    def _dachs_pid_file(self, port: int) -> Path:
        return self.dachs_root / "state" / f"web-{port}.pid"

    def _recorded_ports(self) -> list[int]:
        """The loopback ports of the DaCHS processes started last (none recorded: web_port)."""
        try:
            return [int(p) for p in json.loads(self._workers_file.read_text())["dachs_ports"]]
        except (FileNotFoundError, ValueError, KeyError):
            return [self.web_port]

    def dachs_pids(self) -> dict[int, int | None]:
        """Port -> pid of each DaCHS process of the current arrangement (None: not running)."""
        return {port: _live_pid(self._dachs_pid_file(port)) for port in self._recorded_ports()}

    def nginx_pid(self) -> int | None:
        return _live_pid(self.web_dir / "nginx.pid")

    def web_answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.tap_url}/availability", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def _start_dachs(self, port: int) -> None:
        """One DaCHS server process (daemonised by DaCHS) on 127.0.0.1:port."""
        self._dachs_pid_file(port).unlink(missing_ok=True)
        _run(self.as_service_user([DACHS_PYTHON, str(DACHS_SERVE), RD_ID, "start"]),
             env={**self.dachs_env(), "OCVO_DACHS_PORT": str(port)})

    def _start_nginx(self, ports: list[int]) -> None:
        """nginx (Debian's) on web_port, spreading requests over the DaCHS processes."""
        from ingest.publication.proxy import nginx_config

        (self.web_dir / "tmp").mkdir(parents=True, exist_ok=True)
        config = self.web_dir / "nginx.conf"
        config.write_text(nginx_config(self.web_dir, self.web_port, ports))
        user = service_user()
        if user is not None:
            for path in [self.web_dir, *self.web_dir.rglob("*")]:
                shutil.chown(path, user, user)
        _run(self.as_service_user(["nginx", "-p", str(self.web_dir), "-e",
                                   str(self.web_dir / "nginx-error.log"), "-c", str(config)]))

    def serve(self, timeout: float = 60, workers: int | None = None) -> None:
        """Start the web processes in the background and wait until TAP answers.

        ``workers`` DaCHS processes (default OCVO_WEB_WORKERS, else cores + 1):
        one listens on web_port itself; several listen on free loopback
        ports behind nginx on web_port.  Whatever a crash left (dead pids,
        pid files, a half-started arrangement) is cleaned first, so this
        works at the first try."""
        self.init()
        workers = workers or default_workers()
        if self._arrangement_runs(workers):
            return
        self._stop_web()
        ports = [self.web_port] if workers == 1 else [_free_port() for _ in range(workers)]
        self.web_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(self._workers_file, json.dumps({"dachs_ports": ports}) + "\n")
        for port in ports:
            self._start_dachs(port)
        if workers > 1:
            self._start_nginx(ports)
        deadline = time.monotonic() + timeout
        urls = [f"http://127.0.0.1:{port}/tap" for port in ports] + [self.tap_url]
        while not all(_answers(url) for url in urls):
            if time.monotonic() > deadline:
                log = self.dachs_root / "logs" / "dcErrors"
                raise ServiceError(f"DaCHS did not answer on {self.url} within {timeout:.0f} s; "
                                   f"see {log} and {self.web_dir / 'nginx-error.log'}")
            time.sleep(0.2)

    def _arrangement_runs(self, workers: int) -> bool:
        pids = self.dachs_pids()
        proxied = workers > 1
        return (len(pids) == workers and all(pids.values())
                and (self.nginx_pid() is not None) == proxied and self.web_answers())

    def reload(self) -> None:
        """Make running servers re-read the RD and its metadata (after a publication)."""
        for pid in self.dachs_pids().values():
            if pid is not None:
                os.kill(pid, signal.SIGHUP)  # what 'dachs serve reload' sends

    def _stop_web(self) -> None:
        """Stop nginx and every DaCHS process of this instance; remove their pid files."""
        pid_files = [self.web_dir / "nginx.pid",
                     *sorted((self.dachs_root / "state").glob("web*.pid"))]
        for pid_file in pid_files:
            pid = _live_pid(pid_file)
            if pid is not None:
                _terminate(pid, signal.SIGQUIT if pid_file.name == "nginx.pid"
                           else signal.SIGTERM)
            pid_file.unlink(missing_ok=True)
        # nginx workers outlive a master killed with -9 and keep the port.
        for pid in _listeners(self.web_port):
            if _is_web_process(pid):
                _terminate(pid, signal.SIGTERM)

    def stop(self) -> None:
        """Stop the web processes and PostgreSQL (each only if running)."""
        self._stop_web()
        self.stop_db()

    # ------------------------------------------------------------- health
    def health(self) -> dict[str, tuple[bool, str]]:
        """Each component -> (up, what the probe saw): a real query, not a pid check."""
        components = {"postgres": self._probe_postgres()}
        ports = self._recorded_ports()
        for port, pid in self.dachs_pids().items():
            components[f"dachs :{port}"] = (_probe_tap(f"http://127.0.0.1:{port}/tap")
                                            if pid is not None else (False, "not running"))
        if ports != [self.web_port]:
            components[f"nginx :{self.web_port}"] = (
                _probe_tap(self.tap_url) if self.nginx_pid() is not None
                else (False, "not running"))
        return components

    def _probe_postgres(self) -> tuple[bool, str]:
        try:
            answer = self.query_value("SELECT 1", database="postgres")
        except ServiceError as exc:
            return False, str(exc).splitlines()[-1][:200]
        return answer == "1", "SELECT 1 answered" if answer == "1" else f"answered {answer!r}"

    def status(self) -> dict[str, object]:
        """What runs, where, on which versions, and each component's health."""
        from ingest.publication.versions import stack_versions

        components = self.health()
        running = components["postgres"][0]
        return {"state": str(self.state), "postgres": running, "pg_port": self.pg_port,
                "dachs_pids": self.dachs_pids(), "nginx_pid": self.nginx_pid(),
                "web_answers": self.web_answers(), "tap_url": self.tap_url,
                "components": components, "healthy": all(up for up, _ in components.values()),
                **stack_versions(self.server_versions() if running else None)}


def default_workers() -> int:
    """OCVO_WEB_WORKERS, else one DaCHS process more than there are cores.

    A DaCHS process waits for PostgreSQL and the network part of the time; with
    one process per core plus one the cores stay busy (measured on 2 cores: 3
    processes gave 1.68x the single-process throughput, 2 gave 1.57x)."""
    return max(1, int(os.environ.get("OCVO_WEB_WORKERS") or (os.cpu_count() or 1) + 1))


def _live_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def _terminate(pid: int, sig: int, timeout: float = 15) -> None:
    """Signal a process and wait for it to exit; SIGKILL if it does not."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
        time.sleep(0.05)


def _listeners(port: int) -> list[int]:
    """Processes with a socket listening on 127.0.0.1:port (Linux /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp",):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":
                inodes.add(fields[9])
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or not inodes:
            continue
        try:
            links = {os.readlink(fd) for fd in (proc / "fd").iterdir()}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            found.append(int(proc.name))
    return found


def _is_web_process(pid: int) -> bool:
    """An nginx or a DaCHS server process (what this module starts), by its command line."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return arguments.startswith(b"nginx") or DACHS_SERVE.name.encode() in arguments


def _free_port() -> int:
    """A loopback port nobody listens on now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(tap_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{tap_url}/availability", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


PROBE_QUERY = "SELECT TOP 1 table_name FROM TAP_SCHEMA.tables"


def _probe_tap(tap_url: str) -> tuple[bool, str]:
    """A TAP sync query through tap_url: the web process and its database both answer."""
    from urllib.parse import urlencode

    query = urlencode({"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": PROBE_QUERY})
    try:
        with urllib.request.urlopen(f"{tap_url}/sync?{query}", timeout=10) as response:
            body = response.read().decode("utf-8", "replace")
    except OSError as exc:
        return False, f"TAP query failed: {exc}"
    if 'name="QUERY_STATUS" value="OK"' in body or "<TABLEDATA>" in body:
        return True, "TAP query answered"
    match = re.search(r'QUERY_STATUS" value="ERROR"[^>]*>(.*?)</INFO>', body, re.S)
    return False, f"TAP query error: {(match.group(1) if match else body)[:200].strip()}"
