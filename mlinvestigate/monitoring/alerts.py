"""Alert rules on the window history: effect size, significance, persistence, episodes.

A rule looks at every window and says whether it *crosses* its bar (level 2, critical; level 1,
warning, for rules that warn): the effect size beyond the bar **and** the evidence beyond chance
(an interval that excludes the bar, or a BH-adjusted p-value below ``general.alpha``). A window
*fires* when it crosses and at least ``firing`` of the last ``windows`` windows crossed (2 of 3 by
default), so one noisy window pages nobody. Consecutive firing windows of one rule and subject make
one alert, identified by rule, subject, severity and first window: re-running on the same data gives
the same alerts, and an alert is *new* when the previous run's ``alerts.json`` did not hold it.

Defaults follow the field (see docs/monitoring.md) and are overridden under ``monitoring.alerts``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..display import number, percent
from ..stats.triage_serving import poisson_upper

# rule -> (layer, critical bar, warning bar, what it watches)
RULES: dict[str, tuple[str, float | None, float | None, str]] = {
    "metric_drop": ("performance", 0.05, None, "headline metric down against the trailing windows"),
    "offline_gap": ("performance", 0.15, None, "headline metric below its offline (reference) value"),
    "feature_psi": ("behaviour", 0.25, 0.1, "a feature's distribution moved (PSI beyond noise)"),
    "missing_rate": ("behaviour", 0.05, None, "a feature's missing rate rose above reference"),
    "volume_change": ("infrastructure", 0.5, None, "traffic volume changed against the expected volume"),
    "error_rate": ("infrastructure", 0.01, None, "share of failed requests (errors and timeouts)"),
    "latency_p95": ("infrastructure", None, None, "P95 latency above expected.latency_p95_ms"),
    "model_version": ("infrastructure", 0.01, None, "share of traffic served by another model version"),
}
LAYERS = ("infrastructure", "behaviour", "performance", "business")
MIN_TRAILING = 3  # trailing windows needed before a trailing median replaces the reference


@dataclass
class Settings:
    """What the rules compare with, taken from the spec and the reference."""

    reference_metric: float
    higher_is_better: bool
    min_labels: int
    alpha: float
    window_days: float
    daily_volume: float | None
    latency_p95_ms: float | None
    expected_version: str | None
    baseline_windows: int
    rules: dict[str, dict]


def settings_from(incident, base, window) -> Settings:
    mon = incident.spec.monitoring
    rules = {}
    for rule, (_, critical, warning, _) in RULES.items():
        r = getattr(mon.alerts, rule)
        bar = r.threshold if r.threshold is not None else critical
        if rule == "latency_p95" and r.threshold is None:
            bar = incident.spec.expected.latency_p95_ms
        rules[rule] = {"enabled": r.enabled and bar is not None, "threshold": bar,
                       "warning": r.warning if r.warning is not None else warning,
                       "windows": r.windows or mon.windows, "firing": min(r.firing or mon.firing,
                                                                         r.windows or mon.windows)}
    return Settings(reference_metric=base.metric.get("value") or math.nan, higher_is_better=base.higher_is_better,
                    min_labels=mon.min_labels, alpha=incident.threshold("general", "alpha"),
                    window_days=window.days, daily_volume=incident.spec.expected.daily_volume,
                    latency_p95_ms=incident.spec.expected.latency_p95_ms,
                    expected_version=incident.spec.model.version, baseline_windows=mon.baseline_windows,
                    rules=rules)


# --- per-window performance: realised where labels exist, else the estimate ------------------------
def performance(windows: pd.DataFrame, min_labels: int) -> pd.DataFrame:
    """``value``, ``low``, ``high`` and ``estimated`` per window: the realised metric where the
    window has at least ``min_labels`` labelled rows, else the score-based estimate."""
    def col(name):
        return windows[name].to_numpy(float) if name in windows else np.full(len(windows), np.nan)

    realised = (col("labelled_rows") >= min_labels) & np.isfinite(col("metric"))
    out = pd.DataFrame({"window_start": windows["window_start"].to_numpy()})
    for part, est in (("value", "estimate"), ("low", "estimate_low"), ("high", "estimate_high")):
        real = col("metric" if part == "value" else f"metric_{part}")
        out[part] = np.where(realised, real, col(est))
    out["estimated"] = ~realised & np.isfinite(out["value"].to_numpy(float))
    return out


def _worse(value, low, high, bar, threshold, higher_is_better):
    """Crossing mask: worse than ``bar`` by more than ``threshold`` (points; relative for errors)
    with the interval entirely on the worse side of ``bar``."""
    with np.errstate(invalid="ignore"):
        if higher_is_better:
            return (bar - value > threshold) & (high < bar)
        return (value - bar > threshold * np.abs(bar)) & (low > bar)


def crossings(windows: pd.DataFrame, features: pd.DataFrame, s: Settings) -> pd.DataFrame:
    """Every window × rule × subject with its level (0 none, 1 warning, 2 critical), value and bar."""
    rows: list[pd.DataFrame] = []
    n = len(windows)
    starts = windows["window_start"].to_numpy()
    partial = windows["partial"].to_numpy(bool) if "partial" in windows else np.zeros(n, bool)

    def add(rule, subject, level, value, bar, estimated=None, start=starts):
        rows.append(pd.DataFrame({"window_start": start, "rule": rule, "subject": subject,
                                  "level": np.asarray(level, dtype=int), "value": np.asarray(value, float),
                                  "bar": np.broadcast_to(np.asarray(bar, float), len(start)),
                                  "estimated": (np.zeros(len(start), bool) if estimated is None
                                                else np.asarray(estimated, bool))}))

    def col(name):
        return windows[name].to_numpy(float) if name in windows else np.full(n, np.nan)

    on = {r: c for r, c in s.rules.items() if c["enabled"]}
    perf = performance(windows, s.min_labels)
    v, lo, hi = (perf[c].to_numpy(float) for c in ("value", "low", "high"))
    if "offline_gap" in on and math.isfinite(s.reference_metric):
        hit = _worse(v, lo, hi, s.reference_metric, on["offline_gap"]["threshold"], s.higher_is_better)
        add("offline_gap", "metric", np.where(hit, 2, 0), v, s.reference_metric, perf["estimated"])
    if "metric_drop" in on:
        trailing = _trailing_median(v, s.baseline_windows)
        bar = np.where(np.isfinite(trailing), trailing, s.reference_metric)
        hit = _worse(v, lo, hi, bar, on["metric_drop"]["threshold"], s.higher_is_better)
        add("metric_drop", "metric", np.where(hit, 2, 0), v, bar, perf["estimated"])
    if "volume_change" in on:
        rows_n = col("rows")
        if s.daily_volume:
            bar = np.full(n, s.daily_volume * s.window_days)
        else:
            bar = _trailing_median(np.where(partial, np.nan, rows_n), s.baseline_windows)
        t = on["volume_change"]["threshold"]
        with np.errstate(invalid="ignore", divide="ignore"):
            low = poisson_upper(np.nan_to_num(rows_n)) < (1 - t) * bar
            high = stats.poisson.sf(np.nan_to_num(rows_n) - 1, (1 + t) * np.nan_to_num(bar)) < s.alpha
            high &= rows_n > (1 + t) * bar
        hit = (low | high) & ~partial & np.isfinite(bar)
        add("volume_change", "volume", np.where(hit, 2, 0), rows_n, bar)
    if "error_rate" in on:
        t = on["error_rate"]["threshold"]
        add("error_rate", "failed requests", np.where(col("failed_low") > t, 2, 0), col("failed_rate"), t)
    if "latency_p95" in on:
        t = on["latency_p95"]["threshold"]
        add("latency_p95", "latency", np.where(col("latency_p95_low") > t, 2, 0), col("latency_p95"), t)
    if "model_version" in on and s.expected_version is not None:
        t = on["model_version"]["threshold"]
        add("model_version", f"not {s.expected_version}", np.where(col("version_other_low") > t, 2, 0),
            col("version_other_share"), t)
    if len(features):
        for name, g in features.sort_values(["feature", "window_start"]).groupby("feature", sort=True):
            start = g["window_start"].to_numpy()
            if "feature_psi" in on:
                c = on["feature_psi"]
                ex, p = g["psi_excess"].to_numpy(float), g["p_adjusted"].to_numpy(float)
                sig = p < s.alpha
                level = np.where(sig & (ex > c["threshold"]), 2,
                                 np.where(sig & (c["warning"] is not None) & (ex > (c["warning"] or np.inf)), 1, 0))
                add("feature_psi", name, level, g["psi"].to_numpy(float), c["threshold"], start=start)
            if "missing_rate" in on:
                t = on["missing_rate"]["threshold"]
                rise = g["missing_rate"].to_numpy(float) - g["missing_reference"].to_numpy(float)
                hit = (rise > t) & (g["missing_p_adjusted"].to_numpy(float) < s.alpha)
                add("missing_rate", name, np.where(hit, 2, 0), g["missing_rate"].to_numpy(float), t, start=start)
    if not rows:
        return pd.DataFrame(columns=["window_start", "rule", "subject", "level", "value", "bar", "estimated"])
    return pd.concat(rows, ignore_index=True)


def _trailing_median(values: np.ndarray, k: int) -> np.ndarray:
    """Median of the up to ``k`` previous finite values (NaN until :data:`MIN_TRAILING` exist)."""
    out = np.full(len(values), np.nan)
    for i in range(len(values)):
        prev = values[max(0, i - k):i]
        prev = prev[np.isfinite(prev)]
        if len(prev) >= MIN_TRAILING:
            out[i] = float(np.median(prev))
    return out


def firing(cross: pd.DataFrame, s: Settings) -> pd.DataFrame:
    """``cross`` with ``fired`` (0, 1 warning, 2 critical): the window crosses at that level and at
    least ``firing`` of the last ``windows`` windows of the same rule and subject crossed at it."""
    if cross.empty:
        return cross.assign(fired=pd.Series(dtype=int))
    parts = []
    for (rule, _), g in cross.sort_values("window_start").groupby(["rule", "subject"], sort=False):
        m, k = s.rules[rule]["windows"], s.rules[rule]["firing"]
        level = g["level"].to_numpy(int)
        fired = np.zeros(len(g), int)
        for lv in (1, 2):
            hits = (level >= lv).astype(int)
            count = np.convolve(hits, np.ones(m, int))[:len(hits)]
            fired = np.where((level >= lv) & (count >= k), lv, fired)
        parts.append(g.assign(fired=fired))
    return pd.concat(parts).sort_values(["window_start", "rule", "subject"], ignore_index=True)


def episodes(fired: pd.DataFrame, window_labels: dict, latest, settings: Settings) -> list[dict]:
    """One alert per episode of a rule and subject: firing windows with fewer than the rule's
    persistence span (``windows``) of quiet windows between them. Its severity is the highest
    level it reached; it is identified by rule, subject and first window."""
    alerts: list[dict] = []
    if fired.empty:
        return alerts
    order = {w: i for i, w in enumerate(sorted(fired["window_start"].unique()))}
    for (rule, subject), g in fired.groupby(["rule", "subject"], sort=True):
        on = g[g["fired"] > 0].sort_values("window_start")
        if on.empty:
            continue
        pos = on["window_start"].map(order).to_numpy()
        breaks = np.flatnonzero(np.diff(pos) > settings.rules[rule]["windows"]) + 1
        for run in np.split(np.arange(len(on)), breaks):
            ep = on.iloc[run]
            last = ep.iloc[-1]
            level = int(ep["fired"].max())
            first_w = window_labels[ep["window_start"].iloc[0]]
            alerts.append({
                "id": f"{rule}:{subject}:{first_w}", "rule": rule, "layer": RULES[rule][0],
                "subject": str(subject), "severity": "critical" if level == 2 else "warning",
                "first_window": first_w, "last_window": window_labels[last["window_start"]],
                "windows": int(len(ep)), "active": bool(last["window_start"] == latest),
                "value": _f(last["value"]), "bar": _f(last["bar"]), "estimated": bool(last["estimated"]),
                "summary": _sentence(rule, subject, ep, level, window_labels)})
    alerts.sort(key=lambda a: (not a["active"], a["severity"] != "critical", a["first_window"], a["id"]))
    return alerts


def mark_new(found: list[dict], previous: list[dict]) -> None:
    """``new``: not in the previous run's alerts, or escalated from warning to critical since."""
    known = {a["id"]: a for a in previous}
    for a in found:
        before = known.get(a["id"])
        a["new"] = before is None or (before.get("severity") == "warning" and a["severity"] == "critical")
        if before is not None and before.get("investigation"):
            a["investigation"] = before["investigation"]


def _f(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _sentence(rule: str, subject, ep: pd.DataFrame, level: int, labels: dict) -> str:
    last = ep.iloc[-1]
    first, end = labels[ep["window_start"].iloc[0]], labels[last["window_start"]]
    span = f"{first}" if first == end else f"{first} to {end}"
    v, bar = float(last["value"]), float(last["bar"])
    est = " (estimated from the scores: too few labels yet)" if bool(ep["estimated"].iloc[-1]) else ""
    text = {
        "metric_drop": f"Headline metric {number(v)}{est} against {number(bar)} in the trailing windows",
        "offline_gap": f"Headline metric {number(v)}{est} against {number(bar)} offline",
        "feature_psi": f"Feature {subject!r} drifted: PSI {number(v)} in the latest firing window "
                       f"({'critical above ' + number(bar) if level == 2 else 'warning level'})",
        "missing_rate": f"Feature {subject!r} missing in {percent(v)} of rows (allowed rise {percent(bar)})",
        "volume_change": f"{number(v)} rows against {number(round(bar))} expected",
        "error_rate": f"{percent(v)} of requests failed (bar {percent(bar)})",
        "latency_p95": f"P95 latency {number(v)} ms (expected at most {number(bar)} ms)",
        "model_version": f"{percent(v)} of traffic served by a model version other than the expected one",
    }[rule]
    return f"{text}; firing in {len(ep)} window(s), {span}."
