"""Data drift: do the inputs the model sees in production differ from the ones it was validated on?

How the verdict is made
-----------------------
Every feature is compared on its own (:mod:`mlinvestigate.stats.drift`): PSI, KS and a
normalised Wasserstein distance for numeric and datetime features, PSI, chi-square and the
Jensen–Shannon distance for categorical and boolean ones. A feature has **drifted** when

- its effect size crosses a threshold — PSI above ``psi_warning`` (both kinds) or, for categorical
  features, the JS distance above ``js_warning`` (0.13, the JS distance that goes with PSI 0.1) —
  after subtracting what sampling noise alone gives at these sample sizes (PSI of two samples of
  one distribution is about ``(bins-1)(1/n_ref + 1/n_prod)``),
- **and** its test (KS, or chi-square) stays significant after Benjamini–Hochberg control across
  all features at ``general.alpha``.

The Wasserstein distance (in reference spreads, IQR/1.349) is reported to say how *far* values
moved, but does not decide: it is dominated by the tails, so for a heavy-tailed feature (amounts,
distances) a shift in the top 1% moves it more than anything in the bulk, and a threshold on it
either misses bulk shifts or fires on tail noise. Values beyond the reference range are the health
check's ``out_of_range`` finding.

The effect size decides, the test only vetoes chance: at a million rows every feature differs
"significantly", and at fifty rows a large PSI can be noise. A domain classifier
(:mod:`mlinvestigate.stats.domain`) adds the multivariate view: features can each look stable
while their combination moved. Its AUC above ``domain_auc_warning`` (with the interval above 0.5)
is drift too, blamed on the features with the largest permutation importance.

Severity is critical when a drifted feature's PSI exceeds ``psi_critical`` or the domain AUC
exceeds ``domain_auc_critical``, else warning. The model's score and prediction get the same
statistics but are evidence, never culprits: their drift is a consequence, and drifting outputs
with stable inputs point away from drift (deployment, skew). Missing-value rates are compared
(two-proportion test) and reported; missing values themselves are the health check's finding.
When nothing drifted but the samples are so small that chance alone reaches the PSI warning level,
the verdict is ``inconclusive``.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from ..contract import (
    CheckContract,
    Context,
    CoversColumns,
    Evidence,
    MonitorRule,
    Threshold,
    WhenSymptomBlamesOnly,
    register,
)
from ..display import listing, number
from ..findings import Finding, Result, skipped
from ..stats import drift as sd
from ..stats.domain import DomainClassifier, fit_domain_classifier
from ..stats.intervals import bootstrap_ci, fdr, wilson

CHECK = "drift"
TIME_FEATURES = 4           # features followed over time
MIN_PERIOD_ROWS = 30        # periods with fewer production rows are left out of the time view
_THRESHOLD_KEYS = ("psi_warning", "psi_critical", "js_warning", "domain_auc_warning",
                   "domain_auc_critical", "min_category_share", "domain_rows")


# --- columns to arrays --------------------------------------------------------------------------
def shared_codes(ref: pd.Series, prod: pd.Series) -> tuple[np.ndarray, np.ndarray, list]:
    """Integer codes (``-1`` = missing) of both columns into one category list.

    Categorical columns of an incident already share one dtype, so their codes are used as they
    are; numbers (class labels) are coded by value, anything else (booleans, text) as text.
    """
    if (isinstance(ref.dtype, pd.CategoricalDtype) and isinstance(prod.dtype, pd.CategoricalDtype)
            and ref.cat.categories.equals(prod.cat.categories)):
        return (ref.cat.codes.to_numpy().astype(np.intp), prod.cat.codes.to_numpy().astype(np.intp),
                list(ref.cat.categories))
    if all(pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) for s in (ref, prod)):
        # class labels stored as numbers: codes from the sorted distinct values, no text round trip
        values = [s.to_numpy(dtype=np.float64, na_value=np.nan) for s in (ref, prod)]
        cats, inverse = np.unique(np.concatenate(values), return_inverse=True)
        inverse = inverse.astype(np.intp)
        missing = np.isnan(cats)
        inverse[missing[inverse]] = -1
        labels = [int(c) if float(c).is_integer() else float(c) for c in cats[~missing]]
        return inverse[:len(values[0])], inverse[len(values[0]):], labels
    texts = [_as_text(s) for s in (ref, prod)]
    cats = sorted(set(texts[0].dropna().unique()) | set(texts[1].dropna().unique()), key=str)
    dtype = pd.CategoricalDtype(cats)
    r, p = (t.astype(dtype).cat.codes.to_numpy().astype(np.intp) for t in texts)
    return r, p, cats


def _as_text(s: pd.Series) -> pd.Series:
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    if s.dtype == object:
        s = s.map(lambda v: str(v) if isinstance(v, (bool, np.bool_)) else v, na_action="ignore")
    return s.astype("string")


def column_drift(ref: pd.Series, prod: pd.Series, kind: str, *, min_share: float) -> sd.Drift:
    """The drift statistics of one column, ``kind`` being a feature type from ``data.FEATURE_TYPES``."""
    if kind in ("numeric", "datetime"):
        a, miss_a, inf_a = sd.sorted_finite(sd.numeric_values(ref), split=True)
        b, miss_b, inf_b = sd.sorted_finite(sd.numeric_values(prod), split=True)
        d = sd.numeric_drift(a, b, missing_reference=miss_a, missing_production=miss_b,
                             datetime=kind == "datetime")
        d.infinite_reference, d.infinite_production = inf_a, inf_b
        return d
    r, p, cats = shared_codes(ref, prod)
    return sd.categorical_drift(r, p, cats, min_share=min_share)


def aggregate_drift(agg, *, min_share: float, ks_error: float = 0.0) -> sd.Drift:
    """The drift statistics of one column from an engine's full-data aggregates
    (:class:`mlinvestigate.engine.aggregates.ColumnAggregate`)."""
    if agg.kind in ("numeric", "datetime"):
        d = sd.numeric_drift_binned(agg.grid, agg.counts[0], agg.counts[1], agg.quantiles[0], agg.quantiles[1],
                                    missing_reference=agg.missing[0], missing_production=agg.missing[1],
                                    datetime=agg.kind == "datetime", ks_error=ks_error)
        d.infinite_reference, d.infinite_production = agg.infinite
        return d
    return sd.categorical_drift_counts(agg.counts[0], agg.counts[1], agg.labels, missing_reference=agg.missing[0],
                                       missing_production=agg.missing[1], min_share=min_share)


THREADED_ROWS = 200_000  # rows of both sides from which columns are compared in threads


def univariate(reference: pd.DataFrame, production: pd.DataFrame, kinds: dict[str, str], *,
               min_share: float, workers: int | None = None, aggregates=None) -> dict[str, sd.Drift]:
    """:func:`column_drift` for every column of ``kinds``, in threads (sorting releases the GIL).

    With an engine's ``aggregates`` (``incident.aggregates``), the columns they cover are computed
    from them (every row, not the in-memory sample).
    """
    workers = workers or min(4, os.cpu_count() or 1)
    if len(reference) + len(production) < THREADED_ROWS:
        workers = 1  # small columns: the threads would mostly wait for the GIL (twice the CPU time)
    exact = aggregates.columns if aggregates is not None else {}

    def one(name: str) -> sd.Drift:
        if name in exact:
            return aggregate_drift(exact[name], min_share=min_share, ks_error=aggregates.ks_error)
        return column_drift(reference[name], production[name], kinds[name], min_share=min_share)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(kinds, pool.map(one, kinds), strict=True))


# --- verdict per feature ------------------------------------------------------------------------
def _thresholds(incident) -> dict[str, float]:
    out = {k: incident.threshold("drift", k) for k in _THRESHOLD_KEYS}
    out["alpha"] = incident.threshold("general", "alpha")
    return out


def _moved(d: sd.Drift, th: dict) -> bool:
    """Does the effect size, net of sampling noise, cross a warning threshold?"""
    if d.psi_excess > th["psi_warning"]:
        return True
    return bool(d.kind == "categorical" and d.js_excess > th["js_warning"])


def _note(d: sd.Drift) -> str:
    if d.n_reference == 0 and d.n_production == 0:
        return "no values on either side"
    if d.n_reference == 0:
        return "no values in reference"
    if d.n_production == 0:
        return "no values in production"
    if d.kind == "numeric" and d.spread.startswith("none"):
        return "constant in reference"
    if d.infinite_reference or d.infinite_production:
        return (f"infinite values left out: {number(d.infinite_reference)} in reference, "
                f"{number(d.infinite_production)} in production")
    if d.unseen_categories:
        return f"{d.unseen_categories} categor{'y' if d.unseen_categories == 1 else 'ies'} unseen in reference"
    return ""


def features_table(stats: dict[str, sd.Drift], types: dict[str, str], th: dict) -> pd.DataFrame:
    """One row per column: statistics, BH-adjusted p-values, ``drifted`` and its severity."""
    rows = []
    for name, d in stats.items():
        r = d.row()
        rows.append({"feature": name, "type": types[name], "psi": r["psi"], "psi_noise": r["psi_expected"],
                     "psi_excess": r["psi_excess"], "ks": r["ks"], "wasserstein_norm": r["wasserstein_norm"],
                     "js": r["js"], "p_value": r["p_value"], "missing_reference": r["missing_reference"],
                     "missing_production": r["missing_production"], "missing_p": r["missing_p"],
                     "unseen_share": r["unseen_share"], "rows_reference": r["rows_reference"],
                     "rows_production": r["rows_production"], "moved": _moved(d, th), "note": _note(d)})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["p_adjusted"], _ = fdr(table["p_value"].to_numpy(float), alpha=th["alpha"])
    table["missing_p_adjusted"], _ = fdr(table["missing_p"].to_numpy(float), alpha=th["alpha"])
    table["drifted"] = table["moved"] & (table["p_adjusted"] < th["alpha"])
    table["severity"] = np.where(~table["drifted"], "",
                                 np.where(table["psi_excess"] > th["psi_critical"], "critical", "warning"))
    table = table.sort_values(["drifted", "psi_excess", "psi"], ascending=False, kind="stable")
    cols = ["feature", "type", "drifted", "severity", "psi", "psi_noise", "psi_excess", "ks",
            "wasserstein_norm", "js", "p_value", "p_adjusted", "missing_reference", "missing_production",
            "missing_p_adjusted", "unseen_share", "rows_reference", "rows_production", "note"]
    return table[cols].reset_index(drop=True)


# --- model outputs ------------------------------------------------------------------------------
def output_kinds(incident) -> dict[str, str]:
    """The model's logged outputs present on both sides, with how each is compared."""
    out = {}
    for col in (incident.score, incident.prediction):
        if col and col in incident.reference.columns and col in incident.production.columns:
            numeric = col == incident.score or not incident.is_classification
            out[col] = "numeric" if numeric else "categorical"
    return out


# --- multivariate -------------------------------------------------------------------------------
def domain_classifier(incident, *, max_rows: int | None = None, importance: bool = True) -> DomainClassifier:
    """The reference-vs-production classifier on the incident's features (see :mod:`stats.domain`).

    Reusable outside the check: ``density_ratios(domain_classifier(incident), incident.reference)``
    weights reference rows to production's feature mix.
    """
    rows = int(max_rows or incident.threshold("drift", "domain_rows"))
    categorical = [f for f in incident.features if incident.feature_types[f] == "categorical"]
    return fit_domain_classifier(incident.reference, incident.production, list(incident.features),
                                 categorical=categorical, max_rows=rows,
                                 seed=int(incident.threshold("general", "seed")), importance=importance)


def domain_table(dc: DomainClassifier) -> pd.DataFrame:
    """Permutation importances, then the features left out and why."""
    table = dc.importance.assign(note="")
    if dc.excluded:
        left_out = pd.DataFrame({"feature": list(dc.excluded), "note": list(dc.excluded.values())})
        table = pd.concat([table, left_out], ignore_index=True) if len(table) else left_out
    return table.reset_index(drop=True)


def _domain_culprits(dc: DomainClassifier) -> list[str]:
    """Features whose shuffling costs the classifier a material share of its skill."""
    if not math.isfinite(dc.auc) or dc.importance.empty:
        return []
    imp = dc.importance
    floor = max(0.005, 0.1 * (dc.auc - 0.5))
    strong = imp[(imp["auc_drop"] > floor) & (imp["auc_drop"] > 2 * imp["auc_drop_sd"])]
    return list(strong["feature"][:5])


# --- over time ----------------------------------------------------------------------------------
def period_of(ts: pd.Series) -> tuple[pd.Series, str]:
    """Each timestamp's period start, by hour (span ≤ 2 days), day (≤ 60 days) or week (Monday)."""
    valid = ts.dropna()
    span = (valid.max() - valid.min()) if len(valid) else pd.Timedelta(0)
    if span <= pd.Timedelta(days=2):
        return ts.dt.floor("h"), "hour"
    if span <= pd.Timedelta(days=60):
        return ts.dt.floor("D"), "day"
    day = ts.dt.floor("D")
    return day - pd.to_timedelta(day.dt.day_of_week, unit="D"), "week"


def _bin_index(d: sd.Drift, values: pd.Series, kind: str) -> np.ndarray:
    """Each production row's PSI bin (``-1`` for missing), the bins of the overall PSI."""
    if d.kind == "numeric":
        x = sd.numeric_values(values)
        idx = np.searchsorted(d.profile["psi_edges"], x, side="left")
        idx[~np.isfinite(x)] = -1
        return idx
    labels = list(d.bins["bin"])
    position = {label: i for i, label in enumerate(labels)}
    other = position.get(sd.OTHER, -1)
    codes, cats = _codes_for(values, kind)
    table = np.array([position.get(str(c), other) for c in cats] + [-1], dtype=np.intp)
    return table[np.where(codes >= 0, codes, len(cats))]


def _codes_for(values: pd.Series, kind: str):
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy().astype(np.intp), [str(c) for c in values.cat.categories]
    text = _as_text(values)
    codes, cats = pd.factorize(text)
    return codes.astype(np.intp), [str(c) for c in cats]


def drift_pattern(excess: np.ndarray, threshold: float) -> tuple[str, int | None]:
    """How a feature's drift developed, from its per-period PSI net of sampling noise.

    Returns ``sudden`` (with the index of the first drifted period), ``gradual``, ``present from
    the start``, ``intermittent``, ``stable`` or ``unknown`` (fewer than 4 periods). A step (two
    levels) and a line are fitted to the series:

    - sudden: the step rises by at least ``threshold`` from below it to above it, and fits
      better than the line;
    - gradual: the line rises by at least ``threshold`` over the series and fits (R² ≥ 0.5);
    - present from the start: the typical (median) period is above the threshold;
    - intermittent: some periods above, most below; stable: none above.
    """
    v = np.asarray(excess, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    if n < 4:
        return "unknown", None
    if not (v > threshold).any():
        return "stable", None
    sst = float(np.sum((v - v.mean()) ** 2))
    if sst > 0:
        s1, s2 = np.cumsum(v), np.cumsum(v**2)
        k = np.arange(2, n - 1)  # at least two periods on each side of the step
        left = s2[k - 1] - s1[k - 1] ** 2 / k
        right = (s2[-1] - s2[k - 1]) - (s1[-1] - s1[k - 1]) ** 2 / (n - k)
        best = int(np.argmin(left + right))
        cut = int(k[best])
        r2_step = 1 - float(left[best] + right[best]) / sst
        before, after = v[:cut].mean(), v[cut:].mean()
        t = np.arange(n)
        slope, intercept = np.polyfit(t, v, 1)
        r2_line = 1 - float(np.sum((v - (slope * t + intercept)) ** 2)) / sst
        if after - before >= threshold and before <= threshold < after and r2_step > r2_line:
            return "sudden", cut
        if slope * (n - 1) >= threshold and r2_line >= 0.5 and v[-(n // 3):].mean() > threshold:
            return "gradual", None
    if np.median(v) > threshold:
        return "present from the start", None
    return "intermittent", None


def over_time(incident, stats: dict[str, sd.Drift], features: list[str], *, psi_warning: float,
              seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """PSI of ``features`` and the headline metric per production period.

    Returns the table (``period``, ``rows``, ``labelled``, the metric with its interval, one
    ``psi <feature>`` column per feature) and a dict with ``period`` (hour/day/week), ``pattern``
    and ``since`` (the first drifted period of a sudden change), or ``skipped`` with the reason.
    """
    from ..metrics import headline, headline_name, row_outcome

    ts_col = incident.columns.timestamp
    prod = incident.production
    if not ts_col or ts_col not in prod.columns or prod[ts_col].notna().sum() == 0:
        return pd.DataFrame(), {"skipped": "production has no timestamp (set columns.timestamp) to "
                                           "show how drift developed over time"}
    period, unit = period_of(prod[ts_col])
    ok = period.notna().to_numpy()
    keys, inverse = np.unique(period.to_numpy()[ok], return_inverse=True)
    pid = np.full(len(prod), -1, dtype=np.intp)
    pid[ok] = inverse
    n_periods = len(keys)
    rows = np.bincount(pid[ok], minlength=n_periods)
    table = pd.DataFrame({"period": pd.to_datetime(keys), "rows": rows})

    name = headline_name(incident)
    outcome = row_outcome(incident, prod)
    labelled = np.isfinite(outcome) & ok
    table["labelled"] = np.bincount(pid[labelled], minlength=n_periods)
    sums = np.bincount(pid[labelled], weights=outcome[labelled], minlength=n_periods)
    with np.errstate(invalid="ignore", divide="ignore"):
        table[name] = np.where(table["labelled"] > 0, sums / table["labelled"], np.nan)
    if incident.is_classification:
        lo, hi = wilson(sums, table["labelled"].to_numpy())
    else:
        cis = [bootstrap_ci(np.mean, outcome[labelled & (pid == i)], seed=seed, max_rows=5_000)
               for i in range(n_periods)]
        lo, hi = np.array([c[0] for c in cis]), np.array([c[1] for c in cis])
    table[f"{name} low"], table[f"{name} high"] = lo, hi

    for f in features:
        d = stats[f]
        if not (d.n_reference and d.n_production):
            continue
        nb = len(d.bins)
        b = _bin_index(d, prod[f], incident.feature_types.get(f, "categorical"))
        use = ok & (b >= 0)
        counts = np.bincount(pid[use] * nb + b[use], minlength=n_periods * nb).reshape(n_periods, nb)
        ref_counts = d.bins["reference_share"].to_numpy() * d.n_reference
        table[f"psi {f}"] = [sd.psi(ref_counts, c) if c.sum() else np.nan for c in counts]
        table[f"noise {f}"] = [sd.psi_null_quantile(d.bins_used, d.n_reference, int(c.sum()))
                               for c in counts]
    table = table[table["rows"] >= MIN_PERIOD_ROWS].reset_index(drop=True)
    info: dict = {"period": unit, "periods": int(len(table)), "metric": name,
                  "dropped_periods": int(n_periods - len(table)),
                  "reference_metric": headline(incident, incident.reference)}
    lead = next((f for f in features if f"psi {f}" in table), None)
    if lead is not None:
        d = stats[lead]
        excess = table[f"psi {lead}"] - [sd.psi_expected(d.bins_used, d.n_reference, int(r))
                                         for r in table["rows"]]
        pattern, k = drift_pattern(excess.to_numpy(float), psi_warning)
        info.update(feature=lead, pattern=pattern,
                    since=table["period"].iloc[k].isoformat() if k is not None else None)
    return table, info


# --- identifier-like columns -------------------------------------------------------------------
def identifier_table(incident) -> pd.DataFrame:
    """The columns loading set aside as identifiers or free text, with their distinct counts."""
    rows = []
    for f in getattr(incident, "identifier_like", []):
        r = incident.reference[f] if f in incident.reference else pd.Series(dtype=object)
        p = incident.production[f] if f in incident.production else pd.Series(dtype=object)
        rows.append({"feature": f, "distinct_reference": int(r.nunique()), "rows_reference": int(r.notna().sum()),
                     "distinct_production": int(p.nunique()), "rows_production": int(p.notna().sum())})
    return pd.DataFrame(rows, columns=["feature", "distinct_reference", "rows_reference",
                                       "distinct_production", "rows_production"])


# --- for the page -------------------------------------------------------------------------------
def top_features(result, n: int = 4) -> list[str]:
    """The features the page draws: the culprits, else the largest PSI."""
    table = result.to_df("features")
    culprits = [c for c in result.finding.culprits if c in set(table.get("feature", []))]
    return (culprits or list(table.dropna(subset=["psi"])["feature"]))[:n]


def page_table(result, name: str = "features") -> pd.DataFrame:
    """The features (or outputs) table with the columns a reader needs, named for reading."""
    table = result.tables.get(name, pd.DataFrame())
    key = "feature" if name == "features" else "output"
    ids = result.tables.get("identifier_like") if name == "features" else None
    if table.empty and (ids is None or ids.empty):
        return table
    out = pd.DataFrame() if table.empty else pd.DataFrame({
        key: table[key], "type": table["type"],
        "drifted": np.where(table["drifted"], table["severity"], "no"),
        "PSI": table["psi"], "PSI by chance": table["psi_noise"], "KS": table["ks"],
        "Wasserstein (spreads)": table["wasserstein_norm"], "JS": table["js"],
        "p (BH)": table["p_adjusted"],
        "missing ref %": 100 * table["missing_reference"], "missing prod %": 100 * table["missing_production"],
        "new categories %": 100 * table["unseen_share"], "note": table["note"]})
    if ids is not None and len(ids):
        left_out = pd.DataFrame({
            key: ids["feature"], "type": "identifier-like", "drifted": "not compared",
            "note": [f"{number(r.distinct_reference)} distinct values in {number(r.rows_reference)} reference rows, "
                     f"{number(r.distinct_production)} in {number(r.rows_production)} production rows: an id or "
                     "free text, left out of drift statistics" for r in ids.itertuples()]})
        out = left_out if out.empty else pd.concat([out, left_out], ignore_index=True)
    return out


# --- the check ----------------------------------------------------------------------------------
def run(incident, *, domain: bool = True) -> Result:
    """Compare every feature's distribution, and their joint distribution, between the two sides.

    Parameters
    ----------
    incident : Incident
    domain : bool
        Fit the domain classifier (multivariate drift); False leaves it out.

    Returns
    -------
    Result
        Tables ``features`` (all features, most drifted first), ``outputs`` (score and prediction),
        ``over_time`` and ``domain``; ``data`` holds the per-column statistics (``stats``), the
        fitted ``domain`` classifier, ``time`` and the reader's ``notes``.
    """
    th = _thresholds(incident)
    seed = int(incident.threshold("general", "seed"))
    ids = identifier_table(incident)
    if not incident.features:
        if len(ids):
            return Result(skipped(CHECK, f"There are no features to compare: {listing(ids['feature'])} look like "
                                         "identifiers or free text (about as many distinct values as rows), which "
                                         "distribution statistics cannot compare. List the model's inputs under "
                                         "columns.features in the spec."), tables={"features": pd.DataFrame(), "identifier_like": ids})
        return Result(skipped(CHECK, "There are no features to compare: list them under "
                                     "columns.features in the spec."))
    types = dict(incident.feature_types)
    outputs = output_kinds(incident)
    # The classifier fits in a thread of its own while the columns are sorted: both spend their
    # time in compiled code that releases the GIL, so they share the cores.
    with ThreadPoolExecutor(max_workers=1) as pool:
        fitting = pool.submit(domain_classifier, incident) if domain else None
        aggregates = getattr(incident, "aggregates", None)
        stats = univariate(incident.reference, incident.production, types, min_share=th["min_category_share"],
                           aggregates=aggregates)
        out_stats = univariate(incident.reference, incident.production, outputs,
                               min_share=th["min_category_share"], aggregates=aggregates) if outputs else {}
        dc = fitting.result() if fitting is not None else None
    table = features_table(stats, types, th)
    out_table = features_table(out_stats, outputs, th).rename(columns={"feature": "output"})
    dom = _domain_evidence(dc, th)
    culprits = list(table.loc[table["drifted"], "feature"])
    if not culprits and dom.get("detected"):
        culprits = _domain_culprits(dc)
    lead = culprits or list(table["feature"][:3])
    time_table, time_info = over_time(incident, stats, lead[:TIME_FEATURES],
                                      psi_warning=th["psi_warning"], seed=seed)

    verdict, severity = _verdict(table, dom, th, incident)
    summary = _summary(verdict, table, dom, out_table, time_info, culprits, incident, th)
    evidence = _evidence(table, out_table, dom, time_info, th, incident, culprits)
    evidence.identifier_like = ids.to_dict(orient="records")
    if len(ids):
        summary += f" Not compared: {listing(ids['feature'])} (identifier-like)."
    finding = Finding(CHECK, verdict, severity, summary, culprits=culprits, evidence=evidence,
                      strength=_strength(verdict, table, dom, th))
    notes = _notes(table, out_table, dom, dc, time_info, th, incident)
    if len(ids):
        notes["method"] += (f" Left out as identifier-like: {listing(ids['feature'], limit=10)}. Their values are "
                            "almost all distinct, so nearly every production value is new and PSI or "
                            "chi-square would say nothing true about them; they are listed at the end of the table.")
    tables = {"features": table, "over_time": time_table,
              "domain": domain_table(dc) if dc is not None else pd.DataFrame(), "outputs": out_table,
              "identifier_like": ids}
    return Result(finding, tables=tables,
                  data={"stats": stats, "output_stats": out_stats, "domain": dc, "time": time_info,
                        "thresholds": th, "types": types, "notes": notes},
                  shared={"domain": dc} if dc is not None else {})


def _domain_evidence(dc: DomainClassifier | None, th: dict) -> dict:
    if dc is None:
        return {"fitted": False, "reason": "not requested"}
    if not math.isfinite(dc.auc):
        reason = ("every feature separates the sides on its own or has no values"
                  if dc.rows_per_side[0] >= 2 * max(dc.folds, 3) else "too few rows")
        return {"fitted": False, "reason": reason, "excluded": dc.excluded}
    lo, hi = dc.ci
    detected = bool(dc.auc > th["domain_auc_warning"] and lo > 0.5)
    return {"fitted": True, "auc": dc.auc, "ci": [lo, hi], "rows_per_side": dc.rows_per_side[0],
            "folds": dc.folds, "detected": detected,
            "critical": bool(detected and dc.auc > th["domain_auc_critical"]),
            "top_features": list(dc.importance["feature"][:5]), "excluded": dc.excluded}


def _rows(incident) -> tuple[int, int]:
    """Rows of each side in the data (all of them, also when an engine keeps a sample in memory)."""
    rows = getattr(incident, "rows", None) or {"reference": len(incident.reference),
                                               "production": len(incident.production)}
    return rows["reference"], rows["production"]


def _too_small(table: pd.DataFrame, incident, th: dict) -> bool:
    """Could chance alone reach the PSI warning level at these sample sizes?"""
    n_ref, n_prod = _rows(incident)
    return sd.psi_null_quantile(sd.BINS, n_ref, n_prod) > th["psi_warning"] or table["p_value"].isna().all()


def _verdict(table: pd.DataFrame, dom: dict, th: dict, incident) -> tuple[str, str]:
    drifted = table[table["drifted"]]
    if len(drifted) or dom.get("detected"):
        critical = (drifted["psi_excess"] > th["psi_critical"]).any() or dom.get("critical", False)
        return "detected", "critical" if critical else "warning"
    if _too_small(table, incident, th):
        return "inconclusive", "info"
    return "clear", "info"


def _strength(verdict: str, table: pd.DataFrame, dom: dict, th: dict) -> float:
    if verdict != "detected":
        return 0.0
    psi_part = min(1.0, float(table.loc[table["drifted"], "psi_excess"].max() if table["drifted"].any()
                              else 0.0) / (2 * th["psi_critical"]))
    auc_part = min(1.0, max(0.0, (dom["auc"] - 0.5) / 0.5)) if dom.get("detected") else 0.0
    return round(max(psi_part, auc_part), 4)


def _fmt(v: float) -> str:
    return f"{v:.2f}" if abs(v) >= 0.01 else f"{v:.3f}"


def _summary(verdict, table, dom, out_table, time_info, culprits, incident, th) -> str:
    n = len(table)
    auc_text = (f"a classifier tells production from reference with ROC AUC {dom['auc']:.2f} "
                f"(95% CI {dom['ci'][0]:.2f}–{dom['ci'][1]:.2f})" if dom.get("fitted") else "")
    if verdict == "detected":
        drifted = table[table["drifted"]]
        if len(drifted):
            items = ", ".join(f"{r.feature} (PSI {_fmt(r.psi)}{', critical' if r.severity == 'critical' else ''})"
                              for r in drifted.head(4).itertuples())
            more = f" and {len(drifted) - 4} more" if len(drifted) > 4 else ""
            text = f"{len(drifted)} of {n} features drifted: {items}{more}"
            text += f"; {auc_text}." if auc_text else "."
        else:
            text = (f"No single feature moved beyond the thresholds, but {auc_text}: the features changed "
                    f"together, mostly {', '.join(culprits) or 'spread over many features'}.")
        pattern = time_info.get("pattern")
        if pattern == "sudden":
            text += f" The change is sudden, from {time_info['since'][:10]}."
        elif pattern in ("gradual", "present from the start", "intermittent"):
            text += f" Over time the drift is {pattern}."
        return text + _missing_text(table, th)
    if verdict == "inconclusive":
        if table["p_value"].isna().all():
            return "No feature has values on both sides, so drift cannot be assessed."
        n_ref, n_prod = _rows(incident)
        noise = sd.psi_null_quantile(sd.BINS, n_ref, n_prod)
        return (f"Too few rows to rule out drift: with {n_ref} reference and "
                f"{n_prod} production rows, chance alone gives PSI up to {_fmt(noise)} "
                f"(the warning level is {th['psi_warning']}), and no feature moved clearly beyond that.")
    top = table.iloc[0]
    level = (f"below the {th['psi_warning']} warning level" if top.psi <= th["psi_warning"]
             else "within what chance gives at these sample sizes")
    text = f"No feature drifted: the largest change is {top.feature} (PSI {_fmt(top.psi)}, {level})"
    text += f", and {auc_text.replace('tells', 'barely tells')}." if auc_text else "."
    moved = out_table[out_table["drifted"]] if len(out_table) else out_table
    if len(moved):
        text += (f" The model's output ({', '.join(moved['output'])}) shifted more than its inputs: "
                 "the deployment, skew and prior-shift checks say why.")
    return text + _missing_text(table, th)


def _missing_changes(table: pd.DataFrame, th: dict) -> pd.DataFrame:
    """Features whose missing-value rate changed materially (over 1 point) and significantly."""
    change = (table["missing_production"] - table["missing_reference"]).abs()
    return table[(table["missing_p_adjusted"] < th["alpha"]) & (change > 0.01)]


def _missing_text(table: pd.DataFrame, th: dict) -> str:
    changed = _missing_changes(table, th)
    if changed.empty:
        return ""
    items = ", ".join(f"{r.feature} ({r.missing_reference:.1%} → {r.missing_production:.1%})"
                      for r in changed.head(3).itertuples())
    return f" Missing values changed too: {items}; the health check weighs them."


def _row_evidence(r: pd.Series) -> dict:
    keys = ("type", "severity", "psi", "psi_noise", "ks", "wasserstein_norm", "js", "p_adjusted",
            "missing_reference", "missing_production", "unseen_share", "rows_reference", "rows_production")
    return {k: r[k] for k in keys}


def _evidence(table, out_table, dom, time_info, th, incident, culprits) -> DriftEvidence:
    drifted = table[table["drifted"]]
    missing = _missing_changes(table, th)
    return DriftEvidence(
        features_compared=int(len(table)),
        drifted_features={r["feature"]: _row_evidence(r) for _, r in drifted.iterrows()},
        max_psi={"feature": table["feature"].iloc[int(table["psi"].fillna(-1).to_numpy().argmax())],
                 "psi": float(table["psi"].max())} if table["psi"].notna().any() else None,
        domain_classifier={k: v for k, v in dom.items() if k != "excluded"},
        separate_alone=dom.get("excluded", {}),
        outputs={r["output"]: _row_evidence(r) | {"drifted": bool(r["drifted"])}
                 for _, r in out_table.iterrows()},
        missing_rate_changes={r["feature"]: {"reference": r["missing_reference"],
                                             "production": r["missing_production"]}
                              for _, r in missing.iterrows()},
        over_time=time_info,
        reference_rows=_rows(incident)[0],
        production_rows=_rows(incident)[1],
        psi_noise_95=sd.psi_null_quantile(sd.BINS, *_rows(incident)),
        engine=getattr(incident, "engine", "pandas"),
        thresholds=th,
        culprit_source=("univariate" if len(drifted) else "domain classifier") if culprits else None,
    )


def _notes(table, out_table, dom, dc, time_info, th, incident) -> dict[str, str]:
    """Plain sentences for the page, with the numbers of this run."""
    n_ref, n_prod = _rows(incident)
    method = (
        f"Each feature is compared on its own: PSI on {sd.BINS} reference-quantile bins (stable below "
        f"{th['psi_warning']}, critical above {th['psi_critical']}), the KS test and the Wasserstein "
        f"distance in reference spreads (IQR/1.349) for numbers and dates; PSI, the chi-square test and "
        f"the Jensen–Shannon distance for categories (categories under {th['min_category_share']:.0%} of "
        f"reference pooled into (other)). A feature counts as drifted when its PSI, net of the "
        f"{_fmt(sd.psi_expected(sd.BINS, n_ref, n_prod))} that chance alone gives with {n_ref:,} and "
        f"{n_prod:,} rows, exceeds {th['psi_warning']} (or, for categories, its JS distance exceeds "
        f"{th['js_warning']}) and its test stays significant at {th['alpha']} after Benjamini–Hochberg "
        f"correction over {len(table)} features. The Wasserstein distance says how far values moved "
        "but does not decide: the tails dominate it.")
    if dom.get("fitted"):
        domain = (f"A gradient-boosted classifier was trained to tell production rows from reference rows "
                  f"({dom['rows_per_side']:,} sampled per side, {dom['folds']}-fold cross-validation): "
                  f"ROC AUC {dom['auc']:.3f} (95% CI {dom['ci'][0]:.3f}–{dom['ci'][1]:.3f}). 0.5 means "
                  f"the two sides look alike; above {th['domain_auc_warning']} counts as drift, above "
                  f"{th['domain_auc_critical']} as critical. The chart shows how much the AUC drops when "
                  "each feature is shuffled: the features that separate the sides most.")
    else:
        domain = f"The domain classifier was not fitted: {dom.get('reason', 'not requested')}."
    if dom.get("excluded"):
        domain += " Left out: " + "; ".join(f"{f} ({why})" for f, why in dom["excluded"].items()) + "."
    if dc is not None and getattr(dc, "note", ""):
        domain += " " + dc.note  # on a wide table, which columns each fold's model was fitted on
    if "skipped" in time_info:
        time = f"No time view: {time_info['skipped']}."
    else:
        time = (f"PSI of the leading features and the model's {time_info['metric']} per production "
                f"{time_info['period']} ({time_info['periods']} periods"
                + (f"; {time_info['dropped_periods']} with fewer than {MIN_PERIOD_ROWS} rows left out"
                   if time_info["dropped_periods"] else "") + "). Dotted lines: the PSI chance alone "
                "reaches (95%) with that period's rows.")
        pattern = time_info.get("pattern")
        if pattern:
            time += " " + _PATTERN_TEXT[pattern].format(feature=time_info["feature"],
                                                        since=(time_info.get("since") or "")[:10])
    aggregates = getattr(incident, "aggregates", None)
    sampling = getattr(incident, "engine_note", "") + " "
    if aggregates is not None:
        sampling += (f"Univariate statistics use every row, aggregated by {aggregates.engine}: PSI, "
                     "chi-square and Jensen–Shannon exactly, KS from both sides' exact CDFs at a grid of about "
                     f"2,000 points (at most {aggregates.ks_error:.4f} below the exact value), the Wasserstein "
                     "distance from the quantile functions (approximate; it does not decide). The time view "
                     f"uses the seeded sample of {len(incident.production):,} production rows. ")
    else:
        sampling += "Univariate statistics use every row. "
    sampling += (f"The domain classifier uses a seeded random sample of {dom['rows_per_side']:,} rows per side "
                 f"(seed {int(incident.threshold('general', 'seed'))})."
                 if dom.get("fitted") else "No sampling was needed.")
    moved = out_table[out_table["drifted"]] if len(out_table) else out_table
    outputs = ("The model's outputs are compared the same way. Their drift is a consequence, not a cause: "
               "read it next to the inputs'.")
    if len(moved):
        outputs += f" Shifted: {', '.join(moved['output'])}."
    return {"method": method, "domain": domain, "time": time, "sampling": sampling, "outputs": outputs}


_PATTERN_TEXT = {
    "sudden": "{feature} changed suddenly, from {since}: look for a release, a pipeline change or an event that day.",
    "gradual": "{feature} drifted gradually, growing over the period: the population is changing.",
    "present from the start": "{feature} was already different in the first period and stayed so: "
                              "production differed from reference from the start.",
    "intermittent": "{feature} drifts in some periods and not others.",
    "stable": "{feature} stays within the warning level in every period.",
    "unknown": "Too few periods to tell a sudden change from a gradual one.",
}


# --- contract -----------------------------------------------------------------------------------
# the defaults behind the verdict, overridable under thresholds.drift (docs/thresholds.md)
THRESHOLDS = {
    "psi_warning": Threshold(0.1, "PSI above which a feature has moved (warning)"),
    "psi_critical": Threshold(0.25, "PSI above which a feature has moved a lot (critical)"),
    "js_warning": Threshold(0.13,
                         "Jensen–Shannon distance (base 2), categorical: ≈ PSI 0.1 (JS² ≈ PSI / 8 ln 2)"),
    "domain_auc_warning": Threshold(0.6,
                         "domain-classifier ROC AUC above which the joint distribution moved"),
    "domain_auc_critical": Threshold(0.75, "…and moved a lot (critical)"),
    "min_category_share": Threshold(0.01, "rarer categories are pooled into \"(other)\""),
    "domain_rows": Threshold(25_000, "rows sampled per side for the domain classifier"),
}
THRESHOLD_NOTES = (
    "PSI on 10 reference-quantile bins (< 0.1 stable, 0.1–0.25 warning, > 0.25 critical), KS and "
    "Wasserstein for numeric features, chi-square and Jensen–Shannon for categorical ones, and a domain "
    "classifier for the joint distribution. A feature is drifted only when its effect size crosses the "
    "threshold *and* its BH-adjusted p-value is below `general.alpha`. PSI and Jensen–Shannon are "
    "compared with their thresholds after subtracting the value two samples of the same distribution "
    "reach by chance at these sizes (about 9·(1/n_ref + 1/n_prod) for PSI on 10 bins); Wasserstein "
    "distance is reported but does not decide, because its tails dominate it."
)


class DriftEvidence(Evidence):
    """The drift finding's evidence (none when skipped)."""

    features_compared: int | None = None
    drifted_features: dict[str, dict[str, Any]] | None = None  # feature → type, severity, PSI, KS, JS, missing …
    max_psi: dict[str, Any] | None = None  # the feature with the largest PSI and its PSI
    domain_classifier: dict[str, Any] | None = None  # fitted, auc, ci, detected, critical, top_features …
    separate_alone: dict[str, Any] | None = None  # features left out of the classifier: each separates the sides alone
    outputs: dict[str, dict[str, Any]] | None = None  # the model's outputs (prediction, score): statistics, drifted
    missing_rate_changes: dict[str, dict[str, float | None]] | None = None  # feature → reference, production
    over_time: dict[str, Any] | None = None  # the lead features by period: pattern, periods, metric …
    reference_rows: int | None = None
    production_rows: int | None = None
    psi_noise_95: float | None = None  # PSI that chance alone stays under 95% of the time at these row counts
    engine: str | None = None
    thresholds: dict[str, float] | None = None  # the thresholds the verdict used
    culprit_source: str | None = None  # univariate or domain classifier
    identifier_like: list[dict[str, Any]] | None = None  # columns left out: about as many distinct values as rows


def _actions(finding: dict, ctx: Context) -> list[dict]:
    culprits = finding.get("culprits", [])
    return [{"check": CHECK, "action": "Ensemble with a rule-based baseline where the model is out of its depth",
             "detail": "send " + ", ".join(culprits[:4])
                       + " traffic (or inputs outside the reference range) to the previous rules or "
                         "baseline until the model is retrained on recent data",
             "why": finding["summary"]},
            {"check": CHECK, "action": "Retrain on recent production data",
             "detail": "include the drifted period once labels arrive; validate on the newest weeks",
             "why": "the input distribution moved since training"}]


def _alerts(finding: dict, ctx: Context) -> list[dict]:
    # the bars are the monitor's (MONITOR below): one number per bar, wherever it is quoted
    window = ctx.incident.spec.monitoring.window
    warning, critical = ctx.monitor_bar("feature_psi", "warning"), ctx.monitor_bar("feature_psi")
    out = []
    if finding.get("verdict") == "detected" and warning is not None:
        for feat in finding.get("culprits", [])[:10]:
            out.append({"alert": f"drift:{feat}", "metric": "psi", "feature": feat,
                        "condition": f"PSI({feat}) per {window} window > {warning:g} (beyond sampling noise)",
                        "monitor": "feature_psi", "why": "drifted in this incident"})
    if critical is not None:
        out.append({"alert": "drift:all_features", "metric": "psi",
                    "condition": f"PSI of any feature per {window} window > {critical:g} (beyond sampling noise)",
                    "monitor": "feature_psi", "why": "catch the next drift before labels arrive"})
    auc = ctx.monitor_bar("domain_auc", "warning")
    if auc is not None:
        out.append({"alert": "drift:joint", "metric": "domain classifier ROC AUC",
                    "condition": f"low end of the 95% interval of the {window} window's AUC > {auc:g}",
                    "monitor": "domain_auc", "why": "features can each look stable while their combination moves"})
    return out


# Alert rules `mlinvestigate monitor` evaluates per window (bars: this check's thresholds).
MONITOR = (
    MonitorRule("feature_psi", "behaviour", critical="psi_critical", warning="psi_warning", unit="psi",
                test="feature_psi", subject="feature",
                watches="a feature's distribution moved (PSI beyond sampling noise)",
                sentence="Feature '{subject}' drifted: PSI {value} in the latest firing window ({level} level, "
                         "bar {bar})"),
    MonitorRule("domain_auc", "behaviour", critical="domain_auc_critical", warning="domain_auc_warning",
                unit="auc", statistic="domain_auc", subject="all features",
                watches="a classifier tells the window's rows from reference rows (joint distribution moved)",
                sentence="A classifier tells the window's production rows from reference rows with ROC AUC "
                         "{value}, the low end of its 95% interval above {bar} ({level} level)"),
)


CONTRACT = register(CheckContract(
    id=CHECK, thresholds=THRESHOLDS, threshold_notes=THRESHOLD_NOTES,
    title="Data drift", question="Do production inputs look like the ones the model was validated on?",
    stage="cause", module=__name__, evidence=DriftEvidence,
    explains=(CoversColumns("health", symptom_kinds=("out_of_range", "unseen"),
                            reason="values out of the reference range or unseen categories are the drift itself"),
              WhenSymptomBlamesOnly("labels", frozenset({"definition", "label noise"}), priority=50,
                                    reason="inputs the model rarely saw change how often it is right at a given "
                                           "score as much as a label definition change would")),
    actions=_actions, alerts=_alerts, monitor=MONITOR,
    checklist=(("data", "Production inputs look like reference inputs"),),
    cost=18))
