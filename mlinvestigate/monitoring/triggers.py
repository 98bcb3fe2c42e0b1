"""Retraining triggers, evaluated on every monitoring run and listed with their evidence.

- ``performance``: the latest window's headline metric (realised, or its estimate) is worse than
  ``monitoring.retraining.min_metric``; without that setting, a performance alert is active.
- ``drift``: a critical feature-drift alert is active (``drift: false`` turns it off).
- ``schedule``: ``every_days`` have passed since ``trained_at`` (time of the data, not of the clock,
  so a backfill gives the same answer as the daily run did).
- ``new_labels``: labelled production rows in windows since ``trained_at`` reach ``new_labels``.
"""

from __future__ import annotations

import math

import pandas as pd

from ..display import number
from ..errors import SpecError
from .alerts import performance


def trained_at(incident) -> pd.Timestamp | None:
    text = incident.spec.monitoring.retraining.trained_at
    if text is None:
        return None
    try:
        return pd.Timestamp(text).tz_localize(None) if pd.Timestamp(text).tzinfo else pd.Timestamp(text)
    except (ValueError, TypeError):
        raise SpecError(f"{incident.spec.source}: monitoring.retraining.trained_at is {text!r}, not a date; "
                        "write it as 2026-08-31.") from None


def evaluate(incident, windows: pd.DataFrame, alerts: list[dict], *, higher_is_better: bool) -> list[dict]:
    r = incident.spec.monitoring.retraining
    out = []
    if windows.empty:
        return out
    latest = windows.iloc[-1]
    since = trained_at(incident)
    active = [a for a in alerts if a["active"]]

    perf = performance(windows, incident.spec.monitoring.min_labels).iloc[-1]
    value, estimated = float(perf["value"]), bool(perf["estimated"])
    if r.min_metric is not None:
        worse = math.isfinite(value) and (value < r.min_metric if higher_is_better else value > r.min_metric)
        out.append(_trigger("performance", worse,
                            f"latest window's metric {number(value)}{' (estimated)' if estimated else ''} "
                            f"against the floor {number(r.min_metric)}",
                            value=value, estimated=estimated, floor=r.min_metric))
    else:
        hits = [a["id"] for a in active if a["rule"] in ("offline_gap", "metric_drop")]
        out.append(_trigger("performance", bool(hits), "a performance alert is active" if hits
                            else "no performance alert is active (set retraining.min_metric for a floor)",
                            alerts=hits, value=value, estimated=estimated))
    if r.drift:
        drifted = [a for a in active if a["rule"] == "feature_psi" and a["severity"] == "critical"]
        out.append(_trigger("drift", bool(drifted),
                            ("features drifted: " + ", ".join(a["subject"] for a in drifted)) if drifted
                            else "no feature drifted beyond the critical PSI",
                            features={a["subject"]: a["value"] for a in drifted}))
    end = pd.Timestamp(latest["window_end"])
    if r.every_days is not None:
        if since is None:
            out.append(_trigger("schedule", None, "set monitoring.retraining.trained_at to use every_days"))
        else:
            days = (end - since) / pd.Timedelta(days=1)
            out.append(_trigger("schedule", days >= r.every_days,
                                f"{number(days)} days of data since training on {since.date()} "
                                f"(retrain every {number(r.every_days)})", days=days))
    if r.new_labels is not None:
        if since is None:
            out.append(_trigger("new_labels", None, "set monitoring.retraining.trained_at to count new labels"))
        else:
            after = windows["window_start"] >= since
            n = float(windows.loc[after, "labelled_rows"].sum()) if "labelled_rows" in windows else 0.0
            out.append(_trigger("new_labels", n >= r.new_labels,
                                f"{number(n)} labelled production rows since {since.date()} "
                                f"(retrain at {number(r.new_labels)})", labelled_rows=n))
    return out


def _trigger(name: str, fired: bool | None, summary: str, **evidence) -> dict:
    status = "not configured" if fired is None else ("triggered" if fired else "not triggered")
    return {"trigger": name, "status": status, "summary": summary, "evidence": evidence}
