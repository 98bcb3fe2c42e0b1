"""Prior-shift statistics against known answers: BBSE, EM, calibration, thresholds, PSI."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit

from mlinvestigate.stats import drift as sd
from mlinvestigate.stats import prior as sp

MU = 2.0  # class-conditional inputs: x ~ N(MU * y, 1)


def draw(rng, n: int, rate: float, *, train_rate: float = 0.1):
    """Label-shift world: y ~ Bernoulli(rate), x | y fixed; the score is the posterior at ``train_rate``."""
    y = (rng.random(n) < rate).astype(int)
    x = rng.normal(MU * y, 1.0)
    score = expit(MU * x - MU**2 / 2 + logit(train_rate))
    return y, score


# --- BBSE ---------------------------------------------------------------------------------------------
def test_bbse_inverts_an_exact_confusion_matrix():
    """Prediction shares made from a known confusion matrix and prior give that prior back."""
    confusion = np.array([[0.8, 0.1, 0.2], [0.15, 0.7, 0.1], [0.05, 0.2, 0.7]])
    prior = np.array([0.5, 0.3, 0.2])
    assert sp.bbse(confusion, confusion @ prior) == pytest.approx(prior, abs=1e-9)


def test_bbse_stays_on_the_simplex_when_shares_are_infeasible():
    """Prediction shares no prior can produce still give non-negative shares summing to one."""
    confusion = np.array([[0.9, 0.2], [0.1, 0.8]])
    est = sp.bbse(confusion, np.array([0.99, 0.01]))
    assert est.min() >= 0 and est.sum() == pytest.approx(1.0)
    assert est[1] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("new_rate", [0.1, 0.3, 0.03])
def test_bbse_estimate_recovers_a_known_prior_from_samples(new_rate):
    """On sampled data the production prior is recovered within its bootstrap interval (identity at 0.1)."""
    rng = np.random.default_rng(0)
    y_ref, s_ref = draw(rng, 50_000, 0.1)
    y_prod, s_prod = draw(rng, 50_000, new_rate)
    joint = sp.joint_counts(y_ref, (s_ref >= 0.5).astype(int), 2)
    est = sp.bbse_estimate(joint, np.bincount((s_prod >= 0.5).astype(int), minlength=2), n_resamples=100)
    assert est.usable
    assert est.prior[1] == pytest.approx(new_rate, abs=0.01)
    assert est.ci_low[1] <= new_rate <= est.ci_high[1]
    assert est.diagnostics["condition_number"] < 10


def test_bbse_with_one_class_predicted_is_unusable_and_says_why():
    """A model that always predicts one class gives a singular confusion matrix: no estimate, a reason."""
    y = np.r_[np.zeros(900), np.ones(100)].astype(int)
    joint = sp.joint_counts(y, np.zeros(1000, dtype=int), 2)
    est = sp.bbse_estimate(joint, np.array([500.0, 0.0]))
    assert not est.usable
    assert np.isnan(est.prior).all()
    assert "only 1 class ever predicted" in est.message


def test_bbse_with_indistinguishable_classes_is_unusable():
    """Two classes predicted the same way (identical confusion columns) cannot be told apart."""
    y = np.repeat([0, 1, 2], 300)
    pred = np.tile([0, 1, 2], 300)  # every class predicted uniformly at random: identical columns
    est = sp.bbse_estimate(sp.joint_counts(y, pred, 3), np.array([300.0, 300.0, 300.0]))
    assert not est.usable
    assert "cannot be inverted" in est.message


# --- EM -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("new_rate", [0.1, 0.3, 0.05])
def test_em_recovers_a_known_prior_with_calibrated_scores(new_rate):
    """Saerens EM on calibrated posteriors recovers the new prior; with no shift it stays put."""
    rng = np.random.default_rng(1)
    _, s = draw(rng, 100_000, new_rate)
    prior, iterations, converged = sp.em_prior(np.column_stack([1 - s, s]), np.array([0.9, 0.1]))
    assert converged
    assert prior[1] == pytest.approx(new_rate, abs=0.006)


def test_em_estimate_recalibrates_a_miscalibrated_score_first():
    """A monotone but miscalibrated score is Platt-recalibrated on reference; EM then recovers the prior."""
    rng = np.random.default_rng(2)
    y_ref, s_ref = draw(rng, 40_000, 0.1)
    _, s_prod = draw(rng, 40_000, 0.25)
    bent = expit(0.5 * logit(s_ref) + 1.0), expit(0.5 * logit(s_prod) + 1.0)
    est, calibration = sp.em_estimate(bent[0], y_ref, bent[1], n_resamples=50)
    assert calibration.ece_raw > 0.1 > calibration.ece_calibrated
    assert calibration.b == pytest.approx(2.0, rel=0.05)
    assert est.prior[1] == pytest.approx(0.25, abs=0.01)
    assert est.ci_low[1] <= 0.25 <= est.ci_high[1]


def test_em_identity_when_nothing_shifted():
    """Reference scored against itself gives back the reference rate."""
    rng = np.random.default_rng(3)
    y, s = draw(rng, 30_000, 0.1)
    est, _ = sp.em_estimate(s, y, s, n_resamples=20)
    assert est.prior[1] == pytest.approx(y.mean(), abs=0.002)


def test_mixture_distance_separates_label_shift_from_other_changes():
    """Production scores are the reference classes' mix under label shift, not under a moved input."""
    rng = np.random.default_rng(4)
    y_ref, s_ref = draw(rng, 20_000, 0.1)
    _, s_prod = draw(rng, 20_000, 0.3)
    assert sp.mixture_distance(s_ref, y_ref == 1, s_prod, 0.3) < 0.03
    shifted = expit(logit(s_prod) + 2.0)  # every score pushed up: no class mix explains it
    assert sp.mixture_distance(s_ref, y_ref == 1, shifted, 0.3) > 0.15


# --- thresholds and consequences --------------------------------------------------------------------------
def test_infer_threshold():
    """The threshold behind logged predictions is found; 0.5 when it separates as well or nothing does."""
    s = np.random.default_rng(5).random(2000)
    t, agreement = sp.infer_threshold(s, s >= 0.3)
    assert t == pytest.approx(0.3, abs=0.002) and agreement == 1.0
    assert sp.infer_threshold(s, s >= 0.5) == (0.5, 1.0)
    t, agreement = sp.infer_threshold(s, np.random.default_rng(6).random(2000) < 0.5)
    assert t == 0.5 and agreement < 0.6


def test_operating_metrics_known_values():
    """TPR 0.8, FPR 0.1 at a 20% positive rate: precision 2/3, accuracy 0.88, flagged 24%."""
    m = sp.operating_metrics(0.8, 0.1, 0.2, cost_ratio=5.0)
    assert float(m["precision"]) == pytest.approx(0.16 / 0.24)
    assert float(m["accuracy"]) == pytest.approx(0.16 + 0.72)
    assert float(m["positive_share"]) == pytest.approx(0.24)
    assert float(m["cost"]) == pytest.approx(0.2 * 0.2 * 5 + 0.8 * 0.1)


def test_roc_points_match_counts():
    """TPR/FPR of ``score >= t`` equal direct counts."""
    rng = np.random.default_rng(7)
    y, s = draw(rng, 5000, 0.2)
    tpr, fpr = sp.roc_points(s, y == 1, [0.2, 0.5, 0.8])
    for t, a, b in zip([0.2, 0.5, 0.8], tpr, fpr, strict=True):
        assert a == pytest.approx(np.mean(s[y == 1] >= t))
        assert b == pytest.approx(np.mean(s[y == 0] >= t))


def test_prior_adjusted_matches_bayes_at_the_new_prior():
    """Re-weighting the posterior at prior 0.1 to 0.3 gives the posterior computed at 0.3."""
    x = np.linspace(-2, 4, 50)
    at = {r: expit(MU * x - MU**2 / 2 + logit(r)) for r in (0.1, 0.3)}
    assert sp.prior_adjusted(at[0.1], 0.1, 0.3) == pytest.approx(at[0.3])


# --- regression targets -----------------------------------------------------------------------------------
def test_psi_and_ks_known_answers():
    """Identical samples: PSI 0, KS 0; a shift of one SD: PSI well above 0.25."""
    rng = np.random.default_rng(8)
    a = rng.normal(size=20_000)
    assert sp.psi(a, a) == pytest.approx(0.0, abs=1e-9)
    assert sp.ks(a, a)[0] == 0.0
    assert sp.psi(a, rng.normal(1.0, 1.0, 20_000)) > 0.25
    assert np.isnan(sp.psi(a, np.array([])))


def test_target_psi_and_ks_are_the_drift_statistics():
    """Target PSI and KS equal what the drift check reports for the same column (missing values left out)."""
    rng = np.random.default_rng(9)
    ref, prod = rng.poisson(3.0, 2_000).astype(float), rng.poisson(3.4, 1_500).astype(float)
    ref[:5] = np.nan
    d = sd.numeric_drift(sd.sorted_finite(ref)[0], sd.sorted_finite(prod)[0])
    assert sp.psi(ref, prod) == pytest.approx(d.psi)
    assert sp.ks(ref, prod) == pytest.approx((d.ks, d.ks_p))
