"""PNG figures linked from the service (matplotlib, Agg backend).

Per cluster (Fu et al. 2022): the CMD of the members coloured by RV and by
[Fe/H] (Fig. 5), the Kiel diagram coloured by [Fe/H] (Fig. 4) and the RV
distribution with its Gaussian fit and the FLAG=1 window (Fig. 2).  For the
catalogue: the [Fe/H] gradient with the knee (thesis Fig. 4-13), [Fe/H] per
age bin (Fig. 4-14) and the literature comparisons (Figs. 4-2, 4-8).
Every function takes its data (DataFrames, rows) and a target path; reading an
ingest output directory and rendering in parallel is :mod:`figure_jobs`.
Rendering is separate from ingest (``ocvo figures``) so it never slows it down.
"""
from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.special import ndtr  # noqa: E402

from ingest.core.vocabulary import CLUSTER_FIGURES, FLAG_RELIABLE, FLAG_RV_MEMBER  # noqa: E402

_UNSAFE = re.compile(r"[^A-Za-z0-9_+\-.]")
_DPI = 110
_LABELS = {"rv": "RV (km/s)", "fe_h": "[Fe/H] (dex)"}


def safe_name(cluster_name: str) -> str:
    """File-name form of a cluster name: spaces -> '_', only [A-Za-z0-9_+-.] kept."""
    return _UNSAFE.sub("", str(cluster_name).strip().replace(" ", "_"))


def _label(quantity: str) -> str:
    if quantity in _LABELS:
        return _LABELS[quantity]
    element = quantity.removesuffix("_fe").capitalize()
    return f"[{element}/Fe] (dex)"


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Every figure uses the constrained layout, so no bbox_inches="tight"
    # (which draws the whole figure twice) is needed.
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path


def _finite(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    keep = np.all([np.isfinite(frame[c].to_numpy(float)) for c in columns], axis=0)
    return frame[keep]


def _cmd_panel(ax: plt.Axes, members: pd.DataFrame, colour: str, min_flag: int,
               title: str) -> None:
    """All members in grey; those with flag >= min_flag coloured by ``colour``."""
    everyone = _finite(members, "bp_rp", "gmag")
    ax.scatter(everyone.bp_rp, everyone.gmag, s=4, c="0.8", label="members")
    chosen = _finite(everyone[everyone.flag >= min_flag], colour)
    points = ax.scatter(chosen.bp_rp, chosen.gmag, s=18, c=chosen[colour], cmap="coolwarm",
                        edgecolors="k", linewidths=0.3, label=f"FLAG>={min_flag}")
    if len(chosen):
        plt.colorbar(points, ax=ax, label=_label(colour))
    ax.set_xlabel("BP - RP (mag)")
    ax.set_ylabel("G (mag)")
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=7)


def cmd_figure(name: str, members: pd.DataFrame, path: Path) -> Path:
    """Fu et al. 2022 Fig. 5: CMD coloured by RV (FLAG>=1) and by [Fe/H] (FLAG=12)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True, layout="constrained")
    _cmd_panel(axes[0], members, "rv", FLAG_RV_MEMBER, f"{name}: RV members")
    _cmd_panel(axes[1], members, "fe_h", FLAG_RELIABLE, f"{name}: [Fe/H] (FLAG=12)")
    axes[1].yaxis.set_tick_params(labelleft=True)
    axes[0].invert_yaxis()      # once: the panels share the y axis
    return _save(fig, path)


def kiel_figure(name: str, members: pd.DataFrame, path: Path) -> Path:
    """Fu et al. 2022 Fig. 4: Teff-logg coloured by [Fe/H]; QC-rejected stars open."""
    fig, ax = plt.subplots(figsize=(5.5, 4.5), layout="constrained")
    stars = _finite(members, "teff", "logg")
    rejected = stars[stars.flag < FLAG_RELIABLE]
    ax.scatter(rejected.teff, rejected.logg, s=14, facecolors="none", edgecolors="0.5",
               label="FLAG<12")
    good = _finite(stars[stars.flag >= FLAG_RELIABLE], "fe_h")
    points = ax.scatter(good.teff, good.logg, s=18, c=good.fe_h, cmap="coolwarm",
                        edgecolors="k", linewidths=0.3, label="FLAG=12")
    if len(good):
        plt.colorbar(points, ax=ax, label="[Fe/H] (dex)")
    ax.invert_xaxis()
    ax.invert_yaxis()
    ax.set_xlabel("Teff (K)")
    ax.set_ylabel("log g")
    ax.set_title(f"{name}: Kiel diagram")
    ax.legend(loc="upper left", fontsize=7)
    return _save(fig, path)


def _fit_counts(row: pd.Series, flag1: pd.DataFrame, edges: np.ndarray) -> np.ndarray | None:
    """Expected FLAG=1 stars per histogram bin under the likelihood fit: each star's
    N(mu, sigma^2 + err^2) truncated to the clip window, integrated over the bins and
    summed; None without a fit."""
    mu, sigma = row.get("rv_fit_mu", np.nan), row.get("rv_fit_sigma", np.nan)
    lo, hi = row.get("rv_clip_lo", np.nan), row.get("rv_clip_hi", np.nan)
    if not (np.isfinite(mu) and np.isfinite(sigma) and np.isfinite(lo) and np.isfinite(hi)):
        return None
    tau = np.sqrt(sigma ** 2 + flag1["rv_err"].to_numpy(float) ** 2)[:, None]
    inside = ndtr((hi - mu) / tau) - ndtr((lo - mu) / tau)
    cdf = ndtr((np.clip(edges, lo, hi)[None, :] - mu) / tau)
    return (np.diff(cdf, axis=1) / inside).sum(axis=0)


def rv_figure(name: str, row: pd.Series, members: pd.DataFrame, path: Path) -> Path:
    """Fu et al. 2022 Fig. 2: member RVs, FLAG=1 subset, the likelihood fit and the very
    window (rv_clip_lo, rv_clip_hi) that selected FLAG=1."""
    fig, ax = plt.subplots(figsize=(6, 4.2), layout="constrained")
    stars = _finite(members, "rv")
    lo, hi = float(row.get("rv_clip_lo", np.nan)), float(row.get("rv_clip_hi", np.nan))
    span = np.percentile(stars.rv, [1, 99]) if len(stars) else np.array([-1.0, 1.0])
    if np.isfinite(lo) and np.isfinite(hi):
        pad = 0.5 * (hi - lo)
        span = np.array([min(span[0], lo - pad), max(span[1], hi + pad)])
    bins = np.linspace(span[0] - 1, span[1] + 1, 31)
    ax.hist(stars.rv, bins=bins, color="0.8", label=f"all with RV ({len(stars)})")
    flag1 = stars[stars.flag >= FLAG_RV_MEMBER]
    ax.hist(flag1.rv, bins=bins, color="tab:blue", alpha=0.7, label=f"FLAG=1 ({len(flag1)})")
    counts = _fit_counts(row, flag1, bins)
    if counts is not None:
        ax.stairs(counts, bins, color="k",
                  label=f"fit (rv_flag {int(row.get('rv_flag', -1))}): "
                      f"{row.rv_fit_mu:.2f}, sigma_int {row.rv_fit_sigma:.2f} km/s")
    if np.isfinite(lo) and np.isfinite(hi):
        for limit in (lo, hi):
            ax.axvline(limit, color="tab:red", ls="--")
        ax.plot([], [], color="tab:red", ls="--",
                label=f"FLAG=1 window {lo:.1f} .. {hi:.1f} km/s")
    ax.set_xlabel("RV (km/s)")
    ax.set_ylabel("stars")
    ax.set_title(f"{name}: RV distribution")
    ax.legend(fontsize=7)
    return _save(fig, path)


def render_cluster_figures(cluster_row: pd.Series, members: pd.DataFrame,
                           out_dir: Path) -> list[Path]:
    """out_dir/cluster/<safe_name>_<kind>.png for one cluster and its members, one per
    kind of ``CLUSTER_FIGURES`` (the files DataLink links)."""
    name = str(cluster_row["cluster_name"]).strip()
    stem = Path(out_dir) / "cluster" / safe_name(name)
    draw = {"cmd": lambda path: cmd_figure(name, members, path),
            "kiel": lambda path: kiel_figure(name, members, path),
            "rv": lambda path: rv_figure(name, cluster_row, members, path)}
    return [draw[kind](stem.with_name(f"{stem.name}_{kind}.png")) for kind, _ in CLUSTER_FIGURES]


# ------------------------------------------------------------------ catalogue


def _good_sample(clusters: pd.DataFrame, gradients: pd.DataFrame) -> pd.DataFrame:
    """Clusters of the gradient sample, as recorded in the gradient table ('n_flag12 >= k')."""
    found = re.search(r"n_flag12 >= (\d+)", " ".join(gradients["sample"].astype(str)))
    minimum = int(found.group(1)) if found else 0
    return _finite(clusters[clusters.n_flag12 >= minimum], "r_gc", "fe_h")


def _gradient_row(gradients: pd.DataFrame, model: str, age_bin: str = "all",
                  variable: str = "r_gc") -> pd.Series | None:
    rows = gradients[(gradients.quantity.str.strip() == "fe_h")
                     & (gradients.variable.str.strip() == variable)
                     & (gradients.model.str.strip() == model)
                     & (gradients.age_bin.str.strip() == age_bin)]
    return rows.iloc[0] if len(rows) else None


def _broken_curve(fit: pd.Series, x: np.ndarray) -> np.ndarray:
    dx = x - fit.knee
    return fit.intercept + fit.slope * np.minimum(dx, 0) + fit.slope_outer * np.maximum(dx, 0)


def _draw_split(ax: plt.Axes, fit: pd.Series | None, sample: pd.DataFrame) -> None:
    """The independent inner and outer lines: each drawn through its own clusters' weighted
    centre (the table gives slopes only, intercepts at R_gc = 0 are not comparable)."""
    if fit is None:
        return
    for side, slope, count in ((sample.r_gc < fit.knee, fit.slope, fit.n_inner),
                               (sample.r_gc >= fit.knee, fit.slope_outer, fit.n_outer)):
        part = sample[side]
        if not len(part):
            continue
        weight = 1.0 / part.fe_h_err.to_numpy(float) ** 2 if "fe_h_err" in part else None
        x0 = np.average(part.r_gc, weights=weight)
        y0 = np.average(part.fe_h, weights=weight)
        x = np.array([part.r_gc.min(), part.r_gc.max()])
        ax.plot(x, y0 + slope * (x - x0), color="tab:orange", lw=2, alpha=0.8,
                label=f"split side (N={count}): {slope:.3f} dex/kpc")


def gradient_figure(clusters: pd.DataFrame, gradients: pd.DataFrame, path: Path) -> Path:
    """Thesis Fig. 4-13: [Fe/H] vs R_gc coloured by log age, linear and broken-line fits."""
    sample = _good_sample(clusters, gradients)
    fig, ax = plt.subplots(figsize=(7.5, 4.8), layout="constrained")
    ax.errorbar(sample.r_gc, sample.fe_h, yerr=sample.get("fe_h_err"), fmt="none",
                ecolor="0.75", lw=0.6, zorder=1)
    points = ax.scatter(sample.r_gc, sample.fe_h, c=sample.get("logage50"), s=16,
                        cmap="viridis", zorder=2)
    plt.colorbar(points, ax=ax, label="log(age / yr)")
    x = np.linspace(*(sample.r_gc.agg(["min", "max"]) if len(sample) else (5, 18)), 200)
    linear = _gradient_row(gradients, "linear")
    if linear is not None:
        ax.plot(x, linear.intercept + linear.slope * x, "k:",
                label=f"linear: {linear.slope:.3f} +- {linear.slope_err:.3f} dex/kpc")
    for model, style in (("broken_fixed", "r-"), ("broken_fit", "b--")):
        fit = _gradient_row(gradients, model)
        if fit is None:
            continue
        knee_text = (f"knee {fit.knee:.1f}" if model == "broken_fixed"
                     else f"knee {fit.knee:.1f} +- {fit.knee_err:.1f}")
        ax.plot(x, _broken_curve(fit, x), style,
                label=f"{model}: {fit.slope:.3f} +- {fit.slope_err:.3f} / {fit.slope_outer:.3f}"
                      f" +- {fit.slope_outer_err:.3f} dex/kpc, {knee_text} kpc")
        ax.axvline(fit.knee, color=style[0], ls=":", lw=0.8)
    _draw_split(ax, _gradient_row(gradients, "broken_split"), sample)
    ax.set_xlabel("R_gc (kpc)")
    ax.set_ylabel("[Fe/H] (dex)")
    ax.set_title(f"[Fe/H] gradient ({len(sample)} clusters)")
    ax.legend(fontsize=7, loc="lower left")
    return _save(fig, path)


def age_bin_figure(clusters: pd.DataFrame, gradients: pd.DataFrame, path: Path) -> Path:
    """Thesis Fig. 4-14: [Fe/H] vs R_gc per age bin with the linear fit of each bin."""
    sample = _good_sample(clusters, gradients)
    rows = gradients[(gradients.quantity.str.strip() == "fe_h")
                     & (gradients.variable.str.strip() == "r_gc")
                     & (gradients.model.str.strip() == "linear")
                     & (gradients.age_bin.str.strip() != "all")]
    fig, axes = plt.subplots(1, max(len(rows), 1), figsize=(3.6 * max(len(rows), 1), 3.6),
                             sharey=True, squeeze=False, layout="constrained")
    for ax, (_, fit) in zip(axes[0], rows.iterrows()):
        lo, hi = _age_limits(fit.age_bin.strip())
        age_gyr = 10 ** (sample.logage50 - 9)
        chosen = sample[(age_gyr >= lo) & (age_gyr < hi)]
        ax.scatter(chosen.r_gc, chosen.fe_h, s=10, c="tab:blue")
        if len(chosen):
            x = np.linspace(chosen.r_gc.min(), chosen.r_gc.max(), 50)
            ax.plot(x, fit.intercept + fit.slope * x, "k-")
        ax.set_title(f"age {fit.age_bin.strip()} Gyr: {fit.slope:.3f} +- {fit.slope_err:.3f}"
                     f" (N={fit.n})", fontsize=8)
        ax.set_xlabel("R_gc (kpc)")
    axes[0][0].set_ylabel("[Fe/H] (dex)")
    return _save(fig, path)


_TREND_AXES = {"lz": ("L_z", 1e3, "L_z (10^3 kpc km/s)"),
               "energy": ("E", 1e5, "E (10^5 km^2/s^2)")}


def dynamics_trend_figure(clusters: pd.DataFrame, gradients: pd.DataFrame, path: Path) -> Path:
    """Fu et al. 2022 Figs 9-10: [Fe/H] against L_z and orbital energy per age group, with the
    quadratic_mcmc rows of the gradient table."""
    sample = _finite(_good_sample(clusters, gradients), "lz", "energy")
    groups = [g for g in dict.fromkeys(gradients.loc[
        gradients.variable.str.strip() == "lz", "age_bin"].str.strip())]
    fig, axes = plt.subplots(2, max(len(groups), 1), figsize=(3.2 * max(len(groups), 1), 6),
                             sharey=True, squeeze=False, layout="constrained")
    for column, group in enumerate(groups):
        lo, hi = _age_limits(group)
        age_gyr = 10 ** (sample.logage50 - 9)
        chosen = sample[(age_gyr >= lo) & (age_gyr < hi)]
        for row, variable in enumerate(("lz", "energy")):
            ax = axes[row][column]
            _, scale, label = _TREND_AXES[variable]
            x = chosen[variable].to_numpy(float) / scale
            ax.scatter(x, chosen.fe_h, s=8, c="tab:blue")
            fit = _gradient_row(gradients, "quadratic_mcmc", group, variable)
            if fit is not None and len(x):
                grid = np.linspace(x.min(), x.max(), 100)
                ax.plot(grid, fit.intercept + fit.slope * grid + fit.quad * grid ** 2, "k-")
                ax.set_title(f"{group} Gyr: a={fit.quad:.3f}+-{fit.quad_err:.3f} (N={fit.n})",
                             fontsize=7)
            ax.set_xlabel(label, fontsize=8)
    for row in axes:
        row[0].set_ylabel("[Fe/H] (dex)")
    fig.suptitle("[Fe/H] vs angular momentum and orbital energy per age group (Fu 2022 Figs 9-10)",
                 fontsize=9)
    return _save(fig, path)


def _age_limits(label: str) -> tuple[float, float]:
    """'<0.1' -> (0, 0.1); '0.1-0.5' -> (0.1, 0.5); '>1' -> (1, inf), in Gyr."""
    if label.startswith("<"):
        return 0.0, float(label[1:])
    if label.startswith(">"):
        return float(label[1:]), np.inf
    lo, hi = label.split("-")
    return float(lo), float(hi)


def _bins(values: np.ndarray, count: int = 30) -> np.ndarray:
    """Histogram edges that also work when all values are equal (or there is one)."""
    lo, hi = (float(values.min()), float(values.max())) if len(values) else (-1.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, count + 1)


def literature_figure(comparison: pd.DataFrame, quantity: str, path: Path) -> Path:
    """Thesis Figs. 4-2 / 4-8: per catalogue, literature vs here and the differences."""
    rows = comparison[comparison.quantity.str.strip() == quantity]
    catalogues = list(dict.fromkeys(rows.catalogue.str.strip()))
    panels = max(len(catalogues), 1)
    fig, axes = plt.subplots(2, panels, figsize=(4.4 * panels, 8), squeeze=False,
                             layout="constrained")
    for column, label in enumerate(catalogues):
        part = rows[rows.catalogue.str.strip() == label]
        top, bottom = axes[0][column], axes[1][column]
        top.errorbar(part.value_here, part.value_lit, xerr=part.value_here_err,
                     yerr=part.value_lit_err, fmt="o", ms=3, lw=0.5)
        limits = np.nanpercentile(np.r_[part.value_here, part.value_lit], [0, 100])
        top.plot(limits, limits, "k--", lw=0.8)
        top.set_xlabel(f"this catalogue {_label(quantity)}")
        top.set_ylabel(f"{label} {_label(quantity)}")
        diff = part["diff"].to_numpy(float)
        bottom.hist(diff, bins=_bins(diff), color="tab:blue", alpha=0.7)
        mean, std = diff.mean(), diff.std(ddof=1) if len(diff) > 1 else np.nan
        bottom.axvline(mean, color="tab:red")
        bottom.set_title(f"{label} - here: mean {mean:.3f}, sigma {std:.3f}, N={len(diff)}",
                         fontsize=8)
        bottom.set_xlabel(f"difference {_label(quantity)}")
    return _save(fig, path)


_ORBIT_ERROR_PANELS = (("z_max", "z_max"), ("r_peri", "R_peri"), ("r_apo", "R_apo"),
                       ("ecc", "e"))


def orbit_error_figure(clusters: pd.DataFrame, path: Path) -> Path:
    """Half the 16-84 range of z_max, R_peri, R_apo and e against distance: shows where the
    distance error takes over from the RV and proper-motion errors (~2 kpc)."""
    fig, axes = plt.subplots(2, 2, figsize=(8, 6), layout="constrained", sharex=True)
    dist_kpc = clusters["dist50"].to_numpy(float) / 1000.0
    if {"dist16", "dist84"} <= set(clusters.columns):
        colour = 100 * ((clusters["dist84"] - clusters["dist16"])
                        / (2 * clusters["dist50"])).to_numpy(float)
    else:
        colour = np.zeros(len(clusters))
    for ax, (column, label) in zip(axes.ravel(), _ORBIT_ERROR_PANELS):
        err = clusters[f"{column}_err"].to_numpy(float)
        good = np.isfinite(err) & (err > 0) & np.isfinite(dist_kpc)
        points = ax.scatter(dist_kpc[good], err[good], c=colour[good], s=8, cmap="viridis")
        ax.set_yscale("log")
        ax.set_ylabel(f"half 16-84 range of {label}" + ("" if column == "ecc" else " (kpc)"))
        ax.set_title(f"{label}: {good.sum()} clusters", fontsize=9)
    for ax in axes[1]:
        ax.set_xlabel("distance (kpc)")
    fig.colorbar(points, ax=axes, label="distance error (%, half 16-84)")
    fig.suptitle("Orbit uncertainties (Monte Carlo over RV, distance and pm errors)")
    return _save(fig, path)


def _heliocentric_xy_kpc(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = np.radians(frame["glon"].to_numpy(float)), np.radians(frame["glat"].to_numpy(float))
    dist = frame["dist50"].to_numpy(float) / 1000.0
    return dist * np.cos(lat) * np.cos(lon), dist * np.cos(lat) * np.sin(lon)


def binary_pairs_figure(clusters: pd.DataFrame, pairs: pd.DataFrame, path: Path) -> Path:
    """Where the binary-cluster candidates lie (Galactic X-Y, pairs joined) and how
    close they are in space and motion (3D separation with its error, tangential-velocity
    difference, coloured by P(close))."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5), layout="constrained")
    x, y = _heliocentric_xy_kpc(clusters)
    position = dict(zip(clusters["cluster_name"], zip(x, y)))
    ends = np.array([position[name] for name in (*pairs["cluster_a"], *pairs["cluster_b"])])
    reach = max(1.0, 1.3 * float(np.max(np.hypot(ends[:, 0], ends[:, 1]))))
    shown = (np.abs(x) < reach) & (np.abs(y) < reach)
    left.scatter(x[shown], y[shown], s=4, c="0.7", label="clusters")
    for number, (a, b) in enumerate(zip(pairs["cluster_a"], pairs["cluster_b"]), start=1):
        (xa, ya), (xb, yb) = position[a], position[b]
        left.plot([xa, xb], [ya, yb], "-o", color="tab:red", ms=4, lw=1.5)
        left.annotate(str(number), (xa, ya), fontsize=8, xytext=(4, 4), textcoords="offset points")
    left.plot([0], [0], "k*", ms=10, label="Sun")
    left.set_xlim(-reach, reach)
    left.set_ylim(-reach, reach)
    left.set_xlabel("X (kpc, towards the Galactic centre)")
    left.set_ylabel("Y (kpc, towards l = 90 deg)")
    left.set_aspect("equal")
    left.legend(fontsize=8, loc="lower left")
    left.set_title(f"{len(pairs)} binary-cluster candidates (numbered as on the right)",
                   fontsize=10)
    right.errorbar(pairs["sep_3d"], pairs["dv_tan"], xerr=pairs["sep_3d_err"],
                   yerr=pairs["dv_tan_err"], fmt="none", ecolor="0.6", lw=0.8)
    points = right.scatter(pairs["sep_3d"], pairs["dv_tan"], c=pairs["p_close"], vmin=0.5,
                           vmax=1.0, cmap="viridis", s=30, zorder=3)
    for number, row in enumerate(pairs.itertuples(), start=1):
        right.annotate(f"{number}: {row.cluster_a} / {row.cluster_b}", (row.sep_3d, row.dv_tan),
                       fontsize=7, xytext=(5, -10), textcoords="offset points")
    fig.colorbar(points, ax=right, label="P(3D separation below the configured limit)")
    right.set_xlabel("3D separation (pc)")
    right.set_ylabel("tangential-velocity difference (km/s)")
    right.set_xlim(left=0)
    right.set_ylim(bottom=0)
    return _save(fig, path)


def render_catalogue_figures(clusters: pd.DataFrame, gradients: pd.DataFrame,
                             lit_comparison: pd.DataFrame, out_dir: Path,
                             pairs: pd.DataFrame | None = None) -> list[Path]:
    """out_dir/catalogue/*.png: gradients, orbit errors, literature comparisons, binary
    clusters."""
    target = Path(out_dir) / "catalogue"
    paths = []
    if pairs is not None and len(pairs):
        paths.append(binary_pairs_figure(clusters, pairs, target / "binary_clusters.png"))
    if "z_max_err" in clusters and clusters["z_max_err"].notna().any():
        paths.append(orbit_error_figure(clusters, target / "orbit_errors_vs_distance.png"))
    if len(gradients):
        paths.append(gradient_figure(clusters, gradients, target / "gradient_fe_h_rgc.png"))
        paths.append(age_bin_figure(clusters, gradients, target / "gradient_fe_h_age_bins.png"))
        if (gradients.variable.str.strip() == "lz").any():
            paths.append(dynamics_trend_figure(clusters, gradients,
                                               target / "fe_h_lz_energy_age_groups.png"))
    for quantity in dict.fromkeys(lit_comparison.quantity.str.strip()):
        paths.append(literature_figure(lit_comparison, quantity,
                                       target / f"literature_{quantity}.png"))
    return paths
