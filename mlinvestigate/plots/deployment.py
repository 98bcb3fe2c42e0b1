"""Figures of the deployment page: which versions served production over time, their metric, and
how many logged predictions the model file reproduces."""

from __future__ import annotations

import numpy as np

from . import NEUTRAL, PRODUCTION, REFERENCE, figure, plain


def _version_colours(versions, expected) -> dict:
    import matplotlib

    others = matplotlib.colormaps["tab10"]
    palette = [c for c in (others(i) for i in range(10)) if c[:3] != matplotlib.colors.to_rgb(PRODUCTION)]
    out, i = {}, 0
    for v in versions:
        if expected is not None and v == expected:
            out[v] = REFERENCE
        else:
            out[v] = palette[(i + 1) % len(palette)]
            i += 1
    return out


def version_shares(result, *, ax=None):
    """Share of production traffic per version and day (or week), stacked; the expected version in
    the reference colour."""
    over = result.to_df("versions_over_time")
    fig, ax = figure("Model versions serving production", xlabel="day" if over.attrs.get("freq", "D") == "D"
                     else "week (starting Monday)", ylabel="share of requests (%)", ax=ax)
    if over.empty:
        ax.text(0.5, 0.5, "no timestamp: shares over time not available", ha="center", va="center",
                transform=ax.transAxes)
        return fig
    versions = [c for c in over.columns if c not in ("period", "rows")]
    expected = next((v for v, e in zip(result.to_df("versions")["version"], result.to_df("versions")["expected"],
                                        strict=True) if e), None)
    colours = _version_colours(versions, expected)
    shares = np.nan_to_num(100 * over[versions].to_numpy(float).T)
    ax.stackplot(over["period"], shares, colors=[colours[v] for v in versions],
                 labels=[plain(v) + (" (expected)" if v == expected else "") for v in versions], alpha=0.85)
    ax.set_ylim(0, 100)
    ax.legend(fontsize="small", loc="lower left")
    fig.autofmt_xdate()
    return fig


def metric_by_version(result, *, ax=None):
    """Headline metric of each version on its labelled production rows, with 95% intervals."""
    metric, higher_is_better = result.data["metric"], result.data["higher_is_better"]
    table = result.to_df("versions")
    t = table[table["labelled_rows"] > 0] if len(table) else table
    unit = "share of rows" if higher_is_better else "target units"
    fig, ax = figure(f"{metric} per model version (labelled production rows)", xlabel=f"{metric} ({unit})",
                     ylabel="version", size=(7.5, 1.4 + 0.45 * max(len(t), 1)), ax=ax)
    if t.empty:
        ax.text(0.5, 0.5, "no labelled production rows", ha="center", va="center", transform=ax.transAxes)
        return fig
    y = np.arange(len(t))
    m = t[metric].to_numpy(float)
    lo, hi = t["ci_low"].to_numpy(float), t["ci_high"].to_numpy(float)
    colours = [REFERENCE if e else PRODUCTION for e in t["expected"]]  # expected version in blue
    for i in range(len(t)):
        ax.errorbar(m[i], y[i], xerr=[[max(m[i] - lo[i], 0)], [max(hi[i] - m[i], 0)]], fmt="o",
                    color=colours[i], capsize=4)
    ax.set_yticks(y, [f"{plain(v)} ({n:,} rows)" + (" expected" if e else "")
                      for v, n, e in zip(t["version"], t["labelled_rows"], t["expected"], strict=True)])
    return fig


def reproduction(result, *, ax=None):
    """Share of logged predictions the model file reproduces, per set and version, with 95%
    intervals and the required rate."""
    threshold = result.data["reproduce_rate"]
    t = result.to_df("reproduction")
    fig, ax = figure("Logged predictions reproduced by the model file", xlabel="reproduced (%)",
                     ylabel="rows re-scored", size=(7.5, 1.4 + 0.42 * max(len(t), 1)), ax=ax)
    if t.empty:
        ax.text(0.5, 0.5, "the model file was not re-scored", ha="center", va="center", transform=ax.transAxes)
        return fig
    t = t.iloc[::-1]
    y = np.arange(len(t))
    r = 100 * t["reproduced"].to_numpy(float)
    colours = [REFERENCE if s == "reference" else PRODUCTION for s in t["set"]]
    ax.barh(y, r, color=colours, alpha=0.85)
    ax.errorbar(r, y, xerr=[np.maximum(r - 100 * t["ci_low"].to_numpy(float), 0),
                            np.maximum(100 * t["ci_high"].to_numpy(float) - r, 0)],
                fmt="none", color="black", capsize=3)
    ax.axvline(100 * threshold, color=NEUTRAL, ls="--", lw=1, label=f"required ({threshold:.0%})")
    ax.set_yticks(y, [f"{s}: {plain(v)}" for s, v in zip(t["set"], t["version"], strict=True)])
    ax.set_xlim(0, 100)
    ax.legend(fontsize="small", loc="lower left")
    return fig
