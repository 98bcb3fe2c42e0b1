"""Ranking: strongest evidence first, and symptoms after the cause that accounts for them."""

from __future__ import annotations

from mlinvestigate.diagnosis import explained_by, rank


def _f(verdict="detected", severity="critical", strength=0.5, culprits=(), **evidence):
    return {"verdict": verdict, "severity": severity, "strength": strength, "culprits": list(culprits),
            "evidence": evidence}


def test_skew_explains_drift_in_the_same_features():
    """A unit change looks like drift; the skew finding is the cause and comes first."""
    found = {"drift": _f(strength=0.9, culprits=["amount", "n_tx_7d"]),
             "skew": _f(strength=0.6, culprits=["amount", "n_tx_7d"])}
    assert explained_by(found) == {"drift": "skew"}
    assert rank(found) == ["skew", "drift"]


def test_partly_explained_drift_keeps_its_rank():
    """Drift in a feature nothing else explains stays a cause of its own."""
    found = {"drift": _f(strength=0.9, culprits=["amount", "hour"]),
             "skew": _f(strength=0.6, culprits=["amount"])}
    assert explained_by(found) == {}
    assert rank(found) == ["drift", "skew"]


def test_health_and_segments_explain_drift():
    found = {"drift": _f(strength=0.9, culprits=["distance_km", "country"]),
             "health": _f(severity="warning", culprits=["missing:distance_km", "error_rate"]),
             "segments": _f(severity="warning", strength=0.4, culprits=["country=BR"])}
    assert explained_by(found)["drift"] == "health"
    assert rank(found) == ["health", "drift", "segments"]


def test_biased_labels_explain_label_based_findings_unless_estimated():
    found = {"measurement": _f(severity="warning", strength=0.3, labels_biased=True),
             "segments": _f(strength=0.9, culprits=["country=BR"]),
             "prior_shift": _f(strength=0.9, estimated=True)}
    assert explained_by(found) == {"segments": "measurement"}
    assert rank(found) == ["prior_shift", "measurement", "segments"]


def test_clear_findings_are_not_ranked():
    assert rank({"drift": _f(verdict="clear"), "skew": _f(verdict="skipped")}) == []


def test_drift_explains_out_of_range_inputs_not_the_other_way():
    """Values outside the reference range in drifted features are the drift, not a serving fault."""
    found = {"drift": _f(strength=0.9, culprits=["distance_km", "amount"]),
             "health": _f(severity="warning", culprits=["out_of_range:distance_km", "out_of_range:amount"])}
    assert explained_by(found) == {"health": "drift"}
    assert rank(found) == ["drift", "health"]


def test_unattributed_label_shift_is_explained_by_a_model_side_cause():
    """A moved reliability curve with no label source to blame follows the cause found elsewhere."""
    found = {"labels": _f(strength=0.9, culprits=["definition"]),
             "leakage": _f(strength=0.5, culprits=["chargeback_count"])}
    assert explained_by(found) == {"labels": "leakage"}
    found["labels"]["culprits"] = ["vendor_b"]
    assert explained_by(found) == {}


def test_prior_shift_explains_moderate_drift_only():
    """Moderate drift next to a class-balance change follows it; critical drift stays a cause."""
    found = {"drift": _f(severity="warning", strength=0.9, culprits=["amount"]),
             "prior_shift": _f(severity="warning", strength=0.4)}
    assert rank(found) == ["prior_shift", "drift"]
    found["drift"]["severity"] = "critical"
    assert explained_by(found) == {}


def test_class_shares_that_moved_at_the_same_inputs_follow_from_the_labels():
    """A prior-shift finding whose own evidence says the move happened at the same inputs is
    ranked after the label-definition finding that causes it."""
    findings = {
        "labels": {"verdict": "detected", "severity": "warning", "strength": 0.4, "culprits": ["definition"]},
        "prior_shift": {"verdict": "detected", "severity": "critical", "strength": 0.9,
                        "evidence": {"follows_from_labels": True}},
    }
    assert explained_by(findings) == {"prior_shift": "labels"}
    assert rank(findings) == ["labels", "prior_shift"]
    findings["prior_shift"]["evidence"]["follows_from_labels"] = False
    assert rank(findings) == ["prior_shift", "labels"]
