"""The summary: diagnosis in words, actions from evidence, alerts, checklist, routing curve, widget."""

from __future__ import annotations

import numpy as np
import pytest

from mlinvestigate import load_incident, scenarios
from mlinvestigate import summary as sm
from tests.helpers import tiny_incident


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """``real(name, checks=None) -> (incident, doc)``: a scenario's findings from the real checks, in process."""
    made = {}

    def get(name: str, checks: tuple[str, ...] | None = None):
        key = (name, checks)
        if key not in made:
            inc = load_incident(scenarios.make(name, tmp_path_factory.mktemp(name), rows=4000))
            made[key] = (inc, sm.collect(inc, list(checks) if checks else None))
        return made[key]

    return get


@pytest.fixture
def incident(tmp_path):
    return load_incident(tiny_incident(tmp_path, columns_extra={"model_version": "device", "status": "device"},
                                       spec_extra={"model": {"version": "2.0"}}))


def test_nothing_wrong_is_said_in_those_words(real):
    """The control incident: nothing detected, no action, every checklist line checked or not applicable."""
    inc, doc = real("control")
    headline, ruled_out, undecided = sm.diagnose(doc)
    assert headline.startswith("Nothing is wrong"), headline
    assert "drift" in ruled_out and "skew" in undecided
    assert sm.actions(inc, doc, sm.routing_curve(inc)) == []
    statuses = set(sm.checklist(doc)["status"])
    assert statuses <= {"checked and fine", "not checked (input missing)", "checked, could not decide"}


def test_partial_run_with_a_gap_does_not_say_nothing_is_wrong(real):
    """Only segments ran on a drift incident: the gap is said to be unexplained, with what did not run."""
    _, doc = real("drift", ("segments",))
    headline, _, _ = sm.diagnose(doc)
    assert headline.startswith("Unexplained gap"), headline
    assert "Not run:" in headline and "data drift" in headline


def test_rollback_names_the_version_at_fault(real):
    inc, doc = real("deployment")
    assert doc["ranking"][0] == "deployment"
    acts = sm.actions(inc, doc, sm.routing_curve(inc))
    assert acts[0]["action"].startswith("Roll back")
    for version in doc["checks"]["deployment"]["culprits"]:
        assert version in acts[0]["detail"]
    assert acts[-1]["action"].startswith("Route low-confidence")


def test_threshold_action_carries_the_threshold_the_check_computed(real):
    """Prior shift: the summary proposes the numeric threshold the prior-shift check recommends."""
    inc, doc = real("prior_shift")
    finding = doc["checks"]["prior_shift"]
    assert finding["verdict"] == "detected"
    ev = finding["evidence"]
    computed = next(ev[k] for k in ("recommended_threshold", "recommended_threshold_cost",
                                    "recommended_threshold_accuracy") if isinstance(ev.get(k), (int, float)))
    acts = [a for a in sm.actions(inc, doc, sm.routing_curve(inc)) if a["check"] == "prior_shift"]
    assert acts and acts[0]["action"] == "Adjust the decision threshold"
    assert acts[0]["threshold"] == pytest.approx(computed)
    assert f"{computed:.2f}" in acts[0]["detail"]


def test_monitoring_lists_the_drifted_features(real):
    inc, doc = real("drift")
    alerts = {a["alert"]: a for a in sm.monitoring(inc, doc)}
    for feature in doc["checks"]["drift"]["culprits"][:3]:
        assert f"drift:{feature}" in alerts
    assert "metric_gap" in alerts and "drift:all_features" in alerts
    text = sm.Summary(doc, "", [], [], None, [], list(alerts.values()), sm.checklist(doc),
                      sm.routing_curve(inc)).monitoring_yaml()
    assert "alerts:" in text and "drift:all_features" in text


def test_checklist_ticks_from_verdicts(real):
    _, doc = real("drift")
    table = sm.checklist(doc).set_index("item")["status"]
    assert table["Production inputs look like reference inputs"] == "checked and failing"
    assert table["Features are computed the same way offline and live"] == "not checked (input missing)"
    _, partial = real("drift", ("segments",))
    assert sm.checklist(partial).set_index("item")["status"]["No feature learned from the future"] == \
        "not checked (not run)"


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


def test_html_sections_escape_data(real):
    _, doc = real("control")
    doc = {**doc, "inputs": [{"role": "reference", "path": "<b>p</b>", "sha256": "0" * 64, "rows": 1}],
           "checks": {**doc["checks"], "segments": {**doc["checks"]["segments"],
                                                    "summary": "device=<script>x</script> fails."}}}
    html = sm.diagnosis_html(doc) + sm.header_html(doc)
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>p</b>" not in html
