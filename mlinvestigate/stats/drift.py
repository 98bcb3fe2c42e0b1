"""Univariate drift statistics: one column of reference against the same column of production.

Which statistic applies to which column is a fixed rule:

- **numeric** (and datetime, as nanoseconds): PSI on 10 reference-quantile bins, the two-sample
  Kolmogorov–Smirnov test, and the Wasserstein distance divided by a robust reference spread;
- **categorical** (and boolean): PSI per category, Pearson's chi-square test of homogeneity, and the
  Jensen–Shannon distance (base 2).

Missing values are left out of the distributions and reported as their own rate change with a
two-proportion test. Each numeric column is sorted once and everything (quantile edges, PSI bin
counts, KS, Wasserstein, the plot profile) is read from the two sorted arrays, which keeps a
million rows a side at tens of milliseconds per column.

PSI conventions
---------------
``PSI = sum((p_prod - p_ref) * ln(p_prod / p_ref))`` over bins. An empty bin's share is raised to
:data:`EPS` (0.0001, the usual choice) so the sum stays finite; a bin empty on one side then adds
about ``p * ln(p / 0.0001)``. Numeric bins are right-closed intervals between the reference's
deciles (``np.quantile``'s ``lower`` rule: edges are reference values); tied deciles collapse into one edge (a column that is 50%
zeros gets one bin ``≤ 0`` holding half the rows), and the outer bins are open, so production
values beyond the reference range land in the first or last bin.

Two samples from the same distribution do not give PSI 0: ``PSI / (1/n_ref + 1/n_prod)`` is
approximately chi-square with ``k - 1`` degrees of freedom, so its expectation under no drift is
``(k - 1) * (1/n_ref + 1/n_prod)`` (:func:`psi_expected`) — 0.018 for 1,000 rows a side and
10 bins, 0.36 for 50. :attr:`Drift.psi_excess` subtracts it; verdicts compare that with thresholds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .proportions import two_proportion_z

EPS = 1e-4
BINS = 10
OTHER = "(other)"
# scipy's ks_2samp computes an exact p-value when both samples have at most this many rows.
KS_EXACT_MAX_N = 10_000
_PROFILE_PROBS = np.linspace(0.0, 1.0, 201)
_HIST_BINS = 40


# --- PSI ----------------------------------------------------------------------------------------
def psi_contributions(ref_counts, prod_counts, *, eps: float = EPS) -> np.ndarray:
    """Each bin's term ``(q - p) * ln(q / p)`` of the PSI (shares below ``eps`` raised to ``eps``)."""
    r = np.asarray(ref_counts, dtype=float)
    q = np.asarray(prod_counts, dtype=float)
    if r.sum() == 0 or q.sum() == 0:
        return np.full(len(r), np.nan)
    p_ref = np.maximum(r / r.sum(), eps)
    p_prod = np.maximum(q / q.sum(), eps)
    return (p_prod - p_ref) * np.log(p_prod / p_ref)


def psi(ref_counts, prod_counts, *, eps: float = EPS) -> float:
    """Population stability index of two count vectors over the same bins.

    Examples
    --------
    >>> round(psi([50, 50], [25, 75]), 4)
    0.2747
    """
    return float(np.sum(psi_contributions(ref_counts, prod_counts, eps=eps)))


def psi_expected(bins: int, n_ref: int, n_prod: int) -> float:
    """PSI expected from sampling noise alone: ``(bins - 1) * (1/n_ref + 1/n_prod)``."""
    if bins < 2 or n_ref == 0 or n_prod == 0:
        return 0.0
    return (bins - 1) * (1.0 / n_ref + 1.0 / n_prod)


def psi_null_quantile(bins: int, n_ref: int, n_prod: int, q: float = 0.95) -> float:
    """The ``q`` quantile of PSI between two samples of one distribution (chi-square approximation)."""
    if bins < 2 or n_ref == 0 or n_prod == 0:
        return 0.0
    return float(stats.chi2.ppf(q, bins - 1) * (1.0 / n_ref + 1.0 / n_prod))


# --- numeric building blocks on sorted arrays ---------------------------------------------------
def numeric_values(s: pd.Series) -> np.ndarray:
    """A column as float64 with NaN for missing: datetimes as nanoseconds, booleans as 0/1."""
    if pd.api.types.is_datetime64_any_dtype(s):
        if getattr(s.dt, "tz", None) is not None:
            s = s.dt.tz_convert(None)
        values = s.to_numpy(dtype="datetime64[ns]")
        out = values.view(np.int64).astype(np.float64)
        out[np.isnat(values)] = np.nan
        return out
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    as_number = s.astype(object).map(lambda v: float(v) if isinstance(v, (bool, np.bool_)) else v)
    return pd.to_numeric(as_number, errors="coerce").to_numpy(np.float64)


def sorted_finite(values, *, split: bool = False):
    """The finite values sorted, and how many were left out (NaN or ±inf).

    With ``split``, returns ``(sorted, missing, infinite)``: an infinite value is an impossible
    measurement, not a missing one, and the two are reported apart.

    Examples
    --------
    >>> sorted_finite([3.0, np.nan, 1.0, np.inf], split=True)
    (array([1., 3.]), 1, 1)
    """
    x = np.asarray(values, dtype=float)
    finite = np.isfinite(x)
    if finite.all():
        return (np.sort(x), 0, 0) if split else (np.sort(x), 0)
    left_out = int(len(x) - finite.sum())
    if not split:
        return np.sort(x[finite]), left_out
    infinite = int(np.isinf(x).sum())
    return np.sort(x[finite]), left_out - infinite, infinite


def quantiles_sorted(a: np.ndarray, probs) -> np.ndarray:
    """Quantiles of a sorted array (``np.quantile``'s default linear rule, without re-sorting)."""
    probs = np.asarray(probs, dtype=float)
    if len(a) == 0:
        return np.full(probs.shape, np.nan)
    pos = probs * (len(a) - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(a) - 1)
    frac = pos - lo
    return a[lo] + frac * (a[hi] - a[lo])


def quantile_edges(ref_sorted: np.ndarray, bins: int = BINS) -> np.ndarray:
    """The distinct inner edges of ``bins`` reference-quantile bins (fewer when deciles tie).

    Edges are reference values (``np.quantile``'s ``lower`` rule), so with right-closed bins every
    bin holds reference rows: an interpolated edge between two tied runs would open a bin the
    reference never fills.
    """
    if len(ref_sorted) == 0:
        return np.empty(0)
    pos = np.floor(np.arange(1, bins) / bins * (len(ref_sorted) - 1)).astype(np.int64)
    return np.unique(ref_sorted[pos])


def bin_counts(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in the right-closed bins ``(-inf, e1], (e1, e2], …, (ek, inf)``."""
    cum = np.searchsorted(sorted_values, edges, side="right")
    return np.diff(np.concatenate([[0], cum, [len(sorted_values)]]))


def _last_of_ties(a: np.ndarray) -> np.ndarray:
    return np.append(a[1:] != a[:-1], True)


def ks_sorted(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov–Smirnov statistic and two-sided p-value from two sorted arrays.

    Equal to ``scipy.stats.ks_2samp(a, b)`` (method ``auto``). scipy sorts both samples again and
    searches the concatenation of both in each: with the columns already sorted here, the
    statistic takes two searches of one sample in the other. ``F_a - F_b`` rises only at values of
    ``a`` and falls only at values of ``b``, so its maximum is reached at (the last of tied) values
    of ``a`` and its minimum at values of ``b``. The p-value follows scipy: exact for samples of
    at most 10,000 rows (where scipy's own call is cheap and is used), else Smirnov's asymptotic
    distribution, ``kstwo.sf(D, round(n*m / (n+m)))`` — scipy's ``asymp`` method — through
    :func:`kstwo_sf`.
    """
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        return math.nan, math.nan
    if max(n, m) <= KS_EXACT_MAX_N:
        res = stats.ks_2samp(a, b)
        return float(res.statistic), float(res.pvalue)
    ia, ib = _last_of_ties(a), _last_of_ties(b)
    f_a_at_a = (np.flatnonzero(ia) + 1) / n
    f_b_at_a = np.searchsorted(b, a[ia], side="right") / m
    f_b_at_b = (np.flatnonzero(ib) + 1) / m
    f_a_at_b = np.searchsorted(a, b[ib], side="right") / n
    d = float(max(np.max(f_a_at_a - f_b_at_a), np.max(f_b_at_b - f_a_at_b), 0.0))
    big, small = max(n, m), min(n, m)
    return d, kstwo_sf(d, float(np.round(big * small / (big + small))))


def kstwo_sf(d: float, n: float) -> float:
    """``scipy.stats.kstwo.sf(d, n)``, fast for large ``n``.

    Once ``n * d**2 >= 2.2`` scipy returns ``2 * smirnov(n, d)``, an exact sum of ``n`` terms that
    takes 0.6 s at ``n = 500,000``. For ``n > 20,000`` Miller's approximation
    ``smirnov(n, d) ≈ exp(-(6nd + 1)**2 / (18n))`` is used there instead: within 0.2% of scipy's
    value wherever the p-value exceeds 1e-9 (only tinier p-values, far below any significance
    level, differ more).
    """
    if n > 20_000 and n * d * d >= 2.2:
        return float(min(1.0, 2.0 * math.exp(-((6.0 * n * d + 1.0) ** 2) / (18.0 * n))))
    return float(np.clip(stats.kstwo.sf(d, n), 0.0, 1.0))


def wasserstein_sorted(a: np.ndarray, b: np.ndarray) -> float:
    """Wasserstein-1 distance between two sorted samples, equal to ``scipy.stats.wasserstein_distance``.

    Computed as the area between the two quantile functions: ``Q_a`` steps at multiples of
    ``1/n`` and ``Q_b`` at multiples of ``1/m``; on the common grid ``1/(n*m)`` both steps are
    integers, and merging the two sorted step lists is a linear pass.
    """
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        return math.nan
    if n == m:
        return float(np.mean(np.abs(a - b)))
    steps = np.concatenate([np.arange(1, n + 1, dtype=np.int64) * m, np.arange(1, m + 1, dtype=np.int64) * n])
    steps.sort(kind="stable")  # two sorted runs: timsort merges them in one pass
    widths = np.diff(steps, prepend=0)
    ia = (steps + m - 1) // m - 1
    ib = (steps + n - 1) // n - 1
    return float(np.dot(widths, np.abs(a[ia] - b[ib])) / (n * m))


def robust_spread(ref_sorted: np.ndarray) -> tuple[float, str]:
    """The reference spread Wasserstein distances are divided by, and its name.

    The interquartile range / 1.349 (a standard deviation for normal data, unmoved by outliers);
    the standard deviation when more than half the values tie (IQR 0); NaN for a constant column.
    """
    if len(ref_sorted) < 2:
        return math.nan, "none"
    q1, q3 = quantiles_sorted(ref_sorted, [0.25, 0.75])
    if q3 > q1:
        return float((q3 - q1) / 1.349), "IQR/1.349"
    sd = float(np.std(ref_sorted))
    return (sd, "standard deviation") if sd > 0 else (math.nan, "none (constant reference)")


# --- categorical building blocks ----------------------------------------------------------------
def js_distance(ref_counts, prod_counts) -> float:
    """Jensen–Shannon distance (base 2, so in [0, 1]) between two count vectors."""
    from scipy.spatial.distance import jensenshannon

    r = np.asarray(ref_counts, dtype=float)
    q = np.asarray(prod_counts, dtype=float)
    if r.sum() == 0 or q.sum() == 0:
        return math.nan
    return float(jensenshannon(r / r.sum(), q / q.sum(), base=2))


def js_expected_squared(bins: int, n_ref: int, n_prod: int) -> float:
    """Squared JS distance expected from sampling noise alone (JS divergence ≈ PSI / 8, in bits)."""
    return psi_expected(bins, n_ref, n_prod) / (8 * math.log(2))


def chi_square(ref_counts, prod_counts) -> tuple[float, float]:
    """Pearson's chi-square test that both count vectors come from one distribution."""
    table = np.vstack([np.asarray(ref_counts, float), np.asarray(prod_counts, float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0 if table.size else math.nan
    res = stats.chi2_contingency(table, correction=False)
    return float(res.statistic), float(res.pvalue)


def pool_rare(ref_counts, prod_counts, labels, *, min_share: float) -> tuple[np.ndarray, np.ndarray, list]:
    """Pool categories below ``min_share`` of reference (and those reference never saw) into
    ``(other)``; drop categories empty on both sides."""
    r = np.asarray(ref_counts, dtype=np.int64)
    q = np.asarray(prod_counts, dtype=np.int64)
    total = r.sum()
    share = r / total if total else np.zeros(len(r))
    keep = share >= min_share if total else np.ones(len(r), bool)
    present = (r + q) > 0
    rare = ~keep & present
    kept = keep & present
    out_r, out_q = list(r[kept]), list(q[kept])
    out_labels = [labels[i] for i in np.flatnonzero(kept)]
    if rare.any():
        out_r.append(int(r[rare].sum()))
        out_q.append(int(q[rare].sum()))
        out_labels.append(OTHER)
    return np.asarray(out_r, np.int64), np.asarray(out_q, np.int64), out_labels


# --- one column ---------------------------------------------------------------------------------
@dataclass
class Drift:
    """Drift statistics of one column (NaN where a statistic does not apply or has no data).

    ``bins`` is the table PSI was computed on (bin or category, shares on each side, each bin's
    PSI term); ``profile`` holds what the plots draw (quantile sketches and histogram shares for
    numeric columns, category shares for categorical ones).
    """

    kind: str
    n_reference: int
    n_production: int
    missing_reference: int
    missing_production: int
    psi: float
    psi_expected: float
    bins_used: int
    ks: float = math.nan
    ks_p: float = math.nan
    wasserstein: float = math.nan
    wasserstein_norm: float = math.nan
    spread: str = ""
    js: float = math.nan
    js_excess: float = math.nan
    chi2: float = math.nan
    chi2_p: float = math.nan
    unseen_share: float = math.nan
    unseen_categories: int = 0
    bins: pd.DataFrame = field(default_factory=pd.DataFrame)
    profile: dict = field(default_factory=dict)
    # impossible (±inf) values, left out of the distributions and counted apart from missing ones
    infinite_reference: int = 0
    infinite_production: int = 0

    @property
    def psi_excess(self) -> float:
        """PSI above what sampling noise alone gives at these sample sizes (never below 0)."""
        return max(0.0, self.psi - self.psi_expected) if math.isfinite(self.psi) else math.nan

    @property
    def p_value(self) -> float:
        """The test behind the verdict: KS for numeric columns, chi-square for categorical ones."""
        return self.ks_p if self.kind == "numeric" else self.chi2_p

    @property
    def rows_total_reference(self) -> int:
        return self.n_reference + self.missing_reference + self.infinite_reference

    @property
    def rows_total_production(self) -> int:
        return self.n_production + self.missing_production + self.infinite_production

    @property
    def missing_rate_reference(self) -> float:
        total = self.rows_total_reference
        return self.missing_reference / total if total else math.nan

    @property
    def missing_rate_production(self) -> float:
        total = self.rows_total_production
        return self.missing_production / total if total else math.nan

    @property
    def missing_p(self) -> float:
        return float(two_proportion_z(self.missing_reference, self.rows_total_reference,
                                      self.missing_production, self.rows_total_production,
                                      alternative="two-sided"))

    def row(self) -> dict:
        """The scalar statistics, as one row of a features table."""
        return {"type": self.kind, "psi": self.psi, "psi_expected": self.psi_expected,
                "psi_excess": self.psi_excess, "ks": self.ks, "ks_p": self.ks_p,
                "wasserstein_norm": self.wasserstein_norm, "js": self.js, "chi2_p": self.chi2_p,
                "p_value": self.p_value,
                "missing_reference": self.missing_rate_reference,
                "missing_production": self.missing_rate_production, "missing_p": self.missing_p,
                "infinite_reference": self.infinite_reference, "infinite_production": self.infinite_production,
                "unseen_share": self.unseen_share,
                "rows_reference": self.n_reference, "rows_production": self.n_production}


def _bin_labels(edges: np.ndarray, fmt) -> list[str]:
    if len(edges) == 0:
        return ["all values"]
    labels = [f"≤ {fmt(edges[0])}"]
    labels += [f"({fmt(lo)}, {fmt(hi)}]" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    return labels + [f"> {fmt(edges[-1])}"]


def _format_number(v: float) -> str:
    return f"{v:.4g}"


def _format_datetime(v: float) -> str:
    return str(pd.Timestamp(int(v)))


def numeric_drift(ref_sorted: np.ndarray, prod_sorted: np.ndarray, *, missing_reference: int = 0,
                  missing_production: int = 0, bins: int = BINS, datetime: bool = False) -> Drift:
    """Drift of a numeric column given its finite values sorted on each side (:func:`sorted_finite`).

    ``datetime`` marks values that are nanoseconds since the epoch (labels and plots show dates).

    Examples
    --------
    >>> a = np.arange(100.0)
    >>> d = numeric_drift(a, a + 1000)
    >>> round(d.ks, 3), d.bins_used
    (1.0, 10)
    """
    n, m = len(ref_sorted), len(prod_sorted)
    edges = quantile_edges(ref_sorted, bins)
    if n == 0:
        edges = np.empty(0)
    rc, pc = bin_counts(ref_sorted, edges), bin_counts(prod_sorted, edges)
    contrib = psi_contributions(rc, pc)
    used = int(np.count_nonzero((rc + pc) > 0))
    ks, ks_p = ks_sorted(ref_sorted, prod_sorted)
    w = wasserstein_sorted(ref_sorted, prod_sorted)
    spread, spread_name = robust_spread(ref_sorted)
    fmt = _format_datetime if datetime else _format_number
    table = pd.DataFrame({"bin": _bin_labels(edges, fmt),
                          "reference_share": rc / n if n else np.nan,
                          "production_share": pc / m if m else np.nan,
                          "psi_term": contrib})
    return Drift(kind="numeric", n_reference=n, n_production=m, missing_reference=missing_reference,
                 missing_production=missing_production, psi=float(np.sum(contrib)),
                 psi_expected=psi_expected(used, n, m), bins_used=used, ks=ks, ks_p=ks_p,
                 wasserstein=w, wasserstein_norm=w / spread if spread > 0 else math.nan,
                 spread=spread_name, bins=table,
                 profile=_numeric_profile(ref_sorted, prod_sorted, edges, datetime))



def _hist_edges(lows, highs, datetime: bool, profile: dict) -> np.ndarray | None:
    """Shared histogram bins between the lower and upper quantiles of both sides (None without
    values); sets ``profile["log"]``: positive values spanning orders of magnitude (amounts,
    distances) get log-spaced bins."""
    lows = [v for v in lows if np.isfinite(v)]
    highs = [v for v in highs if np.isfinite(v)]
    if not (lows and highs):
        return None
    lo, hi = min(lows), max(highs)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    profile["log"] = bool(not datetime and lo > 0 and hi / lo >= 100)
    return np.geomspace(lo, hi, _HIST_BINS + 1) if profile["log"] else np.linspace(lo, hi, _HIST_BINS + 1)

def _numeric_profile(a: np.ndarray, b: np.ndarray, edges: np.ndarray, datetime: bool) -> dict:
    """Small summaries the plots draw: quantile sketches and histogram shares on shared bins."""
    qa, qb = quantiles_sorted(a, _PROFILE_PROBS), quantiles_sorted(b, _PROFILE_PROBS)
    profile = {"probs": _PROFILE_PROBS, "reference_quantiles": qa, "production_quantiles": qb,
               "psi_edges": edges, "datetime": datetime}
    hist_edges = _hist_edges((qa[1], qb[1]), (qa[-2], qb[-2]), datetime, profile)
    if hist_edges is not None:
        for name, s in (("reference", a), ("production", b)):
            cum = np.searchsorted(s, hist_edges, side="right")
            cum[0] = np.searchsorted(s, hist_edges[0], side="left")
            profile[f"{name}_hist"] = np.diff(cum) / len(s) if len(s) else np.zeros(_HIST_BINS)
        profile["hist_edges"] = hist_edges
    return profile


def numeric_drift_binned(grid: np.ndarray, ref_counts: np.ndarray, prod_counts: np.ndarray,
                         ref_quantiles: np.ndarray, prod_quantiles: np.ndarray, *, missing_reference: int = 0,
                         missing_production: int = 0, bins: int = BINS, datetime: bool = False,
                         ks_error: float = 0.0) -> Drift:
    """Drift of a numeric column from aggregates instead of sorted arrays (an engine's aggregation).

    ``grid`` is sorted; ``*_counts[i]`` counts the finite values in ``(grid[i-1], grid[i]]``
    (``len(grid) + 1`` bins, the outer ones open); ``*_quantiles`` are each side's quantiles at
    ``j / K``, ``j = 0 … K`` (``np.quantile``'s ``lower`` rule), and the reference's deciles are
    grid points. PSI bins are then exactly :func:`numeric_drift`'s; KS is the largest CDF gap at the
    grid's points, at most ``ks_error`` below the exact statistic; Wasserstein is the area between
    the two quantile functions on the ``j / K`` grid, a left Riemann sum (an approximation that
    misses the top ``1/K`` of each side, so it reads low on heavy tails; it never decides).

    Examples
    --------
    >>> a, b = np.arange(100.0), np.arange(100.0) + 1000
    >>> probs = np.arange(11) / 10
    >>> qa, qb = np.quantile(a, probs, method="lower"), np.quantile(b, probs, method="lower")
    >>> grid = np.unique(np.concatenate([qa, qb]))
    >>> ca, cb = (np.bincount(np.searchsorted(grid, x), minlength=len(grid) + 1) for x in (a, b))
    >>> d = numeric_drift_binned(grid, ca, cb, qa, qb)
    >>> round(d.ks, 3), d.bins_used, round(d.psi, 6) == round(numeric_drift(a, b).psi, 6)
    (1.0, 10, True)
    """
    rc_fine, pc_fine = np.asarray(ref_counts, np.int64), np.asarray(prod_counts, np.int64)
    n, m = int(rc_fine.sum()), int(pc_fine.sum())
    qa, qb = np.asarray(ref_quantiles, float), np.asarray(prod_quantiles, float)
    k = len(qa) - 1
    edges = np.unique(qa[(np.arange(1, bins) * k) // bins]) if n else np.empty(0)
    edges = edges[np.isfinite(edges)]
    cum_r, cum_p = np.cumsum(rc_fine), np.cumsum(pc_fine)
    at = np.searchsorted(grid, edges)
    rc = np.diff(np.concatenate([[0], cum_r[at], [n]]))
    pc = np.diff(np.concatenate([[0], cum_p[at], [m]]))
    contrib = psi_contributions(rc, pc)
    used = int(np.count_nonzero((rc + pc) > 0))
    if n and m:
        ks = float(np.max(np.abs(cum_r[:-1] / n - cum_p[:-1] / m), initial=0.0))
        big, small = max(n, m), min(n, m)
        ks_p = kstwo_sf(ks, float(np.round(big * small / (big + small))))
        w = float(np.mean(np.abs(qa[:-1] - qb[:-1])))  # left Riemann sum: the top 1/k is not seen
    else:
        ks = ks_p = w = math.nan
    if n >= 2 and qa[(3 * k) // 4] > qa[k // 4]:
        spread, spread_name = float((qa[(3 * k) // 4] - qa[k // 4]) / 1.349), "IQR/1.349"
    else:
        sd = float(np.std(qa)) if n >= 2 else 0.0
        spread, spread_name = (sd, "standard deviation") if sd > 0 else (math.nan, "none (constant reference)")
    fmt = _format_datetime if datetime else _format_number
    table = pd.DataFrame({"bin": _bin_labels(edges, fmt),
                          "reference_share": rc / n if n else np.nan,
                          "production_share": pc / m if m else np.nan,
                          "psi_term": contrib})
    step = max(1, k // (len(_PROFILE_PROBS) - 1))
    profile = {"probs": np.arange(0, k + 1, step) / k, "reference_quantiles": qa[::step],
               "production_quantiles": qb[::step], "psi_edges": edges, "datetime": datetime,
               "ks_error": ks_error}
    hist_edges = _hist_edges((qa[step], qb[step]), (qa[-1 - step], qb[-1 - step]), datetime, profile)
    if hist_edges is not None:
        pos = np.clip(np.searchsorted(grid, hist_edges), 0, len(grid))
        for name, cum, total in (("reference", cum_r, n), ("production", cum_p, m)):
            profile[f"{name}_hist"] = np.diff(cum[pos]) / total if total else np.zeros(_HIST_BINS)
        profile["hist_edges"] = hist_edges
    return Drift(kind="numeric", n_reference=n, n_production=m, missing_reference=missing_reference,
                 missing_production=missing_production, psi=float(np.sum(contrib)),
                 psi_expected=psi_expected(used, n, m), bins_used=used, ks=ks, ks_p=ks_p,
                 wasserstein=w, wasserstein_norm=w / spread if spread > 0 else math.nan,
                 spread=spread_name, bins=table, profile=profile)


def categorical_drift(ref_codes: np.ndarray, prod_codes: np.ndarray, categories, *,
                      min_share: float = 0.01) -> Drift:
    """Drift of a categorical column from integer codes into ``categories`` (``-1`` = missing).

    Categories below ``min_share`` of reference and categories reference never saw are pooled
    into ``(other)`` for PSI, chi-square and JS; ``unseen_share`` is the share of production rows
    (with a value) in categories absent from reference.

    Examples
    --------
    >>> d = categorical_drift(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), ["a", "b"])
    >>> round(d.js, 3)
    0.221
    """
    k = len(categories)
    ref_codes = np.asarray(ref_codes)
    prod_codes = np.asarray(prod_codes)
    rc_all = np.bincount(ref_codes + 1, minlength=k + 1)
    pc_all = np.bincount(prod_codes + 1, minlength=k + 1)
    return categorical_drift_counts(rc_all[1:], pc_all[1:], categories, missing_reference=int(rc_all[0]),
                                    missing_production=int(pc_all[0]), min_share=min_share)


def categorical_drift_counts(ref_counts, prod_counts, categories, *, missing_reference: int = 0,
                             missing_production: int = 0, min_share: float = 0.01) -> Drift:
    """:func:`categorical_drift` from each category's count on each side (an engine's aggregation).

    Examples
    --------
    >>> round(categorical_drift_counts([2, 2], [1, 3], ["a", "b"]).js, 3)
    0.221
    """
    rc_all, pc_all = np.asarray(ref_counts, np.int64), np.asarray(prod_counts, np.int64)
    miss_r, miss_p = int(missing_reference), int(missing_production)
    n, m = int(rc_all.sum()), int(pc_all.sum())
    labels = [str(c) for c in categories]
    rc, pc, pooled_labels = pool_rare(rc_all, pc_all, labels, min_share=min_share)
    contrib = psi_contributions(rc, pc)
    used = int(np.count_nonzero((rc + pc) > 0))
    chi2, chi2_p = chi_square(rc, pc) if n and m else (math.nan, math.nan)
    js = js_distance(rc, pc)
    js_excess = (math.sqrt(max(0.0, js**2 - js_expected_squared(used, n, m)))
                 if math.isfinite(js) else math.nan)
    unseen = (rc_all == 0) & (pc_all > 0)
    table = pd.DataFrame({"bin": pooled_labels,
                          "reference_share": rc / n if n else np.nan,
                          "production_share": pc / m if m else np.nan,
                          "psi_term": contrib})
    present = (rc_all + pc_all) > 0
    profile = {"categories": [labels[i] for i in np.flatnonzero(present)],
               "reference_share": rc_all[present] / n if n else np.zeros(int(present.sum())),
               "production_share": pc_all[present] / m if m else np.zeros(int(present.sum())),
               "unseen": unseen[present]}
    return Drift(kind="categorical", n_reference=n, n_production=m, missing_reference=miss_r,
                 missing_production=miss_p, psi=float(np.sum(contrib)),
                 psi_expected=psi_expected(used, n, m), bins_used=used, js=js, js_excess=js_excess,
                 chi2=chi2, chi2_p=chi2_p, unseen_share=float(pc_all[unseen].sum() / m) if m else math.nan,
                 unseen_categories=int(unseen.sum()), bins=table, profile=profile)
