"""The summary: diagnosis in words, actions from evidence, alerts, checklist, routing curve, widget."""

from __future__ import annotations

import numpy as np
import pytest

from mlinvestigate import load_incident
from mlinvestigate import summary as sm
from tests.helpers import tiny_incident


def _finding(verdict="clear", severity="info", summary="ok.", culprits=(), evidence=None, check="x"):
    return {"verdict": verdict, "severity": severity, "summary": summary, "culprits": list(culprits),
            "evidence": evidence or {}, "report": f"{check}.html", "strength": 0.5}


def _doc(**checks):
    from mlinvestigate.diagnosis import rank

    found = {c: f for c, f in checks.items()}
    return {"checks": found, "ranking": rank(found), "incident": "t", "title": "t", "created": "",
            "version": "", "inputs": [],
            "metric": {"name": "accuracy", "reference": 0.95, "production": 0.65, "higher_is_better": True,
                       "reference_ci": [0.94, 0.96], "production_ci": [0.6, 0.7], "reference_rows": 100,
                       "production_labelled_rows": 100}}


@pytest.fixture
def incident(tmp_path):
    return load_incident(tiny_incident(tmp_path, columns_extra={"model_version": "device", "status": "device"},
                                       spec_extra={"model": {"version": "2.0"}}))


def test_nothing_wrong_is_said_in_those_words():
    doc = _doc(drift=_finding(check="drift"), skew=_finding("skipped", check="skew"))
    headline, ruled_out, undecided = sm.diagnose(doc)
    assert headline.startswith("Nothing is wrong")
    assert ruled_out == ["drift"] and undecided == ["skew"]


def test_headline_names_the_strongest_cause():
    doc = _doc(drift=_finding("detected", "warning", "Two features drifted.", ["amount"], check="drift"),
               deployment=_finding("detected", "critical", "Version 1.9 serves 40%.", ["1.9"], check="deployment"))
    headline, _, _ = sm.diagnose(doc)
    assert headline.startswith("Most likely cause: deployment") and "Also detected: data drift" in headline


def test_actions_follow_the_evidence(incident):
    """Rollback only when a version is at fault; threshold change with the recommended value."""
    clear = sm.actions(incident, _doc(drift=_finding(check="drift")), sm.routing_curve(incident))
    assert clear == []
    doc = _doc(deployment=_finding("detected", "critical", "v1.9 serves.", ["1.9"], check="deployment"),
               prior_shift=_finding("detected", "warning", "Rate tripled.",
                                    evidence={"recommended_threshold": 0.31}, check="prior_shift"))
    acts = sm.actions(incident, doc, sm.routing_curve(incident))
    names = [a["action"] for a in acts]
    assert names[0].startswith("Roll back") and "1.9" in acts[0]["detail"]
    assert any("0.31" in a["detail"] for a in acts if a["action"].startswith("Adjust"))
    assert names[-1].startswith("Route low-confidence")


def test_monitoring_lists_drifted_features_and_missing_inputs(incident):
    doc = _doc(drift=_finding("detected", "critical", "x1 drifted.", ["x1"], check="drift"),
               health=_finding("detected", "warning", "x2 missing.", ["missing:x2"], check="health"))
    alerts = {a["alert"]: a for a in sm.monitoring(incident, doc)}
    assert "drift:x1" in alerts and "missing:x2" in alerts and "metric_gap" in alerts
    assert "model_version" in alerts and "2.0" in alerts["model_version"]["condition"]
    text = sm.Summary(doc, "", [], [], None, [], list(alerts.values()), sm.checklist(doc),
                      sm.routing_curve(incident)).monitoring_yaml()
    assert "alerts:" in text and "drift:x1" in text


def test_checklist_ticks_from_verdicts():
    doc = _doc(drift=_finding(check="drift"), skew=_finding("skipped", check="skew"),
               health=_finding("detected", "warning", check="health"))
    table = sm.checklist(doc).set_index("item")["status"]
    assert table["Production inputs look like reference inputs"] == "checked and fine"
    assert table["Features are computed the same way offline and live"] == "not checked (input missing)"
    assert table["Serving is healthy (errors, latency, volume, input quality)"] == "checked and failing"
    assert table["No feature learned from the future"] == "not checked (not run)"


def test_routing_curve_is_monotone_for_a_calibrated_score(incident):
    """The most confident predictions are the most accurate: accuracy falls as coverage grows."""
    curve = sm.routing_curve(incident)
    assert len(curve) == 20 and curve["coverage"].iloc[-1] == 1.0
    assert curve["accuracy"].iloc[0] >= curve["accuracy"].iloc[-1]
    full = np.mean(incident.production["label"] == incident.production["pred"])
    assert curve["accuracy"].iloc[-1] == pytest.approx(full)


def test_routing_widget_is_driven_from_python(incident):
    from mlinvestigate.widgets.summary import RoutingExplorer

    explorer = RoutingExplorer(sm.routing_curve(incident), target=0.95)
    before = explorer.readout.value
    explorer.slider.value = 0.5
    assert explorer.readout.value != before and "<b>50%</b>" in explorer.readout.value


def test_html_sections_escape_data(incident):
    doc = _doc(segments=_finding("detected", "warning", "device=<script>x</script> fails.",
                                 ["device=<script>x</script>"], check="segments"))
    doc["inputs"] = [{"role": "reference", "path": "<b>p</b>", "sha256": "0" * 64, "rows": 1}]
    s = sm.Summary(doc, *sm.diagnose(doc), None, [], [], sm.checklist(doc), sm.routing_curve(incident))
    html = sm.diagnosis_html(s) + sm.header_html(doc)
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>p</b>" not in html


def test_symptoms_get_no_action_of_their_own_and_actions_follow_the_ranking(incident):
    """A label shift explained by a failing segment asks for no label audit; the segment comes first."""
    doc = _doc(labels=_finding("detected", "warning", "Label rate moved.", ["definition"], check="labels"),
               segments=_finding("detected", "critical", "BR fails.", ["country=BR"], check="segments"),
               prior_shift=_finding("detected", "warning", "Rate moved.", check="prior_shift"))
    doc["explained_by"] = {"labels": "segments"}
    acts = sm.actions(incident, doc, sm.routing_curve(incident))
    names = [a["action"] for a in acts]
    assert not any(n.startswith("Audit the labels") for n in names)
    assert names[0].startswith("Ensemble") and names[-1].startswith("Route")


def test_headline_separates_other_causes_from_consequences():
    doc = _doc(drift=_finding("detected", "critical", "Two features drifted.", ["amount"], check="drift"),
               health=_finding("detected", "warning", "Out of range.", ["out_of_range:amount"], check="health"))
    doc["explained_by"] = {"health": "drift"}
    headline, _, _ = sm.diagnose(doc)
    assert "Also detected" not in headline
    assert "serving health (follows from data drift)" in headline
