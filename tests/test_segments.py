"""Segments check: per-segment metrics, tests against the rest, mix and contributions, drill-down."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from mlinvestigate import load_incident
from mlinvestigate.checks import segments
from mlinvestigate.findings import jsonable
from mlinvestigate.stats.proportions import (
    difference_ci,
    lower_rate_p,
    proportion_difference,
    two_proportion_z,
)
from mlinvestigate.stats.segments import gap_contributions, grouped_bootstrap_mean, larger_than_rest_p
from tests.helpers import tiny_incident


def countries(ref_share, prod_share, *, failing=None, flip=0.4, seed=1):
    """ref_edit/prod_edit pair adding a country column; ``failing`` gets ``flip`` of its production
    predictions wrong."""
    names = list(ref_share)

    def ref_edit(df):
        df["country"] = np.random.default_rng(seed).choice(names, len(df), p=list(ref_share.values()))
        return df

    def prod_edit(df):
        rng = np.random.default_rng(seed + 1)
        df["country"] = rng.choice(names, len(df), p=list(prod_share.values()))
        if failing:
            hit = (df["country"] == failing).to_numpy() & (rng.random(len(df)) < flip)
            df.loc[hit, "pred"] = 1 - df.loc[hit, "pred"]
        return df

    return ref_edit, prod_edit


def run(tmp_path, ref_share, prod_share, *, failing=None, rows=4000, segments_=("country", "device"), **kw):
    ref_edit, prod_edit = countries(ref_share, prod_share, failing=failing, **kw)
    spec = tiny_incident(tmp_path, rows=rows, ref_edit=ref_edit, prod_edit=prod_edit,
                         columns_extra={"segments": list(segments_)})
    incident = load_incident(spec)
    return incident, segments.run(incident)


SAME = {"US": 0.6, "BR": 0.1, "DE": 0.3}
GROWN = {"US": 0.45, "BR": 0.3, "DE": 0.25}


# --- statistics ---------------------------------------------------------------------------------
def test_two_proportion_z_known_answer():
    """40/100 vs 60/100: one-sided p 0.0023 (z = -2.83)."""
    assert float(two_proportion_z(40, 100, 60, 100)) == pytest.approx(0.00234, abs=1e-4)
    assert float(two_proportion_z(60, 100, 40, 100)) > 0.99


def test_two_sided_two_proportion_z_and_difference():
    """20/200 vs 60/200: two-sided p from z = 0.2 / sqrt(0.2 * 0.8 * 2/200); all-0 sides give p 1,
    an empty side NaN."""
    z = (0.3 - 0.1) / math.sqrt(0.2 * 0.8 * (2 / 200))
    assert float(two_proportion_z(20, 200, 60, 200, alternative="two-sided")) == pytest.approx(2 * stats.norm.sf(z))
    d, p = proportion_difference([20, 0, 5], [200, 100, 0], [60, 0, 5], [200, 100, 10])
    assert d[0] == pytest.approx(-0.2) and p[0] == pytest.approx(2 * stats.norm.sf(z))
    assert d[1] == 0.0 and p[1] == 1.0
    assert np.isnan(d[2]) and np.isnan(p[2])


def test_lower_rate_p_uses_fisher_for_small_counts():
    """Small groups get Fisher's exact one-sided p-value."""
    p = lower_rate_p(np.array([2, 400]), np.array([10, 1000]), np.array([90, 600]), np.array([100, 1000]))
    assert p[0] == pytest.approx(stats.fisher_exact([[2, 8], [90, 10]], alternative="less").pvalue)
    assert p[1] == pytest.approx(float(two_proportion_z(400, 1000, 600, 1000)))


def test_difference_ci_matches_newcombe():
    """Newcombe's worked example: 56/70 - 48/80 has interval 0.0524 to 0.3339."""
    lo, hi = difference_ci(56, 70, 48, 80)
    assert (float(lo), float(hi)) == pytest.approx((0.0524, 0.3339), abs=1e-4)


def test_mann_whitney_per_group_matches_scipy():
    """Ranks computed once give scipy's one-sided p-value for every group."""
    rng = np.random.default_rng(1)
    v = np.round(rng.exponential(size=1500), 1)
    g = rng.integers(0, 3, 1500)
    v[g == 2] += 0.3
    p = larger_than_rest_p(v, g, 3)
    for k in range(3):
        assert p[k] == pytest.approx(stats.mannwhitneyu(v[g == k], v[g != k], alternative="greater").pvalue)


def test_grouped_bootstrap_covers_the_mean():
    """Each group's interval holds its mean; an empty group gives NaN."""
    rng = np.random.default_rng(2)
    v, g = rng.normal(5, 1, 3000), rng.integers(0, 2, 3000)
    lo, hi = grouped_bootstrap_mean(v, g, 3)
    for k in range(2):
        assert lo[k] < v[g == k].mean() < hi[k]
        assert hi[k] - lo[k] == pytest.approx(2 * 1.96 / np.sqrt((g == k).sum()), rel=0.3)
    assert np.isnan(lo[2])


def test_gap_contributions_add_up_to_the_change():
    """Mix and performance parts sum exactly to the change of the weighted overall metric."""
    wr, mr = np.array([0.5, 0.3, 0.2]), np.array([0.9, 0.8, 0.95])
    wp, mp = np.array([0.2, 0.3, 0.5]), np.array([0.9, 0.6, 0.95])
    c = gap_contributions(wr, mr, wp, mp)
    assert c["total"].sum() == pytest.approx((wp * mp).sum() - (wr * mr).sum())
    assert c["performance"][0] == 0


# --- the check ----------------------------------------------------------------------------------
def test_failing_segment_that_grew_is_the_culprit(tmp_path):
    """BR fails and grows from 10% to 30%: detected, BR first, most of the gap."""
    _, result = run(tmp_path, SAME, GROWN, failing="BR")
    f = result.finding
    assert f.verdict == "detected"
    assert f.culprits[0] == "country=BR"
    br = result.to_df("segments").query("column == 'country' and value == 'BR'").iloc[0]
    assert br["flagged"] and br["declined"] and br["grew"]
    assert br["share_of_gap"] > 0.5
    assert "grew from 10% to" in f.summary
    json.dumps(jsonable(f.to_dict()))


def test_nothing_wrong_is_clear(tmp_path):
    """Same model, same data, same mix: no segment flagged."""
    _, result = run(tmp_path, SAME, SAME)
    assert result.finding.verdict == "clear", result.finding.summary
    assert not result.to_df("segments")["flagged"].any()


def test_tiny_segment_is_reported_but_never_flagged(tmp_path):
    """A segment with fewer labelled rows than min_rows fails badly yet is not a culprit."""
    tiny = {"US": 0.594, "BR": 0.006, "DE": 0.4}
    _, result = run(tmp_path, tiny, tiny, failing="BR", flip=0.9)
    br = result.to_df("segments").query("value == 'BR'").iloc[0]
    assert br["tiny"] and not br["flagged"]
    assert "country=BR" not in result.finding.culprits


def test_segment_bad_in_both_with_the_same_share_is_not_flagged(tmp_path):
    """A segment as bad offline as live, at the same share, is not why production is worse."""
    def edit(df):
        hit = (df["country"] == "BR").to_numpy() & (np.random.default_rng(7).random(len(df)) < 0.4)
        df.loc[hit, "pred"] = 1 - df.loc[hit, "pred"]
        return df
    ref_edit, prod_edit = countries(SAME, SAME)
    spec = tiny_incident(tmp_path, rows=4000, ref_edit=lambda d: edit(ref_edit(d)),
                         prod_edit=lambda d: edit(prod_edit(d)), columns_extra={"segments": ["country"]})
    result = segments.run(load_incident(spec))
    br = result.to_df("segments").query("value == 'BR'").iloc[0]
    assert br["bad_in_reference"] and not br["flagged"]
    assert result.finding.verdict == "clear"


def test_everything_declining_points_at_a_global_cause(tmp_path):
    """Every segment worse by the same amount: clear, and the summary says so."""
    def prod_edit(df):
        df = countries(SAME, SAME)[1](df)
        hit = np.random.default_rng(9).random(len(df)) < 0.2
        df.loc[hit, "pred"] = 1 - df.loc[hit, "pred"]
        return df
    spec = tiny_incident(tmp_path, rows=4000, ref_edit=countries(SAME, SAME)[0], prod_edit=prod_edit,
                         columns_extra={"segments": ["country"]})
    result = segments.run(load_incident(spec))
    assert result.data["pattern"] == "all"
    assert result.finding.verdict == "clear"
    assert "global cause" in result.finding.summary


def test_a_segment_hit_harder_in_a_general_decline_is_not_the_culprit(tmp_path):
    """Every country declines and BR more: BR carries a small part of the gap, so clear."""
    def prod_edit(df):
        df = countries(SAME, SAME)[1](df)
        rng = np.random.default_rng(9)
        hit = rng.random(len(df)) < np.where(df["country"] == "BR", 0.4, 0.15)
        df.loc[hit, "pred"] = 1 - df.loc[hit, "pred"]
        return df
    spec = tiny_incident(tmp_path, rows=4000, ref_edit=countries(SAME, SAME)[0], prod_edit=prod_edit,
                         columns_extra={"segments": ["country"]})
    result = segments.run(load_incident(spec))
    assert result.to_df("segments").query("value == 'BR'")["flagged"].iloc[0]
    assert result.finding.verdict == "clear"
    assert "carrying only" in result.finding.summary and "country=BR" in result.finding.summary


def test_skipped_without_segments_or_labels(tmp_path):
    """No columns.segments, or no production labels: skipped, saying what to provide."""
    f = segments.run(load_incident(tiny_incident(tmp_path / "a", rows=200))).finding
    assert f.verdict == "skipped" and "columns.segments" in f.summary

    def unlabel(df):
        df["label"] = None
        return df
    spec = tiny_incident(tmp_path / "b", rows=200, prod_edit=unlabel, columns_extra={"segments": ["device"]})
    f = segments.run(load_incident(spec)).finding
    assert f.verdict == "skipped" and "labels" in f.summary


def test_numeric_segment_is_binned(tmp_path):
    """A numeric segment column is cut into reference quintiles, not one segment per value."""
    spec = tiny_incident(tmp_path, rows=1000, columns_extra={"segments": ["x1"]})
    result = segments.run(load_incident(spec))
    values = result.to_df("segments").query("column == 'x1'")["value"]
    assert len(values) == 5 and all(v.startswith("[") for v in values)


def test_regression_segments(tmp_path):
    """Regression: MAE per segment with bootstrap intervals, Mann–Whitney on absolute errors."""
    rng = np.random.default_rng(3)
    n = 3000

    def frame(country_p, bad):
        df = pd.DataFrame({"x": rng.normal(size=n), "country": rng.choice(["US", "BR"], n, p=country_p)})
        df["y"] = 2 * df["x"] + rng.normal(size=n)
        noise = np.where((df["country"] == "BR") & bad, 4.0, 1.0)
        df["pred"] = 2 * df["x"] + rng.normal(size=n) * noise
        return df
    frame([0.9, 0.1], False).to_parquet(tmp_path / "ref.parquet")
    frame([0.7, 0.3], True).to_parquet(tmp_path / "prod.parquet")
    (tmp_path / "incident.yaml").write_text(yaml.safe_dump({
        "name": "reg", "task": "regression", "reference": "ref.parquet", "production": "prod.parquet",
        "columns": {"target": "y", "prediction": "pred", "segments": ["country"]}}))
    result = segments.run(load_incident(tmp_path / "incident.yaml"))
    assert result.finding.culprits == ["country=BR"]
    br = result.to_df("segments").query("value == 'BR'").iloc[0]
    assert br["ci_low"] < br["metric"] < br["ci_high"]


def test_segment_values_are_escaped_on_the_page(tmp_path):
    """A segment value "<script>…" reaches the HTML table as text."""
    from mlinvestigate.display import table_html

    _, result = run(tmp_path, SAME, SAME)
    html = table_html(segments.page_table(result))
    assert "&lt;script&gt;" in html and "<script>" not in html


# --- drill-down and widget ----------------------------------------------------------------------
def test_metric_over_time_and_drill_down(tmp_path):
    """Per-period metric for a segment and the rest; a second column's breakdown within it."""
    incident, result = run(tmp_path, SAME, GROWN, failing="BR")
    frame = segments.metric_over_time(incident, result, "country", "BR")
    assert frame["segment_metric"].mean() < frame["rest_metric"].mean()
    drilled = segments.drill_down(incident, result, "country", "BR", "device")
    assert drilled["share_of_segment"].sum() == pytest.approx(1.0)
    assert "reference_metric" in drilled
    assert segments.worst(result, 2)[0] == ("country", "BR")


def test_widget_redraws_when_driven_from_python(tmp_path):
    """Choosing another value, a drill column or another segment column changes what is shown."""
    pytest.importorskip("ipywidgets")
    import matplotlib

    matplotlib.use("Agg")
    from mlinvestigate.widgets.segments import NONE, SegmentExplorer

    incident, result = run(tmp_path, SAME, GROWN, failing="BR")
    explorer = SegmentExplorer(incident, result)
    assert explorer.value.value == "BR"  # flagged first
    assert "country=BR" in explorer.readout.value and "flagged" in explorer.readout.value
    png = explorer.output.outputs[0]["data"]["image/png"]

    explorer.value.value = "US"
    assert "country=US" in explorer.readout.value
    assert explorer.output.outputs[0]["data"]["image/png"] != png

    explorer.drill.value = "device"
    html = explorer.output.outputs[1]["data"]["text/html"]
    assert "broken down by device" in html and "&lt;script&gt;" in html

    explorer.column.value = "device"
    assert explorer.value.value in {"ios", "android", "<script>alert(1)</script>"}
    assert explorer.drill.value == NONE and "country" in explorer.drill.options
    assert len(explorer.output.outputs) == 1


# --- scenarios ----------------------------------------------------------------------------------
@pytest.mark.e2e
def test_segments_scenario(investigated):
    """Brazil fails and grows five-fold: country=BR is the first culprit."""
    f = investigated("segments")["checks"]["segments"]
    assert f["verdict"] == "detected"
    assert f["culprits"][0] == "country=BR"


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["control", "control-multiclass", "control-regression"])
def test_controls_are_clear(investigated, name):
    """No segment fails in the controls."""
    f = investigated(name)["checks"]["segments"]
    assert f["verdict"] in ("clear", "skipped"), f["summary"]
