"""Figures of the leakage page: single-feature power, reference vs production."""

from __future__ import annotations

import numpy as np

from . import NEUTRAL, PRODUCTION, REFERENCE, figure

_FLAGGED = {"leak": "leak", "suspicious": "suspicious", "holds live": "strong, holds live"}


def power_chart(result, *, top: int = 25):
    """Horizontal bars: each feature's power alone on reference (blue) and production (red).

    Leaks and suspicious features are named in red on the axis; vertical lines mark chance, the
    threshold above which a single feature is implausible, and the logged model's own power on
    each side.
    """
    table = result.to_df("features")
    d = result.data
    label = d["metric_label"]
    shown = table[np.isfinite(table["reference"].astype(float))].head(top).iloc[::-1]
    n = max(len(shown), 1)
    if shown.empty:
        fig, ax = figure("What one feature alone knows about the target", xlabel=f"{label} (unitless)",
                         ylabel="feature", size=(8.5, 2.2))
        ax.text(0.5, 0.5, "no feature could be assessed", ha="center", va="center", transform=ax.transAxes)
        return fig
    fig, ax = figure(f"What one feature alone knows about the target (top {len(shown)} features)",
                     xlabel=f"{label} of a one-feature model (unitless; chance = {d['chance']:g}, perfect = 1)",
                     ylabel="feature", size=(10.5, 2.2 + 0.36 * n))
    y = np.arange(len(shown))
    live = d["live"] and "production" in shown and np.isfinite(shown["production"].astype(float)).any()
    h = 0.38 if live else 0.6

    def bars(prefix, offset, colour, name):
        v = shown[prefix].astype(float).to_numpy()
        lo = shown[f"{prefix}_low"].astype(float).to_numpy()
        hi = shown[f"{prefix}_high"].astype(float).to_numpy()
        err = np.vstack([np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)])
        err = np.where(np.isfinite(err), err, 0)
        base = d["chance"]
        ax.barh(y + offset, np.nan_to_num(v - base), left=base, height=h, color=colour, alpha=0.85,
                label=name, xerr=err, error_kw={"ecolor": "#333333", "elinewidth": 0.8, "capsize": 2})

    bars("reference", h / 2 if live else 0, REFERENCE, "reference (cross-validated)")
    if live:
        bars("production", -h / 2, PRODUCTION, "production (cross-validated)")
    ax.axvline(d["chance"], color=NEUTRAL, lw=1)
    ax.axvline(d["power_threshold"], color=NEUTRAL, ls=":", lw=1.5,
               label=f"implausible for one feature (≥ {d['power_threshold']:g})")
    if np.isfinite(d["model_reference"]):
        ax.axvline(d["model_reference"], color=REFERENCE, ls="--", lw=1.5,
                   label=f"full model, reference ({d['model_reference']:.3f})")
    if np.isfinite(d["model_production"]):
        ax.axvline(d["model_production"], color=PRODUCTION, ls="--", lw=1.5,
                   label=f"full model, production ({d['model_production']:.3f})")
    names = [f"{f}  [{_FLAGGED[s]}]" if s in _FLAGGED else str(f)
             for f, s in zip(shown["feature"], shown["status"], strict=True)]
    ax.set_yticks(y, names)
    for tick, s in zip(ax.get_yticklabels(), shown["status"], strict=True):
        if s in ("leak", "suspicious"):
            tick.set_color(PRODUCTION)
            tick.set_fontweight("bold")
    values = np.concatenate([shown[c].astype(float).to_numpy() for c in ("reference_low", "production_low")
                             if c in shown] + [[d["chance"]]])
    left = min(d["chance"] - 0.02, np.nanmin(values) - 0.02)
    ax.set_xlim(max(left, -1.0), 1.02)
    ax.set_ylim(-0.7, len(shown) - 0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", framealpha=0.9)
    return fig
