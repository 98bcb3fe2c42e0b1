"""The scenarios: each draws reference and production from the world and plants one cause.

A builder takes the scenario's generator and the rows per side and returns a :class:`Built`: the
frames as they will be written (plus hidden ``_`` columns), the model, and what the spec says.
Everything a builder does not mention is exactly as in ``control``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from . import world as W


@dataclass
class Built:
    title: str
    reference: pd.DataFrame
    production: pd.DataFrame
    model: Any
    features: list[str] = field(default_factory=lambda: list(W.FEATURES))
    task: str = "classification"
    target: str = "is_fraud"
    prediction: str = "pred"
    score: str | None = "pred_proba"
    positive_label: Any = 1
    offline: pd.DataFrame | None = None
    fmt: str = "parquet"
    segments: list[str] = field(default_factory=lambda: ["country", "device"])
    # False: the spec leaves `features` out, so every column without a role is a feature
    list_features: bool = True
    # the production class shares over every row, when the written labels hide some of them
    true_rates: dict | None = None


# --- shared steps -------------------------------------------------------------------------------
def _shares(labels: pd.Series) -> dict[str, float]:
    """Class → share of the labelled rows (keys as text)."""
    shares = labels.dropna().astype(str).value_counts(normalize=True)
    return {str(k): float(v) for k, v in sorted(shares.items())}


def _with_ids(df: pd.DataFrame, first: int) -> pd.DataFrame:
    df.insert(0, "request_id", np.arange(first, first + len(df), dtype=np.int64))
    return df


def _labelled(rng: np.random.Generator, df: pd.DataFrame) -> pd.DataFrame:
    df["is_fraud"] = W.label(rng, W.fraud_probability(df))
    return df


def _score(df: pd.DataFrame, model, features: list[str], rows: np.ndarray | None = None) -> None:
    """Log the model's score and class (threshold 0.5) for ``rows`` (default all) of ``df``."""
    X = df[features] if rows is None else df.loc[rows, features]
    proba = W.positive_score(model, X)
    if rows is None:
        df["pred_proba"] = proba
        df["pred"] = (proba >= W.THRESHOLD).astype(np.int64)
    else:
        df.loc[rows, "pred_proba"] = proba
        df.loc[rows, "pred"] = (proba >= W.THRESHOLD).astype(np.int64)


def _binary_world(rng: np.random.Generator, rows: int, *, features: list[str] | None = None,
                  extra: Callable[[np.random.Generator, pd.DataFrame], None] | None = None):
    """The 2.0 model trained on its own sample, and the reference: a held-out validation sample
    from the weeks after training, scored by that model."""
    features = features or list(W.FEATURES)
    train = _labelled(rng, W.draw(rng, W.TRAIN_ROWS, W.TRAIN_START))
    ref = _with_ids(_labelled(rng, W.draw(rng, rows, W.REF_START)), W.REF_FIRST_ID)
    if extra is not None:
        extra(rng, train)
        extra(rng, ref)
    model = W.fit_classifier(train[features], train["is_fraud"])
    _score(ref, model, features)
    return model, ref


def _production(rng: np.random.Generator, rows: int, **draw_options) -> pd.DataFrame:
    return _with_ids(_labelled(rng, W.draw(rng, rows, W.PROD_START, **draw_options)), W.PROD_FIRST_ID)


def _serve(rng: np.random.Generator, prod: pd.DataFrame, **options) -> pd.DataFrame:
    prod["status"], prod["latency_ms"] = W.serve(rng, prod, **options)
    return prod


def _healthy(rng, rows, model, features=None, **draw_options) -> pd.DataFrame:
    prod = _production(rng, rows, **draw_options)
    _score(prod, model, features or list(W.FEATURES))
    return _serve(rng, prod)


# --- binary scenarios ---------------------------------------------------------------------------
def control(rng, rows):
    model, ref = _binary_world(rng, rows)
    prod = _healthy(rng, rows, model)
    return Built("Fraud model 2.0 in healthy production: nothing changed (control)", ref, prod, model)


def drift(rng, rows):
    model, ref = _binary_world(rng, rows)
    prod = W.draw(rng, rows, W.PROD_START)
    # A growing flow of large payments made far from home (10% of traffic on the first day, 60% on
    # the last): amounts and distances the training data barely covers, mostly legitimate, while the
    # model extrapolates "bigger and farther is riskier".
    travel = rng.random(rows) < 0.1 + 0.5 * prod["_t"].to_numpy()
    k = int(travel.sum())
    prod.loc[travel, "amount"] = np.round(np.exp(rng.normal(np.log(2500.0), 0.45, k)), 2)
    prod.loc[travel, "distance_km"] = np.round(np.exp(rng.normal(np.log(3000.0), 0.5, k)), 1)
    prod = _with_ids(_labelled(rng, prod), W.PROD_FIRST_ID)
    _score(prod, model, W.FEATURES)
    _serve(rng, prod)
    return Built("Fraud model accuracy falls as large, long-distance payments grow in production",
                 ref, prod, model)


def _chargebacks(rng, y: np.ndarray) -> np.ndarray:
    """Chargebacks filed on the payment: almost always ≥1 for fraud (often several), almost always
    0 otherwise (and then at most 1)."""
    fraud = y == 1
    has = np.where(fraud, rng.random(len(y)) < 0.98, rng.random(len(y)) < 0.015)
    extra = np.where(fraud, rng.poisson(0.8, len(y)), 0)
    return np.where(has, 1 + extra, 0).astype(np.int64)


def leakage(rng, rows):
    features = [*W.FEATURES, "chargeback_count"]

    def leak(rng_, df):
        df["chargeback_count"] = _chargebacks(rng_, df["is_fraud"].to_numpy())

    model, ref = _binary_world(rng, rows, features=features, extra=leak)
    prod = _production(rng, rows)
    # At prediction time the chargebacks of *this* payment are not known yet: the served value
    # has the same distribution but says nothing about this payment's label.
    phantom = (rng.random(rows) < ref["is_fraud"].mean()).astype(np.int64)
    prod["chargeback_count"] = _chargebacks(rng, phantom)
    _score(prod, model, features)
    _serve(rng, prod)
    return Built("Fraud model scored 99% offline by reading chargebacks that are not known at prediction time",
                 ref, prod, model, features=features)


def skew(rng, rows):
    model, ref = _binary_world(rng, rows)
    prod = _production(rng, rows)
    # Offline recomputation of the same requests (a few are missing from the offline store).
    kept = rng.random(rows) >= 0.03
    offline = prod.loc[kept, ["request_id", *W.FEATURES]].reset_index(drop=True)
    # Serving computes amount in cents and counts transactions over a shorter window.
    prod["amount"] = np.round(prod["amount"].to_numpy() * 100)
    prod["n_tx_7d"] = np.minimum(prod["n_tx_7d"].to_numpy(), 3)
    _score(prod, model, W.FEATURES)
    _serve(rng, prod)
    return Built("Serving computes amount in cents and n_tx_7d over a shorter window than training",
                 ref, prod, model, offline=offline)


def labels(rng, rows):
    model, ref = _binary_world(rng, rows)
    prod = _healthy(rng, rows, model)
    # A new labelling vendor handles ~30% of production with a broader definition of fraud: it
    # marks many legitimate payments with moderate scores as fraud, and gets some labels wrong.
    vendor = rng.random(rows) < 0.30
    y = prod["is_fraud"].to_numpy().copy()
    score = prod["pred_proba"].to_numpy()
    broader = vendor & (y == 0) & (score >= 0.03) & (score < 0.5) & (rng.random(rows) < 0.7)
    flipped = vendor & (rng.random(rows) < 0.08)
    y[broader] = 1
    y[flipped] = 1 - y[flipped]
    prod["is_fraud"] = y
    prod["label_source"] = np.where(vendor, "vendor_b", "analyst").astype(object)
    return Built("Production labels from a new vendor use a broader definition of fraud",
                 ref, prod, model, fmt="csv")


def prior_shift(rng, rows):
    model, ref = _binary_world(rng, rows)
    prod = W.draw_by_class(rng, rows, W.PROD_START, {0: 0.7, 1: 0.3},
                           lambda r, df: W.label(r, W.fraud_probability(df)))
    prod = _with_ids(prod.rename(columns={"_y": "is_fraud"}), W.PROD_FIRST_ID)
    _score(prod, model, W.FEATURES)
    _serve(rng, prod)
    return Built("A fraud wave: the share of fraudulent payments triples while fraud looks the same",
                 ref, prod, model)


OLD_FEATURES = ["amount", "account_age_days", "n_tx_7d", "merchant_category"]


def deployment(rng, rows):
    model, ref = _binary_world(rng, rows)
    # Version 1.9: trained months earlier on a small sample with fewer features, and with classes
    # reweighted, so it flags far more payments than 2.0.
    stale = _labelled(rng, W.draw(rng, 2_500, W.TRAIN_START - pd.Timedelta(days=120)))
    old = W.fit_classifier(stale[OLD_FEATURES], stale["is_fraud"], max_iter=40, max_leaf_nodes=8,
                           class_weight="balanced")
    prod = _production(rng, rows)
    on_old = rng.random(rows) < 0.40
    prod["pred_proba"] = 0.0
    prod["pred"] = 0
    _score(prod, model, W.FEATURES, rows=~on_old)
    _score(prod, old, OLD_FEATURES, rows=on_old)
    prod["model_version"] = np.where(on_old, "1.9", W.VERSION).astype(object)
    _serve(rng, prod)
    return Built("40% of production is still served by the older model 1.9", ref, prod, model)


def health(rng, rows):
    model, ref = _binary_world(rng, rows)
    prod = _production(rng, rows)
    # A broken upstream lookup: distance_km is missing for ~15% of requests (the model sees NaN).
    prod.loc[rng.random(rows) < 0.15, "distance_km"] = np.nan
    _score(prod, model, W.FEATURES)
    _serve(rng, prod, error_rate=0.04, timeout_rate=0.02, slow_days=(3, 4, 11, 17, 18, 24, 25))
    return Built("Serving trouble: errors, timeouts, slow days and a missing distance feature",
                 ref, prod, model)


def segments(rng, rows):
    model, ref = _binary_world(rng, rows)
    share = W.COUNTRY_SHARE * (0.75 / (1 - W.COUNTRY_SHARE[W.BR]))
    share[W.BR] = 0.25
    prod = _production(rng, rows, country_share=share)
    # Brazil: traffic grows five-fold and fraud there now follows a different pattern (card testing).
    br = prod["_co"].to_numpy() == W.BR
    prod.loc[br, "is_fraud"] = W.label(rng, W.card_testing_probability(prod[br]))
    _score(prod, model, W.FEATURES)
    _serve(rng, prod)
    return Built("A new fraud pattern in Brazil, whose share of traffic grew five-fold", ref, prod, model)


def measurement(rng, rows):
    model, ref = _binary_world(rng, rows)
    prod = _healthy(rng, rows, model)
    # Only flagged payments are reviewed, plus a 5% random sample of the rest.
    flagged = prod["pred"].to_numpy() == 1
    reviewed = flagged | (rng.random(rows) < 0.05)
    truth = _shares(prod["is_fraud"])
    prod["is_fraud"] = pd.array(np.where(reviewed, prod["is_fraud"].to_numpy(), 0), dtype="Int64")
    prod.loc[~reviewed, "is_fraud"] = pd.NA
    return Built("Production accuracy measured only on reviewed payments, mostly ones the model flagged",
                 ref, prod, model, true_rates=truth)


# --- other tasks --------------------------------------------------------------------------------
def _multiclass_labelled(rng, df):
    df["fraud_type"] = W.label_multiclass(rng, W.multiclass_probabilities(df))
    return df


def _multiclass_world(rng, rows):
    train = _multiclass_labelled(rng, W.draw(rng, W.TRAIN_ROWS, W.TRAIN_START))
    model = W.fit_classifier(train[W.FEATURES], train["fraud_type"])
    ref = _with_ids(_multiclass_labelled(rng, W.draw(rng, rows, W.REF_START)), W.REF_FIRST_ID)
    ref["pred"] = model.predict(ref[W.FEATURES]).astype(object)
    return model, ref


def _multiclass_built(title, ref, prod, model, **kw):
    return Built(title, ref, prod, model, target="fraud_type", score=None, positive_label=None, **kw)


def control_multiclass(rng, rows):
    model, ref = _multiclass_world(rng, rows)
    prod = _with_ids(_multiclass_labelled(rng, W.draw(rng, rows, W.PROD_START)), W.PROD_FIRST_ID)
    prod["pred"] = model.predict(prod[W.FEATURES]).astype(object)
    _serve(rng, prod)
    return _multiclass_built("Fraud-type model in healthy production: nothing changed (control)",
                             ref, prod, model, fmt="csv")


def prior_shift_multiclass(rng, rows):
    model, ref = _multiclass_world(rng, rows)
    shares = {"none": 0.5, "card_theft": 0.3, "account_takeover": 0.2}
    prod = W.draw_by_class(rng, rows, W.PROD_START, shares,
                           lambda r, df: W.label_multiclass(r, W.multiclass_probabilities(df)))
    prod = _with_ids(prod.rename(columns={"_y": "fraud_type"}), W.PROD_FIRST_ID)
    prod["pred"] = model.predict(prod[W.FEATURES]).astype(object)
    _serve(rng, prod)
    return _multiclass_built("Fraud types shift: far more card theft and account takeover, each looking the same",
                             ref, prod, model)


def _loss_labelled(rng, df):
    df["loss_usd"] = W.expected_loss(rng, df)
    return df


def _regression_world(rng, rows):
    train = _loss_labelled(rng, W.draw(rng, W.TRAIN_ROWS, W.TRAIN_START))
    model = W.fit_regressor(train[W.FEATURES], train["loss_usd"])
    ref = _with_ids(_loss_labelled(rng, W.draw(rng, rows, W.REF_START)), W.REF_FIRST_ID)
    ref["pred_loss"] = np.round(model.predict(ref[W.FEATURES]), 2)
    return model, ref


def _regression_prod(rng, rows, model, amount_growth: float = 0.0):
    prod = W.draw(rng, rows, W.PROD_START)
    if amount_growth:
        prod["amount"] = np.round(prod["amount"].to_numpy() * np.exp(amount_growth * prod["_t"].to_numpy()), 2)
    prod = _with_ids(_loss_labelled(rng, prod), W.PROD_FIRST_ID)
    prod["pred_loss"] = np.round(model.predict(prod[W.FEATURES]), 2)
    return _serve(rng, prod)


def _regression_built(title, ref, prod, model):
    return Built(title, ref, prod, model, task="regression", target="loss_usd", prediction="pred_loss",
                 score=None, positive_label=None)


def control_regression(rng, rows):
    model, ref = _regression_world(rng, rows)
    prod = _regression_prod(rng, rows, model)
    return _regression_built("Expected-loss model in healthy production: nothing changed (control)",
                             ref, prod, model)


def drift_regression(rng, rows):
    model, ref = _regression_world(rng, rows)
    # Payment amounts grow through the 4 weeks (up to ~6× by the end).
    prod = _regression_prod(rng, rows, model, amount_growth=1.8)
    return _regression_built("Expected-loss model errors grow as payment amounts rise beyond training",
                             ref, prod, model)


# --- wide tables ---------------------------------------------------------------------------------
WIDE_COLUMNS = 2000
WIDE_DRIFTED = ("s0007", "s0420", "s1031", "s1500", "s1999")


def _wide_columns(rng, n: int, mean: np.ndarray, sd: np.ndarray, shift: np.ndarray | None = None) -> pd.DataFrame:
    """``n`` rows of the extra sensor-like columns (float32), each with its own location and scale,
    a few with missing values; ``shift`` (in standard deviations) moves some of them."""
    z = rng.standard_normal((n, len(mean)), dtype=np.float32)
    if shift is not None:
        z += shift.astype(np.float32)
    values = mean.astype(np.float32) + sd.astype(np.float32) * z
    values[:, ::50][rng.random((n, values[:, ::50].shape[1])) < 0.05] = np.nan
    names = [f"s{j:04d}" for j in range(len(mean))]
    return pd.DataFrame(values, columns=names, copy=False)


def wide(rng, rows):
    model, ref = _binary_world(rng, rows)
    prod = _healthy(rng, rows, model)
    mean, sd = rng.normal(0.0, 3.0, WIDE_COLUMNS), np.exp(rng.normal(0.0, 1.0, WIDE_COLUMNS))
    shift = np.zeros(WIDE_COLUMNS)
    # A handful of upstream signals recalibrated in production: each moves by about one spread.
    shift[[int(c[1:]) for c in WIDE_DRIFTED]] = [1.0, -1.0, 1.2, 0.9, -1.1]
    extra_ref = _wide_columns(rng, rows, mean, sd)
    extra_prod = _wide_columns(rng, rows, mean, sd, shift)
    ref = pd.concat([ref, extra_ref], axis=1)
    prod = pd.concat([prod, extra_prod], axis=1)
    return Built(f"A wide table: {WIDE_COLUMNS + len(W.FEATURES):,} columns, five of them recalibrated upstream",
                 ref, prod, model, features=[*W.FEATURES, *extra_ref.columns])


# --- a segment column that drifts ---------------------------------------------------------------
CHANNELS = ("direct", "partner", "marketplace")
CHANNEL_SHARE = np.array([0.6, 0.3, 0.1])
CHANNEL_RISK = np.array([0.0, 0.1, 0.3])


def _with_channel(rng, df, *, grow: bool = False) -> pd.DataFrame:
    """A sales channel per payment; with ``grow`` the marketplace share rises from 10% to 40% over
    the weeks, the other channels keeping their proportions. Labels follow the channel's risk."""
    n = len(df)
    market = CHANNEL_SHARE[2] + (0.3 * df["_t"].to_numpy() if grow else 0.0)
    rest = 1.0 - market
    u = rng.random(n)
    code = np.where(u < market, 2, np.where(u < market + rest * 2 / 3, 0, 1))
    df["channel"] = np.asarray(CHANNELS, dtype=object)[code]
    risk = W._SCALE * (W.risk(df) + CHANNEL_RISK[code]) + W._INTERCEPT
    df["is_fraud"] = W.label(rng, expit(risk))
    return df


def channel_drift(rng, rows):
    features = [*W.FEATURES, "channel"]
    categorical = (*W.CATEGORICAL, "channel")
    train = _with_channel(rng, W.draw(rng, W.TRAIN_ROWS, W.TRAIN_START))
    model = W.fit_classifier(train[features], train["is_fraud"], categorical=categorical)
    ref = _with_ids(_with_channel(rng, W.draw(rng, rows, W.REF_START)), W.REF_FIRST_ID)
    _score(ref, model, features)
    prod = _with_ids(_with_channel(rng, W.draw(rng, rows, W.PROD_START), grow=True), W.PROD_FIRST_ID)
    _score(prod, model, features)
    _serve(rng, prod)
    return Built("Marketplace payments grow from 10% to 40% of traffic", ref, prod, model, features=features,
                 segments=["country", "device", "channel"], list_features=False)


# --- a new label definition in a multiclass problem ---------------------------------------------
def labels_multiclass(rng, rows):
    model, ref = _multiclass_world(rng, rows)
    prod = _with_ids(_multiclass_labelled(rng, W.draw(rng, rows, W.PROD_START)), W.PROD_FIRST_ID)
    prod["pred"] = model.predict(prod[W.FEATURES]).astype(object)
    # A new definition: most card thefts are now filed as account takeovers, whatever the payment
    # looks like, so one class's share collapses while the other's grows at the same inputs.
    y = prod["fraud_type"].to_numpy(object).copy()
    moved = (y == "card_theft") & (rng.random(rows) < 0.7)
    y[moved] = "account_takeover"
    prod["fraud_type"] = y
    _serve(rng, prod)
    return _multiclass_built("Fraud-type labels: card thefts are now filed as account takeovers",
                             ref, prod, model)


# --- a high-cardinality, text-like category that does not drift -----------------------------------
MERCHANTS = 20_000
# Merchant popularity falls off as a power of its rank (a few big chains, a very long tail): at a
# few thousand rows a side a third of production's merchants never appear in reference, although
# both sides are drawn from the same distribution.
MERCHANT_POWER = 1.05


def _merchant_names(rng, n: int) -> np.ndarray:
    p = np.arange(1, MERCHANTS + 1, dtype=float) ** -MERCHANT_POWER
    idx = rng.choice(MERCHANTS, n, p=p / p.sum())
    return pd.Series(idx).map("shop {:05d}".format).to_numpy(object)


def control_text(rng, rows):
    model, ref = _binary_world(rng, rows)
    prod = _healthy(rng, rows, model)
    # The payee's name as typed on the receipt: not a model input, not related to fraud, drawn the
    # same way on both sides, with thousands of distinct values.
    ref["merchant_name"], prod["merchant_name"] = _merchant_names(rng, rows), _merchant_names(rng, rows)
    return Built("Fraud model 2.0 in healthy production, with a free-text merchant name (control)", ref, prod,
                 model, features=[*W.FEATURES, "merchant_name"])


# --- labels arrive only for high scores ---------------------------------------------------------
LABEL_SCORE_CUTOFF = 0.4


def measurement_threshold(rng, rows):
    model, ref = _binary_world(rng, rows)
    prod = _healthy(rng, rows, model)
    # Only payments scored above 0.4 go to review and ever get a label; nothing else is labelled.
    reviewed = prod["pred_proba"].to_numpy() > LABEL_SCORE_CUTOFF
    truth = _shares(prod["is_fraud"])
    prod["is_fraud"] = pd.array(np.where(reviewed, prod["is_fraud"].to_numpy(), 0), dtype="Int64")
    prod.loc[~reviewed, "is_fraud"] = pd.NA
    return Built("Production labels arrive only for payments scored above 0.4", ref, prod, model, true_rates=truth)


BUILDERS: dict[str, Callable[[np.random.Generator, int], Built]] = {
    "control": control,
    "drift": drift,
    "leakage": leakage,
    "skew": skew,
    "labels": labels,
    "prior_shift": prior_shift,
    "deployment": deployment,
    "health": health,
    "segments": segments,
    "measurement": measurement,
    "control-multiclass": control_multiclass,
    "control-regression": control_regression,
    "drift-regression": drift_regression,
    "prior_shift-multiclass": prior_shift_multiclass,
    "wide": wide,
    "segment_drift": channel_drift,
    "labels-multiclass": labels_multiclass,
    "control-text": control_text,
    "measurement-threshold": measurement_threshold,
}
