"""Leakage: single-feature statistics against known answers, the check on small synthetic
incidents, and end-to-end runs on the scenarios."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from mlinvestigate.checks import leakage
from mlinvestigate.stats import leakage as st
from tests.helpers import incident_from_frames

# Two frames as parquet, loaded with a spec (columns default to label/pred/score).
make_incident = partial(incident_from_frames, columns={"target": "label", "prediction": "pred", "score": "score"})


def fraud_frame(rng, n: int, *, shift: float = 0.0) -> pd.DataFrame:
    """Binary world: x1 is genuinely strong (AUC ≈ 0.85), x2 useless, a category with some signal."""
    x1 = rng.normal(size=n) + shift
    y = (x1 - shift + rng.normal(size=n) > 1.0).astype(int)
    score = 1 / (1 + np.exp(-2 * (x1 - shift - 1)))
    return pd.DataFrame({"x1": x1, "x2": rng.normal(size=n),
                         "kind": rng.choice(["a", "b", "c"], n), "label": y,
                         "pred": (score > 0.5).astype(int), "score": score})


# --- statistics -----------------------------------------------------------------------------------
def test_feature_equal_to_target_has_auc_one_and_full_information():
    """A feature that is the target predicts it perfectly and removes all its uncertainty."""
    y = np.random.default_rng(0).integers(0, 2, 2000)
    p = st.cross_validated_power(y.astype(float), y, kind="binary", n_resamples=50)
    assert p.value == pytest.approx(1.0)
    assert p.low == pytest.approx(1.0)
    assert p.information > 0.99


def test_independent_feature_has_auc_near_half():
    """An independent feature sits at chance, its interval covering 0.5."""
    rng = np.random.default_rng(1)
    p = st.cross_validated_power(rng.normal(size=20_000), rng.integers(0, 2, 20_000), kind="binary")
    assert p.value == pytest.approx(0.5, abs=0.02)
    assert p.low <= 0.5 <= p.high
    assert abs(p.information) < 0.02


@pytest.mark.parametrize("x", [np.ones(60), np.full(60, np.nan)], ids=["constant", "all-missing"])
def test_constant_or_empty_feature_is_exactly_chance(x):
    """No values to learn from gives AUC 0.5, never below it from fold-to-fold prior differences."""
    y = np.random.default_rng(2).integers(0, 2, 60)
    assert st.cross_validated_power(x, y, kind="binary", n_resamples=20).value == 0.5


def test_string_multiclass_labels_macro_auc():
    """A feature determining one of three string classes scores 1; one unrelated scores 0.5."""
    rng = np.random.default_rng(3)
    y = rng.choice(["none", "theft", "takeover"], 6000)
    codes = pd.Series(y).map({"none": 0.0, "theft": 1.0, "takeover": 2.0}).to_numpy()
    assert st.cross_validated_power(codes, y, kind="multiclass", exact=True, n_resamples=20).value == 1.0
    noise = st.cross_validated_power(rng.normal(size=6000), y, kind="multiclass", n_resamples=20)
    assert noise.value == pytest.approx(0.5, abs=0.03)


def test_regression_r2_of_a_determining_and_an_unrelated_feature():
    """R² ≈ 1 for y = 2x (binned), ≈ 0 for an unrelated feature."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=20_000)
    assert st.cross_validated_power(x, 2 * x, kind="regression", n_resamples=20).value > 0.99
    assert st.cross_validated_power(rng.normal(size=20_000), 2 * x, kind="regression",
                                    n_resamples=20).value == pytest.approx(0.0, abs=0.01)


def test_disjoint_value_sets_across_classes_are_a_target_function():
    """Values 0–4 for one class and 5–9 for the other: the feature determines the class."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 5000)
    x = (y * 5 + rng.integers(0, 5, 5000)).astype(float)
    assert st.cross_validated_power(x, y, kind="binary", n_resamples=0).information > 0.99


def test_grouped_auc_matches_scikit_learn():
    """The per-bin AUC (ties half) equals roc_auc_score on the expanded rows."""
    rng = np.random.default_rng(6)
    groups = rng.integers(0, 7, 3000)
    score = rng.random(7)
    y = (rng.random(3000) < score[groups]).astype(float)
    counts = np.column_stack([np.bincount(groups, weights=1 - y, minlength=7),
                              np.bincount(groups, weights=y, minlength=7)])
    pred = np.column_stack([1 - score, score])
    ours = st._class_power(pred, counts[None], folds=1)[0]
    assert ours == pytest.approx(roc_auc_score(y, score[groups]))


def test_unseen_category_and_missing_get_their_own_bins():
    """Missing values are code 0; a value never seen when fitting gets the last code."""
    bins = st.fit_bins(np.array([1.0, 2.0, 2.0, np.nan]), exact=True)
    assert list(bins.codes(np.array([np.nan, 1.0, 2.0, 7.0]))) == [0, 1, 2, 3]


def test_difference_interval_of_a_collapse():
    """A feature perfect on one side and useless on the other drops by about 0.5, interval above 0."""
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 3000)
    a = st.cross_validated_power(y.astype(float), y, kind="binary")
    b = st.cross_validated_power(rng.permutation(y).astype(float), y, kind="binary")
    drop, lo, hi = st.difference_interval(a, b)
    assert drop == pytest.approx(0.5, abs=0.05)
    assert 0 < lo <= drop <= hi


def test_model_power_and_skill():
    """A perfect score has AUC 1 (skill 1); hard multiclass predictions that are all right too."""
    y = np.array([0, 0, 1, 1])
    assert st.model_power(y, [0.1, 0.2, 0.8, 0.9], kind="binary", positive=1, is_score=True) == 1.0
    assert st.model_power(np.array(["a", "b", "c"]), np.array(["a", "b", "c"]), kind="multiclass") == 1.0
    assert st.skill(0.75, "binary") == 0.5 and st.skill(0.3, "regression") == 0.3


def test_mutual_information_of_a_copy_is_the_target_entropy():
    """A discrete copy of the target carries all of H(Y); an independent one carries ~nothing."""
    rng = np.random.default_rng(8)
    y = rng.integers(0, 3, 5000)
    mi, share = st.mutual_information(y.astype(float), y, kind="multiclass", discrete=True)
    assert share == pytest.approx(1.0, abs=1e-6)
    assert mi == pytest.approx(np.log(3), abs=0.01)
    _, share = st.mutual_information(rng.normal(size=5000), y, kind="multiclass", discrete=False)
    assert share < 0.02


def test_identifier_profile():
    """A row counter is unique and perfectly monotone; noise is unique but not monotone."""
    assert st.identifier_profile(np.arange(500.0)) == (1.0, 1.0)
    unique, monotone = st.identifier_profile(np.random.default_rng(9).normal(size=500))
    assert unique == 1.0 and monotone < 0.2


def test_shared_rows_and_chance_baseline():
    """Hashes of identical rows match; the chance share is what two halves of one file share."""
    a = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": ["a", "b", "a", "b"]})
    h = st.row_hashes(a)
    assert st.shared_share(h[:2], h) == (2, 1.0)
    assert st.shared_share(st.row_hashes(a.assign(x=a["x"] + 10)), h) == (0, 0.0)
    assert st.duplicate_share([1, 2, 2, 3]) == 0.5
    # the same rows read into other dtypes on the other side (integers, categories) still match
    b = pd.DataFrame({"x": [1, 2, 3, 4], "c": pd.Categorical(["a", "b", "a", "b"], categories=["b", "a"])})
    assert st.shared_share(st.row_hashes(b), h) == (4, 1.0)


def test_period_overlap_and_late_values():
    """Disjoint periods overlap 0 days; late values are those known strictly after prediction."""
    ref = pd.Series(pd.date_range("2026-01-01", periods=10, freq="D"))
    prod = pd.Series(pd.date_range("2026-02-01", periods=10, freq="D"))
    p = st.period_overlap(ref, prod)
    assert p["overlap_days"] == 0 and p["reference_share_in_production_period"] == 0
    assert st.period_overlap(prod, ref)["reference_share_in_production_period"] == 1.0
    known = ref + pd.to_timedelta([0, 0, 1, 0, 0, 0, 0, 0, 0, 2], unit="h")
    assert st.late_share(known, ref) == (2, 0.2, 10)


# --- the check ------------------------------------------------------------------------------------
def test_target_derived_feature_that_collapses_live_is_the_culprit(tmp_path):
    """The classic leak: built from the label offline, unrelated to it live."""
    rng = np.random.default_rng(10)
    ref, prod = fraud_frame(rng, 3000), fraud_frame(rng, 3000)
    ref["refund"] = ref["label"] * (1 + rng.integers(0, 3, 3000))
    prod["refund"] = rng.permutation(ref["refund"].to_numpy())
    result = leakage.run(make_incident(tmp_path, ref, prod))
    f = result.finding
    assert (f.verdict, f.severity, f.culprits) == ("detected", "critical", ["refund"])
    assert f.evidence["features"]["refund"]["production"] == pytest.approx(0.5, abs=0.05)
    assert "refund" in f.summary


@pytest.mark.parametrize("edit", ["honest", "drift", "unit-change"])
def test_strong_drifted_or_skewed_features_are_not_leaks(tmp_path, edit):
    """A genuinely strong feature (AUC ≈ 0.85), shifted or served ×100 live, is clear."""
    rng = np.random.default_rng(11)
    ref = fraud_frame(rng, 3000)
    prod = fraud_frame(rng, 3000, shift=2.0 if edit == "drift" else 0.0)
    if edit == "unit-change":
        prod["x1"] = prod["x1"] * 100
    f = leakage.run(make_incident(tmp_path, ref, prod)).finding
    assert f.verdict == "clear", f.summary
    assert f.culprits == []


def test_implausibly_strong_feature_that_holds_live_is_clear(tmp_path):
    """A feature nearly determining the target on both sides did not break production: clear."""
    rng = np.random.default_rng(19)
    ref, prod = fraud_frame(rng, 3000), fraud_frame(rng, 3000)
    for df in (ref, prod):
        df["status_code"] = df["label"] * 2 + 1
    f = leakage.run(make_incident(tmp_path, ref, prod)).finding
    assert f.verdict == "clear" and "status_code" in f.summary
    assert f.evidence["features"]["status_code"]["status"] == "holds live"


def test_value_known_after_prediction_time(tmp_path):
    """available_at later than the timestamp in some rows is a leak, with its share."""
    rng = np.random.default_rng(12)
    ref, prod = fraud_frame(rng, 500), fraud_frame(rng, 500)
    for df, start in ((ref, "2026-01-01"), (prod, "2026-03-01")):
        df["ts"] = pd.Timestamp(start) + pd.to_timedelta(np.arange(500), unit="min")
        df["x2_known"] = df["ts"]
    ref.loc[:49, "x2_known"] = ref.loc[:49, "ts"] + pd.Timedelta("1D")
    inc = make_incident(tmp_path, ref, prod, columns={"target": "label", "prediction": "pred", "score": "score",
                                                     "timestamp": "ts"},
                        leakage={"available_at": {"x2": "x2_known"}})
    assert "x2_known" not in inc.features
    f = leakage.run(inc).finding
    assert f.verdict == "detected" and f.culprits == ["x2"]
    assert f.evidence["available_at"]["x2"]["reference"]["late_share"] == pytest.approx(0.1)


def test_shared_ids_alone_are_a_warning(tmp_path):
    """Production rows copied from reference: a warning without culprits."""
    rng = np.random.default_rng(13)
    ref, prod = fraud_frame(rng, 1000), fraud_frame(rng, 1000)
    ref["rid"], prod["rid"] = np.arange(1000), np.arange(800, 1800)
    prod.iloc[:200] = ref.iloc[800:].to_numpy()
    f = leakage.run(make_incident(tmp_path, ref, prod, columns={
        "target": "label", "prediction": "pred", "score": "score", "id": "rid"})).finding
    assert (f.verdict, f.severity, f.culprits) == ("detected", "warning", [])
    assert f.evidence["shared_rows"]["id"]["share_of_production"] == pytest.approx(0.2)
    assert f.evidence["shared_rows"]["identical_features"]["excess_share"] == pytest.approx(0.2, abs=0.01)


def test_identifier_that_predicts_the_target(tmp_path):
    """Reference sorted by label with a row counter as a feature: the counter leaks the label."""
    rng = np.random.default_rng(14)
    ref = fraud_frame(rng, 2000).sort_values("label", ignore_index=True)
    prod = fraud_frame(rng, 2000)
    ref["row"], prod["row"] = np.arange(2000.0), np.arange(2000.0, 4000.0)
    f = leakage.run(make_incident(tmp_path, ref, prod)).finding
    assert f.verdict == "detected" and f.culprits[0] == "row"


def test_without_production_labels_a_perfect_feature_is_an_unconfirmed_leak(tmp_path):
    """No live labels: a feature that alone is nearly perfect offline is a warning-level leak."""
    rng = np.random.default_rng(15)
    ref, prod = fraud_frame(rng, 2000), fraud_frame(rng, 2000)
    flipped = rng.random(2000) < 0.02  # nearly, not exactly, the label: strong but no target function
    ref["copy"] = np.where(flipped, 1 - ref["label"], ref["label"]).astype(float)
    prod["copy"] = rng.integers(0, 2, 2000).astype(float)
    prod["label"] = pd.Series([pd.NA] * 2000, dtype="Int64")
    f = leakage.run(make_incident(tmp_path, ref, prod)).finding
    assert (f.verdict, f.severity, f.culprits) == ("detected", "warning", ["copy"])
    assert "no" in f.summary and "labels" in f.summary


def test_multiclass_strings_and_regression(tmp_path):
    """String multiclass labels (no score) and a regression target both find a planted leak."""
    rng = np.random.default_rng(16)
    n = 2000
    classes = np.array(["none", "theft", "takeover"])
    ref = pd.DataFrame({"x": rng.normal(size=n), "label": classes[rng.integers(0, 3, n)]})
    prod = pd.DataFrame({"x": rng.normal(size=n), "label": classes[rng.integers(0, 3, n)]})
    ref["leak"], prod["leak"] = ref["label"], rng.permutation(prod["label"].to_numpy())
    ref["pred"], prod["pred"] = ref["label"], prod["label"]
    f = leakage.run(make_incident(tmp_path / "mc", ref, prod, columns={"target": "label", "prediction": "pred"})).finding
    assert f.culprits == ["leak"]

    ref = pd.DataFrame({"x": rng.normal(size=n)})
    ref["y"] = ref["x"] + rng.normal(size=n)
    prod = ref.sample(frac=1, random_state=0, ignore_index=True).assign(x=rng.normal(size=n))
    ref["leak"], prod["leak"] = ref["y"] * 2, rng.permutation(prod["y"].to_numpy()) * 2
    ref["pred"], prod["pred"] = ref["x"], prod["x"]
    f = leakage.run(make_incident(tmp_path / "reg", ref, prod, task="regression",
                                  columns={"target": "y", "prediction": "pred"})).finding
    assert f.culprits == ["leak"] and f.evidence["metric"] == "r2"


def test_tiny_table_with_empty_and_constant_features_does_not_crash(tmp_path):
    """60 rows, an all-missing and a constant feature, no timestamp, no id: a verdict, no crash."""
    rng = np.random.default_rng(17)
    ref, prod = fraud_frame(rng, 60), fraud_frame(rng, 60)
    for df in (ref, prod):
        df["empty"] = np.nan
        df["same"] = 1.0
    result = leakage.run(make_incident(tmp_path, ref, prod))
    assert result.finding.verdict in ("clear", "inconclusive")
    # a feature with no values in either file is left out of every comparison when loading
    assert set(result.to_df()["feature"]) == {"x1", "x2", "kind", "same"}
    assert isinstance(leakage.page_table(result), pd.DataFrame)
    assert "60" in leakage.sample_note(result)


def test_power_chart_draws_every_feature(tmp_path):
    """The chart has a bar per feature and side, a title and labelled axes."""
    import matplotlib

    matplotlib.use("Agg")
    from mlinvestigate.plots.leakage import power_chart

    rng = np.random.default_rng(18)
    result = leakage.run(make_incident(tmp_path, fraud_frame(rng, 300), fraud_frame(rng, 300)), n_resamples=20)
    fig = power_chart(result)
    ax = fig.axes[0]
    assert ax.get_title() and "ROC AUC" in ax.get_xlabel()
    assert len(ax.patches) == 2 * len(result.to_df())


# --- end to end -----------------------------------------------------------------------------------
@pytest.mark.e2e
def test_leakage_scenario_names_chargeback_count(investigated):
    """The planted leak is found and blamed first."""
    f = investigated("leakage")["checks"]["leakage"]
    assert f["verdict"] == "detected"
    assert f["culprits"][0] == "chargeback_count"


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["control", "drift"])
def test_leakage_clear_on_control_and_drift(investigated, name):
    """Nothing leaks in control, and drifted features are not leaks."""
    f = investigated(name)["checks"]["leakage"]
    assert f["verdict"] == "clear", f["summary"]


def test_a_wide_table_gets_point_values_for_every_feature_and_intervals_where_they_matter(tmp_path):
    """200 noise columns and a leak: every feature gets its point values (computed all at once), the
    leak and the strongest features get intervals and mutual information, the verdict is the same
    as feature by feature, and the page says what was detailed."""
    rng = np.random.default_rng(31)
    n = 800
    ref, prod = fraud_frame(rng, n), fraud_frame(rng, n)
    names = [f"n{j:03d}" for j in range(200)]
    ref, prod = (pd.concat([df, pd.DataFrame(rng.normal(size=(n, 200)), columns=names)], axis=1) for df in (ref, prod))
    ref["leak"] = ref["label"] + 0.1 * rng.normal(size=n)
    prod["leak"] = rng.normal(size=n)
    result = leakage.run(make_incident(tmp_path, ref, prod), n_resamples=50)
    assert result.finding.verdict == "detected" and result.finding.culprits == ["leak"]
    table = result.to_df("features").set_index("feature")
    assert len(table) == 204 and table["reference"].notna().all() and table["production"].notna().all()
    detailed = table["reference_low"].notna()
    assert detailed["leak"] and detailed["x1"] and leakage.DETAIL_FEATURES <= detailed.sum() < 60
    assert table.loc[detailed, "mutual_information"].notna().all()
    assert table.loc[~detailed, "mutual_information"].isna().all()
    one = st.cross_validated_power(st.as_numbers(ref["x2"]), ref["label"].to_numpy(object), kind="binary",
                                   n_resamples=0, seed=0)
    assert table.loc["x2", "reference"] == pytest.approx(one.value, abs=1e-12)
    assert f"of the {len(table):,} features" in leakage.sample_note(result)
