"""Model metrics computed the same way on reference and production rows.

The headline metric is accuracy for classification and mean absolute error for regression: the
numbers people quote ("95% offline, 65% live"). Every metric comes with a confidence interval:
Wilson for accuracy (a proportion), bootstrap for the rest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics as skm

from .stats.intervals import wilson


def row_outcome(incident, df: pd.DataFrame) -> np.ndarray:
    """Per labelled row: 1/0 correct (classification) or absolute error (regression); NaN unlabelled."""
    y, pred = df[incident.target], df[incident.prediction]
    if incident.is_classification:
        known = ~(y.isna().to_numpy() | pred.isna().to_numpy())
        out = np.full(len(y), np.nan)
        # compare labelled rows only: pd.NA in an object array cannot be compared
        out[known] = y.astype(object).to_numpy()[known] == pred.astype(object).to_numpy()[known]
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
        # centred on the mean of every row, also when the resampling works on a subsample
        ci = list(_bootstrap_all(lambda o: {"mean": float(np.mean(o))}, [outcome], {"mean": value},
                                 n_resamples=200, seed=0, max_rows=100_000).get("mean", (np.nan, np.nan)))
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

    Each bootstrap resample computes every metric at once (one set of row indices, one confusion
    matrix), so the intervals of different metrics come from the same resamples. Frames above
    20,000 labelled rows are subsampled for the intervals, widened back as in
    :func:`~mlinvestigate.stats.intervals.bootstrap_ci`; point values use every row.

    Returns a long table: ``set``, ``metric``, ``value``, ``ci_low``, ``ci_high``, ``rows``.
    """
    rows = []
    for name, df in frames.items():
        lab = df[df[incident.target].notna().to_numpy()]
        score = (lab[incident.score].to_numpy(float)
                 if incident.kind == "binary" and incident.score and incident.score in lab.columns else None)
        if incident.is_classification:
            arrays, fn = _coded(lab[incident.target], lab[incident.prediction], score, incident.positive_label)
        else:
            arrays = (pd.to_numeric(lab[incident.target], errors="coerce").to_numpy(float),
                      pd.to_numeric(lab[incident.prediction], errors="coerce").to_numpy(float))
            fn = regression_metrics
        point = fn(*arrays)
        intervals = _bootstrap_all(fn, arrays, point, n_resamples=n_resamples, seed=seed, max_rows=20_000)
        for metric, value in point.items():
            lo, hi = intervals.get(metric, (np.nan, np.nan))
            rows.append({"set": name, "metric": metric, "value": value, "ci_low": lo,
                         "ci_high": hi, "rows": len(lab)})
    return pd.DataFrame(rows, columns=["set", "metric", "value", "ci_low", "ci_high", "rows"])


def _coded(y: pd.Series, pred: pd.Series, score, positive):
    """Labels as integer codes and the metric function on codes (same numbers as
    :func:`classification_metrics`, fast enough to call once per bootstrap resample)."""
    codes, uniques = pd.factorize(np.concatenate([y.to_numpy(object), pred.to_numpy(object)]),
                                  use_na_sentinel=True)
    n = len(y)
    yc, pc = codes[:n], codes[n:]
    k = max(len(uniques), 1)
    pos = None
    if positive is not None:
        hits = [i for i, u in enumerate(uniques) if u == positive]
        pos = hits[0] if hits else -2  # -2: the positive class never occurs here
    arrays = (yc, pc) + ((score,) if score is not None else ())

    def fn(yc, pc, score=None):
        return _metrics_from_codes(yc, pc, k, pos, score)

    return arrays, fn


def _metrics_from_codes(yc, pc, k: int, pos, score) -> dict[str, float]:
    n = len(yc)
    if n == 0:
        return {"accuracy": np.nan}
    ok = pc >= 0  # a missing prediction is never correct
    cm = np.bincount(yc[ok] * k + pc[ok], minlength=k * k).reshape(k, k).astype(float)
    true_n = np.bincount(yc, minlength=k).astype(float)
    pred_n = cm.sum(axis=0)
    tp = np.diag(cm)
    out = {"accuracy": float(tp.sum() / n)}
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = tp / true_n
        precision = np.where(pred_n > 0, tp / pred_n, 0.0)
        f1 = np.where(true_n + pred_n > 0, 2 * tp / (true_n + pred_n), 0.0)
    present = true_n > 0
    out["balanced_accuracy"] = float(np.mean(recall[present]))
    if pos is not None:
        if pos >= 0:
            out.update(precision=float(precision[pos]), recall=float(np.nan_to_num(recall[pos])),
                       f1=float(f1[pos]))
        else:
            out.update(precision=0.0, recall=0.0, f1=0.0)
    else:
        used = present | (pred_n > 0)
        out.update(precision=float(precision[used].mean()), recall=float(np.nan_to_num(recall[used]).mean()),
                   f1=float(f1[used].mean()))
    if score is not None and pos is not None:
        s = np.asarray(score, dtype=float)
        yt = (yc == pos)
        fin = np.isfinite(s)
        s, yt = s[fin], yt[fin]
        n_pos = int(yt.sum())
        n_neg = len(yt) - n_pos
        if n_pos and n_neg:
            ranks = stats.rankdata(s)
            out["roc_auc"] = float((ranks[yt].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
            p = np.clip(s, 1e-15, 1 - 1e-15)
            out["log_loss"] = float(-np.mean(np.where(yt, np.log(p), np.log1p(-p))))
    return out


def _bootstrap_all(fn, arrays, full_point: dict, *, n_resamples: int, seed: int,
                   max_rows: int) -> dict[str, tuple]:
    """Percentile intervals of every metric ``fn`` returns around ``full_point``, one index draw
    per resample."""
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    if n < 2:
        return {}
    rng = np.random.default_rng(seed)
    scale = 1.0
    if n > max_rows:
        idx = rng.choice(n, max_rows, replace=False)
        arrays = [a[idx] for a in arrays]
        scale, n = np.sqrt(max_rows / n), max_rows
    point = fn(*arrays)
    draws: dict[str, list[float]] = {m: [] for m in point}
    for _ in range(n_resamples):
        idx = rng.integers(0, n, n)
        values = fn(*(a[idx] for a in arrays))
        for m in draws:
            draws[m].append(values.get(m, np.nan))
    out = {}
    for m, values in draws.items():
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v)]
        centre = full_point.get(m, np.nan)
        if len(v) == 0 or not np.isfinite(point[m]) or not np.isfinite(centre):
            out[m] = (np.nan, np.nan)
            continue
        lo, hi = np.quantile(v, [0.025, 0.975])
        out[m] = (float(centre - (point[m] - lo) * scale), float(centre + (hi - point[m]) * scale))
    return out
