"""Statistics behind the skew check: the same rows' feature values as served and as recomputed offline.

:func:`compare` matches two aligned arrays value by value (exact and near-exact match rates, the
differences on mismatching rows) and :func:`numeric_pattern` / :func:`categorical_pattern` name
what the mismatches have in common:

=====================  ========================================================================
pattern                rule (over the mismatching rows, ``share`` = the share they must explain)
=====================  ========================================================================
``missing``            one side is missing; ``side`` says which, ``fill_value`` the served value
                       used where offline is missing (a different imputation or default)
``scale``              served = factor × offline (a unit change: ``factor`` 100 is cents for
                       dollars), within 1% to allow rounding; ``factor`` snapped to a power of ten
                       when within that tolerance
``offset``             served = offline + offset
``capped``             served = min(offline, cap): every mismatch is served as the one value
                       ``cap`` while offline is above it (``floored``: the mirror image)
``default``            served is one constant ``value`` whatever offline says
``rounded``            served is offline rounded to ``step``
``truncated``          served is below offline without a common cap (a shorter time window)
``category_mapping``   each offline category is served as one other category (``mapping``)
``other``              none of the above
=====================  ========================================================================

:func:`unit_change` is the hint used when no offline recomputation exists: production quantiles
that are a constant power of ten times reference quantiles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PATTERN_TOLERANCE = 0.01  # relative error a pattern may leave (rounding of converted values)


def nice_factor(ratio: float, *, tolerance: float = PATTERN_TOLERANCE) -> float:
    """``ratio`` snapped to a power of ten when within ``tolerance`` of one, else 4 significant digits.

    Examples
    --------
    >>> nice_factor(100.0000001), nice_factor(0.0100002), nice_factor(2.54)
    (100.0, 0.01, 2.54)
    """
    if not np.isfinite(ratio) or ratio == 0:
        return float(ratio)
    k = np.round(np.log10(abs(ratio)))
    if abs(abs(ratio) / 10.0**k - 1) <= tolerance:
        return float(np.sign(ratio) * 10.0**k)
    return float(f"{ratio:.4g}")


def compare(served, offline, *, tolerance: float = 1e-6, numeric: bool = True) -> dict:
    """Value-by-value comparison of two aligned arrays (missing = NaN / None on either side).

    Returns
    -------
    dict
        ``rows``, ``exact_match_rate``, ``match_rate`` (exact or, for numbers, within relative
        ``tolerance``), ``mismatch_rate``, ``mismatches``, ``served_missing``, ``offline_missing``
        (mismatching rows missing on that side only) and ``mismatch`` (boolean mask).
    """
    if numeric:
        s, o = np.asarray(served, dtype=float), np.asarray(offline, dtype=float)
        s_na, o_na = np.isnan(s), np.isnan(o)
        both = ~s_na & ~o_na
        with np.errstate(invalid="ignore"):
            exact = (s_na & o_na) | (both & (s == o))
            near = exact | (both & (np.abs(s - o) <= tolerance * np.maximum(np.abs(s), np.abs(o))))
    else:
        s, o = pd.Series(served, dtype=object), pd.Series(offline, dtype=object)
        s_na, o_na = s.isna().to_numpy(), o.isna().to_numpy()
        both = ~s_na & ~o_na
        exact = (s_na & o_na) | (both & (s.astype(str).to_numpy() == o.astype(str).to_numpy()))
        near = exact
    n = len(s)
    mismatch = ~near
    rate = (lambda k: float(k) / n) if n else (lambda k: np.nan)
    return {"rows": n, "exact_match_rate": rate(exact.sum()), "match_rate": rate(near.sum()),
            "mismatch_rate": rate(mismatch.sum()), "mismatches": int(mismatch.sum()),
            "served_missing": int((mismatch & s_na & ~o_na).sum()),
            "offline_missing": int((mismatch & o_na & ~s_na).sum()), "mismatch": mismatch}


def difference_summary(served, offline, mismatch) -> dict:
    """Quantiles (5%, 50%, 95%) of served − offline and the median relative difference on the
    mismatching rows where both sides have a value."""
    s, o = np.asarray(served, dtype=float), np.asarray(offline, dtype=float)
    m = np.asarray(mismatch) & np.isfinite(s) & np.isfinite(o)
    if not m.any():
        return {"diff_p5": np.nan, "diff_median": np.nan, "diff_p95": np.nan, "relative_median": np.nan}
    d = s[m] - o[m]
    p5, p50, p95 = np.quantile(d, [0.05, 0.5, 0.95])
    nz = o[m] != 0
    rel = float(np.median(d[nz] / np.abs(o[m][nz]))) if nz.any() else np.nan
    return {"diff_p5": float(p5), "diff_median": float(p50), "diff_p95": float(p95), "relative_median": rel}


def _missing_pattern(s_na, o_na, served_values, mismatch, share) -> dict | None:
    m = mismatch.sum()
    served_only = mismatch & s_na & ~o_na
    offline_only = mismatch & o_na & ~s_na
    if (served_only.sum() + offline_only.sum()) < share * m:
        return None
    if served_only.sum() >= offline_only.sum():
        return {"pattern": "missing", "side": "served", "rows": int(served_only.sum())}
    filled = pd.Series(np.asarray(served_values, dtype=object)[offline_only])
    counts = filled.astype(str).value_counts()
    fill = None
    if len(counts) and counts.iloc[0] >= share * len(filled):
        fill = filled[filled.astype(str) == counts.index[0]].iloc[0]
        fill = fill.item() if isinstance(fill, np.generic) else fill
    return {"pattern": "missing", "side": "offline", "rows": int(offline_only.sum()), "fill_value": fill}


def numeric_pattern(served, offline, mismatch, *, share: float = 0.9,
                    tolerance: float = PATTERN_TOLERANCE) -> dict:
    """Name the pattern of numeric mismatches (see the module docstring).

    Parameters
    ----------
    served, offline : arrays of float
        Aligned values (NaN = missing).
    mismatch : boolean array
        Rows that differ (from :func:`compare`).
    share : float
        Share of the mismatching rows a pattern must explain.
    """
    s, o = np.asarray(served, dtype=float), np.asarray(offline, dtype=float)
    mismatch = np.asarray(mismatch, dtype=bool)
    m = int(mismatch.sum())
    if m == 0:
        return {"pattern": "match"}
    s_na, o_na = np.isnan(s), np.isnan(o)
    found = _missing_pattern(s_na, o_na, s, mismatch, share)
    if found:
        return found
    b = mismatch & ~s_na & ~o_na
    sb, ob = s[b], o[b]
    need = share * m
    varied = len(np.unique(ob)) >= 2

    nz = ob != 0
    if varied and nz.sum() >= need:
        factor = float(np.median(sb[nz] / ob[nz]))
        fits = np.abs(sb - factor * ob) <= tolerance * np.abs(sb)
        if fits.sum() >= need and factor != 0 and abs(factor - 1) > tolerance:
            affected = _share_affected(s, o, lambda x: factor * x, tolerance)
            return {"pattern": "scale", "factor": nice_factor(factor), "rows_affected_share": affected}
    if varied:
        offset = float(np.median(sb - ob))
        slack = np.maximum(tolerance * abs(offset), 1e-9 * np.maximum(np.abs(sb), np.abs(ob)))
        if (np.abs(sb - ob - offset) <= slack).sum() >= need and offset != 0:
            return {"pattern": "offset", "offset": float(f"{offset:.6g}")}
    if len(sb):
        values, counts = np.unique(sb, return_counts=True)
        top = values[np.argmax(counts)]
        at = sb == top
        if at.sum() >= need:
            # served = min(offline, cap): every row above the cap (not only mismatching ones) is served at it
            both = ~s_na & ~o_na
            above, below = both & (o > top), both & (o < top)
            if (ob[at] > top).all() and np.mean(s[above] == top) >= share:
                return {"pattern": "capped", "cap": _plain(top), "max_offline": _plain(ob.max())}
            if (ob[at] < top).all() and np.mean(s[below] == top) >= share:
                return {"pattern": "floored", "floor": _plain(top), "min_offline": _plain(ob.min())}
            return {"pattern": "default", "value": _plain(top)}
    step = _rounding_step(sb, ob)
    if step is not None and len(sb) >= need:
        return {"pattern": "rounded", "step": step}
    if (sb < ob).sum() >= need:
        return {"pattern": "truncated", "median_ratio": float(np.median(sb[nz] / ob[nz])) if nz.any() else np.nan}
    return {"pattern": "other"}


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def _share_affected(s, o, fn, tolerance) -> float:
    """Share of rows with non-zero values on both sides that follow ``served = fn(offline)``."""
    ok = np.isfinite(s) & np.isfinite(o) & (o != 0)
    if not ok.any():
        return np.nan
    return float(np.mean(np.abs(s[ok] - fn(o[ok])) <= tolerance * np.abs(s[ok])))


def _rounding_step(sb: np.ndarray, ob: np.ndarray) -> float | None:
    """The largest power of ten every served value is a multiple of, when served is offline rounded to it."""
    if len(sb) == 0:
        return None
    for k in range(6, -7, -1):
        step = 10.0**k
        on_grid = np.abs(sb / step - np.round(sb / step)) <= 1e-6
        if on_grid.all():
            close = np.abs(sb - ob) <= 0.5 * step * (1 + 1e-6)
            return step if close.all() else None
    return None


def categorical_pattern(served, offline, mismatch, *, share: float = 0.9) -> dict:
    """Name the pattern of categorical mismatches: ``missing``, ``category_mapping`` (with the
    ``mapping`` offline → served of every remapped category and ``consistent``: the share of each
    remapped category's rows, matching or not, that follow the mapping) or ``other``."""
    s = pd.Series(served, dtype=object).reset_index(drop=True)
    o = pd.Series(offline, dtype=object).reset_index(drop=True)
    mismatch = np.asarray(mismatch, dtype=bool)
    m = int(mismatch.sum())
    if m == 0:
        return {"pattern": "match"}
    s_na, o_na = s.isna().to_numpy(), o.isna().to_numpy()
    found = _missing_pattern(s_na, o_na, s.to_numpy(), mismatch, share)
    if found:
        return found
    b = mismatch & ~s_na & ~o_na
    pairs = pd.DataFrame({"offline": o[b].astype(str), "served": s[b].astype(str)})
    if pairs.empty:
        return {"pattern": "other"}
    counts = pairs.value_counts().reset_index(name="rows")
    dominant = counts.sort_values("rows", ascending=False).drop_duplicates("offline")
    if dominant["rows"].sum() < share * m:
        return {"pattern": "other"}
    mapping = dict(zip(dominant["offline"], dominant["served"], strict=True))
    o_text = o.astype(str).where(~o_na)
    in_mapped = o_text.isin(list(mapping)).to_numpy()
    follows = (s.astype(str).to_numpy() == o_text.map(mapping).to_numpy()) & in_mapped
    consistent = float(follows.sum() / in_mapped.sum()) if in_mapped.any() else np.nan
    return {"pattern": "category_mapping", "mapping": mapping, "consistent": consistent}


def unit_change(reference, production, *, quantiles=(0.25, 0.5, 0.75, 0.9), spread: float = 1.25,
                tolerance: float = 0.1) -> dict | None:
    """Production values that look like reference values times a power of ten (a unit change).

    Each quantile of production is divided by the same quantile of reference (positive quantiles
    only). When at least three ratios agree within a factor ``spread`` and their geometric mean is
    within ``tolerance`` (in log10 units) of a power of ten other than 1, returns ``factor`` and the
    ``ratios``; else None. A hint only: genuine drift can scale a feature too.
    """
    r = np.asarray(reference, dtype=float)
    p = np.asarray(production, dtype=float)
    r, p = r[np.isfinite(r)], p[np.isfinite(p)]
    if len(r) < 20 or len(p) < 20:
        return None
    qr, qp = np.quantile(r, quantiles), np.quantile(p, quantiles)
    ok = (qr > 0) & (qp > 0)
    if ok.sum() < 3:
        return None
    ratios = qp[ok] / qr[ok]
    if ratios.max() / ratios.min() > spread:
        return None
    log = float(np.mean(np.log10(ratios)))
    k = round(log)
    if k == 0 or abs(log - k) > tolerance:
        return None
    return {"factor": float(10.0**k), "ratios": [float(x) for x in ratios],
            "quantiles": [float(q) for q, keep in zip(quantiles, ok, strict=True) if keep]}
