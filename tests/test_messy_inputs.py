"""Inputs as users really bring them: duplicated ids, impossible values, id columns, features that
stopped arriving, European CSVs, folders of parquet files, contradictory specs and broken models.
Each either reads correctly or fails with a message a person can act on; none gives a quietly
wrong verdict."""

from __future__ import annotations

import gzip
import hashlib
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from mlinvestigate import DataError, SpecError, load_incident
from mlinvestigate.checks import drift, health, skew
from mlinvestigate.data import csv_dialect, identifier_like, sha256_of
from mlinvestigate.display import listing, number, percent, text
from mlinvestigate.errors import ModelLoadError
from mlinvestigate.model import load_model
from tests.helpers import incident_from_frames

COLUMNS = {"target": "label", "prediction": "pred", "id": "rid"}
REPR = re.compile(r"np\.(int|float|bool|str)\w*\(|numpy\.|dtype\(")


def frames(rng, n=1500, offset=0):
    x = rng.normal(size=n)
    return pd.DataFrame({"rid": np.arange(offset, offset + n), "amount": np.round(np.exp(rng.normal(3, 1, n)), 2),
                         "x": x, "country": rng.choice(["FR", "DE", "GB", "US"], n),
                         "label": (x + 0.5 * rng.normal(size=n) > 0).astype(int), "pred": (x > 0).astype(int)})


def with_offline(folder, ref, prod, offline, **spec):
    folder.mkdir(parents=True, exist_ok=True)
    offline.to_parquet(folder / "offline.parquet")
    return incident_from_frames(folder, ref, prod, COLUMNS, serving={"offline": "offline.parquet"}, **spec)


def no_repr(*texts):
    for t in texts:
        assert not REPR.search(t), t


# --- duplicate ids ------------------------------------------------------------------------------
def test_exact_duplicate_rows_keep_a_healthy_pipeline_clear(tmp_path):
    """Rows logged twice (same id, same values) on both sides: counted, warned, compared once."""
    rng = np.random.default_rng(0)
    ref, prod = frames(rng), frames(rng, offset=10_000)
    offline = prod.drop(columns=["label", "pred"])
    prod = pd.concat([prod, prod.sample(300, random_state=1)]).sample(frac=1, random_state=2)
    offline = pd.concat([offline, offline.sample(200, random_state=3)]).sample(frac=1, random_state=4)
    inc = with_offline(tmp_path, ref, prod, offline)
    assert inc.duplicate_ids == {"production": 300, "serving.offline": 200}
    warned = [w for w in inc.warnings if "repeats an earlier row" in w]
    assert len(warned) == 2 and "exact copies" in warned[0]
    f = skew.run(inc).finding
    assert f.verdict == "clear", f.summary
    assert f.evidence["joined_rows"] == 1500
    dups = f.evidence["duplicates"]
    assert dups["production"]["identical_dropped"] == 300 and dups["offline"]["identical_dropped"] == 200
    assert "300 repeated production row(s) were counted once" in f.summary
    assert "first in file order" in dups["rule"]


def test_reused_ids_with_different_rows_are_left_out_not_called_skew(tmp_path):
    """Another row logged under an existing id: which one offline recomputed is unknown, so those
    ids are left out (and counted) instead of showing up as mismatches."""
    rng = np.random.default_rng(1)
    ref, prod = frames(rng), frames(rng, offset=10_000)
    offline = prod.drop(columns=["label", "pred"])
    other = frames(rng, n=300).assign(rid=rng.choice(prod["rid"], 300, replace=False))
    prod = pd.concat([prod, other]).sample(frac=1, random_state=2)
    inc = with_offline(tmp_path, ref, prod, offline)
    assert any("none of them an exact copy" in w for w in inc.warnings)
    f = skew.run(inc).finding
    assert f.verdict == "clear", f.summary
    assert f.evidence["duplicates"]["ambiguous_ids_left_out"] == 300
    assert f.evidence["joined_rows"] == 1200
    assert "left out" in f.summary


def test_real_skew_is_still_found_through_duplicates(tmp_path):
    """Duplicates must not hide a unit change either."""
    rng = np.random.default_rng(2)
    ref, prod = frames(rng), frames(rng, offset=10_000)
    offline = prod.drop(columns=["label", "pred"])
    prod = prod.assign(amount=prod["amount"] * 100)
    prod = pd.concat([prod, prod.iloc[:200]])
    f = skew.run(with_offline(tmp_path, ref, prod, offline)).finding
    assert f.verdict == "detected" and f.culprits == ["amount"]
    assert f.evidence["features"]["amount"]["factor"] == 100.0


def test_one_row_per_key_rule():
    keys = pd.Series([1, 2, 2, 3, 3, None], dtype="Int64")
    values = pd.DataFrame({"v": [1.0, 5.0, 5.0, 7.0, 8.0, 9.0]})
    keep, info = skew.one_row_per_key(keys, values)
    assert keep.tolist() == [True, True, False, False, False, False]
    assert info["repeated_rows"] == 2 and info["identical_dropped"] == 1
    assert info["ambiguous"] == [3] and info["ambiguous_rows"] == 2


# --- impossible values --------------------------------------------------------------------------
def serving_frames(rng, n=2000):
    ref, prod = frames(rng, n), frames(rng, n, offset=10_000)
    prod["latency_ms"] = rng.gamma(4, 5, n)
    return ref, prod


def test_negative_latencies_are_counted_and_kept_out_of_p95(tmp_path):
    rng = np.random.default_rng(3)
    ref, prod = serving_frames(rng)
    clean_p95 = float(np.quantile(prod["latency_ms"].iloc[40:], 0.95))
    prod.loc[:39, "latency_ms"] = -12.0
    inc = incident_from_frames(tmp_path, ref, prod, {**COLUMNS, "latency_ms": "latency_ms"})
    r = health.run(inc)
    signals = r.to_df("signals").set_index("signal")
    assert signals.loc["impossible_latency", "status"] == "failing"
    assert signals.loc["impossible_latency", "value"] == pytest.approx(40 / 2000)
    assert "40 negative latencies" in signals.loc["impossible_latency", "detail"]
    assert signals.loc["latency_p95", "value"] == pytest.approx(clean_p95, rel=0.02)
    assert "impossible_latency" in r.finding.culprits and r.finding.severity == "warning"


def test_healthy_latencies_add_no_signal(tmp_path):
    rng = np.random.default_rng(4)
    ref, prod = serving_frames(rng)
    r = health.run(incident_from_frames(tmp_path, ref, prod, {**COLUMNS, "latency_ms": "latency_ms"}))
    assert "impossible_latency" not in set(r.to_df("signals")["signal"])
    assert r.finding.verdict == "clear", r.finding.summary


def test_infinite_feature_values_are_not_missing_ones(tmp_path):
    rng = np.random.default_rng(5)
    ref, prod = frames(rng, 2000), frames(rng, 2000, offset=10_000)
    prod.loc[:29, "x"] = np.inf
    prod.loc[30:39, "x"] = -np.inf
    inc = incident_from_frames(tmp_path, ref, prod, COLUMNS)
    assert any("'x' holds infinite values: 40 in production" in w for w in inc.warnings)
    r = health.run(inc)
    assert "infinite:x" in r.finding.culprits
    inputs = r.to_df("inputs").set_index("feature")
    assert inputs.loc["x", "production_infinite"] == pytest.approx(0.02)
    assert inputs.loc["x", "production_missing"] == 0.0
    d = drift.run(inc, domain=False)
    row = d.to_df("features").set_index("feature").loc["x"]
    assert row["missing_production"] == 0.0 and "infinite values left out" in row["note"]
    assert d.data["stats"]["x"].infinite_production == 40


def test_infinite_in_both_files_alike_is_not_a_serving_failure(tmp_path):
    """A ratio feature that divides by zero as often offline as online is how the feature is."""
    rng = np.random.default_rng(6)
    ref, prod = frames(rng, 3000), frames(rng, 3000, offset=10_000)
    for df in (ref, prod):
        df.loc[rng.random(len(df)) < 0.02, "x"] = np.inf
    inc = incident_from_frames(tmp_path, ref, prod, COLUMNS)
    assert any("holds infinite values" in w for w in inc.warnings)
    assert not any(c.startswith("infinite:") for c in health.run(inc).finding.culprits)


# --- identifier-like columns --------------------------------------------------------------------
def test_identifier_columns_are_set_aside_and_listed(tmp_path):
    rng = np.random.default_rng(7)
    ref, prod = frames(rng, 3000), frames(rng, 3000, offset=10_000)
    ref["session"] = [f"s-{i:06d}" for i in range(3000)]
    prod["session"] = [f"s-{i:06d}" for i in range(5000, 8000)]
    ref["user"] = prod["user"] = [f"u{i}" for i in rng.permutation(3000)]  # the same users on both sides
    inc = incident_from_frames(tmp_path, ref, prod, COLUMNS)
    assert inc.identifier_like == ["session", "user"]
    assert "session" not in inc.features and "session" not in inc.feature_types
    assert sum("looks like an identifier" in w for w in inc.warnings) == 2
    r = drift.run(inc, domain=False)
    assert r.finding.verdict == "clear" and "identifier-like" in r.finding.summary
    page = drift.page_table(r).set_index("feature")
    assert page.loc["session", "type"] == "identifier-like" and page.loc["session", "drifted"] == "not compared"
    assert "3,000 distinct values" in page.loc["session", "note"]
    assert "identifier-like" in r.data["notes"]["method"]
    assert {e["feature"] for e in r.finding.evidence["identifier_like"]} == {"session", "user"}
    inc.save_cache(tmp_path / "cache")
    again = load_incident(inc.spec, cache=tmp_path / "cache")
    assert again.identifier_like == ["session", "user"] and again.features == inc.features


def test_renamed_categories_are_drift_not_identifiers(tmp_path):
    """Every production value new, but a handful of values that repeat: that is drift."""
    rng = np.random.default_rng(8)
    ref, prod = frames(rng, 2000), frames(rng, 2000, offset=10_000)
    prod["country"] = prod["country"].str.lower()
    inc = incident_from_frames(tmp_path, ref, prod, COLUMNS)
    assert inc.identifier_like == [] and "country" in inc.features
    assert "country" in drift.run(inc, domain=False).finding.culprits


@pytest.mark.parametrize("values, expected", [
    ([f"id{i}" for i in range(200)], True),
    (["a", "b", "c"] * 70, False),
    ([f"id{i}" for i in range(30)], False),          # too few rows to tell
    ([f"z{i % 120}" for i in range(200)], True),     # 120 distinct in 200: free text, zip codes on little data
    ([f"z{i % 80}" for i in range(200)], False),
])
def test_identifier_like_rule(values, expected):
    s = pd.Series(values, dtype=object)
    assert identifier_like(s, s.sample(frac=1, random_state=0)) is expected


def test_only_identifiers_skips_drift_saying_why(tmp_path):
    rng = np.random.default_rng(9)
    ref, prod = frames(rng, 500), frames(rng, 500, offset=10_000)
    for df in (ref, prod):
        df["session"] = [f"s{v}" for v in df["rid"]]
    inc = incident_from_frames(tmp_path, ref, prod, {**COLUMNS, "features": ["session"]})
    r = drift.run(inc)
    assert r.finding.verdict == "skipped" and "identifiers" in r.finding.summary
    assert list(drift.page_table(r)["feature"]) == ["session"]


# --- features that stopped arriving -------------------------------------------------------------
def test_feature_empty_only_in_production_is_a_critical_serving_failure(tmp_path):
    rng = np.random.default_rng(10)
    ref, prod = frames(rng, 1000), frames(rng, 1000, offset=10_000)
    prod["amount"] = np.nan
    inc = incident_from_frames(tmp_path, ref, prod, COLUMNS)
    assert any("'amount' is empty (all missing) in production" in w for w in inc.warnings)
    f = health.run(inc).finding
    assert f.verdict == "detected" and f.severity == "critical"
    assert f.culprits[0] == "missing:amount" and "stopped arriving" in f.summary


# --- files people have --------------------------------------------------------------------------
def write_spec(folder, reference, production, **extra):
    spec = {"name": "messy", "reference": reference, "production": production, "columns": COLUMNS, **extra}
    (folder / "incident.yaml").write_text(yaml.safe_dump(spec))
    return folder / "incident.yaml"


def european_csv(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, sep=";", decimal=",")


@pytest.mark.parametrize("fmt", ["semicolon-decimal-comma", "tab", "bom", "gzip"])
def test_csv_dialects_read_as_the_same_table(tmp_path, fmt):
    rng = np.random.default_rng(11)
    ref, prod = frames(rng, 300), frames(rng, 300, offset=10_000)
    names = {}
    for role, df in (("reference", ref), ("production", prod)):
        if fmt == "semicolon-decimal-comma":
            (tmp_path / f"{role}.csv").write_text(european_csv(df), encoding="utf-8")
        elif fmt == "tab":
            (tmp_path / f"{role}.csv").write_text(df.to_csv(index=False, sep="\t"))
        elif fmt == "bom":
            (tmp_path / f"{role}.csv").write_text(df.to_csv(index=False), encoding="utf-8-sig")
        else:
            with gzip.open(tmp_path / f"{role}.csv.gz", "wt") as fh:
                fh.write(df.to_csv(index=False))
        names[role] = f"{role}.csv.gz" if fmt == "gzip" else f"{role}.csv"
    inc = load_incident(write_spec(tmp_path, names["reference"], names["production"]))
    assert inc.features == ["amount", "x", "country"]
    assert inc.feature_types["amount"] == "numeric" and inc.feature_types["x"] == "numeric"
    np.testing.assert_allclose(inc.production["amount"].to_numpy(float), prod["amount"].to_numpy())


def test_dialect_sniffing():
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        cases = {"a,b\n1.5,x\n": (",", "."), "a;b\n1,5;x\n": (";", ","), "a;b\n1.5;x,y\n": (";", "."),
                 "a\tb\n1,5\tx\n": ("\t", ","), 'a,b\n"1;2",x\n': (",", "."), "a\n1\n2\n": (",", ".")}
        for i, (content, expected) in enumerate(cases.items()):
            p = Path(d) / f"{i}.csv"
            p.write_text(content)
            assert csv_dialect(p) == expected, content


def test_ragged_csv_is_refused_naming_the_separator(tmp_path):
    (tmp_path / "reference.csv").write_text("rid;label;pred\n1;0;0\n2;1\n3;1;1;7\n")
    (tmp_path / "production.csv").write_text("rid;label;pred\n1;0;0\n")
    with pytest.raises(DataError, match=r"reference file .*reads as one column 'rid;label;pred'.*';'"):
        load_incident(write_spec(tmp_path, "reference.csv", "production.csv"))


def test_folder_and_glob_of_parquet_files(tmp_path):
    rng = np.random.default_rng(12)
    ref, prod = frames(rng, 600), frames(rng, 600, offset=10_000)
    (tmp_path / "ref").mkdir()
    for i in range(3):
        ref.iloc[200 * i:200 * (i + 1)].to_parquet(tmp_path / "ref" / f"part-{i}.parquet")
    (tmp_path / "ref" / "_SUCCESS").write_text("")
    for i in range(2):
        prod.iloc[300 * i:300 * (i + 1)].to_parquet(tmp_path / f"prod-{i}.parquet")
    spec = write_spec(tmp_path, "ref", "prod-*.parquet")
    inc = load_incident(spec)
    assert len(inc.reference) == 600 and len(inc.production) == 600
    rows = {i["role"]: i for i in inc.inputs}
    assert rows["reference"]["rows"] == 600 and len(rows["reference"]["sha256"]) == 64
    before = sha256_of(tmp_path / "ref")
    ref.iloc[:10].to_parquet(tmp_path / "ref" / "part-0.parquet")
    assert sha256_of(tmp_path / "ref") != before


@pytest.mark.parametrize("production, message", [
    ("nothing-*.parquet", "matches no file"),
    ("empty", "folder with no .csv or .parquet"),
    ("notes.xlsx", "unsupported format"),
])
def test_unusable_paths_name_the_key(tmp_path, production, message):
    frames(np.random.default_rng(0), 50).to_parquet(tmp_path / "reference.parquet")
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.xlsx").write_bytes(b"PK")
    with pytest.raises(SpecError, match=f"production.*{message}"):
        load_incident(write_spec(tmp_path, "reference.parquet", production))


# --- spec contradictions and models -------------------------------------------------------------
def test_positive_label_with_three_classes_is_refused(tmp_path):
    rng = np.random.default_rng(13)
    ref, prod = frames(rng, 300), frames(rng, 300, offset=10_000)
    prod.loc[:20, "label"] = 2
    with pytest.raises(DataError) as err:
        incident_from_frames(tmp_path, ref, prod, {**COLUMNS, "positive_label": 1})
    message = str(err.value)
    assert "'label'" in message and "3 classes: 0, 1, 2" in message and "2 only in production" in message
    assert "remove positive_label" in message
    no_repr(message)


def test_model_that_fails_to_load_is_said_and_nothing_is_scored(tmp_path):
    rng = np.random.default_rng(14)
    ref, prod = frames(rng), frames(rng, offset=10_000)
    offline = prod.drop(columns=["label", "pred"])
    prod = prod.assign(amount=prod["amount"] * 100)
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "model.joblib").write_bytes(b"not a pickle at all")
    digest = hashlib.sha256(b"not a pickle at all").hexdigest()
    inc = with_offline(tmp_path, ref, prod, offline, model={"path": "model.joblib", "sha256": digest})
    with pytest.raises(ModelLoadError, match="could not be loaded"):
        load_model(inc)
    f = skew.run(inc).finding
    assert f.verdict == "detected"
    impact = f.evidence["impact"]
    assert impact["available"] is False and "rows_scored" not in impact and "flip_share" not in impact
    assert "were not measured" in f.summary and "could not be loaded" in f.summary


def test_a_pickle_that_is_not_an_estimator_is_refused(tmp_path):
    import joblib

    rng = np.random.default_rng(15)
    joblib.dump({"weights": [1, 2]}, tmp_path / "model.joblib")
    digest = hashlib.sha256((tmp_path / "model.joblib").read_bytes()).hexdigest()
    inc = incident_from_frames(tmp_path, frames(rng, 100), frames(rng, 100), COLUMNS,
                               model={"path": "model.joblib", "sha256": digest})
    with pytest.raises(ModelLoadError, match="holds a dict, not an estimator"):
        load_model(inc)


# --- text for people ----------------------------------------------------------------------------
def test_formatting_helpers():
    assert (text(np.int64(0)), text(np.float64(2.0)), text(np.bool_(True))) == ("0", "2", "True")
    assert number(np.int64(12345)) == "12,345" and number(np.float64(-12.0)) == "-12"
    assert percent(np.float64(0.1234)) == "12.3%" and percent(0.0) == "0%" and percent(1e-6) == "<0.1%"
    assert listing([np.int64(1), "a", np.float64(2.5)]) == "1, 'a', 2.5"
    assert listing(range(7), limit=3) == "0, 1, 2 and 4 more"


def test_messages_never_show_numpy_reprs(tmp_path):
    """Numbers read as numbers in every warning, summary and detail of a messy incident."""
    rng = np.random.default_rng(16)
    ref, prod = serving_frames(rng)
    ref["label"] = ref["label"].astype(np.int64)
    prod.loc[:9, "latency_ms"] = -3.0
    prod.loc[:4, "x"] = np.inf
    prod["amount"] = np.nan
    prod = pd.concat([prod, prod.iloc[:50]])
    offline = prod.drop(columns=["label", "pred", "latency_ms"]).assign(amount=1.0)
    inc = with_offline(tmp_path, ref, prod, offline)
    texts = list(inc.warnings)
    for run in (health.run, skew.run, lambda i: drift.run(i, domain=False)):
        r = run(inc)
        texts.append(r.finding.summary)
        if "signals" in r.tables:
            texts.extend(r.to_df("signals")["detail"])
    no_repr(*texts)
    with pytest.raises(DataError) as err:
        incident_from_frames(tmp_path / "one", ref.assign(label=np.int64(1)), prod, COLUMNS)
    no_repr(str(err.value))


def test_labelling_classifier_survives_an_empty_column():
    """A feature empty in every production row must not crash the model-based statistics."""
    from mlinvestigate.stats.triage_labels import labelling_classifier

    rng = np.random.default_rng(17)
    X = np.c_[rng.normal(size=90), np.full(90, np.nan)]
    out = labelling_classifier(X, rng.random(90) < 0.5, np.array([False, False]))
    assert np.isfinite(out["auc"]) and len(out["models"]) == 3
    assert out["models"][0].predict_proba(X).shape == (90, 2)


def test_feature_empty_in_both_files_is_left_out(tmp_path):
    rng = np.random.default_rng(18)
    ref, prod = frames(rng, 200), frames(rng, 200, offset=10_000)
    ref["blank"] = prod["blank"] = None
    inc = incident_from_frames(tmp_path, ref, prod, COLUMNS)
    assert "blank" not in inc.features and any("no values in either file" in w for w in inc.warnings)
    assert drift.run(inc).finding.verdict in ("clear", "inconclusive")


def test_csv_in_a_local_encoding_is_refused_naming_the_column(tmp_path):
    df = pd.DataFrame({"rid": range(60), "city": ["Genève", "Zürich", "Paris"] * 20,
                       "label": [0, 1] * 30, "pred": [0, 1] * 30})
    for role in ("reference", "production"):
        df.to_csv(tmp_path / f"{role}.csv", index=False, encoding="latin-1")
    with pytest.raises(DataError, match="column 'city' is not UTF-8 text.*Save the file as UTF-8"):
        load_incident(write_spec(tmp_path, "reference.csv", "production.csv"))
