"""The incident spec: every contract key accepted, bad specs rejected with helpful messages."""

from __future__ import annotations

import pytest
import yaml

from mlinvestigate import SpecError, load_spec
from tests.helpers import tiny_incident


def _write(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


def test_full_contract_spec_is_accepted(tmp_path):
    """Every key DESIGN.md documents validates, and paths resolve relative to the spec file."""
    spec_path = tiny_incident(tmp_path / "inc")
    (tmp_path / "inc" / "model.joblib").write_bytes(b"x")
    data = yaml.safe_load(spec_path.read_text())
    data.update({
        "serving": {"offline": "production.parquet"},
        "model": {"path": "model.joblib", "sha256": "a" * 64, "version": 2.0},
        "expected": {"daily_volume": 1000, "latency_p95_ms": 50},
        "thresholds": {"drift": {"psi_critical": 0.3}},
        "leakage": {"available_at": {"x1": "ts"}},
    })
    data["columns"].update({"positive_label": 1, "model_version": "v", "latency_ms": "lat",
                            "status": "st", "label_source": "src", "segments": ["device"],
                            "features": ["x1", "x2"]})
    spec = load_spec(_write(spec_path, data))
    assert spec.reference == (tmp_path / "inc" / "reference.parquet").resolve()
    assert spec.model.version == "2.0"
    assert spec.thresholds["drift"]["psi_critical"] == 0.3


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(refrence="x.parquet"), "Did you mean 'reference'"),
    (lambda d: d["columns"].update(targt="y"), "Did you mean 'target'"),
    (lambda d: d.pop("production"), "missing required key 'production'"),
    (lambda d: d.update(name="Fraud Gap"), "not a valid name"),
    (lambda d: d.update(task="ranking"), "task"),
    (lambda d: d.update(reference="nope.parquet"), "reference file .*nope.parquet.* does not exist"),
    (lambda d: d.update(thresholds={"drfit": {"psi_critical": 1}}), "Did you mean 'drift'"),
    (lambda d: d.update(thresholds={"drift": {"psi_crit": 1}}), "Did you mean 'psi_critical'"),
    (lambda d: d.update(model={"sha256": "abc"}), "sha256"),
])
def test_bad_specs_name_the_key(tmp_path, edit, message):
    """Each mistake is reported with the key and a fix, never a bare traceback."""
    spec_path = tiny_incident(tmp_path)
    data = yaml.safe_load(spec_path.read_text())
    edit(data)
    with pytest.raises(SpecError, match=message):
        load_spec(_write(spec_path, data))


def test_missing_spec_file(tmp_path):
    """A spec path that does not exist says how to create one."""
    with pytest.raises(SpecError, match="mlinvestigate new"):
        load_spec(tmp_path / "none.yaml")


def test_invalid_yaml(tmp_path):
    """Broken YAML names the file."""
    p = tmp_path / "incident.yaml"
    p.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(p)
