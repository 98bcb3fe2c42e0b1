"""A check defined in this file only joins every part of a run.

The toy check, its contract and its notebook live here; no other file knows of it. Registered,
it must appear in the run's progress, the ranking, findings.json (with typed culprits), the report
folder, the summary page, the actions, the alerts and the checklist.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from mlinvestigate import scenarios
from mlinvestigate.checks import PLUGINS_ENV
from mlinvestigate.contract import CheckContract, Culprit, Evidence, register, unregister
from mlinvestigate.findings import Finding, Result

CHECK = "toy"
ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = Path(tempfile.gettempdir()) / "mlinvestigate-toy-check.ipynb"
MODULE = "tests.test_contract_extension"  # how the run's kernels import this file (the checkout on PYTHONPATH)


class ToyEvidence(Evidence):
    """The toy finding's evidence."""

    rows: int | None = None  # production rows the toy looked at


def run(incident) -> Result:
    """Always blames the first feature, so the test knows what to look for."""
    feature = incident.features[0]
    return Result(Finding(CHECK, "detected", "critical",
                          f"The toy check blames {feature} on {len(incident.production)} production rows.",
                          [feature], ToyEvidence(rows=int(len(incident.production))), strength=1.0))


def _actions(finding: dict, ctx) -> list[dict]:
    return [{"check": CHECK, "action": "Feed the toy", "detail": f"look at {finding['culprits'][0]}",
             "why": finding["summary"]}]


def _alerts(finding: dict, ctx) -> list[dict]:
    return [{"alert": "toy", "metric": "toy rows", "condition": f"rows > {CONTRACT.evidence_of(finding).rows}",
             "why": "the toy asked for it"}]


CONTRACT = CheckContract(
    id=CHECK, title="Toy check", question="Does the toy complain?", stage="cause", module=MODULE,
    culprit=lambda text: Culprit("feature", column=text), actions=_actions, alerts=_alerts, evidence=ToyEvidence,
    checklist=(("toy", "The toy is content"),), notebook=NOTEBOOK, cost=0.1)

if MODULE in os.environ.get(PLUGINS_ENV, "").split(","):
    register(CONTRACT)  # inside the run's kernels, which import this module by name


def _write_notebook() -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('spec = "incident.yaml"\nout = ""\ndata = ""\ntrust_model = False\n'
                                       "interactive = True")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Toy check"), params, nbformat.v4.new_code_cell(
        f"from mlinvestigate import load_incident\nfrom mlinvestigate.display import show\nfrom {MODULE} import run\n\n"
        "incident = load_incident(spec, cache=data or None, trust_model=trust_model)\n"
        "result = run(incident)\nresult.save(out)\nshow(result)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, NOTEBOOK)


@pytest.fixture
def toy_registered(monkeypatch):
    _write_notebook()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    register(CONTRACT)
    yield
    unregister(CHECK)


@pytest.mark.e2e
def test_a_check_defined_here_joins_the_whole_run(toy_registered, tmp_path, monkeypatch):
    from mlinvestigate.cli import main

    spec = scenarios.make("control", tmp_path / "incident", rows=1500)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["run", str(spec), "--out", "reports", "--checks", "health,drift,toy"])
    assert result.exit_code == 0, result.output
    assert "toy: detected" in result.output
    folder = next(p for p in (tmp_path / "reports").iterdir() if p.is_dir())
    doc = json.loads((folder / "findings.json").read_text())
    assert set(doc["checks"]) == {"health", "drift", "toy"}
    assert doc["ranking"][0] == "toy"
    toy = doc["checks"]["toy"]
    assert toy["report"] == "toy.html" and (folder / "toy.html").exists()
    assert toy["culprit_details"][0]["kind"] == "feature"
    assert doc["diagnosis"]["headline"].startswith("Most likely cause: toy check")
    assert doc["actions"][0]["action"] == "Feed the toy"
    assert set(toy["evidence"]) == {"rows"} and toy["evidence"]["rows"] > 0  # its declared evidence, as set
    toy_alert = next(a for a in doc["monitoring"] if a["alert"] == "toy")
    assert toy_alert["condition"] == f"rows > {toy['evidence']['rows']}"  # read back through the typed accessor
    assert any(row["item"] == "The toy is content" and row["status"] == "checked and failing"
               for row in doc["checklist"])
    index = (folder / "index.html").read_text()
    assert "Toy check" in index and "toy.html" in index


def test_an_unknown_option_is_refused_by_name():
    """Options a check does not take are an error naming them, never silently ignored."""
    from mlinvestigate import checks
    from mlinvestigate.errors import InvestigationError

    with pytest.raises(InvestigationError, match="'colour'"):
        checks.run("drift", None, colour="red")
