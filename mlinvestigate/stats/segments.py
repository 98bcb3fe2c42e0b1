"""Statistics of a metric broken down by segment: intervals of per-segment means, tests of one
segment against the rest, and how much each segment contributes to the overall change.

Segments are given as integer codes ``0 .. n_groups - 1`` (``-1`` = left out), so every function
works on all segments of a column at once.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats


def grouped_bootstrap_mean(values, groups, n_groups: int, *, n_resamples: int = 200,
                           confidence: float = 0.95, seed: int = 0,
                           max_per_group: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of the mean of ``values`` within every group at once.

    Resampling rows with replacement is done with Poisson(1) weights (the standard large-sample
    equivalent), so each resample is two ``bincount`` calls. A group above ``max_per_group`` rows
    is resampled from a seeded sample of about that many of its rows, and its interval widened back
    by ``sqrt(sampled / all)``; smaller groups keep every row. Intervals are centred on each group's
    mean over all its rows. Groups with fewer than two values give NaN.
    """
    v = np.asarray(values, dtype=float)
    g = np.asarray(groups, dtype=np.int64)
    ok = np.isfinite(v) & (g >= 0)
    v, g = v[ok], g[ok]
    n_all = np.bincount(g, minlength=n_groups).astype(float)
    full = np.bincount(g, weights=v, minlength=n_groups) / np.maximum(n_all, 1)
    rng = np.random.default_rng(seed)
    keep = rng.random(len(v)) < np.minimum(1.0, max_per_group / np.maximum(n_all, 1))[g]
    v, g = v[keep], g[keep]
    n_used = np.bincount(g, minlength=n_groups).astype(float)
    draws = np.empty((n_resamples, n_groups))
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns of empty groups
        point = np.bincount(g, weights=v, minlength=n_groups) / n_used
        for i in range(n_resamples):
            w = rng.poisson(1.0, len(v))
            draws[i] = (np.bincount(g, weights=w * v, minlength=n_groups)
                        / np.bincount(g, weights=w, minlength=n_groups))
        alpha = (1 - confidence) / 2
        lo, hi = np.nanquantile(draws, [alpha, 1 - alpha], axis=0)
        scale = np.sqrt(n_used / n_all)
    bad = n_used < 2
    low = np.where(bad, np.nan, full - (point - lo) * scale)
    high = np.where(bad, np.nan, full + (hi - point) * scale)
    return low, high


def larger_than_rest_p(values, groups, n_groups: int, *, max_rows: int = 200_000,
                       seed: int = 0) -> np.ndarray:
    """One-sided Mann–Whitney p-value per group: are its values larger than the other groups'?

    Used on absolute errors (a segment whose errors are larger is worse). Ranks are computed once
    over all rows; above ``max_rows`` a seeded sample is tested (the test stays valid, only less
    powerful). Groups or complements with no values give NaN.
    """
    v = np.asarray(values, dtype=float)
    g = np.asarray(groups, dtype=np.int64)
    ok = np.isfinite(v) & (g >= 0)
    v, g = v[ok], g[ok]
    if len(v) > max_rows:
        idx = np.random.default_rng(seed).choice(len(v), max_rows, replace=False)
        v, g = v[idx], g[idx]
    n = len(v)
    p = np.full(n_groups, np.nan)
    if n < 2:
        return p
    ranks = stats.rankdata(v)
    _, tie_counts = np.unique(v, return_counts=True)
    tie_term = np.sum(tie_counts**3 - tie_counts) / (n * (n - 1))
    n1 = np.bincount(g, minlength=n_groups).astype(float)
    n2 = n - n1
    r1 = np.bincount(g, weights=ranks, minlength=n_groups)
    u = r1 - n1 * (n1 + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term))
        z = (u - n1 * n2 / 2 - 0.5) / sd  # continuity correction, as scipy's default
        p = np.where((n1 > 0) & (n2 > 0), np.where(sd > 0, stats.norm.sf(z), 1.0), np.nan)
    return p


def gap_contributions(ref_share, ref_metric, prod_share, prod_metric) -> dict[str, np.ndarray]:
    """Split the change of an overall metric (a share-weighted mean of segment metrics) into
    segments.

    Each segment contributes a *mix* part — its share moved, times how far its reference metric is
    from the reference overall — and a *performance* part — its production share times its own
    metric change. Summed over segments (shares summing to one on each side) they give exactly
    ``overall production - overall reference``. A segment absent from reference counts as if its
    reference metric were the reference overall.
    """
    wr, mr, wp, mp = (np.asarray(a, dtype=float) for a in (ref_share, ref_metric, prod_share, prod_metric))
    overall_ref = np.nansum(wr * np.nan_to_num(mr))
    mr = np.where(np.isfinite(mr), mr, overall_ref)
    mp = np.where(np.isfinite(mp), mp, mr)
    mix = (wp - wr) * (mr - overall_ref)
    performance = wp * (mp - mr)
    return {"mix": mix, "performance": performance, "total": mix + performance}
