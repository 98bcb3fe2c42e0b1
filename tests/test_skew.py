"""Skew: comparison and pattern statistics against known answers, the check on small synthetic
incidents (with and without a model), and end-to-end runs on the scenarios."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from mlinvestigate.checks import skew
from mlinvestigate.stats import skew as st
from tests.helpers import incident_from_frames

RNG = np.random.default_rng(0)
AMOUNT = np.round(np.exp(RNG.normal(3, 1, 4000)), 2)


def pattern_of(served, offline, numeric=True):
    c = st.compare(served, offline, numeric=numeric)
    fn = st.numeric_pattern if numeric else st.categorical_pattern
    return fn(served, offline, c["mismatch"])


# --- statistics -----------------------------------------------------------------------------------
def test_compare_counts_exact_near_and_missing():
    """Missing on both sides matches; a tiny relative difference is near-exact, not exact."""
    c = st.compare([1.0, np.nan, 2.0 * (1 + 1e-9), 5.0, np.nan], [1.0, np.nan, 2.0, 4.0, 3.0])
    assert (c["exact_match_rate"], c["match_rate"], c["mismatches"]) == (0.4, 0.6, 2)
    assert c["served_missing"] == 1 and c["offline_missing"] == 0


@pytest.mark.parametrize("factor", [100.0, 0.01, 1000.0])
def test_scale_factor_recognised_exactly(factor):
    """served = factor × offline gives pattern scale with the factor itself."""
    p = pattern_of(AMOUNT * factor, AMOUNT)
    assert p["pattern"] == "scale" and p["factor"] == factor


def test_scale_survives_rounding_to_whole_cents():
    """Dollars served as rounded cents are still a scale of exactly 100."""
    assert pattern_of(np.round(AMOUNT * 100), AMOUNT) == {"pattern": "scale", "factor": 100.0,
                                                          "rows_affected_share": 1.0}


def test_offset():
    """A constant shift is an offset (a time zone, a changed origin)."""
    assert pattern_of(AMOUNT + 3600.0, AMOUNT) == {"pattern": "offset", "offset": 3600.0}


def test_cap_from_a_shorter_window():
    """Counts capped at 3 are capped, with the cap."""
    counts = RNG.negative_binomial(3, 1 / 3, 4000).astype(float)
    p = pattern_of(np.minimum(counts, 3), counts)
    assert p["pattern"] == "capped" and p["cap"] == 3.0


def test_floor_default_rounding_and_truncation():
    """max(offline, c) is floored; a constant on a few rows is a default; round() is rounded;
    values lower by varying amounts are truncated."""
    assert pattern_of(np.maximum(AMOUNT, 10.0), AMOUNT)["pattern"] == "floored"
    some = np.random.default_rng(1).random(4000) < 0.1
    assert pattern_of(np.where(some, -1.0, AMOUNT), AMOUNT) == {"pattern": "default", "value": -1.0}
    assert pattern_of(np.round(AMOUNT, 1), AMOUNT) == {"pattern": "rounded", "step": 0.1}
    lower = AMOUNT * np.random.default_rng(2).uniform(0.2, 0.9, 4000)
    assert pattern_of(lower, AMOUNT)["pattern"] == "truncated"
    assert pattern_of(AMOUNT + np.random.default_rng(3).normal(size=4000), AMOUNT)["pattern"] == "other"


def test_missing_on_one_side_and_fill_value():
    """Served missing where offline has a value; offline missing where serving filled in 0."""
    some = np.random.default_rng(4).random(4000) < 0.1
    assert pattern_of(np.where(some, np.nan, AMOUNT), AMOUNT)["side"] == "served"
    offline = np.where(some, np.nan, AMOUNT)
    p = pattern_of(np.where(some, 0.0, AMOUNT), offline)
    assert p == {"pattern": "missing", "side": "offline", "rows": int(some.sum()), "fill_value": 0.0}


def test_category_remapping():
    """GB served as UK everywhere: a mapping table offline → served."""
    offline = np.random.default_rng(5).choice(["US", "GB", "DE"], 3000).astype(object)
    served = np.where(offline == "GB", "UK", offline)
    p = pattern_of(served, offline, numeric=False)
    assert p == {"pattern": "category_mapping", "mapping": {"GB": "UK"}, "consistent": 1.0}


def test_unit_change_hint_and_nice_factor():
    """Quantiles ×1000 hint a unit change; ×1.5 or values around zero do not."""
    rng = np.random.default_rng(6)
    assert st.unit_change(AMOUNT, AMOUNT * 1000 * rng.uniform(0.98, 1.02, 4000))["factor"] == 1000.0
    assert st.unit_change(AMOUNT, AMOUNT * 1.5) is None
    assert st.unit_change(rng.normal(size=500), rng.normal(size=500) * 100) is None
    assert (st.nice_factor(99.9999), st.nice_factor(0.0010003), st.nice_factor(2.54)) == (100.0, 0.001, 2.54)


# --- the check ------------------------------------------------------------------------------------
def frames(rng, n: int = 1500):
    amount = np.round(np.exp(rng.normal(3, 1, n)), 2)
    count = rng.negative_binomial(3, 1 / 3, n).astype(np.int64)
    y = (np.log(amount) + 0.3 * count + rng.normal(size=n) > 5).astype(int)
    return pd.DataFrame({"rid": np.arange(n), "amount": amount, "count": count,
                         "country": rng.choice(["US", "GB", "DE"], n), "tip": np.where(rng.random(n) < 0.2, np.nan, 1.0),
                         "label": y, "pred": y})


def make_incident(folder, ref, prod, offline=None, model=None, sha256=None, **columns):
    folder.mkdir(parents=True, exist_ok=True)
    spec = {}
    if offline is not None:
        offline.to_parquet(folder / "offline.parquet")
        spec["serving"] = {"offline": "offline.parquet"}
    if model is not None:
        import joblib

        joblib.dump(model, folder / "model.joblib")
        digest = hashlib.sha256((folder / "model.joblib").read_bytes()).hexdigest()
        spec["model"] = {"path": "model.joblib", "sha256": sha256 or digest}
    return incident_from_frames(folder, ref, prod, {"target": "label", "prediction": "pred", **columns}, **spec)


def skewed(rng):
    """Production served in cents, counts capped, GB renamed, tips filled with 0; offline correct,
    with 50 production ids missing from it and 20 ids it has that production lacks."""
    ref, prod = frames(rng), frames(rng)
    offline = prod.drop(columns=["label", "pred"]).iloc[50:].copy()
    extra = offline.iloc[:20].assign(rid=np.arange(10_000, 10_020))
    offline = pd.concat([offline, extra], ignore_index=True)
    prod = prod.assign(amount=prod["amount"] * 100, count=np.minimum(prod["count"], 3),
                       country=prod["country"].replace({"GB": "UK"}), tip=prod["tip"].fillna(0.0))
    return ref, prod, offline


def test_skew_patterns_and_unjoined_rows(tmp_path):
    """Every planted skew is named with its parameters; unjoined rows counted both ways."""
    ref, prod, offline = skewed(np.random.default_rng(7))
    result = skew.run(make_incident(tmp_path, ref, prod, offline, id="rid"))
    f = result.finding
    assert f.verdict == "detected"
    assert set(f.culprits) == {"amount", "count", "country", "tip"}
    ev = f.evidence["features"]
    assert ev["amount"]["pattern"] == "scale" and ev["amount"]["factor"] == 100.0
    assert ev["amount"]["match_rate"] == 0.0
    assert ev["count"] == {**ev["count"], "pattern": "capped", "cap": 3}
    assert ev["country"]["mapping"] == {"GB": "UK"}
    assert ev["tip"]["pattern"] == "missing" and ev["tip"]["fill_value"] == 0.0
    assert (f.evidence["unjoined_production"], f.evidence["unjoined_offline"]) == (50, 20)
    assert f.evidence["joined_rows"] == 1450
    assert f.evidence["impact"]["available"] is False
    assert list(result.to_df("mappings").itertuples(index=False, name=None)) == [("country", "GB", "UK")]
    assert len(skew.page_table(result)) == 4


def test_ids_of_different_types_still_join(tmp_path):
    """Integer ids in production and text ids offline join; identical values are clear."""
    ref, prod = frames(np.random.default_rng(8)), frames(np.random.default_rng(9))
    offline = prod.drop(columns=["label", "pred"]).assign(rid=prod["rid"].astype(str))
    f = skew.run(make_incident(tmp_path, ref, prod, offline, id="rid")).finding
    assert f.verdict == "clear" and f.evidence["joined_rows"] == len(prod)


def test_no_joined_rows_is_inconclusive(tmp_path):
    """An offline file keyed differently joins nothing: inconclusive, saying to check columns.id."""
    ref, prod = frames(np.random.default_rng(10)), frames(np.random.default_rng(11))
    offline = prod.drop(columns=["label", "pred"]).assign(rid=prod["rid"] + 1_000_000)
    f = skew.run(make_incident(tmp_path, ref, prod, offline, id="rid")).finding
    assert f.verdict == "inconclusive" and "columns.id" in f.summary


def test_skipped_without_offline_with_a_unit_change_hint(tmp_path):
    """No serving.offline: skipped, the summary says what to provide, cents show as a hint only."""
    ref, prod = frames(np.random.default_rng(12)), frames(np.random.default_rng(13))
    prod["amount"] = prod["amount"] * 100
    result = skew.run(make_incident(tmp_path, ref, prod, id="rid"))
    f = result.finding
    assert f.verdict == "skipped" and "serving.offline" in f.summary and f.culprits == []
    assert f.evidence["unit_change_hints"]["amount"]["factor"] == 100.0
    assert list(result.to_df("unit_change_hints")["feature"]) == ["amount"]


def test_skipped_without_id(tmp_path):
    """serving.offline given but no columns.id: skipped, saying to set columns.id."""
    ref, prod = frames(np.random.default_rng(14)), frames(np.random.default_rng(15))
    offline = prod.drop(columns=["label", "pred"])
    f = skew.run(make_incident(tmp_path, ref, prod, offline)).finding
    assert f.verdict == "skipped" and "columns.id" in f.summary


def test_prediction_flips_with_a_trusted_model(tmp_path):
    """Scoring offline and served features counts flips, per skewed feature too; an untrusted
    model file is never loaded."""
    from sklearn.linear_model import LogisticRegression

    ref, prod, offline = skewed(np.random.default_rng(16))
    model = LogisticRegression(max_iter=1000).fit(ref[["amount", "count"]], ref["label"])
    f = skew.run(make_incident(tmp_path, ref, prod, offline, model=model, id="rid")).finding
    impact = f.evidence["impact"]
    assert impact["available"] and impact["rows_scored"] == 1450
    assert 0 < impact["flip_share"] <= 1 and set(impact["per_feature"]) == {"amount", "count"}
    assert impact["per_feature"]["amount"] > impact["per_feature"]["count"]
    assert f.culprits[0] == "amount"

    inc = make_incident(tmp_path / "untrusted", ref, prod, offline, model=model, sha256="0" * 64, id="rid")
    impact = skew.run(inc).finding.evidence["impact"]
    assert impact["available"] is False and "does not match" in impact["reason"]


def test_scatter_grid_uses_log_axes_for_a_scale(tmp_path):
    """A panel per skewed feature; the scale pattern is drawn on log axes."""
    import matplotlib

    matplotlib.use("Agg")
    from mlinvestigate.plots.skew import scatter_grid, served_vs_offline

    ref, prod, offline = skewed(np.random.default_rng(17))
    result = skew.run(make_incident(tmp_path, ref, prod, offline, id="rid"))
    fig = scatter_grid(result)
    assert sum(ax.get_visible() for ax in fig.axes) == 4
    ax = served_vs_offline(result, "amount").axes[0]
    assert ax.get_xscale() == "log" and "served" in ax.get_ylabel() and ax.get_title()


# --- end to end -----------------------------------------------------------------------------------
@pytest.mark.e2e
def test_skew_scenario_names_the_unit_change_and_the_cap(investigated):
    """amount served in cents (×100) and n_tx_7d capped at 3."""
    f = investigated("skew")["checks"]["skew"]
    assert f["verdict"] == "detected"
    assert set(f["culprits"]) == {"amount", "n_tx_7d"}
    assert f["evidence"]["features"]["amount"]["pattern"] == "scale"
    assert f["evidence"]["features"]["amount"]["factor"] == 100.0
    assert f["evidence"]["features"]["n_tx_7d"]["pattern"] == "capped"
    assert f["evidence"]["features"]["n_tx_7d"]["cap"] == 3


@pytest.mark.e2e
def test_skew_skipped_on_control_naming_serving_offline(investigated):
    """Without serving.offline the summary says which file would let the check run."""
    f = investigated("control")["checks"]["skew"]
    assert f["verdict"] == "skipped" and "serving.offline" in f["summary"]


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["control-multiclass", "control-regression"])
def test_leakage_and_skew_run_on_multiclass_and_regression(investigated, name):
    """Neither check fails, and nothing leaks, on the other tasks."""
    checks = investigated(name)["checks"]
    assert checks["skew"]["verdict"] == "skipped"
    assert checks["leakage"]["verdict"] == "clear", checks["leakage"]["summary"]
