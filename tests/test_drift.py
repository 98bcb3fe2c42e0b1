"""The drift check on small synthetic incidents, its plots and widget, and end to end on scenarios."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlinvestigate import load_incident
from mlinvestigate.checks import drift
from mlinvestigate.display import table_html
from mlinvestigate.spec import parse_spec


def _incident(folder: Path, ref: pd.DataFrame, prod: pd.DataFrame, *, task: str = "classification",
              thresholds: dict | None = None, **columns):
    """An Incident from two frames written as parquet next to a parsed spec."""
    folder.mkdir(parents=True, exist_ok=True)
    ref.to_parquet(folder / "ref.parquet")
    prod.to_parquet(folder / "prod.parquet")
    spec = {"name": "t", "task": task, "reference": "ref.parquet", "production": "prod.parquet",
            "columns": {"target": "y", "prediction": "pred", **columns}, "thresholds": thresholds or {}}
    return load_incident(parse_spec(spec, source=folder / "incident.yaml"))


def _side(rng, n, *, shift=0.0, cat_p=(0.5, 0.3, 0.2), start="2026-10-01", days=20):
    x = rng.normal(shift, 1, n)
    df = pd.DataFrame({
        "x": x, "z": rng.normal(size=n),
        "cat": rng.choice(["a", "b", "<script>alert(1)</script>"], n, p=list(cat_p)),
        "ts": pd.Timestamp(start) + pd.to_timedelta(np.sort(rng.integers(0, days * 86400, n)), "s"),
    })
    df["y"] = (x + rng.normal(size=n) > 0.5).astype(int)
    df["score"] = 1 / (1 + np.exp(-2 * (x - 0.5)))
    df["pred"] = (df["score"] > 0.5).astype(int)
    return df


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# --- verdicts -----------------------------------------------------------------------------------
def test_shifted_features_are_detected_strongest_first(tmp_path, rng):
    """A numeric shift and a category mix change are found, the larger PSI first, critical."""
    inc = _incident(tmp_path, _side(rng, 4000), _side(rng, 4000, shift=1.0, cat_p=(0.2, 0.3, 0.5)),
                    score="score", timestamp="ts")
    res = drift.run(inc)
    f = res.finding
    assert f.verdict == "detected" and f.severity == "critical"
    assert f.culprits == ["x", "cat"]
    assert set(f.evidence["drifted_features"]) == {"x", "cat"}
    assert f.evidence["domain_classifier"]["auc"] > 0.7 and 0 < f.strength <= 1
    assert list(res.to_df("features")["feature"][:2]) == ["x", "cat"]
    json.dumps(f.to_dict())  # the evidence is JSON-serialisable


def test_same_distribution_is_clear(tmp_path, rng):
    """A control: thousands of rows from one distribution on both sides come out clear."""
    inc = _incident(tmp_path, _side(rng, 3000), _side(rng, 3000, start="2026-11-01"),
                    score="score", timestamp="ts")
    res = drift.run(inc)
    assert res.finding.verdict == "clear" and res.finding.culprits == []
    assert res.finding.severity == "info" and res.finding.strength == 0
    assert not res.to_df("features")["drifted"].any()
    assert not res.to_df("outputs")["drifted"].any()


@pytest.mark.parametrize("seed", range(5))
def test_small_controls_never_alarm(tmp_path, seed):
    """PSI's small-sample bias (≈ 9·(1/n + 1/m)) must not turn 400-row controls into drift."""
    rng = np.random.default_rng(100 + seed)
    inc = _incident(tmp_path, _side(rng, 400), _side(rng, 400))
    assert drift.run(inc, domain=False).finding.verdict in ("clear", "inconclusive")


def test_tiny_data_is_inconclusive_not_a_crash(tmp_path, rng):
    """50 rows a side cannot rule drift out: inconclusive, with the chance level in the summary."""
    inc = _incident(tmp_path, _side(rng, 50), _side(rng, 50), score="score", timestamp="ts")
    res = drift.run(inc)
    assert res.finding.verdict == "inconclusive"
    assert "Too few rows" in res.finding.summary


def test_tiny_data_with_a_huge_shift_is_still_detected(tmp_path, rng):
    inc = _incident(tmp_path, _side(rng, 50), _side(rng, 50, shift=5.0))
    res = drift.run(inc)
    assert res.finding.verdict == "detected" and res.finding.culprits[0] == "x"


def test_joint_shift_found_by_the_domain_classifier(tmp_path, rng):
    """Each feature keeps its distribution but their correlation flips: only the classifier sees it."""
    def side(n, sign):
        a = rng.normal(size=n)
        b = sign * a + 0.3 * rng.normal(size=n)
        return pd.DataFrame({"a": a, "b": b, "y": (a > 0).astype(int), "pred": (a > 0).astype(int)})

    res = drift.run(_incident(tmp_path, side(4000, 1.0), side(4000, -1.0)))
    assert not res.to_df("features")["drifted"].any()
    assert res.finding.verdict == "detected" and set(res.finding.culprits) == {"a", "b"}
    assert res.finding.evidence["culprit_source"] == "domain classifier"
    assert "changed together" in res.finding.summary


def test_thresholds_can_be_overridden(tmp_path, rng):
    """A spec raising psi_warning/psi_critical turns a moderate shift into no drift."""
    ref, prod = _side(rng, 3000), _side(rng, 3000, shift=0.4)
    base = drift.run(_incident(tmp_path / "a", ref, prod), domain=False).finding
    high = drift.run(_incident(tmp_path / "b", ref, prod, thresholds={"drift": {"psi_warning": 5,
                                                                               "psi_critical": 9}}),
                     domain=False).finding
    assert base.verdict == "detected" and high.verdict == "clear"
    assert high.evidence["thresholds"]["psi_warning"] == 5


# --- awkward data -------------------------------------------------------------------------------
def test_every_feature_type_and_an_empty_feature(tmp_path, rng):
    """Numeric, categorical, boolean, datetime and an all-missing feature: reported (the empty one as a
    data warning, since it has nothing to compare), nothing raises."""
    def side(n, drifted):
        df = _side(rng, n)
        df["flag"] = rng.random(n) < (0.6 if drifted else 0.3)
        df["when"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 30 * 86400, n), "s")
        df["empty"] = np.nan
        df["nullable"] = pd.array(rng.integers(0, 5, n), dtype="Int64")
        df.loc[df.index[:10], "nullable"] = pd.NA
        return df

    inc = _incident(tmp_path, side(3000, False), side(3000, True), timestamp="ts")
    assert inc.feature_types["flag"] == "boolean" and inc.feature_types["when"] == "datetime"
    res = drift.run(inc)
    table = res.to_df("features").set_index("feature")
    assert res.finding.culprits == ["flag"]
    assert "empty" not in table.index and any("'empty' have no values in either file" in w for w in inc.warnings)
    assert table.loc["nullable", "missing_reference"] == pytest.approx(10 / 3000)
    json.dumps(res.finding.to_dict())


def test_new_production_category_and_missing_rate(tmp_path, rng):
    """A category reference never saw is counted; a missing-rate jump is reported, not blamed."""
    ref, prod = _side(rng, 3000), _side(rng, 3000)
    prod.loc[prod.index[:600], "cat"] = "brand-new"
    prod.loc[prod.index[600:900], "z"] = np.nan
    res = drift.run(_incident(tmp_path, ref, prod), domain=False)
    table = res.to_df("features").set_index("feature")
    assert table.loc["cat", "unseen_share"] == pytest.approx(0.2) and table.loc["cat", "drifted"]
    assert "1 category unseen" in table.loc["cat", "note"]
    assert not table.loc["z", "drifted"]
    assert res.finding.evidence["missing_rate_changes"]["z"]["production"] == pytest.approx(0.1)


def test_no_timestamp_no_score_skips_the_time_view(tmp_path, rng):
    res = drift.run(_incident(tmp_path, _side(rng, 2000), _side(rng, 2000, shift=1.0)), domain=False)
    assert res.to_df("over_time").empty and "timestamp" in res.data["time"]["skipped"]
    assert list(res.to_df("outputs")["output"]) == ["pred"]
    assert res.finding.verdict == "detected"


def test_multiclass_and_regression_outputs(tmp_path, rng):
    """Multiclass predictions compare as categories; regression predictions as numbers."""
    ref, prod = _side(rng, 2000), _side(rng, 2000)
    for df in (ref, prod):
        df["y"] = np.where(df["x"] > 0.7, "high", np.where(df["x"] < -0.7, "low", "mid"))
        df["pred"] = df["y"]
    res = drift.run(_incident(tmp_path / "mc", ref, prod, timestamp="ts"), domain=False)
    assert res.to_df("outputs")["type"].tolist() == ["categorical"] and res.finding.verdict == "clear"
    for df in (ref, prod):
        df["y"], df["pred"] = df["x"] * 10, df["x"] * 9
    res = drift.run(_incident(tmp_path / "reg", ref, prod, task="regression", timestamp="ts"), domain=False)
    assert res.to_df("outputs")["type"].tolist() == ["numeric"] and res.data["time"]["metric"] == "mae"
    assert res.to_df("over_time")[["mae low", "mae high"]].notna().all().all()


def test_no_features_is_skipped(tmp_path, rng):
    df = _side(rng, 100)[["y", "pred"]]
    inc = _incident(tmp_path, df, df)
    res = drift.run(inc)
    assert res.finding.verdict == "skipped" and "columns.features" in res.finding.summary


def test_category_text_is_escaped_on_the_page(tmp_path, rng):
    """A category named <script> reaches the HTML as text: tables go through display."""
    res = drift.run(_incident(tmp_path, _side(rng, 500), _side(rng, 500)), domain=False)
    bins = res.data["stats"]["cat"].bins
    html = table_html(bins)
    assert "<script>" not in html and "&lt;script&gt;" in html


# --- over time ----------------------------------------------------------------------------------
def test_time_view_finds_a_sudden_change(tmp_path, rng):
    """x shifts on day 10 of 20: the pattern is sudden and dated."""
    ref = _side(rng, 4000)
    prod = _side(rng, 4000)
    late = prod["ts"] >= pd.Timestamp("2026-10-11")
    prod.loc[late, "x"] += 1.5
    res = drift.run(_incident(tmp_path, ref, prod, timestamp="ts"), domain=False)
    info = res.data["time"]
    assert info["period"] == "day" and info["pattern"] == "sudden"
    assert info["since"].startswith("2026-10-11")
    assert "sudden" in res.finding.summary
    table = res.to_df("over_time")
    assert {"period", "rows", "accuracy", "accuracy low", "psi x"} <= set(table.columns)


@pytest.mark.parametrize("series, pattern", [
    ([0.0, 0.01, 0.0, 0.02, 0.01, 0.0], "stable"),
    ([0.0, 0.01, 0.0, 0.5, 0.52, 0.49, 0.5], "sudden"),
    ([0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35], "gradual"),
    ([0.4, 0.42, 0.38, 0.41, 0.39, 0.4], "present from the start"),
    ([0.0, 0.3, 0.0, 0.01, 0.0, 0.02], "intermittent"),
    ([0.5, 0.6], "unknown"),
])
def test_drift_pattern(series, pattern):
    assert drift.drift_pattern(np.array(series), 0.1)[0] == pattern


def test_weekly_periods_for_long_spans():
    ts = pd.Series(pd.date_range("2026-01-01", periods=100, freq="D"))
    period, unit = drift.period_of(ts)
    assert unit == "week" and (period.dt.day_of_week == 0).all()
    assert drift.period_of(ts[:30])[1] == "day" and drift.period_of(ts[:2])[1] == "hour"


# --- plots and widget ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def drifted_result(tmp_path_factory):
    rng = np.random.default_rng(1)
    ref, prod = _side(rng, 3000), _side(rng, 3000, shift=1.0, cat_p=(0.2, 0.3, 0.5))
    for df, share in ((ref, 0.3), (prod, 0.6)):
        df["flag"] = rng.random(len(df)) < share
        df["when"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 30 * 86400, len(df)), "s")
    return drift.run(_incident(tmp_path_factory.mktemp("plots"), ref, prod, score="score", timestamp="ts"))


def test_plots_have_titles_and_labelled_axes(drifted_result):
    import matplotlib.pyplot as plt

    from mlinvestigate.plots import drift as plots

    figs = [plots.distribution(drifted_result, f) for f in ("x", "cat", "flag", "when", "score")]
    figs += [plots.psi_bars(drifted_result), plots.over_time(drifted_result),
             plots.domain_importance(drifted_result)]
    for fig in figs:
        assert fig is not None
        for ax in fig.axes:
            assert ax.get_title() and ax.get_ylabel()
        assert any(ax.get_xlabel() for ax in fig.axes)
        plt.close(fig)
    with pytest.raises(KeyError, match="nope"):
        plots.distribution(drifted_result, "nope")


def test_widget_redraws_when_the_feature_changes(drifted_result):
    """Setting the picker from Python replaces the output with the new feature's table and plot."""
    from mlinvestigate.widgets.drift import feature_explorer

    w = feature_explorer(drifted_result)
    assert w.picker.value == "x" and len(w.output.outputs) == 3
    first = w.output.outputs
    w.picker.value = "cat"
    assert w.output.outputs != first and len(w.output.outputs) == 3
    html = w.output.outputs[1]["data"]["text/html"]
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert "image/png" in w.output.outputs[2]["data"]
    w.picker.value = "pred"  # a model output is in the picker too
    assert ">pred<" in w.output.outputs[0]["data"]["text/html"]


# --- the reusable domain classifier -------------------------------------------------------------
def test_domain_classifier_for_attribution(tmp_path, rng):
    from mlinvestigate.stats.domain import density_ratios

    inc = _incident(tmp_path, _side(rng, 2000), _side(rng, 2000, shift=1.0))
    dc = drift.domain_classifier(inc)
    w = density_ratios(dc, inc.reference)
    assert len(w) == len(inc.reference) and np.isfinite(w).all()
    # reference rows that look like production get more weight
    assert np.corrcoef(inc.reference["x"], w)[0, 1] > 0.3


# --- end to end on the scenarios ----------------------------------------------------------------
@pytest.mark.e2e
@pytest.mark.parametrize("name", ["control", "control-multiclass", "control-regression"])
def test_controls_are_clear_end_to_end(investigated, name):
    assert investigated(name, checks=("drift",))["checks"]["drift"]["verdict"] == "clear"


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["drift", "drift-regression"])
def test_drift_scenarios_blame_the_planted_features(investigated, name):
    from mlinvestigate.scenarios import EXPECTED

    doc = investigated(name, checks=("drift",))
    finding = doc["checks"]["drift"]
    expected = EXPECTED[name]["culprits"]
    assert finding["verdict"] == "detected" and finding["severity"] == "critical"
    assert set(finding["culprits"][:len(expected)]) == set(expected)
    assert finding["evidence"]["over_time"]["pattern"] == "gradual"
    page = (Path(doc["_folder"]) / "drift.html").read_text()
    assert "Data drift" in page and "Traceback" not in page


def test_notebook_has_a_tagged_parameters_cell_and_no_outputs():
    import nbformat

    nb = nbformat.read(Path(__file__).resolve().parent.parent / "notebooks" / "drift.ipynb", as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "interactive = True" in params[0].source
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
