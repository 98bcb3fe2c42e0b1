"""The card-payment world every scenario is drawn from.

One transaction is a card payment with a handful of features; its true fraud probability is a
smooth nonlinear function of them (with interactions), so a gradient-boosted model reaches about
95% accuracy offline. Scenarios draw training, reference and production rows from this world and
plant one cause each on top of it. Everything is vectorised numpy driven by one seeded generator.

Columns that start with ``_`` are the generator's own (true probability, category codes, time as a
fraction of the period) and are never written.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

DAY_SECONDS = 86_400
DAYS = 28
TRAIN_START = pd.Timestamp("2026-08-04")
REF_START = pd.Timestamp("2026-09-01")
PROD_START = pd.Timestamp("2026-10-12")
REF_FIRST_ID = 1
PROD_FIRST_ID = 100_000_001
TRAIN_ROWS = 20_000
THRESHOLD = 0.5
VERSION = "2.0"

CATEGORIES = ("grocery", "restaurants", "fuel", "fashion", "electronics", "travel", "digital_goods", "gaming")
CATEGORY_SHARE = np.array([0.22, 0.16, 0.12, 0.12, 0.10, 0.08, 0.12, 0.08])
CATEGORY_LOG_AMOUNT = np.array([3.4, 3.3, 3.7, 4.2, 5.0, 5.3, 3.0, 3.2])
CATEGORY_RISK = np.array([-0.5, -0.2, -0.3, 0.0, 0.9, 0.3, 1.1, 0.7])
DEVICES = ("ios", "android", "web")
DEVICE_SHARE = np.array([0.42, 0.40, 0.18])
DEVICE_RISK = np.array([0.0, 0.1, 0.5])
COUNTRIES = ("US", "GB", "DE", "BR", "IN")
COUNTRY_SHARE = np.array([0.45, 0.14, 0.14, 0.05, 0.22])
COUNTRY_RISK = np.array([0.0, -0.2, -0.4, 0.6, 0.3])
BR = COUNTRIES.index("BR")
WEB = DEVICES.index("web")
# Transactions follow a daily cycle: busiest mid-afternoon, quietest around 3 am.
_HOURLY = 1 + 0.8 * np.cos(2 * np.pi * (np.arange(24) - 15) / 24)
HOUR_SHARE = _HOURLY / _HOURLY.sum()

FEATURES = ["amount", "hour", "account_age_days", "n_tx_7d", "distance_km", "merchant_category",
            "device", "country"]
CATEGORICAL = ("merchant_category", "device", "country")

# Sharpness and intercept of the true fraud logit: ~10% fraud, Bayes accuracy ~96%.
_SCALE = 3.3
_INTERCEPT = -11.33
# Multiclass: ~20% fraud of two kinds (shares ~80/14/6 of none/card_theft/account_takeover).
FRAUD_TYPES = ("none", "card_theft", "account_takeover")
_MC_INTERCEPT = -8.87
_ATO_INTERCEPT = -0.49


# --- drawing rows -------------------------------------------------------------------------------
def draw(rng: np.random.Generator, n: int, start: pd.Timestamp, *,
         country_share: np.ndarray | None = None) -> pd.DataFrame:
    """``n`` transactions spread over the 4 weeks from ``start`` (sorted by time), features only."""
    day = rng.integers(0, DAYS, n)
    hour = rng.choice(24, n, p=HOUR_SHARE)
    offset = np.sort(day * DAY_SECONDS + hour * 3600 + rng.integers(0, 3600, n))
    mc = rng.choice(len(CATEGORIES), n, p=CATEGORY_SHARE)
    dev = rng.choice(len(DEVICES), n, p=DEVICE_SHARE)
    co = rng.choice(len(COUNTRIES), n, p=COUNTRY_SHARE if country_share is None else country_share)
    log_amount = CATEGORY_LOG_AMOUNT[mc] + rng.normal(0.0, 0.8, n)
    return pd.DataFrame({
        "event_time": (start.to_datetime64().astype("datetime64[s]")
                       + offset.astype("timedelta64[s]")).astype("datetime64[ms]"),
        "amount": np.maximum(np.round(np.exp(log_amount), 2), 0.01),
        "hour": ((offset // 3600) % 24).astype(np.int64),
        "account_age_days": np.minimum(rng.gamma(1.1, 500.0, n), 5000).astype(np.int64),
        "n_tx_7d": rng.negative_binomial(3, 1 / 3, n).astype(np.int64),
        "distance_km": np.round(np.exp(rng.normal(np.log(8.0), 1.3, n)), 1),
        "merchant_category": np.asarray(CATEGORIES, dtype=object)[mc],
        "device": np.asarray(DEVICES, dtype=object)[dev],
        "country": np.asarray(COUNTRIES, dtype=object)[co],
        "_t": offset / (DAYS * DAY_SECONDS),
        "_mc": mc, "_dev": dev, "_co": co,
    })


def risk(df: pd.DataFrame) -> np.ndarray:
    """The unscaled fraud risk of each row: smooth, nonlinear, with interactions.

    Larger amounts and distances are riskier over the range seen in training, but very large
    payments made very far from home (travel) are mostly legitimate: a region the training data
    barely covers, where a model extrapolating the trend gets it wrong.
    """
    la = np.log(df["amount"].to_numpy(float))
    ld = np.log1p(df["distance_km"].to_numpy(float))
    age = df["account_age_days"].to_numpy(float)
    n7 = df["n_tx_7d"].to_numpy(float)
    hour = df["hour"].to_numpy(float)
    web = df["_dev"].to_numpy() == WEB
    new_account = np.exp(-age / 45)
    night = np.exp(-((((hour - 3) + 12) % 24 - 12) / 2.2) ** 2)
    travel = expit(2.5 * (la - 6.9)) * expit(2.5 * (ld - 6.6))
    return (2.8 * expit(1.6 * (la - 5.0)) + 2.2 * expit(1.3 * (ld - 4.2)) + 1.8 * new_account
            + 2.2 * expit(0.5 * (n7 - 14)) + 1.2 * night
            + CATEGORY_RISK[df["_mc"].to_numpy()] + DEVICE_RISK[df["_dev"].to_numpy()]
            + COUNTRY_RISK[df["_co"].to_numpy()]
            + 1.6 * new_account * expit(1.6 * (la - 4.5)) + 1.0 * night * web
            + 1.0 * expit(n7 - 10) * expit(ld - 4) - 5.3 * travel)


def fraud_probability(df: pd.DataFrame) -> np.ndarray:
    return expit(_SCALE * risk(df) + _INTERCEPT)


def card_testing_probability(df: pd.DataFrame) -> np.ndarray:
    """A different fraud pattern (card testing: small payments by established accounts, daytime)."""
    la = np.log(df["amount"].to_numpy(float))
    age = df["account_age_days"].to_numpy(float)
    hour = df["hour"].to_numpy(float)
    z = (4.5 * expit(3.0 * (2.9 - la)) + 1.5 * expit((age - 150) / 60)
         + 0.8 * np.exp(-((hour - 13) / 4) ** 2))
    return expit(2.5 * z - 11.6)


def label(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    return (rng.random(len(p)) < p).astype(np.int64)


def multiclass_probabilities(df: pd.DataFrame) -> np.ndarray:
    """P(none), P(card_theft), P(account_takeover) per row."""
    fraud = expit(_SCALE * risk(df) + _MC_INTERCEPT)
    ld = np.log1p(df["distance_km"].to_numpy(float))
    age = df["account_age_days"].to_numpy(float)
    web = (df["_dev"].to_numpy() == WEB).astype(float)
    ato = expit(_ATO_INTERCEPT + 4.0 * (expit(1.5 * (ld - 4.0)) - 0.5) + 2.0 * web
                + 3.0 * (expit((age - 300) / 150) - 0.5) - 1.5 * (df["n_tx_7d"].to_numpy() > 12))
    return np.column_stack([1 - fraud, fraud * (1 - ato), fraud * ato])


def label_multiclass(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    u = rng.random(len(probs))[:, None]
    idx = (u > np.cumsum(probs, axis=1)).sum(axis=1).clip(0, probs.shape[1] - 1)
    return np.asarray(FRAUD_TYPES, dtype=object)[idx]


def expected_loss(rng: np.random.Generator, df: pd.DataFrame) -> np.ndarray:
    """Regression target: the payment's expected fraud loss in USD, with noise."""
    p = fraud_probability(df)
    return np.round(df["amount"].to_numpy(float) * p * np.exp(rng.normal(0.0, 0.3, len(df))), 2)


def draw_by_class(rng: np.random.Generator, n: int, start: pd.Timestamp, shares: dict,
                  labeller) -> pd.DataFrame:
    """``n`` rows with class shares ``shares`` and the world's P(x | y): rows are drawn from the
    world in batches, labelled by ``labeller(rng, frame) -> labels``, and kept per class until each
    class has its quota (sampling y first, then x given y)."""
    quota = {k: int(round(n * s)) for k, s in shares.items()}
    first = next(iter(quota))
    quota[first] += n - sum(quota.values())
    kept: dict = {k: [] for k in quota}
    have = dict.fromkeys(quota, 0)
    while any(have[k] < quota[k] for k in quota):
        batch = draw(rng, max(n, 1000), start)
        batch["_y"] = labeller(rng, batch)
        for k in quota:
            if have[k] < quota[k]:
                rows = np.flatnonzero(batch["_y"].to_numpy() == k)
                if len(rows) > quota[k] - have[k]:  # a random subset, spread over the whole period
                    rows = np.sort(rng.choice(rows, quota[k] - have[k], replace=False))
                kept[k].append(batch.iloc[rows])
                have[k] += len(rows)
    out = pd.concat([p for parts in kept.values() for p in parts], ignore_index=True)
    out = out.sort_values("event_time", kind="stable", ignore_index=True)
    return out


# --- models -------------------------------------------------------------------------------------
def _pipeline(features: list[str], estimator, categorical=CATEGORICAL):
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    cats = [f for f in features if f in categorical]
    nums = [f for f in features if f not in categorical]
    encode = ColumnTransformer(
        [("categories", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                       encoded_missing_value=np.nan), cats),
         ("numbers", "passthrough", nums)],
        verbose_feature_names_out=False)
    estimator.set_params(categorical_features=list(range(len(cats))))
    return Pipeline([("encode", encode), ("model", estimator)])


def fit_classifier(X: pd.DataFrame, y, *, max_iter: int = 120, max_leaf_nodes: int = 31,
                   class_weight: str | None = None, used: list[str] | None = None,
                   categorical=CATEGORICAL):
    """A gradient-boosted classifier on the columns of ``X`` (only ``used`` of them, when given: the
    pipeline accepts every column of ``X`` and drops the rest, as a served model ignores fields it
    does not read)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = _pipeline(list(used or X.columns), HistGradientBoostingClassifier(
        max_iter=max_iter, learning_rate=0.1, max_leaf_nodes=max_leaf_nodes, early_stopping=False,
        class_weight=class_weight, random_state=0), categorical)
    return model.fit(X, np.asarray(y))


def fit_regressor(X: pd.DataFrame, y, *, max_iter: int = 120):
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = _pipeline(list(X.columns), HistGradientBoostingRegressor(
        max_iter=max_iter, learning_rate=0.1, early_stopping=False, random_state=0))
    return model.fit(X, np.asarray(y, dtype=float))


def positive_score(model, X: pd.DataFrame) -> np.ndarray:
    """Probability of class 1 from a binary classifier, rounded to 6 decimals."""
    proba = model.predict_proba(X)[:, list(model.classes_).index(1)]
    return np.round(proba, 6)


# --- serving ------------------------------------------------------------------------------------
def serve(rng: np.random.Generator, df: pd.DataFrame, *, error_rate: float = 0.002,
          timeout_rate: float = 0.001, slow_days: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """``status`` (ok / error / timeout) and ``latency_ms`` of each production request.

    Healthy serving answers in ~20 ms (P95 ~33 ms); on ``slow_days`` (day numbers 0–27 of the
    period) the service is degraded and its P95 latency is well above 50 ms. Errors fail fast;
    timeouts hit the 250 ms limit.
    """
    n = len(df)
    u = rng.random(n)
    status = np.where(u < error_rate, "error", np.where(u < error_rate + timeout_rate, "timeout", "ok"))
    day = np.minimum((df["_t"].to_numpy() * DAYS).astype(int), DAYS - 1)
    slow = np.isin(day, slow_days)
    latency = np.exp(rng.normal(np.where(slow, np.log(45.0), np.log(20.0)), np.where(slow, 0.45, 0.3)))
    latency = np.where(status == "error", np.exp(rng.normal(np.log(6.0), 0.4, n)), latency)
    latency = np.where(status == "timeout", 250.0 + rng.exponential(3.0, n), latency)
    return status.astype(object), np.round(latency, 1)
