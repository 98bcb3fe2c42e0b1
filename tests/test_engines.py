"""Engines: the spec's engine and sources, and the same answers from pandas, DuckDB and Spark.

DuckDB and Spark run for real (a local Spark session, Java required); nothing is mocked.
"""

from __future__ import annotations

import shutil
import subprocess
import tracemalloc

import numpy as np
import pandas as pd
import pytest
import yaml

from mlinvestigate import DataError, SpecError, load_incident
from mlinvestigate.checks import drift, health
from mlinvestigate.engine import AUTO_ROWS, choose
from mlinvestigate.engine import aggregates as ag
from mlinvestigate.spec import SparkOptions, load_spec, parse_spec

duckdb = pytest.importorskip("duckdb")

TOL = {"psi": 0.005, "js": 0.005, "ks": 0.002, "missing_reference": 0.001, "missing_production": 0.001}


def _java() -> bool:
    if shutil.which("java") is None:
        return False
    return subprocess.run(["java", "-version"], capture_output=True).returncode == 0


def _pyspark() -> bool:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return False
    return True


_needs_spark = pytest.mark.skipif(not (_java() and _pyspark()),
                                  reason="Spark tests need pyspark (pip install '.[spark]') and a Java runtime "
                                         "(apt-get install default-jre-headless); .ci/run installs both")


def needs_spark(test):
    """Skipped without Java and pyspark; every Spark test in one test process, so one JVM starts."""
    return pytest.mark.xdist_group("spark")(_needs_spark(test))


def _spec(path, **update):
    return load_spec(path).model_copy(update=update)


def _compare(a, b, tol=TOL):
    """Same verdict, culprits and drifted features; statistics within ``tol``."""
    assert a.finding.verdict == b.finding.verdict, (a.finding.summary, b.finding.summary)
    assert a.finding.culprits == b.finding.culprits
    ta, tb = (r.tables["features"].set_index("feature") for r in (a, b))
    assert set(ta.index) == set(tb.index)
    tb = tb.loc[ta.index]
    assert (ta["drifted"] == tb["drifted"]).all()
    gaps = {}
    for col, limit in tol.items():
        gap = (ta[col] - tb[col]).abs().max(skipna=True)
        gaps[col] = 0.0 if pd.isna(gap) else float(gap)
        assert gaps[col] <= limit, (col, gaps[col], limit)
    return gaps


# --- the spec -------------------------------------------------------------------------------------
def _base(tmp_path):
    (tmp_path / "r.parquet").write_bytes(b"")
    return {"name": "x", "reference": "r.parquet", "production": "r.parquet",
            "columns": {"target": "y", "prediction": "p"}}


def test_engine_defaults_to_auto_and_unknown_values_name_the_key(tmp_path):
    base = _base(tmp_path)
    assert parse_spec(base, source=tmp_path / "i.yaml").engine == "auto"
    with pytest.raises(SpecError, match="engine"):
        parse_spec({**base, "engine": "dask"}, source=tmp_path / "i.yaml")
    with pytest.raises(SpecError, match=r"unknown key 'production.tabel'. Did you mean 'table'"):
        parse_spec({**base, "production": {"duckdb": "w.db", "tabel": "t"}}, source=tmp_path / "i.yaml")
    with pytest.raises(SpecError, match=r"unknown key 'spark.mastr'"):
        parse_spec({**base, "spark": {"mastr": "local[1]"}}, source=tmp_path / "i.yaml")


@pytest.mark.parametrize("source, engine, message", [
    ({"table": "t"}, "auto", "without a database"),
    ({"duckdb": "w.db", "table": "t", "sql": "SELECT 1"}, "auto", "exactly one of"),
    ({"sql": "SELECT 1"}, "pandas", "pandas engine cannot read"),
    ({"duckdb": "missing.db", "table": "t"}, "duckdb", "does not exist"),
])
def test_table_sources_are_checked(tmp_path, source, engine, message):
    (tmp_path / "w.db").write_bytes(b"")
    with pytest.raises(SpecError, match=message):
        parse_spec({**_base(tmp_path), "production": source, "engine": engine}, source=tmp_path / "i.yaml")


def test_auto_picks_pandas_for_small_files_and_duckdb_for_large_ones(scenario, monkeypatch):
    spec = load_spec(scenario("control", rows=2000))
    assert choose(spec).engine == "pandas"
    monkeypatch.setattr("mlinvestigate.engine.AUTO_ROWS", 1000)
    chosen = choose(spec)
    assert chosen.engine == "duckdb" and "4,000 rows" in chosen.reason
    assert "duckdb" in chosen.describe(200_000) and "200,000" in chosen.describe(200_000)
    assert AUTO_ROWS >= 2_000_000  # the working size (1M a side) stays on pandas


# --- the SQL definitions --------------------------------------------------------------------------
@needs_spark
def test_spark_bins_are_searchsorted(tmp_path):
    """Spark's bin search (Bucketizer on split points one double up) puts a value on a grid point in
    that point's bin, like np.searchsorted(side="left"); NaN, ±inf and NULL are in no bin; a column
    without grid points has every finite value in its one bin."""
    from mlinvestigate.engine.backends import SparkEngine

    rng = np.random.default_rng(0)
    grid = np.unique(rng.normal(size=37).round(2))
    x = np.concatenate([rng.normal(size=500), grid, [np.nan, np.inf, -np.inf]])
    frame = pd.DataFrame({"v": x, "w": x, "label": 0, "pred": 0})
    frame.loc[3, "v"] = None
    for side in ("ref", "prod"):
        frame.to_parquet(tmp_path / f"{side}.parquet")
    spec = parse_spec({"name": "t", "reference": "ref.parquet", "production": "prod.parquet", "engine": "spark",
                       "spark": {"master": "local[2]"},
                       "columns": {"target": "label", "prediction": "pred", "features": ["v", "w"]}},
                      source=tmp_path / "i.yaml")
    got = ag.bin_counts(SparkEngine(spec), "reference", {"v": ("numeric", grid), "w": ("numeric", np.array([]))})
    v = frame["v"].to_numpy(float)
    v = v[np.isfinite(v)]
    assert np.array_equal(got["v"], np.bincount(np.searchsorted(grid, v, side="left"), minlength=len(grid) + 1))
    assert got["w"].tolist() == [int(np.isfinite(x).sum())]


def test_group_rates_on_duckdb_match_pandas(scenario):
    from mlinvestigate.engine import connect

    spec = _spec(scenario("health", rows=3000), engine="duckdb")
    inc = load_incident(spec.model_copy(update={"engine": "pandas"}))
    engine = connect(spec, "duckdb")
    status = spec.columns.status
    got = ag.group_rates(engine, "production", spec.columns.model_version or status,
                         {"errors": f"\"{status}\" <> 'ok'"}).set_index("value")
    prod = inc.production
    key = spec.columns.model_version or status
    expected = prod.groupby(prod[key].astype(str), observed=True)[status].agg(
        lambda s: int((s.astype(str) != "ok").sum()))
    for value, errors in expected.items():
        assert int(got.loc[got.index.astype(str) == value, "errors"].iloc[0]) == errors
    assert int(got["n_rows"].sum()) == len(prod)


def test_error_and_timeout_rates_count_every_row_on_an_engine(scenario):
    """The health scenario's statuses on DuckDB with a 500-row sample: the error and timeout rates
    and the table of statuses are the pandas engine's, counted over all 4,000 rows."""
    path = scenario("health", rows=4000)
    full = health.run(load_incident(_spec(path, engine="pandas")))
    duck_inc = load_incident(_spec(path, engine="duckdb", sample_rows=500))
    assert len(duck_inc.production) == 500
    duck = health.run(duck_inc)
    for name in ("error_rate", "timeout_rate"):
        a, b = (r.tables["signals"].set_index("signal").loc[name] for r in (full, duck))
        assert a["value"] == b["value"] and a["status"] == b["status"] == "failing", name
        assert a["detail"] == b["detail"]  # the same "k of n rows"
    sa, sb = (r.tables["statuses"].set_index("status").sort_index() for r in (full, duck))
    assert sa["rows"].to_dict() == sb["rows"].to_dict() and int(sb["rows"].sum()) == 4000
    assert (sa["counted_as"] == sb["counted_as"]).all()


def test_segment_accuracy_counts_every_row_on_an_engine(scenario):
    """The segments scenario on DuckDB with an 800-row sample: each segment's labelled rows,
    accuracy, interval and traffic shares are the pandas engine's over all rows, and the culprit
    is the same (country=BR)."""
    from mlinvestigate.checks import segments

    path = scenario("segments", rows=4000)
    full = segments.run(load_incident(_spec(path, engine="pandas")))
    duck_inc = load_incident(_spec(path, engine="duckdb", sample_rows=800))
    assert len(duck_inc.production) == 800
    duck = segments.run(duck_inc)
    assert full.finding.culprits == duck.finding.culprits and "country=BR" in duck.finding.culprits
    cols = ["labelled_rows", "metric", "ci_low", "ci_high", "reference_metric", "production_share",
            "reference_share", "p_value"]
    a, b = (r.tables["segments"].query("column != 'week'").set_index(["column", "value"]).sort_index()[cols]
            for r in (full, duck))
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)


# --- same answers: DuckDB ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["control", "drift", "segment_drift", "health"])
def test_duckdb_gives_the_pandas_answers(scenario, name):
    path = scenario(name, rows=4000)
    pandas_inc = load_incident(_spec(path, engine="pandas"))
    duck_inc = load_incident(_spec(path, engine="duckdb"))
    assert duck_inc.engine == "duckdb" and duck_inc.aggregates is not None
    assert duck_inc.rows == pandas_inc.rows
    _compare(drift.run(pandas_inc, domain=False), drift.run(duck_inc, domain=False))
    ha, hb = health.run(pandas_inc), health.run(duck_inc)
    assert (ha.finding.verdict, ha.finding.culprits) == (hb.finding.verdict, hb.finding.culprits)
    if name == "control":
        assert drift.run(duck_inc).finding.verdict == "clear"


def test_duckdb_keeps_a_seeded_sample_and_exact_counts(scenario):
    path = scenario("drift", rows=6000)
    a = load_incident(_spec(path, engine="duckdb", sample_rows=1500))
    b = load_incident(_spec(path, engine="duckdb", sample_rows=1500))
    assert len(a.reference) == len(a.production) == 1500
    assert a.rows == {"reference": 6000, "production": 6000}
    pd.testing.assert_frame_equal(a.production.reset_index(drop=True), b.production.reset_index(drop=True))
    assert {i["rows"] for i in a.inputs if i["role"] in ("reference", "production")} == {6000}
    assert any("seeded sample of 1,500" in w for w in a.warnings)
    result = drift.run(a, domain=False)
    assert result.finding.culprits == ["distance_km", "amount"]
    assert result.finding.evidence["production_rows"] == 6000
    assert "duckdb" in result.data["notes"]["sampling"]


def test_aggregates_survive_the_run_cache(scenario, tmp_path):
    inc = load_incident(_spec(scenario("drift", rows=3000), engine="duckdb"))
    inc.save_cache(tmp_path / "cache")
    again = load_incident(inc.spec, cache=tmp_path / "cache")
    assert again.engine == "duckdb" and again.rows == inc.rows
    _compare(drift.run(inc, domain=False), drift.run(again, domain=False),
             tol={k: 0.0 for k in TOL})


def _partitioned(src, folder):
    """Rewrite a parquet file as hive partitions ``date=YYYY-MM-DD/part-0.parquet``."""
    df = pd.read_parquet(src)
    days = np.array(["2026-11-29", "2026-11-30"])[np.arange(len(df)) % 2]
    for day in np.unique(days):
        part = folder / f"date={day}"
        part.mkdir(parents=True)
        df[days == day].to_parquet(part / "part-0.parquet", index=False)


def test_sources_folder_glob_and_duckdb_tables_give_the_same_answers(scenario, tmp_path):
    path = scenario("drift", rows=3000)
    spec_doc = yaml.safe_load(path.read_text())
    ref, prod = path.parent / spec_doc["reference"], path.parent / spec_doc["production"]
    _partitioned(prod, tmp_path / "logs")
    db = tmp_path / "warehouse.db"
    con = duckdb.connect(str(db))
    con.execute(f"CREATE TABLE prod_log AS SELECT * FROM read_parquet('{prod}')")
    con.close()
    features = {"features": list(load_incident(path).features)}  # the partition column is no feature
    base = load_incident(_spec(path, engine="pandas"))
    expected = drift.run(base, domain=False)
    variants = {
        "folder": str(tmp_path / "logs"),
        "glob": str(tmp_path / "logs" / "date=*" / "*.parquet"),
        "table": {"duckdb": str(db), "table": "prod_log"},
        "sql": {"duckdb": str(db), "sql": "SELECT * FROM prod_log"},
    }
    for name, production in variants.items():
        doc = {**{k: v for k, v in spec_doc.items() if k not in ("model", "serving")},
               "reference": str(ref), "production": production, "engine": "duckdb",
               "columns": {**spec_doc["columns"], **features}}
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(doc))
        inc = load_incident(tmp_path / f"{name}.yaml")
        if name in ("folder", "glob"):
            assert "date" in inc.production.columns, name  # hive partitions become columns
        assert inc.rows["production"] == 3000
        _compare(expected, drift.run(inc, domain=False))


def test_a_bad_query_is_a_data_error_naming_the_source(scenario, tmp_path):
    path = scenario("control", rows=2000)
    doc = yaml.safe_load(path.read_text())
    doc.pop("model", None)
    doc.pop("serving", None)
    doc.update(reference=str(path.parent / doc["reference"]), engine="duckdb",
               production={"sql": "SELECT * FROM no_such_table"})
    (tmp_path / "i.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(DataError, match="production .*could not be read by DuckDB"):
        load_incident(tmp_path / "i.yaml")


def test_larger_incident_parity_and_memory(scenario):
    """200,000 rows a side: the same answers; DuckDB's Python-side memory stays near the sample's."""
    path = scenario("drift", rows=200_000)
    pandas_result = drift.run(load_incident(_spec(path, engine="pandas")), domain=False)
    tracemalloc.start()
    inc = load_incident(_spec(path, engine="duckdb", sample_rows=20_000))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 150e6, peak  # the two 20,000-row samples and small aggregates, not 400,000 rows
    gaps = _compare(pandas_result, drift.run(inc, domain=False))
    assert gaps["psi"] == 0.0  # exact quantiles: the same PSI bins as pandas


# --- same answers: Spark -------------------------------------------------------------------------
@needs_spark
def test_spark_gives_the_duckdb_answers(scenario):
    """The drift scenario's statistics, verdicts and culprits on Spark are DuckDB's (the control
    scenario's are compared with pandas' in the DuckDB tests, and the engines agree here)."""
    path = scenario("drift", rows=3000)
    duck = load_incident(_spec(path, engine="duckdb"))
    spark = load_incident(_spec(path, engine="spark", spark=SparkOptions(master="local[2]")))
    assert spark.engine == "spark" and spark.rows == duck.rows
    assert sorted(spark.aggregates.status_counts, key=str) == sorted(duck.aggregates.status_counts, key=str)
    assert set(duck.aggregates.segment_counts) == set(duck.spec.columns.segments)
    for column, sides in duck.aggregates.segment_counts.items():  # rows, labelled and correct per value
        for role, rows in sides.items():
            assert sorted(spark.aggregates.segment_counts[column][role], key=str) == sorted(rows, key=str)
    _compare(drift.run(duck, domain=False), drift.run(spark, domain=False))


# --- serving.offline on an engine ------------------------------------------------------------------
def _partial_offline(path, tmp_path, *, ids_as_text=False):
    """The skew scenario with an offline file that misses 10% of production's ids, holds 40 ids
    production never served and repeats 15 ids: the join is not one to one in either direction."""
    import shutil as _shutil

    folder = tmp_path / "skew"
    _shutil.copytree(path.parent, folder)
    off = pd.read_parquet(folder / "offline_features.parquet")
    rng = np.random.default_rng(5)
    off = off[rng.random(len(off)) > 0.1]
    extra = off.head(40).assign(request_id=lambda d: d["request_id"] + 10**9)
    off = pd.concat([off, extra, off.tail(15)], ignore_index=True)
    if ids_as_text:
        off["request_id"] = off["request_id"].astype(str)
    off.to_parquet(folder / "offline_features.parquet")
    return folder / "incident.yaml"


@pytest.mark.parametrize("ids_as_text", [False, True], ids=["ids-as-numbers", "offline-ids-as-text"])
def test_duckdb_joins_every_offline_row_and_keeps_only_the_sample_twins(scenario, tmp_path, ids_as_text):
    """On an engine, serving.offline is never read whole: the sample's twins come back, and the
    join is counted over every row of both files, as the pandas engine counts it."""
    from mlinvestigate.checks import skew

    path = _partial_offline(scenario("skew", rows=3000), tmp_path, ids_as_text=ids_as_text)
    full, duck = (load_incident(_spec(path, engine=e, sample_rows=800)) for e in ("pandas", "duckdb"))
    assert len(duck.production) == 800 and len(duck.offline) <= 800 + 15 < len(full.offline)
    a, b = skew.run(full), skew.run(duck)
    assert a.finding.verdict == b.finding.verdict == "detected"
    assert set(a.finding.culprits) == set(b.finding.culprits) == {"amount", "n_tx_7d"}
    ea, eb = a.finding.evidence, b.finding.evidence
    for key in ("production_rows", "offline_rows", "unjoined_production", "unjoined_offline", "duplicate_ids"):
        assert ea[key] == eb[key], key
    assert ea["unjoined_offline"] >= 40 and ea["unjoined_production"] > 200 and ea["duplicate_ids"]["offline"] == 15
    assert eb["joined_rows"] == ea["joined_rows"] and eb["joined_rows_compared"] <= 800
    assert duck.duplicate_ids["serving.offline"] == 15
    assert [r["sha256"] for r in duck.inputs] == [r["sha256"] for r in full.inputs]


@needs_spark
def test_spark_joins_every_offline_row_as_duckdb_does(scenario, tmp_path):
    from mlinvestigate.checks import skew

    path = _partial_offline(scenario("skew", rows=3000), tmp_path)
    duck = load_incident(_spec(path, engine="duckdb", sample_rows=800))
    spark = load_incident(_spec(path, engine="spark", sample_rows=800, spark=SparkOptions(master="local[2]")))
    assert spark.aggregates.offline_join == duck.aggregates.offline_join
    assert len(spark.offline) <= 800 + 15
    a, b = skew.run(duck), skew.run(spark)
    assert a.finding.verdict == b.finding.verdict and set(a.finding.culprits) == set(b.finding.culprits)


def test_an_offline_file_without_the_id_column_is_named_on_an_engine(scenario, tmp_path):
    path = _partial_offline(scenario("skew", rows=3000), tmp_path)
    off = path.parent / "offline_features.parquet"
    pd.read_parquet(off).rename(columns={"request_id": "rid"}).to_parquet(off)
    with pytest.raises(DataError, match=r"serving.offline has no column 'request_id' \(columns.id\)"):
        load_incident(_spec(path, engine="duckdb", sample_rows=800))


def test_csv_on_duckdb_keeps_versions_as_text(tmp_path):
    """CSV read by DuckDB: model versions stay text ("2.10" is not 2.1), as on pandas."""
    rng = np.random.default_rng(0)
    for side in ("ref", "prod"):
        pd.DataFrame({"x": rng.normal(size=300), "label": rng.integers(0, 2, 300), "pred": rng.integers(0, 2, 300),
                      "ver": np.where(rng.random(300) < 0.5, "2.10", "2.9")}).to_csv(tmp_path / f"{side}.csv",
                                                                                   index=False)
    (tmp_path / "i.yaml").write_text(yaml.safe_dump({
        "name": "c", "reference": "ref.csv", "production": "prod.csv", "engine": "duckdb",
        "columns": {"target": "label", "prediction": "pred", "model_version": "ver"}}))
    inc = load_incident(tmp_path / "i.yaml")
    assert inc.engine == "duckdb" and sorted(inc.production["ver"].unique()) == ["2.10", "2.9"]
    assert inc.aggregates.columns["x"].counts[0].sum() == 300


@needs_spark
def test_spark_reads_a_catalog_table_and_a_query(scenario, tmp_path):
    from mlinvestigate.engine.backends import spark_session

    path = scenario("drift", rows=3000)
    doc = yaml.safe_load(path.read_text())
    for key in ("model", "serving"):
        doc.pop(key, None)
    spark = spark_session(_spec(path, spark=SparkOptions(master="local[2]")))
    for role, view in (("reference", "ref_log"), ("production", "prod_log")):
        spark.read.parquet(str(path.parent / doc[role])).createOrReplaceTempView(view)
    expected = drift.run(load_incident(_spec(path, engine="duckdb")), domain=False)
    # one load: the production side a catalog table, the reference side a query
    doc.update(reference={"sql": "SELECT * FROM ref_log WHERE amount IS NOT NULL OR amount IS NULL"},
               production={"table": "prod_log"}, engine="spark")
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(doc))
    inc = load_incident(tmp_path / "catalog.yaml")
    assert inc.rows["production"] == 3000 and inc.rows["reference"] == 3000
    _compare(expected, drift.run(inc, domain=False))


# --- progress ------------------------------------------------------------------------------------
def test_the_load_draws_a_bar_per_phase_only_when_asked(scenario, capsys):
    spec = _spec(scenario("drift", rows=3000), engine="duckdb")
    load_incident(spec)
    assert capsys.readouterr().err == ""  # stderr is no terminal here and no callback was given
    inc = load_incident(spec, progress=lambda msg: None)
    err = capsys.readouterr().err
    for phase in ("rows (duckdb)", "seeded sample of 200,000 rows a side", "aggregates: row, missing and infinite "
                  "counts", "aggregates: reference counts per bin and deciles", "aggregates: production counts per bin",
                  "aggregates: counts per category"):
        assert f"mlinvestigate: {phase}" in err, phase
        assert any(phase in name for name in inc.aggregates.timings), phase
    assert "100%" in err


# --- one definition on both engines --------------------------------------------------------------
def _awkward(tmp_path, rows=2500):
    """Heavy tails, point masses, NaN, infinities and a timestamp, as parquet on two sides."""
    rng = np.random.default_rng(3)
    for side, shift in (("ref", 0.0), ("prod", 0.4)):
        x = rng.lognormal(shift, 1.5, rows)
        x[rng.random(rows) < 0.03] = np.nan
        x[:5] = np.inf
        counts = rng.poisson(2 + shift * 3, rows).astype(float)
        pd.DataFrame({"heavy": x, "counts": counts, "flat": np.where(rng.random(rows) < 0.8, 1.0, rng.normal(size=rows)),
                      "when": pd.Timestamp("2026-11-01") + pd.to_timedelta(rng.random(rows) * 86_400 * (7 + 3 * shift), "s"),
                      "y": rng.integers(0, 2, rows), "p": rng.integers(0, 2, rows)}).to_parquet(
            tmp_path / f"{side}.parquet", coerce_timestamps="us", allow_truncated_timestamps=True)  # Spark reads µs
    (tmp_path / "i.yaml").write_text(yaml.safe_dump({
        "name": "a", "reference": "ref.parquet", "production": "prod.parquet",
        "columns": {"target": "y", "prediction": "p", "features": ["heavy", "counts", "flat", "when"]}}))
    return tmp_path / "i.yaml"


@pytest.mark.parametrize("split", [False, True], ids=["fetched", "split-then-fetched"])
def test_duckdb_deciles_counts_and_ks_bound_match_numpy(tmp_path, monkeypatch, split):
    """Exact deciles whether the values inside their bins are fetched at once, or (as for hundreds of
    millions of rows) the bins are split by more counting passes first and fetched in small batches."""
    passes, fetches = [], []
    if split:
        monkeypatch.setattr(ag, "REFINE_ABOVE", 20)
        monkeypatch.setattr(ag, "BRACKET_BUDGET", 15)
        counting, fetching = ag.bin_counts, ag.bracket_query
        monkeypatch.setattr(ag, "bin_counts", lambda *a: passes.append(a[1]) or counting(*a))
        monkeypatch.setattr(ag, "bracket_query", lambda *a: fetches.append(a) or fetching(*a))
    path = _awkward(tmp_path)
    inc = load_incident(_spec(path, engine="duckdb", sample_rows=500))
    if split:  # the reference counted more than once before production, and fetched in several batches
        assert passes.index("production") >= 2 and len(fetches) >= 2
    ref, prod = (pd.read_parquet(tmp_path / f"{s}.parquet") for s in ("ref", "prod"))
    for name in ("heavy", "counts", "flat"):
        agg = inc.aggregates.columns[name]
        a, b = (np.sort(df[name].to_numpy()[np.isfinite(df[name].to_numpy())]) for df in (ref, prod))
        ranks = np.floor(np.arange(1, 10) / 10 * (len(a) - 1)).astype(int)
        assert np.array_equal(agg.quantiles[0][::100][1:10], a[ranks]), name  # exact deciles, pandas' rule
        for counts, x in zip(agg.counts, (a, b), strict=True):  # exact counts per grid bin
            assert np.array_equal(counts, np.bincount(np.searchsorted(agg.grid, x), minlength=len(agg.grid) + 1))
        # the KS bound holds against the exact statistic, and is tight (a 500-row sample's grid)
        exact = float(np.max(np.abs(np.searchsorted(a, np.r_[a, b], "right") / len(a)
                                    - np.searchsorted(b, np.r_[a, b], "right") / len(b))))
        ks = drift.run(inc, domain=False).tables["features"].set_index("feature").loc[name, "ks"]
        assert exact - agg.ks_error - 1e-12 <= ks <= exact + 1e-12, name
        assert agg.ks_error <= 0.01
    assert inc.aggregates.columns["heavy"].infinite == (5, 5)


@needs_spark
def test_spark_and_duckdb_run_one_definition(tmp_path):
    """Same deciles, missing and infinite counts and PSI bins; identical counts on one grid."""
    from mlinvestigate.engine import connect

    path = _awkward(tmp_path)
    spark_opts = SparkOptions(master="local[2]")
    duck = load_incident(_spec(path, engine="duckdb"))
    spark = load_incident(_spec(path, engine="spark", spark=spark_opts))
    for name in ("heavy", "counts", "flat", "when"):
        a, b = duck.aggregates.columns[name], spark.aggregates.columns[name]
        assert (a.missing, a.infinite) == (b.missing, b.infinite), name
        assert np.array_equal(a.quantiles[0][::100], b.quantiles[0][::100]), name
    _compare(drift.run(duck, domain=False), drift.run(spark, domain=False),
             tol={"psi": 1e-12, "js": 1e-12, "ks": 0.002, "missing_reference": 0.0, "missing_production": 0.0})
    grids = {name: (duck.aggregates.columns[name].kind, duck.aggregates.columns[name].grid)
             for name in ("heavy", "counts", "when")}
    engines = [connect(_spec(path, spark=spark_opts), e) for e in ("duckdb", "spark")]
    native, searched = (ag.bin_counts(e, "production", grids) for e in engines)
    for name in grids:  # DuckDB's histogram() and Spark's Bucketizer: the same bins
        assert np.array_equal(native[name], searched[name]), name


# --- per-day views and repeated ids over every row ---------------------------------------------------
def test_volumes_per_day_and_repeated_ids_count_every_row(scenario, tmp_path):
    from mlinvestigate.data import read_table

    path = scenario("health", rows=4000)
    doc = yaml.safe_load(path.read_text())
    prod = read_table(path.parent / doc["production"], "production")
    prod = pd.concat([prod, prod.iloc[::100]], ignore_index=True)  # 40 rows repeat an earlier row's id
    prod.to_parquet(tmp_path / "prod.parquet", coerce_timestamps="us", allow_truncated_timestamps=True)
    doc.update(reference=str(path.parent / doc["reference"]), production="prod.parquet")
    doc.pop("model", None)
    doc.pop("serving", None)
    (tmp_path / "i.yaml").write_text(yaml.safe_dump(doc))
    pandas_inc = load_incident(_spec(tmp_path / "i.yaml", engine="pandas"))
    duck_inc = load_incident(_spec(tmp_path / "i.yaml", engine="duckdb", sample_rows=800))
    assert len(duck_inc.production) == 800
    assert duck_inc.duplicate_ids["production"] == pandas_inc.duplicate_ids["production"] >= 40
    assert any("counted over every row by duckdb" in w for w in duck_inc.warnings)
    ha, hb = health.run(pandas_inc), health.run(duck_inc)
    da, db = ha.tables["daily"], hb.tables["daily"]
    assert list(da["day"]) == list(db["day"]) and list(da["rows"]) == list(db["rows"])
    assert int(db["rows"].sum()) == len(prod)
    sa, sb = (r.tables["signals"].set_index("signal").loc["volume"] for r in (ha, hb))
    assert (sa["status"], sa["value"]) == (sb["status"], sb["value"])  # the median day's volume, exactly


def test_nan_in_partitioned_parquet_counts_as_missing(tmp_path):
    """NaN written by pyarrow across several files: missing on DuckDB as on pandas, never a maximum."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(5)
    for side in ("ref", "prod"):
        for day in range(3):
            x = rng.lognormal(0, 1, 400)
            x[rng.random(400) < 0.05] = np.nan
            part = tmp_path / side / f"date=2026-11-0{day + 1}"
            part.mkdir(parents=True)
            pq.write_table(pa.table({"x": x, "y": rng.integers(0, 2, 400), "p": rng.integers(0, 2, 400)}),
                           part / "part-0.parquet")
    (tmp_path / "i.yaml").write_text(yaml.safe_dump({
        "name": "n", "reference": "ref", "production": "prod",
        "columns": {"target": "y", "prediction": "p", "features": ["x"]}}))
    pandas_inc = load_incident(_spec(tmp_path / "i.yaml", engine="pandas"))
    duck_inc = load_incident(_spec(tmp_path / "i.yaml", engine="duckdb", sample_rows=300))
    expected = tuple(int(df["x"].isna().sum()) for df in (pandas_inc.reference, pandas_inc.production))
    agg = duck_inc.aggregates.columns["x"]
    assert agg.missing == expected and min(expected) > 0
    assert np.isfinite(agg.grid).all() and agg.grid[-1] == max(np.nanmax(df["x"]) for df in
                                                               (pandas_inc.reference, pandas_inc.production))
    _compare(drift.run(pandas_inc, domain=False), drift.run(duck_inc, domain=False))
