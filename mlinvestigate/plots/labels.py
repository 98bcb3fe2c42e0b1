"""Figures of the labels page: issue rates, label sources, reliability curves, labels per placed class."""

from __future__ import annotations

import numpy as np

from ..contract import contract
from . import NEUTRAL, PRODUCTION, REFERENCE, figure

_SIDE_COLOUR = {"reference": REFERENCE, "production": PRODUCTION}


def _errors(value, lo, hi):
    err = np.vstack([np.clip(np.asarray(value) - lo, 0, None), np.clip(hi - np.asarray(value), 0, None)])
    return np.where(np.isfinite(err), err, 0)


def issue_rates(result):
    """Share of labels flagged as likely wrong, and the share clean labels would give, per period."""
    table = result.to_df("issue_rates")
    fig, ax = figure("Labels flagged as likely wrong, against what clean labels would give",
                     xlabel="period", ylabel="share of labelled rows (%)")
    x = np.arange(len(table))
    colours = [_SIDE_COLOUR[s] for s in table["side"]]
    rate = table["issue_rate"].to_numpy(float) * 100
    ax.bar(x - 0.2, rate, width=0.38, color=colours, alpha=0.9, label="flagged (95% Wilson interval)",
           yerr=_errors(rate, table["ci_low"].to_numpy(float) * 100, table["ci_high"].to_numpy(float) * 100),
           error_kw={"ecolor": "#333333", "capsize": 3})
    ax.bar(x + 0.2, table["expected_rate"].to_numpy(float) * 100, width=0.38, color=colours, alpha=0.35,
           hatch="//", edgecolor="#555555", label="expected from the model's own uncertainty")
    ax.set_xticks(x, [f"{s}\n({n:,} rows)" for s, n in zip(table["side"], table["rows"], strict=True)])
    top = np.nanmax(np.r_[table["ci_high"].to_numpy(float), table["expected_rate"].to_numpy(float), 0.01]) * 100
    ax.set_ylim(0, top * 1.4)  # room for the legend above the bars
    ax.legend(loc="upper center", ncols=2, fontsize="small")
    return fig


def source_chart(result):
    """Per period and label source: agreement with the model's predictions and flagged-label rate."""
    table = result.to_df("sources")
    import matplotlib.pyplot as plt

    if "median_robust_z" in table.columns:  # regression
        panels = [("median_robust_z", None, None, "Median residual of each source",
                   "median residual (robust SDs of reference)", 1),
                  ("outlier_rate", "outlier_ci_low", "outlier_ci_high", "Residual outliers",
                   "share of the source's labelled rows (%)", 100)]
    else:
        panels = [("agreement", "agreement_ci_low", "agreement_ci_high",
                   "Agreement of labels with the model's predictions", "labels equal to the logged prediction (%)", 100)]
        if "issue_rate" in table.columns:
            panels.append(("issue_rate", "issue_ci_low", "issue_ci_high", "Labels flagged as likely wrong",
                           "share of the source's labelled rows (%)", 100))
    n = len(table)
    fig, axes = plt.subplots(1, len(panels), figsize=(10.5, 1.8 + 0.45 * n), layout="constrained", squeeze=False)
    y = np.arange(n)[::-1]
    names = [f"{s} ({side}, {r:,} rows)" for s, side, r in
             zip(table["source"], table["side"], table["labelled_rows"], strict=True)]
    colours = [_SIDE_COLOUR[s] for s in table["side"]]
    for ax, (col, lo, hi, title, xlabel, scale) in zip(axes[0], panels, strict=True):
        figure(title, xlabel=xlabel, ylabel="label source", ax=ax)
        v = table[col].to_numpy(float) * scale
        err = _errors(v, table[lo].to_numpy(float) * scale, table[hi].to_numpy(float) * scale) if lo else None
        ax.barh(y, v, color=colours, alpha=0.85, height=0.6, xerr=err,
                error_kw={"ecolor": "#333333", "capsize": 2})
        ax.set_yticks(y, names if ax is axes[0][0] else [""] * n)
        for tick, flagged in zip(ax.get_yticklabels(), table["flagged"], strict=True):
            if flagged:
                tick.set_color(PRODUCTION)
                tick.set_fontweight("bold")
    return fig


def reliability(result, *, source: str | None = None, ax=None):
    """Observed positive rate per score bin: reference, production (or one source), and reference
    re-weighted to production's class balance."""
    curves = result.data["reliability"]
    ref = curves["reference"]
    prod = curves["sources"][source] if source else curves["production"]
    adjusted = prod.get("adjusted", curves["adjusted"])
    name = f"production, source {source}" if source else "production"
    fig, ax = figure("Same score, same label rate?" if source is None else f"Source {source}",
                     xlabel="model probability of the positive class (bin mean, logit scale)",
                     ylabel="rows labelled positive (%)", size=(7.5, 4.2), ax=ax)
    ax.plot([0.001, 0.999], [0.1, 99.9], color=NEUTRAL, lw=1, ls=":", label="perfect calibration")
    for curve, colour, label in ((ref, REFERENCE, "reference"), (prod, PRODUCTION, name)):
        ok = curve["rows"] > 0
        s, r = curve["score"][ok], curve["rate"][ok] * 100
        ax.plot(s, r, "o-", color=colour, label=label, ms=4)
        ax.fill_between(s, curve["ci_low"][ok] * 100, curve["ci_high"][ok] * 100, color=colour, alpha=0.15)
    ok = ref["rows"] > 0
    ax.plot(ref["score"][ok], adjusted[ok] * 100, "--", color=REFERENCE, lw=1.2,
            label=f"reference at {'the source' if source else 'production'}'s class balance")
    # a logit axis spreads the many low scores of a rare class
    ax.set_xscale("logit")
    ax.set_xlim(0.001, 0.999)
    ticks = [0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter("")
    ax.set_ylim(0, 100)
    ax.legend(loc="upper left", fontsize="small")
    return fig


def reliability_by_source(result):
    """One reliability panel per production label source."""
    import matplotlib.pyplot as plt

    sources = list(result.data["reliability"]["sources"])
    cols = min(3, len(sources))
    rows = int(np.ceil(len(sources) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.9 * rows), layout="constrained", squeeze=False)
    for ax, name in zip(axes.ravel(), sources, strict=False):
        reliability(result, source=name, ax=ax)
    for ax in axes.ravel()[len(sources):]:
        ax.set_visible(False)
    fig.suptitle("Label rate per score bin, each production label source against reference")
    return fig


def labels_given_placed(result):
    """Multiclass: share of each label among inputs the model places in each class, per period."""
    import matplotlib.pyplot as plt

    curves = result.data["reliability"]
    groups = curves["groups"]
    labels = [str(c) for c in result.data["classes"]]
    fig, axes = plt.subplots(1, 2, figsize=(11, 1.8 + 0.55 * len(groups)), layout="constrained")
    for ax, key, cmap in ((axes[0], "reference", "Blues"), (axes[1], "production", "Reds")):
        counts = curves[key]
        shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        ax.imshow(shares * 100, cmap=cmap, vmin=0, vmax=100, aspect="auto")
        figure(f"{key.capitalize()}: labels given (% of row)", xlabel="label given",
               ylabel=f"placed in ({contract('labels').evidence_of(result.finding).definition['placed_by']})", ax=ax)
        ax.grid(False)
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        ax.set_yticks(range(len(groups)), [f"{g} ({int(n):,})" for g, n in zip(groups, counts.sum(axis=1), strict=True)])
        for i in range(len(groups)):
            for j in range(len(labels)):
                ax.text(j, i, f"{shares[i, j] * 100:.0f}%", ha="center", va="center", fontsize="small",
                        color="white" if shares[i, j] > 0.6 else "black")
    return fig


def residuals(result):
    """Regression: residuals in robust standard deviations of reference, per period."""
    ref, prod = result.data["reference_z"], result.data["production_z"]
    limit = contract("labels").evidence_of(result.finding).outlier_z
    fig, ax = figure("Residuals (target − prediction) in robust standard deviations of reference",
                     xlabel="robust z of the residual (clipped to ±12)", ylabel="share of rows (%)")
    bins = np.linspace(-12, 12, 61)
    for values, colour, name in ((ref, REFERENCE, "reference"), (prod, PRODUCTION, "production")):
        if len(values):
            w = np.full(len(values), 100 / len(values))
            ax.hist(np.clip(values, -12, 12), bins=bins, weights=w, color=colour, alpha=0.45, label=name)
    for x in (-limit, limit):
        ax.axvline(x, color=NEUTRAL, ls="--", lw=1)
    ax.set_yscale("log")
    ax.legend(fontsize="small")
    return fig
