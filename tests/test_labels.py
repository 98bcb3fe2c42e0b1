"""Labels: confident-learning statistics against known answers, the check on small synthetic
incidents (noisy sources, prior shift, renamed classes, regression, tiny tables), end-to-end runs."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest
from cleanlab.count import num_label_issues
from scipy.special import expit, logit

from mlinvestigate.checks import labels
from mlinvestigate.stats import labels as sl
from mlinvestigate.stats.proportions import proportion_difference
from tests.helpers import incident_from_frames

COLUMNS = {"target": "label", "prediction": "pred", "score": "score", "id": "rid", "label_source": "source"}


make_incident = partial(incident_from_frames, columns=COLUMNS)


def world(rng, n: int, *, rate: float = 0.1, first_id: int = 0) -> pd.DataFrame:
    """Label-shift world: y first, then x | y; the score is the exact posterior at a 10% prior."""
    y = rng.random(n) < rate
    x1 = rng.normal(1.8 * y, 1.0)
    web = rng.random(n) < np.where(y, 0.6, 0.3)
    llr = 1.8 * x1 - 1.62 + np.where(web, np.log(2.0), np.log(0.4 / 0.7))
    score = expit(llr + logit(0.1))
    return pd.DataFrame({"rid": np.arange(first_id, first_id + n), "x1": x1, "x2": rng.normal(size=n),
                         "channel": np.where(web, "web", "app"), "label": y.astype(int),
                         "pred": (score >= 0.5).astype(int), "score": score, "source": "analyst"})


def flip(rng, df: pd.DataFrame, share: float, source: str, flip_rate: float) -> pd.DataFrame:
    """Hand ``share`` of the rows to ``source``, which flips ``flip_rate`` of its labels."""
    df = df.copy()
    theirs = rng.random(len(df)) < share
    flipped = theirs & (rng.random(len(df)) < flip_rate)
    df.loc[theirs, "source"] = source
    df.loc[flipped, "label"] = 1 - df.loc[flipped, "label"]
    return df


# --- statistics -------------------------------------------------------------------------------------
def test_planted_flips_are_found_at_their_rate():
    """10% of labels flipped at random: confident learning estimates about 10% label issues."""
    rng = np.random.default_rng(0)
    n, k = 6000, 3
    y = rng.integers(0, k, n)
    X = rng.normal(size=(n, 4)) + 3.0 * np.eye(k, 4)[y]
    noisy = y.copy()
    flipped = rng.random(n) < 0.10
    noisy[flipped] = (y[flipped] + rng.integers(1, k, flipped.sum())) % k
    oof, _ = sl.cross_validated_probabilities(X, noisy, k)
    thresholds = sl.confident_thresholds(noisy, oof)
    flags = sl.issue_flags(noisy, oof, thresholds)
    assert flags.mean() == pytest.approx(0.10, abs=0.025)
    assert flags[flipped].mean() > 0.6  # most flipped rows are found …
    assert flags[~flipped].mean() < 0.05  # … and few clean ones
    # the rule with reference thresholds passed in is cleanlab's own count on reference
    assert flags.sum() == num_label_issues(noisy, oof)


def test_clean_labels_are_flagged_at_the_expected_rate():
    """Labels drawn from calibrated probabilities are flagged as often as the model's uncertainty predicts."""
    rng = np.random.default_rng(1)
    probs = rng.dirichlet([0.6, 0.6, 0.6], size=40_000)
    y = (rng.random(len(probs))[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    thresholds = sl.confident_thresholds(y, probs)
    flags = sl.issue_flags(y, probs, thresholds)
    expected = sl.expected_issue_probability(probs, thresholds)
    assert flags.mean() > 0.05  # clean labels are flagged too
    assert flags.mean() == pytest.approx(expected.mean(), abs=0.006)


def test_prior_weights_recover_a_known_class_balance_change():
    """Labels drawn at a new balance from re-weighted probabilities give those weights back."""
    rng = np.random.default_rng(2)
    probs = rng.dirichlet([1.0, 1.0, 1.0], size=30_000)
    true_w = np.array([1.0, 3.0, 0.5])
    shifted = sl.adjust_priors(probs, true_w)
    y = (rng.random(len(probs))[:, None] > np.cumsum(shifted, axis=1)).sum(axis=1)
    w = sl.fit_prior_weights(probs, y)
    assert w == pytest.approx(true_w, rel=0.08)


def test_temperature_softens_overconfident_probabilities():
    """Probabilities squared towards 0/1 are undone by a temperature near 2."""
    rng = np.random.default_rng(3)
    p1 = rng.uniform(0.02, 0.98, 50_000)
    y = (rng.random(len(p1)) < p1).astype(int)
    sharp = sl.apply_temperature(np.column_stack([1 - p1, p1]), 0.5)
    assert sl.fit_temperature(sharp, y) == pytest.approx(2.0, rel=0.05)


def test_robust_z_and_proportion_difference():
    """Robust scale of a normal sample is its SD; equal proportions are not different."""
    v = np.random.default_rng(4).normal(3.0, 2.0, 100_000)
    centre, scale = sl.robust_location_scale(v)
    assert centre == pytest.approx(3.0, abs=0.03) and scale == pytest.approx(2.0, rel=0.02)
    d, p = proportion_difference(50, 100, 50, 100)
    assert float(d) == 0.0 and float(p) == pytest.approx(1.0)


# --- the check --------------------------------------------------------------------------------------
def test_control_is_clear(tmp_path):
    """Same world, same labellers: clear, with similar issue rates in both periods."""
    rng = np.random.default_rng(10)
    inc = make_incident(tmp_path, world(rng, 3000), world(rng, 3000, first_id=10_000))
    r = labels.run(inc)
    assert r.finding.verdict == "clear", r.finding.summary
    ev = r.finding.evidence
    assert ev["reference_issue_rate"] > 0  # clean data still has issues …
    assert abs(ev["production_issue_rate"] - ev["reference_issue_rate"]) < 0.02  # … at the same rate


def test_noisy_new_source_is_named(tmp_path):
    """A new source labelling 30% of production, with 15% of its labels flipped, is the culprit."""
    rng = np.random.default_rng(11)
    prod = flip(rng, world(rng, 3000, first_id=10_000), 0.3, "vendor_x", 0.15)
    r = labels.run(make_incident(tmp_path, world(rng, 3000), prod))
    f = r.finding
    assert f.verdict == "detected", f.summary
    assert f.culprits[0] == "vendor_x"
    assert "analyst" not in f.culprits
    assert f.evidence["new_sources"] == ["vendor_x"]
    review = r.to_df("review")
    assert (review.loc[review["side"] == "production", "label_source"] == "vendor_x").mean() > 0.7


def test_prior_shift_alone_is_not_a_label_problem(tmp_path):
    """Production with three times the positives and the same P(x | y): labels stay clear."""
    rng = np.random.default_rng(12)
    r = labels.run(make_incident(tmp_path, world(rng, 3000), world(rng, 3000, rate=0.3, first_id=10_000)))
    assert r.finding.verdict == "clear", r.finding.summary
    assert r.finding.evidence["definition"]["class_weights"]["1"] > 2.5  # the refit absorbed the shift


def test_broader_definition_without_sources_is_a_definition_change(tmp_path):
    """Every production row with a mid score is labelled positive: the reliability curve moves."""
    rng = np.random.default_rng(13)
    prod = world(rng, 4000, first_id=10_000)
    prod.loc[(prod["score"] > 0.1) & (prod["score"] < 0.5), "label"] = 1
    cols = {k: v for k, v in COLUMNS.items() if k != "label_source"}
    r = labels.run(make_incident(tmp_path, world(rng, 4000).drop(columns="source"),
                                 prod.drop(columns="source"), columns=cols))
    assert r.finding.verdict == "detected", r.finding.summary
    assert r.finding.culprits == ["definition"]
    assert r.finding.severity == "warning"


def test_without_production_labels_or_sources_is_skipped_with_the_reference_rate(tmp_path):
    """Nothing to compare: skipped, the reference issue rate still reported."""
    rng = np.random.default_rng(14)
    prod = world(rng, 1000, first_id=10_000).drop(columns=["label", "source"])
    r = labels.run(make_incident(tmp_path, world(rng, 2000).drop(columns="source"), prod,
                                 columns={k: v for k, v in COLUMNS.items() if k != "label_source"}))
    assert r.finding.verdict == "skipped"
    assert 0 < r.finding.evidence["reference_issue_rate"] < 0.2
    assert "production labels" in r.finding.summary


def test_string_labels_without_a_score(tmp_path):
    """"approved"/"declined" labels, no score column: the kit's own model judges the labels."""
    rng = np.random.default_rng(15)

    def as_text(df):
        out = df.drop(columns="score")
        out["label"] = np.where(df["label"] == 1, "declined", "approved")
        out["pred"] = np.where(df["pred"] == 1, "declined", "approved")
        return out

    prod = flip(rng, world(rng, 3000, first_id=10_000), 0.3, "vendor_x", 0.2)
    cols = {k: v for k, v in COLUMNS.items() if k != "score"} | {"positive_label": "declined"}
    r = labels.run(make_incident(tmp_path, as_text(world(rng, 3000)), as_text(prod), columns=cols))
    assert r.finding.verdict == "detected"
    assert r.finding.culprits[0] == "vendor_x"
    assert set(r.to_df("review")["given_label"]) <= {"approved", "declined"}


def test_no_features_falls_back_to_the_logged_score(tmp_path):
    """Only the logged score: label issues are judged with it."""
    rng = np.random.default_rng(16)
    keep = ["rid", "label", "pred", "score", "source"]
    inc = make_incident(tmp_path, world(rng, 2000)[keep], world(rng, 2000, first_id=10_000)[keep])
    r = labels.run(inc)
    assert r.finding.evidence["probabilities"].startswith("the logged score")
    assert r.finding.verdict == "clear", r.finding.summary


def _multiclass(rng, n, first_id=0):
    y = rng.choice(np.array(["card", "account", "none"], dtype=object), n, p=[0.2, 0.2, 0.6])
    centre = {"card": (2.5, 0.0), "account": (0.0, 2.5), "none": (0.0, 0.0)}
    xy = np.array([centre[v] for v in y]) + rng.normal(size=(n, 2))
    pred = np.array(["card", "account", "none"], dtype=object)[np.argmax(
        np.column_stack([2.5 * xy[:, 0] - 3.125 + np.log(1 / 3), 2.5 * xy[:, 1] - 3.125 + np.log(1 / 3),
                         np.zeros(n)]), axis=1)]
    return pd.DataFrame({"rid": np.arange(first_id, first_id + n), "a": xy[:, 0], "b": xy[:, 1],
                         "label": y, "pred": pred})


def test_multiclass_renamed_class_is_a_definition_change(tmp_path):
    """Production calls every "account" input "card": inputs placed in one class now labelled another."""
    rng = np.random.default_rng(17)
    prod = _multiclass(rng, 3000, first_id=10_000)
    prod.loc[prod["label"] == "account", "label"] = "card"
    cols = {"target": "label", "prediction": "pred", "id": "rid"}
    r = labels.run(make_incident(tmp_path, _multiclass(rng, 3000), prod, columns=cols))
    assert r.finding.verdict == "detected", r.finding.summary
    assert "definition" in r.finding.culprits
    moved = r.finding.evidence["definition"]["moved"]
    assert any(m["group"] == "account" and m["label"] == "card" for m in moved)


def test_multiclass_partial_relabelling_names_the_definition(tmp_path):
    """60% of "account" labels given as "card" at the same inputs (one share collapses, another grows):
    the class shares of the labels moved while the model's outputs did not, so the definition is
    named and the evidence says the move happened at the same inputs."""
    rng = np.random.default_rng(21)
    prod = _multiclass(rng, 4000, first_id=10_000)
    moved = (prod["label"] == "account") & (rng.random(len(prod)) < 0.6)
    prod.loc[moved, "label"] = "card"
    cols = {"target": "label", "prediction": "pred", "id": "rid"}
    r = labels.run(make_incident(tmp_path, _multiclass(rng, 4000), prod, columns=cols))
    assert r.finding.verdict == "detected", r.finding.summary
    assert r.finding.culprits[0] == "definition"
    shares = r.finding.evidence["class_shares"]
    assert shares["moved_at_same_inputs"] is True and shares["reading"] == "labels"
    assert "same inputs now get other labels" in r.finding.summary


def test_multiclass_control_is_clear(tmp_path):
    """Same multiclass world in both periods: clear."""
    rng = np.random.default_rng(18)
    cols = {"target": "label", "prediction": "pred", "id": "rid"}
    r = labels.run(make_incident(tmp_path, _multiclass(rng, 3000), _multiclass(rng, 3000, 10_000), columns=cols))
    assert r.finding.verdict == "clear", r.finding.summary
    assert r.finding.evidence["class_shares"]["moved_at_same_inputs"] is False


def _regression(rng, n, first_id=0):
    x = rng.normal(size=n)
    y = 10 + 3 * x + rng.normal(0, 1.0, n)
    return pd.DataFrame({"rid": np.arange(first_id, first_id + n), "x": x, "y": y, "yhat": 10 + 3 * x,
                         "source": rng.choice(["team_a", "team_b"], n)})


@pytest.mark.parametrize("biased", [False, True], ids=["control", "biased-source"])
def test_regression_sources(tmp_path, biased):
    """Regression: a source whose targets sit 1 SD above the rest is named; a control is clear."""
    rng = np.random.default_rng(19)
    prod = _regression(rng, 3000, 10_000)
    if biased:
        prod.loc[prod["source"] == "team_b", "y"] += 1.0
    cols = {"target": "y", "prediction": "yhat", "id": "rid", "label_source": "source"}
    r = labels.run(make_incident(tmp_path, _regression(rng, 3000), prod, columns=cols, task="regression"))
    if biased:
        assert r.finding.verdict == "detected" and r.finding.culprits[0] == "team_b", r.finding.summary
    else:
        assert r.finding.verdict == "clear", r.finding.summary
    assert len(r.to_df("review"))


@pytest.mark.parametrize("rows", [12, 40])
def test_tiny_tables_do_not_crash(tmp_path, rows):
    """A handful of rows: a verdict with a reason, never an exception."""
    rng = np.random.default_rng(20)
    r = labels.run(make_incident(tmp_path, world(rng, rows, rate=0.3), world(rng, rows, rate=0.3, first_id=99)))
    assert r.finding.verdict in ("clear", "inconclusive", "detected")


def test_figures_and_page_tables(tmp_path):
    """Every figure of a binary incident with sources draws, with titles and labelled axes."""
    import matplotlib

    matplotlib.use("Agg")
    from mlinvestigate.plots import labels as plots

    rng = np.random.default_rng(21)
    prod = flip(rng, world(rng, 2000, first_id=10_000), 0.4, "<script>", 0.2)
    r = labels.run(make_incident(tmp_path, world(rng, 2000), prod))
    for fig in (plots.issue_rates(r), plots.source_chart(r), plots.reliability(r), plots.reliability_by_source(r)):
        for ax in fig.axes:
            if ax.get_visible():
                assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    for name in ("issue_rates", "sources", "source_composition", "definition", "review"):
        assert len(labels.page_table(r, name)), name


# --- end to end -------------------------------------------------------------------------------------------
@pytest.mark.e2e
def test_labels_scenario_names_vendor_b(investigated):
    """The labels scenario: detected, vendor_b first."""
    f = investigated("labels", ("labels",))["checks"]["labels"]
    assert f["verdict"] == "detected", f["summary"]
    assert f["culprits"][0] == "vendor_b"


@pytest.mark.e2e
def test_labels_clear_on_control(investigated):
    """The control incident is clear."""
    f = investigated("control", ("labels", "prior_shift"))["checks"]["labels"]
    assert f["verdict"] == "clear", f["summary"]


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["control-multiclass", "control-regression"])
def test_labels_other_tasks_run(investigated, name):
    """Multiclass and regression controls run to a clear verdict."""
    f = investigated(name, ("labels", "prior_shift"))["checks"]["labels"]
    assert f["verdict"] == "clear", f["summary"]


# --- wide tables and empty columns --------------------------------------------------------------
def test_a_feature_empty_in_reference_only_does_not_stop_the_label_model(tmp_path):
    """A column with no value in reference (filled in production) is left out of the model:
    the probabilities come from the other columns."""
    rng = np.random.default_rng(21)
    X = rng.normal(size=(300, 3))
    X[:, 1] = np.nan
    y = (X[:, 0] + 0.3 * rng.normal(size=300) > 0).astype(int)
    oof, predict = sl.cross_validated_probabilities(X, y, 2, categorical=[False, False, False])
    assert np.isfinite(oof).all() and ((oof[:, 1] > 0.5) == y).mean() > 0.8
    new = rng.normal(size=(50, 3))
    assert predict(new).shape == (50, 2)
    X[:, [0, 2]] = np.nan  # nothing usable: the class shares
    oof, _ = sl.cross_validated_probabilities(X, y, 2, categorical=[False, True, False])
    assert np.allclose(oof.sum(axis=1), 1) and np.ptp(oof[:, 1]) < 0.1

    ref, prod = world(rng, 600), world(rng, 600, first_id=10_000)
    ref["x2"] = np.nan
    result = labels.run(make_incident(tmp_path, ref, prod))
    assert result.finding.verdict in ("clear", "inconclusive")


def test_a_wide_label_model_screens_columns_inside_each_fold():
    """Many columns: each fold keeps the ones most associated with the label on its training rows;
    the informative ones survive, and pure noise gets no out-of-fold skill from the screening."""
    from mlinvestigate.stats.domain import rank_auc

    rng = np.random.default_rng(22)
    n, k = 800, 300
    X = rng.normal(size=(n, k))
    y = (X[:, 11] - X[:, 250] + rng.normal(size=n) > 0).astype(int)
    oof, predict = sl.cross_validated_probabilities(X, y, 2, max_features=12)
    assert rank_auc(y, oof[:, 1]) > 0.8
    chosen = sl.screen_by_association(sl._screen_codes(X, np.zeros(k, bool)), y, 2, 12)
    assert {11, 250} <= set(chosen) and len(chosen) == 12
    noise = rng.integers(0, 2, n)
    oof, _ = sl.cross_validated_probabilities(X, noise, 2, max_features=12)
    assert abs(rank_auc(noise, oof[:, 1]) - 0.5) < 0.07
