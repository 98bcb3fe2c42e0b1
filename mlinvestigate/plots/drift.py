"""Figures of the drift page: distributions side by side, PSI per feature, drift over time and the
domain classifier's importances. Every function takes the drift check's :class:`Result`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import NEUTRAL, PRODUCTION, REFERENCE, figure

# Feature lines over time: distinct from the reference/production pair.
_LINES = ("#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_DRIFTED = "#e67e22"
_TOP_CATEGORIES = 15


def _text(label) -> str:
    """A data value as matplotlib text: ``$`` would start math mode."""
    return str(label).replace("$", r"\$")


def _column(result, name: str):
    stats = {**result.data["stats"], **result.data.get("output_stats", {})}
    if name not in stats:
        raise KeyError(f"no drift statistics for {name!r}; columns: {', '.join(map(str, stats))}")
    return stats[name]


def distribution(result, feature: str):
    """Reference and production distributions of one column.

    Numeric and datetime columns: shares on shared bins (left) and the cumulative distributions
    (right, where the KS statistic is the largest vertical gap). Categorical columns: side-by-side
    bars of each category's share.
    """
    d = _column(result, feature)
    if d.kind == "categorical":
        return _category_bars(feature, d)
    import matplotlib.pyplot as plt

    p = d.profile
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    unit = "date" if p["datetime"] else "value, in the column's units"
    title = f"{_text(feature)}: PSI {d.psi:.3g}, KS {d.ks:.3g}"
    fig.suptitle(title)
    figure("share of rows per bin", xlabel=f"{_text(feature)} ({unit})", ylabel="share of rows (%)", ax=left)
    figure("cumulative distribution", xlabel=f"{_text(feature)} ({unit})",
           ylabel="share of rows at or below (%)", ax=right)
    if "hist_edges" not in p:
        for ax in (left, right):
            ax.text(0.5, 0.5, "no values on one side", ha="center", va="center", transform=ax.transAxes)
        return fig
    edges = _axis_values(p["hist_edges"], p["datetime"])
    for side, colour in (("reference", REFERENCE), ("production", PRODUCTION)):
        left.stairs(100 * np.asarray(p[f"{side}_hist"]), edges, color=colour, lw=1.6, label=side,
                    fill=side == "reference", alpha=0.35 if side == "reference" else 1.0)
        q = np.asarray(p[f"{side}_quantiles"])
        if np.isfinite(q).any():
            right.plot(_axis_values(q, p["datetime"]), 100 * np.asarray(p["probs"]), color=colour,
                       lw=1.6, label=side, drawstyle="steps-post")
    if p.get("log"):
        for ax in (left, right):
            ax.set_xscale("log")
            ax.set_xlabel(f"{_text(feature)} ({unit}, log scale)")
        right.set_xlim(edges[0], edges[-1])
    left.legend(fontsize="small")
    left.text(0.99, 0.97, "0.5%–99.5% range shown", transform=left.transAxes, ha="right", va="top",
              fontsize="x-small", color=NEUTRAL)
    right.legend(fontsize="small", loc="lower right")
    if p["datetime"]:
        for ax in (left, right):
            ax.xaxis_date()
        fig.autofmt_xdate()
    return fig


def _axis_values(values, datetime: bool):
    """Plot coordinates: nanosecond datetimes become matplotlib date numbers."""
    values = np.asarray(values, dtype=float)
    if not datetime:
        return values
    import matplotlib.dates as mdates

    return mdates.date2num(pd.to_datetime(values.astype("int64")).to_pydatetime())


def _category_bars(feature: str, d):
    p = d.profile
    table = pd.DataFrame({"category": p["categories"], "reference": 100 * np.asarray(p["reference_share"]),
                          "production": 100 * np.asarray(p["production_share"]), "unseen": p["unseen"]})
    table["order"] = table[["reference", "production"]].max(axis=1)
    table = table.sort_values("order", ascending=False, kind="stable")
    if len(table) > _TOP_CATEGORIES:
        rest = table.iloc[_TOP_CATEGORIES - 1:]
        table = pd.concat([table.iloc[:_TOP_CATEGORIES - 1], pd.DataFrame(
            {"category": [f"({len(rest)} more)"], "reference": [rest["reference"].sum()],
             "production": [rest["production"].sum()], "unseen": [False]})], ignore_index=True)
    fig, ax = figure(f"{_text(feature)}: share of each category (PSI {d.psi:.3g}, JS {d.js:.3g})",
                     xlabel="category", ylabel="share of rows (%)",
                     size=(max(6.0, 0.6 * len(table) + 2), 3.8))
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["reference"], width=0.4, color=REFERENCE, label="reference")
    ax.bar(x + 0.2, table["production"], width=0.4, color=PRODUCTION, label="production")
    labels = [_text(c) + (" (new)" if unseen else "") for c, unseen in zip(table["category"], table["unseen"],
                                                                             strict=True)]
    ax.set_xticks(x, labels, rotation=30 if len(table) > 5 else 0, ha="right" if len(table) > 5 else "center")
    ax.legend(fontsize="small")
    return fig


def psi_bars(result, *, top: int = 15):
    """PSI of the most drifted features, with the warning and critical levels."""
    table = result.to_df("features").dropna(subset=["psi"]).head(top)
    th = result.data["thresholds"]
    fig, ax = figure(f"PSI of the {len(table)} most drifted features", xlabel="PSI (unitless)",
                     ylabel="feature", size=(7.5, 0.9 + 0.32 * max(len(table), 3)))
    y = np.arange(len(table))[::-1]
    colours = [_DRIFTED if drifted else NEUTRAL for drifted in table["drifted"]]
    ax.barh(y, table["psi"], color=colours)
    ax.set_yticks(y, [_text(f) for f in table["feature"]])
    ax.scatter(table["psi_noise"], y, marker="|", s=120, color="black", zorder=3,
               label="expected from chance alone")
    ax.axvline(th["psi_warning"], color=NEUTRAL, ls="--", lw=1, label=f"warning {th['psi_warning']}")
    ax.axvline(th["psi_critical"], color="black", ls="--", lw=1, label=f"critical {th['psi_critical']}")
    from matplotlib.patches import Patch

    handles, _ = ax.get_legend_handles_labels()
    handles += [Patch(color=_DRIFTED, label="drifted"), Patch(color=NEUTRAL, label="not drifted")]
    ax.legend(handles=handles, fontsize="small", loc="lower right")
    return fig


def over_time(result):
    """Per production period: PSI of the leading features (top) and the model's metric (bottom)."""
    import matplotlib.pyplot as plt

    table = result.to_df("over_time")
    info = result.data["time"]
    if table.empty:
        return None
    psi_cols = [c for c in table.columns if c.startswith("psi ")]
    metric = info["metric"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8.5, 6.2), sharex=True, layout="constrained")
    fig.suptitle(f"Drift and {metric} per production {info['period']}")
    figure("PSI against reference", xlabel="", ylabel="PSI (unitless)", ax=top)
    for colour, col in zip(_LINES, psi_cols, strict=False):
        name = col[len("psi "):]
        top.plot(table["period"], table[col], color=colour, marker="o", ms=3, label=_text(name))
        top.plot(table["period"], table[f"noise {name}"], color=colour, ls=":", lw=1)
    top.plot([], [], color=NEUTRAL, ls=":", lw=1, label="chance alone reaches (95%)")
    top.axhline(result.data["thresholds"]["psi_warning"], color=NEUTRAL, ls="--", lw=1, label="warning level")
    top.legend(fontsize="small", loc="upper left")
    unit = "share correct" if metric == "accuracy" else "target units"
    figure(f"{metric} of labelled production rows", xlabel=f"production {info['period']} (date)",
           ylabel=f"{metric} ({unit})", ax=bottom)
    ok = table["labelled"] > 0
    if ok.any():
        bottom.plot(table["period"][ok], table[metric][ok], color=PRODUCTION, marker="o", ms=3, label="production")
        bottom.fill_between(table["period"][ok], table[f"{metric} low"][ok], table[f"{metric} high"][ok],
                            color=PRODUCTION, alpha=0.2, lw=0, label="95% interval")
    else:
        bottom.text(0.5, 0.5, "no labelled production rows yet", ha="center", va="center",
                    transform=bottom.transAxes)
    ref = info.get("reference_metric") or {}
    if ref.get("value") is not None:
        bottom.axhline(ref["value"], color=REFERENCE, lw=1.5, label="reference")
    bottom.legend(fontsize="small", loc="lower left")
    fig.autofmt_xdate()
    return fig


def domain_importance(result, *, top: int = 15):
    """How much the domain classifier's AUC drops when each feature is shuffled."""
    dc = result.data.get("domain")
    if dc is None or dc.importance.empty:
        return None
    table = dc.importance.head(top)
    fig, ax = figure(f"What separates production from reference (classifier AUC {dc.auc:.3f})",
                     xlabel="drop in ROC AUC when the feature is shuffled (AUC points)", ylabel="feature",
                     size=(7.5, 0.9 + 0.32 * max(len(table), 3)))
    y = np.arange(len(table))[::-1]
    ax.barh(y, table["auc_drop"], xerr=table["auc_drop_sd"], color=PRODUCTION, alpha=0.8,
            error_kw={"ecolor": NEUTRAL, "lw": 1})
    ax.set_yticks(y, [_text(f) for f in table["feature"]])
    ax.axvline(0, color=NEUTRAL, lw=1)
    return fig
