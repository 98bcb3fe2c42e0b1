"""Deployment check: versions served, the model file's checksum, and re-scoring."""

from __future__ import annotations

import hashlib
import json

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml

from mlinvestigate import load_incident
from mlinvestigate.checks import deployment
from mlinvestigate.findings import jsonable
from tests.helpers import tiny_incident


def incident_with_model(folder, *, old_share=0.0, labels=(0, 1), task="classification", sha=None,
                        version="2.0", trust=False, rows=1500, version_column=True, seed=0):
    """Reference and production scored by a small model saved next to them; ``old_share`` of
    production is scored by another model logged as version "1.9"."""
    from sklearn.linear_model import LinearRegression, LogisticRegression

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)

    def frame(n):
        x1, x2 = rng.normal(size=n), rng.normal(size=n)
        signal = x1 + 0.5 * rng.normal(size=n)
        y = (np.where(signal > 0.8, labels[1], labels[0]) if task == "classification"
             else np.round(3 * x1 + rng.normal(size=n), 2))
        return pd.DataFrame({"x1": x1, "x2": x2, "label": y,
                             "ts": pd.Timestamp("2026-10-01") + pd.to_timedelta(rng.integers(0, 14 * 86400, n), "s")})

    train = frame(1000)
    X = ["x1", "x2"]
    if task == "classification":
        model, old = LogisticRegression().fit(train[X], train["label"]), LogisticRegression(C=0.01).fit(
            train[X] * 0.5, train["label"])
    else:
        model, old = LinearRegression().fit(train[X], train["label"]), LinearRegression().fit(
            train[X] * 0.5, train["label"])
    joblib.dump(model, folder / "model.joblib")
    ref, prod = frame(rows), frame(rows)
    for df in (ref, prod):
        if task == "classification":
            df["score"] = np.round(model.predict_proba(df[X])[:, 1], 4)
        df["pred"] = np.round(model.predict(df[X]), 2) if task == "regression" else model.predict(df[X])
        df["version"] = "2.0"
    on_old = rng.random(rows) < old_share
    if on_old.any():
        Xo = prod.loc[on_old, X] * 0.5
        if task == "classification":
            prod.loc[on_old, "score"] = np.round(old.predict_proba(Xo)[:, 1], 4)
            prod["pred"] = prod["pred"].astype(object)
            prod.loc[on_old, "pred"] = old.predict(Xo)
        else:
            prod.loc[on_old, "pred"] = np.round(old.predict(Xo), 2)
        prod.loc[on_old, "version"] = "1.9"
    ref.to_parquet(folder / "reference.parquet")
    prod.to_parquet(folder / "production.parquet")
    columns = {"target": "label", "prediction": "pred", "timestamp": "ts"}
    if task == "classification":
        columns["score"] = "score"
    if version_column:
        columns["model_version"] = "version"
    spec = {"name": "dep", "task": task, "reference": "reference.parquet", "production": "production.parquet",
            "columns": columns,
            "model": {"path": "model.joblib", "version": version,
                      "sha256": sha or hashlib.sha256((folder / "model.joblib").read_bytes()).hexdigest()}}
    (folder / "incident.yaml").write_text(yaml.safe_dump(spec))
    return load_incident(folder / "incident.yaml", trust_model=trust)


# --- helpers ------------------------------------------------------------------------------------
@pytest.mark.parametrize("a, b, same", [("2.0", "2.0", True), ("2", "2.0", True), ("v2.0", "2.0", True),
                                        ("V1.9", "1.9", True), ("1.9", "2.0", False), ("main", "Main", True),
                                        ("2.0-rc1", "2.0", False)])
def test_same_version(a, b, same):
    """Versions compare ignoring case, a leading v, and 2 vs 2.0."""
    assert deployment.same_version(a, b) is same


def test_version_text_keeps_floats_readable():
    """A version column read as floats still reads 2.0 and 1.9; missing values are named."""
    out = deployment.version_text(pd.Series([2.0, 1.9, None]))
    assert out.tolist() == ["2.0", "1.9", "(missing)"]


@pytest.mark.parametrize("values, half_unit", [([1.25, 3.5, 10.0], 0.005), ([1.0, 2.0], 0.5),
                                               ([0.123456, 0.5], 5e-7)])
def test_logged_precision(values, half_unit):
    """The tolerance is half a unit of the last decimal the log keeps."""
    assert deployment.logged_precision(values) == pytest.approx(half_unit)


# --- the check ----------------------------------------------------------------------------------
def test_expected_version_serving_and_reproducing_is_clear(tmp_path):
    """One expected version whose predictions the model file reproduces: clear."""
    result = deployment.run(incident_with_model(tmp_path))
    assert result.finding.verdict == "clear", result.finding.summary
    repro = result.to_df("reproduction")
    assert set(repro["set"]) == {"production", "reference"}
    assert (repro["reproduced"] == 1.0).all()


def test_old_version_serving_part_of_traffic(tmp_path):
    """40% served by 1.9: detected, 1.9 the culprit, its rows not reproduced, 2.0's reproduced."""
    result = deployment.run(incident_with_model(tmp_path, old_share=0.4))
    f = result.finding
    assert f.verdict == "detected" and f.culprits == ["1.9"]
    assert f.severity == "critical"
    versions = result.to_df("versions").set_index("version")
    assert versions.loc["1.9", "share"] == pytest.approx(0.4, abs=0.05)
    assert not versions.loc["1.9", "expected"]
    repro = result.to_df("reproduction").set_index(["set", "version"])
    assert repro.loc[("production", "2.0"), "reproduced"] == 1.0
    assert repro.loc[("production", "1.9"), "reproduced"] < 0.1
    over = result.to_df("versions_over_time")
    assert {"2.0", "1.9"} <= set(over.columns)
    json.dumps(jsonable(f.to_dict()))


def test_checksum_mismatch_is_reported_and_the_file_not_loaded(tmp_path):
    """A wrong sha256: the file is not unpickled (nothing re-scored) and the finding says so."""
    result = deployment.run(incident_with_model(tmp_path, sha="0" * 64))
    assert result.finding.verdict == "detected"
    assert "checksum" in result.finding.summary
    assert result.data["model_file"]["loaded"] is False
    assert result.to_df("reproduction").empty


def test_trust_model_loads_a_mismatching_file(tmp_path):
    """With trust_model the file is loaded; reproducing everything, the stale checksum is a note."""
    result = deployment.run(incident_with_model(tmp_path, sha="0" * 64, trust=True))
    assert result.data["model_file"]["loaded"] is True
    assert result.finding.verdict == "clear"
    assert "out of date" in result.finding.evidence["note"]


def test_without_versions_a_different_model_is_found_by_rescoring(tmp_path):
    """No version column: the rows another model scored still show as not reproduced."""
    result = deployment.run(incident_with_model(tmp_path, old_share=0.4, version_column=False))
    assert result.finding.verdict == "detected"
    assert "reproduces the reference predictions but only" in result.finding.summary


def test_string_labels(tmp_path):
    """Classes "approved"/"declined" are compared as labels, score of the positive class."""
    incident = incident_with_model(tmp_path, labels=("approved", "declined"))
    assert deployment.run(incident).finding.verdict == "clear"


def test_regression_with_rounded_predictions(tmp_path):
    """Predictions logged to cents reproduce within the logged rounding."""
    result = deployment.run(incident_with_model(tmp_path, task="regression"))
    assert result.finding.verdict == "clear", result.finding.summary
    assert result.to_df("versions")["mae"].notna().all()


def test_a_file_that_is_not_the_reference_model_is_inconclusive(tmp_path):
    """A model file that reproduces neither side cannot tell which model served production."""
    from sklearn.dummy import DummyClassifier

    incident = incident_with_model(tmp_path, version_column=False)
    X = incident.reference[["x1", "x2"]]
    joblib.dump(DummyClassifier(strategy="constant", constant=1).fit(X, np.ones(len(X), dtype=int)),
                tmp_path / "model.joblib")
    spec = yaml.safe_load((tmp_path / "incident.yaml").read_text())
    spec["model"]["sha256"] = hashlib.sha256((tmp_path / "model.joblib").read_bytes()).hexdigest()
    (tmp_path / "incident.yaml").write_text(yaml.safe_dump(spec))
    result = deployment.run(load_incident(tmp_path / "incident.yaml"))
    assert result.finding.verdict == "inconclusive"
    assert "not the model that made them" in result.finding.summary


def test_skipped_without_versions_or_model(tmp_path):
    """Neither columns.model_version nor model.path: skipped, saying what to provide."""
    f = deployment.run(load_incident(tiny_incident(tmp_path, rows=200))).finding
    assert f.verdict == "skipped"
    assert "model_version" in f.summary and "model.path" in f.summary


def test_versions_without_model_file(tmp_path):
    """Only a version column (no model.path): versions are still checked."""
    def edit(df):
        df["version"] = np.where(np.arange(len(df)) % 10 == 0, "1.9", "2.0")
        return df
    spec = tiny_incident(tmp_path, rows=500, prod_edit=edit, columns_extra={"model_version": "version"},
                         spec_extra={"model": {"version": "2.0"}})
    result = deployment.run(load_incident(spec))
    assert result.finding.culprits == ["1.9"]
    assert deployment.model_file_table(result)["value"].iloc[0].startswith("not given")


# --- scenarios ----------------------------------------------------------------------------------
@pytest.mark.e2e
def test_deployment_scenario(investigated):
    """40% served by 1.9: found, with 1.9 as the culprit."""
    f = investigated("deployment")["checks"]["deployment"]
    assert f["verdict"] == "detected"
    assert f["culprits"][0] == "1.9"


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["control", "control-multiclass", "control-regression"])
def test_controls_are_clear(investigated, name):
    """The expected model serves everything and reproduces: no false alarm."""
    f = investigated(name)["checks"]["deployment"]
    assert f["verdict"] in ("clear", "skipped"), f["summary"]


def test_rescored_rows_only_count_rows_actually_scored(tmp_path):
    """Every re-score attempt failing (the model needs a column neither side has) re-scores nothing:
    no row count is reported; a successful one reports the rows of each side it scored."""
    from sklearn.linear_model import LogisticRegression

    incident = incident_with_model(tmp_path / "ok", rows=400)
    counts = deployment.run(incident).finding.evidence["model_file"]["rescored_rows"]
    assert counts == {"production": 400, "reference": 400}

    incident = incident_with_model(tmp_path / "bad", version_column=False, rows=400)
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"x1": rng.normal(size=50), "x9": rng.normal(size=50)})
    joblib.dump(LogisticRegression().fit(X, (X["x1"] > 0).astype(int)), tmp_path / "bad" / "model.joblib")
    spec = yaml.safe_load((tmp_path / "bad" / "incident.yaml").read_text())
    spec["model"]["sha256"] = hashlib.sha256((tmp_path / "bad" / "model.joblib").read_bytes()).hexdigest()
    (tmp_path / "bad" / "incident.yaml").write_text(yaml.safe_dump(spec))
    result = deployment.run(load_incident(tmp_path / "bad" / "incident.yaml"))
    info = result.finding.evidence["model_file"]
    assert info["loaded"] and len(info["rescore_problems"]) == 2
    assert "rescored_rows" not in info
    assert result.to_df("reproduction").empty
