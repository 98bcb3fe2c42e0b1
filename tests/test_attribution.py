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


def test_out_of_support_part_takes_the_loss_reference_cannot_see():
    """A share of production where the model does worse, unseen by reference: that part carries
    share x (level - metric there), and the parts still add up to the gap."""
    from mlinvestigate.attribution import attribute_gap

    rng = np.random.default_rng(0)
    outcome = (rng.random(20_000) < 0.95).astype(float)
    observed = 0.7 * 0.95 + 0.3 * 0.40  # 30% of traffic out of support, where accuracy is 0.40
    res = attribute_gap(outcome, covariate_weights=np.ones(len(outcome)), y_ref=None, production_rates=None,
                        observed_production=observed, outside={"share": 0.3, "metric": 0.40, "rows": 900})
    parts = res["parts"]
    assert parts["out_of_support"]["value"] == pytest.approx(0.3 * (outcome.mean() - 0.40), abs=1e-9)
    assert abs(parts["unexplained"]["value"]) < 0.01
    assert sum(p["value"] for p in parts.values()) == pytest.approx(res["gap"], abs=1e-12)
    lo, hi = parts["out_of_support"]["ci"]
    assert lo <= parts["out_of_support"]["value"] <= hi


def test_drift_out_of_range_is_attributed_to_inputs_reference_never_saw(tmp_path):
    """The drift scenario moves inputs beyond the reference's range: the waterfall says so instead
    of calling the gap unexplained, so it tells the same story as the headline."""
    from mlinvestigate import load_incident, scenarios
    from mlinvestigate import summary as sm

    inc = load_incident(scenarios.make("drift", tmp_path, rows=4000))
    doc = sm.collect(inc, ["drift", "measurement", "prior_shift"])
    attr = sm.attribution(inc, doc)
    parts = attr["parts"]
    assert parts["out_of_support"]["value"] > 0.5 * attr["gap"]
    assert abs(parts["unexplained"]["value"]) < 0.25 * attr["gap"]
