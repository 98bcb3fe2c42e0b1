"""The synthetic scenarios: they load, they are deterministic, and each really plants its cause.

Effects are measured directly with pandas on the loaded files, independently of the checks.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import run_cli
from threadpoolctl import threadpool_limits

from mlinvestigate import scenarios
from mlinvestigate.data import load_incident
from mlinvestigate.errors import InvestigationError
from mlinvestigate.model import load_model
from mlinvestigate.spec import load_spec

ROWS = 3000
CHECK_IDS = {"measurement", "deployment", "health", "segments", "drift", "leakage", "skew", "labels",
             "prior_shift"}
FEATURES = ["amount", "hour", "account_age_days", "n_tx_7d", "distance_km", "merchant_category",
            "device", "country"]


@pytest.fixture(scope="module")
def loaded(scenario):
    """``loaded(name) -> Incident`` made with ROWS rows a side (once per session)."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = load_incident(scenario(name, rows=ROWS))
        return cache[name]

    return get


def accuracy(df: pd.DataFrame, target="is_fraud", prediction="pred") -> float:
    ok = df[target].notna() & df[prediction].notna()
    return float((df.loc[ok, target].astype(str) == df.loc[ok, prediction].astype(str)).mean())


def mae(df: pd.DataFrame) -> float:
    ok = df["loss_usd"].notna() & df["pred_loss"].notna()
    return float((df.loc[ok, "loss_usd"] - df.loc[ok, "pred_loss"]).abs().mean())


def rate(s: pd.Series) -> float:
    return float(s.dropna().astype(float).mean())


def file_hashes(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


# --- the catalogue ------------------------------------------------------------------------------
def test_names_descriptions_and_expectations_agree():
    assert len(scenarios.NAMES) == len(set(scenarios.NAMES)) >= 17
    assert set(scenarios.describe()) == set(scenarios.NAMES) == set(scenarios.EXPECTED)
    assert all(isinstance(d, str) and d and "\n" not in d for d in scenarios.describe().values())
    for name, exp in scenarios.EXPECTED.items():
        if name.startswith("control"):
            assert exp == {"check": None}
        else:
            assert exp["check"] in CHECK_IDS, name
            assert isinstance(exp["culprits"], list)
    assert scenarios.EXPECTED["health"]["also"] == ["error_rate", "latency_p95"]


# --- every scenario loads -----------------------------------------------------------------------
@pytest.mark.parametrize("name", scenarios.NAMES)
def test_scenario_validates_and_loads(name, scenario, loaded):
    path = scenario(name, rows=ROWS)
    assert path.name == "incident.yaml"
    spec = load_spec(path)
    assert spec.title and spec.name == name.replace("_", "-")
    assert spec.model.version == "2.0" and spec.model.sha256
    assert spec.expected.daily_volume == pytest.approx(ROWS / 28, abs=0.1)
    assert spec.expected.latency_p95_ms == 50
    assert spec.columns.segments[:2] == ["country", "device"]
    inc = loaded(name)
    assert inc.warnings == []
    if spec.columns.features is None:  # the default: every column without a role, segments included
        assert set(FEATURES) | set(spec.columns.segments) <= set(inc.features)
    else:
        assert set(FEATURES) <= set(spec.columns.features)
        assert inc.features == spec.columns.features
    assert len(inc.reference) == len(inc.production) == ROWS
    ids_ref, ids_prod = inc.reference["request_id"], inc.production["request_id"]
    assert ids_ref.is_unique and ids_prod.is_unique and not set(ids_ref) & set(ids_prod)
    ref_t, prod_t = inc.reference["event_time"], inc.production["event_time"]
    assert ref_t.min() >= pd.Timestamp("2026-09-01") and ref_t.max() < pd.Timestamp("2026-09-29")
    assert prod_t.min() >= pd.Timestamp("2026-10-12") and prod_t.max() < pd.Timestamp("2026-11-09")
    assert (inc.production["event_time"].dt.hour == inc.production["hour"]).all()
    for t in (ref_t, prod_t):  # an even daily volume over all 28 days
        daily = t.dt.floor("D").value_counts()
        assert len(daily) == 28 and daily.min() > 0.6 * ROWS / 28 and daily.max() < 1.4 * ROWS / 28
    assert {"latency_ms", "status"} <= set(inc.production.columns)
    assert not {"latency_ms", "status"} & set(inc.reference.columns)
    expected_kind = ("regression" if "regression" in name else "multiclass" if "multiclass" in name
                     else "binary")
    assert inc.kind == expected_kind
    if expected_kind == "binary":
        assert inc.positive_label == 1 and inc.score == "pred_proba"
        assert 0.08 <= rate(inc.reference["is_fraud"]) <= 0.12
    elif expected_kind == "multiclass":
        assert inc.classes == ["account_takeover", "card_theft", "none"] and inc.score is None
    else:
        assert inc.target == "loss_usd" and inc.prediction == "pred_loss" and inc.score is None


@pytest.mark.parametrize("name", scenarios.NAMES)
def test_model_reproduces_logged_predictions(name, loaded):
    inc = loaded(name)
    model = load_model(inc)
    with threadpool_limits(limits=1):
        _reproduces(inc, model)


def _reproduces(inc, model):
    for df in (inc.reference, inc.production):
        rows = df[df["model_version"].astype(str).eq("2.0").to_numpy() & df[inc.prediction].notna().to_numpy()]
        X = rows[inc.features]
        if inc.kind == "binary":
            proba = model.predict_proba(X)[:, 1]
            np.testing.assert_allclose(proba, rows["pred_proba"].to_numpy(float), atol=2e-6)
            assert ((proba >= 0.5).astype(int) == rows["pred"].astype(int).to_numpy()).mean() > 0.999
        elif inc.kind == "multiclass":
            assert (model.predict(X).astype(str) == rows["pred"].astype(str).to_numpy()).all()
        else:
            np.testing.assert_allclose(model.predict(X), rows["pred_loss"].to_numpy(float), atol=0.006)


# --- make(): errors and determinism -------------------------------------------------------------
def test_unknown_name_suggests_the_nearest(tmp_path):
    with pytest.raises(InvestigationError, match=r"unknown scenario 'drfit'.*'drift'"):
        scenarios.make("drfit", tmp_path / "x")
    with pytest.raises(InvestigationError, match="prior_shift"):
        scenarios.make("prior-shift", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_refuses_to_overwrite_and_rejects_tiny_sizes(tmp_path):
    spec = scenarios.make("control", tmp_path, rows=300)
    before = file_hashes(tmp_path)
    with pytest.raises(InvestigationError, match="already exists"):
        scenarios.make("drift", tmp_path, rows=300)
    assert file_hashes(tmp_path) == before
    assert spec == tmp_path / "incident.yaml"
    with pytest.raises(InvestigationError, match="at least"):
        scenarios.make("control", tmp_path / "small", rows=10)


@pytest.mark.parametrize("name", ["drift", "skew", "labels", "prior_shift-multiclass"])
def test_same_seed_same_bytes(name, tmp_path):
    a = scenarios.make(name, tmp_path / "a", rows=800, seed=3).parent
    b = scenarios.make(name, tmp_path / "b", rows=800, seed=3).parent
    c = scenarios.make(name, tmp_path / "c", rows=800, seed=4).parent
    assert file_hashes(a) == file_hashes(b)
    ha, hc = file_hashes(a), file_hashes(c)
    assert ha.keys() == hc.keys()
    assert ha["incident.yaml"] != hc["incident.yaml"]  # another model, another checksum
    assert all(ha[f] != hc[f] for f in ha if f.startswith(("reference", "production")))


def test_default_size_and_csv_files(scenario):
    spec = yaml.safe_load(scenario("labels", rows=ROWS).read_text())
    assert spec["reference"].endswith(".csv") and spec["production"].endswith(".csv")
    assert spec["columns"]["model_version"] == "model_version"
    assert scenarios.DEFAULT_ROWS == 20_000


# --- the planted effects ------------------------------------------------------------------------
def test_control_is_healthy(loaded):
    inc = loaded("control")
    ref, prod = inc.reference, inc.production
    assert accuracy(ref) >= 0.92
    assert abs(accuracy(prod) - accuracy(ref)) < 0.02
    assert abs(rate(prod["is_fraud"]) - rate(ref["is_fraud"])) < 0.02
    assert prod["status"].eq("ok").mean() > 0.99
    ok = prod[prod["status"] == "ok"]
    assert ok.groupby(ok["event_time"].dt.date)["latency_ms"].quantile(0.95).max() < 50
    assert set(prod["model_version"]) == set(ref["model_version"]) == {"2.0"}
    assert set(prod["label_source"]) == set(ref["label_source"]) == {"analyst"}
    assert prod[FEATURES].notna().all().all()
    # failed requests carry no prediction and no score; the others all do
    failed = prod["status"] != "ok"
    assert prod.loc[failed, ["pred", "pred_proba"]].isna().all().all()
    assert prod.loc[~failed, ["pred", "pred_proba"]].notna().all().all()
    assert abs(ref["amount"].median() / prod["amount"].median() - 1) < 0.1
    assert abs(ref["country"].eq("BR").mean() - prod["country"].eq("BR").mean()) < 0.02


def test_drift_moves_amount_and_distance_and_hurts_accuracy(loaded):
    inc = loaded("drift")
    ref, prod = inc.reference, inc.production
    assert prod["amount"].median() > 2 * ref["amount"].median()
    assert prod["distance_km"].median() > 2 * ref["distance_km"].median()
    assert (ref["amount"] > 1000).mean() < 0.01 and (prod["amount"] > 1000).mean() > 0.25
    weeks = (prod["event_time"] - pd.Timestamp("2026-10-12")).dt.days // 7
    big = (prod["amount"] > 1000).groupby(weeks).mean()
    assert big.is_monotonic_increasing and big.iloc[-1] > big.iloc[0] + 0.3
    assert accuracy(ref) - accuracy(prod) >= 0.08
    # covariate drift, not a new fraud rate
    assert abs(rate(prod["is_fraud"]) / rate(ref["is_fraud"]) - 1) < 0.25
    for f in ("hour", "account_age_days", "n_tx_7d"):
        assert abs(prod[f].mean() / ref[f].mean() - 1) < 0.1, f


def test_leakage_feature_keeps_its_marginal_but_loses_its_link(loaded):
    inc = loaded("leakage")
    ref, prod = inc.reference, inc.production
    assert "chargeback_count" in inc.features and "chargeback_count" in inc.spec.columns.features
    has_ref, has_prod = ref["chargeback_count"] >= 1, prod["chargeback_count"] >= 1
    assert abs(has_ref.mean() - has_prod.mean()) < 0.03
    assert abs(ref["chargeback_count"].mean() - prod["chargeback_count"].mean()) < 0.05
    corr_ref = np.corrcoef(ref["chargeback_count"], ref["is_fraud"].astype(float))[0, 1]
    corr_prod = np.corrcoef(prod["chargeback_count"], prod["is_fraud"].astype(float))[0, 1]
    assert corr_ref > 0.7 and abs(corr_prod) < 0.1
    assert accuracy(ref) >= 0.98
    assert accuracy(ref) - accuracy(prod) >= 0.05


def test_skew_serves_cents_and_a_short_window(loaded):
    inc = loaded("skew")
    prod, offline = inc.production, inc.offline
    assert offline is not None and inc.spec.serving.offline.name == "offline_features.parquet"
    assert 0.9 < len(offline) / len(prod) < 0.995
    joined = prod.merge(offline, on="request_id", suffixes=("", "_offline"))
    assert len(joined) == len(offline)
    np.testing.assert_allclose(joined["amount"] / joined["amount_offline"], 100, rtol=1e-9)
    assert (joined["n_tx_7d"] == joined["n_tx_7d_offline"].clip(upper=3)).all()
    assert (joined["n_tx_7d_offline"] > 3).mean() > 0.3
    for f in ("hour", "account_age_days", "distance_km"):
        assert (joined[f] == joined[f"{f}_offline"]).all(), f
    for f in ("merchant_category", "device", "country"):
        assert (joined[f].astype(str) == joined[f"{f}_offline"].astype(str)).all(), f
    assert accuracy(inc.reference) - accuracy(prod) >= 0.08


def test_labels_from_vendor_b_are_broader(loaded):
    inc = loaded("labels")
    ref, prod = inc.reference, inc.production
    assert set(ref["label_source"]) == {"analyst"}
    vendor = prod["label_source"] == "vendor_b"
    assert 0.25 < vendor.mean() < 0.35
    assert set(prod["label_source"]) == {"analyst", "vendor_b"}
    band = prod["pred_proba"].between(0.05, 0.5)
    assert rate(prod.loc[band & vendor, "is_fraud"]) > rate(prod.loc[band & ~vendor, "is_fraud"]) + 0.3
    assert accuracy(prod[~vendor]) - accuracy(prod[vendor]) > 0.1
    assert abs(accuracy(prod[~vendor]) - accuracy(ref)) < 0.02


def test_prior_shift_triples_fraud_with_the_same_fraud(loaded):
    inc = loaded("prior_shift")
    ref, prod = inc.reference, inc.production
    assert 2.5 < rate(prod["is_fraud"]) / rate(ref["is_fraud"]) < 3.5
    from scipy.stats import ks_2samp

    for y in (0, 1):
        r, p = ref[ref["is_fraud"] == y], prod[prod["is_fraud"] == y]
        for f in ("amount", "distance_km", "account_age_days"):
            assert ks_2samp(r[f], p[f]).pvalue > 1e-4, (y, f)
        assert abs(r["device"].eq("web").mean() - p["device"].eq("web").mean()) < 0.05
    assert prod["event_time"].is_monotonic_increasing


def test_deployment_serves_an_older_version(loaded):
    inc = loaded("deployment")
    ref, prod = inc.reference, inc.production
    assert set(ref["model_version"]) == {"2.0"}
    shares = prod["model_version"].value_counts(normalize=True)
    assert set(shares.index) == {"1.9", "2.0"} and 0.35 < shares["1.9"] < 0.45
    old = prod["model_version"] == "1.9"
    assert accuracy(prod[~old]) - accuracy(prod[old]) > 0.04
    assert abs(accuracy(prod[~old]) - accuracy(ref)) < 0.02


def test_health_errors_latency_and_missing_distance(loaded):
    inc = loaded("health")
    ref, prod = inc.reference, inc.production
    status = prod["status"].value_counts(normalize=True)
    assert 0.03 < status["error"] < 0.05 and 0.013 < status["timeout"] < 0.027
    failed = prod["status"] != "ok"
    assert prod.loc[failed, ["pred", "pred_proba"]].isna().all().all()
    assert prod.loc[~failed, ["pred", "pred_proba"]].notna().all().all()
    ok = prod[~failed]
    p95 = ok.groupby(ok["event_time"].dt.date)["latency_ms"].quantile(0.95)
    assert (p95 > 50).sum() >= 4 and (p95 < 40).sum() >= 14
    assert 0.12 < prod["distance_km"].isna().mean() < 0.18
    assert ref["distance_km"].notna().all()
    assert prod.drop(columns="distance_km")[FEATURES[:4]].notna().all().all()


def test_segments_brazil_grows_and_fails(loaded):
    inc = loaded("segments")
    ref, prod = inc.reference, inc.production
    assert 0.03 < ref["country"].eq("BR").mean() < 0.07
    br = prod["country"] == "BR"
    assert 0.21 < br.mean() < 0.29
    assert accuracy(prod[~br]) - accuracy(prod[br]) > 0.1
    assert abs(accuracy(prod[~br]) - accuracy(ref)) < 0.025
    for device, rows in prod[~br].groupby("device", observed=True):
        assert abs(accuracy(rows) - accuracy(ref[ref["device"] == device])) < 0.04, device


def test_measurement_labels_only_a_biased_subset(loaded):
    inc = loaded("measurement")
    ref, prod = inc.reference, inc.production
    labelled = prod["is_fraud"].notna()
    assert labelled.mean() < 0.4
    flagged = prod["pred"].eq(1).fillna(False).astype(bool)
    assert labelled[flagged].all()
    assert 0.03 < labelled[~flagged].mean() < 0.07
    assert prod.loc[~labelled, "label_source"].isna().all()
    assert (prod.loc[labelled, "label_source"] == "analyst").all()
    # the labelled rows look far worse than the model really is
    assert accuracy(ref) - accuracy(prod) > 0.04
    assert abs(prod["amount"].median() / ref["amount"].median() - 1) < 0.1
    assert abs(prod["pred"].astype(float).mean() - ref["pred"].astype(float).mean()) < 0.02


def test_wide_has_thousands_of_columns_and_five_shifted(loaded):
    from mlinvestigate.scenarios.catalog import WIDE_DRIFTED

    inc = loaded("wide")
    ref, prod = inc.reference, inc.production
    extra = [f for f in inc.features if f not in FEATURES]
    assert len(inc.features) >= 2000 and len(extra) >= 2000
    shift = ((prod[extra].mean() - ref[extra].mean()) / ref[extra].std()).abs()
    assert set(shift.nlargest(5).index) == set(WIDE_DRIFTED)
    assert (shift[list(WIDE_DRIFTED)] > 0.8).all()
    assert shift.drop(list(WIDE_DRIFTED)).max() < 0.15
    assert abs(accuracy(prod) - accuracy(ref)) < 0.02


def test_segment_drift_moves_the_channel_mix(loaded):
    inc = loaded("segment_drift")
    ref, prod = inc.reference, inc.production
    assert "channel" in inc.spec.columns.segments and inc.spec.columns.features is None
    assert "channel" in inc.features and inc.feature_types["channel"] == "categorical"
    assert 0.08 < ref["channel"].eq("marketplace").mean() < 0.12
    weeks = (prod["event_time"] - pd.Timestamp("2026-10-12")).dt.days // 7
    market = prod["channel"].eq("marketplace").groupby(weeks).mean()
    assert market.is_monotonic_increasing and market.iloc[0] < 0.2 and market.iloc[-1] > 0.3
    for f in ("amount", "distance_km", "account_age_days"):
        assert abs(prod[f].median() / ref[f].median() - 1) < 0.1, f


def test_labels_multiclass_relabels_at_the_same_inputs(loaded):
    inc = loaded("labels-multiclass")
    ref, prod = inc.reference, inc.production
    r, p = (df["fraud_type"].value_counts(normalize=True) for df in (ref, prod))
    assert p["card_theft"] < 0.5 * r["card_theft"] and p["account_takeover"] > 2 * r["account_takeover"]
    assert abs(p["none"] - r["none"]) < 0.02
    from scipy.stats import ks_2samp

    for f in ("amount", "distance_km", "account_age_days"):
        assert ks_2samp(ref[f], prod[f]).pvalue > 1e-3, f
    # the model's predictions keep their mix: the inputs did not move
    pr, pp = (df["pred"].value_counts(normalize=True) for df in (ref, prod))
    assert (pr - pp).abs().max() < 0.02


def test_multiclass_scenarios(loaded):
    control, shifted = loaded("control-multiclass"), loaded("prior_shift-multiclass")
    ref = control.reference
    shares = ref["fraud_type"].value_counts(normalize=True)
    assert 0.75 < shares["none"] < 0.85 and shares["card_theft"] > shares["account_takeover"] > 0.03
    assert accuracy(ref, "fraud_type") > shares["none"] + 0.04
    assert abs(accuracy(control.production, "fraud_type") - accuracy(ref, "fraud_type")) < 0.025
    prod = shifted.production["fraud_type"].value_counts(normalize=True)
    assert prod.to_dict() == pytest.approx({"none": 0.5, "card_theft": 0.3, "account_takeover": 0.2},
                                           abs=0.01)
    assert shifted.reference["fraud_type"].value_counts(normalize=True)["none"] > 0.75


def test_regression_scenarios(loaded):
    control, drifted = loaded("control-regression"), loaded("drift-regression")
    # the error is heavy-tailed (a few large payments carry most of it): a loose bound
    assert abs(mae(control.production) / mae(control.reference) - 1) < 0.3
    assert drifted.production["amount"].median() > 2 * drifted.reference["amount"].median()
    assert mae(drifted.production) > 2 * mae(drifted.reference)
    for f in ("distance_km", "account_age_days", "n_tx_7d"):
        assert abs(drifted.production[f].median() / drifted.reference[f].median() - 1) < 0.15, f


# --- the command line ---------------------------------------------------------------------------
def test_cli_lists_and_makes(tmp_path):
    listed = run_cli("scenarios", "list")
    assert listed.returncode == 0, listed.stderr
    for name in scenarios.NAMES:
        assert name in listed.stdout

    made = run_cli("scenarios", "make", "segments", tmp_path / "seg", "--rows", "500", "--seed", "2")
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "seg" / "incident.yaml").exists()
    assert len(pd.read_parquet(tmp_path / "seg" / "production.parquet")) == 500

    again = run_cli("scenarios", "make", "segments", tmp_path / "seg", "--rows", "500")
    assert again.returncode == 2 and "already exists" in again.stderr

    unknown = run_cli("scenarios", "make", "segmnts", tmp_path / "x")
    assert unknown.returncode == 2 and "'segments'" in unknown.stderr


def test_control_text_has_a_long_tailed_free_text_column_that_does_not_move(loaded):
    inc = loaded("control-text")
    ref, prod = inc.reference, inc.production
    assert "merchant_name" in inc.features and "merchant_name" not in inc.identifier_like
    r, p = (df["merchant_name"].astype(str) for df in (ref, prod))
    assert r.nunique() > 0.25 * len(r) and p.nunique() > 0.25 * len(p)
    assert (~p.isin(set(r))).mean() > 0.2      # many production names never appear in reference
    top = r.value_counts(normalize=True).head(10)
    assert (p.value_counts(normalize=True).reindex(top.index).fillna(0) - top).abs().max() < 0.02
    assert abs(accuracy(prod) - accuracy(ref)) < 0.02


def test_measurement_threshold_labels_only_high_scores(loaded, scenario):
    import json

    inc = loaded("measurement-threshold")
    ref, prod = inc.reference, inc.production
    labelled = prod["is_fraud"].notna()
    score = prod["pred_proba"].astype(float)
    assert labelled.mean() < 0.3 and (score[labelled] > 0.4).all()
    assert not labelled[score.fillna(0) <= 0.4].any()
    assert accuracy(ref) - accuracy(prod) > 0.1          # the labelled rows look far worse
    truth = json.loads((scenario("measurement-threshold", rows=ROWS).parent / "truth.json").read_text())
    rates = truth["production_class_rates"]
    assert abs(rates["1"] - rate(ref["is_fraud"])) < 0.03  # the true rate did not move
    assert rate(prod["is_fraud"]) > 0.5                   # the labelled rows say otherwise
