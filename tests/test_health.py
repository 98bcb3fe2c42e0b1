"""Health check: serving statuses, volume, latency, missing predictions and input quality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlinvestigate import load_incident
from mlinvestigate.checks import health
from mlinvestigate.stats.triage_serving import (
    chance_out_of_range,
    chance_unseen,
    grouped_quantiles,
    out_of_range_p,
    poisson_upper,
    status_kind,
    status_kinds,
)
from tests.helpers import tiny_incident

SERVING = {"status": "status", "latency_ms": "latency_ms"}


def serving(*, errors=0.0, timeouts=0.0, statuses=("ok", "error", "timeout"), slow_after=None, seed=1):
    """A prod_edit adding status and latency columns (a healthy service unless told otherwise)."""
    def edit(df):
        rng = np.random.default_rng(seed)
        df["status"] = rng.choice(list(statuses), len(df), p=[1 - errors - timeouts, errors, timeouts])
        latency = rng.lognormal(np.log(20), 0.3, len(df))
        if slow_after is not None:
            latency = np.where(df["ts"] >= pd.Timestamp(slow_after), latency * 4, latency)
        df["latency_ms"] = latency
        return df
    return edit


def run(tmp_path, *, prod_edit=None, ref_edit=None, columns=SERVING, expected=None, thresholds=None, rows=2000):
    spec_extra = {}
    if expected:
        spec_extra["expected"] = expected
    if thresholds:
        spec_extra["thresholds"] = thresholds
    spec = tiny_incident(tmp_path, rows=rows, prod_edit=prod_edit or serving(), ref_edit=ref_edit,
                         columns_extra=columns, spec_extra=spec_extra)
    return health.run(load_incident(spec))


# --- statistics ---------------------------------------------------------------------------------
@pytest.mark.parametrize("value, kind", [
    ("ok", "ok"), ("OK", "ok"), (" Success ", "ok"), ("succeeded", "ok"), (200, "ok"), ("204", "ok"),
    (200.0, "ok"), (True, "ok"), ("timeout", "timeout"), ("TIMED_OUT", "timeout"),
    ("DEADLINE_EXCEEDED", "timeout"), (504, "timeout"), ("408", "timeout"), ("error", "error"),
    ("500", "error"), ("fallback", "error"), (False, "error"), (None, "missing"), (np.nan, "missing"),
    ("", "missing"),
])
def test_status_kind(value, kind):
    """Statuses are read leniently: casing, HTTP codes and timeout spellings."""
    assert status_kind(value) == kind


def test_status_kinds_classifies_each_distinct_value_once():
    """The vectorised form agrees with the scalar one, missing values included."""
    s = pd.Series(["ok", "OK", None, "error", "timeout", "ok"], dtype=object)
    assert status_kinds(s).tolist() == ["ok", "ok", "missing", "error", "timeout", "ok"]


def test_grouped_quantiles_match_numpy_and_bracket_the_truth():
    """Point quantiles equal numpy's per group; intervals contain the distribution's quantile."""
    rng = np.random.default_rng(0)
    values = rng.exponential(size=6000)
    groups = rng.integers(0, 3, 6000)
    out = grouped_quantiles(values, groups, 4)
    for g in range(3):
        assert out["p95"][g] == pytest.approx(np.quantile(values[groups == g], 0.95))
        assert out["p95_low"][g] <= -np.log(0.05) <= out["p95_high"][g]
    assert out["rows"][3] == 0 and np.isnan(out["p95"][3])


def test_out_of_range_p_allows_for_a_narrow_reference_range():
    """A small reference's range is narrow by luck: the beta-binomial p-value is far less
    alarmed than a binomial one at the average chance rate, and zero exceedances give 1."""
    from scipy import stats

    assert out_of_range_p(0, 300, 300) == 1.0
    assert out_of_range_p(9, 300, 300) > 10 * stats.binom.sf(8, 300, chance_out_of_range(300))
    assert out_of_range_p(100, 6000, 6000) < 1e-9


def test_poisson_upper_and_chance_rates():
    """Known answers: Garwood bounds, 2/(n+1) outside the range, Good–Turing unseen share."""
    assert float(poisson_upper(0)) == pytest.approx(3.689, abs=1e-3)
    assert chance_out_of_range(99) == pytest.approx(0.02)
    assert chance_unseen([5, 1, 1, 3]) == pytest.approx(0.2)


# --- the check ----------------------------------------------------------------------------------
def test_healthy_service_is_clear(tmp_path):
    """A healthy service with a few errors comes out clear, with nothing failing."""
    result = run(tmp_path, prod_edit=serving(errors=0.002, timeouts=0.001),
                 expected={"latency_p95_ms": 50, "daily_volume": 100})
    assert result.finding.verdict == "clear", result.finding.summary
    assert result.finding.culprits == []
    assert (result.to_df("signals")["status"] != "failing").all()


def test_errors_timeouts_and_casing(tmp_path):
    """6% errors and 3% timeouts fire, with "OK" read as a success."""
    result = run(tmp_path, prod_edit=serving(errors=0.06, timeouts=0.03, statuses=("OK", "ERROR", "Timeout")))
    assert result.finding.verdict == "detected"
    assert set(result.finding.culprits) >= {"error_rate", "timeout_rate"}
    assert result.finding.severity == "critical"


def test_a_few_errors_in_a_small_log_do_not_fire(tmp_path):
    """2 errors in 60 requests (3%) is not enough evidence of a rate above 1%."""
    def edit(df):
        df = serving()(df)
        df["status"] = "ok"
        df.loc[df.index[:2], "status"] = "error"
        return df
    result = run(tmp_path, prod_edit=edit, rows=60)
    assert "error_rate" not in result.finding.culprits


def test_thresholds_are_overridable(tmp_path):
    """Raising thresholds.health.error_rate above the observed rate silences the signal."""
    result = run(tmp_path, prod_edit=serving(errors=0.06), thresholds={"health": {"error_rate": 0.2}})
    assert "error_rate" not in result.finding.culprits


def test_missing_inputs_and_absent_features(tmp_path):
    """A feature missing for 20% of rows, and one absent from production, are both culprits."""
    def edit(df):
        df = serving()(df)
        df.loc[np.random.default_rng(3).random(len(df)) < 0.2, "x2"] = np.nan
        return df.drop(columns=["device"])
    result = run(tmp_path, prod_edit=edit)
    assert result.finding.culprits[:2] == ["missing:device", "missing:x2"]
    assert result.finding.severity == "critical"


def test_out_of_range_and_unseen_categories(tmp_path):
    """Values far outside reference and a category reference never saw are flagged."""
    def edit(df):
        df = serving()(df)
        df["x1"] = df["x1"] * 100
        df.loc[df.index[: len(df) // 5], "device"] = "tablet"
        return df
    result = run(tmp_path, prod_edit=edit)
    assert {"out_of_range:x1", "unseen:device"} <= set(result.finding.culprits)
    assert "out_of_range:x2" not in result.finding.culprits


def test_rows_without_a_prediction(tmp_path):
    """Successful requests logged without a prediction are counted; failed ones are not."""
    def edit(df):
        df = serving(errors=0.05)(df)
        df["pred"] = df["pred"].astype(object)
        df.loc[df["status"] == "error", "pred"] = None
        return df
    result = run(tmp_path, prod_edit=edit)
    assert "no_prediction" not in result.finding.culprits

    def edit_empty(df):
        df = serving()(df)
        df["pred"] = df["pred"].astype(str)
        df.loc[df.index[:100], "pred"] = ""
        return df
    result = run(tmp_path / "empty", prod_edit=edit_empty)
    assert "no_prediction" in result.finding.culprits


def test_slow_days_and_volume_drops(tmp_path):
    """Days slower than the expected P95, and days with a fraction of the volume, fire."""
    def edit(df):
        df = serving(slow_after="2026-10-15")(df)
        late = df["ts"] >= pd.Timestamp("2026-10-17")
        keep = ~late | (np.random.default_rng(4).random(len(df)) < 0.2)
        return df[keep]
    result = run(tmp_path, prod_edit=edit, rows=4000, expected={"latency_p95_ms": 50, "daily_volume": 200})
    assert {"latency_p95", "volume"} <= set(result.finding.culprits)
    daily = result.to_df("daily")
    assert daily["latency_p95_ms"].iloc[-2] > 50


def test_absent_serving_columns_are_not_checked(tmp_path):
    """Without status, latency or timestamp the signals are 'not checked', never failures."""
    spec = tiny_incident(tmp_path, rows=300)
    incident = load_incident(spec)
    result = health.run(incident)
    signals = result.to_df("signals").set_index("signal")
    assert signals.loc["error_rate", "status"] == "not checked"
    assert signals.loc["latency_p95", "status"] == "not checked"
    assert result.finding.verdict == "clear"
    assert "Not checked" in result.finding.summary


def test_evidence_is_json_serialisable(tmp_path):
    """The finding survives findings.jsonable and the page tables build."""
    import json

    from mlinvestigate.findings import jsonable

    result = run(tmp_path, prod_edit=serving(errors=0.05), expected={"latency_p95_ms": 50})
    json.dumps(jsonable(result.finding.to_dict()))
    assert len(health.daily_page_table(result)) == len(result.to_df("daily"))
    assert list(health.inputs_page_table(result)["feature"])


# --- scenarios ----------------------------------------------------------------------------------
@pytest.mark.e2e
def test_health_scenario(investigated):
    """Errors, timeouts, slow days and a missing feature are all found, the feature first."""
    f = investigated("health")["checks"]["health"]
    assert f["verdict"] == "detected"
    assert f["culprits"][0] == "missing:distance_km"
    assert {"error_rate", "latency_p95"} <= set(f["culprits"])


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["control", "control-multiclass", "control-regression"])
def test_controls_are_clear(investigated, name):
    """Nothing wrong with serving: no false alarm."""
    f = investigated(name)["checks"]["health"]
    assert f["verdict"] == "clear", f["summary"]
