"""Statistics of serving health: request statuses, latency quantiles per day, and how many
out-of-range or unseen input values chance alone would produce."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from scipy import stats

STATUS_KINDS = ("ok", "error", "timeout", "missing")
_OK = {"ok", "okay", "success", "succeeded", "successful", "served", "done", "complete", "completed",
       "pass", "passed", "true", "healthy"}
_TIMEOUT = re.compile(r"time[\s_-]?out|timed[\s_-]?out|deadline")


def status_kind(value) -> str:
    """``ok``, ``timeout``, ``error`` or ``missing`` for one logged status value.

    Case and surrounding spaces are ignored; HTTP codes are read as codes (2xx ok, 408 and 504
    timeouts); every other value that is not ok-like counts as an error.

    Examples
    --------
    >>> [status_kind(v) for v in ("OK", " success ", "Timeout", "DEADLINE_EXCEEDED", "error", 200, 504, None)]
    ['ok', 'ok', 'timeout', 'timeout', 'error', 'ok', 'timeout', 'missing']
    """
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return "missing"
    if isinstance(value, (bool, np.bool_)):
        return "ok" if value else "error"
    text = str(value).strip().lower()
    if not text:
        return "missing"
    code = text[:-2] if text.endswith(".0") else text
    if code.isdigit() and len(code) == 3:
        return "ok" if code.startswith("2") else ("timeout" if code in ("408", "504") else "error")
    if text in _OK or code in ("0",):
        return "ok"
    return "timeout" if _TIMEOUT.search(text) else "error"


def status_kinds(values: pd.Series) -> np.ndarray:
    """:func:`status_kind` of every value (classified once per distinct value)."""
    codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=True)
    lookup = np.array([status_kind(u) for u in uniques] + ["missing"], dtype=object)
    return lookup[codes]  # code -1 (missing) picks the last entry


def grouped_quantiles(values, groups, n_groups: int, qs=(0.5, 0.95, 0.99), *,
                      confidence: float = 0.95) -> dict[str, np.ndarray]:
    """Quantiles of ``values`` within each group, with distribution-free confidence intervals.

    The interval of a quantile ``q`` in a group of ``n`` values runs between the order statistics
    whose ranks bound ``Binomial(n, q)`` at the interval's level, so it holds for any latency
    distribution. NaN values are ignored.

    Returns
    -------
    dict
        ``rows`` (per group) and, for each ``q``, ``p{100q}``, ``p{100q}_low``, ``p{100q}_high``
        arrays of length ``n_groups`` (NaN for empty groups).
    """
    values = np.asarray(values, dtype=float)
    groups = np.asarray(groups, dtype=np.int64)
    ok = np.isfinite(values) & (groups >= 0)
    values, groups = values[ok], groups[ok]
    order = np.lexsort((values, groups))
    values, groups = values[order], groups[order]
    counts = np.bincount(groups, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out: dict[str, np.ndarray] = {"rows": counts}
    alpha = 1 - confidence
    top = np.maximum(counts - 1, 0)

    def pick(rank):
        if not len(values):
            return np.full(n_groups, np.nan)
        return np.where(counts > 0, values[np.minimum(starts + np.clip(rank, 0, top), len(values) - 1)], np.nan)

    for q in qs:
        name = f"p{round(100 * q):d}"
        pos = top * q
        below, frac = np.floor(pos).astype(int), pos - np.floor(pos)
        out[name] = pick(below) * (1 - frac) + pick(below + 1) * frac  # numpy's "linear" quantile
        # 0-based ranks of the order statistics that bound the quantile
        out[f"{name}_low"] = pick((stats.binom.ppf(alpha / 2, counts, q) - 1).astype(int))
        out[f"{name}_high"] = pick(stats.binom.ppf(1 - alpha / 2, counts, q).astype(int))
    return out


def chance_out_of_range(n_reference: int) -> float:
    """Share of new values from the reference distribution expected outside the reference range.

    For exchangeable values a new one is the smallest or the largest of ``n + 1`` with probability
    ``2 / (n + 1)``: small reference samples have narrow ranges that honest data leaves often.
    """
    return 2.0 / (n_reference + 1) if n_reference > 0 else 1.0


def out_of_range_p(k: int, m: int, n_reference: int) -> float:
    """p-value of ``k`` or more of ``m`` new values outside the range of ``n_reference`` values
    from the same distribution.

    The share a given reference range leaves out is itself random (``Beta(2, n - 1)``: a small
    sample's range may be narrow by luck), so the count is beta-binomial, not binomial.
    """
    if m == 0 or n_reference < 2:
        return 1.0
    return float(stats.betabinom.sf(k - 1, m, 2, n_reference - 1))


def chance_unseen(reference_counts) -> float:
    """Good–Turing estimate of the share of new values falling in categories reference never saw:
    the share of reference values whose category occurs exactly once."""
    counts = np.asarray(reference_counts)
    n = counts.sum()
    return float((counts == 1).sum() / n) if n else 1.0


def poisson_upper(counts, *, confidence: float = 0.95) -> np.ndarray:
    """Exact (Garwood) upper confidence bound of a Poisson rate from observed ``counts``: a day's
    volume is only called low when even this bound is below the bar.

    Examples
    --------
    >>> round(float(poisson_upper(0)), 3), round(float(poisson_upper(10)), 3)
    (3.689, 18.39)
    """
    k = np.asarray(counts, dtype=float)
    return stats.chi2.ppf(0.5 + confidence / 2, 2 * (k + 1)) / 2
