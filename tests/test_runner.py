"""The runner: dated folders, failures kept visible, findings.json, safe HTML (tiny test notebooks)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from mlinvestigate import runner
from mlinvestigate.diagnosis import rank
from tests.helpers import tiny_incident

NOTEBOOKS = Path(__file__).parent / "notebooks"


def test_new_report_folder_never_reuses(tmp_path):
    """Same name the same day: -2, -3 … appended; earlier folders untouched."""
    day = dt.date(2026, 11, 29)
    a = runner.new_report_folder(tmp_path, "gap", today=day)
    (a / "index.html").write_text("first")
    b = runner.new_report_folder(tmp_path, "gap", today=day)
    c = runner.new_report_folder(tmp_path, "gap", today=day)
    assert [a.name, b.name, c.name] == ["2026-11-29-gap", "2026-11-29-gap-2", "2026-11-29-gap-3"]
    assert (a / "index.html").read_text() == "first"


def test_rank_orders_by_severity_then_strength():
    findings = {
        "drift": {"verdict": "detected", "severity": "warning", "strength": 0.9},
        "skew": {"verdict": "detected", "severity": "critical", "strength": 0.5},
        "labels": {"verdict": "detected", "severity": "critical", "strength": 0.8},
        "health": {"verdict": "clear", "severity": "info", "strength": 0.0},
    }
    assert rank(findings) == ["labels", "skew", "drift"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    spec = tiny_incident(tmp / "incident")
    return runner.investigate(spec, out=tmp / "reports", jobs=2, notebooks=NOTEBOOKS)


def test_failures_are_kept_visible(tiny_run):
    """A failing notebook gets an error finding and a page; the others complete."""
    doc = tiny_run.findings
    assert doc["checks"]["drift"]["verdict"] == "clear"
    assert doc["checks"]["leakage"]["verdict"] == "error"
    assert "deliberate failure" in doc["checks"]["leakage"]["summary"]
    assert doc["checks"]["skew"]["verdict"] == "error"  # ran but saved no finding
    assert tiny_run.exit_code == 1 and sorted(tiny_run.failed) == ["leakage", "skew"]
    page = (tiny_run.folder / "leakage.html").read_text()
    assert "deliberate failure" in page


def test_findings_json_contract(tiny_run):
    """findings.json carries every key DESIGN.md lists."""
    doc = json.loads((tiny_run.folder / "findings.json").read_text())
    for key in ("incident", "title", "created", "version", "inputs", "metric", "checks", "ranking"):
        assert key in doc
    assert doc["created"].endswith("Z")
    assert {"path", "sha256", "rows"} <= set(doc["inputs"][0])
    assert {"name", "reference", "production"} <= set(doc["metric"])
    finding = doc["checks"]["drift"]
    assert {"verdict", "severity", "summary", "culprits", "evidence", "report"} <= set(finding)
    assert finding["report"] == "drift.html"


def test_pages_are_self_contained_and_escaped(tiny_run):
    """No remote resources, no executable script, data values shown as text."""
    for name in ("index.html", "drift.html", "leakage.html"):
        page = (tiny_run.folder / name).read_text()
        assert "<script src" not in page and "https://cdn" not in page and "unpkg" not in page, name
        assert "<script>alert(1)</script>" not in page, name
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in (tiny_run.folder / "drift.html").read_text()
    assert (tiny_run.folder / "drift.ipynb").exists()
