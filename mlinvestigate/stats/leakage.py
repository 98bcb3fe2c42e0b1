"""Statistics behind the leakage check: how much one feature alone knows about the target.

Single-feature power
    A one-feature model that is fast enough for a million rows and honest about small ones: the
    feature is cut into bins (reference quantiles for numbers, one bin per distinct value when there
    are few, one per category, one for missing values), and each bin predicts the target's smoothed
    mean in that bin (class shares for classification, the mean for regression). Its power is
    measured out of fold (:func:`cross_validated_power`), on reference and on production alike:
    ROC AUC for a binary target, macro one-vs-rest ROC AUC for a multiclass one, R² for regression.
    Fitting each table separately makes the comparison blind to a change of units, a shift or a
    cap: only the information the feature carries about the target counts. Predictions take a few
    hundred distinct values at most, so every metric and every bootstrap resample is computed from
    per-bin totals.

Information
    ``1 - H(Y | X) / H(Y)`` estimated out of fold (the log loss of the binned model against the
    entropy of the target): 1 when the feature determines the class, 0 when it says nothing. For
    regression the out-of-fold R² plays the same role.

Also here: the full model's own power (:func:`model_power`), skill on a common 0–1 scale
(:func:`skill`), mutual information (scikit-learn's estimators, :func:`mutual_information`),
identifier-like columns (:func:`identifier_profile`), rows shared between two tables
(:func:`shared_share`, :func:`row_hashes`, :func:`duplicate_share`), overlapping periods (:func:`period_overlap`) and values
known after the prediction time (:func:`late_share`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MAX_BINS = 64
SMOOTHING = 1.0  # pseudo-rows of the overall mean added to every bin


# --- the one-feature model ----------------------------------------------------------------------
def as_numbers(values) -> np.ndarray:
    """A feature as float numbers a binning can cut: categories become their codes, datetimes
    nanoseconds, booleans 0/1; missing values (and unparseable ones) become NaN.

    Categorical series that share one ``CategoricalDtype`` across files get comparable codes.
    """
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy().astype(float)
        codes[codes < 0] = np.nan
        return codes
    if pd.api.types.is_datetime64_any_dtype(s):
        if getattr(s.dt, "tz", None) is not None:
            s = s.dt.tz_convert(None)
        out = s.to_numpy(dtype="datetime64[ns]").astype("int64").astype(float)
        out[s.isna().to_numpy()] = np.nan
        return out
    if pd.api.types.is_float_dtype(s) or pd.api.types.is_integer_dtype(s) or pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype=float, na_value=np.nan)
    # text or mixed objects: one code per distinct value (only comparable within one call)
    codes, _ = pd.factorize(s.astype(object), sort=True)
    out = codes.astype(float)
    out[codes < 0] = np.nan
    return out


@dataclass
class Bins:
    """How a feature is cut: code 0 is missing, 1…k the bins, k+1 values never seen when fitting."""

    cuts: np.ndarray | None = None      # numeric: bin boundaries (value > cut moves up one bin)
    levels: np.ndarray | None = None    # exact: the distinct values, one bin each

    @property
    def n_codes(self) -> int:
        k = len(self.levels) if self.levels is not None else len(self.cuts) + 1
        return k + 2

    def codes(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        out = np.zeros(len(x), dtype=np.int64)
        ok = np.isfinite(x)
        if self.levels is not None:
            pos = np.searchsorted(self.levels, x[ok]).clip(0, max(len(self.levels) - 1, 0))
            hit = self.levels[pos] == x[ok] if len(self.levels) else np.zeros(ok.sum(), bool)
            out[ok] = np.where(hit, pos + 1, len(self.levels) + 1)
        else:
            out[ok] = 1 + np.searchsorted(self.cuts, x[ok], side="left")
        return out


def fit_bins(x: np.ndarray, *, max_bins: int = MAX_BINS, exact: bool = False) -> Bins:
    """Bins for ``x``: one per distinct value when there are at most ``max_bins`` of them (always
    for ``exact``, e.g. category codes), else ``max_bins`` quantile bins."""
    x = np.asarray(x, dtype=float)
    finite = x[np.isfinite(x)]
    levels = np.unique(finite)
    if exact or len(levels) <= max_bins:
        return Bins(levels=levels)
    cuts = np.unique(np.quantile(finite, np.linspace(0, 1, max_bins + 1)[1:-1], method="lower"))
    return Bins(cuts=cuts)


def encode_target(y, kind: str, classes=None) -> tuple[np.ndarray, np.ndarray | None]:
    """Target as a row matrix: one-hot over ``classes`` (classification) or one float column.

    Rows whose class is not in ``classes`` get an all-zero row (the caller drops them).
    """
    if kind == "regression":
        return np.asarray(y, dtype=float)[:, None], None
    y = np.asarray(y, dtype=object)
    if classes is None:
        classes = np.asarray(sorted(pd.unique(y), key=lambda v: (str(type(v)), v)), dtype=object)
    onehot = np.column_stack([(y == c) for c in classes]).astype(float)
    return onehot, np.asarray(classes, dtype=object)


def _table(codes: np.ndarray, Y: np.ndarray, n_codes: int, prior: np.ndarray) -> np.ndarray:
    """Smoothed per-code mean of ``Y`` (codes × columns)."""
    counts = np.bincount(codes, minlength=n_codes).astype(float)
    sums = np.column_stack([np.bincount(codes, weights=Y[:, j], minlength=n_codes)
                            for j in range(Y.shape[1])])
    return (sums + SMOOTHING * prior) / (counts + SMOOTHING)[:, None]


# --- metrics from per-group totals ---------------------------------------------------------------
def _class_power(pred: np.ndarray, counts: np.ndarray, folds: int) -> np.ndarray:
    """Macro one-vs-rest ROC AUC of group class shares ``pred`` (groups × classes), for each of
    several draws of group × class row ``counts`` (draws × groups × classes); ties count half.

    Groups come in ``folds`` equal blocks, one per cross-validation fold, and AUC is averaged over
    folds: pooling out-of-fold scores would rank rows by their fold's prior and push a useless
    feature below 0.5. A binary target needs one class (the other's AUC is the same).
    """
    n_draws, n_groups, n_classes = counts.shape
    totals = counts.sum(axis=2)
    block = n_groups // folds
    fold_sum, fold_n = np.zeros(n_draws), np.zeros(n_draws)
    for f in range(folds):
        part = slice(f * block, (f + 1) * block)
        auc_sum, auc_n = np.zeros(n_draws), np.zeros(n_draws)
        for k in ([1] if n_classes == 2 else range(n_classes)):
            levels, inv = np.unique(pred[part, k], return_inverse=True)
            onehot = np.zeros((block, len(levels)))
            onehot[np.arange(block), inv] = 1.0
            pos = counts[:, part, k] @ onehot
            neg = totals[:, part] @ onehot - pos
            below = np.cumsum(neg, axis=1) - neg
            denom = pos.sum(axis=1) * neg.sum(axis=1)
            ok = denom > 0
            auc = np.where(ok, (pos * (below + 0.5 * neg)).sum(axis=1) / np.where(ok, denom, 1), 0.0)
            auc_sum += auc
            auc_n += ok
        has = auc_n > 0
        fold_sum += np.where(has, auc_sum / np.where(has, auc_n, 1), 0.0)
        fold_n += has
    return np.where(fold_n > 0, fold_sum / np.where(fold_n > 0, fold_n, 1), np.nan)


def _class_information(pred: np.ndarray, counts: np.ndarray) -> float:
    """``1 - log loss / H(Y)`` of group class shares ``pred``."""
    total = counts.sum()
    shares = counts.sum(axis=0) / total
    entropy = -np.sum(shares[shares > 0] * np.log(shares[shares > 0]))
    loss = -np.sum(counts * np.log(np.clip(pred, 1e-15, 1))) / total
    return float(1 - loss / entropy) if entropy > 0 else np.nan


def _r2(groups: np.ndarray, pred: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> float:
    """R² of group predictions ``pred[groups]`` against ``y`` (optionally row-weighted)."""
    n_groups = len(pred)
    n_g = np.bincount(groups, weights=weights, minlength=n_groups).astype(float)
    yw = y if weights is None else y * weights
    s1 = np.bincount(groups, weights=yw, minlength=n_groups)
    s2 = np.bincount(groups, weights=yw * y, minlength=n_groups)
    total = n_g.sum()
    sse = np.sum(s2 - 2 * pred * s1 + n_g * pred**2)
    sst = s2.sum() - s1.sum() ** 2 / total
    return float(1 - sse / sst) if sst > 1e-12 * max(s2.sum(), 1e-300) else np.nan


@dataclass
class Power:
    """A single-feature power estimate with its bootstrap interval.

    ``value`` is ROC AUC (classification) or R² (regression); ``draws`` the bootstrap values
    (kept to build intervals of differences).
    """

    value: float
    low: float
    high: float
    information: float
    rows: int
    draws: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)


def _interval(draws: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    ok = draws[np.isfinite(draws)]
    if len(ok) == 0:
        return np.nan, np.nan
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(ok, [alpha, 1 - alpha])
    return float(lo), float(hi)


def _power(groups, pred, Y, kind, *, n_resamples: int, seed: int, folds: int = 1) -> Power:
    """Power of group predictions with a bootstrap interval over rows.

    For classes a row resample is a multinomial draw of the group × class counts, so each draw
    costs the number of groups, not of rows.
    """
    n = len(groups)
    rng = np.random.default_rng(seed)
    draws = np.full(n_resamples, np.nan)
    if kind == "regression":
        y = Y[:, 0]
        value = _r2(groups, pred[:, 0], y)
        information = value
        for i in range(n_resamples if n >= 2 else 0):
            w = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
            draws[i] = _r2(groups, pred[:, 0], y, w)
    else:
        counts = np.column_stack([np.bincount(groups, weights=Y[:, k], minlength=len(pred))
                                  for k in range(Y.shape[1])])
        value = float(_class_power(pred, counts[None], folds)[0])
        information = _class_information(pred, counts)
        if n >= 2 and n_resamples:
            resampled = rng.multinomial(n, counts.ravel() / n, size=n_resamples)
            draws = _class_power(pred, resampled.reshape((n_resamples,) + counts.shape), folds)
    lo, hi = _interval(draws)
    return Power(value, lo, hi, information, n, draws)


def _clean(x, y, kind, classes=None):
    x = np.asarray(x, dtype=float)
    Y, classes = encode_target(y, kind, classes)
    keep = np.isfinite(Y).all(axis=1) & (Y.sum(axis=1) > 0 if kind != "regression" else True)
    return x[keep], Y[keep], classes


def _bins_for(x: np.ndarray, n: int, max_bins: int, exact: bool) -> Bins:
    # About 20 rows a bin at least, so a small table still gets a few populated bins.
    return fit_bins(x, max_bins=int(np.clip(n // 20, 2, max_bins)), exact=exact)


def cross_validated_power(x, y, *, kind: str, exact: bool = False, folds: int = 5,
                          max_bins: int = MAX_BINS, n_resamples: int = 200, seed: int = 0) -> Power:
    """Out-of-fold power of the binned one-feature model of ``y`` on ``x``.

    Parameters
    ----------
    x : array of float
        The feature (see :func:`as_numbers`); NaN is its own bin.
    y : array
        Target values: labels (``kind`` ``binary``/``multiclass``) or numbers (``regression``).
        Missing targets must be removed beforehand.
    exact : bool
        One bin per distinct value (category codes).

    Returns
    -------
    Power
        ROC AUC (macro one-vs-rest for several classes) or R², with a bootstrap interval over the
        out-of-fold predictions.

    Examples
    --------
    >>> y = np.tile([0, 1], 50)
    >>> cross_validated_power(y.astype(float), y, kind="binary", n_resamples=0).value
    1.0
    """
    x, Y, _ = _clean(x, y, kind)
    n = len(x)
    if n < 2 * folds or (kind != "regression" and Y.shape[1] < 2):
        return Power(np.nan, np.nan, np.nan, np.nan, n)
    bins = _bins_for(x, n, max_bins, exact)
    codes = bins.codes(x)
    c = bins.n_codes
    fold = np.random.default_rng(seed).permutation(n) % folds
    pred = np.empty((folds * c, Y.shape[1]))
    for f in range(folds):
        train = fold != f
        pred[f * c:(f + 1) * c] = _table(codes[train], Y[train], c, Y[train].mean(axis=0))
    return _power(fold * c + codes, pred, Y, kind, n_resamples=n_resamples, seed=seed, folds=folds)


def difference_interval(a: Power, b: Power, *, confidence: float = 0.95) -> tuple[float, float, float]:
    """``a - b`` with a percentile interval from the two (independent) bootstrap samples."""
    point = a.value - b.value
    m = min(len(a.draws), len(b.draws))
    if m == 0:
        return point, np.nan, np.nan
    d = a.draws[:m] - b.draws[:m]
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return point, np.nan, np.nan
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(d, [alpha, 1 - alpha])
    return float(point), float(lo), float(hi)


# --- the full model and a common scale -----------------------------------------------------------
def model_power(y, output, *, kind: str, positive=None, is_score: bool = False) -> float:
    """The logged model's own power on the same scale as a single feature's.

    Binary: ROC AUC of the score (``is_score``) or of the predicted class being ``positive``.
    Multiclass: macro one-vs-rest ROC AUC of the predicted classes. Regression: R².
    """
    from sklearn.metrics import r2_score, roc_auc_score

    if kind == "regression":
        y, out = np.asarray(y, dtype=float), np.asarray(output, dtype=float)
        ok = np.isfinite(y) & np.isfinite(out)
        return float(r2_score(y[ok], out[ok])) if ok.sum() > 1 and np.ptp(y[ok]) > 0 else np.nan
    y = np.asarray(y, dtype=object)
    if kind == "binary":
        truth = (y == positive).astype(int)
        s = (np.asarray(output, dtype=float) if is_score
             else (np.asarray(output, dtype=object) == positive).astype(float))
        ok = np.isfinite(s)
        if len(np.unique(truth[ok])) < 2:
            return np.nan
        return float(roc_auc_score(truth[ok], s[ok]))
    out = np.asarray(output, dtype=object)
    aucs = []
    for c in pd.unique(y):
        truth = (y == c).astype(int)
        if 0 < truth.sum() < len(truth):
            aucs.append(roc_auc_score(truth, (out == c).astype(float)))
    return float(np.mean(aucs)) if aucs else np.nan


def skill(power: float, kind: str) -> float:
    """Power above chance on a 0–1 scale: Gini ``2·AUC − 1`` for classes, R² for regression."""
    return power if kind == "regression" else 2 * power - 1


# --- mutual information --------------------------------------------------------------------------
def mutual_information(x: np.ndarray, y, *, kind: str, discrete: bool, seed: int = 0) -> tuple[float, float]:
    """Mutual information (nats) between a feature and the target, and its share of ``H(Y)``
    (classification; NaN for regression), with scikit-learn's estimators.

    Discrete features use the plug-in estimate (missing values are one more value); continuous
    ones the nearest-neighbour estimate on the rows where the feature is present.
    """
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

    x = np.asarray(x, dtype=float)
    if kind == "regression":
        y = np.asarray(y, dtype=float)
    else:
        y = pd.factorize(pd.Series(np.asarray(y, dtype=object)).astype(str))[0]
    if discrete:
        x = np.where(np.isfinite(x), x, np.nanmin(x) - 1 if np.isfinite(x).any() else 0.0)
        keep = np.ones(len(x), bool)
    else:
        keep = np.isfinite(x)
    if keep.sum() < 10 or len(np.unique(x[keep])) < 2 or len(np.unique(y[keep])) < 2:
        mi = 0.0 if keep.sum() >= 10 else np.nan
    else:
        fn = mutual_info_regression if kind == "regression" else mutual_info_classif
        mi = float(fn(x[keep, None], y[keep], discrete_features=discrete, random_state=seed)[0])
    if kind == "regression":
        return mi, np.nan
    shares = np.bincount(y) / len(y)
    entropy = -np.sum(shares[shares > 0] * np.log(shares[shares > 0]))
    return mi, (mi / entropy if entropy > 0 and np.isfinite(mi) else np.nan)


# --- identifiers, shared rows, time --------------------------------------------------------------
def identifier_profile(x: np.ndarray) -> tuple[float, float]:
    """(share of distinct values, monotonicity in row order) of a feature.

    Monotonicity is the absolute Spearman correlation between the value and the row position over
    rows where the value is present: 1 for a counter or a timestamp of sorted rows.
    """
    from scipy.stats import spearmanr

    x = np.asarray(x, dtype=float)
    pos = np.flatnonzero(np.isfinite(x))
    if len(pos) < 3:
        return np.nan, np.nan
    values = x[pos]
    unique = len(np.unique(values)) / len(values)
    if np.ptp(values) == 0:
        return unique, 0.0
    rho = spearmanr(values, pos).statistic
    return float(unique), float(abs(rho)) if np.isfinite(rho) else 0.0


def row_hashes(df: pd.DataFrame) -> np.ndarray:
    """One 64-bit hash per row of ``df`` (values only, not the index), equal for equal rows of two
    files: numbers, booleans and datetimes are hashed as the floats of :func:`as_numbers` (``1``
    and ``1.0`` agree), other values by their value (a category by its label).

    Column by column: hashing the frame at once first copies every column into one block, which
    cost more than the hashing at a million rows.
    """
    out = np.zeros(len(df), dtype=np.uint64)
    for name in df.columns:
        s = df[name]
        if isinstance(s.dtype, pd.CategoricalDtype) or not (
                pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)
                or pd.api.types.is_datetime64_any_dtype(s)):
            h = pd.util.hash_pandas_object(s, index=False).to_numpy()
        else:
            h = pd.util.hash_array(as_numbers(s))
        out = (out * np.uint64(0x100000001B3)) ^ h  # FNV-style: the column order counts
    return out


def shared_share(keys_new, keys_old) -> tuple[int, float]:
    """How many (and what share) of ``keys_new`` also occur in ``keys_old``."""
    keys_new = pd.Index(keys_new)
    if len(keys_new) == 0:
        return 0, np.nan
    hit = keys_new.isin(pd.Index(keys_old))
    return int(hit.sum()), float(hit.mean())


def duplicate_share(keys) -> float:
    """Share of ``keys`` that occur more than once: how often a row repeats another row of the same
    file by chance, the baseline for rows shared between two files of about that size."""
    keys = pd.Index(keys)
    return float(keys.duplicated(keep=False).mean()) if len(keys) else np.nan


def period_overlap(ref_times: pd.Series, prod_times: pd.Series) -> dict:
    """How the reference period overlaps the production period.

    Returns ``reference_start``/``reference_end``/``production_start``/``production_end``,
    ``overlap_days`` (0 when reference ends before production starts) and
    ``reference_share_in_production_period`` (reference rows dated at or after the first
    production row).
    """
    r, p = pd.Series(ref_times).dropna(), pd.Series(prod_times).dropna()
    if r.empty or p.empty:
        return {}
    start, end = max(r.min(), p.min()), min(r.max(), p.max())
    overlap = max((end - start).total_seconds() / 86400, 0.0) if end >= start else 0.0
    return {"reference_start": r.min(), "reference_end": r.max(), "production_start": p.min(),
            "production_end": p.max(), "overlap_days": overlap,
            "reference_share_in_production_period": float((r >= p.min()).mean())}


def late_share(available: pd.Series, at: pd.Series) -> tuple[int, float, int]:
    """Rows whose value became known strictly after the prediction time: (count, share, rows compared)."""
    both = available.notna().to_numpy() & at.notna().to_numpy()
    n = int(both.sum())
    if n == 0:
        return 0, np.nan, 0
    late = int((available.to_numpy()[both] > at.to_numpy()[both]).sum())
    return late, late / n, n


# --- every feature at once -----------------------------------------------------------------------
# Cells (rows × features) handled in one vectorised block by :func:`cross_validated_powers`.
BLOCK_CELLS = 4_000_000
# Features whose binning has more codes than this (high-cardinality categories) are computed one
# at a time: the vectorised layout pads every feature to the block's largest number of codes.
MAX_PADDED_CODES = 2 * MAX_BINS + 2


def cross_validated_powers(X: np.ndarray, y, *, kind: str, exact=None, folds: int = 5,
                           max_bins: int = MAX_BINS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Point values of :func:`cross_validated_power` (power and information) for every column of ``X``.

    The same binned one-feature models, folds and metrics, computed a block of columns at a time
    with one ``bincount`` per block instead of one call per feature, so a table thousands of columns
    wide costs a few vectorised passes. Bootstrap intervals are left to
    :func:`cross_validated_power`, for the features that need them.

    Parameters
    ----------
    X : ndarray of shape (n, k)
        Features as numbers (:func:`as_numbers`), NaN for missing.
    exact : array of bool, optional
        Per column: one bin per distinct value (category codes).

    Returns
    -------
    power, information : ndarray of shape (k,)
    """
    X = np.asarray(X, dtype=float)
    k = X.shape[1]
    exact = np.zeros(k, bool) if exact is None else np.asarray(exact, dtype=bool)
    power, information = np.full(k, np.nan), np.full(k, np.nan)
    Y, _ = encode_target(y, kind)
    keep = np.isfinite(Y).all(axis=1) & (Y.sum(axis=1) > 0 if kind != "regression" else True)
    X, Y = X[keep], Y[keep]
    n = len(X)
    if k == 0 or n < 2 * folds or (kind != "regression" and Y.shape[1] < 2):
        return power, information
    fold = np.random.default_rng(seed).permutation(n) % folds
    priors = np.stack([Y[fold != f].mean(axis=0) for f in range(folds)])  # folds × targets
    codes, n_codes = binned_codes(X, exact=exact, max_bins=max_bins)
    step = max(1, BLOCK_CELLS // max(n, 1))
    padded = np.flatnonzero(n_codes <= MAX_PADDED_CODES)
    for j in np.setdiff1d(np.arange(k), padded):  # many categories: one at a time
        p = cross_validated_power(X[:, j], y[keep] if kind == "regression" else np.asarray(y, object)[keep],
                                  kind=kind, exact=bool(exact[j]), folds=folds, max_bins=max_bins,
                                  n_resamples=0, seed=seed)
        power[j], information[j] = p.value, p.information
    for start in range(0, len(padded), step):
        cols = padded[start:start + step]
        power[cols], information[cols] = _block_powers(codes[:, cols], int(n_codes[cols].max()), fold, folds,
                                                       Y, priors, kind)
    return power, information


def binned_codes(X: np.ndarray, *, exact=None, max_bins: int = MAX_BINS) -> tuple[np.ndarray, np.ndarray]:
    """Every column of ``X`` cut as the one-feature model cuts it (:class:`Bins`, about 20 rows a
    bin at least): codes (rows × columns; 0 is missing) and each column's number of codes."""
    X = np.asarray(X, dtype=float)
    n, k = X.shape
    exact = np.zeros(k, bool) if exact is None else np.asarray(exact, dtype=bool)
    codes = np.empty((n, k), dtype=np.int64)
    n_codes = np.empty(k, dtype=np.int64)
    step = max(1, BLOCK_CELLS // max(n, 1))
    for start in range(0, k, step):
        block = np.ascontiguousarray(X[:, start:start + step].T)  # one feature per row
        for i, bins in enumerate(_sorted_bins(block, max_bins, exact[start:start + step])):
            codes[:, start + i], n_codes[start + i] = bins.codes(block[i]), bins.n_codes
    return codes, n_codes


def _sorted_bins(rows: np.ndarray, max_bins: int, exact: np.ndarray) -> list[Bins]:
    """:func:`_bins_for` of each row of ``rows`` (one feature per row), from one sort of the block."""
    n = rows.shape[1]
    limit = int(np.clip(n // 20, 2, max_bins))
    ordered = np.sort(rows, axis=1)  # NaN last
    finite = np.isfinite(ordered)
    m = finite.sum(axis=1)
    new = np.ones(ordered.shape, dtype=bool)
    new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    new &= finite
    distinct = new.sum(axis=1)
    quantiles = np.linspace(0, 1, limit + 1)[1:-1]
    out = []
    for i in range(len(rows)):
        if m[i] and not (finite[i, 0] and finite[i, m[i] - 1]):  # ±inf: the plain way
            out.append(_bins_for(rows[i], n, max_bins, bool(exact[i])))
            continue
        values = ordered[i, :m[i]]
        if exact[i] or distinct[i] <= limit:
            out.append(Bins(levels=values[new[i, :m[i]]]))
        else:
            # np.quantile(..., method="lower"): the value at floor((m - 1) q)
            cuts = values[np.floor((m[i] - 1) * quantiles).astype(np.intp)]
            out.append(Bins(cuts=cuts[np.r_[True, cuts[1:] != cuts[:-1]]]))
    return out


def _block_powers(codes: np.ndarray, c: int, fold: np.ndarray, folds: int, Y: np.ndarray, priors: np.ndarray,
                  kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Power and information of each column of ``codes`` (rows × b), every column padded to ``c`` codes."""
    n, b = codes.shape
    m = Y.shape[1]
    # group of each cell: (column, fold, code)
    gid = (np.arange(b)[None, :] * folds + fold[:, None]) * c + codes
    size = b * folds * c
    flat = gid.ravel()
    count = np.bincount(flat, minlength=size).reshape(b, folds, c).astype(float)
    sums = np.stack([np.bincount(flat, weights=np.repeat(Y[:, t], b), minlength=size) for t in range(m)],
                    axis=-1).reshape(b, folds, c, m)
    # out of fold: each fold's code table is fitted on the other folds
    train_count = count.sum(axis=1, keepdims=True) - count
    train_sums = sums.sum(axis=1, keepdims=True) - sums
    pred = (train_sums + SMOOTHING * priors[None, :, None, :]) / (train_count + SMOOTHING)[..., None]
    if kind == "regression":
        y = Y[:, 0]
        s2 = np.bincount(flat, weights=np.repeat(y * y, b), minlength=size).reshape(b, folds, c)
        p, s1 = pred[..., 0], sums[..., 0]
        sse = (s2 - 2 * p * s1 + count * p**2).sum(axis=(1, 2))
        total = float(n)
        sst = s2.sum(axis=(1, 2)) - s1.sum(axis=(1, 2)) ** 2 / total
        ok = sst > 1e-12 * np.maximum(s2.sum(axis=(1, 2)), 1e-300)
        r2 = np.where(ok, 1 - sse / np.where(ok, sst, 1.0), np.nan)
        return r2, r2
    # information: 1 - log loss / H(Y), over every group of the column
    shares = Y.sum(axis=0) / n
    entropy = -np.sum(shares[shares > 0] * np.log(shares[shares > 0]))
    loss = -(sums * np.log(np.clip(pred, 1e-15, 1))).sum(axis=(1, 2, 3)) / n
    info = 1 - loss / entropy if entropy > 0 else np.full(b, np.nan)
    # ROC AUC per column and fold (macro over classes), ties between codes counting half
    auc_sum, auc_n = np.zeros((b, folds)), np.zeros((b, folds))
    for t in ([1] if m == 2 else range(m)):
        order = np.argsort(pred[..., t], axis=-1, kind="stable")
        score = np.take_along_axis(pred[..., t], order, axis=-1)
        pos = np.take_along_axis(sums[..., t], order, axis=-1)
        neg = np.take_along_axis(count, order, axis=-1) - pos
        new = np.ones(score.shape, dtype=bool)
        new[..., 1:] = score[..., 1:] != score[..., :-1]
        index = np.broadcast_to(np.arange(c), score.shape)
        first = np.maximum.accumulate(np.where(new, index, 0), axis=-1)
        last_mark = np.ones(score.shape, dtype=bool)
        last_mark[..., :-1] = new[..., 1:]
        last = np.minimum.accumulate(np.where(last_mark, index, c - 1)[..., ::-1], axis=-1)[..., ::-1]
        cum = np.cumsum(neg, axis=-1)
        below = np.where(first > 0, np.take_along_axis(cum, np.maximum(first - 1, 0), axis=-1), 0.0)
        tied = np.take_along_axis(cum, last, axis=-1) - below
        denom = pos.sum(axis=-1) * neg.sum(axis=-1)
        ok = denom > 0
        auc = np.where(ok, (pos * (below + 0.5 * tied)).sum(axis=-1) / np.where(ok, denom, 1), 0.0)
        auc_sum += auc
        auc_n += ok
    has = auc_n > 0
    per_fold = np.where(has, auc_sum / np.where(has, auc_n, 1), 0.0)
    n_has = has.sum(axis=1)
    power = np.where(n_has > 0, per_fold.sum(axis=1) / np.maximum(n_has, 1), np.nan)
    return power, info
