"""Production split into time windows, and the four layers of monitoring computed per window.

Every statistic is the package's own: PSI, KS and chi-square from :mod:`mlinvestigate.stats.drift`
(through :func:`mlinvestigate.checks.drift.column_drift`'s building blocks), the headline metric and
its interval from :mod:`mlinvestigate.metrics`, Wilson intervals, distribution-free latency
quantiles, status classification and Platt calibration from the stats modules. This module only
slices production by time and lays the numbers out as one record per window.

A window's record is a flat mapping ``metric -> value`` (the window-level numbers) plus one
mapping per feature (PSI, its noise-free excess, the test's BH-adjusted p-value, missing rates).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import metrics
from ..checks.deployment import same_version, version_text
from ..checks.drift import column_drift, shared_codes
from ..contract import monitor_rules
from ..errors import DataError, InvestigationError
from ..stats import drift as sd
from ..stats.domain import fit_domain_classifier
from ..stats.intervals import fdr, wilson
from ..stats.prior import calibrate
from ..stats.triage_labels import expected_correct
from ..stats.triage_serving import grouped_quantiles, status_kinds
from ..stats.triage_values import as_text, class_codes

_WINDOW = re.compile(r"^\s*(\d+)\s*(min|m|h|d|w)\s*$", re.I)
_UNITS = {"min": "min", "m": "min", "h": "h", "d": "D", "w": "W"}
PARTIAL_COVERAGE = 0.9  # a window the log covers less than this is partial (its volume is not judged)


@dataclass(frozen=True)
class Window:
    """The length of the monitoring windows, parsed from ``1d``, ``12h``, ``1w``, ``30min``."""

    text: str
    length: pd.Timedelta
    weekly: bool

    @property
    def days(self) -> float:
        return self.length / pd.Timedelta(days=1)

    def start_of(self, ts: pd.Series) -> pd.Series:
        """Each timestamp's window start: windows are aligned to midnight (weeks start on Monday)."""
        if not self.weekly:
            return ts.dt.floor(self.length)
        day = ts.dt.floor("D")
        monday = day - pd.to_timedelta(day.dt.day_of_week, unit="D")
        anchor = monday.min()
        return anchor + ((monday - anchor) // self.length) * self.length


def parse_window(text: str) -> Window:
    m = _WINDOW.match(str(text))
    if not m or int(m.group(1)) == 0:
        raise InvestigationError(f"window {text!r} is not a window length: write a number and a unit, "
                                 "such as 1d, 12h, 30min or 1w.")
    n, unit = int(m.group(1)), _UNITS[m.group(2).lower()]
    length = pd.Timedelta(weeks=n) if unit == "W" else pd.Timedelta(n, unit=unit)
    if length < pd.Timedelta(minutes=1):
        raise InvestigationError(f"window {text!r} is shorter than a minute.")
    return Window(f"{n}{m.group(2).lower()}", length, unit == "W")


def window_key(start: pd.Timestamp) -> str:
    """File-safe, sortable key of a window start."""
    return pd.Timestamp(start).strftime("%Y%m%dT%H%M%S")


def label(start: pd.Timestamp, window: Window) -> str:
    """A window start as people read it: the date for daily or longer windows."""
    start = pd.Timestamp(start)
    return start.date().isoformat() if window.length >= pd.Timedelta(days=1) else start.isoformat(sep=" ")


# --- what every window is compared with ---------------------------------------------------------
@dataclass
class Baseline:
    """The reference, prepared once: sorted feature values, metric, score calibration, shares."""

    features: dict[str, str]
    sorted_numeric: dict[str, tuple[np.ndarray, int, int]] = field(default_factory=dict)
    metric: dict = field(default_factory=dict)
    metric_name: str = "accuracy"
    higher_is_better: bool = True
    positive_rate: float = math.nan
    low_confidence: float = math.nan
    missing: dict[str, float] = field(default_factory=dict)
    estimator: dict = field(default_factory=dict)
    calibration: object | None = None
    reference: pd.DataFrame | None = None  # the reference rows in a fixed order (time, then id)


def prepare_baseline(incident) -> Baseline:
    ref = incident.reference
    mon = incident.spec.monitoring
    scores = set(map(str, mon.class_scores.values()))  # the model's outputs, not its inputs
    base = Baseline(features={f: k for f, k in incident.feature_types.items() if f not in scores},
                    metric=metrics.headline(incident, ref),
                    metric_name=metrics.headline_name(incident), higher_is_better=incident.is_classification)
    # in time order, then by id: the classifier's seeded draw of reference rows is then the same
    # whichever order an engine read them in
    keys = [c for c in (incident.columns.timestamp, incident.columns.id) if c and c in ref.columns]
    base.reference = ref.sort_values(keys, kind="stable").reset_index(drop=True) if keys else ref
    for f, kind in base.features.items():
        if kind in ("numeric", "datetime"):
            base.sorted_numeric[f] = sd.sorted_finite(sd.numeric_values(ref[f]), split=True)
        base.missing[f] = float(ref[f].isna().mean())
    if incident.kind == "binary":
        base.positive_rate = float(_positive_share(incident, ref))
    conf = _confidence(incident, ref)
    if conf is None:
        base.estimator = {"available": False, "reason": no_estimate_reason(incident)}
        return base
    base.low_confidence = _low_confidence(incident, ref, mon.low_confidence)
    base.estimator, base.calibration = _validate_estimator(incident, ref)
    return base


def no_estimate_reason(incident) -> str:
    """Why the metric cannot be estimated without labels for this model (said on the page and in alerts)."""
    if not incident.is_classification:
        return ("a regression model has no label-free estimate of its error (the error of a prediction needs "
                "its label), so windows without enough labels are not judged")
    if incident.kind == "multiclass":
        return ("the model logs no probabilities (monitoring.class_scores: class → column, or columns.score "
                "holding the top-class confidence), so accuracy cannot be estimated without labels")
    return "the model logs no score (columns.score), so accuracy cannot be estimated without labels"


def _score(incident, df: pd.DataFrame) -> np.ndarray | None:
    """The logged score: binary, the probability of the positive label; multiclass, the top-class
    confidence (``columns.score``) or the predicted class's probability (``monitoring.class_scores``)."""
    if incident.kind == "multiclass":
        return _class_confidence(incident, df)
    if incident.kind != "binary" or not incident.score or incident.score not in df.columns:
        return None
    return _numbers(df[incident.score])


def _numbers(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _class_confidence(incident, df: pd.DataFrame) -> np.ndarray | None:
    """Multiclass: per row, the model's probability of the class it predicted (NaN where unknown)."""
    mapping = incident.spec.monitoring.class_scores
    if mapping:
        classes = list(mapping)
        columns = [str(mapping[c]) for c in classes]
        if not all(c in df.columns for c in columns):
            return None
        probs = np.column_stack([_numbers(df[c]) for c in columns])
        code = class_codes(df[incident.prediction], classes)
        out = np.full(len(df), np.nan)
        known = code >= 0
        out[known] = probs[np.flatnonzero(known), code[known]]
        return out
    if incident.score and incident.score in df.columns:
        return _numbers(df[incident.score])
    return None


def _positive_share(incident, df: pd.DataFrame) -> float:
    pred = df[incident.prediction]
    known = pred.notna().to_numpy()
    return float(np.mean(pred[known].to_numpy(object) == incident.positive_label)) if known.any() else math.nan


def _low_confidence(incident, df: pd.DataFrame, bar: float) -> float:
    """Share of scored rows whose top-class probability is below ``bar``."""
    score = _score(incident, df)
    if score is None:
        return math.nan
    s = score[np.isfinite(score)]
    top = np.maximum(s, 1 - s) if incident.kind == "binary" else s
    return float(np.mean(top < bar)) if len(s) else math.nan


def _confidence(incident, df: pd.DataFrame, calibration=None) -> np.ndarray | None:
    """Per row with a score and a prediction, the chance the prediction is right if the score is
    calibrated (after ``calibration`` when given): binary, ``p`` for a positive prediction and
    ``1 − p`` otherwise; multiclass, the predicted class's probability. None without scores."""
    score = _score(incident, df)
    if score is None:
        return None
    pred = df[incident.prediction]
    ok = np.isfinite(score) & pred.notna().to_numpy()
    s = calibration.apply(score[ok]) if calibration is not None else score[ok]
    if incident.kind == "binary":
        return expected_correct(s, pred.to_numpy(object)[ok] == incident.positive_label)
    return np.clip(s, 0.0, 1.0)


def _validate_estimator(incident, ref: pd.DataFrame) -> tuple[dict, object | None]:
    """Confidence-based accuracy estimate checked on the reference: the raw score or, when that
    estimates the reference's accuracy worse, the score after Platt scaling fitted on reference
    (binary: score against the label; multiclass: the predicted class's probability against
    whether the prediction was right)."""
    score = _score(incident, ref)
    outcome = metrics.row_outcome(incident, ref)  # 1 right, 0 wrong, NaN unlabelled
    if incident.kind == "binary":
        target = incident.to_positive(ref[incident.target])
    else:
        target = outcome
    ok = np.isfinite(score) & np.isfinite(target) & ref[incident.prediction].notna().to_numpy()
    actual = metrics.headline(incident, ref)["value"]
    if ok.sum() < 30 or actual is None:
        return {"available": False, "reason": "too few scored reference rows to check the estimate on"}, None
    raw = float(np.mean(_confidence(incident, ref)))
    cal = calibrate(score[ok], target[ok])
    calibrated = float(np.mean(_confidence(incident, ref, cal)))
    use_cal = abs(calibrated - actual) < abs(raw - actual)
    chosen = calibrated if use_cal else raw
    what = "score" if incident.kind == "binary" else "predicted class's probability"
    return ({"available": True, "method": f"Platt-calibrated {what}" if use_cal else f"{what} as logged",
             "reference_actual": actual, "reference_estimate": chosen,
             "reference_error": chosen - actual}, cal if use_cal else None)


# --- one window -----------------------------------------------------------------------------------
def window_stats(incident, base: Baseline, rows: pd.DataFrame, *,
                 features: bool = True) -> tuple[dict, dict[str, dict]]:
    """The four layers of one window of production ``rows`` against the reference (without the
    per-feature statistics when ``features`` is false: an engine aggregates those)."""
    out: dict = {"rows": float(len(rows))}
    out.update(_infrastructure(incident, rows))
    out.update(_behaviour(incident, base, rows))
    out.update(_performance(incident, base, rows))
    out.update(_business(incident, rows))
    out.update(domain(incident, base, rows))
    out.update(measured(incident, rows))
    if not features:
        return out, {}
    feats = _features(incident, base, rows)
    rates = [v["missing_rate"] for v in feats.values() if math.isfinite(v["missing_rate"])]
    out["missing_max"] = max(rates) if rates else math.nan
    return out, feats


def measured(incident, rows: pd.DataFrame) -> dict:
    """The statistics of alert rules that compute their own (``MonitorRule.measure``)."""
    out: dict = {}
    for rule in (r for _, r in monitor_rules().values() if r.measure is not None):
        out.update(rule.measure(incident, rows))
    return out


def domain(incident, base: Baseline, rows: pd.DataFrame) -> dict:
    """The domain classifier of this window: reference rows against the window's production rows on
    seeded samples of at most ``monitoring.domain_rows`` a side (the drift check's classifier,
    :func:`mlinvestigate.stats.domain.fit_domain_classifier`), its cross-validated ROC AUC and the
    Hanley–McNeil 95% interval."""
    size = incident.spec.monitoring.domain_rows
    if not size or not base.features:
        return {}
    names = list(base.features)
    categorical = [f for f in names if base.features[f] == "categorical"]
    dc = fit_domain_classifier(base.reference, rows, names, categorical=categorical, max_rows=size,
                               seed=int(incident.threshold("general", "seed")), importance=False)
    out = {"domain_rows": float(dc.rows_per_side[0])}
    if math.isfinite(dc.auc):
        out.update(domain_auc=float(dc.auc), domain_auc_low=float(dc.ci[0]), domain_auc_high=float(dc.ci[1]))
    return out


def _infrastructure(incident, rows: pd.DataFrame) -> dict:
    cols = incident.columns
    out: dict = {}
    n = len(rows)
    if cols.status:
        kinds = status_kinds(rows[cols.status])
        errors, timeouts = int(np.sum(kinds == "error")), int(np.sum(kinds == "timeout"))
        failed = errors + timeouts
        lo, hi = wilson(failed, n)
        out.update(error_rate=errors / n, timeout_rate=timeouts / n, failed_rate=failed / n,
                   failed_low=float(lo), failed_high=float(hi))
    if cols.latency_ms:
        lat = pd.to_numeric(rows[cols.latency_ms], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        lat = np.where(lat >= 0, lat, np.nan)
        q = grouped_quantiles(lat, np.zeros(n, dtype=np.int64), 1, qs=(0.5, 0.95, 0.99))
        out.update({f"latency_{k}": float(q[k][0]) for k in ("p50", "p95", "p95_low", "p95_high", "p99")})
    expected = incident.spec.model.version
    if cols.model_version and cols.model_version in rows.columns:
        versions = version_text(rows[cols.model_version])
        if expected is not None:
            other = int(sum(c for v, c in versions.value_counts().items() if not same_version(v, expected)))
            lo, hi = wilson(other, n)
            out.update(version_other_share=other / n, version_other_low=float(lo))
        shares = versions.value_counts(normalize=True)
        out["versions"] = ", ".join(f"{v} {s:.1%}" for v, s in shares.head(5).items())
    return out


def _behaviour(incident, base: Baseline, rows: pd.DataFrame) -> dict:
    ref = incident.reference
    out: dict = {}
    pred_kind = "categorical" if incident.is_classification else "numeric"
    d = column_drift(ref[incident.prediction], rows[incident.prediction], pred_kind, min_share=0.01)
    out["prediction_psi"] = d.psi
    if incident.kind == "binary":
        out["positive_rate"] = _positive_share(incident, rows)
    score = _score(incident, rows)
    if score is not None:
        ref_score = _score(incident, ref)
        a = sd.sorted_finite(ref_score)[0]
        b = sd.sorted_finite(score)[0]
        out["score_psi"] = sd.numeric_drift(a, b).psi if len(a) and len(b) else math.nan
        out["score_mean"] = float(np.nanmean(score)) if np.isfinite(score).any() else math.nan
        out["low_confidence"] = _low_confidence(incident, rows, incident.spec.monitoring.low_confidence)
    return out


def _performance(incident, base: Baseline, rows: pd.DataFrame) -> dict:
    m = metrics.headline(incident, rows)
    out = {"labelled_rows": float(m["rows"]), "metric": _num(m["value"]),
           "metric_low": _num(m["ci"][0]), "metric_high": _num(m["ci"][1])}
    if base.estimator.get("available"):
        p = _confidence(incident, rows, base.calibration)
        if p is not None and len(p):
            est = float(p.mean())
            half = 1.96 * math.sqrt(float(np.sum(p * (1 - p)))) / len(p)
            out.update(estimate=est, estimate_low=max(0.0, est - half), estimate_high=min(1.0, est + half))
    return out


def _business(incident, rows: pd.DataFrame) -> dict:
    mon = incident.spec.monitoring
    out: dict = {}
    for col in mon.value_columns:
        out[f"value:{col}"] = float(np.nansum(pd.to_numeric(rows[col], errors="coerce").to_numpy(float)))
    if mon.error_cost is not None:
        outcome = metrics.row_outcome(incident, rows)
        labelled = np.isfinite(outcome)
        # classification: an error is a wrong labelled prediction; regression: cost per unit of |error|
        err = (1 - outcome) if incident.is_classification else outcome
        if isinstance(mon.error_cost, str):
            cost = pd.to_numeric(rows[mon.error_cost], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            total = float(np.nansum((err * cost)[labelled]))
        else:
            total = float(np.sum(err[labelled]) * mon.error_cost)
        out["error_cost"] = total if labelled.any() else math.nan
    return out


def _features(incident, base: Baseline, rows: pd.DataFrame) -> dict[str, dict]:
    ref = incident.reference
    min_share = incident.threshold("drift", "min_category_share")
    stats: dict[str, sd.Drift] = {}
    for f, kind in base.features.items():
        if kind in ("numeric", "datetime"):
            a, miss_a, inf_a = base.sorted_numeric[f]
            b, miss_b, inf_b = sd.sorted_finite(sd.numeric_values(rows[f]), split=True)
            d = sd.numeric_drift(a, b, missing_reference=miss_a, missing_production=miss_b,
                                 datetime=kind == "datetime")
            d.infinite_reference, d.infinite_production = inf_a, inf_b
        elif isinstance(ref[f].dtype, pd.CategoricalDtype):
            r, p, cats = shared_codes(ref[f], rows[f])
            d = sd.categorical_drift(r, p, cats, min_share=min_share)
        else:
            d = column_drift(ref[f], rows[f], kind, min_share=min_share)
        stats[f] = d
    return feature_rows(stats)


def feature_rows(stats: dict[str, sd.Drift]) -> dict[str, dict]:
    """A window's per-feature history row from its drift statistics, p-values adjusted over the
    window's features (Benjamini–Hochberg)."""
    names = list(stats)
    p_adj, _ = fdr([stats[f].p_value for f in names])
    miss_adj, _ = fdr([stats[f].missing_p for f in names])
    return {f: {"psi": stats[f].psi, "psi_excess": stats[f].psi_excess, "p_adjusted": float(p_adj[i]),
                "missing_rate": stats[f].missing_rate_production,
                "missing_reference": stats[f].missing_rate_reference,
                "missing_p_adjusted": float(miss_adj[i]), "rows": float(stats[f].n_production)}
            for i, f in enumerate(names)}


def _num(v) -> float:
    return math.nan if v is None else float(v)


# --- production to windows ------------------------------------------------------------------------
def split(incident, window: Window, *, since: pd.Timestamp | None = None) -> list[tuple[pd.Timestamp, pd.DataFrame, bool]]:
    """``(start, rows, partial)`` for every window holding production rows, oldest first.

    ``partial``: the log covers the window only in part (its first or last window), so its volume
    is not comparable with a full window's.
    """
    ts_col = incident.columns.timestamp
    if not ts_col or ts_col not in incident.production.columns:
        raise DataError("monitoring needs columns.timestamp in the spec and that column in production: "
                        "windows are cut by time.")
    prod = incident.production
    ts = prod[ts_col]
    if ts.notna().sum() == 0:
        raise DataError(f"production column {ts_col!r} (columns.timestamp) holds no time: nothing to window.")
    starts = window.start_of(ts)
    first, last = ts.min(), ts.max()
    # rows in time order (then by id): the same order an engine reads them in, so sample-based
    # statistics (the domain classifier's folds) do not depend on how the log was written
    keys = [c for c in (ts_col, incident.columns.id) if c and c in prod.columns]
    order = prod[keys].reset_index(drop=True).sort_values(keys, kind="stable").index.to_numpy()
    ordered = pd.Series(starts.to_numpy()[order])
    out = []
    for start, idx in ordered.groupby(ordered, sort=True).indices.items():
        start = pd.Timestamp(start)
        if since is not None and start < since:
            continue
        covered = (min(start + window.length, last) - max(start, first)) / window.length
        # a daily log ending at 23:00 is complete enough
        slack = pd.Timedelta(hours=1) / window.length if window.days >= 1 else 0.0
        rows = prod.iloc[order[np.sort(idx)]].reset_index(drop=True)
        out.append((start, rows, bool(covered + slack < PARTIAL_COVERAGE)))
    return out


def check_columns(incident) -> None:
    """The monitoring section's columns exist in production and hold numbers (DataError otherwise)."""
    mon = incident.spec.monitoring
    prod = incident.production
    named = [("monitoring.value_columns", c) for c in mon.value_columns]
    if isinstance(mon.error_cost, str):
        named.append(("monitoring.error_cost", mon.error_cost))
    if mon.class_scores:
        if incident.kind != "multiclass":
            raise DataError(f"monitoring.class_scores names per-class probabilities, but {incident.target!r} is "
                            f"{'a regression target' if not incident.is_classification else 'binary'}; remove "
                            "it (a binary model's score is columns.score).")
        classes = {as_text(c): c for c in incident.classes}
        for label, col in mon.class_scores.items():
            if as_text(label) not in classes:
                raise DataError(f"monitoring.class_scores names class {label!r}, which {incident.target!r} never "
                                f"holds; its classes are {', '.join(map(repr, classes))}.")
            if col not in incident.reference.columns:
                raise DataError(f"reference file {str(incident.spec.reference)!r} has no column {col!r} (named by "
                                f"monitoring.class_scores.{label} in the spec); the estimate is checked on the "
                                "reference's probabilities, so both files need it.")
            named.append((f"monitoring.class_scores.{label}", col))
    for key, col in named:
        if col not in prod.columns:
            raise DataError(f"production file {str(incident.spec.production)!r} has no column {col!r} "
                            f"(named by {key} in the spec); fix {key} or the file.")
        values = prod[col].dropna()
        if len(values) and pd.to_numeric(values, errors="coerce").isna().all():
            raise DataError(f"production column {col!r} (named by {key}) holds no numbers; "
                            "it must hold a number per row (a revenue, a cost, a probability …).")
