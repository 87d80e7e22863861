"""The one-screen summary printed at the end of ``ocvo ingest``.

It answers the questions a user has right after a run: how many clusters got
an RV, how many are good enough for Galactic trends, how the member stars
were flagged and what was thrown away (and why), without opening the files.
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

MAX_REJECTION_LINES = 12
MAX_VALUE_LINES = 5
WIDTH = 100


def _rejection_lines(rejections: dict[str, int]) -> list[str]:
    nonzero = sorted(((v, k) for k, v in rejections.items() if v), reverse=True)
    lines = [f"    {key:<34} {value:>12,}" for value, key in nonzero[:MAX_REJECTION_LINES]]
    if len(nonzero) > MAX_REJECTION_LINES:
        rest = sum(v for v, _ in nonzero[MAX_REJECTION_LINES:])
        lines.append(f"    {'(other reasons)':<34} {rest:>12,}")
    return lines or ["    none"]


def _rejected_value_lines(details: list[dict[str, Any]]) -> list[str]:
    """Values rejected at read time, by file and column (all of them are in manifest.json)."""
    lines = [f"    {Path(d['file']).name}, column {d['column']!r}: {d['count']:,} "
             f"{d['action']} ({d['reason']})"[:WIDTH] for d in details[:MAX_VALUE_LINES]]
    if len(details) > MAX_VALUE_LINES:
        lines.append(f"    ... {len(details) - MAX_VALUE_LINES} more in manifest.json "
                     "(rejected_values)")
    return ["  rejected at read (file, column):", *lines] if lines else []


def _survey_line(surveys: dict[str, dict[str, Any]]) -> str:
    """Per survey: RV zero-point offset added and stellar-parameter source."""
    parts = [f"{name} {record['rv_offset_kms']:+g} ({'/'.join(record['parameter_source'])})"
             for name, record in surveys.items()]
    return "  surveys, RV offset km/s (parameters): " + ", ".join(parts)


def _undeclared_warning(surveys: dict[str, dict[str, Any]]) -> list[str]:
    """A warning for spectra whose column map names no survey (no zero-point offset)."""
    undeclared = sum(r["spectra"] for r in surveys.values() if not r["declared"])
    if not undeclared:
        return []
    return textwrap.wrap(
        f"WARNING: {undeclared:,} spectra were read through a column map without a "
        "'survey' key: no RV zero-point offset applied to them; add survey = \"NAME\" "
        "to the map (e.g. gaia-dr3, lamost-lrs) to declare their RV scale",
        WIDTH, initial_indent="  ", subsequent_indent="    ")


def format_summary(summary: dict[str, Any]) -> str:
    """Render the dict returned by ``ingest.pipeline.run_ingest`` in about 20 lines of <= 100."""
    counts = summary["row_counts"]
    flags = summary["stars_by_flag"]
    total = sum(summary.get("stage_seconds", {}).values())
    lines = [
        f"ingest finished: {summary['out']}  ({total:.1f} s)",
        f"  clusters: {counts['cluster']:,} with a matched spectrum, "
        f"{summary['clusters_with_rv']:,} with an RV, "
        f"{summary['clusters_good_flag12']:,} with >= {summary['good_min_flag12']} FLAG=12 stars",
        f"  member stars: {counts['member']:,}  (FLAG=0: {flags['0']:,}, FLAG=1: {flags['1']:,}, "
        f"FLAG=12: {flags['12']:,}; RV-variable: {summary['rv_variable_stars']:,})",
        f"  spectra matched: {counts['spectrum']:,}",
        _survey_line(summary["surveys"]),
        *_undeclared_warning(summary["surveys"]),
        *textwrap.wrap("tables: " + ", ".join(f"{name} {n:,}" for name, n in counts.items()),
                       WIDTH, initial_indent="  ", subsequent_indent="    "),
        *[f"  warning: {line}" for line in summary.get("gaia_releases", {}).get("warnings", [])],
        "  rejections by reason:",
        *_rejection_lines(summary["rejections"]),
        *_rejected_value_lines(summary.get("rejected_values", [])),
    ]
    return "\n".join(lines)
