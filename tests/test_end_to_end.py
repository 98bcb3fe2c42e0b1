"""Every scenario through the real CLI: the planted cause ranks first, control says nothing is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlinvestigate import scenarios
from mlinvestigate.checks import CHECK_IDS


@pytest.mark.parametrize("name", scenarios.NAMES)
def test_planted_cause_ranks_first(investigated, name):
    """The summary's top-ranked cause is the planted one, naming its culprits; controls are clear."""
    doc = investigated(name)
    expected = scenarios.EXPECTED[name]
    assert doc["_exit"] == 0, {c: f["summary"] for c, f in doc["checks"].items() if f["verdict"] == "error"}
    assert set(doc["checks"]) == set(CHECK_IDS)
    if expected["check"] is None:
        assert doc["ranking"] == [], {c: doc["checks"][c]["summary"] for c in doc["ranking"]}
        assert doc["diagnosis"]["headline"].startswith("Nothing is wrong")
        return
    assert doc["ranking"] and doc["ranking"][0] == expected["check"], doc["ranking"]
    top = doc["checks"][expected["check"]]
    for culprit in expected["culprits"]:
        assert culprit in top["culprits"], top["culprits"]
    assert doc["diagnosis"]["headline"].startswith("Most likely cause")


@pytest.mark.parametrize("name", ["control", "drift", "prior_shift", "control-regression"])
def test_summary_sections_are_recorded(investigated, name):
    """findings.json carries the attribution, actions, alerts and checklist the summary page shows."""
    doc = investigated(name)
    for key in ("diagnosis", "attribution", "actions", "monitoring", "checklist"):
        assert key in doc
    attr = doc["attribution"]
    total = sum(p["value"] for p in attr["parts"].values())
    assert total == pytest.approx(attr["gap"], abs=1e-9)
    index = (Path(doc["_folder"]) / "index.html").read_text()
    assert "Gap attribution" in index and "What to do now" in index and "Debugging checklist" in index


def test_actions_follow_the_planted_cause(investigated):
    """Rollback for a bad version, a threshold change for prior shift, nothing for control."""
    assert investigated("control")["actions"] == []
    assert investigated("deployment")["actions"][0]["action"].startswith("Roll back")
    actions = [a["action"] for a in investigated("prior_shift")["actions"]]
    assert any(a.startswith("Adjust the decision threshold") for a in actions)


def test_attribution_says_when_production_leaves_reference_coverage(investigated):
    """Drift into values reference never saw cannot be re-weighted: the summary says so; control
    has no such rows."""
    attr = investigated("drift")["attribution"]
    assert attr["production_outside_reference"] > 0.1
    assert any("where reference has no rows" in note for note in attr["reliability"])
    assert attr["parts"]["out_of_support"]["value"] > 0.5 * attr["gap"]
    assert investigated("control")["attribution"]["production_outside_reference"] < 0.01


def test_summary_reuses_the_drift_pages_domain_classifier(investigated):
    """The domain classifier is fitted once per run: the attribution reads the drift page's."""
    doc = investigated("drift")
    assert doc["attribution"]["domain_auc"] == doc["checks"]["drift"]["evidence"]["domain_classifier"]["auc"]
