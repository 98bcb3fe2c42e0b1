"""Prior shift: the check on small synthetic incidents (observed, estimated, unrepresentative labels,
multiclass, regression, degenerate models), the threshold explorer, and end-to-end runs."""

from __future__ import annotations

import json
import shutil
from functools import partial

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.special import expit, logit

from mlinvestigate.checks import prior_shift
from tests.conftest import run_cli
from tests.helpers import incident_from_frames

COLUMNS = {"target": "label", "prediction": "pred", "score": "score", "id": "rid"}


make_incident = partial(incident_from_frames, columns=COLUMNS)


def world(rng, n: int, *, rate: float = 0.1, first_id: int = 0) -> pd.DataFrame:
    """Label-shift world: y first, then x | y; the score is the exact posterior at a 10% prior."""
    y = rng.random(n) < rate
    x = rng.normal(2.0 * y, 1.0)
    score = expit(2.0 * x - 2.0 + logit(0.1))
    return pd.DataFrame({"rid": np.arange(first_id, first_id + n), "x": x, "label": y.astype(int),
                         "pred": (score >= 0.5).astype(int), "score": score})


def unlabelled(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns="label")


def test_observed_prior_shift_is_detected(tmp_path):
    """Production labelled at 30% positives against 10%: detected, observed, with the evidence keys."""
    rng = np.random.default_rng(0)
    r = prior_shift.run(make_incident(tmp_path, world(rng, 5000), world(rng, 5000, rate=0.3, first_id=10**6)))
    f = r.finding
    assert f.verdict == "detected", f.summary
    assert f.culprits == ["label=1"]
    assert f.evidence["estimated"] is False
    assert f.evidence["reference_positive_rate"] == pytest.approx(0.1, abs=0.015)
    assert f.evidence["production_positive_rate"] == pytest.approx(0.3, abs=0.02)
    assert f.evidence["recommended_threshold_accuracy"] < f.evidence["current_threshold"] == 0.5
    # one threshold the page recommends, for the summary's action (lowest cost; at ratio 1 the most accurate)
    assert f.evidence["recommended_threshold"] == f.evidence["recommended_threshold_cost"]
    assert f"{f.evidence['recommended_threshold']:.3g}" in f.summary


def test_control_is_clear(tmp_path):
    """No shift: clear, and the estimates agree with the observed rate."""
    rng = np.random.default_rng(1)
    r = prior_shift.run(make_incident(tmp_path, world(rng, 5000), world(rng, 5000, first_id=10**6)))
    assert r.finding.verdict == "clear", r.finding.summary
    assert r.finding.evidence["em"]["positive_rate"] == pytest.approx(0.1, abs=0.02)


@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_without_labels_the_rate_is_estimated(tmp_path, rate):
    """No production labels: EM estimates the rate within two points; detected only when it moved."""
    rng = np.random.default_rng(2)
    prod = unlabelled(world(rng, 8000, rate=rate, first_id=10**6))
    r = prior_shift.run(make_incident(tmp_path, world(rng, 8000), prod))
    ev = r.finding.evidence
    assert ev["estimated"] is True
    assert ev["production_source"] == "em"
    assert ev["production_positive_rate"] == pytest.approx(rate, abs=0.02)
    assert ev["bbse"]["positive_rate"] == pytest.approx(rate, abs=0.03)
    assert r.finding.verdict == ("detected" if rate > 0.1 else "clear"), r.finding.summary


def test_unrepresentative_labels_are_replaced_by_the_estimate(tmp_path):
    """Labels only for flagged rows plus 5% of the rest: the observed rate is biased; the estimate is used."""
    rng = np.random.default_rng(3)
    prod = world(rng, 8000, first_id=10**6)
    reviewed = (prod["pred"] == 1) | (rng.random(len(prod)) < 0.05)
    prod["label"] = prod["label"].astype("Int64").where(reviewed)
    r = prior_shift.run(make_incident(tmp_path, world(rng, 8000), prod))
    ev = r.finding.evidence
    assert ev["labelled_representative"] is False
    assert ev["observed_positive_rate"] > 0.3
    assert ev["estimated"] is True
    assert ev["production_positive_rate"] == pytest.approx(0.1, abs=0.02)
    assert r.finding.verdict == "clear", r.finding.summary


def test_labels_that_moved_without_the_traffic_are_not_a_prior_shift(tmp_path):
    """More positive labels while the model's outputs did not move: inconclusive, pointing at labels."""
    rng = np.random.default_rng(4)
    prod = world(rng, 6000, first_id=10**6)
    relabel = (prod["label"] == 0) & (rng.random(len(prod)) < 0.12)
    prod.loc[relabel, "label"] = 1
    r = prior_shift.run(make_incident(tmp_path, world(rng, 6000), prod))
    assert r.finding.verdict == "inconclusive"
    assert "labels check" in r.finding.summary
    assert r.finding.evidence["follows_from_labels"] is True
    assert r.finding.evidence["label_free_reading"]["reading"] == "labels"


def test_labels_and_outputs_moving_the_same_way_are_a_prior_shift(tmp_path):
    """Observed positives 10% → ~28% and the label-free estimate → ~20%: both moved up, so the
    traffic changed; a prior shift, not "labels moved but traffic did not"."""
    rng = np.random.default_rng(14)
    prod = world(rng, 8000, rate=0.2, first_id=10**6)
    relabel = (prod["label"] == 0) & (rng.random(len(prod)) < 0.1)
    prod.loc[relabel, "label"] = 1
    r = prior_shift.run(make_incident(tmp_path, world(rng, 8000), prod))
    ev = r.finding.evidence
    assert ev["observed_positive_rate"] > 0.25 and ev["em"]["positive_rate"] == pytest.approx(0.2, abs=0.03)
    assert r.finding.verdict == "detected", r.finding.summary
    assert ev["label_free_reading"]["reading"] == "both"
    assert ev["follows_from_labels"] is False
    assert "traffic did not" not in r.finding.summary


def test_a_significant_but_harmless_move_is_reported_not_called_steady(tmp_path):
    """10% → 11% on 60,000 rows: significant, but it moves expected accuracy and precision by less
    than the material amounts; the summary reports the move and its impact, the verdict stays clear."""
    rng = np.random.default_rng(15)
    r = prior_shift.run(make_incident(tmp_path, world(rng, 60_000), world(rng, 60_000, rate=0.11, first_id=10**6)))
    f = r.finding
    assert f.evidence["significant_move"] is True
    assert f.evidence["impact"]["material"] is False
    assert abs(f.evidence["impact"]["accuracy_change"]) < 0.01
    assert f.evidence["impact"]["recall_change"] == pytest.approx(0.0)
    assert f.verdict == "clear"
    assert "steady" not in f.summary and "moved significantly" in f.summary and "accuracy" in f.summary


def test_a_small_move_with_a_large_effect_is_material(tmp_path):
    """30% → 34.5% (4.5 points, 15% relative: below fixed share cut-offs of 5 points / 25%) for a model
    that misses half the positives: expected accuracy falls by about 2 points, so it is detected."""
    rng = np.random.default_rng(16)
    r = prior_shift.run(make_incident(tmp_path, world(rng, 30_000, rate=0.3),
                                      world(rng, 30_000, rate=0.345, first_id=10**6)))
    f = r.finding
    assert f.verdict == "detected", f.summary
    assert f.evidence["impact"]["accuracy_change"] < -0.01
    assert f.evidence["impact"]["judged_by"].startswith("expected effect")
    assert "accuracy" in f.summary


def test_impact_of_a_balance_change_at_fixed_decisions():
    """Accuracy and precision follow the mix, recall does not (known values)."""
    from mlinvestigate.stats import prior as sp

    C = np.array([[0.98, 0.5], [0.02, 0.5]])   # TNR 0.98, TPR 0.5
    out = sp.prior_shift_impact(C, np.array([0.9, 0.1]), np.array([0.7, 0.3]), positive=1)
    assert out["accuracy_reference"] == pytest.approx(0.932)
    assert out["accuracy_production"] == pytest.approx(0.836)
    assert out["precision_production"] == pytest.approx(0.15 / (0.15 + 0.014))
    assert out["recall_change"] == 0.0


def test_moved_outputs_without_labels_are_inconclusive(tmp_path):
    """Unlabelled production whose scores all moved up (not a class mix): the estimate is not trusted."""
    rng = np.random.default_rng(5)
    prod = unlabelled(world(rng, 6000, first_id=10**6))
    prod["score"] = expit(logit(prod["score"]) + 2.5)
    prod["pred"] = (prod["score"] >= 0.5).astype(int)
    r = prior_shift.run(make_incident(tmp_path, world(rng, 6000), prod))
    assert r.finding.evidence["label_shift_fit"]["violated"]
    assert r.finding.verdict == "inconclusive", r.finding.summary


def _multiclass(rng, n, shares, first_id=0):
    classes = np.array(["a", "b", "c"], dtype=object)
    y = rng.choice(3, n, p=shares)
    X = rng.normal(size=(n, 2)) + np.array([[0, 0], [2.5, 0], [0, 2.5]])[y]
    pred = np.argmax(np.column_stack([np.zeros(n), 2.5 * X[:, 0] - 3.125, 2.5 * X[:, 1] - 3.125]), axis=1)
    return pd.DataFrame({"rid": np.arange(first_id, first_id + n), "u": X[:, 0], "v": X[:, 1],
                         "label": classes[y], "pred": classes[pred]})


@pytest.mark.parametrize("labelled", [True, False])
def test_multiclass_shift(tmp_path, labelled):
    """Shares 80/15/5 → 50/30/20: detected; without labels BBSE estimates the shares."""
    rng = np.random.default_rng(6)
    prod = _multiclass(rng, 8000, [0.5, 0.3, 0.2], 10**6)
    if not labelled:
        prod = unlabelled(prod)
    cols = {"target": "label", "prediction": "pred", "id": "rid"}
    r = prior_shift.run(make_incident(tmp_path, _multiclass(rng, 8000, [0.8, 0.15, 0.05]), prod, columns=cols))
    ev = r.finding.evidence
    assert r.finding.verdict == "detected", r.finding.summary
    assert set(ev) >= {"reference_class_rates", "production_class_rates", "estimated"}
    assert ev["estimated"] is (not labelled)
    assert ev["production_class_rates"]["c"] == pytest.approx(0.2, abs=0.03)
    if not labelled:
        assert ev["trusted_estimate"] == "bbse"
        assert "EM cannot run" in ev["trust_reason"]
    else:
        assert ev["follows_from_labels"] is False


def test_multiclass_relabelling_follows_from_labels(tmp_path):
    """Most b labels now given as c at the same inputs: the observed shares move while the
    predictions (BBSE) stay at reference; not a prior shift, flagged as following from the labels."""
    rng = np.random.default_rng(17)
    prod = _multiclass(rng, 8000, [0.7, 0.2, 0.1], 10**6)
    moved = (prod["label"] == "b") & (rng.random(len(prod)) < 0.7)
    prod.loc[moved, "label"] = "c"
    cols = {"target": "label", "prediction": "pred", "id": "rid"}
    r = prior_shift.run(make_incident(tmp_path, _multiclass(rng, 8000, [0.7, 0.2, 0.1]), prod, columns=cols))
    ev = r.finding.evidence
    assert ev["production_class_rates"]["b"] < 0.1
    assert r.finding.verdict == "inconclusive", r.finding.summary
    assert ev["follows_from_labels"] is True
    assert "labels check" in r.finding.summary


def test_single_predicted_class_without_labels_is_inconclusive(tmp_path):
    """A model that predicts one class and logs no score: nothing to estimate from, said plainly."""
    rng = np.random.default_rng(7)
    ref, prod = world(rng, 2000), unlabelled(world(rng, 2000, first_id=10**6))
    ref["pred"], prod["pred"] = 0, 0
    cols = {"target": "label", "prediction": "pred"}
    r = prior_shift.run(make_incident(tmp_path, ref.drop(columns="score"), prod.drop(columns="score"), columns=cols))
    assert r.finding.verdict == "inconclusive"
    assert "cannot be inverted" in r.finding.summary


def test_string_labels_without_a_score_use_bbse(tmp_path):
    """"approved"/"declined" with no score: BBSE estimate, expected metrics at the current predictions."""
    rng = np.random.default_rng(8)

    def as_text(df):
        out = df.drop(columns="score")
        for c in ("label", "pred"):
            if c in out:
                out[c] = np.where(out[c] == 1, "declined", "approved")
        return out

    cols = {"target": "label", "prediction": "pred", "positive_label": "declined"}
    r = prior_shift.run(make_incident(tmp_path, as_text(world(rng, 6000)),
                                      as_text(unlabelled(world(rng, 6000, rate=0.3))), columns=cols))
    ev = r.finding.evidence
    assert r.finding.verdict == "detected"
    assert r.finding.culprits == ["label=declined"]
    assert ev["production_source"] == "bbse"
    assert ev["production_positive_rate"] == pytest.approx(0.3, abs=0.04)
    assert ev["expected_at_current"]["production"]["precision"] > ev["expected_at_current"]["reference"]["precision"]


@pytest.mark.parametrize("shift", [0.0, 1.0])
def test_regression_target_distribution(tmp_path, shift):
    """Regression: a one-SD target shift is detected by PSI; an unchanged target is clear."""
    rng = np.random.default_rng(9)

    def frame(n, mu):
        x = rng.normal(mu, 1, n)
        return pd.DataFrame({"x": x, "y": x + rng.normal(0, 0.3, n), "yhat": x})

    cols = {"target": "y", "prediction": "yhat"}
    r = prior_shift.run(make_incident(tmp_path, frame(4000, 0), frame(4000, shift), columns=cols, task="regression"))
    assert r.finding.verdict == ("detected" if shift else "clear"), r.finding.summary
    assert (r.finding.evidence["psi"] > 0.25) is bool(shift)


def test_tiny_table_does_not_crash(tmp_path):
    """Twenty rows a side: a verdict with a reason."""
    rng = np.random.default_rng(10)
    r = prior_shift.run(make_incident(tmp_path, world(rng, 20, rate=0.3), world(rng, 20, rate=0.3)))
    assert r.finding.verdict in ("clear", "detected", "inconclusive")


def test_threshold_explorer_follows_the_controls(tmp_path):
    """Moving the slider or the cost ratio changes the displayed numbers; both balances are shown."""
    rng = np.random.default_rng(11)
    from mlinvestigate.widgets.prior_shift import ThresholdExplorer

    r = prior_shift.run(make_incident(tmp_path, world(rng, 4000), unlabelled(world(rng, 4000, rate=0.3))))
    w = ThresholdExplorer(r)
    before, table = w.output.value, w.table()
    assert "10.0% positive" in before or "reference" in before
    assert len(table) == 2
    w.threshold.value = 0.2
    after = w.table()
    assert w.output.value != before
    assert after.loc[1, "recall"] > table.loc[1, "recall"]
    assert after.loc[1, "precision"] < table.loc[1, "precision"]
    w.cost_ratio.value = 10
    assert w.table().loc[1, "cost per row (FP units)"] > after.loc[1, "cost per row (FP units)"]


def test_figures(tmp_path):
    """Each figure draws with a title and labelled axes."""
    import matplotlib

    matplotlib.use("Agg")
    from mlinvestigate.plots import prior_shift as plots

    rng = np.random.default_rng(12)
    r = prior_shift.run(make_incident(tmp_path, world(rng, 3000), world(rng, 3000, rate=0.25)))
    for fig in (plots.class_balance(r), plots.estimates(r), plots.threshold_curve(r), plots.reweighted(r)):
        for ax in fig.axes:
            assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    for name in ("class_balance", "estimates", "representativeness", "operating_points", "reweighted"):
        assert len(prior_shift.page_table(r, name)), name


# --- end to end -------------------------------------------------------------------------------------------
@pytest.mark.e2e
def test_prior_shift_scenario_detected(investigated):
    """The fraud rate triples with production labelled: detected from the observed labels."""
    f = investigated("prior_shift", ("prior_shift",))["checks"]["prior_shift"]
    assert f["verdict"] == "detected", f["summary"]
    assert f["evidence"]["estimated"] is False
    assert f["evidence"]["production_positive_rate"] == pytest.approx(0.3, abs=0.02)


@pytest.mark.e2e
def test_prior_shift_scenario_without_labels_is_estimated(scenario, tmp_path):
    """The same scenario with production labels removed: estimated within a few points of 30%."""
    src = scenario("prior_shift").parent
    folder = tmp_path / "nolabels"
    shutil.copytree(src, folder)
    spec = yaml.safe_load((folder / "incident.yaml").read_text())
    path = folder / spec["production"]
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    df = df.drop(columns=spec["columns"]["target"])
    df.to_parquet(path) if path.suffix == ".parquet" else df.to_csv(path, index=False)
    proc = run_cli("run", folder / "incident.yaml", "--checks", "prior_shift", "--out", tmp_path / "out")
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(next((tmp_path / "out").glob("*/findings.json")).read_text())
    f = doc["checks"]["prior_shift"]
    assert f["verdict"] == "detected", f["summary"]
    assert f["evidence"]["estimated"] is True
    assert f["evidence"]["production_positive_rate"] == pytest.approx(0.3, abs=0.03)


@pytest.mark.e2e
def test_prior_shift_clear_on_control(investigated):
    f = investigated("control", ("labels", "prior_shift"))["checks"]["prior_shift"]
    assert f["verdict"] == "clear", f["summary"]


@pytest.mark.e2e
def test_prior_shift_multiclass_detected(investigated):
    f = investigated("prior_shift-multiclass", ("prior_shift",))["checks"]["prior_shift"]
    assert f["verdict"] == "detected", f["summary"]
    assert f["evidence"]["production_class_rates"]["account_takeover"] == pytest.approx(0.2, abs=0.03)


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["control-multiclass", "control-regression"])
def test_prior_shift_other_tasks_clear(investigated, name):
    f = investigated(name, ("labels", "prior_shift"))["checks"]["prior_shift"]
    assert f["verdict"] == "clear", f["summary"]
