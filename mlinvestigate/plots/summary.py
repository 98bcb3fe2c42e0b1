"""Summary figures: the gap waterfall and the review-routing curve."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import PRODUCTION, REFERENCE, figure

ORDER = ("covariate_shift", "out_of_support", "prior_shift", "unexplained", "measurement")
PART_LABELS = {"covariate_shift": "covariate\nshift", "out_of_support": "inputs\nreference\nnever saw",
               "prior_shift": "prior\nshift",
               "unexplained": "unexplained\n(concept, skew,\nlabels, …)", "measurement": "measurement\nartefact"}
LOSS, GAIN = "#e67e22", "#27ae60"


def waterfall(attr: dict, *, ax=None):
    """Reference metric → each part of the gap (with 95% intervals) → production metric."""
    name = attr.get("metric", "metric")
    fig, ax = figure(f"Where the {name} gap comes from", xlabel="part of the gap",
                     ylabel=f"{name} (share correct)" if name == "accuracy" else f"{name} (target units)",
                     size=(8, 4.2), ax=ax)
    level = attr["reference"]
    bars = [("reference\n(offline)", 0.0, level, REFERENCE, f"{level:.3f}", None)]
    for part in ORDER:
        p = attr["parts"].get(part)
        if p is None:  # a report written before this part existed
            continue
        v = p["value"]
        lo, hi = p["ci"]
        err = None if lo is None else (level - v, max(v - lo, 0), max(hi - v, 0))
        # a part hurts when it lowers a higher-is-better metric or raises an error (regression)
        hurts = v > 0 if attr.get("higher_is_better", True) else v < 0
        bars.append((PART_LABELS[part], min(level, level - v), abs(v), LOSS if hurts else GAIN,
                     f"{-v:+.3f}", err))
        level -= v
    bars.append(("production\n(observed)", 0.0, attr["production"], PRODUCTION, f"{attr['production']:.3f}", None))
    x = np.arange(len(bars))
    ax.bar(x, [b[2] for b in bars], bottom=[b[1] for b in bars], color=[b[3] for b in bars],
           edgecolor="black", linewidth=0.5)
    for i, (_, bottom, height, _, text, err) in enumerate(bars):
        ax.text(i, bottom + height, text, ha="center", va="bottom", fontsize=8)
        if err is not None:
            ax.errorbar(i, err[0], yerr=[[err[1]], [err[2]]], color="black", capsize=4, lw=1)
    ax.set_xticks(x, [b[0] for b in bars], fontsize=8)
    floor = min(b[1] for b in bars[1:-1]) if len(bars) > 2 else 0.0
    floor = min(floor, attr["production"], attr["reference"])
    ax.set_ylim(max(0.0, floor - 0.15 * abs(attr["reference"] - floor) - 0.02), None)
    return fig


def routing_curve(curve: pd.DataFrame, *, target: float | None = None, routed: float | None = None, ax=None):
    """Accuracy on the traffic the model keeps vs the share routed to human review."""
    fig, ax = figure("Confidence-based routing to human review",
                     xlabel="share of traffic routed to review (%)", ylabel="accuracy on the rest (%)",
                     size=(7, 3.6), ax=ax)
    source = curve["rows_from"].iloc[0] if len(curve) else ""
    ax.plot(curve["routed"] * 100, curve["accuracy"] * 100, marker="o", color=PRODUCTION, ms=3,
            label=f"model, labelled {source} rows")
    if target is not None:
        ax.axhline(target * 100, color=REFERENCE, ls="--", lw=1, label="offline accuracy")
    if routed is not None and len(curve):
        i = int(np.argmin(np.abs(curve["routed"].to_numpy() - routed)))
        ax.scatter([curve["routed"].iloc[i] * 100], [curve["accuracy"].iloc[i] * 100], s=80,
                   facecolors="none", edgecolors="black", zorder=3, label="chosen share")
    ax.set_xlim(0, 100)
    ax.legend(loc="lower right", fontsize=8)
    return fig
