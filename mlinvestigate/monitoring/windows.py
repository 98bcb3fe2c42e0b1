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
from ..errors import DataError, InvestigationError
from ..stats import drift as sd
from ..stats.intervals import fdr, wilson
from ..stats.prior import calibrate
from ..stats.triage_labels import expected_correct
from ..stats.triage_serving import grouped_quantiles, status_kinds

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


def prepare_baseline(incident) -> Baseline:
    ref = incident.reference
    mon = incident.spec.monitoring
    base = Baseline(features=dict(incident.feature_types), metric=metrics.headline(incident, ref),
                    metric_name=metrics.headline_name(incident), higher_is_better=incident.is_classification)
    for f, kind in base.features.items():
        if kind in ("numeric", "datetime"):
            base.sorted_numeric[f] = sd.sorted_finite(sd.numeric_values(ref[f]), split=True)
        base.missing[f] = float(ref[f].isna().mean())
    if incident.kind == "binary":
        base.positive_rate = float(_positive_share(incident, ref))
        score = _score(incident, ref)
        if score is not None:
            base.low_confidence = float(_low_confidence(score, mon.low_confidence))
            base.estimator, base.calibration = _validate_estimator(incident, ref, score)
    return base


def _score(incident, df: pd.DataFrame) -> np.ndarray | None:
    if incident.kind != "binary" or not incident.score or incident.score not in df.columns:
        return None
    return pd.to_numeric(df[incident.score], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _positive_share(incident, df: pd.DataFrame) -> float:
    pred = df[incident.prediction]
    known = pred.notna().to_numpy()
    return float(np.mean(pred[known].to_numpy(object) == incident.positive_label)) if known.any() else math.nan


def _low_confidence(score: np.ndarray, bar: float) -> float:
    s = score[np.isfinite(score)]
    return float(np.mean(np.maximum(s, 1 - s) < bar)) if len(s) else math.nan


def _expected_correct(incident, df: pd.DataFrame, score: np.ndarray, calibration) -> np.ndarray:
    """Per row with a score and a prediction, the chance the prediction is right if the score is calibrated."""
    pred = df[incident.prediction]
    ok = np.isfinite(score) & pred.notna().to_numpy()
    s = calibration.apply(score[ok]) if calibration is not None else score[ok]
    return expected_correct(s, pred.to_numpy(object)[ok] == incident.positive_label)


def _validate_estimator(incident, ref: pd.DataFrame, score: np.ndarray) -> tuple[dict, object | None]:
    """Confidence-based accuracy estimate checked on the reference: the raw score or, when that
    estimates the reference's accuracy worse, the score after Platt scaling fitted on reference."""
    y = incident.to_positive(ref[incident.target])
    ok = np.isfinite(score) & np.isfinite(y)
    actual = metrics.headline(incident, ref)["value"]
    if ok.sum() < 30 or actual is None:
        return {"available": False, "reason": "too few scored reference rows"}, None
    raw = float(np.mean(_expected_correct(incident, ref, score, None)))
    cal = calibrate(score[ok], y[ok])
    calibrated = float(np.mean(_expected_correct(incident, ref, score, cal)))
    use_cal = abs(calibrated - actual) < abs(raw - actual)
    chosen = calibrated if use_cal else raw
    return ({"available": True, "method": "Platt-calibrated score" if use_cal else "score as logged",
             "reference_actual": actual, "reference_estimate": chosen,
             "reference_error": chosen - actual}, cal if use_cal else None)


# --- one window -----------------------------------------------------------------------------------
def window_stats(incident, base: Baseline, rows: pd.DataFrame) -> tuple[dict, dict[str, dict]]:
    """The four layers of one window of production ``rows`` against the reference."""
    out: dict = {"rows": float(len(rows))}
    out.update(_infrastructure(incident, rows))
    out.update(_behaviour(incident, base, rows))
    out.update(_performance(incident, base, rows))
    out.update(_business(incident, rows))
    feats = _features(incident, base, rows)
    rates = [v["missing_rate"] for v in feats.values() if math.isfinite(v["missing_rate"])]
    out["missing_max"] = max(rates) if rates else math.nan
    return out, feats


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
        out["low_confidence"] = _low_confidence(score, incident.spec.monitoring.low_confidence)
    return out


def _performance(incident, base: Baseline, rows: pd.DataFrame) -> dict:
    m = metrics.headline(incident, rows)
    out = {"labelled_rows": float(m["rows"]), "metric": _num(m["value"]),
           "metric_low": _num(m["ci"][0]), "metric_high": _num(m["ci"][1])}
    score = _score(incident, rows)
    if score is not None and base.estimator.get("available"):
        p = _expected_correct(incident, rows, score, base.calibration)
        if len(p):
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
    out = []
    for start, idx in prod.groupby(starts, sort=True).indices.items():
        start = pd.Timestamp(start)
        if since is not None and start < since:
            continue
        covered = (min(start + window.length, last) - max(start, first)) / window.length
        # a daily log ending at 23:00 is complete enough
        slack = pd.Timedelta(hours=1) / window.length if window.days >= 1 else 0.0
        out.append((start, prod.iloc[np.sort(idx)], bool(covered + slack < PARTIAL_COVERAGE)))
    return out


def check_columns(incident) -> None:
    """The monitoring section's columns exist in production and hold numbers (DataError otherwise)."""
    mon = incident.spec.monitoring
    prod = incident.production
    named = [("monitoring.value_columns", c) for c in mon.value_columns]
    if isinstance(mon.error_cost, str):
        named.append(("monitoring.error_cost", mon.error_cost))
    for key, col in named:
        if col not in prod.columns:
            raise DataError(f"production file {str(incident.spec.production)!r} has no column {col!r} "
                            f"(named by {key} in the spec); fix {key} or the file.")
        values = prod[col].dropna()
        if len(values) and pd.to_numeric(values, errors="coerce").isna().all():
            raise DataError(f"production column {col!r} (named by {key}) holds no numbers; "
                            "it must hold a value per row (revenue, cost …).")
