"""Gap attribution: known answers for each part, parts adding up to the gap."""

from __future__ import annotations

import numpy as np
import pytest

from mlinvestigate.attribution import attribute_gap, class_weights, effective_sample_size


def test_effective_sample_size_known_answers():
    assert effective_sample_size(np.ones(4)) == pytest.approx(4)
    assert effective_sample_size(np.array([1.0, 0, 0, 0])) == pytest.approx(1)
    assert effective_sample_size(np.array([2.0, 2, 2, 2])) == pytest.approx(4)


def test_class_weights_match_target_rates():
    """Reweighting per class gives exactly the requested class shares."""
    y = np.array([0] * 90 + [1] * 10)
    w = class_weights(y, np.ones(100), {"0": 0.5, "1": 0.5})
    assert w[y == 1].sum() / w.sum() == pytest.approx(0.5)


def test_pure_prior_shift_is_attributed_to_prior():
    """Class 1 is right half the time, class 0 always: 10% → 50% positives costs 0.20 of accuracy."""
    y = np.array([0] * 900 + [1] * 100)
    outcome = np.where(y == 1, np.tile([1.0, 0.0], 500), 1.0)
    res = attribute_gap(outcome, covariate_weights=None, y_ref=y, production_rates={"0": 0.5, "1": 0.5},
                        observed_production=0.75)
    assert res["reference"] == pytest.approx(0.95)
    assert res["parts"]["prior_shift"]["value"] == pytest.approx(0.20)
    assert res["parts"]["unexplained"]["value"] == pytest.approx(0.0)
    lo, hi = res["parts"]["prior_shift"]["ci"]
    assert lo <= 0.20 <= hi


def test_covariate_weights_explain_a_mix_change():
    """Rows in region B are wrong; production has 4× more of B: the covariate part explains it."""
    region_b = np.arange(1000) < 100
    outcome = np.where(region_b, 0.0, 1.0)
    # production: 40% region B, reference: 10% → density ratio 4 in B, 0.6/0.9 elsewhere
    w = np.where(region_b, 4.0, 0.6 / 0.9)
    res = attribute_gap(outcome, covariate_weights=w, y_ref=None, production_rates=None,
                        observed_production=0.6)
    assert res["parts"]["covariate_shift"]["value"] == pytest.approx(0.3)
    assert res["parts"]["unexplained"]["value"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parts_add_up_to_the_gap(seed):
    rng = np.random.default_rng(seed)
    outcome = rng.integers(0, 2, 500).astype(float)
    y = rng.integers(0, 2, 500)
    res = attribute_gap(outcome, covariate_weights=rng.uniform(0.2, 3, 500), y_ref=y,
                        production_rates={"0": 0.3, "1": 0.7}, observed_production=0.31,
                        fair_production=0.4)
    total = sum(p["value"] for p in res["parts"].values())
    assert total == pytest.approx(res["gap"])
    assert res["parts"]["measurement"]["value"] == pytest.approx(0.09)


def test_no_overlap_is_flagged_unreliable():
    """A few huge weights (production far outside reference) make the covariate part unreliable."""
    w = np.full(1000, 1e-6)
    w[:5] = 1.0
    res = attribute_gap(np.ones(1000), covariate_weights=w, y_ref=None, production_rates=None,
                        observed_production=0.5)
    assert any("unreliable" in n for n in res["reliability"])
