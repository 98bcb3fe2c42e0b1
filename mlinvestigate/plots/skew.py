"""Figures of the skew page: served vs offline values of the same production rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import NEUTRAL, PRODUCTION, REFERENCE, figure


def served_vs_offline(result, feature: str, *, ax=None):
    """Scatter of each joined row's offline value (x) against its served value (y).

    Points on the grey diagonal match. Log axes when the pattern is a scale factor (and values are
    positive), so a unit change shows as a parallel line. Categorical features get a table of row
    counts per (offline, served) category pair instead.
    """
    pair = result.data["pairs"][feature]
    pattern = pair["pattern"]
    unit = " (seconds since 1970)" if pair["type"] == "datetime" else " (feature units)"
    if pair["type"] in ("categorical", "boolean"):
        return _category_pairs(feature, pair, ax=ax)
    o = np.asarray(pair["offline"], dtype=float)
    s = np.asarray(pair["served"], dtype=float)
    ok = np.isfinite(o) & np.isfinite(s)
    fig, ax = figure(f"{feature}: served vs recomputed offline ({pattern['pattern']})",
                     xlabel=f"offline value{unit}", ylabel=f"served value{unit}", size=(5.2, 4.2), ax=ax)
    ax.scatter(o[ok], s[ok], s=10, alpha=0.4, color=PRODUCTION, edgecolors="none", zorder=3,
               label=f"joined rows ({ok.sum()} shown)")
    log = pattern["pattern"] == "scale" and ok.any() and (o[ok] > 0).all() and (s[ok] > 0).all()
    if ok.any():
        lo = float(min(o[ok].min(), s[ok].min()))
        hi = float(max(o[ok].max(), s[ok].max()))
        grid = np.geomspace(max(lo, 1e-12), hi, 50) if log else np.linspace(lo, hi, 50)
        ax.plot(grid, grid, color=NEUTRAL, ls="--", lw=1, label="served = offline")
        if pattern["pattern"] == "scale":
            ax.plot(grid, pattern["factor"] * grid, color=REFERENCE, lw=1, ls=":",
                    label=f"served = {pattern['factor']:g} × offline")
        elif pattern["pattern"] == "capped":
            ax.axhline(pattern["cap"], color=REFERENCE, lw=1, label=f"cap {pattern['cap']:g}")
        elif pattern["pattern"] == "floored":
            ax.axhline(pattern["floor"], color=REFERENCE, lw=1, label=f"floor {pattern['floor']:g}")
        elif pattern["pattern"] == "offset":
            ax.plot(grid, grid + pattern["offset"], color=REFERENCE, lw=1,
                    label=f"served = offline + {pattern['offset']:g}")
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"offline value{unit}, log scale")
        ax.set_ylabel(f"served value{unit}, log scale")
    missing = int((np.isfinite(o) ^ np.isfinite(s)).sum())
    if missing:
        ax.text(0.02, 0.98, f"{missing} sampled rows missing on one side (not drawn)", transform=ax.transAxes,
                va="top", fontsize="small", color=NEUTRAL)
    ax.legend(loc="lower right", fontsize="small")
    return fig


def _category_pairs(feature: str, pair: dict, *, ax=None, top: int = 12):
    o = pd.Series(pair["offline"], dtype=object).fillna("(missing)").astype(str)
    s = pd.Series(pair["served"], dtype=object).fillna("(missing)").astype(str)
    counts = pd.crosstab(s, o)
    keep_o = o.value_counts().index[:top]
    keep_s = s.value_counts().index[:top]
    counts = counts.reindex(index=keep_s, columns=keep_o, fill_value=0)
    fig, ax = figure(f"{feature}: category served vs offline",
                     xlabel="offline category", ylabel="served category",
                     size=(1.8 + 0.55 * counts.shape[1], 1.6 + 0.45 * counts.shape[0]), ax=ax)
    ax.grid(False)
    ax.imshow(counts.to_numpy(), cmap="Reds", aspect="auto")
    ax.set_xticks(range(counts.shape[1]), counts.columns, rotation=45, ha="right")
    ax.set_yticks(range(counts.shape[0]), counts.index)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            v = counts.iat[i, j]
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize="small")
    return fig


def scatter_grid(result, *, max_features: int = 6):
    """One served-vs-offline panel per skewed feature (worst first), side by side."""
    import matplotlib.pyplot as plt

    names = [f for f in result.finding.culprits if f in result.data["pairs"]][:max_features]
    cols = min(len(names), 2) or 1
    rows = max(1, -(-len(names) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5.4 * cols, 4.4 * rows), layout="constrained", squeeze=False)
    for ax, name in zip(axes.ravel(), names, strict=False):
        served_vs_offline(result, name, ax=ax)
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    fig.suptitle("Served vs offline-recomputed values of the same production rows")
    return fig
