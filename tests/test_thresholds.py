"""Every threshold is declared with its reason in its check's contract, documented from there, and
overrides resolve."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlinvestigate.errors import SpecError
from mlinvestigate.thresholds import defaults, markdown, resolve, validate_overrides

DOC = Path(__file__).resolve().parent.parent / "docs" / "thresholds.md"


def test_the_page_is_generated_from_the_declarations():
    """docs/thresholds.md is exactly what the contracts declare (regenerate it with
    `python -m mlinvestigate.thresholds > docs/thresholds.md`)."""
    assert DOC.read_text(encoding="utf-8") == markdown()


def test_every_check_with_a_verdict_threshold_declares_a_reason():
    from mlinvestigate.contract import registered

    for cid, contract in registered().items():
        for key, t in contract.thresholds.items():
            assert t.meaning.strip(), (cid, key)


def test_override_wins_over_default():
    assert resolve({"drift": {"psi_critical": 0.4}}, "drift", "psi_critical") == 0.4
    assert resolve({}, "drift", "psi_critical") == defaults()["drift"]["psi_critical"] == 0.25
    assert resolve({}, "general", "alpha") == 0.05


def test_unknown_key_names_the_nearest():
    with pytest.raises(SpecError, match="Did you mean 'psi_critical'"):
        validate_overrides({"drift": {"psi_critcal": 0.3}}, "incident.yaml")
    with pytest.raises(SpecError, match="Did you mean 'drift'"):
        validate_overrides({"drfit": {}}, "incident.yaml")
