"""The monitor on time-structured logs: no false alarm before a dated cause, an alert within a day of it."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from mlinvestigate import monitoring
from mlinvestigate.errors import InvestigationError
from mlinvestigate.scenarios import timeline

ROWS_PER_DAY = 100
REFERENCE_ROWS = 3000


def _make(variant, tmp_path, seed=0):
    """A 60-day timeline, small, without the per-window domain classifier (its cost is in its fits; the
    rules under test here read the per-feature statistics)."""
    spec = timeline.make(variant, tmp_path / variant, seed=seed, rows_per_day=ROWS_PER_DAY,
                         reference_rows=REFERENCE_ROWS)
    data = yaml.safe_load(spec.read_text())
    data.setdefault("monitoring", {})["domain_rows"] = 0
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    return spec


def _day(label: str, spec) -> int:
    return (pd.Timestamp(label) - pd.Timestamp(timeline.info(spec)["first_day"])).days


def test_timeline_files_and_days(tmp_path):
    spec = _make("drift-day30", tmp_path)
    data = yaml.safe_load(spec.read_text())
    assert data["columns"]["timestamp"] == "event_time" and data["expected"]["daily_volume"] == ROWS_PER_DAY
    prod = pd.read_parquet(spec.parent / data["production"])
    days = (prod["event_time"].dt.floor("D") - pd.Timestamp(timeline.info(spec)["first_day"])).dt.days
    assert days.min() == 0 and days.max() == 59 and days.nunique() == 60
    per_day = days.value_counts()
    assert per_day.between(60, 140).all()
    # the drift starts on day 30 and not before: large, far payments only from then on
    far = prod["distance_km"] > 500
    assert far[days < 30].mean() < 0.01 and far[days >= 30].mean() > 0.2
    assert (prod["event_time"].dt.hour == prod["hour"]).all()  # the hour feature matches the clock
    with pytest.raises(InvestigationError, match="drift-day30"):
        timeline.make("drift-day31", tmp_path / "bad")


def test_steady_log_raises_nothing(tmp_path):
    spec = _make("steady", tmp_path)
    result = monitoring.monitor(spec, out=tmp_path / "out", page=False)
    assert len(result.computed) == 60
    assert result.alerts == [] and result.exit_code == 0  # no alert and no warning


def test_drift_from_day_30_alerts_on_day_30_or_31(tmp_path):
    spec = _make("drift-day30", tmp_path)
    result = monitoring.monitor(spec, out=tmp_path / "out", page=False)
    assert result.alerts
    firsts = {(a["rule"], a["subject"]): _day(a["first_window"], spec) for a in result.alerts}
    assert min(firsts.values()) >= 30  # nothing before the onset
    psi = [d for (rule, subject), d in firsts.items() if rule == "feature_psi" and subject in timeline.DRIFTED]
    assert psi and min(psi) <= 31
    assert {s for (rule, s) in firsts if rule == "feature_psi"} <= set(timeline.DRIFTED)


def test_field_emptied_at_serving_on_day_40_is_named_on_day_40_or_41(tmp_path):
    spec = _make("serving-empty-day40", tmp_path)
    result = monitoring.monitor(spec, out=tmp_path / "out", page=False)
    firsts = [(a["rule"], a["subject"], _day(a["first_window"], spec)) for a in result.alerts]
    assert firsts and min(d for *_, d in firsts) >= 40
    missing = [(s, d) for rule, s, d in firsts if rule == "missing_rate"]
    assert missing and {s for s, _ in missing} == {timeline.EMPTIED} and min(d for _, d in missing) <= 41
    assert any(a["rule"] == "missing_rate" and a["severity"] == "critical" for a in result.alerts)


def test_late_labels_replace_the_estimates_of_the_last_14_days(tmp_path):
    spec = _make("labels-delayed", tmp_path)
    out = tmp_path / "out"
    first = monitoring.monitor(spec, out=out, page=False)
    assert len(first.computed) == 60 and first.alerts == []
    perf = monitoring.load(first.folder).performance()
    assert len(perf) == 60 and perf["value"].notna().all()
    assert not perf["estimated"].iloc[:46].any() and perf["estimated"].iloc[46:].all()  # the estimate stands in
    late_days = sorted(str(pd.Timestamp(s).date()) for s in perf["window_start"].iloc[46:])

    assert timeline.land_labels(spec) > 0  # the labels land, 14 days late
    after = monitoring.monitor(spec, out=out, page=False)
    assert sorted(after.changed) == late_days and sorted(after.computed) == late_days
    assert set(after.changed.values()) == {"labels arrived or changed"} and after.unchanged == 46
    state = monitoring.load(after.folder)
    perf = state.performance()
    assert len(perf) == 60 and perf["window_start"].is_unique and not perf["estimated"].any()
    assert len(list((after.folder / "history" / "1d").glob("*.parquet"))) == 60  # nothing duplicated
    assert (state.windows["labelled_rows"].iloc[46:] >= 0.9 * state.windows["rows"].iloc[46:]).all()
    assert after.alerts == [] and after.exit_code == 0


def test_timeline_from_the_command_line(tmp_path):
    from tests.conftest import run_cli

    made = run_cli("scenarios", "timeline", "steady", tmp_path / "t", "--days", "3", "--rows-per-day", "20")
    assert made.returncode == 0, made.stderr
    spec = tmp_path / "t" / "incident.yaml"
    assert spec.exists() and timeline.info(spec)["days"] == 3
    assert len(pd.read_parquet(tmp_path / "t" / "production.parquet")) == 60
    bad = run_cli("scenarios", "timeline", "drift-day31", tmp_path / "u")
    assert bad.returncode == 2 and "drift-day30" in bad.stderr and not (tmp_path / "u" / "incident.yaml").exists()
