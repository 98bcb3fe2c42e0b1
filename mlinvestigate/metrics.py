"""Model metrics computed the same way on reference and production rows.

The headline metric is accuracy for classification and mean absolute error for regression: the
numbers people quote ("95% offline, 65% live"). Every metric comes with a confidence interval:
Wilson for accuracy (a proportion), bootstrap for the rest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from .stats.intervals import bootstrap_ci, wilson


def row_outcome(incident, df: pd.DataFrame) -> np.ndarray:
    """Per labelled row: 1/0 correct (classification) or absolute error (regression); NaN unlabelled."""
    y, pred = df[incident.target], df[incident.prediction]
    if incident.is_classification:
        out = (y.astype(object).to_numpy() == pred.astype(object).to_numpy()).astype(float)
        out[y.isna().to_numpy() | pred.isna().to_numpy()] = np.nan
        return out
    return np.abs(pd.to_numeric(y, errors="coerce").to_numpy(float)
                  - pd.to_numeric(pred, errors="coerce").to_numpy(float))


def headline_name(incident) -> str:
    return "accuracy" if incident.is_classification else "mae"


def headline(incident, df: pd.DataFrame) -> dict:
    """Headline metric on the labelled rows of ``df``: value, 95% interval and row count."""
    outcome = row_outcome(incident, df)
    outcome = outcome[np.isfinite(outcome)]
    n = len(outcome)
    if n == 0:
        return {"value": None, "ci": [None, None], "rows": 0}
    value = float(outcome.mean())
    if incident.is_classification:
        lo, hi = wilson(outcome.sum(), n)
        ci = [float(lo), float(hi)]
    else:
        ci = list(bootstrap_ci(np.mean, outcome))
    return {"value": value, "ci": ci, "rows": int(n)}


def metric_summary(incident) -> dict:
    """``findings.json`` ``metric``: name, reference and production values plus intervals."""
    ref, prod = headline(incident, incident.reference), headline(incident, incident.production)
    return {"name": headline_name(incident), "higher_is_better": incident.is_classification,
            "reference": ref["value"], "production": prod["value"],
            "reference_ci": ref["ci"], "production_ci": prod["ci"],
            "reference_rows": ref["rows"], "production_labelled_rows": prod["rows"]}


def classification_metrics(y, pred, *, score=None, positive=None, classes=None) -> dict[str, float]:
    """Accuracy, balanced accuracy, precision, recall, F1 (binary: of ``positive``; else macro),
    and ROC AUC and log loss where a score exists. Labelled rows only."""
    y, pred = np.asarray(y, dtype=object), np.asarray(pred, dtype=object)
    out = {"accuracy": float(np.mean(y == pred)) if len(y) else np.nan}
    if len(y) == 0:
        return out
    out["balanced_accuracy"] = float(skm.balanced_accuracy_score(y.astype(str), pred.astype(str)))
    if positive is not None:
        yt, yp = y == positive, pred == positive
        p, r, f, _ = skm.precision_recall_fscore_support(yt, yp, average="binary", zero_division=0)
    else:
        p, r, f, _ = skm.precision_recall_fscore_support(y.astype(str), pred.astype(str),
                                                         average="macro", zero_division=0)
    out.update(precision=float(p), recall=float(r), f1=float(f))
    if score is not None and positive is not None:
        s = np.asarray(score, dtype=float)
        yt = (y == positive).astype(int)
        ok = np.isfinite(s)
        if ok.any() and len(np.unique(yt[ok])) == 2:
            out["roc_auc"] = float(skm.roc_auc_score(yt[ok], s[ok]))
            out["log_loss"] = float(skm.log_loss(yt[ok], np.clip(s[ok], 1e-15, 1 - 1e-15), labels=[0, 1]))
    return out


def regression_metrics(y, pred) -> dict[str, float]:
    """MAE, RMSE, MAPE (rows with a non-zero target) and R²."""
    y, pred = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
    ok = np.isfinite(y) & np.isfinite(pred)
    y, pred = y[ok], pred[ok]
    if len(y) == 0:
        return {"mae": np.nan, "rmse": np.nan, "mape": np.nan, "r2": np.nan}
    err = pred - y
    nz = y != 0
    return {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err**2))),
            "mape": float(np.mean(np.abs(err[nz] / y[nz]))) if nz.any() else np.nan,
            "r2": float(skm.r2_score(y, pred)) if len(y) > 1 else np.nan}


def metric_table(incident, frames: dict[str, pd.DataFrame], *, n_resamples: int = 100,
                 seed: int = 0) -> pd.DataFrame:
    """Every metric for each named frame (labelled rows only), with bootstrap intervals.

    Returns a long table: ``set``, ``metric``, ``value``, ``ci_low``, ``ci_high``, ``rows``.
    """
    rows = []
    for name, df in frames.items():
        lab = df[df[incident.target].notna()]
        y, pred = lab[incident.target].to_numpy(object), lab[incident.prediction].to_numpy(object)
        score = (lab[incident.score].to_numpy(float)
                 if incident.score and incident.score in lab.columns else None)
        if incident.is_classification:
            def fn(y, pred, *s):
                return classification_metrics(y, pred, score=s[0] if s else None,
                                              positive=incident.positive_label)
        else:
            def fn(y, pred, *s):
                return regression_metrics(y, pred)
        arrays = (y, pred) + ((score,) if score is not None else ())
        point = fn(*arrays)
        for metric, value in point.items():
            lo, hi = bootstrap_ci(lambda *a, m=metric: fn(*a).get(m, np.nan), *arrays,
                                  n_resamples=n_resamples, seed=seed, max_rows=20_000)
            rows.append({"set": name, "metric": metric, "value": value, "ci_low": lo,
                         "ci_high": hi, "rows": len(lab)})
    return pd.DataFrame(rows)
