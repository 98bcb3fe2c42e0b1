"""Measurement check: same metric both sides, label coverage and bias, class balance, labels."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from mlinvestigate import load_incident
from mlinvestigate.checks import measurement
from mlinvestigate.findings import jsonable
from mlinvestigate.metrics import classification_metrics, metric_table, regression_metrics
from mlinvestigate.stats.triage_labels import (
    auc_interval,
    calibration,
    column_differences,
    effective_size,
    weighted_mean,
)
from mlinvestigate.stats.triage_values import text_codes
from tests.helpers import tiny_incident


def labelled(rule):
    """A prod_edit keeping the label only where ``rule(df, rng)`` is true."""
    def edit(df):
        keep = rule(df, np.random.default_rng(5))
        df["label"] = df["label"].astype(object)
        df.loc[~keep, "label"] = None
        return df
    return edit


def write(folder, ref: pd.DataFrame, prod: pd.DataFrame, columns: dict, task="classification"):
    folder.mkdir(parents=True, exist_ok=True)
    ref.to_parquet(folder / "ref.parquet")
    prod.to_parquet(folder / "prod.parquet")
    (folder / "incident.yaml").write_text(yaml.safe_dump({
        "name": "m", "task": task, "reference": "ref.parquet", "production": "prod.parquet", "columns": columns}))
    return load_incident(folder / "incident.yaml")


# --- statistics ---------------------------------------------------------------------------------
def test_metric_table_points_equal_the_metric_functions(tmp_path):
    """Bootstrapping once per resample keeps every point value and brackets it."""
    incident = load_incident(tiny_incident(tmp_path, rows=800))
    table = metric_table(incident, {"reference": incident.reference}, n_resamples=50)
    ref = incident.reference
    expected = classification_metrics(ref["label"].to_numpy(object), ref["pred"].to_numpy(object),
                                       score=ref["score"].to_numpy(float), positive=incident.positive_label)
    got = table.set_index("metric")
    for metric, value in expected.items():
        assert got.loc[metric, "value"] == pytest.approx(value)
        assert got.loc[metric, "ci_low"] <= value <= got.loc[metric, "ci_high"]
    again = metric_table(incident, {"reference": incident.reference}, n_resamples=50)
    pd.testing.assert_frame_equal(table, again)


def test_metric_table_regression():
    """Regression metrics through the same bootstrap."""
    rng = np.random.default_rng(0)
    y = rng.normal(size=500)
    pred = y + rng.normal(size=500) * 0.5

    class Incident:  # the few attributes metric_table reads
        target, prediction, score, kind, is_classification = "y", "p", None, "regression", False

    table = metric_table(Incident(), {"x": pd.DataFrame({"y": y, "p": pred})}).set_index("metric")
    for metric, value in regression_metrics(y, pred).items():
        assert table.loc[metric, "value"] == pytest.approx(value)


def test_calibration_error():
    """Labels drawn from the score: small error; the cube of the score as score: large error."""
    rng = np.random.default_rng(1)
    p = rng.random(20_000)
    y = (rng.random(20_000) < p).astype(float)
    ece, table = calibration(y, p)
    assert ece < 0.02 and len(table) == 10
    assert calibration(y, p**3)[0] > 0.1


def test_auc_interval_and_weights():
    """Hanley–McNeil shrinks with rows; the Hájek mean and Kish's size have known values."""
    lo, hi = auc_interval(0.5, 1000, 1000)
    assert lo < 0.5 < hi and hi - lo == pytest.approx(0.0506, abs=1e-3)
    assert weighted_mean([1, 0, np.nan], [3, 1, 5]) == pytest.approx(0.75)
    assert effective_size([1, 1, 1, 1]) == 4 and effective_size([1, 0, 0, 0]) == 1


def test_column_differences():
    """A shifted number has a standardised difference near the shift; categories their TV distance."""
    rng = np.random.default_rng(2)
    mask = np.arange(4000) < 2000
    df = pd.DataFrame({"a": rng.normal(size=4000) + mask, "c": np.where(mask, "x", rng.choice(["x", "y"], 4000))})
    out = column_differences(df, mask, {"a": "numeric", "c": "categorical"}).set_index("column")
    assert out.loc["a", "effect"] == pytest.approx(1.0, abs=0.1)
    assert out.loc["c", "effect"] == pytest.approx(0.5, abs=0.05)


def test_text_codes_merge_numbers_and_text():
    """1, 1.0 and "1" are one label; missing values get -1."""
    codes, labels = text_codes(pd.Series([1, "1", 1.0, None, "a"], dtype=object))
    assert labels == ["1", "a"] and codes.tolist() == [0, 0, 0, -1, 1]


# --- the check ----------------------------------------------------------------------------------
def test_labels_at_random_are_a_fair_sample(tmp_path):
    """Half the production rows labelled at random: clear, AUC near 0.5."""
    spec = tiny_incident(tmp_path, rows=3000, prod_edit=labelled(lambda df, rng: rng.random(len(df)) < 0.5))
    result = measurement.run(load_incident(spec))
    assert result.finding.verdict == "clear", result.finding.summary
    assert result.finding.evidence["labelling"]["auc"] < 0.6
    json.dumps(jsonable(result.finding.to_dict()))


def test_biased_labels_are_detected_with_a_fair_estimate(tmp_path):
    """Labels only for flagged rows plus 5% of the rest: detected, and the estimate for all rows
    is close to the accuracy on every row (known here, since the generator labels them all)."""
    every_row = {}

    def review_flagged(df, rng):
        every_row["accuracy"] = float((df["label"] == df["pred"]).mean())
        return (df["pred"] == 1) | (rng.random(len(df)) < 0.05)
    spec = tiny_incident(tmp_path, rows=5000, prod_edit=labelled(review_flagged))
    result = measurement.run(load_incident(spec))
    f = result.finding
    assert f.verdict == "detected", f.summary
    assert "not a fair sample" in f.summary
    truth = every_row["accuracy"]
    assert f.evidence["fair_production"] == pytest.approx(truth, abs=0.03)
    assert abs(f.evidence["production"]["value"] - truth) > 0.05
    assert "class shares" not in f.summary  # the labelled rows' class mix reflects the labelling


def test_class_balance_artefact(tmp_path):
    """Positives tripled in production: accuracy moves, balanced accuracy does not."""
    def more_positives(df):
        pos = df[df["label"] == 1]
        return pd.concat([df, pos, pos], ignore_index=True)
    spec = tiny_incident(tmp_path, rows=4000, prod_edit=more_positives)
    f = measurement.run(load_incident(spec)).finding
    assert f.verdict == "detected", f.summary
    assert "balanced accuracy" in f.summary
    assert f.evidence["class_balance"]["misleading"]


def test_incomparable_labels(tmp_path):
    """Production predictions logged as yes/no while reference uses 0/1: the sides do not compare."""
    def words(df):
        df["pred"] = np.where(df["pred"] == 1, "yes", "no")
        return df
    f = measurement.run(load_incident(tiny_incident(tmp_path, rows=500, prod_edit=words))).finding
    assert f.verdict == "detected"
    assert "values reference never had" in f.summary
    assert f.severity == "critical"


def test_too_few_labels_is_inconclusive(tmp_path):
    """20 labelled production rows are too few to judge the gap."""
    spec = tiny_incident(tmp_path, rows=2000, prod_edit=labelled(lambda df, rng: np.arange(len(df)) < 20))
    f = measurement.run(load_incident(spec)).finding
    assert f.verdict == "inconclusive"
    assert "too few" in f.summary


def test_no_production_labels_estimates_from_the_score(tmp_path):
    """No labels at all: inconclusive, with the score-based estimate when calibrated."""
    spec = tiny_incident(tmp_path, rows=2000, prod_edit=labelled(lambda df, rng: np.zeros(len(df), bool)))
    result = measurement.run(load_incident(spec))
    assert result.finding.verdict == "inconclusive"
    assert "no labelled rows" in result.finding.summary
    assert "From the calibrated score" in result.finding.summary
    assert result.to_df("estimates")["estimate"].iloc[-1].startswith("production, all rows (from the score")


def test_multiclass_string_labels_and_no_score(tmp_path):
    """Three string classes, no score, no timestamp: metrics, confusion matrix, clear."""
    rng = np.random.default_rng(4)

    def frame(n):
        y = rng.choice(["none", "theft", "takeover"], n, p=[0.7, 0.2, 0.1])
        pred = np.where(rng.random(n) < 0.85, y, rng.choice(["none", "theft", "takeover"], n))
        return pd.DataFrame({"x": rng.normal(size=n), "fraud_type": y, "pred": pred})
    incident = write(tmp_path, frame(2000), frame(2000), {"target": "fraud_type", "prediction": "pred"})
    result = measurement.run(incident)
    assert result.finding.verdict == "clear", result.finding.summary
    cm = result.to_df("confusion_production")
    assert cm.shape == (3, 3) and cm.to_numpy().sum() == 2000
    assert result.to_df("windows").empty
    assert set(measurement.metrics_wide(result)["metric"]) >= {"accuracy", "balanced_accuracy", "f1"}


def test_binary_string_labels(tmp_path):
    """approved/declined with positive_label declined and a score: the score is read for that class."""
    rng = np.random.default_rng(6)

    def frame(n):
        p = rng.random(n)
        y = np.where(rng.random(n) < p, "declined", "approved")
        return pd.DataFrame({"x": rng.normal(size=n), "decision": y, "pred": np.where(p > 0.5, "declined", "approved"),
                             "p_decline": p})
    incident = write(tmp_path, frame(3000), frame(3000), {"target": "decision", "prediction": "pred",
                                                          "score": "p_decline", "positive_label": "declined"})
    result = measurement.run(incident)
    assert result.finding.verdict == "clear", result.finding.summary
    assert result.finding.evidence["confidence_estimate"]["calibrated"]
    assert "roc_auc" in set(result.to_df("metrics")["metric"])


def test_regression(tmp_path):
    """Regression: MAE, RMSE, MAPE, R² with intervals; labels at random are fair."""
    rng = np.random.default_rng(7)

    def frame(n):
        x = rng.normal(size=n)
        y = 3 * x + rng.normal(size=n)
        return pd.DataFrame({"x": x, "y": y, "pred": 3 * x})
    prod = frame(2000)
    prod.loc[rng.random(2000) < 0.3, "y"] = np.nan
    incident = write(tmp_path, frame(2000), prod, {"target": "y", "prediction": "pred"}, task="regression")
    result = measurement.run(incident)
    assert result.finding.verdict == "clear", result.finding.summary
    assert set(result.to_df("metrics")["metric"]) == {"mae", "rmse", "mape", "r2"}
    assert "class_balance" not in result.tables


# --- scenarios ----------------------------------------------------------------------------------
@pytest.mark.e2e
def test_measurement_scenario(investigated):
    """Labels only for flagged payments: the comparison is misleading, and the fair number is near offline."""
    doc = investigated("measurement")
    f = doc["checks"]["measurement"]
    assert f["verdict"] == "detected"
    assert f["evidence"]["labels_biased"]
    assert abs(f["evidence"]["fair_production"] - doc["metric"]["reference"]) < 0.03


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["control", "control-multiclass", "control-regression"])
def test_controls_are_clear(investigated, name):
    """The controls measure the same thing on both sides."""
    f = investigated(name)["checks"]["measurement"]
    assert f["verdict"] == "clear", f["summary"]


def test_labels_only_for_flagged_rows_cannot_be_reweighted(tmp_path):
    """Labels only for rows scored above 0.4: labelled rows are told apart with AUC near 1, most of
    traffic has no chance of a label, so reweighting is refused and the label-free estimate (with
    its interval) stands for all rows; measurement ranks first and the label check follows from it."""
    import pandas as pd
    import yaml

    from mlinvestigate import checks, load_incident, scenarios
    from mlinvestigate.diagnosis import explained_by, rank

    spec = scenarios.make("control", tmp_path / "inc", rows=5000)
    data = yaml.safe_load(spec.read_text())
    cols = data["columns"]
    prod = pd.read_parquet(spec.parent / data["production"])
    prod[cols["target"]] = prod[cols["target"]].astype(float).where(prod[cols["score"]] > 0.4)
    prod.to_parquet(spec.parent / "flagged.parquet")
    data["production"] = "flagged.parquet"
    spec.write_text(yaml.safe_dump(data))
    inc = load_incident(spec)
    found = {c: checks.run(c, inc).finding.to_dict() for c in ("measurement", "labels", "prior_shift", "drift")}
    m = found["measurement"]
    assert m["verdict"] == "detected" and m["evidence"]["labels_biased"]
    assert m["evidence"]["labels_correctable"] is False
    assert m["evidence"]["labelling"]["unsupported_share"] > 0.3
    assert m["evidence"]["fair_from"] == "confidence_based" and m["evidence"]["fair_production_ci"]
    assert "cannot be reweighted" in m["summary"] and "fair sample: labelled" not in m["summary"]
    assert abs(m["evidence"]["fair_production"] - m["evidence"]["reference"]["value"]) < 0.05
    ranking = rank(found)
    assert ranking[0] == "measurement", ranking
    for cid in ranking[1:]:
        assert explained_by(found).get(cid) == "measurement", (cid, explained_by(found))
