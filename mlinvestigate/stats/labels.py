"""Label-quality statistics: confident learning, expected issue rates, prior refits, residual outliers.

Confident learning (Northcutt, Jiang & Chuang 2021) flags a labelled row as a likely label issue when
out-of-sample probabilities place it confidently in another class: its probability of some class
``j`` reaches ``j``'s per-class threshold (the mean probability of ``j`` among rows labelled ``j``)
and the model's most likely class is not the given label. cleanlab implements it; the functions here
call cleanlab and add what comparing two periods needs: judging production rows with the thresholds
learned on reference, and the issue rate a calibrated model *expects* from its own uncertainty, so
periods and label sources with a different case mix compare fairly.

On a wide table each fold's model fits on at most :data:`MAX_FEATURES` columns: the ones most
associated with the label on that fold's *training* rows (a chi-square test of each column's
bins against the label, every column at once). The rows a model is judged on never chose its
columns, so its out-of-fold probabilities stay honest; a column without values on the training rows
carries nothing and is left out of that fold.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats

# Iglewicz & Hoaglin: |robust z| above 3.5 is an outlier.
OUTLIER_Z = 3.5
# Columns each fold's model fits on at most: gradient boosting scans every column at every split,
# so 2,000 columns cost thirty times 64; screened on the fold's training rows (see above).
MAX_FEATURES = 64
SCREEN_BINS = 16  # quantile bins per numeric column for the screening test


def cross_validated_probabilities(X: np.ndarray, y: np.ndarray, n_classes: int, *, folds: int = 5,
                                  categorical: list[bool] | None = None, seed: int = 0,
                                  max_features: int = MAX_FEATURES):
    """Out-of-fold class probabilities of a gradient-boosted model, and the fold models.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Numeric features (categories as integer codes, flagged in ``categorical``).
    y : ndarray of int
        Class codes ``0 .. n_classes - 1``.
    max_features : int
        Columns each fold's model fits on at most (screened on its training rows, see above).

    Returns
    -------
    oof : ndarray of shape (n, n_classes)
        Each row's probabilities from the model that did not see it.
    predict : callable
        ``predict(X_new) -> (m, n_classes)`` for rows none of the fold models saw.
    """
    from sklearn.model_selection import KFold, StratifiedKFold
    from threadpoolctl import threadpool_limits

    y = np.asarray(y, dtype=int)
    X = np.asarray(X, dtype=float)
    smallest = np.bincount(y, minlength=n_classes)[np.bincount(y, minlength=n_classes) > 0].min()
    folds = int(max(2, min(folds, len(y) // 2)))
    splitter = (StratifiedKFold(folds, shuffle=True, random_state=seed) if smallest >= folds
                else KFold(folds, shuffle=True, random_state=seed))
    mask = np.zeros(X.shape[1], bool) if categorical is None else np.asarray(categorical, dtype=bool)
    codes = _screen_codes(X, mask) if X.shape[1] > max_features else None
    oof = np.zeros((len(y), n_classes))
    models, columns = [], []
    # One thread: checks run side by side on few cores, and OpenMP threads competing for them
    # make gradient boosting many times slower, not faster.
    with threadpool_limits(1):
        for train, test in splitter.split(X, y):
            cols = np.flatnonzero(~np.isnan(X[train]).all(axis=0))  # a column without values says nothing
            if codes is not None and len(cols) > max_features:
                cols = cols[screen_by_association(codes[np.ix_(train, cols)], y[train], n_classes, max_features)]
            model = _fit(X[np.ix_(train, cols)], y[train], n_classes, mask[cols], seed)
            models.append(model)
            columns.append(cols)
            oof[test] = _full_proba(model, X[np.ix_(test, cols)], n_classes)

    def predict(X_new: np.ndarray) -> np.ndarray:
        # Each new row is scored by one fold model picked at random, not by their average: an
        # average of five models is smoother than any one of them, and the new rows' probabilities
        # must be as sharp as the out-of-fold ones they are compared with.
        X_new = np.asarray(X_new, dtype=float)
        pick = np.random.default_rng(seed).integers(0, len(models), len(X_new))
        out = np.zeros((len(X_new), n_classes))
        with threadpool_limits(1):
            for i, (model, cols) in enumerate(zip(models, columns, strict=True)):
                rows = pick == i
                if rows.any():
                    out[rows] = _full_proba(model, X_new[np.ix_(rows, cols)], n_classes)
        return out

    return oof, predict


class _Prior:
    """The training rows' class shares, for a fold with no usable column."""

    def __init__(self, y: np.ndarray, n_classes: int):
        self.classes_ = np.arange(n_classes)
        self.shares = np.bincount(y, minlength=n_classes) / max(len(y), 1)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.tile(self.shares, (len(X), 1))


def _fit(X: np.ndarray, y: np.ndarray, n_classes: int, categorical: np.ndarray, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    if X.shape[1] == 0:
        return _Prior(y, n_classes)
    model = HistGradientBoostingClassifier(
        max_iter=100, learning_rate=0.1, early_stopping=False, random_state=seed,
        categorical_features=categorical if categorical.any() else None)
    return model.fit(X, y)


def _screen_codes(X: np.ndarray, categorical: np.ndarray) -> np.ndarray:
    """Each column cut into at most :data:`SCREEN_BINS` quantile bins (one per category), from the
    features alone: the label never enters, so every row can help place the cuts."""
    from .leakage import binned_codes

    return binned_codes(X, exact=categorical, max_bins=SCREEN_BINS)[0]


def screen_by_association(codes: np.ndarray, y: np.ndarray, n_classes: int, keep: int) -> np.ndarray:
    """Positions of the ``keep`` columns of ``codes`` (rows × columns of bin codes) most associated
    with the class codes ``y``: the smallest chi-square p-values of each column's bins against the
    label, every column in one ``bincount``; ties go to the earlier column."""
    n, k = codes.shape
    if k <= keep:
        return np.arange(k)
    c = int(codes.max()) + 1
    counts = np.bincount(((np.arange(k)[None, :] * c + codes) * n_classes + y[:, None]).ravel(),
                         minlength=k * c * n_classes).reshape(k, c, n_classes).astype(float)
    rows, cols = counts.sum(axis=2, keepdims=True), counts.sum(axis=1, keepdims=True)
    expected = rows * cols / max(n, 1)
    chi2 = np.where(expected > 0, (counts - expected) ** 2 / np.where(expected > 0, expected, 1), 0).sum(axis=(1, 2))
    df = ((rows[..., 0] > 0).sum(axis=1) - 1) * ((cols[:, 0] > 0).sum(axis=1) - 1)
    logp = np.where(df > 0, stats.chi2.logsf(chi2, np.maximum(df, 1)), 0.0)
    return np.sort(np.argsort(logp, kind="stable")[:keep])


def _full_proba(model, X: np.ndarray, n_classes: int) -> np.ndarray:
    """predict_proba with a column for every class, also those a fold never saw (probability 0)."""
    out = np.zeros((len(X), n_classes))
    if len(model.classes_) == 1:
        out[:, int(model.classes_[0])] = 1.0
    else:
        out[:, model.classes_.astype(int)] = model.predict_proba(X)
    return out


def confident_thresholds(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per-class thresholds: mean probability of class ``k`` among rows labelled ``k`` (cleanlab)."""
    from cleanlab.count import get_confident_thresholds

    return np.asarray(get_confident_thresholds(np.asarray(labels, dtype=int), probs), dtype=float)


def confident_class(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The class each row is confidently in (the likeliest of those above threshold), -1 if none."""
    above = probs >= thresholds - 1e-6
    n_above = above.sum(axis=1)
    out = np.where(n_above > 1, probs.argmax(axis=1), above.argmax(axis=1))
    return np.where(n_above > 0, out, -1)


def issue_flags(labels: np.ndarray, probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Rows whose given label is a likely issue, judged with the given per-class thresholds.

    This is cleanlab's ``num_label_issues`` rule (off-diagonal of the confident joint, minus rows
    whose likeliest class is the given label) with the thresholds passed in, not learned from
    ``labels``: cleanlab's ``find_label_issues`` learns them from the labels it is given, while
    production rows must be judged by what "confident" meant on reference.
    """
    from cleanlab.count import compute_confident_joint

    labels = np.asarray(labels, dtype=int)
    flags = np.zeros(len(labels), dtype=bool)
    if len(labels) == 0:
        return flags
    _, off_diagonal = compute_confident_joint(labels, probs, thresholds=thresholds, calibrate=False,
                                              return_indices_of_off_diagonals=True)
    flags[np.asarray(off_diagonal, dtype=int)] = True
    return flags & (probs.argmax(axis=1) != labels)


def expected_issue_probability(probs: np.ndarray, thresholds: np.ndarray,
                               label_probs: np.ndarray | None = None) -> np.ndarray:
    """Per row, the chance it is flagged if its label were drawn from ``label_probs`` (default ``probs``).

    A row confidently in class ``c`` with likeliest class ``a`` is flagged for any label other than
    ``c`` and ``a``; with calibrated probabilities the mean of this is the issue rate clean labels
    produce, the model's own uncertainty, which is never zero.
    """
    label_probs = probs if label_probs is None else label_probs
    c = confident_class(probs, thresholds)
    a = probs.argmax(axis=1)
    rows = np.arange(len(probs))
    safe_c = np.where(c >= 0, c, 0)
    p_ok = label_probs[rows, safe_c] + np.where(a != safe_c, label_probs[rows, a], 0.0)
    return np.where(c >= 0, np.clip(1.0 - p_ok, 0.0, 1.0), 0.0)


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """Temperature ``T`` with ``p^(1/T)`` (renormalised) best calibrated to ``labels`` (maximum likelihood).

    ``T > 1`` softens overconfident probabilities; boosted trees' out-of-fold probabilities usually are.
    """
    labels = np.asarray(labels, dtype=int)
    logp = np.log(np.clip(probs, 1e-12, 1.0))
    rows = np.arange(len(labels))

    def nll(log_t):
        z = logp / np.exp(log_t)
        zmax = z.max(axis=1, keepdims=True)
        lse = zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1))
        return -np.mean(z[rows, labels] - lse)

    if len(labels) == 0:
        return 1.0
    res = optimize.minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``p^(1/T)``, renormalised per row."""
    z = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def adjust_priors(probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Prior-adjusted probabilities ``p'(y|x) ∝ p(y|x) · w(y)`` (``w = π'/π``)."""
    out = probs * np.asarray(weights, dtype=float)
    total = out.sum(axis=1, keepdims=True)
    return np.divide(out, total, out=np.full_like(out, 1.0 / probs.shape[1]), where=total > 0)


def fit_prior_weights(probs: np.ndarray, labels: np.ndarray, *, counts: np.ndarray | None = None,
                      smoothing: float = 1e-4) -> np.ndarray:
    """Class weights ``w`` that best explain ``labels`` as draws from ``p(y|x) · w(y)`` (maximum likelihood).

    A change of class balance with the class-conditional inputs unchanged moves every row's
    probabilities exactly this way, so what remains after this refit is not explained by a prior
    shift. Weights are scaled to ``w[0] = 1``; classes never seen in ``labels`` keep weight 1.

    Examples
    --------
    >>> p = np.array([[0.9, 0.1]] * 100)
    >>> w = fit_prior_weights(p, np.r_[np.zeros(80), np.ones(20)].astype(int))
    >>> round(float(w[1] / w[0]), 2)   # odds 0.25 observed vs 0.111 expected
    2.25
    """
    labels = np.asarray(labels, dtype=int)
    k = probs.shape[1]
    counts = np.ones(len(labels)) if counts is None else np.asarray(counts, dtype=float)
    seen = np.bincount(labels, weights=counts, minlength=k) > 0
    free = np.flatnonzero(seen)[1:] if seen.sum() > 1 else np.array([], dtype=int)
    if len(free) == 0:
        return np.ones(k)
    logp = np.log(probs + smoothing)
    rows = np.arange(len(labels))

    def loss(theta):
        logw = np.zeros(k)
        logw[free] = theta
        z = logp + logw
        zmax = z.max(axis=1, keepdims=True)
        lse = zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1))
        soft = np.exp(z - lse[:, None])
        nll = -np.sum(counts * (z[rows, labels] - lse))
        onehot = np.zeros_like(soft)
        onehot[rows, labels] = 1.0
        grad = -((onehot - soft) * counts[:, None]).sum(axis=0)[free]
        return nll, grad

    res = optimize.minimize(loss, np.zeros(len(free)), jac=True, method="L-BFGS-B",
                            bounds=[(-12, 12)] * len(free))
    logw = np.zeros(k)
    logw[free] = res.x
    first = np.flatnonzero(seen)[0]
    return np.exp(logw - logw[first])


def mean_difference_test(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Difference of means ``mean(a) - mean(b)``, its standard error and Welch z-test p-value."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return float("nan"), float("nan"), float("nan")
    diff = a.mean() - b.mean()
    se = float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))
    p = float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else (0.0 if diff != 0 else 1.0)
    return float(diff), se, p


def robust_location_scale(values: np.ndarray) -> tuple[float, float]:
    """Median and MAD scaled to a normal standard deviation (1.4826 · MAD), ignoring NaN."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan")
    centre = float(np.median(v))
    scale = float(1.4826 * np.median(np.abs(v - centre)))
    if scale == 0:  # more than half the residuals identical: fall back to the standard deviation
        scale = float(np.std(v)) or 1.0
    return centre, scale


def robust_z(values: np.ndarray, centre: float, scale: float) -> np.ndarray:
    """``(values - centre) / scale``: residuals in robust standard deviations of reference."""
    return (np.asarray(values, dtype=float) - centre) / scale
