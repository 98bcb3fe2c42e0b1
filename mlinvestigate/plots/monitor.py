"""Figures of the monitoring trend page: one panel per layer over time, alerts marked where they fired.

Each function takes a monitoring state (``mlinvestigate.monitoring.load``) and returns a figure.
Production is red, the reference (offline) blue, as on every page; a triangle on a panel's top
edge marks a window where an alert of that panel fired (dark red: critical, orange: warning).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import NEUTRAL, PRODUCTION, REFERENCE, plain

WARNING = "#e67e22"
CRITICAL = "#7b241c"
PSI_COLOURS = ("#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def _axes(rows: int, title: str, height: float = 2.6):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, 1, figsize=(8, height * rows), sharex=True, layout="constrained",
                             squeeze=False)
    fig.suptitle(title)
    for ax in axes[:, 0]:
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("window start")
    return fig, list(axes[:, 0])


def _x(state) -> pd.Series:
    return pd.to_datetime(state.windows["window_start"])


def _col(state, name: str) -> np.ndarray:
    w = state.windows
    return w[name].to_numpy(float) if name in w else np.full(len(w), np.nan)


def _mark(ax, state, rules: tuple[str, ...], subject: str | None = None) -> None:
    """Triangles on the top edge of ``ax`` at windows where one of ``rules`` fired."""
    fired = state.fired
    if fired.empty:
        return
    hit = fired[fired["rule"].isin(rules)]
    if subject is not None:
        hit = hit[hit["subject"] == subject]
    for level, colour, label in ((1, WARNING, "warning fired"), (2, CRITICAL, "alert fired")):
        at = pd.to_datetime(hit.loc[hit["fired"] == level, "window_start"]).unique()
        if len(at):
            ax.scatter(at, np.ones(len(at)), transform=ax.get_xaxis_transform(), marker="v", s=60,
                       color=colour, clip_on=False, zorder=5, label=label)


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color=NEUTRAL)


def _legend(ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        seen = dict(zip(labels, handles, strict=True))
        ax.legend(seen.values(), seen.keys(), fontsize="small", loc="best")


def infrastructure(state):
    """Volume, failed requests and latency per window against their expectations."""
    fig, (vol, err, lat) = _axes(3, "Infrastructure: volume, failures and latency per window")
    x = _x(state)
    info = state.info.get("expected", {})
    rows = _col(state, "rows")
    partial = state.windows["partial"].to_numpy(bool)
    width = (x.diff().median() if len(x) > 1 else pd.Timedelta(days=1)) * 0.8
    vol.bar(x[~partial], rows[~partial], width=width, color=PRODUCTION, label="rows")
    if partial.any():
        vol.bar(x[partial], rows[partial], width=width, color=NEUTRAL, label="rows (window partly logged)")
    if info.get("volume_per_window"):
        vol.axhline(info["volume_per_window"], color=REFERENCE, ls="--", lw=1.2, label="expected volume")
    vol.set_ylabel("rows per window")
    _mark(vol, state, ("volume_change",))
    _legend(vol)
    if "failed_rate" in state.windows:
        err.plot(x, 100 * _col(state, "error_rate"), color=PRODUCTION, marker=".", label="errors")
        err.plot(x, 100 * _col(state, "timeout_rate"), color=PRODUCTION, ls=":", marker=".", label="timeouts")
        bar = state.info.get("rules", {}).get("error_rate", {}).get("threshold")
        if bar is not None:
            err.axhline(100 * bar, color=REFERENCE, ls="--", lw=1, label="failed-request bar")
        _mark(err, state, ("error_rate",))
    else:
        _empty(err, "no columns.status: failures not monitored")
    err.set_ylabel("% of requests")
    _legend(err)
    if "latency_p95" in state.windows:
        for q, style in (("p50", ":"), ("p95", "-"), ("p99", "--")):
            lat.plot(x, _col(state, f"latency_{q}"), color=PRODUCTION, ls=style, marker=".", label=q.upper())
        if info.get("latency_p95_ms"):
            lat.axhline(info["latency_p95_ms"], color=REFERENCE, ls="--", lw=1, label="expected P95")
        _mark(lat, state, ("latency_p95",))
    else:
        _empty(lat, "no columns.latency_ms: latency not monitored")
    lat.set_ylabel("latency (ms)")
    _legend(lat)
    _mark(vol, state, ("model_version",))
    fig.autofmt_xdate()
    return fig


def behaviour(state):
    """Prediction and score distributions, low-confidence share and missing values per window."""
    fig, (pred, conf, miss) = _axes(3, "Model behaviour: predictions, confidence and missing inputs")
    x = _x(state)
    ref = state.info.get("reference", {})
    if "positive_rate" in state.windows:
        pred.plot(x, 100 * _col(state, "positive_rate"), color=PRODUCTION, marker=".", label="predicted positive")
        if ref.get("positive_rate") is not None:
            pred.axhline(100 * ref["positive_rate"], color=REFERENCE, ls="--", lw=1.2, label="reference")
        pred.set_ylabel("% predicted positive")
    else:
        pred.plot(x, _col(state, "prediction_psi"), color=PRODUCTION, marker=".", label="prediction PSI")
        pred.set_ylabel("PSI of predictions")
    _legend(pred)
    if "low_confidence" in state.windows:
        conf.plot(x, 100 * _col(state, "low_confidence"), color=PRODUCTION, marker=".", label="low confidence")
        if ref.get("low_confidence") is not None:
            conf.axhline(100 * ref["low_confidence"], color=REFERENCE, ls="--", lw=1.2, label="reference")
        conf.set_ylabel("% low-confidence")
    else:
        _empty(conf, "no score column: confidence not monitored")
        conf.set_ylabel("% low-confidence")
    _legend(conf)
    miss.plot(x, 100 * _col(state, "missing_max"), color=PRODUCTION, marker=".", label="most-missing feature")
    miss.set_ylabel("% missing")
    _mark(miss, state, ("missing_rate",))
    _legend(miss)
    fig.autofmt_xdate()
    return fig


def performance(state):
    """The headline metric per window: realised (with its 95% interval) and estimated from the scores."""
    import matplotlib.pyplot as plt

    perf = state.performance()
    ref = state.info.get("reference", {})
    name = ref.get("metric", "metric")
    fig, ax = plt.subplots(figsize=(8, 3.8), layout="constrained")
    ax.set_title(f"Performance: {name} per window, realised and estimated")
    ax.set_xlabel("window start")
    ax.set_ylabel(name)
    ax.grid(alpha=0.3)
    if perf.empty:
        _empty(ax, "no windows yet")
        return fig
    x = _x(state)
    real = perf["metric"].to_numpy(float)
    if np.isfinite(real).any():
        ax.fill_between(x, perf["metric_low"], perf["metric_high"], color=PRODUCTION, alpha=0.15, lw=0)
        ax.plot(x, real, color=PRODUCTION, marker="o", ms=3, label="realised (labelled rows, 95% interval)")
    est = perf["estimate"].to_numpy(float)
    if np.isfinite(est).any():
        ax.plot(x, est, color=PRODUCTION, ls="--", alpha=0.8, label="estimated from the scores")
    if ref.get("value") is not None:
        ax.axhline(ref["value"], color=REFERENCE, lw=1.4, label=f"offline ({ref['value']:.3f})")
        gap = state.info.get("rules", {}).get("offline_gap", {}).get("threshold")
        if gap is not None and ref.get("higher_is_better", True):
            ax.axhline(ref["value"] - gap, color=REFERENCE, ls=":", lw=1, label="offline − gap bar")
    if not np.isfinite(real).any() and not np.isfinite(est).any():
        _empty(ax, "no labels and no score: performance not available")
    _mark(ax, state, ("metric_drop", "offline_gap"))
    _legend(ax)
    fig.autofmt_xdate()
    return fig


def drift(state, n: int = 5):
    """PSI over time of the ``n`` features that moved most, with the warning and critical bars."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.8), layout="constrained")
    ax.set_title("Feature drift: PSI per window of the features that moved most")
    ax.set_xlabel("window start")
    ax.set_ylabel("PSI against reference")
    ax.grid(alpha=0.3)
    worst = state.worst_features(n)
    if not worst:
        _empty(ax, "no features")
        return fig
    f = state.features
    for colour, name in zip(PSI_COLOURS, worst, strict=False):
        g = f[f["feature"] == name].sort_values("window_start")
        ax.plot(pd.to_datetime(g["window_start"]), g["psi"], color=colour, marker=".", label=plain(name))
    rule = state.info.get("rules", {}).get("feature_psi", {})
    for key, style in (("warning", ":"), ("threshold", "--")):
        if rule.get(key) is not None:
            ax.axhline(rule[key], color=NEUTRAL, ls=style, lw=1, label=f"PSI {rule[key]:g}")
    _mark(ax, state, ("feature_psi",))
    _legend(ax)
    fig.autofmt_xdate()
    return fig


def domain(state):
    """The domain classifier per window: ROC AUC of telling the window's rows from reference rows,
    its 95% interval, and the bars its low end is judged against."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.4), layout="constrained")
    rows = state.info.get("domain_rows")
    ax.set_title("Joint drift: domain classifier ROC AUC per window"
                 + (f" (≤ {rows:,} rows a side)" if rows else ""))
    ax.set_xlabel("window start")
    ax.set_ylabel("ROC AUC (0.5: alike)")
    ax.grid(alpha=0.3)
    if "domain_auc" not in state.windows or not np.isfinite(_col(state, "domain_auc")).any():
        _empty(ax, "domain classifier not computed (monitoring.domain_rows: 0, or too few rows)")
        return fig
    x = _x(state)
    ax.fill_between(x, _col(state, "domain_auc_low"), _col(state, "domain_auc_high"), color=PRODUCTION,
                    alpha=0.15, lw=0, label="95% interval")
    ax.plot(x, _col(state, "domain_auc"), color=PRODUCTION, marker=".", label="AUC")
    ax.axhline(0.5, color=REFERENCE, lw=1.2, label="0.5: indistinguishable")
    rule = state.info.get("rules", {}).get("domain_auc", {})
    for key, style in (("warning", ":"), ("threshold", "--")):
        if rule.get(key) is not None:
            ax.axhline(rule[key], color=NEUTRAL, ls=style, lw=1, label=f"bar {rule[key]:g} (interval's low end)")
    _mark(ax, state, ("domain_auc",))
    _legend(ax)
    fig.autofmt_xdate()
    return fig


def business(state):
    """Per-window sums of the spec's value columns, and the cost of errors where labels exist."""
    import matplotlib.pyplot as plt

    cols = state.value_columns() + (["error_cost"] if "error_cost" in state.windows else [])
    fig, ax = plt.subplots(figsize=(8, 3.4), layout="constrained")
    ax.set_title("Business: values summed per window")
    ax.set_xlabel("window start")
    ax.set_ylabel("sum per window")
    ax.grid(alpha=0.3)
    if not cols:
        _empty(ax, "no monitoring.value_columns or error_cost in the spec")
        return fig
    x = _x(state)
    for colour, c in zip(PSI_COLOURS, cols, strict=False):
        label = "cost of errors (labelled rows)" if c == "error_cost" else plain(c.removeprefix("value:"))
        ax.plot(x, _col(state, c), color=colour, marker=".", label=label)
    _legend(ax)
    fig.autofmt_xdate()
    return fig
