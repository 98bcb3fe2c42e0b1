"""The command line as a user runs it: exit codes, messages, never overwriting."""

from __future__ import annotations

import json

import yaml

from tests.conftest import run_cli
from tests.helpers import tiny_incident


def test_new_writes_a_valid_commented_spec(tmp_path):
    """`new` writes a spec that only needs its data paths; a second `new` changes nothing."""
    proc = run_cli("new", "fraud-gap", "--dir", tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "fraud-gap" / "incident.yaml").read_text()
    assert "name: fraud-gap" in text and "# " in text
    data = yaml.safe_load(text)
    assert data["columns"]["target"] and data["reference"]
    again = run_cli("new", "fraud-gap", "--dir", tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_new_rejects_bad_name(tmp_path):
    proc = run_cli("new", "Fraud Gap", "--dir", tmp_path)
    assert proc.returncode == 2 and "lowercase" in proc.stderr


def test_broken_spec_exits_2_with_the_key(tmp_path):
    """An unknown key: exit 2, the key and the suggestion on stderr, no traceback, no report."""
    spec = tiny_incident(tmp_path / "inc")
    data = yaml.safe_load(spec.read_text())
    data["colums"] = data.pop("columns")
    spec.write_text(yaml.safe_dump(data))
    proc = run_cli("run", spec, "--out", tmp_path / "reports")
    assert proc.returncode == 2
    assert "colums" in proc.stderr and "Did you mean 'columns'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "reports").exists()


def test_missing_file_and_missing_column_exit_2(tmp_path):
    spec = tiny_incident(tmp_path / "inc")
    (tmp_path / "inc" / "production.parquet").unlink()
    proc = run_cli("run", spec, "--out", tmp_path / "r")
    assert proc.returncode == 2 and "production.parquet" in proc.stderr and "does not exist" in proc.stderr
    spec = tiny_incident(tmp_path / "inc2", columns_extra={"target": "is_fraud"})
    proc = run_cli("run", spec, "--out", tmp_path / "r")
    assert proc.returncode == 2 and "no column 'is_fraud'" in proc.stderr


def test_empty_production_file_exits_2(tmp_path):
    spec = tiny_incident(tmp_path / "inc", prod_edit=lambda d: d.iloc[:0])
    proc = run_cli("run", spec, "--out", tmp_path / "r")
    assert proc.returncode == 2 and "has no rows" in proc.stderr


def test_unknown_check_exits_2(tmp_path):
    spec = tiny_incident(tmp_path / "inc")
    proc = run_cli("run", spec, "--checks", "drfit", "--out", tmp_path / "r")
    assert proc.returncode == 2 and "unknown check" in proc.stderr


def test_second_run_does_not_overwrite(scenario, tmp_path):
    """Two runs of the same incident the same day: two folders, the first untouched."""
    spec = scenario("control")
    out = tmp_path / "reports"
    first = run_cli("run", spec, "--out", out, "--checks", "drift")
    assert first.returncode == 0, first.stderr
    folders = sorted(p for p in out.iterdir())
    before = (folders[0] / "findings.json").read_text()
    second = run_cli("run", spec, "--out", out, "--checks", "drift")
    assert second.returncode == 0, second.stderr
    folders = sorted(p.name for p in out.iterdir())
    assert len(folders) == 2 and folders[1] == folders[0] + "-2"
    assert (out / folders[0] / "findings.json").read_text() == before
    doc = json.loads((out / folders[1] / "findings.json").read_text())
    assert doc["checks"]["drift"]["verdict"] in ("clear", "detected", "inconclusive")


def test_out_that_is_a_file_exits_2_before_any_work(tmp_path):
    """`--out` pointing at a file: exit 2 with a message naming it; nothing written anywhere."""
    spec = tiny_incident(tmp_path / "incident")
    target = tmp_path / "reports.txt"
    target.write_text("keep me")
    proc = run_cli("run", spec, "--out", target)
    assert proc.returncode == 2 and "is a file" in proc.stderr and "Traceback" not in proc.stderr
    assert target.read_text() == "keep me"
    proc = run_cli("run", spec, "--out", target / "below")
    assert proc.returncode == 2 and str(target) in proc.stderr


def test_two_runs_started_together_get_two_folders(tmp_path):
    """Two runs of one spec at the same moment: two complete report folders, never one shared."""
    import subprocess
    import sys

    spec = tiny_incident(tmp_path / "incident")
    out = tmp_path / "reports"
    procs = [subprocess.Popen([sys.executable, "-m", "mlinvestigate", "run", str(spec), "--out", str(out),
                               "--checks", "health", "--jobs", "1"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    folders = sorted(p.name for p in out.iterdir())
    assert len(folders) == 2 and folders[1] == folders[0] + "-2", folders
    for name in folders:
        doc = json.loads((out / name / "findings.json").read_text())
        assert set(doc["checks"]) == {"health"} and "diagnosis" in doc
