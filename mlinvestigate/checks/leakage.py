"""Leakage: did the model learn from information it will not have when it predicts?

The evidence lives mostly in the reference data, where a leaking feature is *implausibly* good. A
feature that merely drifted, or is computed differently live (skew), keeps a plausible strength
offline and is not a leak; the check only blames a feature whose offline strength is both out of the
ordinary and confirmed by a second sign.

Per feature, on a seeded sample of labelled reference rows and of labelled production rows
(``thresholds.leakage.sample_rows``):

- single-feature power (:mod:`mlinvestigate.stats.leakage`): out-of-fold ROC AUC (macro
  one-vs-rest for several classes) or R² of a binned one-feature model, on reference and on
  labelled production rows, each with a bootstrap interval. Each side fits its own bins, so a unit
  change, a shift or a cap (skew, drift) leaves the power alone; only a feature that stopped
  carrying the target loses it. The drop is measured against reference power on as many rows as
  production has, so a small production sample is not mistaken for a collapse;
- its share of the logged model's own skill (Gini ``2·AUC − 1``, or R²) on reference;
- information: the share of the target's uncertainty the feature removes out of fold, and the mutual
  information (scikit-learn);
- identifier profile: share of distinct values and monotonicity in row order;
- with ``leakage.available_at`` in the spec: the share of rows whose value became known after the
  prediction time (``columns.timestamp``).

A feature is a **leak** (a culprit) when

1. its value became known after the prediction time in any row; or
2. it is *implausible* offline — alone it reaches ``single_feature_auc`` (``single_feature_r2`` for
   regression), or ``share_of_full_model`` of the model's skill when the model logs a score — and
   that is *confirmed*: it collapses live (power drops by at least ``collapse`` with a bootstrap
   interval above zero, and all the way to chance when only the share made it implausible), or it
   nearly determines the target (information ≥ ``target_function``) and production labels do not
   show it holding up live,
   or production has no labels to test it and even the lower end of its offline interval is
   above the power threshold; or
3. it is identifier-like (≥ 95% distinct values, ordered like the rows) and predicts the target
   (skill ≥ ``identifier_skill``).

Rows shared between reference and production (same ``columns.id``, or identical feature rows beyond
what chance gives) and a reference period reaching into production are reported as a warning on
their own. An implausible feature that production labels can neither confirm nor clear makes the
verdict ``inconclusive``.

Evidence keys: ``metric`` (``roc_auc`` or ``r2``), ``model_power`` (reference, production),
``features`` (culprit and suspicious features → their numbers and ``reasons``), ``strongest``
(top features by offline power), ``shared_rows``, ``period``, ``available_at``, ``sample``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..contract import (
    CheckContract,
    Context,
    CoversColumns,
    Evidence,
    Threshold,
    WhenSymptomBlamesOnly,
    register,
)
from ..data import sample_rows
from ..findings import Finding, Result
from ..stats import leakage as st
from ..stats.triage_time import parse_datetime

CHECK = "leakage"
MIN_LABELLED = 30          # production rows needed before single-feature power is measured live
MI_ROWS = 10_000           # mutual information is estimated on at most this many sampled rows
IDENTIFIER_UNIQUE = 0.95   # share of distinct values of an identifier-like column
IDENTIFIER_MONOTONE = 0.95  # |Spearman| between value and row position of an identifier-like column
DISCRETE_LEVELS = 20       # numeric features with at most this many values count as discrete
# Features given bootstrap intervals, mutual information and monotonicity besides those the verdict
# can rest on: the strongest offline (the page lists them first).
DETAIL_FEATURES = 25


def _target(incident, df: pd.DataFrame) -> np.ndarray:
    y = df[incident.target]
    if incident.kind == "regression":
        return pd.to_numeric(y, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return y.astype(object).to_numpy()


def _model_power(incident, df: pd.DataFrame, y: np.ndarray) -> tuple[float, bool]:
    """The logged model's power on ``df`` and whether it comes from a score (comparable to a
    single feature's ranking power)."""
    if len(df) < 2:
        return np.nan, False
    score = incident.score
    if incident.kind == "binary" and score and score in df.columns and pd.api.types.is_numeric_dtype(df[score]):
        return st.model_power(y, df[score].to_numpy(dtype=float, na_value=np.nan), kind="binary",
                              positive=incident.positive_label, is_score=True), True
    pred = df[incident.prediction]
    out = (pd.to_numeric(pred, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
           if incident.kind == "regression" else pred.astype(object).to_numpy())
    return (st.model_power(y, out, kind=incident.kind, positive=incident.positive_label),
            incident.kind == "regression")


def _enough_labels(incident, y: np.ndarray) -> bool:
    if len(y) < MIN_LABELLED:
        return False
    if incident.kind == "regression":
        return bool(np.nanstd(y) > 0)
    return len(pd.unique(y)) >= 2


def _available_at(incident) -> dict:
    """feature → late-value shares on reference and production (``leakage.available_at``)."""
    mapping = incident.spec.leakage.available_at
    ts = incident.columns.timestamp
    out = {}
    for feature, column in mapping.items():
        entry = {"column": column}
        if not ts:
            entry["note"] = "set columns.timestamp to compare it with the prediction time"
        for role, df in (("reference", incident.reference), ("production", incident.production)):
            if not ts or column not in df.columns or ts not in df.columns:
                continue
            late, share, n = st.late_share(parse_datetime(df[column]), parse_datetime(df[ts]))
            entry[role] = {"late_rows": late, "late_share": share, "rows_compared": n}
        out[feature] = entry
    return out


def _late(entry: dict) -> float:
    shares = [entry[r]["late_share"] for r in ("reference", "production")
              if r in entry and np.isfinite(entry[r]["late_share"])]
    return max(shares) if shares else np.nan


def _shared_rows(incident) -> dict:
    """Rows shared between reference and production: by id and by identical feature values."""
    ref, prod = incident.reference, incident.production
    out: dict = {}
    ident = incident.columns.id
    if ident and ident in ref.columns and ident in prod.columns:
        ids = prod[ident].dropna()
        n, share = st.shared_share(ids.astype(str) if ids.dtype == object else ids,
                                   ref[ident].dropna().astype(str) if ref[ident].dtype == object
                                   else ref[ident].dropna())
        out["id"] = {"column": ident, "shared_rows": n, "share_of_production": share}
    features = [f for f in incident.features if f in ref.columns and f in prod.columns]
    if features:
        def hashes(df):
            present = np.zeros(len(df), dtype=bool)
            for f in features:
                present |= df[f].notna().to_numpy()
            return st.row_hashes(df[features])[present]

        h_ref, h_prod = hashes(ref), hashes(prod)
        n, share = st.shared_share(h_prod, h_ref)
        chance = st.duplicate_share(h_ref)
        out["identical_features"] = {
            "shared_rows": n, "share_of_production": share, "chance_share": chance,
            "excess_share": (share - chance) if np.isfinite(share) and np.isfinite(chance) else np.nan}
    return out


def _mi_rows(n: int, seed: int) -> np.ndarray:
    if n <= MI_ROWS:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed + 1).choice(n, MI_ROWS, replace=False))


def feature_table(incident, *, n_resamples: int = 200) -> tuple[pd.DataFrame, dict]:
    """One row per feature with every statistic the verdict uses (see the module docstring).

    Point values (power on each side, the drop, information, skill, share of the model, distinct
    share) are computed for every feature at once (:func:`~mlinvestigate.stats.leakage.cross_validated_powers`).
    Bootstrap intervals, mutual information and monotonicity, which cost a model fit or a resample
    each, are computed for the features the verdict can rest on (implausibly strong by their point
    values, or identifier-like and predictive) and the :data:`DETAIL_FEATURES` strongest offline;
    the other rows leave them empty (they cannot change the verdict: a feature below every power
    threshold is never a leak).
    """
    seed = int(incident.threshold("general", "seed"))
    n_sample = int(incident.threshold("leakage", "sample_rows"))
    kind = incident.kind
    ref_all = incident.reference
    ref = sample_rows(ref_all[ref_all[incident.target].notna().to_numpy()], n_sample, seed=seed)
    prod = sample_rows(incident.labelled_production, n_sample, seed=seed)
    y_ref, y_prod = _target(incident, ref), _target(incident, prod)
    keep_ref, keep_prod = pd.notna(y_ref), pd.notna(y_prod)
    ref, y_ref = ref[keep_ref], y_ref[keep_ref]
    prod, y_prod = prod[keep_prod], y_prod[keep_prod]
    live = _enough_labels(incident, y_prod)
    model_ref, model_is_score = _model_power(incident, ref, y_ref)
    model_prod = _model_power(incident, prod, y_prod)[0] if live else np.nan
    model_skill = st.skill(model_ref, kind)
    mi_idx = _mi_rows(len(ref), seed)
    matched = (np.sort(np.random.default_rng(seed + 2).choice(len(ref), len(prod), replace=False))
               if live and len(prod) < len(ref) else None)

    features = list(incident.features)
    types = [incident.feature_types[f] for f in features]
    exact = np.array([t in ("categorical", "boolean") for t in types], dtype=bool)
    X_ref = _matrix(ref, features)
    power = {}
    power["reference"], information = st.cross_validated_powers(X_ref, y_ref, kind=kind, exact=exact, seed=seed)
    if live:
        X_prod = _matrix(prod, features)
        power["production"], _ = st.cross_validated_powers(X_prod, y_prod, kind=kind, exact=exact, seed=seed)
        # The drop compares like with like: reference power on as many rows as production has.
        power["matched"] = (st.cross_validated_powers(X_ref[matched], y_ref[matched], kind=kind, exact=exact,
                                                      seed=seed)[0]
                            if matched is not None else power["reference"])
    table = pd.DataFrame({"feature": features, "type": types, "reference": power["reference"],
                          "reference_low": np.nan, "reference_high": np.nan, "information": information})
    if live:
        table = table.assign(production=power["production"], production_low=np.nan, production_high=np.nan,
                             drop=power["matched"] - power["production"], drop_low=np.nan, drop_high=np.nan)
    else:
        table = table.assign(production=np.nan, production_low=np.nan, production_high=np.nan,
                             drop=np.nan, drop_low=np.nan, drop_high=np.nan)
    f_skill = st.skill(table["reference"].to_numpy(float), kind)
    share = (f_skill / model_skill if np.isfinite(model_skill) and model_skill > 0.05
             else np.full(len(features), np.nan))
    ordered = np.array([t in ("numeric", "datetime") for t in types], dtype=bool)
    unique = np.array([_distinct_share(X_ref[:, j]) if ordered[j] else np.nan for j in range(len(features))])
    table = table.assign(mutual_information=np.nan, mi_share=np.nan, skill=f_skill, share_of_model=share,
                         unique_share=unique, monotonicity=np.nan)

    detail = _detail_rows(incident, table, context_is_score=model_is_score)
    for j in detail:
        x_ref = X_ref[:, j]
        p_ref = st.cross_validated_power(x_ref, y_ref, kind=kind, exact=bool(exact[j]), n_resamples=n_resamples,
                                         seed=seed)
        row = {"reference_low": p_ref.low, "reference_high": p_ref.high}
        if live:
            p_prod = st.cross_validated_power(X_prod[:, j], y_prod, kind=kind, exact=bool(exact[j]),
                                              n_resamples=n_resamples, seed=seed)
            p_match = (st.cross_validated_power(x_ref[matched], y_ref[matched], kind=kind, exact=bool(exact[j]),
                                                n_resamples=n_resamples, seed=seed)
                       if matched is not None else p_ref)
            _, lo, hi = st.difference_interval(p_match, p_prod)
            row.update(production_low=p_prod.low, production_high=p_prod.high, drop_low=lo, drop_high=hi)
        finite = x_ref[np.isfinite(x_ref)]
        discrete = bool(exact[j]) or len(np.unique(finite)) <= DISCRETE_LEVELS
        row["mutual_information"], row["mi_share"] = st.mutual_information(
            x_ref[mi_idx], y_ref[mi_idx], kind=kind, discrete=discrete, seed=seed)
        if ordered[j]:
            row["monotonicity"] = st.identifier_profile(x_ref)[1]
        for key, value in row.items():
            table.loc[j, key] = value
    context = {"live": live, "model_reference": model_ref, "model_production": model_prod,
               "model_is_score": model_is_score, "reference_rows": len(ref), "production_rows": len(prod),
               "reference_total": int(ref_all[incident.target].notna().sum()),
               "production_total": int(incident.labelled.sum()),
               "detailed_features": len(detail)}
    return table, context


def _matrix(df: pd.DataFrame, features: list[str]) -> np.ndarray:
    """The features as one float matrix (:func:`~mlinvestigate.stats.leakage.as_numbers` per column).

    Not the capped model encoding of :mod:`mlinvestigate.stats.encoding`: single-feature power bins
    each category on its own, and a leak is often a text column with thousands of values (an
    outcome code, a case id) that a cap of the most frequent categories would fold into "other"."""
    X = np.empty((len(df), len(features)))
    for j, f in enumerate(features):
        X[:, j] = st.as_numbers(df[f])
    return X


def _distinct_share(x: np.ndarray) -> float:
    """Share of distinct values among the present ones (NaN below 3 values), as in ``identifier_profile``."""
    x = x[np.isfinite(x)]
    return len(np.unique(x)) / len(x) if len(x) >= 3 else np.nan


def _detail_rows(incident, table: pd.DataFrame, *, context_is_score: bool) -> np.ndarray:
    """Positions of the features that get intervals, mutual information and monotonicity: every
    one the verdict can rest on, and the :data:`DETAIL_FEATURES` strongest offline."""
    kind = incident.kind
    power_thr = incident.threshold("leakage", "single_feature_r2" if kind == "regression" else "single_feature_auc")
    reference = table["reference"].to_numpy(float)
    share = table["share_of_model"].to_numpy(float)
    strong = np.isfinite(reference) & (reference >= power_thr)
    dominant = context_is_score & np.isfinite(share) & (share >= incident.threshold("leakage", "share_of_full_model"))
    unique = table["unique_share"].to_numpy(float)
    identifier = (np.isfinite(unique) & (unique >= IDENTIFIER_UNIQUE)
                  & (table["skill"].to_numpy(float) >= incident.threshold("leakage", "identifier_skill")))
    top = np.argsort(-np.nan_to_num(reference, nan=-np.inf), kind="stable")[:DETAIL_FEATURES]
    chosen = strong | dominant | identifier
    chosen[top] = True
    return np.flatnonzero(chosen)


_COLUMNS = ["feature", "type", "reference", "reference_low", "reference_high", "information", "production",
            "production_low", "production_high", "drop", "drop_low", "drop_high", "mutual_information",
            "mi_share", "skill", "share_of_model", "unique_share", "monotonicity", "status", "reasons",
            "confirmed", "late", "collapsed", "function", "unconfirmed", "identifier"]


def _judge(incident, table: pd.DataFrame, context: dict, available: dict) -> pd.DataFrame:
    """Add ``status`` (leak / suspicious / holds live / "") and ``reasons`` to the feature table."""
    kind = incident.kind
    th = {k: incident.threshold("leakage", k) for k in
          ("single_feature_auc", "single_feature_r2", "share_of_full_model", "collapse",
           "target_function", "identifier_skill")}
    power_thr = th["single_feature_r2"] if kind == "regression" else th["single_feature_auc"]
    chance = 0.0 if kind == "regression" else 0.5
    flags = {k: [] for k in ("late", "collapsed", "function", "unconfirmed", "identifier")}
    statuses, reasons = [], []
    for r in table.itertuples(index=False):
        late = _late(available.get(r.feature, {}))
        strong = np.isfinite(r.reference) and r.reference >= power_thr
        dominant = (context["model_is_score"] and np.isfinite(r.share_of_model)
                    and r.share_of_model >= th["share_of_full_model"])
        implausible = strong or dominant
        holds = bool(np.isfinite(r.drop_high) and r.drop_high < th["collapse"])
        f = {"late": bool(np.isfinite(late) and late > 0),
             # Dominance alone is relative to the model, so it needs a collapse all the way to chance.
             "collapsed": bool(implausible and np.isfinite(r.drop) and r.drop >= th["collapse"]
                               and np.isfinite(r.drop_low) and r.drop_low > 0
                               and (strong or r.production_low <= chance)),
             # A feature that holds up on labelled production rows is not what broke live.
             "function": bool(implausible and np.isfinite(r.information)
                              and r.information >= th["target_function"] and not holds),
             "unconfirmed": bool(implausible and not context["live"] and np.isfinite(r.reference_low)
                                 and r.reference_low >= power_thr),
             "identifier": bool(np.isfinite(r.unique_share) and r.unique_share >= IDENTIFIER_UNIQUE
                                and r.monotonicity >= IDENTIFIER_MONOTONE and r.skill >= th["identifier_skill"]
                                and np.isfinite(r.reference_low) and r.reference_low > chance)}
        why = [text for key, text in (
            ("late", f"known after the prediction time in {late:.1%} of rows"),
            ("collapsed", "implausibly strong offline and collapses in production"),
            ("function", "nearly determines the target"),
            ("unconfirmed", "implausibly strong offline; no production labels to check it live"),
            ("identifier", "identifier-like column (unique, ordered like the rows) that predicts the target"))
            if f[key]]
        if why:
            status = "leak"
        elif implausible and holds:
            status, why = "holds live", ["strong offline and just as strong in production"]
        elif implausible:
            status, why = "suspicious", ["implausibly strong offline; production labels cannot confirm or clear it"]
        else:
            status = ""
        for key in flags:
            flags[key].append(f[key])
        statuses.append(status)
        reasons.append("; ".join(why))
    confirmed = np.array(flags["late"]) | np.array(flags["collapsed"])
    return table.assign(status=statuses, reasons=reasons, confirmed=confirmed, **flags)


def run(incident, *, n_resamples: int = 200) -> Result:
    """Look for features that leak the target, and rows shared between reference and production.

    Returns
    -------
    Result
        Tables ``features`` (every statistic per feature, strongest offline first),
        ``model`` (the logged model's own power), ``shared_rows``, ``period``, ``available_at``.
    """
    seed = int(incident.threshold("general", "seed"))
    kind = incident.kind
    metric = "r2" if kind == "regression" else "roc_auc"
    metric_label = "R²" if kind == "regression" else "ROC AUC"
    available = _available_at(incident)
    shared = _shared_rows(incident)
    ts = incident.columns.timestamp
    period = (st.period_overlap(incident.reference[ts], incident.production[ts])
              if ts and ts in incident.reference.columns and ts in incident.production.columns else {})

    if incident.features:
        table, context = feature_table(incident, n_resamples=n_resamples)
        table = _judge(incident, table, context, available)
        table = table.sort_values(["reference", "feature"], ascending=[False, True], na_position="last",
                                  ignore_index=True)
    else:
        table, context = pd.DataFrame(columns=_COLUMNS), {
            "live": False, "model_reference": np.nan, "model_production": np.nan, "model_is_score": False,
            "reference_rows": 0, "production_rows": 0, "reference_total": 0, "production_total": 0}

    # Features named in available_at that are not model features still count when they arrive late.
    extra_late = [f for f, e in available.items()
                  if f not in set(table["feature"]) and np.isfinite(_late(e)) and _late(e) > 0]

    leaks = table[table["status"] == "leak"].copy()
    leaks["rank_confirmed"] = leaks["confirmed"].astype(int)
    leaks["rank_drop"] = leaks.get("drop", pd.Series(np.nan, index=leaks.index)).fillna(0)
    leaks = leaks.sort_values(["rank_confirmed", "rank_drop", "reference"], ascending=False)
    culprits = list(leaks["feature"]) + extra_late
    suspicious = table[table["status"] == "suspicious"]

    thr_shared = incident.threshold("leakage", "shared_rows")
    shared_flags = []
    if "id" in shared and np.isfinite(shared["id"]["share_of_production"]) and \
            shared["id"]["share_of_production"] >= thr_shared:
        shared_flags.append(f"{shared['id']['share_of_production']:.1%} of production rows have an id "
                            f"({shared['id']['column']}) that is also in reference")
    ident = shared.get("identical_features", {})
    if np.isfinite(ident.get("excess_share", np.nan)) and ident["excess_share"] >= thr_shared:
        shared_flags.append(f"{ident['share_of_production']:.1%} of production rows repeat a reference row "
                            f"feature for feature (about {ident['chance_share']:.1%} would by chance)")
    if period and period["reference_share_in_production_period"] >= thr_shared:
        shared_flags.append(f"{period['reference_share_in_production_period']:.1%} of reference rows are dated "
                            "inside the production period")

    model_ref = context["model_reference"]
    strongest = table.head(5)
    if culprits:
        verdict = "detected"
        severity = "critical" if (leaks["confirmed"].any() or extra_late) else "warning"
        summary = _leak_summary(leaks, extra_late, available, metric_label)
        if shared_flags:
            summary += " Also: " + "; ".join(shared_flags) + "."
        strength = _strength(leaks, bool(extra_late))
    elif shared_flags:
        verdict, severity, strength = "detected", "warning", 0.3
        summary = ("No feature leaks the target, but " + "; ".join(shared_flags)
                   + ": the offline evaluation is not cleanly separated from production and may overstate "
                   "how the model does live.")
    elif len(suspicious):
        verdict, severity, strength = "inconclusive", "warning", 0.0
        r = suspicious.iloc[0]
        summary = (f"{r['feature']} is implausibly strong offline ({metric_label} {r['reference']:.3f}) but "
                   f"the labelled production rows ({context['production_rows']}) cannot tell whether it "
                   "holds live; more production labels would settle it.")
    else:
        verdict, severity, strength = "clear", "info", 0.0
        held = table[table["status"] == "holds live"]
        if len(held):
            top = held.iloc[0]
            summary = (f"No feature leaks: {top['feature']} is implausibly strong offline ({metric_label} "
                       f"{top['reference']:.3f}) but just as strong on labelled production rows "
                       f"({top['production']:.3f}), which a leak would not be.")
        elif len(table) and np.isfinite(table["reference"].iloc[0]):
            top = table.iloc[0]
            model_part = (f" against the model's {model_ref:.3f}" if np.isfinite(model_ref) else "")
            summary = (f"No feature is implausibly strong offline: the strongest alone, {top['feature']}, "
                       f"reaches {metric_label} {top['reference']:.3f}{model_part}.")
        elif not incident.features:
            verdict = "skipped"
            summary = ("Leakage needs features: production and reference share no feature column "
                       "(check columns.features in the spec).")
        else:
            verdict, severity = "inconclusive", "warning"
            summary = "No feature could be assessed for leakage: too few labelled reference rows or classes."

    flagged = table[table["status"] != ""]
    columns = ["reference", "reference_low", "reference_high", "production", "production_low",
               "production_high", "drop", "drop_low", "drop_high", "information", "mutual_information",
               "mi_share", "share_of_model", "unique_share", "monotonicity", "status", "reasons"]
    evidence = LeakageEvidence(
        metric=metric,
        model_power={"reference": model_ref, "production": context["model_production"],
                     "from_score": context["model_is_score"]},
        features={r["feature"]: {c: r[c] for c in columns if c in r} for _, r in flagged.iterrows()},
        strongest=[{"feature": r["feature"], "reference": r["reference"], "production": r.get("production")}
                   for _, r in strongest.iterrows()],
        shared_rows=shared,
        period=period,
        available_at=available,
        sample={"reference_rows": context["reference_rows"], "reference_labelled": context["reference_total"],
                "production_rows": context["production_rows"],
                "production_labelled": context["production_total"], "seed": seed,
                "features": len(table), "detailed_features": context.get("detailed_features", len(table))},
        thresholds={k: incident.threshold("leakage", k) for k in
                    ("single_feature_auc", "single_feature_r2", "share_of_full_model", "collapse",
                     "target_function", "identifier_skill", "shared_rows")},
    )
    finding = Finding(CHECK, verdict, severity, summary, culprits, evidence, strength=strength)
    model_table = pd.DataFrame([{"set": "reference", metric_label: model_ref, "rows": context["reference_rows"]},
                                {"set": "production (labelled)", metric_label: context["model_production"],
                                 "rows": context["production_rows"]}])
    tables = {"features": table.drop(columns=["confirmed", "late", "collapsed", "function", "unconfirmed",
                                              "identifier"], errors="ignore"), "model": model_table,
              "shared_rows": _shared_table(shared), "period": _period_table(period),
              "available_at": _available_table(available)}
    data = {"metric": metric, "metric_label": metric_label, "kind": kind, "live": context["live"],
            "model_reference": model_ref, "model_production": context["model_production"],
            "power_threshold": incident.threshold("leakage", "single_feature_r2" if kind == "regression"
                                                  else "single_feature_auc"),
            "chance": 0.0 if kind == "regression" else 0.5}
    return Result(finding, tables=tables, data=data)


def _strength(leaks: pd.DataFrame, late: bool) -> float:
    """0–1: a confirmed leak ranks by how much power it loses live, an unconfirmed one stays low."""
    if late or (len(leaks) and not leaks["confirmed"].iloc[0]):
        return 1.0 if late else 0.4
    drop = leaks["drop"].iloc[0]
    return float(np.clip(0.5 + (drop if np.isfinite(drop) else 0.0), 0.5, 1.0))


def _leak_summary(leaks: pd.DataFrame, extra_late: list[str], available: dict, metric_label: str) -> str:
    n = len(leaks) + len(extra_late)
    if not len(leaks):
        f = extra_late[0]
        lead = f"{n} features became known after the prediction time; " if n > 1 else ""
        return (f"{lead}{f}'s value became known after the prediction time in {_late(available[f]):.1%} "
                "of rows: the model was given information from the future.")
    r = leaks.iloc[0]
    name = f"{n} features look like leaks; the strongest, {r['feature']}," if n > 1 else r["feature"]
    power = f"{metric_label} {r['reference']:.3f}"
    if np.isfinite(r["share_of_model"]):
        power += f", {min(r['share_of_model'], 9.99):.0%} of the model's own skill"
    if r["late"]:
        return (f"{name} was known only after the prediction time in {_late(available[r['feature']]):.1%} of "
                f"rows ({power} offline): the model was given information from the future.")
    if r["collapsed"]:
        return (f"{name} alone predicts the target offline ({power}) but not in production "
                f"({metric_label} {r['production']:.3f}): the model learned from information it does not "
                "have when it predicts live.")
    if r["function"]:
        return (f"{name} nearly determines the target offline (it removes {r['information']:.0%} of the "
                f"target's uncertainty; {power}): it looks computed from the outcome itself.")
    if r["unconfirmed"]:
        return (f"{name} alone predicts the target almost perfectly offline ({power}); production has no "
                "labels to confirm that it collapses live, but a single feature this strong is rarely honest.")
    return (f"{name} is an identifier-like column (unique values, ordered like the rows) that predicts the "
            f"target ({power}): the row order or id carries the outcome.")


def _shared_table(shared: dict) -> pd.DataFrame:
    rows = []
    if "id" in shared:
        rows.append({"match": f"same id ({shared['id']['column']})", "production rows": shared["id"]["shared_rows"],
                     "share of production": shared["id"]["share_of_production"], "share by chance": 0.0})
    if "identical_features" in shared:
        s = shared["identical_features"]
        rows.append({"match": "identical feature values", "production rows": s["shared_rows"],
                     "share of production": s["share_of_production"], "share by chance": s["chance_share"]})
    return pd.DataFrame(rows)


def _period_table(period: dict) -> pd.DataFrame:
    if not period:
        return pd.DataFrame()
    return pd.DataFrame([{"set": "reference", "first row": period["reference_start"],
                          "last row": period["reference_end"]},
                         {"set": "production", "first row": period["production_start"],
                          "last row": period["production_end"]}])


def period_note(result) -> str:
    """One sentence on how the reference period relates to the production period."""
    period = CONTRACT.evidence_of(result.finding).period or {}
    if not period:
        return "No timestamp column (columns.timestamp) in both files, so the periods were not compared."
    share = period["reference_share_in_production_period"]
    if share == 0:
        return "Every reference row is dated before the first production row: a clean out-of-time evaluation."
    return (f"{share:.1%} of reference rows are dated at or after the first production row; the periods "
            f"overlap for {period['overlap_days']:.1f} days.")


def _available_table(available: dict) -> pd.DataFrame:
    rows = []
    for f, e in available.items():
        for role in ("reference", "production"):
            if role in e:
                rows.append({"feature": f, "known at (column)": e["column"], "set": role,
                             "rows known too late": e[role]["late_rows"], "share": e[role]["late_share"],
                             "rows compared": e[role]["rows_compared"]})
        if "note" in e:
            rows.append({"feature": f, "known at (column)": e["column"], "set": "", "note": e["note"]})
    return pd.DataFrame(rows)


def _interval_text(lo: pd.Series, hi: pd.Series) -> list[str]:
    return [f"{a:.3f} – {b:.3f}" if np.isfinite(a) and np.isfinite(b) else "–"
            for a, b in zip(lo.astype(float), hi.astype(float), strict=True)]


def page_table(result) -> pd.DataFrame:
    """The feature table as the page shows it: readable column names, intervals as text."""
    t = result.to_df("features")
    if t.empty or "reference_low" not in t:
        return pd.DataFrame()
    label = result.data["metric_label"]
    return pd.DataFrame({
        "feature": t["feature"], "type": t["type"],
        f"{label}, reference": t["reference"],
        "95% interval": _interval_text(t["reference_low"], t["reference_high"]),
        f"{label}, production": t["production"],
        "95% interval ": _interval_text(t["production_low"], t["production_high"]),
        "drop": t["drop"],
        "target uncertainty removed": t["information"],
        "mutual information (nats)": t["mutual_information"],
        "share of the model's skill": t["share_of_model"],
        "status": t["status"], "why": t["reasons"]})


def sample_note(result) -> str:
    """The sentence that tells the reader what was sampled."""
    s = CONTRACT.evidence_of(result.finding).sample
    text = (f"Single-feature power and mutual information use a seeded sample (seed {s['seed']}) of "
            f"{s['reference_rows']:,} of {s['reference_labelled']:,} labelled reference rows and "
            f"{s['production_rows']:,} of {s['production_labelled']:,} labelled production rows "
            f"(mutual information on at most {MI_ROWS:,} of them). Shared rows and periods use every row.")
    total, detailed = s.get("features", 0), s.get("detailed_features", 0)
    if detailed < total:
        text += (f" Bootstrap intervals, mutual information and monotonicity are computed for {detailed:,} of the "
                 f"{total:,} features: every one strong enough offline to be a leak, or identifier-like, and "
                 f"the {DETAIL_FEATURES} strongest; the others fall below every leakage threshold, so their "
                 "point values alone settle them.")
    return text


# --- contract -----------------------------------------------------------------------------------
# the defaults behind the verdict, overridable under thresholds.leakage (docs/thresholds.md)
THRESHOLDS = {
    "single_feature_auc": Threshold(0.95, "a feature that alone reaches this ROC AUC on reference"),
    "single_feature_r2": Threshold(0.9,
                         "regression: a feature that alone reaches this cross-validated R² on reference"),
    "share_of_full_model": Threshold(0.95, "…or this share of the full model's skill"),
    "collapse": Threshold(0.15, "drop in single-feature power from reference to production"),
    "shared_rows": Threshold(0.01,
                         "excess share of production rows also in reference (ids or identical rows)"),
    "target_function": Threshold(0.95,
                         "share of the target's uncertainty one feature removes: near-deterministic"),
    "identifier_skill": Threshold(0.2,
                         "an id-like column predicting the target this well (Gini, or R²) leaks order"),
    "sample_rows": Threshold(20_000, "seeded sample for single-feature power (an AUC within about ±0.01)"),
}
THRESHOLD_NOTES = (
    "A feature is a leak only when it is implausibly strong offline *and* the evidence confirms it "
    "(collapse in production, a near-deterministic mapping, or values known after the prediction time)."
)


class LeakageEvidence(Evidence):
    """The leakage finding's evidence."""

    metric: str | None = None  # how a single feature's power is measured: roc_auc or r2
    model_power: dict[str, Any] | None = None  # the model's own power: reference, production, from_score
    features: dict[str, dict[str, Any]] | None = None  # flagged feature → power on each side, drop, status, reasons
    strongest: list[dict[str, Any]] | None = None  # the strongest single features, flagged or not
    shared_rows: dict[str, Any] | None = None  # rows (ids, identical features) shared by reference and production
    period: dict[str, Any] | None = None  # the time ranges of the two sides
    available_at: dict[str, Any] | None = None  # leakage.available_at: late-known values per feature
    sample: dict[str, Any] | None = None  # rows used per side, seed, features assessed
    thresholds: dict[str, float] | None = None


def _actions(finding: dict, ctx: Context) -> list[dict]:
    return [{"check": CHECK, "action": "Retrain without the leaking features",
             "detail": "drop " + ", ".join(finding.get("culprits", [])[:5])
                       + "; the offline metric was inflated and is not a baseline",
             "why": finding["summary"]}]


CONTRACT = register(CheckContract(
    id=CHECK, thresholds=THRESHOLDS, threshold_notes=THRESHOLD_NOTES,
    title="Data leakage", question="Did a feature learn from the future?", stage="cause",
    module=__name__, evidence=LeakageEvidence,
    explains=(CoversColumns("drift", reason="a leaking feature is not available the same way in production"),
              CoversColumns("health", symptom_kinds=("out_of_range", "unseen"),
                            reason="a leaking feature takes other values in production"),
              WhenSymptomBlamesOnly("labels", frozenset({"definition", "label noise"}), priority=10,
                                    reason="a leak inflates offline agreement between score and label")),
    actions=_actions,
    checklist=(("data", "No feature learned from the future"),),
    cost=6))
