"""Health: is serving healthy?

Before blaming the model, rule out the plumbing: requests that failed or timed out, days with
missing traffic, slow responses, rows logged without a prediction, and inputs that arrive empty,
out of range or with categories the model never saw. Each signal is compared with a documented,
overridable threshold (``thresholds.health``) through a confidence interval, so a handful of errors
in a small log does not fire; signals whose inputs are absent are reported as not checked.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..contract import (
    CheckContract,
    Context,
    CoversColumns,
    Culprit,
    Evidence,
    MonitorRule,
    Threshold,
    register,
)
from ..display import number, percent
from ..engine.aggregates import category_label
from ..findings import Finding, Result
from ..stats.intervals import fdr, wilson
from ..stats.proportions import two_proportion_z
from ..stats.triage_serving import (
    chance_out_of_range,
    chance_unseen,
    grouped_quantiles,
    out_of_range_p,
    poisson_upper,
    status_kinds,
)
from ..stats.triage_time import partial_days, period_codes

CHECK = "health"
_CRITICAL = ("error_rate", "timeout_rate", "no_prediction")
SIGNAL_COLUMNS = ["signal", "status", "value", "ci_low", "ci_high", "threshold", "detail"]


def _signal(name: str, status: str, detail: str, value=np.nan, ci=(np.nan, np.nan), threshold=np.nan,
            ratio: float = 0.0) -> dict:
    return {"signal": name, "status": status, "value": value, "ci_low": ci[0], "ci_high": ci[1],
            "threshold": threshold, "detail": detail, "ratio": ratio}


def _rate_signal(name: str, what: str, k: int, n: int, limit: float) -> dict:
    """A rate that fails when its whole Wilson interval lies above ``limit``."""
    if n == 0:
        return _signal(name, "not checked", f"no rows to measure the {what} on")
    lo, hi = (float(v) for v in wilson(k, n))
    rate = k / n
    failing = lo > limit
    detail = f"{percent(rate, 2)} {what} ({number(k)} of {number(n)} rows, threshold {percent(limit, 2)})"
    return _signal(name, "failing" if failing else "ok", detail, rate, (lo, hi), limit,
                   ratio=rate / limit if limit > 0 else np.inf)


def no_prediction_mask(s: pd.Series) -> np.ndarray:
    """Rows whose logged prediction is missing or an empty string."""
    miss = s.isna().to_numpy().copy()
    if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
        miss |= s.astype("string").str.strip().eq("").fillna(False).to_numpy(bool)
    return miss


def _statuses(prod: pd.DataFrame, column: str | None, thresholds: dict,
              every_row: list | None = None) -> tuple[list[dict], np.ndarray | None, pd.DataFrame]:
    """Error and timeout rates and the table of statuses; ``every_row`` (an engine's ``[value, rows]``
    pairs over every production row) in place of the in-memory sample's counts when given. The
    per-row kinds always come from the frame: other signals select the rows that succeeded."""
    if not column:
        why = "not checked: the spec names no columns.status"
        return ([_signal("error_rate", "not checked", why), _signal("timeout_rate", "not checked", why)],
                None, pd.DataFrame())
    kinds = status_kinds(prod[column])
    if every_row is not None:
        values = pd.Series([v for v, _ in every_row], dtype=object)
        rows = np.array([k for _, k in every_row], dtype=np.int64)
        labels = [category_label(v) if v is not None else "(missing)" for v in values]
    else:
        counts = prod[column].astype(object).where(prod[column].notna(), "(missing)").value_counts()
        values = pd.Series(counts.index, dtype=object).replace("(missing)", None)
        rows, labels = counts.to_numpy(), list(counts.index.astype(str))
    counted_as = status_kinds(values)
    n = int(rows[counted_as != "missing"].sum())
    signals = [_rate_signal("error_rate", "errors", int(rows[counted_as == "error"].sum()), n, thresholds["error_rate"]),
               _rate_signal("timeout_rate", "timeouts", int(rows[counted_as == "timeout"].sum()), n,
                            thresholds["timeout_rate"])]
    table = pd.DataFrame({"status": labels, "rows": rows, "share": rows / max(int(rows.sum()), 1),
                          "counted_as": counted_as})
    return signals, kinds, table.sort_values("rows", ascending=False, kind="stable", ignore_index=True)


def impossible_latency(values: np.ndarray) -> np.ndarray:
    """Latencies no request can have: below zero (clock skew, a subtraction the wrong way round)
    or infinite. They are counted, and kept out of the percentiles they would drag down."""
    with np.errstate(invalid="ignore"):
        return (values < 0) | np.isinf(values)


def _impossible_signal(column: str, lat: np.ndarray, bad: np.ndarray, tolerance: float) -> dict:
    k, n = int(bad.sum()), int((~np.isnan(lat)).sum())
    negative = int((lat[bad] < 0).sum())
    what = " and ".join(part for part in (f"{number(negative)} negative" if negative else "",
                                          f"{number(k - negative)} infinite" if k - negative else "") if part)
    lo, hi = (float(v) for v in wilson(k, n))
    detail = (f"{what} latenc{'y' if k == 1 else 'ies'} ({percent(k / n)} of {number(n)} values, lowest "
              f"{number(np.min(lat[bad]))} ms): impossible values, left out of the percentiles")
    # Any impossible value is a logging defect; its share against the broken-row tolerance ranks it.
    return _signal("impossible_latency", "failing", detail, k / n, (lo, hi), 0.0,
                   ratio=max(1.0001, (k / n) / tolerance) if tolerance > 0 else np.inf)


def _latency(prod, column, day, n_days, expected) -> tuple[dict, dict | None]:
    if not column:
        return _signal("latency_p95", "not checked", "not checked: the spec names no columns.latency_ms"), None
    lat = pd.to_numeric(prod[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    lat = np.where(impossible_latency(lat), np.nan, lat)
    overall = grouped_quantiles(lat, np.zeros(len(lat), dtype=np.int64), 1)
    by_day = grouped_quantiles(lat, day, n_days) if n_days else None
    p95, p95_lo = float(overall["p95"][0]), float(overall["p95_low"][0])
    if not np.isfinite(p95):
        return _signal("latency_p95", "not checked", f"column {column!r} holds no latency values"), by_day
    ci = (p95_lo, float(overall["p95_high"][0]))
    if expected is None:
        return _signal("latency_p95", "not checked",
                       f"P95 latency {number(round(p95))} ms; no expectation to compare with (set expected.latency_p95_ms)",
                       p95, ci), by_day
    slow_days = 0
    worst = p95
    if by_day is not None:
        over = by_day["p95_low"] > expected
        slow_days = int(np.nansum(over))
        if slow_days:
            worst = float(np.nanmax(by_day["p95"][over]))
    failing = slow_days > 0 or p95_lo > expected
    detail = (f"P95 latency {number(round(p95))} ms overall (expected at most {number(expected)} ms)"
              + (f"; above the expectation on {slow_days} day(s), worst {number(round(worst))} ms" if slow_days else ""))
    return _signal("latency_p95", "failing" if failing else "ok", detail, p95, ci, expected,
                   ratio=worst / expected), by_day


def _engine_days(incident, days) -> np.ndarray | None:
    """duckdb/spark: production rows per day over every row (the sample's days hold a fraction)."""
    daily_rows = getattr(getattr(incident, "aggregates", None), "daily_rows", None)
    if daily_rows is None:
        return None
    return np.array([daily_rows.get(str(d.date()), 0) for d in days], dtype=np.int64)


def _volume(ts, day, days, expected, drop, counts=None) -> tuple[dict, np.ndarray, np.ndarray]:
    counts = np.bincount(day[day >= 0], minlength=len(days)) if counts is None else counts
    partial = partial_days(ts, days)
    full = counts[~partial]
    if len(full) == 0:
        return _signal("volume", "not checked", "no complete day of production traffic"), counts, partial
    median = float(np.median(full))
    bars = {"its own median": median} | ({"the expected volume": expected} if expected else {})
    upper = poisson_upper(counts)
    worst = None
    for label, bar in bars.items():
        low = (~partial) & (upper < drop * bar)
        if low.any():
            k = int(np.argmin(np.where(low, counts / bar, np.inf)))
            worst = (label, bar, int(low.sum()), k)
            break
    ref_bar = expected or median
    value = float(np.median(full))
    if worst is None:
        detail = (f"median {value:,.0f} rows a day" + (f" (expected {expected:,.0f})" if expected else "")
                  + f"; no complete day below {drop:.0%} of " + " or ".join(bars))
        return _signal("volume", "ok", detail, value, threshold=drop * ref_bar), counts, partial
    label, bar, n_low, k = worst
    detail = (f"{n_low} day(s) below {drop:.0%} of {label} ({bar:,.0f} rows); lowest {days[k].date()}: "
              f"{counts[k]:,} rows")
    return _signal("volume", "failing", detail, float(counts[k]), threshold=drop * bar,
                   ratio=bar * drop / max(counts[k], 1)), counts, partial


def _inputs(incident, thresholds: dict, alpha: float) -> tuple[pd.DataFrame, list[dict]]:
    """Missing, out-of-range and unseen-category rates of every feature, tested together (BH)."""
    ref, prod = incident.reference, incident.production
    rows, tests = [], []  # tests: (row index, kind, p-value, effect, threshold)
    n_ref, n_prod = len(ref), len(prod)
    for f in incident.missing_in_production:
        ref_missing = float(ref[f].isna().mean()) if f in ref.columns else 0.0
        rows.append({"feature": f, "type": "absent", "reference_missing": ref_missing,
                     "production_missing": 1.0, "missing_increase": 1.0 - ref_missing,
                     "reference_infinite": np.nan, "production_infinite": np.nan,
                     "out_of_range": np.nan, "out_of_range_chance": np.nan, "unseen": np.nan,
                     "unseen_chance": np.nan})
        tests.append((len(rows) - 1, "missing", 0.0, 1.0 - ref_missing, thresholds["missing_increase"]))
    features = incident.features
    ref_na = ref[features].isna().sum().to_numpy().copy() if features else np.array([])
    prod_na = prod[features].isna().sum().to_numpy().copy() if features else np.array([])
    # duckdb/spark: missing and infinite counts over every row, from the engine's aggregates
    agg = getattr(incident, "aggregates", None)
    exact = agg.columns if agg is not None else {}
    sample_rows = (n_ref, n_prod)
    for i, f in enumerate(features):
        kind = incident.feature_types[f]
        n_ref, n_prod = sample_rows
        if f in exact:
            n_ref, n_prod = agg.rows["reference"], agg.rows["production"]
            ref_na[i], prod_na[i] = exact[f].missing
        row = {"feature": f, "type": kind, "reference_missing": ref_na[i] / n_ref,
               "production_missing": prod_na[i] / n_prod, "missing_increase": prod_na[i] / n_prod - ref_na[i] / n_ref,
               "reference_infinite": np.nan, "production_infinite": np.nan, "out_of_range": np.nan, "out_of_range_chance": np.nan, "unseen": np.nan, "unseen_chance": np.nan}
        rows.append(row)
        idx = len(rows) - 1
        p = float(two_proportion_z(prod_na[i], n_prod, ref_na[i], n_ref, alternative="greater"))
        tests.append((idx, "missing", p, row["missing_increase"], thresholds["missing_increase"]))
        if kind == "numeric" and pd.api.types.is_numeric_dtype(ref[f]) and pd.api.types.is_numeric_dtype(prod[f]):
            r = ref[f].to_numpy(dtype=float, na_value=np.nan)
            x = prod[f].to_numpy(dtype=float, na_value=np.nan)
            inf_r, inf_x = exact[f].infinite if f in exact else (int(np.isinf(r).sum()), int(np.isinf(x).sum()))
            row.update(reference_infinite=inf_r / n_ref, production_infinite=inf_x / n_prod)
            if inf_x:
                # An infinite value is an impossible measurement: any significant excess over
                # reference is a defect, so the effect only has to be positive.
                p_inf = float(two_proportion_z(inf_x, n_prod, inf_r, n_ref, alternative="greater"))
                tests.append((idx, "infinite", p_inf, inf_x / n_prod - inf_r / n_ref, 0.0))
            r, x = r[np.isfinite(r)], x[np.isfinite(x)]
            n_ref, n_prod = sample_rows  # out of range: on the rows in memory
            if len(r) and len(x):
                k = int(((x < r.min()) | (x > r.max())).sum())
                chance = chance_out_of_range(len(r))
                row.update(out_of_range=k / len(x), out_of_range_chance=chance)
                tests.append((idx, "out_of_range", out_of_range_p(k, len(x), len(r)),
                              k / len(x) - chance, thresholds["out_of_range"]))
        elif kind == "categorical" and isinstance(prod[f].dtype, pd.CategoricalDtype):
            k_cats = len(prod[f].cat.categories)
            rc = np.bincount(ref[f].cat.codes.to_numpy()[ref[f].notna().to_numpy()], minlength=k_cats)
            pc = np.bincount(prod[f].cat.codes.to_numpy()[prod[f].notna().to_numpy()], minlength=k_cats)
            if rc.sum() and pc.sum():
                k = int(pc[rc == 0].sum())
                chance = chance_unseen(rc[rc > 0])
                row.update(unseen=k / pc.sum(), unseen_chance=chance)
                tests.append((idx, "unseen", float(stats.binom.sf(k - 1, int(pc.sum()), chance)),
                              k / pc.sum() - chance, thresholds["unseen_categories"]))
    table = pd.DataFrame(rows)
    n_ref, n_prod = (agg.rows["reference"], agg.rows["production"]) if exact else sample_rows
    signals = []
    if tests:
        _, discovered = fdr([t[2] for t in tests], alpha=alpha)
        for (idx, kind, _p, effect, limit), found in zip(tests, discovered, strict=True):
            if found and effect > limit:
                r = rows[idx]
                name = f"{kind}:{r['feature']}"
                if kind == "missing":
                    what = ("absent from production" if r["type"] == "absent"
                            else "empty in every production row (it stopped arriving)"
                            if r["production_missing"] >= 1.0
                            else f"missing in {percent(r['production_missing'])} of production rows")
                    detail = f"{what} vs {percent(r['reference_missing'])} missing in reference"
                    value = r["production_missing"]
                    n = n_prod if r["type"] != "absent" else 0
                elif kind == "infinite":
                    k_inf = round(r["production_infinite"] * n_prod)
                    detail = (f"{number(k_inf)} infinite value(s) in production ({percent(r['production_infinite'])}"
                              f" of rows) vs {percent(r['reference_infinite'])} in reference: impossible "
                              "values, counted apart from missing ones")
                    value = r["production_infinite"]
                    n = n_prod
                elif kind == "out_of_range":
                    detail = (f"{percent(r['out_of_range'])} of production values outside the reference range "
                              f"(chance alone: {percent(r['out_of_range_chance'])})")
                    value = r["out_of_range"]
                    n = int(prod[r["feature"]].notna().sum())
                else:
                    detail = (f"{percent(r['unseen'])} of production values in categories never seen in reference "
                              f"(chance alone: {percent(r['unseen_chance'])})")
                    value = r["unseen"]
                    n = int(prod[r["feature"]].notna().sum())
                ci = tuple(float(v) for v in wilson(round(value * n), n)) if n else (value, value)
                ratio = effect / limit if limit > 0 else max(1.0001, effect / thresholds["missing_increase"])
                signals.append(_signal(name, "failing", detail, value, ci, limit, ratio=ratio))
    table["flags"] = [", ".join(s["signal"].split(":")[0] for s in signals if s["signal"].endswith(f":{f}"))
                      for f in table["feature"]] if len(table) else []
    return table, signals


def run(incident) -> Result:
    """Check serving health: statuses, volume, latency, missing predictions and input quality."""
    th = {k: incident.threshold(CHECK, k) for k in ("error_rate", "timeout_rate", "missing_increase",
                                                     "volume_drop", "out_of_range", "unseen_categories",
                                                     "no_prediction")}
    alpha = incident.threshold("general", "alpha")
    prod, cols, expected = incident.production, incident.columns, incident.spec.expected

    signals, kinds, statuses = _statuses(prod, cols.status, th,
                                         getattr(getattr(incident, "aggregates", None), "status_counts", None))

    missing_pred = no_prediction_mask(prod[incident.prediction])
    served = kinds == "ok" if kinds is not None else np.ones(len(prod), dtype=bool)
    sig = _rate_signal("no_prediction", "rows without a prediction", int((missing_pred & served).sum()),
                       int(served.sum()), th["no_prediction"])
    if kinds is not None:
        sig["detail"] += " (requests that succeeded; failed ones are counted as errors and timeouts)"
    signals.append(sig)

    ts = prod[cols.timestamp] if cols.timestamp and cols.timestamp in prod.columns else None
    has_time = ts is not None and ts.notna().any()
    if has_time:
        day, days = period_codes(ts, "D")
    else:
        day, days = np.full(len(prod), -1, dtype=np.int64), pd.DatetimeIndex([])
    lat_signal, by_day = _latency(prod, cols.latency_ms, day, len(days), expected.latency_p95_ms)
    signals.append(lat_signal)
    if cols.latency_ms:
        lat = pd.to_numeric(prod[cols.latency_ms], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = impossible_latency(lat)
        if bad.any():
            signals.append(_impossible_signal(cols.latency_ms, lat, bad, th["no_prediction"]))
    daily = pd.DataFrame()
    if has_time:
        exact_days = _engine_days(incident, days)
        vol_signal, counts, partial = _volume(ts, day, days, expected.daily_volume, th["volume_drop"], exact_days)
        signals.append(vol_signal)
        daily = _daily_table(days, day, np.bincount(day[day >= 0], minlength=len(days)), partial, kinds,
                             missing_pred, by_day)
        if exact_days is not None:
            daily["rows"] = exact_days  # every row's day; the rates stay on the sample
    else:
        signals.append(_signal("volume", "not checked", "not checked: the spec names no columns.timestamp"))

    inputs, input_signals = _inputs(incident, th, alpha)
    signals.extend(input_signals)
    if not input_signals:
        signals.append(_signal("inputs", "ok", f"{len(incident.features)} feature(s) as complete, in range and "
                               "with the same categories as in reference"))

    table = pd.DataFrame(signals)
    failing = table[table["status"] == "failing"].sort_values("ratio", ascending=False, kind="stable")
    culprits = failing["signal"].tolist()
    not_checked = table.loc[table["status"] == "not checked", "signal"].tolist()
    table["rank"] = table["status"].map({"failing": 0, "ok": 1, "not checked": 2})
    table = table.sort_values(["rank", "ratio"], ascending=[True, False], kind="stable", ignore_index=True)
    finding = _finding(table, failing, culprits, not_checked, incident)
    return Result(finding, tables={"signals": table[SIGNAL_COLUMNS], "daily": daily, "inputs": inputs,
                                   "statuses": statuses},
                  data={"expected_daily_volume": expected.daily_volume,
                        "expected_latency_p95_ms": expected.latency_p95_ms, "thresholds": th,
                        "volume_drop": th["volume_drop"]})


def _daily_table(days, day, counts, partial, kinds, missing_pred, by_day) -> pd.DataFrame:
    n = len(days)
    ok_day = day >= 0
    daily = pd.DataFrame({"day": days, "rows": counts, "partial_day": partial})
    if kinds is not None:
        known = np.bincount(day[ok_day & (kinds != "missing")], minlength=n)
        for kind in ("error", "timeout"):
            k = np.bincount(day[ok_day & (kinds == kind)], minlength=n)
            lo, hi = wilson(k, known)
            with np.errstate(invalid="ignore", divide="ignore"):
                daily[f"{kind}_rate"] = k / known
            daily[f"{kind}_rate_low"], daily[f"{kind}_rate_high"] = lo, hi
    with np.errstate(invalid="ignore", divide="ignore"):
        daily["no_prediction_rate"] = np.bincount(day[ok_day & missing_pred], minlength=n) / counts
    if by_day is not None:
        for key in ("p50", "p95", "p95_low", "p95_high", "p99"):
            daily[f"latency_{key}_ms"] = by_day[key]
    return daily


def _finding(table, failing, culprits, not_checked, incident) -> Finding:
    evidence = HealthEvidence(signals=table[SIGNAL_COLUMNS].to_dict(orient="records"),
                              not_checked=not_checked, failing=culprits)
    skipped_note = f" Not checked: {', '.join(not_checked)}." if not_checked else ""
    if failing.empty:
        ok = table[table["status"] == "ok"]
        said = "; ".join(ok["detail"].head(3))
        return Finding(CHECK, "clear", "info", f"Serving looks healthy: {said}.{skipped_note}",
                       evidence=evidence)
    words = "; ".join(f"{r.signal}: {r.detail}" for r in failing.head(3).itertuples())
    more = f" (and {len(failing) - 3} more)" if len(failing) > 3 else ""
    # A feature absent from production, or present but empty in every row, stopped arriving.
    stopped = set(incident.missing_in_production) | {
        f for f in incident.features if len(incident.production) and incident.production[f].isna().all()}
    absent = any(s.startswith("missing:") and s.split(":", 1)[1] in stopped for s in culprits)
    severity = "critical" if absent or any(s in _CRITICAL for s in culprits) else "warning"
    strength = float(min(1.0, 1 - 1 / max(failing["ratio"].max(), 1.0001)))
    return Finding(CHECK, "detected", severity, f"Serving is not healthy: {words}{more}.{skipped_note}",
                   culprits=culprits, evidence=evidence, strength=strength)


def daily_page_table(result) -> pd.DataFrame:
    """The day-by-day table in percent and milliseconds, for the page."""
    daily = result.to_df("daily")
    if daily.empty:
        return daily
    out = pd.DataFrame({"day": daily["day"].dt.strftime("%Y-%m-%d"), "rows": daily["rows"],
                        "partial day": np.where(daily["partial_day"], "yes", "")})
    for col, name in (("error_rate", "errors %"), ("timeout_rate", "timeouts %"),
                      ("no_prediction_rate", "no prediction %")):
        if col in daily:
            out[name] = 100 * daily[col]
    for q in ("p50", "p95", "p99"):
        if f"latency_{q}_ms" in daily:
            out[f"{q.upper()} ms"] = daily[f"latency_{q}_ms"]
    return out


def inputs_page_table(result) -> pd.DataFrame:
    """Input quality per feature in percent, flagged features first, for the page."""
    inputs = result.to_df("inputs")
    if inputs.empty:
        return inputs
    out = pd.DataFrame({"feature": inputs["feature"], "type": inputs["type"],
                        "missing % (ref)": 100 * inputs["reference_missing"],
                        "missing % (prod)": 100 * inputs["production_missing"],
                        "infinite % (ref)": 100 * inputs.get("reference_infinite", np.nan),
                        "infinite % (prod)": 100 * inputs.get("production_infinite", np.nan),
                        "outside ref range %": 100 * inputs["out_of_range"],
                        "…by chance %": 100 * inputs["out_of_range_chance"],
                        "unseen categories %": 100 * inputs["unseen"],
                        "…by chance  %": 100 * inputs["unseen_chance"], "flags": inputs["flags"]})
    return out.sort_values("flags", key=lambda s: s.str.len(), ascending=False, kind="stable", ignore_index=True)


# --- contract -----------------------------------------------------------------------------------
# the defaults behind the verdict, overridable under thresholds.health (docs/thresholds.md)
THRESHOLDS = {
    "error_rate": Threshold(0.01,
                         "share of requests with an error status (interval lower bound above it fails)"),
    "timeout_rate": Threshold(0.005, "share of requests that timed out"),
    "missing_increase": Threshold(0.01, "missing-rate increase over reference, absolute"),
    "volume_drop": Threshold(0.5, "a day below this fraction of expected (or median) volume"),
    "out_of_range": Threshold(0.01, "share of values outside the reference range"),
    "unseen_categories": Threshold(0.01, "share of values in categories never seen in reference"),
    "no_prediction": Threshold(0.001, "share of rows without a prediction"),
}
THRESHOLD_NOTES = (
    "Serving health. Rates are compared through Wilson intervals, so a handful of errors in a small "
    "sample does not fire."
)


def _culprit(text: str) -> Culprit:
    kind, sep, column = text.partition(":")
    return Culprit(kind, column=column) if sep else Culprit("signal", value=text)


class HealthEvidence(Evidence):
    """The serving-health finding's evidence."""

    signals: list[dict[str, Any]] | None = None  # every signal: status, value, interval, threshold, detail
    not_checked: list[str] | None = None  # signals whose input the spec does not give
    failing: list[str] | None = None  # the failing signals, as culprits


def _actions(finding: dict, ctx: Context) -> list[dict]:
    return [{"check": CHECK, "action": "Fix serving health first",
             "detail": "failing signals: " + ", ".join(finding.get("culprits", [])[:6]),
             "why": finding["summary"]}]


def _alerts(finding: dict, ctx: Context) -> list[dict]:
    # the bars are the monitor's (MONITOR below): one number per bar, wherever it is quoted
    spec, out = ctx.incident.spec, []
    window = spec.monitoring.window
    failed, latency, missing = (ctx.monitor_bar(r) for r in ("error_rate", "latency_p95", "missing_rate"))
    if spec.columns.status and failed is not None:
        out.append({"alert": "error_rate", "metric": "failed share",
                    "condition": f"errors and timeouts per {window} window > {failed:.1%} (Wilson interval's low end)",
                    "monitor": "error_rate", "why": "serving failures"})
    if spec.columns.latency_ms and latency is not None:
        out.append({"alert": "latency_p95", "metric": "latency",
                    "condition": f"P95 latency per {window} window > {latency:g} ms (interval's low end)",
                    "monitor": "latency_p95", "why": "serving expectation"})
    if finding.get("verdict") == "detected" and missing is not None:
        for c in CONTRACT.culprits(finding):
            if c.kind == "missing":
                out.append({"alert": str(c), "metric": "missing share",
                            "condition": f"missing share of {c.column} per {window} window > reference + "
                                         f"{missing:.0%}",
                            "monitor": "missing_rate", "why": "went missing in this incident"})
    return out


# Alert rules `mlinvestigate monitor` evaluates per window. A window's missing-rate bar (5 points) is
# wider than this check's missing_increase (1 point over a whole incident): a day holds far fewer rows.
MONITOR = (
    MonitorRule("missing_rate", "behaviour", critical=0.05, unit="share", test="missing_rise", subject="feature",
                watches="a feature's missing rate rose above reference",
                sentence="Feature '{subject}' missing in {value} of rows (allowed rise {bar})"),
    MonitorRule("volume_change", "infrastructure", critical="volume_drop", unit="rows", test="volume",
                subject="volume", watches="traffic volume changed against the expected volume",
                sentence="{value} rows against {bar} expected"),
    MonitorRule("error_rate", "infrastructure", critical="error_rate", unit="share", statistic="failed_rate",
                low="failed_low", subject="failed requests",
                watches="share of failed requests (errors and timeouts)",
                sentence="{value} of requests failed (bar {bar})"),
    MonitorRule("latency_p95", "infrastructure", critical="expected.latency_p95_ms", unit="ms",
                statistic="latency_p95", subject="latency", watches="P95 latency above expected.latency_p95_ms",
                sentence="P95 latency {value} ms (expected at most {bar} ms)"),
)


CONTRACT = register(CheckContract(
    id=CHECK, thresholds=THRESHOLDS, threshold_notes=THRESHOLD_NOTES,
    title="Serving health", question="Is serving healthy?", stage="triage", module=__name__,
    culprit=_culprit, evidence=HealthEvidence,
    explains=(CoversColumns("drift", own_kinds=("missing",),
                            reason="a feature that went missing in serving changes its distribution"),),
    actions=_actions, alerts=_alerts, monitor=MONITOR,
    checklist=(("infrastructure", "Serving is healthy (errors, latency, volume, input quality)"),),
    cost=6))
