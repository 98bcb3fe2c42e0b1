"""Monitoring: windows, history, alerts, triggers, the trend page and the `monitor` command."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import yaml

from mlinvestigate import monitoring, scenarios
from mlinvestigate.errors import InvestigationError, SpecError
from mlinvestigate.monitoring import windows as win
from mlinvestigate.spec import load_spec
from tests.conftest import run_cli

ROWS = 3000


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """``made(name) -> incident.yaml`` of a small scenario (made once per module)."""
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            cache[name] = scenarios.make(name, tmp_path_factory.mktemp(f"mon-{name}"), rows=ROWS)
        return cache[name]

    return get


def _copy(spec, tmp_path):
    """A private copy of a scenario's folder (tests that edit the data)."""
    folder = tmp_path / "incident"
    shutil.copytree(spec.parent, folder)
    return folder / "incident.yaml"


def test_window_lengths():
    assert win.parse_window("1d").length == pd.Timedelta(days=1)
    assert win.parse_window("12h").length == pd.Timedelta(hours=12)
    assert win.parse_window("1w").weekly
    for bad in ("", "0d", "daily", "5s"):
        with pytest.raises(InvestigationError, match="window"):
            win.parse_window(bad)


def test_unknown_monitoring_key_is_named(made, tmp_path):
    spec = _copy(made("control"), tmp_path)
    data = yaml.safe_load(spec.read_text())
    data["monitoring"] = {"alerts": {"feature_pis": {"threshold": 0.3}}}
    spec.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError, match=r"monitoring\.alerts\.feature_pis.*feature_psi"):
        load_spec(spec)


def test_control_raises_no_alert(made, tmp_path):
    result = monitoring.monitor(made("control"), out=tmp_path, page=False)
    assert len(result.computed) == 28 and result.alerts == [] and result.exit_code == 0
    state = monitoring.load(result.folder)
    assert len(state.windows) == 28 and state.features["feature"].nunique() == 8
    assert not any(t["status"] == "triggered" for t in state.triggers)


def test_drift_alerts_name_the_drifted_features_and_rerun_is_idempotent(made, tmp_path):
    first = monitoring.monitor(made("drift"), out=tmp_path, page=False)
    assert first.exit_code == monitoring.NEW_ALERT_EXIT
    psi = {a["subject"] for a in first.alerts if a["rule"] == "feature_psi" and a["severity"] == "critical"}
    assert psi == {"amount", "distance_km"}
    assert {t["trigger"] for t in first.triggers if t["status"] == "triggered"} >= {"drift"}
    files = sorted((first.folder / "history" / "1d").glob("*.parquet"))
    second = monitoring.monitor(made("drift"), out=tmp_path, page=False)
    assert second.computed == [] and second.unchanged == 28 and second.new == [] and second.exit_code == 0
    assert [a["id"] for a in second.alerts] == [a["id"] for a in first.alerts]
    assert sorted((first.folder / "history" / "1d").glob("*.parquet")) == files


def test_since_and_window_length(made, tmp_path):
    later = monitoring.monitor(made("control"), out=tmp_path, since="2026-11-01", page=False)
    assert later.computed[0] == "2026-11-01" and len(later.computed) == 8 and later.alerts == []
    weekly = monitoring.monitor(made("control"), out=tmp_path, window="1w", page=False)
    assert weekly.computed == ["2026-10-12", "2026-10-19", "2026-10-26", "2026-11-02"]  # Mondays
    state = monitoring.load(weekly.folder, "1w")
    assert not state.windows["partial"].any()
    assert state.windows["rows"].sum() == ROWS


def test_late_labels_change_only_their_windows(made, tmp_path):
    spec = _copy(made("control"), tmp_path)
    prod_path = spec.parent / "production.parquet"
    full = pd.read_parquet(prod_path)
    late = full["event_time"] >= pd.Timestamp("2026-11-04")  # the last five days
    waiting = full.copy()
    waiting.loc[late, "is_fraud"] = pd.NA
    waiting.loc[late, "label_source"] = None
    waiting.to_parquet(prod_path, index=False)
    out = tmp_path / "out"
    before = monitoring.monitor(spec, out=out, page=False)
    perf = monitoring.load(before.folder).performance()
    assert perf["estimated"].sum() == 5 and perf["value"].notna().all()  # estimates fill the gap

    full.to_parquet(prod_path, index=False)  # the labels land
    after = monitoring.monitor(spec, out=out, page=False)
    assert sorted(after.changed) == [f"2026-11-{d:02d}" for d in range(4, 9)]
    assert set(after.changed.values()) == {"labels arrived or changed"}
    assert not monitoring.load(after.folder).performance()["estimated"].any()
    assert after.alerts == [] and after.exit_code == 0


def test_interrupted_run_resumes_without_duplicates(made, tmp_path):
    spec = made("control")
    result = monitoring.monitor(spec, out=tmp_path, page=False)
    history = result.folder / "history" / "1d"
    files = sorted(history.glob("*.parquet"))
    for f in files[-3:]:  # as if the run stopped before its last three windows
        f.unlink()
    (history / ".20261108T000000.123.tmp").write_bytes(b"half a file")
    resumed = monitoring.monitor(spec, out=tmp_path, page=False)
    assert resumed.computed == ["2026-11-06", "2026-11-07", "2026-11-08"] and resumed.changed == {}
    assert sorted(history.glob("*.parquet")) == files
    assert len(monitoring.load(result.folder).windows) == 28


def test_business_values_and_overrides(made, tmp_path):
    spec = _copy(made("control"), tmp_path)
    prod_path = spec.parent / "production.parquet"
    prod = pd.read_parquet(prod_path)
    prod["revenue"] = 2.0
    prod.to_parquet(prod_path, index=False)
    data = yaml.safe_load(spec.read_text())
    data["monitoring"] = {"value_columns": ["revenue"], "error_cost": 10,
                          "alerts": {"volume_change": {"enabled": False}},
                          "retraining": {"trained_at": "2026-08-31", "every_days": 30, "new_labels": 1000}}
    spec.write_text(yaml.safe_dump(data))
    result = monitoring.monitor(spec, out=tmp_path / "out", page=False)
    state = monitoring.load(result.folder)
    counts = prod.groupby(prod["event_time"].dt.floor("D")).size().to_numpy()
    assert (state.windows["value:revenue"].to_numpy() == 2.0 * counts).all()
    assert (state.windows["error_cost"] >= 0).all()
    assert not state.info["rules"]["volume_change"]["enabled"]
    status = {t["trigger"]: t["status"] for t in result.triggers}
    assert status["schedule"] == "triggered" and status["new_labels"] == "triggered"


def test_missing_value_column_is_named(made, tmp_path):
    spec = _copy(made("control"), tmp_path)
    data = yaml.safe_load(spec.read_text())
    data["monitoring"] = {"value_columns": ["revenu"]}
    spec.write_text(yaml.safe_dump(data))
    proc = run_cli("monitor", spec, "--out", tmp_path / "out", "--no-page")
    assert proc.returncode == 2 and "'revenu'" in proc.stderr and "monitoring.value_columns" in proc.stderr
    proc = run_cli("monitor", spec, "--out", tmp_path / "out", "--since", "yesterday-ish", "--no-page")
    assert proc.returncode == 2 and "--since" in proc.stderr


@pytest.mark.e2e
def test_investigate_links_the_report_of_the_alerting_window(made, tmp_path):
    result = monitoring.monitor(made("drift"), out=tmp_path, page=False, investigate=True,
                                investigate_checks=["drift"])
    linked = [a for a in result.alerts if a.get("investigation")]
    assert linked and all(a["new"] for a in linked)
    report = result.folder / linked[0]["investigation"]
    assert report.exists()
    findings = json.loads((report.parent / "findings.json").read_text())
    assert findings["checks"]["drift"]["verdict"] == "detected"
    saved = json.loads((result.folder / "alerts.json").read_text())
    assert any(a.get("investigation") == linked[0]["investigation"] for a in saved["alerts"])


@pytest.mark.e2e
def test_cli_control_then_drift_then_rerun(made, tmp_path):
    out = tmp_path / "monitoring"
    proc = run_cli("monitor", made("control"), "--out", out, "--no-page", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "control" / "alerts.json").read_text())["alerts"] == []

    here = made("drift").parent.parent  # relative paths are read from the current directory
    proc = run_cli("monitor", made("drift").relative_to(here), "--out", "monitoring", "--no-page", cwd=here)
    assert proc.returncode == 3, proc.stderr
    folder = here / "monitoring" / "drift"
    doc = json.loads((folder / "alerts.json").read_text())
    assert {"amount", "distance_km"} <= {a["subject"] for a in doc["alerts"] if a["rule"] == "feature_psi"}
    assert doc["new"] and "NEW critical: feature_psi amount" in proc.stdout

    proc = run_cli("monitor", made("drift"), "--out", folder.parent, "--no-page")
    assert proc.returncode == 0, proc.stderr
    assert "0 new" in proc.stdout and "nothing new" in proc.stderr


@pytest.mark.e2e
def test_trend_page_is_self_contained_and_escapes_data(made, tmp_path):
    spec = _copy(made("drift"), tmp_path)
    odd = "amount<script>alert(1)</script>"
    for name in ("reference.parquet", "production.parquet"):
        df = pd.read_parquet(spec.parent / name)
        df.rename(columns={"amount": odd}).to_parquet(spec.parent / name, index=False)
    data = yaml.safe_load(spec.read_text())
    data["columns"]["features"] = [odd if f == "amount" else f for f in data["columns"]["features"]]
    spec.write_text(yaml.safe_dump(data))
    result = monitoring.monitor(spec, out=tmp_path / "out", page=True)
    page = result.page.read_text()
    assert "<script" not in page.lower() and "amount&lt;script&gt;" in page
    assert page.count("data:image/png;base64") >= 5 and "http://" not in page.replace("http://www.w3.org", "")
    assert "Retraining triggers" in page and "feature_psi" in page
