"""Versions of the service stack: what a bug report or a publication record needs.

Why: the service's behaviour depends on a PostgreSQL minor release (its
commutator check broke Debian's pgSphere, see bin/repair-pgsphere), on the
pgSphere extension, DaCHS and STILTS from Debian, and on the ingest venv's
Python.  ``ocvo status`` prints them and each publication records them.
"""
from __future__ import annotations

import platform
import subprocess

#: Debian packages whose versions are reported, by the name shown to users.
DEBIAN_PACKAGES = {
    "postgresql_package": "postgresql-15",
    "pgsphere_package": "postgresql-15-pgsphere",
    "dachs": "gavodachs2-server",
    "stilts": "stilts",
}


def debian_version(package: str) -> str | None:
    """The installed version of a Debian package, None when it is not installed."""
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Version}", package],
                            capture_output=True, text=True)
    status, _, version = result.stdout.partition("\t")
    return version if result.returncode == 0 and status.endswith(" installed") else None


def stack_versions(server: dict[str, str | None] | None = None) -> dict[str, str | None]:
    """Debian package versions, the ingest venv's Python and, if given, the live server's.

    ``server`` is what :meth:`Instance.server_versions` read from a running
    database (PostgreSQL server and pg_sphere extension versions).
    """
    found: dict[str, str | None] = {name: debian_version(package)
                                    for name, package in DEBIAN_PACKAGES.items()}
    found["ingest_python"] = platform.python_version()
    found.update(server or {})
    return found
