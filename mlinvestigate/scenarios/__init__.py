"""Synthetic incidents with known causes, for tests, demos and benchmarks.

Every scenario lives in one world (card-payment fraud, see :mod:`.world`): a model trained on a
training sample, a reference (its held-out validation sample, scored by it) and four weeks of
logged production traffic. ``control`` has nothing wrong; every other scenario plants exactly one
cause and leaves everything else as in ``control``.

>>> from mlinvestigate import scenarios
>>> spec = scenarios.make("drift", "incidents/drift", rows=20_000, seed=0)   # doctest: +SKIP

:data:`EXPECTED` says what a correct investigation must find in each scenario.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..errors import InvestigationError
from . import world
from .catalog import BUILDERS, Built, _shares

DEFAULT_ROWS = 20_000
MIN_ROWS = 100
# Rows per side for end-to-end runs (the test suite's CLI runs and the accuracy benchmark) of
# scenarios whose cost is in their width, not their length: their cause shows at fewer rows.
E2E_ROWS: dict[str, int] = {"wide": 2_000}

NAMES: tuple[str, ...] = tuple(BUILDERS)

_DESCRIPTIONS: dict[str, str] = {
    "control": "nothing wrong: production drawn like reference, healthy serving, clean labels, one version",
    "drift": "covariate drift: amount and distance_km move beyond the training range, growing over 4 weeks",
    "leakage": "chargeback_count is derived from the label offline but unrelated to it in production",
    "skew": "serving computes amount in cents and n_tx_7d over a shorter window (offline features given)",
    "labels": "a new label source vendor_b (~30% of production) marks more payments as fraud",
    "prior_shift": "the fraud rate triples (10% -> 30%) while P(features | class) stays the same",
    "deployment": "~40% of production is served by the older, worse model version 1.9",
    "health": "4% errors, 2% timeouts, slow days (P95 > 50 ms) and distance_km missing for ~15%",
    "segments": "country=BR grows from 5% to 25% of traffic and its fraud pattern changes",
    "measurement": "production labels exist only for flagged payments plus a 5% sample of the rest",
    "control-multiclass": "nothing wrong; target fraud_type has three classes, no score column",
    "control-regression": "nothing wrong; regression of loss_usd",
    "drift-regression": "regression of loss_usd with amount drifting upwards over 4 weeks",
    "prior_shift-multiclass": "fraud_type shares move from ~80/14/6 to 50/30/20 with P(x | y) fixed",
    "wide": "2,008 columns (2,000 extra sensor-like signals); five of the extra signals shift by about one "
            "spread in production",
    "segment_drift": "the segment column channel (a model input) drifts: marketplace grows from 10% to 40% of "
                     "traffic over 4 weeks; the spec leaves features to the default",
    "labels-multiclass": "fraud_type relabelled: 70% of card thefts are filed as account_takeover at the same "
                         "inputs (~14/6 -> ~4/16)",
    "control-text": "nothing wrong; merchant_name is free text with thousands of values (a long tail: many "
                    "production names never appear in reference) and is not a model input",
    "measurement-threshold": "production labels exist only for payments scored above 0.4 (no random sample of "
                             "the rest)",
}

EXPECTED: dict[str, dict] = {
    "control": {"check": None},
    "drift": {"check": "drift", "culprits": ["amount", "distance_km"]},
    "leakage": {"check": "leakage", "culprits": ["chargeback_count"]},
    "skew": {"check": "skew", "culprits": ["amount", "n_tx_7d"]},
    "labels": {"check": "labels", "culprits": ["vendor_b"]},
    "prior_shift": {"check": "prior_shift", "culprits": []},
    "deployment": {"check": "deployment", "culprits": ["1.9"]},
    "health": {"check": "health", "culprits": ["missing:distance_km"], "also": ["error_rate", "latency_p95"]},
    "segments": {"check": "segments", "culprits": ["country=BR"]},
    "measurement": {"check": "measurement", "culprits": []},
    "control-multiclass": {"check": None},
    "control-regression": {"check": None},
    "drift-regression": {"check": "drift", "culprits": ["amount"]},
    "prior_shift-multiclass": {"check": "prior_shift", "culprits": []},
    "wide": {"check": "drift", "culprits": ["s0007", "s0420", "s1031", "s1500", "s1999"]},
    "segment_drift": {"check": "drift", "culprits": ["channel"]},
    "labels-multiclass": {"check": "labels", "culprits": ["definition"]},
    "control-text": {"check": None},
    "measurement-threshold": {"check": "measurement", "culprits": []},
}

assert set(_DESCRIPTIONS) == set(NAMES) == set(EXPECTED)


def describe() -> dict[str, str]:
    """Scenario name → one line saying what is planted."""
    return {name: _DESCRIPTIONS[name] for name in NAMES}


def _unknown(name: str) -> InvestigationError:
    close = difflib.get_close_matches(name, NAMES, n=1, cutoff=0.4)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return InvestigationError(f"unknown scenario {name!r}.{hint} "
                              f"Available: {', '.join(NAMES)} (`mlinvestigate scenarios list`).")


def make(name: str, directory: str | Path, *, rows: int | None = None, seed: int = 0) -> Path:
    """Write scenario ``name``'s data, model and ``incident.yaml`` into ``directory``.

    Parameters
    ----------
    name : str
        One of :data:`NAMES`.
    directory : path
        Created if needed; must not hold an ``incident.yaml`` already.
    rows : int, optional
        Rows per side (reference and production); default 20,000.
    seed : int
        Same name, rows and seed give byte-identical files.

    Returns
    -------
    Path of the written ``incident.yaml``.
    """
    if name not in BUILDERS:
        raise _unknown(name)
    rows = DEFAULT_ROWS if rows is None else int(rows)
    if rows < MIN_ROWS:
        raise InvestigationError(f"rows must be at least {MIN_ROWS} per side (got {rows}).")
    directory = Path(directory)
    spec_path = directory / "incident.yaml"
    if spec_path.exists():
        raise InvestigationError(f"{spec_path} already exists; choose an empty directory "
                                 "(nothing was changed).")
    directory.mkdir(parents=True, exist_ok=True)
    from threadpoolctl import threadpool_limits

    # One thread: the models are small, and OpenMP threads on a busy machine cost far more than
    # they save.
    with threadpool_limits(limits=1):
        built = BUILDERS[name](np.random.default_rng(seed), rows)
    return _write(name, built, directory)


# --- writing ------------------------------------------------------------------------------------
def _finish(built: Built, df: pd.DataFrame, *, production: bool) -> pd.DataFrame:
    """The columns as written: hidden ones dropped, failed requests without a prediction,
    a label source for every label."""
    df = df.copy()
    if "model_version" not in df.columns:
        df["model_version"] = world.VERSION
    labelled = df[built.target].notna().to_numpy()
    if "label_source" not in df.columns:
        df["label_source"] = "analyst"
    df["label_source"] = pd.Series(np.where(labelled, df["label_source"].to_numpy(object), None),
                                   index=df.index, dtype="str")
    failed = (df["status"] != "ok").to_numpy() if production else np.zeros(len(df), bool)
    pred = df[built.prediction]
    if built.task == "regression":
        df[built.prediction] = pred.to_numpy(float)
        df.loc[failed, built.prediction] = np.nan
    elif pd.api.types.is_numeric_dtype(pred):
        df[built.prediction] = pd.array(pred.to_numpy(np.int64), dtype="Int64")
        df.loc[failed, built.prediction] = pd.NA
    else:
        df[built.prediction] = pd.Series(np.where(failed, None, pred.to_numpy(object)),
                                         index=df.index, dtype="str")
    if built.score:
        df.loc[failed, built.score] = np.nan
    if built.task == "classification" and built.score:
        df[built.target] = pd.array(df[built.target], dtype="Int64")
    serving = ["latency_ms", "status"] if production else []
    order = ["request_id", "event_time", *built.features, built.target, built.prediction,
             *([built.score] if built.score else []), "model_version", *serving, "label_source"]
    return df[order].reset_index(drop=True)


def _save(df: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write(name: str, built: Built, directory: Path, *, header: str | None = None,
           daily_volume: float | None = None) -> Path:
    import joblib

    ref = _finish(built, built.reference, production=False)
    prod = _finish(built, built.production, production=True)
    files = {"reference": f"reference.{built.fmt}", "production": f"production.{built.fmt}"}
    _save(ref, directory / files["reference"])
    _save(prod, directory / files["production"])
    columns: dict = {"target": built.target, "prediction": built.prediction}
    if built.score:
        columns.update(score=built.score, positive_label=built.positive_label)
    columns.update(timestamp="event_time", id="request_id", model_version="model_version",
                   latency_ms="latency_ms", status="status", label_source="label_source",
                   segments=list(built.segments))
    if built.list_features:
        columns["features"] = list(built.features)
    spec: dict = {"name": name.replace("_", "-"), "title": built.title, "task": built.task,
                  "reference": files["reference"], "production": files["production"],
                  "columns": columns}
    if built.offline is not None:
        _save(built.offline, directory / "offline_features.parquet")
        spec["serving"] = {"offline": "offline_features.parquet"}
    model_path = directory / "model.joblib"
    joblib.dump(built.model, model_path)
    spec["model"] = {"path": model_path.name, "sha256": _sha256(model_path), "version": world.VERSION}
    volume = round(len(prod) / world.DAYS, 1) if daily_volume is None else daily_volume
    spec["expected"] = {"daily_volume": volume, "latency_p95_ms": 50}
    if built.task == "classification":
        # What the labels would say on every production row (the generator knows; a benchmark
        # compares the kit's estimated class shares with it). The kit never reads this file.
        truth = {"production_class_rates": built.true_rates or _shares(built.production[built.target])}
        (directory / "truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    spec_path = directory / "incident.yaml"
    if header is None:
        header = (f"# Synthetic incident `{name}` (mlinvestigate scenarios make {name}).\n"
                  f"# Planted: {_DESCRIPTIONS[name]}.\n")
    spec_path.write_text(header + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True),
                         encoding="utf-8")
    return spec_path


def e2e_rows(name: str, default: int) -> int:
    """Rows per side for an end-to-end run of ``name``: its own :data:`E2E_ROWS` if it has one
    (never more than ``default``), else ``default``."""
    return min(E2E_ROWS.get(name, default), default)


_write_built = _write  # for the monitoring timelines (:mod:`.timeline`)

from . import timeline  # noqa: E402  - uses _write_built

__all__ = ["DEFAULT_ROWS", "E2E_ROWS", "EXPECTED", "NAMES", "describe", "e2e_rows", "make", "timeline"]
