"""Monitoring: windows, history, alerts, triggers, the trend page and the `monitor` command."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from mlinvestigate import monitoring, scenarios
from mlinvestigate.contract import Context, MonitorRule, monitor_rules, register, registered, unregister
from mlinvestigate.data import load_incident
from mlinvestigate.errors import DataError, InvestigationError, SpecError
from mlinvestigate.monitoring import alerts as al
from mlinvestigate.monitoring import windows as win
from mlinvestigate.spec import load_spec, parse_spec
from mlinvestigate.thresholds import markdown as thresholds_doc
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


@pytest.fixture(scope="module")
def monitored(made, tmp_path_factory):
    """``monitored(name) -> MonitorResult`` of one monitoring run of a scenario (run once per module)."""
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            cache[name] = monitoring.monitor(made(name), out=tmp_path_factory.mktemp(f"out-{name}"), page=False)
        return cache[name]

    return get


def _copy(spec, tmp_path, **monitoring_keys):
    """A private copy of a scenario's folder (tests that edit the data), with ``monitoring`` keys set."""
    folder = tmp_path / "incident"
    shutil.copytree(spec.parent, folder)
    path = folder / "incident.yaml"
    if monitoring_keys:
        data = yaml.safe_load(path.read_text())
        data.setdefault("monitoring", {}).update(monitoring_keys)
        path.write_text(yaml.safe_dump(data))
    return path


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


def test_control_raises_no_alert(monitored):
    result = monitored("control")
    assert len(result.computed) == 28 and result.alerts == [] and result.exit_code == 0
    state = monitoring.load(result.folder)
    assert len(state.windows) == 28 and state.features["feature"].nunique() == 8
    assert not any(t["status"] == "triggered" for t in state.triggers)
    # the domain classifier ran on every window (each smaller than its sample size) and saw nothing
    w = state.windows
    assert w["domain_auc"].notna().all() and (w["domain_rows"] == w["rows"]).all()
    assert abs(w["domain_auc"].median() - 0.5) < 0.05
    assert (w["domain_auc_low"] < state.info["rules"]["domain_auc"]["warning"]).all()


def test_drift_alerts_name_the_drifted_features_and_rerun_is_idempotent(made, monitored):
    first = monitored("drift")
    assert first.exit_code == monitoring.NEW_ALERT_EXIT
    psi = {a["subject"] for a in first.alerts if a["rule"] == "feature_psi" and a["severity"] == "critical"}
    assert psi == {"amount", "distance_km"}
    assert {t["trigger"] for t in first.triggers if t["status"] == "triggered"} >= {"drift"}
    files = sorted((first.folder / "history" / "1d").glob("*.parquet"))
    second = monitoring.monitor(made("drift"), out=first.folder.parent, page=False)
    assert second.computed == [] and second.unchanged == 28 and second.new == [] and second.exit_code == 0
    assert [a["id"] for a in second.alerts] == [a["id"] for a in first.alerts]
    assert sorted((first.folder / "history" / "1d").glob("*.parquet")) == files


def test_drift_moves_the_domain_classifier(monitored):
    """The drifted share of traffic grows from 10% to 60%: the per-window classifier's AUC grows with
    it and the joint-drift rule fires once the interval's low end passes the bar."""
    result = monitored("drift")
    state = monitoring.load(result.folder)
    auc, low = state.windows["domain_auc"].to_numpy(), state.windows["domain_auc_low"].to_numpy()
    assert auc[-7:].mean() > auc[:7].mean() + 0.15
    bar = state.info["rules"]["domain_auc"]["warning"]
    joint = [a for a in result.alerts if a["rule"] == "domain_auc"]
    assert joint and {a["subject"] for a in joint} == {"all features"} and joint[0]["layer"] == "behaviour"
    assert low[-1] > bar and all(a["value"] > bar for a in joint)
    assert state.info["rules"]["domain_auc"]["check"] == "drift"


def test_since_and_window_length(made, tmp_path):
    later = monitoring.monitor(made("control"), out=tmp_path, since="2026-11-01", page=False)
    assert later.computed[0] == "2026-11-01" and len(later.computed) == 8 and later.alerts == []
    weekly = monitoring.monitor(made("control"), out=tmp_path, window="1w", page=False)
    assert weekly.computed == ["2026-10-12", "2026-10-19", "2026-10-26", "2026-11-02"]  # Mondays
    state = monitoring.load(weekly.folder, "1w")
    assert not state.windows["partial"].any()
    assert state.windows["rows"].sum() == ROWS


def test_late_labels_change_only_their_windows(made, tmp_path):
    spec = _copy(made("control"), tmp_path, domain_rows=0)
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


def test_interrupted_run_resumes_without_duplicates(made, monitored, tmp_path):
    spec = made("control")
    shutil.copytree(monitored("control").folder, tmp_path / "control")
    result = monitoring.MonitorResult(folder=tmp_path / "control")
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
    spec = _copy(made("control"), tmp_path, domain_rows=0)
    prod_path = spec.parent / "production.parquet"
    prod = pd.read_parquet(prod_path)
    prod["revenue"] = 2.0
    prod.to_parquet(prod_path, index=False)
    data = yaml.safe_load(spec.read_text())
    data["monitoring"] = {"value_columns": ["revenue"], "error_cost": 10, "domain_rows": 0,
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


# --- alert rules come from the checks' contracts ------------------------------------------------------
def test_rule_table_comes_from_the_contracts(made):
    spec_path = made("control")
    table = al.rule_settings(load_spec(spec_path))
    declared = {rule.id: c.id for c in registered().values() for rule in c.monitor}
    assert {rid: conf["check"] for rid, conf in table.items()} == declared == \
        {rid: c.id for rid, (c, _) in monitor_rules().items()}
    assert declared["feature_psi"] == declared["domain_auc"] == "drift"
    assert declared["error_rate"] == declared["latency_p95"] == declared["volume_change"] == "health"
    assert declared["model_version"] == "deployment"
    assert declared["metric_drop"] == declared["offline_gap"] == "measurement"
    drift = registered()["drift"]
    # one source of truth for a bar: the drift check's own thresholds
    assert table["feature_psi"]["threshold"] == drift.thresholds["psi_critical"].default == 0.25
    assert table["feature_psi"]["warning"] == drift.thresholds["psi_warning"].default == 0.1
    assert table["domain_auc"]["warning"] == drift.thresholds["domain_auc_warning"].default
    assert table["latency_p95"]["threshold"] == 50 and table["model_version"]["subject"] == "not 2.0"
    # a check's threshold override moves its rule; monitoring.alerts overrides win over both
    data = yaml.safe_load(spec_path.read_text())
    data["thresholds"] = {"drift": {"psi_critical": 0.3, "domain_auc_warning": 0.62}}
    data["monitoring"] = {"alerts": {"domain_auc": {"warning": 0.65}, "latency_p95": {"enabled": False}}}
    moved = al.rule_settings(parse_spec(data, source=spec_path))
    assert moved["feature_psi"]["threshold"] == 0.3 and moved["domain_auc"]["warning"] == 0.65
    assert not moved["latency_p95"]["enabled"] and "monitoring.alerts" in moved["latency_p95"]["off"]
    del data["expected"]
    data["monitoring"] = {}
    unset = al.rule_settings(parse_spec(data, source=spec_path))["latency_p95"]
    assert not unset["enabled"] and "expected.latency_p95_ms" in unset["off"]


def _toy_measure(incident, rows):
    """The toy rule's statistic: share of rows with an amount above 100, with a Wilson interval."""
    from mlinvestigate.stats.intervals import wilson

    hits = int((pd.to_numeric(rows["amount"], errors="coerce") > 100).sum())
    lo, hi = wilson(hits, len(rows))
    return {"toy_share": hits / len(rows), "toy_share_low": float(lo)}


def test_a_check_brings_its_own_monitoring_rule(made):
    """A toy check registered from a test declares a rule: the spec accepts its override, the monitor's
    rule table and docs/thresholds.md list it, its measure runs per window and it fires."""
    from tests import test_contract_extension as toy

    rule = MonitorRule("toy_share", "behaviour", critical=0.3, warning=0.2, unit="share", statistic="toy_share",
                       subject="large amounts", watches="share of large amounts", measure=_toy_measure,
                       sentence="{value} of amounts are large (bar {bar}, {level})")
    spec_path = made("control")
    data = yaml.safe_load(spec_path.read_text())
    data["monitoring"] = {"alerts": {"toy_share": {"warning": 0.25}}}
    register(dataclasses.replace(toy.CONTRACT, monitor=(rule,)))
    try:
        spec = parse_spec(data, source=spec_path)
        table = al.rule_settings(spec)
        assert {k: table["toy_share"][k] for k in ("check", "layer", "threshold", "warning", "enabled")} == \
            {"check": "toy", "layer": "behaviour", "threshold": 0.3, "warning": 0.25, "enabled": True}
        assert "| `toy_share` | toy | behaviour | 0.3 |" in thresholds_doc()
        incident = load_incident(spec)
        stats = win.measured(incident, incident.production.head(200))
        assert stats["toy_share"] == pytest.approx(np.mean(incident.production["amount"].head(200) > 100))
        history = pd.DataFrame({"window_start": pd.date_range("2026-10-01", periods=6), "partial": False,
                                "rows": 100.0, "toy_share": [0.1, 0.1, 0.4, 0.4, 0.4, 0.1],
                                "toy_share_low": [0.05, 0.05, 0.35, 0.35, 0.35, 0.05]})
        settings = al.Settings(float("nan"), True, 30, 0.05, 1.0, None, None, None, 7, table, al.rules())
        fired = al.firing(al.crossings(history, pd.DataFrame(), settings), settings)
        labels = {w: str(w.date()) for w in history["window_start"]}
        found = [a for a in al.episodes(fired, labels, history["window_start"].iloc[-1], settings)
                 if a["rule"] == "toy_share"]
        assert [(a["severity"], a["first_window"], a["windows"], a["layer"]) for a in found] == \
            [("critical", "2026-10-04", 2, "behaviour")]
        assert found[0]["summary"].startswith("40.0% of amounts are large (bar 30.0%, critical)")
    finally:
        unregister("toy")
    with pytest.raises(SpecError, match=r"monitoring\.alerts\.toy_share"):
        parse_spec(data, source=spec_path)


def test_summary_alerts_quote_the_monitor_bars(made, tmp_path):
    """The summary page's "what to monitor" conditions are the monitor's bars, overrides included."""
    spec = _copy(made("drift"), tmp_path, alerts={"feature_psi": {"threshold": 0.4, "warning": 0.15}})
    incident = load_incident(spec)
    from mlinvestigate import metrics

    doc = {"metric": metrics.metric_summary(incident), "checks": {}}
    ctx = Context(incident, doc)
    checks = registered()
    found = {}
    for cid, finding in (("drift", {"verdict": "detected", "culprits": ["amount"], "evidence": {}}),
                         ("health", {"verdict": "clear", "culprits": [], "evidence": {}}),
                         ("deployment", {"verdict": "clear", "culprits": [], "evidence": {}}),
                         ("measurement", {"verdict": "clear", "culprits": [], "evidence": {}})):
        found.update({a["alert"]: a for a in checks[cid].alerts(finding, ctx)})
    assert "> 0.15" in found["drift:amount"]["condition"] and "> 0.4" in found["drift:all_features"]["condition"]
    assert "> 0.6" in found["drift:joint"]["condition"]
    assert "1.0%" in found["error_rate"]["condition"] and "50 ms" in found["latency_p95"]["condition"]
    assert "1%" in found["model_version"]["condition"]
    assert f"{doc['metric']['reference'] - 0.15:.3f}" in found["metric_gap"]["condition"]
    assert "0.05 below" in found["metric_drop"]["condition"]
    rules = monitor_rules()
    quoted = {a["monitor"] for a in found.values() if "monitor" in a}
    assert quoted == {"feature_psi", "domain_auc", "error_rate", "latency_p95", "model_version", "offline_gap",
                      "metric_drop"} and quoted <= set(rules)


# --- performance without labels: multiclass estimate, regression said ---------------------------------
def _with_class_probabilities(spec) -> tuple[list, pd.DataFrame]:
    """Add the scenario model's class probabilities (``p_<class>``, and ``p_top``) to both files; the
    production labels of the last five days are blanked. Returns the classes and the full production."""
    import joblib

    folder = spec.parent
    model = joblib.load(folder / "model.joblib")
    features = yaml.safe_load(spec.read_text())["columns"]["features"]
    full = None
    for name in ("reference.csv", "production.csv"):
        df = pd.read_csv(folder / name)
        proba = model.predict_proba(df[features])
        for j, c in enumerate(model.classes_):
            df[f"p_{c}"] = proba[:, j]
        df["p_top"] = proba.max(axis=1)
        if name == "production.csv":
            full = df.copy()
            df.loc[pd.to_datetime(df["event_time"]) >= pd.Timestamp("2026-11-04"), "fraud_type"] = None
        df.to_csv(folder / name, index=False)
    return list(model.classes_), full


def test_multiclass_accuracy_is_estimated_from_class_probabilities(made, tmp_path):
    spec = _copy(made("control-multiclass"), tmp_path, domain_rows=0)
    classes, full = _with_class_probabilities(spec)
    data = yaml.safe_load(spec.read_text())
    data["monitoring"]["class_scores"] = {c: f"p_{c}" for c in classes}
    spec.write_text(yaml.safe_dump(data))
    result = monitoring.monitor(spec, out=tmp_path / "out", page=False)
    state = monitoring.load(result.folder)
    assert state.info["estimator"]["available"] and "predicted class" in state.info["estimator"]["method"]
    perf = state.performance()
    late = perf["estimated"].to_numpy()
    assert late.sum() == 5 and perf["value"].notna().all() and result.alerts == []
    full["day"] = pd.to_datetime(full["event_time"]).dt.floor("D")
    realised = (full["fraud_type"] == full["pred"]).groupby(full["day"]).mean().to_numpy()
    error = np.abs(perf["value"].to_numpy()[late] - realised[late])
    assert error.mean() < 0.05 and error.max() < 0.1
    assert state.windows["low_confidence"].notna().all() and "p_none" not in set(state.features["feature"])

    # a top-class confidence column serves the same estimate
    data["monitoring"] = {"domain_rows": 0}
    data["columns"]["score"] = "p_top"
    spec.write_text(yaml.safe_dump(data))
    incident = load_incident(spec)
    base = win.prepare_baseline(incident)
    assert base.estimator["available"]
    rows = incident.production[pd.to_datetime(incident.production["event_time"]) >= pd.Timestamp("2026-11-04")]
    est = win.window_stats(incident, base, rows)[0]["estimate"]
    assert est == pytest.approx((full.loc[full["day"] >= "2026-11-04", "fraud_type"] ==
                                 full.loc[full["day"] >= "2026-11-04", "pred"]).mean(), abs=0.06)

    data["monitoring"] = {"class_scores": {"card_thief": "p_card_theft"}}
    spec.write_text(yaml.safe_dump(data))
    with pytest.raises(DataError, match="'card_thief'.*card_theft"):
        win.check_columns(load_incident(spec))
    data["monitoring"] = {"class_scores": {"card_theft": "p_card"}}
    spec.write_text(yaml.safe_dump(data))
    with pytest.raises(DataError, match=r"'p_card'.*monitoring\.class_scores\.card_theft"):
        win.check_columns(load_incident(spec))


def test_regression_without_labels_is_not_judged_and_says_so(made, tmp_path):
    spec = _copy(made("control-regression"), tmp_path, domain_rows=0)
    prod_path = spec.parent / "production.parquet"
    prod = pd.read_parquet(prod_path)
    prod.loc[prod["event_time"] >= pd.Timestamp("2026-11-04"), "loss_usd"] = np.nan
    prod.to_parquet(prod_path, index=False)
    result = monitoring.monitor(spec, out=tmp_path / "out", page=False)
    state = monitoring.load(result.folder)
    perf = state.performance()
    assert perf["value"].isna().sum() == 5 and not perf["estimated"].any() and result.alerts == []
    assert perf["value"].iloc[:23].notna().all()  # MAE where labels exist
    doc = json.loads((result.folder / "alerts.json").read_text())
    [note] = doc["not_judged"]
    assert note["windows"] == 5 and note["latest"] and set(note["rules"]) == {"metric_drop", "offline_gap"}
    assert "regression" in note["summary"] and "2026-11-04 to 2026-11-08" in note["summary"]
    from mlinvestigate.monitoring import state as pages

    assert "regression model has no label-free estimate" in pages.estimator_text(state)
    assert "not judged" in pages.headline_html(state)


# --- DuckDB reads the log: aggregates per window in the engine ---------------------------------------
def test_duckdb_windows_give_the_pandas_alerts(made, monitored, tmp_path):
    """The same scenario read by DuckDB (counts, missing values, bins and categories per window in
    SQL, the rest on each window's sample, here the whole window) raises the pandas engine's alerts
    with the same numbers."""
    spec = _copy(made("drift"), tmp_path)
    data = yaml.safe_load(spec.read_text())
    data["engine"] = "duckdb"
    spec.write_text(yaml.safe_dump(data))
    duck = monitoring.monitor(spec, out=tmp_path / "out", page=False)
    pandas_run = monitored("drift")
    assert [(a["id"], a["severity"], a["windows"]) for a in duck.alerts] == \
        [(a["id"], a["severity"], a["windows"]) for a in pandas_run.alerts]
    a, b = monitoring.load(duck.folder), monitoring.load(pandas_run.folder)
    assert a.info["engine"]["name"] == "duckdb" and b.info["engine"]["name"] == "pandas"
    for col in ("rows", "labelled_rows", "failed_rate", "version_other_share", "latency_p95", "metric",
                "estimate", "domain_auc", "missing_max"):
        assert np.allclose(a.windows[col], b.windows[col], equal_nan=True), col
    fa, fb = (s.features.sort_values(["window_start", "feature"], ignore_index=True) for s in (a, b))
    for col in ("psi", "psi_excess", "missing_rate"):
        assert np.allclose(fa[col], fb[col], equal_nan=True), col

    # the log is never read whole: the incident holds a 1,000-row sample, the windows count every row
    data["sample_rows"] = 1000
    spec.write_text(yaml.safe_dump(data))
    from mlinvestigate.monitoring.sql import EngineWindows

    incident = load_incident(spec)
    source = EngineWindows(incident, win.parse_window("1d"))
    try:
        assert len(incident.production) == 1000
        assert sum(int(source.counts[w]["n_rows"]) for _, w, _ in source.starts) == ROWS
        start, w, _ = source.starts[5]
        rows = source.rows(w, limit=50)
        assert len(rows) == 50 and (win.Window.start_of(win.parse_window("1d"), rows["event_time"]) == start).all()
    finally:
        source.close()


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
    assert "Joint drift" in page and "rows a side" in page
