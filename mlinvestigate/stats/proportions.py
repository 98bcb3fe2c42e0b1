"""Comparing proportions between two groups: tests and an interval for the difference.

The one place the kit compares two proportions, wherever a check asks "does this rate differ from
that one?": a segment against the rest of production, a missing rate in production against
reference, a label source's share or agreement against the others, labelled rows' prediction mix
against unlabelled ones. Vectorised: segment tables test thousands of groups at once.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .intervals import wilson


def two_proportion_z(k1, n1, k2, n2, *, alternative: str = "less") -> np.ndarray:
    """p-values of the pooled two-proportion z-test of ``k1/n1`` against ``k2/n2`` (vectorised).

    ``alternative="less"`` tests whether the first proportion is lower, ``"greater"`` whether it is
    higher, ``"two-sided"`` either. Groups with an empty side give NaN; identical all-0 or all-1
    groups give 1.

    Examples
    --------
    >>> round(float(two_proportion_z(40, 100, 60, 100)), 4)
    0.0023
    """
    k1, n1, k2, n2 = (np.asarray(a, dtype=float) for a in (k1, n1, k2, n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = k1 / n1, k2 / n2
        pooled = (k1 + k2) / (n1 + n2)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = (p1 - p2) / se
    if alternative == "less":
        p = stats.norm.cdf(z)
    elif alternative == "greater":
        p = stats.norm.sf(z)
    elif alternative == "two-sided":
        p = 2 * stats.norm.sf(np.abs(z))
    else:
        raise ValueError(f"alternative must be 'less', 'greater' or 'two-sided', got {alternative!r}")
    p = np.where(se == 0, 1.0, p)
    return np.where((n1 > 0) & (n2 > 0), p, np.nan)


def proportion_difference(k1, n1, k2, n2) -> tuple[np.ndarray, np.ndarray]:
    """Difference of proportions ``k1/n1 - k2/n2`` and its two-sided pooled z-test p-value (vectorised).

    Both are NaN where a side is empty; the p-value is 1 where both sides are all 0 or all 1
    (:func:`two_proportion_z` with ``alternative="two-sided"``).

    Examples
    --------
    >>> d, p = proportion_difference(30, 100, 10, 100)
    >>> round(float(d), 2), bool(p < 0.001)
    (0.2, True)
    """
    k1, n1, k2, n2 = (np.asarray(v, dtype=float) for v in (k1, n1, k2, n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = k1 / n1 - k2 / n2
    p = two_proportion_z(k1, n1, k2, n2, alternative="two-sided")
    return np.where((n1 > 0) & (n2 > 0), diff, np.nan), p


def lower_rate_p(k1, n1, k2, n2) -> np.ndarray:
    """One-sided p-values that ``k1/n1`` is below ``k2/n2``: the z-test where every expected cell
    count is at least 5, Fisher's exact test elsewhere (small groups)."""
    k1, n1, k2, n2 = (np.asarray(a, dtype=float) for a in (k1, n1, k2, n2))
    p = np.atleast_1d(two_proportion_z(k1, n1, k2, n2, alternative="less")).astype(float)
    k1b, n1b, k2b, n2b = np.broadcast_arrays(*(np.atleast_1d(a) for a in (k1, n1, k2, n2)))
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = (k1b + k2b) / (n1b + n2b)
    small = np.minimum.reduce([n1b * pooled, n1b * (1 - pooled), n2b * pooled, n2b * (1 - pooled)]) < 5
    for i in np.flatnonzero(small & (n1b > 0) & (n2b > 0)):
        table = [[k1b[i], n1b[i] - k1b[i]], [k2b[i], n2b[i] - k2b[i]]]
        p[i] = stats.fisher_exact(np.asarray(table, dtype=np.int64), alternative="less").pvalue
    return p if np.ndim(k1) or np.ndim(n1) or np.ndim(k2) or np.ndim(n2) else p[0]


def difference_ci(k1, n1, k2, n2, *, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's hybrid score interval for ``k1/n1 - k2/n2`` (built from two Wilson intervals).

    Examples
    --------
    >>> lo, hi = difference_ci(56, 70, 48, 80)
    >>> round(float(lo), 4), round(float(hi), 4)
    (0.0524, 0.3339)
    """
    k1, n1, k2, n2 = (np.asarray(a, dtype=float) for a in (k1, n1, k2, n2))
    l1, u1 = wilson(k1, n1, confidence=confidence)
    l2, u2 = wilson(k2, n2, confidence=confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = k1 / n1, k2 / n2
    d = p1 - p2
    return d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
