"""Confidence intervals and false-discovery control shared by every check."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats


def wilson(successes, n, *, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for proportions ``successes / n`` (vectorised).

    Written out because scipy's ``binomtest(...).proportion_ci`` handles one proportion per call
    and segment tables need thousands at once. ``n == 0`` gives ``(nan, nan)``.

    Examples
    --------
    >>> lo, hi = wilson(50, 100)
    >>> round(float(lo), 4), round(float(hi), 4)
    (0.4038, 0.5962)
    """
    k = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    z = stats.norm.ppf(0.5 + confidence / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    lo, hi = np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)
    return np.where(n > 0, lo, np.nan), np.where(n > 0, hi, np.nan)


def bootstrap_ci(statistic: Callable[..., float], *arrays, n_resamples: int = 200,
                 confidence: float = 0.95, seed: int = 0, max_rows: int = 100_000) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(*arrays)`` over paired rows.

    Rows beyond ``max_rows`` are subsampled (seeded) first and the interval widened back by
    ``sqrt(m / n)``, so million-row inputs stay fast; the statistic must be a mean-like quantity
    for that rescaling to hold.
    """
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    if n < 2:
        return (np.nan, np.nan)
    rng = np.random.default_rng(seed)
    scale = 1.0
    point = statistic(*arrays)  # on every row: the interval is centred on the full-data value
    if n > max_rows:
        idx = rng.choice(n, max_rows, replace=False)
        arrays = [a[idx] for a in arrays]
        scale = np.sqrt(max_rows / n)
        n = max_rows
        centre = statistic(*arrays)
    else:
        centre = point
    values = np.empty(n_resamples)
    for i in range(n_resamples):
        idx = rng.integers(0, n, n)
        values[i] = statistic(*(a[idx] for a in arrays))
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return (np.nan, np.nan)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return (float(point - (centre - lo) * scale), float(point + (hi - centre) * scale))


def fdr(p_values, *, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini–Hochberg: adjusted p-values and a mask of discoveries at ``alpha``; NaN stays NaN."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        adjusted[ok] = stats.false_discovery_control(np.clip(p[ok], 0, 1), method="bh")
    return adjusted, np.where(ok, adjusted <= alpha, False)


def auc_interval(auc: float, n_pos: int, n_neg: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Hanley & McNeil (1982) normal interval of a ROC AUC from ``n_pos`` and ``n_neg`` rows.

    Written here because scikit-learn gives the AUC but no interval for it.

    >>> lo, hi = auc_interval(0.8, 200, 300)
    >>> round(lo, 3), round(hi, 3)
    (0.759, 0.841)
    """
    import math

    from scipy import stats

    if not (n_pos and n_neg) or not math.isfinite(auc):
        return (math.nan, math.nan)
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (n_pos * n_neg)
    half = float(stats.norm.ppf(0.5 + confidence / 2)) * math.sqrt(max(var, 0.0))
    return (float(max(0.0, auc - half)), float(min(1.0, auc + half)))
