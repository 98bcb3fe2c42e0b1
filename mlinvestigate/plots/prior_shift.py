"""Figures of the prior-shift page: class balance, estimates, thresholds, re-weighted probabilities."""

from __future__ import annotations

import numpy as np

from . import NEUTRAL, PRODUCTION, REFERENCE, figure

_MARKERS = {"production, labelled rows": "o", "production, EM on the recalibrated score": "s",
            "production, black-box shift estimation": "D", "production, share of predictions": "x"}


def class_balance(result):
    """Share of each class in reference and production (observed or estimated), with 95% intervals."""
    table = result.to_df("class_balance")
    how = "estimated" if result.data["estimated"] else "observed"
    fig, ax = figure(f"Class balance: reference vs production ({how})", xlabel="class",
                     ylabel="share of rows (%)", size=(7.5, 3.8))
    x = np.arange(len(table))
    prod = table["production"].to_numpy(float) * 100
    err = np.vstack([prod - table["ci_low"].to_numpy(float) * 100, table["ci_high"].to_numpy(float) * 100 - prod])
    ax.bar(x - 0.2, table["reference"].to_numpy(float) * 100, width=0.38, color=REFERENCE, label="reference")
    ax.bar(x + 0.2, prod, width=0.38, color=PRODUCTION, label=f"production ({how}, 95% interval)",
           yerr=np.where(np.isfinite(err), np.clip(err, 0, None), 0), error_kw={"ecolor": "#333333", "capsize": 3})
    ax.set_xticks(x, table["class"])
    ax.legend(fontsize="small")
    return fig


def estimates(result):
    """Every production estimate per class (with intervals) against the reference share."""
    table = result.to_df("estimates")
    classes = list(dict.fromkeys(table["class"]))
    if result.data["binary"]:
        classes = [str(result.data["classes"][result.data["positive_index"]])]
    methods = [m for m in _MARKERS if m in set(table["estimate"])]
    fig, ax = figure("Production class shares: observed and estimated from the model's outputs",
                     xlabel="share of rows (%)", ylabel="class", size=(8.5, 1.8 + 0.9 * len(classes)))
    for i, c in enumerate(classes):
        rows = table[table["class"] == c].set_index("estimate")
        ref = rows.loc["reference (labels)", "share"] * 100
        ax.plot([ref, ref], [i - 0.4, i + 0.4], color=REFERENCE, lw=2.5, label="reference" if i == 0 else None)
        for j, m in enumerate(methods):
            if m not in rows.index:
                continue
            r = rows.loc[m]
            y = i - 0.3 + 0.6 * (j + 0.5) / len(methods)
            v = r["share"] * 100
            lo, hi = r["ci_low"] * 100, r["ci_high"] * 100
            ax.errorbar([v], [y], xerr=[[max(v - lo, 0) if np.isfinite(lo) else 0], [max(hi - v, 0) if np.isfinite(hi) else 0]],
                        fmt=_MARKERS[m], color=PRODUCTION, alpha=1.0 if r["used"] else 0.5, capsize=3,
                        ms=7 if r["used"] else 5, label=(m.removeprefix("production, ") + (" (used)" if r["used"] else ""))
                        if i == 0 else None)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_ylim(-0.6, len(classes) - 0.4)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return fig


def threshold_curve(result):
    """Accuracy and expected cost against the threshold, at the reference and the production balance."""
    import matplotlib.pyplot as plt

    d = result.data
    grid, curves = d["grid"], d["curves"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    panels = (("accuracy", "Expected accuracy", "accuracy (%)", 100, "accuracy"),
              ("cost", f"Expected cost (a false negative costs {d['cost_ratio']:g} false positives)",
               "cost per 100 rows (false-positive units)", 100, "cost"))
    for ax, (key, title, ylabel, scale, best_key) in zip(axes, panels, strict=True):
        figure(title, xlabel="score threshold (predict positive at or above)", ylabel=ylabel, ax=ax)
        ax.plot(grid, curves["reference"][key] * scale, color=REFERENCE,
                label=f"reference balance ({d['reference_rate']:.1%} positive)")
        ax.plot(grid, curves["production"][key] * scale, color=PRODUCTION,
                label=f"production balance ({d['production_rate']:.1%} positive)")
        ax.axvline(d["current_threshold"], color=NEUTRAL, ls="--", lw=1.2,
                   label=f"current threshold {d['current_threshold']:.3g}")
        best = grid[d["best_index"][best_key]]
        ax.axvline(best, color=PRODUCTION, ls=":", lw=1.5, label=f"best now {best:.3g}")
        ax.set_xlim(0, 1)
        ax.legend(fontsize="small")
    return fig


def reweighted(result):
    """Production probabilities calibrated for the reference balance and re-weighted to production's."""
    d = result.data
    fig, ax = figure("Production probabilities before and after re-weighting to the new class balance",
                     xlabel="probability of the positive class (0–1)", ylabel="share of production rows (%)")
    bins = np.linspace(0, 1, 41)
    for values, colour, name in ((d["prod_calibrated"], REFERENCE, "at the reference balance"),
                                 (d["prod_adjusted"], PRODUCTION, "re-weighted to the production balance")):
        ax.hist(values, bins=bins, weights=np.full(len(values), 100 / len(values)), color=colour, alpha=0.45,
                label=name)
    ax.axvline(d["current_threshold"], color=NEUTRAL, ls="--", lw=1.2, label="current threshold")
    ax.set_yscale("log")
    ax.legend(fontsize="small")
    return fig


def target_distribution(result):
    """Regression: cumulative distribution of the target, reference vs production."""
    d = result.data
    fig, ax = figure("Target distribution: reference vs production", xlabel="target value (its own units)",
                     ylabel="rows at or below (%)")
    for values, colour, name in ((d["reference"], REFERENCE, "reference"), (d["production"], PRODUCTION, "production")):
        v = np.sort(values)
        ax.step(v, np.arange(1, len(v) + 1) / len(v) * 100, where="post", color=colour, label=name)
    both = np.concatenate([d["reference"], d["production"]])
    if len(both) and np.nanmax(np.abs(both)) > 100 * max(np.nanmedian(np.abs(both)), 1e-9):
        ax.set_xscale("symlog", linthresh=max(float(np.nanquantile(np.abs(both), 0.25)), 1e-6))
        ax.set_xlabel("target value (its own units, symmetric log scale)")
    ax.legend(fontsize="small")
    return fig
