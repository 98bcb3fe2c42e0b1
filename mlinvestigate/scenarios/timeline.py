"""Monitoring timelines: a reference set and a daily production log with a dated cause.

The scenarios of :mod:`mlinvestigate.scenarios` plant their cause across the whole production log,
which suits an investigation but says nothing about *when* a monitor notices. A timeline is a log of
``days`` days (``rows_per_day`` rows a day on average) drawn from the same world (:mod:`.world`),
healthy until an onset day and changed from then on, so a monitor's alerts can be judged for false
alarms before the onset and for delay after it:

``steady``
    nothing wrong for the whole log: every alert and every warning is a false alarm;
``drift-day30``
    from day 30 on, 30% of payments are large and made far from home (the drift scenario's flow of
    travel payments at a fixed share): amount and distance_km move well beyond the reference;
``labels-delayed``
    nothing wrong, but labels arrive ``label_delay`` (14) days after the predictions: the last 14 days
    of the log have no label yet; ``late_labels.parquet`` holds them and :func:`land_labels` writes
    them into the log as they would arrive;
``serving-empty-day40``
    from day 40 on, distance_km arrives empty (every value missing) at serving: a silent failure; the
    model still answers, from the remaining features.

>>> from mlinvestigate.scenarios import timeline
>>> spec = timeline.make("drift-day30", "timelines/drift", seed=0)   # doctest: +SKIP

Each variant writes ``reference.parquet``, ``production.parquet``, ``model.joblib`` and an
``incident.yaml`` with ``columns.timestamp`` set (plus ``timeline.json``: the variant, its onset day,
the first day of the log and what a correct monitor must raise), so ``mlinvestigate monitor`` reads
it as it is. Same variant, seed and sizes give byte-identical data files.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InvestigationError
from . import _write_built
from . import world as W
from .catalog import Built, _binary_world, _labelled, _score, _serve, _with_ids

DAYS = 60
ROWS_PER_DAY = 150
REFERENCE_ROWS = 5_000
LABEL_DELAY = 14
EMPTIED = "distance_km"
DRIFTED = ("amount", "distance_km")
TRAVEL_SHARE = 0.3


@dataclass(frozen=True)
class Variant:
    description: str
    onset: int | None          # first changed day (0-based), None: nothing planted in the inputs
    # (rule, subject) pairs that are about the planted cause: what a correct monitor may raise after
    # the onset (``expected`` of them must be among the alerts)
    cause: frozenset = frozenset()
    expected: frozenset = frozenset()


VARIANTS: dict[str, Variant] = {
    "steady": Variant("nothing wrong for the whole log", None),
    "drift-day30": Variant(
        "from day 30, 30% of payments are large and far from home: amount and distance_km drift", 30,
        cause=frozenset({("feature_psi", "amount"), ("feature_psi", "distance_km"),
                         ("domain_auc", "all features"), ("metric_drop", "metric"), ("offline_gap", "metric")}),
        expected=frozenset({("feature_psi", "amount"), ("feature_psi", "distance_km")})),
    "labels-delayed": Variant(
        f"nothing wrong; labels arrive {LABEL_DELAY} days after the predictions", None),
    "serving-empty-day40": Variant(
        f"from day 40, {EMPTIED} arrives empty (all missing) at serving", 40,
        cause=frozenset({("missing_rate", EMPTIED), ("feature_psi", EMPTIED), ("domain_auc", "all features"),
                         ("metric_drop", "metric"), ("offline_gap", "metric")}),
        expected=frozenset({("missing_rate", EMPTIED)})),
}
NAMES: tuple[str, ...] = tuple(VARIANTS)


def describe() -> dict[str, str]:
    """Variant name → one line saying what is planted and when."""
    return {name: v.description for name, v in VARIANTS.items()}


def _days_of_log(rng: np.random.Generator, frame: pd.DataFrame, start: pd.Timestamp, days: int) -> pd.DataFrame:
    """``frame`` (drawn over the world's 4 weeks) spread over ``days`` days: every row keeps its time of
    day (so ``hour`` still matches the clock) and is given a uniformly drawn day; sorted by time."""
    ts = frame["event_time"]
    day = rng.integers(0, days, len(frame))
    frame = frame.copy()
    frame["event_time"] = (start + pd.to_timedelta(day, unit="D") + (ts - ts.dt.floor("D"))).astype("datetime64[ms]")
    frame["_day"] = day
    return frame.sort_values("event_time", kind="stable", ignore_index=True)


def _build(variant: str, rng: np.random.Generator, *, days: int, rows_per_day: int, reference_rows: int,
           label_delay: int) -> tuple[Built, pd.DataFrame | None]:
    model, ref = _binary_world(rng, reference_rows)
    n = days * rows_per_day
    prod = _days_of_log(rng, W.draw(rng, n, W.PROD_START), W.PROD_START, days)
    onset = VARIANTS[variant].onset
    after = (prod["_day"].to_numpy() >= onset) if onset is not None else np.zeros(n, bool)
    if variant == "drift-day30":
        travel = after & (rng.random(n) < TRAVEL_SHARE)
        k = int(travel.sum())
        prod.loc[travel, "amount"] = np.round(np.exp(rng.normal(np.log(2500.0), 0.45, k)), 2)
        prod.loc[travel, "distance_km"] = np.round(np.exp(rng.normal(np.log(3000.0), 0.5, k)), 1)
    prod = _with_ids(_labelled(rng, prod), W.PROD_FIRST_ID)  # the truth is the world's, on real inputs
    if variant == "serving-empty-day40":
        prod.loc[after, EMPTIED] = np.nan  # serving lost the field: the model sees it missing
    _score(prod, model, W.FEATURES)
    _serve(rng, prod)
    late = None
    if variant == "labels-delayed":
        pending = prod["_day"].to_numpy() >= days - label_delay
        late = prod.loc[pending, ["request_id", "is_fraud"]].reset_index(drop=True)
        late["is_fraud"] = pd.array(late["is_fraud"], dtype="Int64")
        late["label_source"] = "analyst"
        prod["is_fraud"] = prod["is_fraud"].astype(float)
        prod.loc[pending, "is_fraud"] = np.nan
    title = f"Fraud model 2.0 over {days} days: {VARIANTS[variant].description}"
    return Built(title, ref, prod.drop(columns="_day"), model), late


def make(variant: str, directory: str | Path, *, seed: int = 0, days: int = DAYS,
         rows_per_day: int = ROWS_PER_DAY, reference_rows: int = REFERENCE_ROWS,
         label_delay: int = LABEL_DELAY) -> Path:
    """Write timeline ``variant``'s reference, production log, model and ``incident.yaml``.

    Parameters
    ----------
    variant : str
        One of :data:`NAMES`.
    directory : path
        Created if needed; must not hold an ``incident.yaml`` already.
    seed : int
        Same variant, sizes and seed give the same rows.
    days, rows_per_day, reference_rows, label_delay : int
        Length of the log, average daily volume, reference rows, days labels lag behind (labels-delayed).

    Returns
    -------
    Path of the written ``incident.yaml``.
    """
    if variant not in VARIANTS:
        close = difflib.get_close_matches(variant, NAMES, n=1, cutoff=0.4)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise InvestigationError(f"unknown timeline {variant!r}.{hint} Available: {', '.join(NAMES)}.")
    onset = VARIANTS[variant].onset
    if days < 2 or (onset is not None and days <= onset) or rows_per_day < 10 or reference_rows < 100 \
            or (variant == "labels-delayed" and not 0 < label_delay < days):
        raise InvestigationError(f"timeline {variant!r} needs more than {onset or 1} days, at least 10 rows a day, "
                                 "100 reference rows and a label delay shorter than the log "
                                 f"(got days={days}, rows_per_day={rows_per_day}, reference_rows={reference_rows}, "
                                 f"label_delay={label_delay}).")
    directory = Path(directory)
    if (directory / "incident.yaml").exists():
        raise InvestigationError(f"{directory / 'incident.yaml'} already exists; choose an empty directory "
                                 "(nothing was changed).")
    directory.mkdir(parents=True, exist_ok=True)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        built, late = _build(variant, np.random.default_rng(seed), days=days, rows_per_day=rows_per_day,
                             reference_rows=reference_rows, label_delay=label_delay)
    header = (f"# Monitoring timeline `{variant}` (mlinvestigate.scenarios.timeline), seed {seed}.\n"
              f"# Planted: {VARIANTS[variant].description}.\n")
    spec = _write_built(variant, built, directory, header=header, daily_volume=float(rows_per_day))
    if late is not None:
        late.to_parquet(directory / "late_labels.parquet", index=False)
    v = VARIANTS[variant]
    info = {"variant": variant, "seed": seed, "days": days, "rows_per_day": rows_per_day,
            "first_day": str(W.PROD_START.date()), "onset": onset,
            "onset_date": str((W.PROD_START + pd.Timedelta(days=onset)).date()) if onset is not None else None,
            "label_delay": label_delay if late is not None else None,
            "cause": sorted(map(list, v.cause)), "expected": sorted(map(list, v.expected))}
    (directory / "timeline.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return spec


def info(spec: str | Path) -> dict:
    """The ``timeline.json`` written next to a timeline's ``incident.yaml``."""
    return json.loads((Path(spec).parent / "timeline.json").read_text(encoding="utf-8"))


def land_labels(spec: str | Path) -> int:
    """Write the late labels of a ``labels-delayed`` timeline into its production log, as they arrive
    ``label_delay`` days after the predictions; returns how many rows got their label."""
    folder = Path(spec).parent
    late = pd.read_parquet(folder / "late_labels.parquet")
    path = folder / "production.parquet"
    prod = pd.read_parquet(path)
    at = prod["request_id"].isin(late["request_id"]).to_numpy()
    by_id = late.set_index("request_id")
    ids = prod.loc[at, "request_id"]
    prod.loc[at, "is_fraud"] = by_id.loc[ids, "is_fraud"].to_numpy()
    prod.loc[at, "label_source"] = by_id.loc[ids, "label_source"].to_numpy()
    prod.to_parquet(path, index=False)
    return int(at.sum())


__all__ = ["DAYS", "NAMES", "VARIANTS", "Variant", "describe", "info", "land_labels", "make"]
