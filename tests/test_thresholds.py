"""Every threshold default is documented, and overrides resolve."""

from __future__ import annotations

from pathlib import Path

from mlinvestigate.thresholds import DEFAULTS, resolve

DOC = Path(__file__).resolve().parent.parent / "docs" / "thresholds.md"


def test_every_default_is_documented_with_its_value():
    """docs/thresholds.md lists every key with the value the code uses."""
    documented, section = {}, None
    for line in DOC.read_text().splitlines():
        if line.startswith("## `"):
            section = line.strip("# `")
        elif line.startswith("| `") and section:
            key, value = (cell.strip(" `") for cell in line.split("|")[1:3])
            documented[(section, key)] = float(value.replace("_", ""))
    expected = {(s, k): float(v) for s, values in DEFAULTS.items() for k, v in values.items()}
    assert documented == expected


def test_override_wins_over_default():
    assert resolve({"drift": {"psi_critical": 0.4}}, "drift", "psi_critical") == 0.4
    assert resolve({}, "drift", "psi_critical") == DEFAULTS["drift"]["psi_critical"]
