"""PNG figures of the validation report (matplotlib, Agg backend, small files for docs/)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ingest.validation import criteria  # noqa: E402

DPI = 90
QUANTITY_LABELS = {"rv": "RV (km/s)", "fe_h": "[Fe/H] (dex)"}
ORBIT_LABELS = {"peri": ("pericentre", "kpc"), "apo": ("apocentre", "kpc"),
                "ecc": ("eccentricity", ""), "lz": ("$L_z$", "kpc km/s")}


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def cluster_rv_residuals(comparison: pd.DataFrame, path: Path) -> Path:
    """Per cluster: our RV minus HUNT2023's, error bars of both in quadrature, the 1.5 km/s band."""
    fig, ax = plt.subplots(figsize=(7.2, 3.8), layout="constrained")
    x = np.arange(len(comparison))
    limit = criteria.RV_MAX_ABS_DIFF
    ax.axhspan(-limit, limit, color="tab:green", alpha=0.12,
               label=f"pass band |diff| < {limit} km/s")
    ax.axhline(0, color="k", lw=0.8)
    ax.errorbar(x, comparison["diff"], yerr=comparison["diff_err"], fmt="o", capsize=4,
                label="ours - HUNT2023 (error: both in quadrature)")
    ax.set_xticks(x, [f"{c}\n{n} stars" for c, n in zip(comparison["cluster"],
                                                         comparison["n_flag1"])])
    ax.set_xlabel("cluster (number of Gaia DR3 RV members used, FLAG=1)")
    ax.set_ylabel("RV difference (km/s)")
    ax.set_title("Hunt 2023 members x Gaia DR3 RVs: cluster RV vs HUNT2023", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def rv_pulls(star_pulls: pd.DataFrame, comparison: pd.DataFrame, path: Path) -> Path:
    """Left: RV members' pulls about their cluster RV vs N(0,1); right: pulls vs HUNT2023."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.4, 3.6), layout="constrained")
    pulls = star_pulls["pull"].to_numpy(float)
    pulls = pulls[np.isfinite(pulls)]
    edges = np.linspace(-5, 5, 41)
    left.hist(np.clip(pulls, -5, 5), bins=edges, color="tab:blue", alpha=0.7,
              label=f"RV members, N={len(pulls)}")
    grid = np.linspace(-5, 5, 201)
    expected = len(pulls) * (edges[1] - edges[0]) * np.exp(-grid ** 2 / 2) / np.sqrt(2 * np.pi)
    left.plot(grid, expected, "k--", label="N(0,1)")
    left.set_xlabel("(star RV - cluster RV) / star RV error (clipped to +-5)")
    left.set_ylabel("stars per bin")
    left.set_title("star pulls about their cluster RV", fontsize=10)
    left.legend(fontsize=8)
    right.axvspan(-criteria.RV_MAX_ABS_PULL, criteria.RV_MAX_ABS_PULL, color="tab:green",
                  alpha=0.12, label=f"pass |pull| <= {criteria.RV_MAX_ABS_PULL:g}")
    y = np.arange(len(comparison))
    right.plot(comparison["pull"], y, "o")
    right.axvline(0, color="k", lw=0.8)
    right.set_yticks(y, comparison["cluster"])
    right.set_xlabel("(ours - HUNT2023) / combined error")
    right.set_title("cluster pulls vs HUNT2023", fontsize=10)
    right.legend(fontsize=8)
    return _save(fig, path)


def orbit_comparison(table: pd.DataFrame, summary: pd.DataFrame, path: Path) -> Path:
    """Top: ours vs FU2022 per orbit quantity (1:1 line); bottom: the differences."""
    names = list(criteria.ORBIT_LIMITS)
    fig, axes = plt.subplots(2, len(names), figsize=(3.2 * len(names), 6.2),
                             layout="constrained")
    stats = summary.set_index("quantity")
    for column, name in enumerate(names):
        label, unit = ORBIT_LABELS[name]
        unit_text = f" ({unit})" if unit else ""
        top, bottom = axes[0][column], axes[1][column]
        ours, theirs = table[f"{name}_ours"], table[f"{name}_fu"]
        top.plot(theirs, ours, ".", ms=3)
        limits = np.nanpercentile(np.r_[ours, theirs], [0, 100])
        top.plot(limits, limits, "k--", lw=0.8, label="1:1")
        top.set_xlabel(f"FU2022 {label}{unit_text}")
        top.set_ylabel(f"ours {label}{unit_text}")
        top.legend(fontsize=8)
        relative = bool(stats.loc[name, "relative"])
        diff = table[f"{name}_diff"].to_numpy(float) * (100 if relative else 1)
        span = np.nanpercentile(np.abs(diff), 98)
        bottom.hist(np.clip(diff, -span, span), bins=40, color="tab:blue", alpha=0.7)
        median = stats.loc[name, "median"] * (100 if relative else 1)
        bottom.axvline(median, color="tab:red",
                       label=f"median {median:+.2f}" if relative else f"median {median:+.3f}")
        bottom.set_xlabel("ours/FU2022 - 1 (%)" if relative else "ours - FU2022")
        bottom.set_ylabel("clusters")
        bottom.set_title(f"{label} (clipped at the 98th percentile of |d|)", fontsize=8)
        bottom.legend(fontsize=8)
    fig.suptitle(f"Orbits from CANTAT2020 astrometry + FU2022 RVs vs FU2022 "
                 f"(N={len(table)}, FU R_gc 7-12 kpc)", fontsize=10)
    return _save(fig, path)


def literature_offsets(summary: pd.DataFrame, path: Path) -> Path:
    """Median offset of each catalogue pair, bars = robust scatter, x = expected offset."""
    quantities = [q for q in ("rv", "fe_h") if q in set(summary["quantity"])]
    fig, axes = plt.subplots(1, len(quantities), figsize=(5 * len(quantities), 3.6),
                             layout="constrained", squeeze=False)
    for ax, quantity in zip(axes[0], quantities):
        rows = summary[summary["quantity"] == quantity].reset_index(drop=True)
        y = np.arange(len(rows))
        ax.errorbar(rows["median"], y, xerr=rows["robust_sigma"], fmt="o", capsize=3,
                    label="median, bar = robust sigma")
        expected = [criteria.EXPECTED_OFFSETS.get((r.reference, r.other, quantity))
                    for r in rows.itertuples()]
        shown = [(e, yy) for e, yy in zip(expected, y) if e is not None]
        if shown:
            ax.plot(*zip(*shown), "rx", ms=9, label="expected (criterion)")
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(y, [f"{r.other} - {r.reference}\n(N={r.n})" for r in rows.itertuples()],
                      fontsize=8)
        ax.set_xlabel(f"difference in {QUANTITY_LABELS[quantity]}")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2)
    fig.suptitle("Literature cross-checks among the shared cluster tables", fontsize=10)
    return _save(fig, path)
