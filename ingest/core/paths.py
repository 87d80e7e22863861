"""Where the project's files live: the one place that knows the checkout's layout.

The package is installed editable (``pip install -e .``), so the resource
descriptor, the DaCHS resource directory and the benchmarks are found next
to the package, in the checkout the package was installed from.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]   # ingest/
PROJECT_ROOT = PACKAGE.parent                   # the checkout: rd.xml, resdir/, bench/
RD_PATH = PROJECT_ROOT / "rd.xml"
RESDIR = PROJECT_ROOT / "resdir"
SITE_FILE = RESDIR / "site.toml"
BENCH_DIR = PROJECT_ROOT / "bench"
DEFAULTS_PATH = PACKAGE / "defaults.toml"
COLMAP_DIR = PACKAGE / "colmaps"
