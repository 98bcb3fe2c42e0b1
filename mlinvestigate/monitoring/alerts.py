"""Alert rules on the window history: effect size, significance, persistence, episodes.

A rule looks at every window and says whether it *crosses* its bar (level 2, critical; level 1,
warning, for rules that warn): the effect size beyond the bar **and** the evidence beyond chance
(an interval that excludes the bar, or a BH-adjusted p-value below ``general.alpha``). A window
*fires* when it crosses and at least ``firing`` of the last ``windows`` windows crossed (2 of 3 by
default), so one noisy window pages nobody. Consecutive firing windows of one rule and subject make
one alert, identified by rule, subject, severity and first window: re-running on the same data gives
the same alerts, and an alert is *new* when the previous run's ``alerts.json`` did not hold it.

The rules are not listed here: each check's contract declares the rules that watch its question
(:class:`mlinvestigate.contract.MonitorRule`: layer, bars, the statistic it reads and how a window
crosses, one of :data:`TESTS`), and :func:`rules` reads them from the registry, so a check added from
another package brings its alert rules with it. Bars that are also thresholds of the check's
investigation are the same numbers (PSI 0.25/0.1 is ``drift.psi_critical``/``psi_warning``);
``monitoring.alerts.<rule>`` overrides a rule's bars and persistence (see docs/monitoring.md).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ..contract import MonitorRule, monitor_bar, monitor_rules, spec_value
from ..display import number, percent
from ..errors import InvestigationError
from ..stats.triage_serving import poisson_upper

LAYERS = ("infrastructure", "behaviour", "performance", "business")
MIN_TRAILING = 3  # trailing windows needed before a trailing median replaces the reference

# How a window crosses a rule's bar (``MonitorRule.test``); the crossing functions are below.
TESTS: dict[str, str] = {
    "interval_above": "the low end of the statistic's 95% interval above the bar (above the warning bar: warning)",
    "feature_psi": "a feature's PSI net of its sampling-noise expectation above the bar, and its KS / "
                   "chi-square test significant after Benjamini–Hochberg across the window's features",
    "missing_rise": "a feature's missing rate more than the bar above reference, two-proportion test "
                    "significant after Benjamini–Hochberg",
    "volume": "rows below (1 − bar) × expected beyond Poisson noise (Garwood upper bound), or above "
              "(1 + bar) × expected (Poisson test); windows the log covers only in part are not judged",
    "metric_vs_trailing": "the headline metric (or its estimate, marked) worse than the median of the trailing "
                          "windows by more than the bar, its interval entirely on the worse side "
                          "(regression: MAE, relative)",
    "metric_vs_offline": "the headline metric (or its estimate, marked) worse than its offline value by more "
                         "than the bar, its interval entirely on the worse side (regression: MAE, relative)",
}
PERFORMANCE_TESTS = ("metric_vs_trailing", "metric_vs_offline")


def rules() -> dict[str, MonitorRule]:
    """The monitor's rule table: every rule the registered checks' contracts declare, in their order."""
    out = {}
    for rid, (check, rule) in monitor_rules().items():
        if rule.test not in TESTS:
            raise InvestigationError(f"monitoring rule {rid!r} of the {check.id} check names test {rule.test!r}; "
                                     f"the monitor knows: {', '.join(TESTS)}")
        if rule.test == "interval_above" and not rule.statistic:
            raise InvestigationError(f"monitoring rule {rid!r} of the {check.id} check reads no statistic: "
                                     "an interval_above rule names the window statistic it reads")
        out[rid] = rule
    return out


def rule_settings(spec) -> dict[str, dict]:
    """Rule id → what the monitor evaluates for ``spec``: the check declaring it, its layer, bars
    (``monitoring.alerts`` overrides, else the contract's defaults), persistence, whether it runs
    and, when it does not, why."""
    mon = spec.monitoring
    owners = {rid: check.id for rid, (check, _) in monitor_rules().items()}
    out = {}
    for rid, rule in rules().items():
        o = mon.alerts.get(rid)
        bar, warning = monitor_bar(rid, spec, "critical"), monitor_bar(rid, spec, "warning")
        windows = (o.windows if o is not None else None) or mon.windows
        firing = min((o.firing if o is not None else None) or mon.firing, windows)
        missing = [k for k in rule.needs if spec_value(spec, k) is None]
        off = ("turned off in monitoring.alerts" if o is not None and not o.enabled else
               f"needs {', '.join(missing)} in the spec" if missing else
               (f"no bar: set {rule.critical} or monitoring.alerts.{rid}.threshold"
                if isinstance(rule.critical, str) and "." in rule.critical
                else f"no bar: set monitoring.alerts.{rid}.threshold") if bar is None else "")
        subject = rule.subject
        if "{" in subject:
            subject = re.sub(r"\{([\w.]+)\}", lambda m: str(spec_value(spec, m.group(1))), subject)
        out[rid] = {"check": owners[rid], "layer": rule.layer, "watches": rule.watches, "unit": rule.unit,
                    "test": rule.test, "subject": subject, "enabled": not off, "off": off,
                    "threshold": bar, "warning": warning, "windows": windows, "firing": firing}
    return out


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
    declared: dict[str, MonitorRule] = field(default_factory=dict, repr=False)
    no_estimate: str = ""  # why windows without enough labels have no performance, when they have none


def settings_from(incident, base, window) -> Settings:
    mon = incident.spec.monitoring
    return Settings(reference_metric=base.metric.get("value") or math.nan, higher_is_better=base.higher_is_better,
                    min_labels=mon.min_labels, alpha=incident.threshold("general", "alpha"),
                    window_days=window.days, daily_volume=incident.spec.expected.daily_volume,
                    latency_p95_ms=incident.spec.expected.latency_p95_ms,
                    expected_version=incident.spec.model.version, baseline_windows=mon.baseline_windows,
                    rules=rule_settings(incident.spec), declared=rules(),
                    no_estimate="" if base.estimator.get("available") else base.estimator.get("reason", ""))


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


COLUMNS = ["window_start", "rule", "subject", "level", "value", "bar", "estimated"]


def crossings(windows: pd.DataFrame, features: pd.DataFrame, s: Settings) -> pd.DataFrame:
    """Every window × rule × subject with its level (0 none, 1 warning, 2 critical), value and the
    bar it is judged against (the warning bar where it only warns)."""
    w = _Windows(windows, features)
    rows: list[pd.DataFrame] = []
    for rid, conf in s.rules.items():
        if conf["enabled"]:
            rows.extend(_TEST_FUNCTIONS[conf["test"]](w, rid, s.declared[rid], conf, s))
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(rows, ignore_index=True)


class _Windows:
    """The history a test reads: window-level columns and the per-feature table."""

    def __init__(self, windows: pd.DataFrame, features: pd.DataFrame):
        self.windows, self.features = windows, features
        self.n = len(windows)
        self.starts = windows["window_start"].to_numpy() if self.n else np.empty(0, "datetime64[ns]")
        self.partial = windows["partial"].to_numpy(bool) if "partial" in windows else np.zeros(self.n, bool)

    def col(self, name: str) -> np.ndarray:
        return self.windows[name].to_numpy(float) if name in self.windows else np.full(self.n, np.nan)

    def has(self, name: str) -> bool:
        return name in self.windows and bool(np.isfinite(self.col(name)).any())

    def per_feature(self, *columns: str):
        """``(feature, window starts, column arrays)`` per feature holding every column."""
        f = self.features
        if not len(f) or any(c not in f for c in columns):
            return
        for name, g in f.sort_values(["feature", "window_start"]).groupby("feature", sort=True):
            yield name, g["window_start"].to_numpy(), [g[c].to_numpy(float) for c in columns]


def _frame(rid, subject, level, value, bar, start, estimated=None) -> pd.DataFrame:
    return pd.DataFrame({"window_start": start, "rule": rid, "subject": subject,
                         "level": np.asarray(level, dtype=int), "value": np.asarray(value, float),
                         "bar": np.broadcast_to(np.asarray(bar, float), len(start)),
                         "estimated": (np.zeros(len(start), bool) if estimated is None
                                       else np.asarray(estimated, bool))})


def _levels(effect: np.ndarray, conf: dict, significant=True) -> tuple[np.ndarray, np.ndarray]:
    """Level per window (2 beyond the critical bar, 1 beyond the warning bar) and the bar judged."""
    crit, warn = conf["threshold"], conf["warning"]
    with np.errstate(invalid="ignore"):
        hit2 = significant & (effect > crit)
        hit1 = significant & (effect > warn) if warn is not None else np.zeros(len(effect), bool)
    level = np.where(hit2, 2, np.where(hit1, 1, 0))
    bar = np.where(level == 1, warn if warn is not None else crit, crit)
    return level, bar


def _interval_above(w: _Windows, rid, rule: MonitorRule, conf: dict, s: Settings) -> list[pd.DataFrame]:
    if not w.has(rule.statistic):
        return []  # the window statistic is not computed for this model (no such column in the spec)
    level, bar = _levels(w.col(rule.low_column), conf)
    return [_frame(rid, conf["subject"], level, w.col(rule.statistic), bar, w.starts)]


def _feature_psi(w: _Windows, rid, rule, conf, s) -> list[pd.DataFrame]:
    out = []
    for name, start, (psi, excess, p) in w.per_feature("psi", "psi_excess", "p_adjusted"):
        level, bar = _levels(excess, conf, significant=p < s.alpha)
        out.append(_frame(rid, name, level, psi, bar, start))
    return out


def _missing_rise(w: _Windows, rid, rule, conf, s) -> list[pd.DataFrame]:
    out = []
    for name, start, (rate, ref, p) in w.per_feature("missing_rate", "missing_reference", "missing_p_adjusted"):
        level, bar = _levels(rate - ref, conf, significant=p < s.alpha)
        out.append(_frame(rid, name, level, rate, bar, start))
    return out


def _volume(w: _Windows, rid, rule, conf, s) -> list[pd.DataFrame]:
    rows_n = w.col("rows")
    if s.daily_volume:
        bar = np.full(w.n, s.daily_volume * s.window_days)
    else:
        bar = _trailing_median(np.where(w.partial, np.nan, rows_n), s.baseline_windows)
    t = conf["threshold"]
    with np.errstate(invalid="ignore", divide="ignore"):
        low = poisson_upper(np.nan_to_num(rows_n)) < (1 - t) * bar
        high = stats.poisson.sf(np.nan_to_num(rows_n) - 1, (1 + t) * np.nan_to_num(bar)) < s.alpha
        high &= rows_n > (1 + t) * bar
    hit = (low | high) & ~w.partial & np.isfinite(bar)
    return [_frame(rid, conf["subject"], np.where(hit, 2, 0), rows_n, bar, w.starts)]


def _metric_vs_trailing(w: _Windows, rid, rule, conf, s) -> list[pd.DataFrame]:
    perf = performance(w.windows, s.min_labels) if w.n else None
    if perf is None:
        return []
    v, lo, hi = (perf[c].to_numpy(float) for c in ("value", "low", "high"))
    trailing = _trailing_median(v, s.baseline_windows)
    bar = np.where(np.isfinite(trailing), trailing, s.reference_metric)
    hit = _worse(v, lo, hi, bar, conf["threshold"], s.higher_is_better)
    return [_frame(rid, conf["subject"], np.where(hit, 2, 0), v, bar, w.starts, perf["estimated"])]


def _metric_vs_offline(w: _Windows, rid, rule, conf, s) -> list[pd.DataFrame]:
    if not w.n or not math.isfinite(s.reference_metric):
        return []
    perf = performance(w.windows, s.min_labels)
    v, lo, hi = (perf[c].to_numpy(float) for c in ("value", "low", "high"))
    hit = _worse(v, lo, hi, s.reference_metric, conf["threshold"], s.higher_is_better)
    return [_frame(rid, conf["subject"], np.where(hit, 2, 0), v, s.reference_metric, w.starts, perf["estimated"])]


_TEST_FUNCTIONS = {"interval_above": _interval_above, "feature_psi": _feature_psi, "missing_rise": _missing_rise,
                   "volume": _volume, "metric_vs_trailing": _metric_vs_trailing,
                   "metric_vs_offline": _metric_vs_offline}
assert set(_TEST_FUNCTIONS) == set(TESTS)


def not_judged(windows: pd.DataFrame, labels: dict, s: Settings) -> list[dict]:
    """Performance rules that could not judge some windows: too few labels and no label-free estimate
    (a regression model, or a classifier without scores). Said in alerts.json and on the page,
    never replaced by a number."""
    perf_rules = [rid for rid, c in s.rules.items() if c["enabled"] and c["test"] in PERFORMANCE_TESTS]
    if not len(windows) or not perf_rules:
        return []
    perf = performance(windows, s.min_labels)
    blind = ~np.isfinite(perf["value"].to_numpy(float))
    if not blind.any():
        return []
    starts = windows["window_start"].to_numpy()[blind]
    why = s.no_estimate or "no label-free estimate of the metric is available"
    return [{"rules": perf_rules, "windows": int(blind.sum()), "first_window": labels[starts[0]],
             "last_window": labels[starts[-1]], "latest": bool(blind[-1]),
             "summary": f"Performance not judged in {int(blind.sum())} window(s) ({labels[starts[0]]} to "
                        f"{labels[starts[-1]]}): fewer than {s.min_labels} labelled rows, and {why}."}]


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
                "id": f"{rule}:{subject}:{first_w}", "rule": rule, "layer": settings.rules[rule]["layer"],
                "subject": str(subject), "severity": "critical" if level == 2 else "warning",
                "first_window": first_w, "last_window": window_labels[last["window_start"]],
                "windows": int(len(ep)), "active": bool(last["window_start"] == latest),
                "value": _f(last["value"]), "bar": _f(last["bar"]), "estimated": bool(last["estimated"]),
                "summary": _sentence(rule, subject, ep, level, window_labels, settings)})
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


def _show(value: float, unit: str) -> str:
    if not math.isfinite(value):
        return "–"
    if unit == "share":
        return percent(value)
    if unit == "rows":
        return number(round(value))
    return number(value)


def _sentence(rule: str, subject, ep: pd.DataFrame, level: int, labels: dict, settings: Settings) -> str:
    last = ep.iloc[-1]
    first, end = labels[ep["window_start"].iloc[0]], labels[last["window_start"]]
    span = f"{first}" if first == end else f"{first} to {end}"
    declared = settings.declared[rule]
    unit = declared.unit
    est = " (estimated from the scores: too few labels yet)" if bool(ep["estimated"].iloc[-1]) else ""
    text = declared.sentence.format(subject=subject, value=_show(float(last["value"]), unit),
                                    bar=_show(float(last["bar"]), unit), estimated=est,
                                    level="critical" if level == 2 else "warning", watches=declared.watches)
    return f"{text}; firing in {len(ep)} window(s), {span}."
