"""Each check's evidence is a typed structure its contract declares: checks build it through the
type, findings.json keeps the keys they set, readers get the typed object back, and the diagnosis
rules may only name boolean fields of the evidence they read."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlinvestigate import scenarios
from mlinvestigate.contract import (
    CheckContract,
    Evidence,
    EvidenceError,
    WhenEvidence,
    WhenSymptomSays,
    contract,
    register,
    registered,
    unregister,
)
from mlinvestigate.findings import Finding, skipped


class ProbeEvidence(Evidence):
    """Evidence of the probe checks these tests register and unregister."""

    rate: float | None = None
    moved: bool | None = None
    detail: dict | None = None
    note: str | None = None


def _probe(check_id: str, evidence: type[Evidence] = ProbeEvidence, explains=()) -> CheckContract:
    return CheckContract(id=check_id, title="Probe", question="Does the probe complain?", stage="cause",
                         module=__name__, evidence=evidence, explains=explains)


@pytest.fixture
def probes():
    """Register probe contracts; every one is unregistered afterwards, whatever the test did."""
    made: list[str] = []

    def add(contract: CheckContract) -> CheckContract:
        made.append(contract.id)
        return register(contract)

    yield add
    for cid in made:
        unregister(cid)
    registered()  # the built-in registry is consistent again


# --- every check declares its evidence, and real findings fit it ---------------------------------
def test_every_registered_check_declares_an_evidence_type():
    for cid, c in registered().items():
        assert isinstance(c.evidence, type) and issubclass(c.evidence, Evidence), cid
        assert c.evidence.check_id == cid


def test_design_fixes_prior_shift_evidence_keys():
    fields = contract("prior_shift").evidence.model_fields
    assert {"reference_positive_rate", "production_positive_rate", "estimated",
            "reference_class_rates", "production_class_rates"} <= set(fields)


@pytest.mark.e2e
@pytest.mark.parametrize("name", scenarios.NAMES)
def test_real_findings_fit_their_declared_evidence(investigated, name):
    """Every check's finding of a real run reads back through its type unchanged: every key is a
    declared field and every value has the field's type."""
    doc = investigated(name)
    contracts = registered()
    for cid, finding in doc["checks"].items():
        assert finding["verdict"] != "error", (cid, finding["summary"])
        typed = contracts[cid].evidence_of(finding)
        assert isinstance(typed, contracts[cid].evidence)
        assert typed.to_dict() == finding["evidence"], cid


# --- building evidence --------------------------------------------------------------------------
def test_a_misspelt_key_fails_where_it_is_written():
    prior = contract("prior_shift").evidence
    with pytest.raises(EvidenceError,
                       match=r"prior_shift.*'recomended_threshold'.*did you mean 'recommended_threshold'"):
        prior(recomended_threshold=0.3)
    ev = prior(estimated=False)
    with pytest.raises(EvidenceError, match=r"prior_shift.*'estimate'"):
        ev.estimate = True


def test_an_undeclared_key_in_a_plain_dict_fails_when_the_finding_is_made():
    with pytest.raises(EvidenceError, match=r"the drift check's evidence has no key 'psi_max'"):
        Finding("drift", "clear", "info", "Nothing moved.", evidence={"psi_max": 0.01})
    with pytest.raises(EvidenceError, match=r"the segments check's evidence has no key 'why'"):
        skipped("segments", "Not checked.", why="no segments")


def test_a_value_of_the_wrong_type_fails_when_the_finding_is_made():
    seg = contract("segments").evidence
    with pytest.raises(EvidenceError, match=r"segments.*segments_tested"):
        Finding("segments", "clear", "info", "Fine.", evidence=seg(segments_tested="twelve"))


def test_evidence_of_another_check_is_refused():
    with pytest.raises(EvidenceError, match="drift"):
        Finding("skew", "clear", "info", "Fine.", evidence=contract("drift").evidence(features_compared=3))


def test_findings_keep_the_keys_set_in_their_order_and_the_checks_own_values():
    """Absent keys stay absent, an explicit None stays, and a dict the check fills in later is the
    one that is written (values are not converted where they are built)."""
    prior = contract("prior_shift").evidence
    impact = {"material": False}
    ev = prior(production_positive_rate=None, reference_positive_rate=np.float64(0.1))
    ev.impact = impact
    impact["accuracy_change"] = np.float64(-0.02)
    f = Finding("prior_shift", "clear", "info", "Steady.", evidence=ev)
    assert list(f.evidence) == ["production_positive_rate", "reference_positive_rate", "impact"]
    assert f.evidence["impact"] is impact
    assert json.loads(json.dumps(f.to_dict()))["evidence"] == {
        "production_positive_rate": None, "reference_positive_rate": 0.1,
        "impact": {"material": False, "accuracy_change": -0.02}}


def test_the_runners_error_findings_fit_every_type():
    for cid in registered():
        f = Finding(cid, "error", "warning", "It failed.", evidence={"error": "boom", "traceback": "…"})
        assert contract(cid).evidence_of(f.to_dict()).error == "boom"


# --- reading evidence ---------------------------------------------------------------------------
def test_evidence_of_gives_the_typed_evidence_of_a_findings_json_entry():
    finding = {"verdict": "detected", "evidence": {"estimated": True, "production_positive_rate": 0.3}}
    ev = contract("prior_shift").evidence_of(finding)
    assert ev.estimated is True and ev.production_positive_rate == 0.3
    assert ev.recommended_threshold is None  # declared, not set by this finding
    assert ev.to_dict() == finding["evidence"]
    assert contract("prior_shift").evidence_of({"verdict": "skipped"}).to_dict() == {}
    with pytest.raises(EvidenceError, match=r"prior_shift.*'recommended_treshold'"):
        contract("prior_shift").evidence_of({"evidence": {"recommended_treshold": 0.3}})
    with pytest.raises(EvidenceError, match=r"prior_shift.*estimated"):
        contract("prior_shift").evidence_of({"evidence": {"estimated": "perhaps"}})


def test_the_threshold_action_reads_the_prior_shift_evidence_it_declares():
    """The summary's threshold change carries the number the prior-shift check computed."""
    c = contract("prior_shift")
    for key in ("recommended_threshold", "recommended_threshold_cost", "recommended_threshold_accuracy"):
        finding = {"verdict": "detected", "summary": "The class balance moved.", "evidence": {key: 0.31}}
        assert c.actions(finding, None)[0]["threshold"] == pytest.approx(0.31), key


def test_the_fair_metric_reaches_the_attribution_through_the_measurement_evidence():
    c = contract("measurement")
    finding = {"verdict": "detected", "summary": "Misleading.", "evidence": {"fair_production": 0.81}}
    assert c.facts(finding, None) == {"fair_production": 0.81}


# --- rules are checked against the evidence types -------------------------------------------------
def test_every_built_in_rule_names_a_boolean_field():
    contracts = registered()
    for cid, c in contracts.items():
        for rule in c.explains:
            if isinstance(rule, WhenEvidence):
                assert rule.flag in c.evidence.flags(), (cid, rule)
                for symptom in rule.symptoms if rule.unless else ():
                    assert rule.unless in contracts[symptom].evidence.flags(), (cid, symptom, rule)
            if isinstance(rule, WhenSymptomSays):
                assert rule.flag in contracts[rule.symptom].evidence.flags(), (cid, rule)


def test_a_rule_naming_an_unknown_flag_of_its_own_evidence_fails_at_register():
    rule = WhenEvidence(("drift",), flag="moving", reason="probe")
    with pytest.raises(ValueError,
                       match=r"WhenEvidence rule of the probe check names 'moving'.*probe check's evidence"):
        register(_probe("probe", explains=(rule,)))
    assert "probe" not in registered()
    with pytest.raises(ValueError, match=r"'note', which is not a boolean field"):
        register(_probe("probe", explains=(WhenEvidence(("drift",), flag="note", reason="probe"),)))


def test_a_rule_naming_an_unknown_flag_of_another_checks_evidence_fails_at_registered(probes):
    probes(_probe("probe", explains=(WhenSymptomSays("prior_shift", flag="follows_from_label", reason="probe"),)))
    with pytest.raises(ValueError, match=r"WhenSymptomSays rule of the probe check names 'follows_from_label'.*"
                                         r"prior_shift check's evidence"):
        registered()
    unregister("probe")
    registered()


def test_a_rule_on_a_check_registered_later_is_checked_once_both_are_there(probes):
    """The symptom's type may register after the rule that reads it."""
    class LaterEvidence(Evidence):
        count: int | None = None

    probes(_probe("probe", explains=(WhenEvidence(("later",), flag="moved", unless="settled", reason="probe"),)))
    registered()  # "later" is not registered yet: nothing to check against
    probes(_probe("later", evidence=LaterEvidence))
    with pytest.raises(ValueError, match=r"names 'settled', which is not a field of the later check's evidence"):
        registered()


def test_a_contract_without_an_evidence_type_is_refused():
    with pytest.raises(ValueError, match="the bare check declares no evidence type"):
        register(CheckContract(id="bare", title="Bare", question="Bare?", stage="cause", module=__name__))
    assert "bare" not in registered()
