"""Are the labelled production rows a fair sample of all of them, and what would the metric be on all?

A production metric is computed on the rows that have a label. When labels arrive only for some
kinds of rows (flagged transactions get investigated, the rest wait), the labelled rows are not a
random sample and the metric is biased. Three tools:

- a labelled-vs-unlabelled classifier: its cross-validated ROC AUC says how well the inputs predict
  which rows got a label (0.5 = labels at random);
- inverse propensity weighting: labelled rows weighted by ``1 / P(labelled | inputs)`` stand for
  every row like them (Hájek estimator);
- confidence-based performance estimation (binary): when the score is calibrated, a row predicted
  positive with score ``p`` is correct with probability ``p``, so accuracy on every row is estimated
  without labels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .intervals import auc_interval


def labelling_classifier(X: np.ndarray, labelled: np.ndarray, categorical: np.ndarray, *,
                         seed: int = 0, folds: int = 3, max_iter: int = 60) -> dict:
    """Cross-validated classifier of labelled (1) vs unlabelled (0) rows.

    Returns
    -------
    dict
        ``auc`` and ``auc_ci`` of the out-of-fold probabilities, ``oof`` (each row's probability
        from the model that did not see it) and ``models`` (one per fold; empty when either class
        has fewer rows than folds).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    y = np.asarray(labelled, dtype=int)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    if min(n_pos, n_neg) < folds:
        return {"auc": np.nan, "auc_ci": (np.nan, np.nan), "oof": np.full(len(y), y.mean() if len(y) else np.nan),
                "models": []}
    oof = np.empty(len(y))
    models = []
    # one OpenMP thread: notebooks run side by side on few cores, where spinning threads stall
    with threadpool_limits(limits=1, user_api="openmp"):
        for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
            model = HistGradientBoostingClassifier(max_iter=max_iter, learning_rate=0.1, max_leaf_nodes=15,
                                                   categorical_features=categorical if categorical.any() else None,
                                                   early_stopping=False, random_state=seed)
            model.fit(_fillable(X[train]), y[train])
            oof[test] = model.predict_proba(X[test])[:, 1]
            models.append(model)
    auc = float(roc_auc_score(y, oof))
    return {"auc": auc, "auc_ci": auc_interval(auc, n_pos, n_neg), "oof": oof, "models": models}


def _fillable(X: np.ndarray) -> np.ndarray:
    """``X`` with columns that hold no value at all set to 0: the booster cannot bin an empty
    column (a feature that stopped arriving, or absent from a small fold), and a constant carries
    the same nothing without changing the column layout the fitted models predict on."""
    empty = np.isnan(X).all(axis=0) if len(X) else np.zeros(X.shape[1], dtype=bool)
    if not empty.any():
        return X
    X = np.array(X, dtype=float, copy=True)
    X[:, empty] = 0.0
    return X


def weighted_mean(values, weights) -> float:
    """Hájek estimator: ``sum(w * v) / sum(w)`` over finite values."""
    v, w = np.asarray(values, dtype=float), np.asarray(weights, dtype=float)
    ok = np.isfinite(v) & np.isfinite(w)
    return float(np.sum(v[ok] * w[ok]) / np.sum(w[ok])) if ok.any() and w[ok].sum() > 0 else np.nan


def effective_size(weights) -> float:
    """Kish's effective sample size of weighted rows: how many unweighted rows they are worth."""
    w = np.asarray(weights, dtype=float)
    return float(w.sum() ** 2 / np.sum(w**2)) if len(w) and np.sum(w**2) > 0 else 0.0


def calibration(y01, score, *, bins: int = 10) -> tuple[float, pd.DataFrame]:
    """Expected calibration error on ``bins`` equal-width score bins (the usual reliability
    diagram), and the reliability table (``score_mean``, ``observed_rate``, ``rows`` per non-empty
    bin). The error weights each bin's |mean score - observed rate| by its rows."""
    y, s = np.asarray(y01, dtype=float), np.asarray(score, dtype=float)
    ok = np.isfinite(y) & np.isfinite(s)
    y, s = y[ok], np.clip(s[ok], 0, 1)
    if len(y) == 0:
        return np.nan, pd.DataFrame(columns=["score_mean", "observed_rate", "rows"])
    idx = np.minimum((s * bins).astype(int), bins - 1)
    n = np.bincount(idx, minlength=bins)
    keep = n > 0
    table = pd.DataFrame({"score_mean": (np.bincount(idx, weights=s, minlength=bins) / np.maximum(n, 1))[keep],
                          "observed_rate": (np.bincount(idx, weights=y, minlength=bins) / np.maximum(n, 1))[keep],
                          "rows": n[keep]})
    ece = float(np.sum(table["rows"] * (table["score_mean"] - table["observed_rate"]).abs()) / len(y))
    return ece, table


def expected_correct(score, predicted_positive) -> np.ndarray:
    """Per row, the probability that the prediction is right if the score is calibrated:
    ``p`` where the prediction is the positive class, ``1 - p`` elsewhere."""
    s = np.asarray(score, dtype=float)
    return np.where(np.asarray(predicted_positive, dtype=bool), s, 1 - s)


def column_differences(df: pd.DataFrame, mask, types: dict[str, str]) -> pd.DataFrame:
    """How each column differs between rows in ``mask`` and the others.

    Numbers: standardised mean difference (difference of means over the pooled standard deviation).
    Categories: total variation distance between the two category distributions (half the summed
    absolute share differences), with the category whose share differs most.
    """
    m = np.asarray(mask, dtype=bool)
    rows = []
    for name, kind in types.items():
        s = df[name]
        numeric = kind in ("numeric", "datetime") and (pd.api.types.is_numeric_dtype(s)
                                                       or pd.api.types.is_datetime64_any_dtype(s))
        if numeric:
            x = (s.astype("datetime64[ns]").astype("int64").astype(float) / 86400e9
                 if pd.api.types.is_datetime64_any_dtype(s) else pd.to_numeric(s, errors="coerce").astype(float))
            x = x.to_numpy(dtype=float, na_value=np.nan)
            a, b = x[m], x[~m]
            ma, mb = np.nanmean(a) if np.isfinite(a).any() else np.nan, np.nanmean(b) if np.isfinite(b).any() else np.nan
            sd = np.sqrt((np.nanvar(a) + np.nanvar(b)) / 2) if np.isfinite(a).any() and np.isfinite(b).any() else np.nan
            effect = abs(ma - mb) / sd if sd and np.isfinite(sd) and sd > 0 else (0.0 if ma == mb else np.nan)
            rows.append({"column": name, "statistic": "standardised mean difference", "effect": effect,
                         "labelled": ma, "unlabelled": mb, "most_different": ""})
        else:
            if isinstance(s.dtype, pd.CategoricalDtype):
                uniques = list(s.cat.categories) + [np.nan]
                codes = np.where(s.cat.codes.to_numpy() < 0, len(uniques) - 1, s.cat.codes.to_numpy())
            else:
                codes, uniques = pd.factorize(s.astype(object), use_na_sentinel=False)
            k = max(len(uniques), 1)
            ca, cb = np.bincount(codes[m], minlength=k), np.bincount(codes[~m], minlength=k)
            if ca.sum() == 0 or cb.sum() == 0:
                continue
            diff = ca / ca.sum() - cb / cb.sum()
            top = int(np.argmax(np.abs(diff)))
            label = uniques[top]
            rows.append({"column": name, "statistic": "total variation distance",
                         "effect": float(np.abs(diff).sum() / 2), "labelled": float((ca / ca.sum())[top]),
                         "unlabelled": float((cb / cb.sum())[top]),
                         "most_different": "(missing)" if pd.isna(label) else str(label)})
    out = pd.DataFrame(rows, columns=["column", "statistic", "effect", "labelled", "unlabelled", "most_different"])
    return out.sort_values("effect", ascending=False, ignore_index=True, na_position="last")
