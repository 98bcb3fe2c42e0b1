"""Figures of the measurement page: the headline metric measured and estimated, every metric on
both sides, label coverage over time, class balance, confusion matrices, calibration, and how
labelled rows differ from unlabelled ones."""

from __future__ import annotations

import numpy as np

from . import NEUTRAL, PRODUCTION, REFERENCE, figure, plain


def _unit(result) -> str:
    return "share of rows" if result.data["higher_is_better"] else "target units"


def estimates(result, *, ax=None):
    """The headline metric: reference, production as measured, and production estimated for all
    rows (reweighted labels; from the score), each with its 95% interval."""
    t = result.to_df("estimates").iloc[::-1]
    metric = result.data["metric"]
    fig, ax = figure(f"{metric}: measured and estimated",
                     xlabel=f"{metric} ({_unit(result)})", ylabel="", size=(7.5, 1.4 + 0.5 * len(t)), ax=ax)
    y = np.arange(len(t))
    colours = [REFERENCE if e.startswith("reference") else PRODUCTION if "measured" in e else NEUTRAL
               for e in t["estimate"]]
    v = t["value"].to_numpy(float)
    lo, hi = t["ci_low"].to_numpy(float), t["ci_high"].to_numpy(float)
    for i in range(len(t)):
        if np.isfinite(v[i]):
            ax.errorbar(v[i], y[i], xerr=[[max(v[i] - lo[i], 0)], [max(hi[i] - v[i], 0)]], fmt="o",
                        color=colours[i], capsize=4, ms=7)
    ax.set_yticks(y, t["estimate"])
    return fig


def all_metrics(result, *, ax=None):
    """Every metric on reference (blue) and production (red) with 95% bootstrap intervals."""
    t = result.to_df("metrics")
    names = list(dict.fromkeys(t["metric"]))
    fig, ax = figure("Every metric, same definition on both sides", xlabel="metric value",
                     ylabel="metric", size=(7.5, 1.2 + 0.45 * len(names)), ax=ax)
    y = {m: i for i, m in enumerate(names[::-1])}
    for side, colour, offset in (("reference", REFERENCE, 0.15), ("production", PRODUCTION, -0.15)):
        s = t[t["set"] == side]
        for r in s.itertuples():
            if np.isfinite(r.value):
                ax.errorbar(r.value, y[r.metric] + offset,
                            xerr=[[max(r.value - r.ci_low, 0) if np.isfinite(r.ci_low) else 0],
                                  [max(r.ci_high - r.value, 0) if np.isfinite(r.ci_high) else 0]],
                            fmt="o", color=colour, capsize=3, label=side if r.Index == s.index[0] else None)
    ax.set_yticks(list(y.values()), list(y.keys()))
    if not result.data["higher_is_better"]:
        ax.set_xscale("symlog")
        ax.set_xlabel("metric value (target units; R² and MAPE unitless), symmetric log scale")
    ax.legend(fontsize="small")
    return fig


def label_coverage(result, *, ax=None):
    """Share of production predictions that have a label, per day (or week), with 95% intervals."""
    t = result.to_df("coverage")
    unit = "day" if t.attrs.get("freq", "D") == "D" else "week (starting Monday)"
    fig, ax = figure("Label coverage in production", xlabel=unit, ylabel="predictions with a label (%)", ax=ax)
    if t.empty:
        ax.text(0.5, 0.5, "no timestamp: coverage over time not available", ha="center", va="center",
                transform=ax.transAxes)
        return fig
    ax.plot(t["period"], 100 * t["coverage"], color=PRODUCTION, marker="o", ms=3, label="labelled share")
    ax.fill_between(t["period"], 100 * t["ci_low"], 100 * t["ci_high"], color=PRODUCTION, alpha=0.15,
                    label="95% interval")
    ax.set_ylim(0, 105)
    ax.legend(fontsize="small", loc="lower left")
    fig.autofmt_xdate()
    return fig


def class_balance(result, *, top: int = 15, ax=None):
    """Class shares: labels (solid, with 95% intervals) and predictions (hatched) in reference
    (blue) and production (red)."""
    t = result.to_df("class_balance").head(top)
    fig, ax = figure("Class balance", xlabel="class", ylabel="share of rows (%)",
                     size=(max(6.0, 1.5 + 1.1 * len(t)), 3.8), ax=ax)
    x = np.arange(len(t))
    bars = (("reference_labels", REFERENCE, None, "reference labels"),
            ("production_labels", PRODUCTION, None, "production labels (labelled rows)"),
            ("reference_predictions", REFERENCE, "//", "reference predictions"),
            ("production_predictions", PRODUCTION, "//", "production predictions (all rows)"))
    for i, (col, colour, hatch, label) in enumerate(bars):
        ax.bar(x + (i - 1.5) * 0.2, 100 * t[col].fillna(0), width=0.2, color="white" if hatch else colour,
               edgecolor=colour, hatch=hatch, label=label)
        if f"{col}_low" in t:  # 95% Wilson intervals of the label shares
            v = 100 * t[col].to_numpy(float)
            ax.errorbar(x + (i - 1.5) * 0.2, v, yerr=[np.maximum(v - 100 * t[f"{col}_low"], 0),
                                                      np.maximum(100 * t[f"{col}_high"] - v, 0)],
                        fmt="none", color="black", capsize=2, lw=1)
    ax.set_xticks(x, [plain(c) for c in t["class"]])
    ax.legend(fontsize="small")
    return fig


def confusion_matrices(result):
    """Reference and production confusion matrices side by side, each row normalised to 100%
    (the recall of each true class on the diagonal), counts in each cell."""
    import matplotlib.pyplot as plt

    ref, prod = result.to_df("confusion_reference"), result.to_df("confusion_production")
    k = len(ref)
    fig, axes = plt.subplots(1, 2, figsize=(4 + 1.6 * k, 1.8 + 0.9 * k), layout="constrained")
    for ax, cm, side, cmap in ((axes[0], ref, "reference", "Blues"), (axes[1], prod, "production", "Reds")):
        counts = cm.to_numpy()
        rows = counts.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(rows > 0, counts / rows, 0)
        ax.imshow(share, cmap=cmap, vmin=0, vmax=1)
        ax.set_title(f"{side} ({counts.sum():,} labelled rows)")
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        labels = [plain(c, 16) for c in cm.columns]
        ax.set_xticks(range(k), labels, rotation=30 if k > 3 else 0, ha="right" if k > 3 else "center")
        ax.set_yticks(range(k), [plain(c, 16) for c in cm.index])
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{share[i, j]:.0%}\n{counts[i, j]:,}", ha="center", va="center", fontsize="small",
                        color="white" if share[i, j] > 0.6 else "black")
    fig.suptitle("Confusion matrices (share of each true class; row counts below)")
    return fig


def calibration(result, *, ax=None):
    """Reliability of the score on reference: observed positive rate against mean score per bin."""
    t = result.to_df("calibration_reference")
    conf = result.data.get("confidence", {})
    fig, ax = figure("Score calibration on reference", xlabel="mean score in bin (probability)",
                     ylabel="observed positive rate (share)", size=(5.2, 4.4), ax=ax)
    ax.plot([0, 1], [0, 1], color=NEUTRAL, ls="--", lw=1, label="perfect calibration")
    ax.plot(t["score_mean"], t["observed_rate"], color=REFERENCE, marker="o",
            label=f"reference, 10 score bins (ECE {conf.get('calibration_error', np.nan):.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize="small", loc="upper left")
    return fig


def labelled_vs_unlabelled(result, *, top: int = 12, ax=None):
    """How much each column differs between labelled and unlabelled production rows
    (standardised mean difference for numbers, total variation distance for categories)."""
    t = result.to_df("labelled_vs_unlabelled").head(top).iloc[::-1]
    fig, ax = figure("Labelled vs unlabelled production rows", xlabel="difference (SMD or TV distance, unitless)",
                     ylabel="column", size=(7.5, 1.2 + 0.36 * max(len(t), 1)), ax=ax)
    if t.empty:
        return fig
    numeric = t["statistic"].str.startswith("standardised").to_numpy()
    ax.barh(np.arange(len(t)), t["effect"].fillna(0), color=np.where(numeric, PRODUCTION, NEUTRAL))
    ax.set_yticks(np.arange(len(t)), [plain(c) for c in t["column"]])
    ax.axvline(0.1, color=NEUTRAL, ls=":", lw=1, label="0.1: a noticeable difference")
    ax.legend(fontsize="small", loc="lower right")
    return fig
