"""A domain classifier: can a model tell production rows from reference rows?

Univariate statistics miss changes in how features move together. A classifier trained to
separate the two sides sees the joint distribution: a cross-validated ROC AUC near 0.5 means the
sides look alike, near 1 that production is a different population. Its permutation importances
say which features separate them, and its probabilities give density ratios
``p_prod(x) / p_ref(x)`` that reweight reference rows to look like production (the gap
attribution uses them).

Choices, each for a reason:

- a seeded sample of at most ``max_rows`` rows a side, balanced sides, so a million-row incident
  costs the same as a 50,000-row one and the AUC is not driven by class imbalance;
- scikit-learn's ``HistGradientBoostingClassifier``: handles missing values, mixed types and
  categorical features natively and needs no scaling; early stopping keeps it small when there
  is nothing to find;
- stratified K-fold: every sampled row gets an out-of-fold probability, so the AUC is honest and
  the same fold models serve as a cross-fitted ensemble for new rows;
- features that alone separate the sides almost perfectly (univariate AUC ≥ ``separator_auc``:
  an id, a date or a counter that grows with time, a unit change) are reported and left out,
  otherwise they make the AUC 1.0 and hide everything else;
- on a wide table each fold's model fits on at most ``max_features`` (:data:`MAX_FEATURES`)
  columns: those that separate the fold's *training* rows best on their own (univariate AUC,
  computed for every column at once). Gradient boosting's cost grows with the columns it scans at
  every split, so this keeps the time near-linear in the table's width (one vectorised pass) instead
  of thousands of column scans per tree. Screening inside each fold keeps the out-of-fold AUC
  honest: rows that chose the columns are never the rows that judge them, so a table of pure noise
  still scores 0.5. A column no fold kept has importance 0, as a column the trees never split on.
  The price: a change only in how unscreened columns move together goes unseen; the rule and the
  number screened are in :attr:`DomainClassifier.note`.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from threadpoolctl import threadpool_limits

from .encoding import Encoding, kept_categories
from .intervals import auc_interval

SCREEN_ROWS = 10_000  # rows a side for the single-feature separation screen
# Columns each fold's classifier fits on at most (the ones that separate its training rows best
# alone); a table this wide costs a few seconds, and wider tables cost a vectorised screen more.
MAX_FEATURES = 128
# Cells (rows × columns) ranked at once by the vectorised univariate AUC: 8 million float64
# cells is 64 MB for the ranks.
RANK_CELLS = 8_000_000
# Cells of the encoded matrix scored at once by predict_proba (a million rows of 50 features, or
# 12,500 rows of 2,000, is 200 MB).
PREDICT_CELLS = 25_000_000
# Cells (rows × features) of shuffled copies predicted in one call by the permutation importance:
# 4 million float64 cells is 32 MB, whatever the width of the table.
STACK_CELLS = 4_000_000


def univariate_auc(x: np.ndarray, y: np.ndarray, *, categorical: bool, seed: int = 0) -> float:
    """How well one column alone separates ``y == 1`` from ``y == 0``, as max(AUC, 1 - AUC).

    Numeric columns rank their values (missing counts as its own lowest value). Categorical
    columns score each row by its category's share of ``y == 1`` rows, learned on the other half
    of the rows, so a category seen once (an id) cannot separate by memorising.
    """
    if len(np.unique(y)) < 2:
        return math.nan
    if not categorical:
        auc = rank_auc(y, np.where(np.isnan(x), -np.inf, x))
        return float(max(auc, 1 - auc))
    codes = np.where(np.isnan(x), -1, x).astype(np.int64) + 1
    half = np.random.default_rng(seed).random(len(x)) < 0.5
    score = np.empty(len(x))
    size = int(codes.max()) + 1
    for part in (half, ~half):
        fit = ~part
        pos = np.bincount(codes[fit], weights=y[fit], minlength=size)
        tot = np.bincount(codes[fit], minlength=size)
        prior = y[fit].mean() if fit.any() else 0.5
        rate = np.where(tot > 0, (pos + prior) / (tot + 1), prior)
        score[part] = rate[codes[part]]
    auc = rank_auc(y, score)
    return float(max(auc, 1 - auc))


def univariate_aucs(X: np.ndarray, y: np.ndarray, categorical: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """:func:`univariate_auc` of every column of ``X`` (NaN for a column without values).

    Numeric columns are ranked all at once, a block of :data:`RANK_CELLS` cells at a time, so a
    table thousands of columns wide costs one vectorised pass, not thousands of calls; the values
    equal the one-column function's.
    """
    y = np.asarray(y)
    k = X.shape[1]
    out = np.full(k, np.nan)
    if len(np.unique(y)) < 2:
        return out
    categorical = np.asarray(categorical, dtype=bool)
    present = ~np.isnan(X).all(axis=0) if len(X) else np.zeros(k, bool)
    for j in np.flatnonzero(categorical & present):
        out[j] = univariate_auc(X[:, j], y, categorical=True, seed=seed)
    numeric = np.flatnonzero(~categorical & present)
    pos = y.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    step = max(1, RANK_CELLS // max(len(X), 1))
    for start in range(0, len(numeric), step):
        cols = numeric[start:start + step]
        block = np.ascontiguousarray(X[:, cols].T)  # one column per row: each sort reads contiguous memory
        block[np.isnan(block)] = -np.inf
        auc = (_positive_rank_sums(block, pos) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
        out[cols] = np.maximum(auc, 1 - auc)
    return out


def _positive_rank_sums(values: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """For each row of ``values``, the sum of the (tie-averaged, 1-based) ranks of the entries
    where ``positive``: the Mann–Whitney statistic, from one sort per row."""
    b, m = values.shape
    order = np.argsort(values, axis=1)  # the order within ties does not change the sums
    ordered = np.take_along_axis(values, order, axis=1)
    hit = positive[order]
    del order
    new = np.ones((b, m), dtype=bool)
    new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    del ordered
    out = np.where(hit, np.arange(1.0, m + 1), 0.0).sum(axis=1)  # rows without ties
    tied = np.flatnonzero(~new.all(axis=1))
    if len(tied):
        new, hit = new[tied].ravel(), hit[tied].ravel()
        starts = np.flatnonzero(new)  # tie groups, row after row
        sizes = np.diff(np.append(starts, len(new)))
        mean_rank = starts % m + (sizes + 1) / 2
        hits = np.bincount(np.cumsum(new) - 1, weights=hit, minlength=len(starts))
        out[tied] = np.bincount(starts // m, weights=hits * mean_rank, minlength=len(tied))
    return out


def screen_columns(X: np.ndarray, y: np.ndarray, categorical: np.ndarray, keep: int, *,
                   seed: int = 0) -> np.ndarray:
    """Positions of the ``keep`` columns of ``X`` that separate ``y`` best on their own (all of
    them when there are no more), in column order; ties go to the earlier column."""
    k = X.shape[1]
    if k <= keep:
        return np.arange(k)
    auc = np.nan_to_num(univariate_aucs(X, y, categorical, seed=seed), nan=0.0)
    return np.sort(np.argsort(-auc, kind="stable")[:keep])


@dataclass
class DomainClassifier:
    """A fitted reference-vs-production classifier and what it found.

    Attributes
    ----------
    auc, ci : float, (float, float)
        Cross-validated ROC AUC of telling production from reference, with a 95% interval.
    importance : DataFrame
        ``feature``, ``auc_drop`` (mean drop in held-out AUC when the feature is shuffled),
        ``auc_drop_sd`` (its spread across folds), ``univariate_auc``; most important first.
    excluded : dict
        Feature → why it was left out (separates the sides on its own, or has no values).
    features : list of str
        The features the classifier uses.
    oof : ndarray
        Out-of-fold P(production | x) for every sampled row.
    is_production : ndarray of int
        1 for sampled production rows, 0 for reference ones (aligned with ``oof``).
    reference_rows, production_rows : ndarray of int
        Positions of the sampled rows in the reference and production frames.
    models : list
        The fold models; their mean probability is the ensemble's.
    columns : list of ndarray
        For each fold model, the positions (in ``encoding.features``) of the columns it was fitted
        on; empty when every model uses every column.
    note : str
        How the columns were screened on a wide table (empty when they were not).
    """

    auc: float
    ci: tuple[float, float]
    importance: pd.DataFrame
    excluded: dict[str, str]
    features: list[str]
    oof: np.ndarray
    is_production: np.ndarray
    reference_rows: np.ndarray
    production_rows: np.ndarray
    models: list = field(default_factory=list, repr=False)
    encoding: Encoding | None = field(default=None, repr=False)
    folds: int = 0
    columns: list = field(default_factory=list, repr=False)
    note: str = ""

    @property
    def rows_per_side(self) -> tuple[int, int]:
        return int(len(self.reference_rows)), int(len(self.production_rows))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """P(production | x) for each row of ``frame``: the mean of the fold models."""
        if not self.models:
            return np.full(len(frame), np.nan)
        encoding, columns = self.encoding, [slice(None)] * len(self.models)
        if self.columns:
            # only the columns some fold model reads are encoded
            union = np.unique(np.concatenate(self.columns))
            encoding = Encoding([self.encoding.features[j] for j in union],
                                 {f: c for f, c in self.encoding.categories.items()
                                  if f in {self.encoding.features[j] for j in union}})
            columns = [np.searchsorted(union, cols) for cols in self.columns]
        out = np.empty(len(frame))
        # in chunks: a million rows of 50 features would otherwise be a 400 MB matrix; at least one
        # chunk per core
        cores = os.cpu_count() or 1
        chunk = max(1_000, min(PREDICT_CELLS // max(len(encoding.features), 1), -(-len(frame) // cores)))
        starts = range(0, len(frame), chunk)

        def one(start: int) -> np.ndarray:
            X = encoding.matrix(frame.iloc[start:start + chunk])
            return np.mean([m.predict_proba(X[:, cols])[:, 1] for m, cols in zip(self.models, columns, strict=True)],
                           axis=0)

        # One OpenMP thread per prediction, chunks side by side in threads instead (the trees are
        # walked without the GIL): OpenMP threads competing with another kernel for the cores spin,
        # while a chunk thread just waits its turn.
        workers = min(len(starts), cores)
        with threadpool_limits(limits=1, user_api="openmp"), ThreadPoolExecutor(max(workers, 1)) as pool:
            for start, p in zip(starts, pool.map(one, starts), strict=True):
                out[start:start + len(p)] = p
        return out


def density_ratios(domain: DomainClassifier, frame: pd.DataFrame | None = None, *,
                   clip: tuple[float, float] = (0.01, 100.0)) -> np.ndarray:
    """Density ratios ``p_prod(x) / p_ref(x)`` for the rows of ``frame``.

    By Bayes, ``p_prod(x) / p_ref(x) = P(prod | x) / P(ref | x) * n_ref / n_prod`` with the
    classifier's training counts. Weighting reference rows by these ratios makes them look like
    production (covariate shift). Without ``frame``, the ratios of the sampled reference rows
    (``domain.reference_rows``) from their out-of-fold probabilities, which are not overfitted.

    Parameters
    ----------
    domain : DomainClassifier
    frame : DataFrame, optional
        Rows with the classifier's features (typically ``incident.reference``).
    clip : (float, float)
        Bounds for the ratios: rows production never has (ratio → 0) or reference barely covers
        (ratio → ∞) would otherwise dominate any weighted average.

    Returns
    -------
    ndarray
        One ratio per row; NaN when the classifier could not be fitted.
    """
    if frame is None:
        p = domain.oof[domain.is_production == 0]
    else:
        p = domain.predict_proba(frame)
    n_ref, n_prod = domain.rows_per_side
    p = np.clip(p, 1e-6, 1 - 1e-6)
    ratio = p / (1 - p) * (n_ref / max(n_prod, 1))
    return np.clip(ratio, *clip)


def fit_domain_classifier(reference: pd.DataFrame, production: pd.DataFrame, features: list[str], *,
                          categorical: list[str] = (), max_rows: int = 50_000, folds: int = 3,
                          seed: int = 0, separator_auc: float = 0.99, importance: bool = True,
                          importance_rows: int = 3_000, max_iter: int = 100,
                          max_features: int = MAX_FEATURES) -> DomainClassifier:
    """Fit the domain classifier on a seeded, balanced sample of both sides.

    Parameters
    ----------
    reference, production : DataFrame
    features : list of str
        Candidate features (leave id and timestamp columns out).
    categorical : list of str
        Which of them are categorical (booleans may be given as numeric).
    max_rows : int
        Rows sampled per side (both sides get the same number, at most the smaller side).
    folds : int
        Stratified cross-validation folds.
    separator_auc : float
        A feature whose univariate AUC reaches this is reported and left out.
    importance : bool
        Compute permutation importances (held-out AUC drop per feature).
    importance_rows : int
        Held-out rows per fold the importances are measured on.
    max_features : int
        Columns each fold's model fits on at most: those that separate its training rows best
        alone (see the module's notes).

    Returns
    -------
    DomainClassifier
        With ``auc`` NaN when the sample is too small (fewer than ``2 * folds`` rows a side) or no
        feature is usable.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(seed)
    n = min(max_rows, len(reference), len(production))
    ref_rows = np.sort(rng.choice(len(reference), n, replace=False)) if n else np.empty(0, np.int64)
    prod_rows = np.sort(rng.choice(len(production), n, replace=False)) if n else np.empty(0, np.int64)
    ref, prod = reference.iloc[ref_rows], production.iloc[prod_rows]
    y = np.concatenate([np.zeros(n, np.int64), np.ones(n, np.int64)])
    categorical = set(categorical)
    cats = {f: kept_categories(ref[f], prod[f]) for f in features if f in categorical}
    full = Encoding(list(features), cats)
    # filled in place: a wide table's sample is the largest array here, so it is built once
    X_all = np.empty((2 * n, len(features)), dtype=np.float64)
    if n:
        full.matrix(ref, out=X_all[:n])
        full.matrix(prod, out=X_all[n:])

    excluded: dict[str, str] = {}
    uni: dict[str, float] = {}
    screen = _screen_rows(n, SCREEN_ROWS, rng)
    cat_mask = np.array([f in cats for f in features], dtype=bool)
    empty_col = np.isnan(X_all).all(axis=0) if n else np.ones(len(features), bool)
    aucs = univariate_aucs(X_all[screen], y[screen], cat_mask, seed=seed) if n else np.full(len(features), np.nan)
    for j, f in enumerate(features):
        if n == 0 or empty_col[j]:
            excluded[f] = "no values"
            continue
        uni[f] = float(aucs[j])
        if uni[f] >= separator_auc:
            excluded[f] = (f"separates the sides on its own (AUC {uni[f]:.3f}): an id, a time, a counter "
                           "or a unit change?")
    used = [f for f in features if f not in excluded]
    encoding = Encoding(used, {f: cats[f] for f in used if f in cats})
    position = {f: j for j, f in enumerate(features)}
    columns = [position[f] for f in used]
    X = X_all if len(columns) == len(features) else X_all[:, columns]
    del X_all
    empty = pd.DataFrame(columns=["feature", "auc_drop", "auc_drop_sd", "univariate_auc"])
    if n < 2 * folds or not used:
        return DomainClassifier(math.nan, (math.nan, math.nan), empty, excluded, used,
                                np.full(len(y), np.nan), y, ref_rows, prod_rows, [], encoding, 0)

    oof = np.empty(len(y))
    models, drops, fold_columns = [], [], []
    wide = len(used) > max_features
    mask = encoding.categorical_mask
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    # One OpenMP thread: the runner executes notebooks side by side, and gradient boosting's
    # threads spin-wait for each other when cores are busy (20x slower on a loaded 2-core machine).
    with threadpool_limits(limits=1, user_api="openmp"):
        for k, (train, test) in enumerate(splitter.split(X, y)):
            # a wide table: this fold's columns are chosen on its training rows only
            cols = screen_columns(X[train], y[train], mask, max_features, seed=seed) if wide else None
            X_train, X_test = (X[train], X[test]) if cols is None else (X[np.ix_(train, cols)], X[np.ix_(test, cols)])
            model = HistGradientBoostingClassifier(
                max_iter=max_iter, learning_rate=0.2, max_leaf_nodes=15, min_samples_leaf=50,
                categorical_features=mask if cols is None else mask[cols], early_stopping=True,
                validation_fraction=0.1, n_iter_no_change=5, random_state=seed + k)
            model.fit(X_train, y[train])
            del X_train
            oof[test] = model.predict_proba(X_test)[:, 1]
            models.append(model)
            if cols is not None:
                fold_columns.append(cols)
            if importance:
                d = _permutation_drops(model, X_test, y[test], importance_rows, rng)
                if cols is not None:
                    d = _scatter(d, cols, len(used))
                drops.append(d)
    auc = rank_auc(y, oof)
    ci = auc_interval(auc, n, n)
    note = ""
    if wide:
        seen = np.unique(np.concatenate(fold_columns))
        note = (f"With {len(used):,} usable features, each of the {folds} fold models was fitted on the "
                f"{max_features} that best separate that fold's training rows on their own (univariate "
                f"AUC); {len(used) - len(seen):,} features were kept by no fold and count as unimportant. "
                "A change only in how unscreened features move together would go unseen.")
    if importance:
        d = np.asarray(drops)
        table = pd.DataFrame({"feature": used, "auc_drop": d.mean(axis=0), "auc_drop_sd": d.std(axis=0),
                              "univariate_auc": [uni[f] for f in used]})
        table = table.sort_values("auc_drop", ascending=False, kind="stable").reset_index(drop=True)
    else:
        table = empty
    return DomainClassifier(auc, ci, table, excluded, used, oof, y, ref_rows, prod_rows, models,
                            encoding, folds, fold_columns, note)


def _scatter(values: np.ndarray, positions: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros(size)
    out[positions] = values
    return out


def _screen_rows(n: int, rows: int, rng: np.random.Generator) -> np.ndarray:
    """Positions in the stacked sample (reference then production) of at most ``rows`` a side."""
    if n <= rows:
        return np.arange(2 * n)
    pick = np.sort(rng.choice(n, rows, replace=False))
    return np.concatenate([pick, pick + n])


def _permutation_drops(model, X: np.ndarray, y: np.ndarray, rows: int, rng: np.random.Generator) -> np.ndarray:
    """Drop in AUC on held-out rows when each feature is shuffled (one shuffle per feature).

    Only features the model splits on are shuffled: shuffling any other feature leaves every
    prediction unchanged, so its drop is exactly 0. Each shuffle is written into one working copy
    of the rows and undone after scoring, so memory stays a small multiple of the held-out rows
    and time grows with the features the model uses (bounded by its trees), not with the square
    of the table's width.
    """
    if len(y) > rows:
        keep = rng.choice(len(y), rows, replace=False)
        X, y = X[keep], y[keep]
    k, n = X.shape[1], len(y)
    drops = np.zeros(k)
    if len(np.unique(y)) < 2 or n == 0:
        return drops
    used, scorer = _split_features(model, k), _raw_scorer(model, X)
    if not len(used):
        return drops
    if scorer is None:
        return _stacked_drops(model, X, y, used, rng, drops)
    work, column, score = scorer
    base = float(rank_auc(y, score(work)))
    for j in used:
        c = column[j]
        kept = work[:, c].copy()
        work[:, c] = kept[rng.permutation(n)]
        drops[j] = base - float(rank_auc(y, score(work)))
        work[:, c] = kept
    return drops


def _raw_scorer(model, X: np.ndarray):
    """The model's raw (log-odds) score of a matrix already in the model's own column layout.

    Returns ``(work, column, score)``: ``X`` preprocessed once, the position in it of each
    original column, and a function scoring such a matrix. Scoring through ``predict_proba``
    re-validates and re-assembles the whole matrix on every call, which for a table thousands of
    columns wide costs far more than the trees. None when the model does not expose this (then
    :func:`_stacked_drops` scores through the public API).
    """
    try:
        work = np.array(model._preprocess_X(X, reset=False), dtype=np.float64, order="C")
        order = _column_order(model, X.shape[1])
        baseline = model._baseline_prediction
        predictors = model._predictors
        column = np.empty(len(order), dtype=np.int64)
        column[order] = np.arange(len(order))

        def score(matrix: np.ndarray) -> np.ndarray:
            raw = np.zeros((len(matrix), 1), dtype=baseline.dtype, order="F") + baseline
            model._predict_iterations(matrix, predictors, raw, False, 1)
            return raw[:, 0]

        reference = model.predict_proba(X[: min(len(X), 50)])[:, 1]
        check = 1 / (1 + np.exp(-score(work[: len(reference)])))
        if work.shape != X.shape or not np.allclose(check, reference, atol=1e-9):
            return None
        return work, column, score
    except (AttributeError, TypeError, ValueError, IndexError):
        return None


def _stacked_drops(model, X, y, used, rng, drops) -> np.ndarray:
    """:func:`_permutation_drops` through ``predict_proba``: shuffled copies a batch at a time, as
    many as fit in :data:`STACK_CELLS` cells."""
    k, n = X.shape[1], len(y)
    base = float(rank_auc(y, model.predict_proba(X)[:, 1]))
    per_call = int(max(1, min(len(used), STACK_CELLS // max(n * k, 1))))
    for start in range(0, len(used), per_call):
        batch = used[start:start + per_call]
        stacked = np.tile(X, (len(batch), 1))
        for i, j in enumerate(batch):
            stacked[i * n:(i + 1) * n, j] = rng.permutation(X[:, j])
        scores = model.predict_proba(stacked)[:, 1].reshape(len(batch), n)
        drops[batch] = base - rank_auc(y, scores)
    return drops


def _column_order(model, k: int) -> np.ndarray:
    """Original column of each column of the model's preprocessed matrix (categorical ones first)."""
    pre = getattr(model, "_preprocessor", None)
    if pre is None:
        return np.arange(k)
    return np.concatenate([np.flatnonzero(np.asarray(cols, dtype=bool)) if np.asarray(cols).dtype == bool
                           else np.asarray(cols, dtype=np.int64)
                           for name, _, cols in pre.transformers_ if name != "remainder"])


def _split_features(model, k: int) -> np.ndarray:
    """Columns (of the matrix given to the model) a fitted gradient-boosting model splits on.

    The trees index the model's own preprocessed matrix, which puts categorical columns first;
    they are mapped back through its column transformer. All ``k`` when the model cannot say.
    """
    try:
        nodes = [tree.nodes for trees in model._predictors for tree in trees]
        order = _column_order(model, k)
    except (AttributeError, TypeError, ValueError):
        return np.arange(k)
    if len(order) != k:
        return np.arange(k)
    used = set()
    for nd in nodes:
        used.update(np.unique(nd["feature_idx"][nd["is_leaf"] == 0]).tolist())
    return np.array(sorted(int(order[f]) for f in used if 0 <= f < k), dtype=np.int64)


def rank_auc(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC of ``scores`` (one row per scoring, or a single vector) for labels ``y`` in {0, 1}.

    The Mann–Whitney form with tied scores ranked by their average: the same value as
    ``sklearn.metrics.roc_auc_score``, vectorised over rows.
    """
    y = np.asarray(y).astype(bool)
    s = np.atleast_2d(scores)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return np.full(s.shape[0], np.nan) if np.ndim(scores) > 1 else math.nan
    ranks = stats.rankdata(s, axis=1)
    auc = (ranks[:, y].sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return auc if np.ndim(scores) > 1 else float(auc[0])
