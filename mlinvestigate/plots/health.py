"""Figures of the health page: volume, latency and failure rates per day against their bars, and
the inputs' missing rates in reference and production."""

from __future__ import annotations

import numpy as np

from . import NEUTRAL, PRODUCTION, REFERENCE, figure, plain


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color=NEUTRAL)


def volume(result, *, ax=None):
    """Production rows per day, the expected daily volume and the drop bar (a fraction of it)."""
    daily = result.to_df("daily")
    fig, ax = figure("Production volume per day", xlabel="day", ylabel="rows per day", ax=ax)
    if daily.empty:
        _empty(ax, "no timestamp: volume per day not available")
        return fig
    partial = daily["partial_day"].to_numpy(bool)
    ax.bar(daily["day"][~partial], daily["rows"][~partial], color=PRODUCTION, width=0.8, label="rows")
    if partial.any():
        ax.bar(daily["day"][partial], daily["rows"][partial], color=NEUTRAL, width=0.8,
               label="rows (day only partly logged)")
    drop = result.data["volume_drop"]
    expected = result.data["expected_daily_volume"]
    median = float(np.median(daily["rows"][~partial])) if (~partial).any() else np.nan
    if expected:
        ax.axhline(expected, color=REFERENCE, ls="--", lw=1.2, label=f"expected ({expected:,.0f})")
        ax.axhline(drop * expected, color=REFERENCE, ls=":", lw=1, label=f"{drop:.0%} of expected")
    if np.isfinite(median):
        ax.axhline(median, color=NEUTRAL, ls="--", lw=1, label=f"median day ({median:,.0f})")
    ax.legend(fontsize="small", loc="lower left")
    fig.autofmt_xdate()
    return fig


def latency(result, *, ax=None):
    """P50, P95 (with its 95% interval) and P99 latency per day, and the expected P95."""
    daily = result.to_df("daily")
    fig, ax = figure("Serving latency per day", xlabel="day", ylabel="latency (ms)", ax=ax)
    if daily.empty or "latency_p95_ms" not in daily:
        _empty(ax, "no latency per day (columns.latency_ms or columns.timestamp missing)")
        return fig
    x = daily["day"]
    ax.plot(x, daily["latency_p50_ms"], color=PRODUCTION, alpha=0.5, lw=1, label="P50")
    ax.plot(x, daily["latency_p95_ms"], color=PRODUCTION, marker="o", ms=3, label="P95")
    ax.fill_between(x, daily["latency_p95_low_ms"], daily["latency_p95_high_ms"], color=PRODUCTION, alpha=0.15,
                    label="P95 95% interval")
    ax.plot(x, daily["latency_p99_ms"], color=PRODUCTION, ls=":", lw=1, label="P99")
    expected = result.data["expected_latency_p95_ms"]
    if expected:
        ax.axhline(expected, color=REFERENCE, ls="--", lw=1.2, label=f"expected P95 ({expected:g} ms)")
    top = np.nanmax(np.r_[daily["latency_p99_ms"].to_numpy(float), expected or 0, 1.0])
    ax.set_ylim(0, 1.4 * top)  # room for the legend above the lines
    ax.legend(fontsize="small", loc="upper left", ncols=3)
    fig.autofmt_xdate()
    return fig


def failure_rates(result, *, ax=None):
    """Error and timeout rates per day with 95% Wilson intervals, and their thresholds."""
    daily = result.to_df("daily")
    fig, ax = figure("Errors and timeouts per day", xlabel="day", ylabel="share of requests (%)", ax=ax)
    if daily.empty or "error_rate" not in daily:
        _empty(ax, "no status per day (columns.status or columns.timestamp missing)")
        return fig
    x = daily["day"]
    th = result.data["thresholds"]
    for kind, colour, style in (("error", PRODUCTION, "-"), ("timeout", "#8c564b", "--")):
        ax.plot(x, 100 * daily[f"{kind}_rate"], color=colour, ls=style, marker="o", ms=3, label=f"{kind} rate")
        ax.fill_between(x, 100 * daily[f"{kind}_rate_low"], 100 * daily[f"{kind}_rate_high"], color=colour,
                        alpha=0.12)
        ax.axhline(100 * th[f"{kind}_rate"], color=colour, ls=":", lw=1, label=f"{kind} threshold")
    top = np.nanmax(np.r_[100 * daily["error_rate_high"].to_numpy(float), 100 * daily["timeout_rate_high"].to_numpy(float),
                          100 * th["error_rate"], 0.1])
    ax.set_ylim(0, 1.3 * top)
    ax.legend(fontsize="small", loc="upper left", ncols=2)
    fig.autofmt_xdate()
    return fig


def missing_rates(result, *, top: int = 15, ax=None):
    """Missing rate of each input in reference (blue) and production (red), largest increase first."""
    inputs = result.to_df("inputs")
    t = inputs.sort_values("missing_increase", ascending=False).head(top).iloc[::-1]
    fig, ax = figure("Missing inputs: reference vs production", xlabel="rows with the value missing (%)",
                     ylabel="feature", size=(7.5, 1.2 + 0.36 * max(len(t), 1)), ax=ax)
    if t.empty:
        _empty(ax, "no features")
        return fig
    y = np.arange(len(t))
    ax.barh(y + 0.2, 100 * t["reference_missing"], height=0.4, color=REFERENCE, label="reference")
    ax.barh(y - 0.2, 100 * t["production_missing"], height=0.4, color=PRODUCTION, label="production")
    ax.set_yticks(y, [plain(f) + (" (absent)" if k == "absent" else "") for f, k in zip(t["feature"], t["type"],
                                                                                        strict=True)])
    ax.legend(fontsize="small")
    return fig
