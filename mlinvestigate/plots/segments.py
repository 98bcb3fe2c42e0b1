"""Figures of the segments page: the metric per segment with intervals, the segment mix, each
segment's contribution to the gap, and one segment's metric over time."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import NEUTRAL, PRODUCTION, REFERENCE, figure, plain


def _metric_label(result) -> str:
    metric = result.data["metric"]
    return f"{metric} (share of rows)" if result.data["higher_is_better"] else f"{metric} (target units)"


def metric_by_segment(result, column: str, *, top: int = 15, ax=None):
    """Production (red) and reference (blue) metric of each value of ``column``, with 95%
    intervals; flagged segments in bold, the reference overall as a dashed line."""
    table = result.to_df("segments")
    t = table[table["column"] == column].copy()
    t = t.sort_values("production_share", ascending=False).head(top).iloc[::-1]
    fig, ax = figure(f"{result.data['metric']} by {plain(column)}", xlabel=_metric_label(result),
                     ylabel=plain(column), size=(7.5, 1.2 + 0.42 * max(len(t), 1)), ax=ax)
    y = np.arange(len(t))
    for offset, prefix, colour, label in ((0.17, "reference_", REFERENCE, "reference"),
                                          (-0.17, "", PRODUCTION, "production")):
        m = t[f"{prefix}metric"].to_numpy(float)
        lo, hi = t[f"{prefix}ci_low"].to_numpy(float), t[f"{prefix}ci_high"].to_numpy(float)
        ok = np.isfinite(m)
        ax.errorbar(m[ok], y[ok] + offset, xerr=[np.maximum(m - lo, 0)[ok], np.maximum(hi - m, 0)[ok]],
                    fmt="o", color=colour, capsize=3, label=f"{label} (95% interval)")
    overall = result.data["overall_reference"]
    if np.isfinite(overall):
        ax.axvline(overall, color=NEUTRAL, ls="--", lw=1, label="reference overall")
    labels = [plain(v) + (f"  ({n} labelled)" if n < 1000 else "") for v, n in zip(t["value"], t["labelled_rows"],
                                                                                       strict=True)]
    ax.set_yticks(y, labels)
    for tick, flagged in zip(ax.get_yticklabels(), t["flagged"], strict=True):
        if flagged:
            tick.set_fontweight("bold")
            tick.set_color(PRODUCTION)
    ax.legend(fontsize="small", loc="best")
    return fig


def segment_mix(result, column: str, *, top: int = 15, ax=None):
    """Share of rows in each value of ``column``: reference (blue) beside production (red)."""
    mix = result.to_df("mix")
    t = mix[mix["column"] == column].sort_values("production_share", ascending=False).head(top).iloc[::-1]
    fig, ax = figure(f"Traffic mix by {plain(column)}", xlabel="share of rows (%)", ylabel=plain(column),
                     size=(7.5, 1.2 + 0.38 * max(len(t), 1)), ax=ax)
    y = np.arange(len(t))
    ax.barh(y + 0.2, 100 * t["reference_share"].fillna(0), height=0.4, color=REFERENCE, label="reference")
    ax.barh(y - 0.2, 100 * t["production_share"], height=0.4, color=PRODUCTION, label="production")
    ax.set_yticks(y, [plain(v) for v in t["value"]])
    ax.legend(fontsize="small")
    return fig


def gap_contributions(result, *, top: int = 12, ax=None):
    """Each segment's contribution to the change of the overall metric (mix change × metric
    change), largest first; red makes production worse."""
    mix = result.to_df("mix").dropna(subset=["gap_contribution"])
    t = mix.reindex(mix["gap_contribution"].abs().sort_values(ascending=False).index).head(top).iloc[::-1]
    higher = result.data["higher_is_better"]
    unit = "percentage points" if higher else "target units"
    fig, ax = figure(f"Contribution of each segment to the change in {result.data['metric']}",
                     xlabel=f"worsening of the overall {result.data['metric']} ({unit})", ylabel="segment",
                     size=(7.5, 1.2 + 0.36 * max(len(t), 1)), ax=ax)
    if len(t) == 0:
        ax.text(0.5, 0.5, "no reference to compare with", ha="center", va="center", transform=ax.transAxes)
        return fig
    value = t["gap_contribution"].to_numpy(float) * (100 if higher else 1)
    ax.barh(np.arange(len(t)), value, color=np.where(value > 0, PRODUCTION, REFERENCE))
    ax.set_yticks(np.arange(len(t)), [f"{plain(c)}={plain(v)}" for c, v in zip(t["column"], t["value"], strict=True)])
    ax.axvline(0, color=NEUTRAL, lw=1)
    ax.text(0.99, 0.02, "red: makes production worse · blue: makes it better\n"
            "the contributions of one column's segments add up to the overall change", transform=ax.transAxes,
            ha="right", va="bottom", fontsize="small", color=NEUTRAL)
    return fig


def metric_over_time(frame: pd.DataFrame, result, column: str, value: str, *, ax=None):
    """One segment's production metric per period (red) against the rest of production (grey),
    with 95% intervals, and the reference overall (blue, dashed)."""
    unit = "day" if frame.attrs.get("freq", "D") == "D" else "week (starting Monday)"
    fig, ax = figure(f"{result.data['metric']} over time: {plain(column)}={plain(value)} vs the rest",
                     xlabel=f"production {unit}", ylabel=_metric_label(result), ax=ax)
    if frame.empty:
        ax.text(0.5, 0.5, "no timestamp: the metric cannot be drawn over time", ha="center", va="center",
                transform=ax.transAxes)
        return fig
    for name, colour, label in (("rest", NEUTRAL, "rest of production"),
                                ("segment", PRODUCTION, f"{plain(column)}={plain(value)}")):
        m = frame[f"{name}_metric"].to_numpy(float)
        ok = np.isfinite(m)
        x = frame["period"][ok]
        ax.plot(x, m[ok], marker="o", ms=3, color=colour, label=label)
        ax.fill_between(x, frame[f"{name}_ci_low"][ok], frame[f"{name}_ci_high"][ok], color=colour, alpha=0.15)
    overall = result.data["overall_reference"]
    if np.isfinite(overall):
        ax.axhline(overall, color=REFERENCE, ls="--", lw=1, label="reference overall")
    ax.legend(fontsize="small")
    fig.autofmt_xdate()
    return fig
