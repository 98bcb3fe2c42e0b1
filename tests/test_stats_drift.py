"""Known answers for the univariate drift statistics and the domain classifier."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlinvestigate.stats import drift as sd
from mlinvestigate.stats.domain import auc_interval, density_ratios, fit_domain_classifier, rank_auc


def _sorted(x):
    return np.sort(np.asarray(x, dtype=float))


# --- PSI ----------------------------------------------------------------------------------------
def test_psi_hand_computed():
    """(0.25-0.5)·ln(0.25/0.5) + (0.75-0.5)·ln(0.75/0.5) = 0.25·ln 2 + 0.25·ln 1.5."""
    assert sd.psi([50, 50], [25, 75]) == pytest.approx(0.25 * math.log(2) + 0.25 * math.log(1.5))


def test_psi_empty_bin_uses_epsilon():
    """An empty production bin counts as a share of 0.0001, so PSI stays finite."""
    expected = (0.5 - 1e-4) * math.log(0.5 / 1e-4) + (1 - 0.5) * math.log(1 / 0.5)
    assert sd.psi([50, 50], [0, 80]) == pytest.approx(expected)


def test_numeric_psi_on_a_tiny_example():
    """Reference 1..10: deciles 1, 2, …, 9 give each reference value its own bin (10% each);
    production 9.5, 9.6, 10, 11, 12 all fall in the last bin, the nine others are empty (0.0001)."""
    d = sd.numeric_drift(np.arange(1.0, 11.0), _sorted([9.5, 9.6, 10, 11, 12]))
    assert list(d.bins["reference_share"]) == [0.1] * 10
    assert list(d.bins["production_share"]) == [0.0] * 9 + [1.0]
    hand = 9 * (1e-4 - 0.1) * math.log(1e-4 / 0.1) + (1.0 - 0.1) * math.log(1.0 / 0.1)
    assert d.psi == pytest.approx(hand)
    assert d.bins["bin"].iloc[0] == "≤ 1" and d.bins["bin"].iloc[1] == "(1, 2]" and d.bins["bin"].iloc[-1] == "> 9"


def test_identical_samples_give_zero():
    """The same sample on both sides: PSI, KS, Wasserstein and JS are all 0."""
    x = _sorted(np.random.default_rng(0).normal(size=5000))
    d = sd.numeric_drift(x, x)
    assert (d.psi, d.ks, d.wasserstein) == (0.0, 0.0, 0.0)
    assert d.ks_p == pytest.approx(1.0)
    codes = np.random.default_rng(1).integers(0, 4, 3000)
    c = sd.categorical_drift(codes, codes, list("abcd"))
    assert c.psi == 0.0 and c.js == 0.0 and c.chi2_p == pytest.approx(1.0)


def test_ties_collapse_duplicate_edges():
    """A column that is 60% zeros gets one bin ≤ 0 instead of six, and no empty bins."""
    ref = _sorted(np.r_[np.zeros(600), np.arange(1, 401)])
    assert list(sd.quantile_edges(ref)) == [0, 100, 200, 300]
    d = sd.numeric_drift(ref, ref)
    assert d.bins_used == 5 and list(d.bins["reference_share"]) == pytest.approx([0.6, 0.1, 0.1, 0.1, 0.1])


def test_values_beyond_reference_range_land_in_outer_bins():
    ref = _sorted(np.arange(100))
    d = sd.numeric_drift(ref, _sorted([-50, -40, 500, 600]))
    assert d.bins["production_share"].iloc[0] == 0.5 and d.bins["production_share"].iloc[-1] == 0.5


def test_psi_expected_matches_simulation():
    """Mean PSI of two samples of one distribution ≈ (bins-1)(1/n + 1/m)."""
    rng = np.random.default_rng(3)
    psis = [sd.numeric_drift(_sorted(rng.normal(size=500)), _sorted(rng.normal(size=800))).psi
            for _ in range(200)]
    assert np.mean(psis) == pytest.approx(sd.psi_expected(10, 500, 800), rel=0.15)


# --- KS -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, m, shift, discrete", [
    (40, 55, 0.0, False), (300, 200, 0.3, True), (9000, 10_000, 0.02, False),
    (20_000, 15_000, 0.0, False), (30_000, 25_000, 0.01, True), (60_000, 40_000, 0.0, True)])
def test_ks_equals_scipy(n, m, shift, discrete):
    """Statistic and p-value equal scipy.stats.ks_2samp on seeded samples (exact and asymptotic)."""
    rng = np.random.default_rng(n)
    a, b = rng.normal(size=n), rng.normal(shift, 1, size=m)
    if discrete:
        a, b = np.round(a * 3), np.round(b * 3)
    ref = stats.ks_2samp(a, b)
    d, p = sd.ks_sorted(_sorted(a), _sorted(b))
    assert d == pytest.approx(ref.statistic, abs=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)


def test_ks_pvalue_fast_path_agrees_with_scipy():
    """Where scipy's exact Smirnov sum is slow (large n, small p), the approximation is within 0.1%."""
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=60_000), rng.normal(0.03, 1, size=50_000)
    ref = stats.ks_2samp(a, b)
    d, p = sd.ks_sorted(_sorted(a), _sorted(b))
    assert ref.pvalue < 0.01
    assert d == pytest.approx(ref.statistic, abs=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-3)


# --- Wasserstein --------------------------------------------------------------------------------
def test_wasserstein_known_shift_and_scipy():
    """Shifting a sample by 2 moves it by exactly 2; unequal sizes match scipy."""
    rng = np.random.default_rng(7)
    x = _sorted(rng.normal(size=2000))
    assert sd.wasserstein_sorted(x, x + 2.0) == pytest.approx(2.0)
    a, b = rng.exponential(size=3001), rng.normal(1, 2, size=1777)
    assert sd.wasserstein_sorted(_sorted(a), _sorted(b)) == pytest.approx(stats.wasserstein_distance(a, b))


def test_wasserstein_normalised_by_iqr():
    """A shift of one robust standard deviation (IQR/1.349) gives a normalised distance of 1."""
    x = _sorted(np.random.default_rng(8).normal(size=4000))
    spread = (np.quantile(x, 0.75) - np.quantile(x, 0.25)) / 1.349
    d = sd.numeric_drift(x, x + spread)
    assert d.wasserstein_norm == pytest.approx(1.0) and d.spread == "IQR/1.349"


# --- categorical --------------------------------------------------------------------------------
def test_categorical_unseen_and_rare_are_pooled():
    """Categories under min_share of reference and categories reference never saw go to (other)."""
    cats = ["a", "b", "rare", "new"]
    ref = np.r_[np.zeros(600), np.ones(395), np.full(5, 2)].astype(int)
    prod = np.r_[np.zeros(500), np.ones(300), np.full(10, 2), np.full(190, 3), np.full(20, -1)].astype(int)
    d = sd.categorical_drift(ref, prod, cats, min_share=0.01)
    assert list(d.bins["bin"]) == ["a", "b", sd.OTHER]
    assert d.unseen_categories == 1 and d.unseen_share == pytest.approx(190 / 1000)
    assert d.missing_production == 20 and d.n_production == 1000
    assert d.psi == pytest.approx(sd.psi([600, 395, 5], [500, 300, 200]))
    assert d.js == pytest.approx(sd.js_distance([600, 395, 5], [500, 300, 200]))
    assert d.chi2_p < 1e-10


def test_js_distance_known_values():
    """Disjoint distributions are 1 apart (base 2); one hand-computed case."""
    assert sd.js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    p, q = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    m = (p + q) / 2
    jsd = 0.5 * np.sum(p * np.log2(p / m)) + 0.5 * np.sum(q * np.log2(q / m))
    assert sd.js_distance([50, 50], [25, 75]) == pytest.approx(math.sqrt(jsd))


def test_missing_rate_p_is_two_sided_pooled_z():
    """No missing values on either side: p 1. Missing 10% against 30% of 200 rows: the pooled z-test."""
    assert sd.numeric_drift(np.arange(100.0), np.arange(100.0)).missing_p == 1.0
    d = sd.numeric_drift(np.arange(180.0), np.arange(140.0), missing_reference=20, missing_production=60)
    z = (0.3 - 0.1) / math.sqrt(0.2 * 0.8 * (2 / 200))
    assert d.missing_p == pytest.approx(2 * stats.norm.sf(z))


# --- awkward columns ----------------------------------------------------------------------------
def test_all_missing_column_reports_nan():
    """No values on one side: the statistics are NaN, nothing raises."""
    values, missing = sd.sorted_finite(np.full(50, np.nan))
    d = sd.numeric_drift(values, _sorted(np.arange(10.0)), missing_reference=missing)
    assert d.n_reference == 0 and math.isnan(d.psi) and math.isnan(d.ks) and math.isnan(d.p_value)
    assert d.missing_rate_reference == 1.0
    c = sd.categorical_drift(np.full(30, -1), np.zeros(30, int), ["a"])
    assert math.isnan(c.psi) and math.isnan(c.chi2_p)


def test_constant_column():
    """A constant reference: two bins, no spread; same constant in production is no drift."""
    ref = np.full(200, 3.0)
    same = sd.numeric_drift(ref, np.full(100, 3.0))
    assert same.psi == 0.0 and same.ks == 0.0 and math.isnan(same.wasserstein_norm)
    moved = sd.numeric_drift(ref, np.full(100, 4.0))
    assert moved.psi > 1 and moved.ks == 1.0


def test_tiny_samples():
    """One or two values a side still give numbers, and the noise expectation is large."""
    d = sd.numeric_drift(_sorted([1.0, 2.0]), _sorted([5.0]))
    assert d.ks == 1.0 and 0 <= d.ks_p <= 1
    assert sd.psi_expected(10, 50, 50) == pytest.approx(0.36)


def test_infinite_values_count_as_missing():
    values, missing = sd.sorted_finite([1.0, np.inf, -np.inf, np.nan, 2.0])
    assert list(values) == [1.0, 2.0] and missing == 3


def test_numeric_values_of_datetimes_and_booleans():
    ts = pd.Series(pd.to_datetime(["2026-01-01", None]))
    out = sd.numeric_values(ts)
    assert out[0] == pd.Timestamp("2026-01-01").value and math.isnan(out[1])
    assert list(sd.numeric_values(pd.Series([True, False]))) == [1.0, 0.0]


# --- domain classifier --------------------------------------------------------------------------
def _frames(n, shift, seed=0):
    rng = np.random.default_rng(seed)

    def side(s):
        return pd.DataFrame({"x": rng.normal(s, 1, n), "y": rng.normal(size=n),
                             "c": pd.Categorical(rng.choice(list("abc"), n), categories=list("abc"))})
    return side(0.0), side(shift)


def test_domain_classifier_finds_the_shifted_feature():
    ref, prod = _frames(3000, 1.0)
    dc = fit_domain_classifier(ref, prod, ["x", "y", "c"], categorical=["c"], max_rows=2000)
    assert 0.7 < dc.auc < 0.8 and dc.ci[0] < dc.auc < dc.ci[1]
    assert dc.importance["feature"].iloc[0] == "x"
    assert dc.rows_per_side == (2000, 2000) and len(dc.oof) == 4000


def test_domain_classifier_at_chance_without_shift():
    ref, prod = _frames(3000, 0.0)
    dc = fit_domain_classifier(ref, prod, ["x", "y", "c"], categorical=["c"])
    assert dc.ci[0] < 0.5 + 0.03 and abs(dc.auc - 0.5) < 0.04


def test_domain_classifier_leaves_out_a_separating_feature():
    """An id that grows with time separates the sides alone: reported, left out."""
    ref, prod = _frames(1000, 0.0)
    ref["row_id"], prod["row_id"] = np.arange(1000), np.arange(1000, 2000)
    dc = fit_domain_classifier(ref, prod, ["x", "row_id"])
    assert "row_id" in dc.excluded and dc.features == ["x"] and dc.auc < 0.6


def test_density_ratios_reweight_reference_towards_production():
    """Weighting reference rows by the ratios moves their mean of x towards production's."""
    ref, prod = _frames(4000, 0.8)
    dc = fit_domain_classifier(ref, prod, ["x", "y"], max_rows=4000)
    w = density_ratios(dc, ref)
    assert w.shape == (len(ref),) and (w > 0).all()
    weighted = np.average(ref["x"], weights=w)
    assert abs(weighted - prod["x"].mean()) < 0.25 * abs(ref["x"].mean() - prod["x"].mean())
    assert len(density_ratios(dc)) == dc.rows_per_side[0]


def test_domain_classifier_tiny_sample_returns_nan():
    ref, prod = _frames(4, 0.0)
    dc = fit_domain_classifier(ref, prod, ["x"])
    assert math.isnan(dc.auc) and np.isnan(density_ratios(dc, ref)).all()


def test_rank_auc_and_interval():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 500)
    s = y + rng.normal(size=500)
    from sklearn.metrics import roc_auc_score

    assert rank_auc(y, s) == pytest.approx(roc_auc_score(y, s))
    lo, hi = auc_interval(0.8, 200, 300)
    assert lo < 0.8 < hi and hi - lo < 0.1


# --- drift from aggregates (the duckdb and spark engines) ------------------------------------------
def _binned(a, b, fine=1000):
    """What an engine returns: lower-rule quantiles at j/fine, counts per bin of their union."""
    a, b = np.sort(a), np.sort(b)
    probs = np.arange(fine + 1) / fine
    qa, qb = (s[np.floor(probs * (len(s) - 1)).astype(int)] for s in (a, b))
    grid = np.unique(np.concatenate([qa, qb]))
    ca, cb = (np.bincount(np.searchsorted(grid, s, side="left"), minlength=len(grid) + 1) for s in (a, b))
    return sd.numeric_drift_binned(grid, ca, cb, qa, qb, ks_error=1 / fine)


@pytest.mark.parametrize("discrete", [False, True])
def test_binned_numeric_drift_matches_the_sorted_arrays(discrete):
    rng = np.random.default_rng(3)
    a = rng.lognormal(size=30_000)
    b = rng.lognormal(0.1, 1.1, size=20_000)
    if discrete:
        a, b = np.floor(a * 3), np.floor(b * 3)
    exact, binned = sd.numeric_drift(np.sort(a), np.sort(b)), _binned(a, b)
    assert binned.psi == pytest.approx(exact.psi, abs=1e-12)  # the same ten bins
    assert binned.bins_used == exact.bins_used
    assert 0 <= exact.ks - binned.ks <= 1e-3                  # the stated bound: never above, ≤ 1/1000 below
    assert binned.wasserstein == pytest.approx(exact.wasserstein, rel=0.05)


def test_categorical_counts_match_codes():
    rng = np.random.default_rng(4)
    r, p = rng.integers(-1, 6, 5000), rng.integers(-1, 7, 4000)
    cats = list("abcdefg")
    by_codes = sd.categorical_drift(r, p, cats, min_share=0.05)
    rc, pc = np.bincount(r + 1, minlength=8), np.bincount(p + 1, minlength=8)
    by_counts = sd.categorical_drift_counts(rc[1:], pc[1:], cats, missing_reference=rc[0],
                                            missing_production=pc[0], min_share=0.05)
    assert by_counts.row() == pytest.approx(by_codes.row(), nan_ok=True) or by_counts.row() == by_codes.row()
