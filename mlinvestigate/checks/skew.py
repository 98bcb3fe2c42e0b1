"""Training-serving skew: are features computed the same way when the model is served?

The evidence is ``serving.offline``: production rows whose features the training pipeline
recomputed, keyed by ``columns.id``. Each production row is joined to its recomputed twin and every
feature is compared value by value (:mod:`mlinvestigate.stats.skew`): exact and near-exact match
rates (relative difference ≤ ``thresholds.skew.match_tolerance``), the distribution of differences,
and a named pattern for the mismatches.

A feature is **skewed** (a culprit) when the lower end of the Wilson interval of its mismatch rate
is above ``thresholds.skew.mismatch_rate``. Culprits are ranked by the share of model predictions
they flip on their own (when the model file is trusted, see :mod:`mlinvestigate.model`), then by
mismatch rate.

Evidence
--------
``features``
    Culprit → ``pattern`` plus the numbers behind it, for example
    ``{"pattern": "scale", "factor": 100.0, "match_rate": 0.0, "exact_match_rate": 0.0,
    "mismatch_rate": 1.0, "rows": 5730}``. Pattern keys: ``scale`` → ``factor``; ``offset`` →
    ``offset``; ``capped`` → ``cap``; ``floored`` → ``floor``; ``default`` → ``value``;
    ``rounded`` → ``step``; ``truncated`` → ``median_ratio``; ``missing`` → ``side`` (the side
    that is missing) and ``fill_value``; ``category_mapping`` → ``mapping`` (offline → served);
    ``other``. Datetime features are compared in seconds.
``joined_rows``, ``unjoined_production`` (+ ``_share``), ``unjoined_offline``, ``duplicate_ids``
    The join, in both directions.
``impact``
    ``available`` and ``reason``; when the model could be scored: ``rows_scored``, ``flips``,
    ``flip_share`` (predictions that change between offline and served features) and
    ``per_feature`` (flip share when only that feature is served).
``unit_change_hints``
    Without ``serving.offline``: numeric features whose production quantiles are a power of ten
    times reference quantiles. Hints only, never culprits.

Without ``serving.offline`` or ``columns.id`` the verdict is ``skipped`` and the summary says what to
provide.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ..contract import (
    CheckContract,
    Context,
    CoversColumns,
    Evidence,
    Requirement,
    Threshold,
    WhenSymptomBlamesOnly,
    register,
)
from ..data import sample_rows
from ..display import number, scalar, text
from ..findings import Finding, Result
from ..stats import skew as st
from ..stats.intervals import wilson
from ..stats.leakage import as_numbers
from ..stats.triage_time import parse_datetime

CHECK = "skew"
MIN_JOINED = 30      # joined rows below which no verdict is given
PAIR_POINTS = 5_000  # served/offline pairs kept per feature for the scatter plots
HINT_ROWS = 200_000  # rows per side used for unit-change hints


def _values(s: pd.Series, ftype: str) -> np.ndarray:
    """Comparable values: floats for numbers (datetimes in seconds), text for categories."""
    if ftype == "numeric":
        if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
            s = pd.to_numeric(s.astype(object), errors="coerce")
        return as_numbers(s)
    if ftype == "datetime":
        s = parse_datetime(s)
        return as_numbers(s) / 1e9
    if isinstance(s.dtype, pd.CategoricalDtype):
        names = np.append(s.cat.categories.astype(str).to_numpy(dtype=object), None)
        return names[s.cat.codes.to_numpy()]  # code -1 (missing) picks the trailing None
    return s.astype("string").to_numpy(dtype=object, na_value=None)


def _keys(a: pd.Series, b: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Join keys of one type on both sides (1 in one file and "1" or 1.0 in the other still join)."""
    def integral(s):
        v = s.dropna()
        return pd.api.types.is_numeric_dtype(s) and (len(v) == 0 or bool(np.all(np.mod(v, 1) == 0)))

    if integral(a) and integral(b):
        return a.astype("Int64"), b.astype("Int64")
    if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
        return a.astype(float), b.astype(float)

    def text(s):
        return (s.astype("Int64") if integral(s) else s).astype("string")

    return text(a), text(b)


def _value(v) -> str:
    """A data value in a sentence: texts quoted, numbers plain (never a numpy repr)."""
    v = scalar(v)
    return repr(v) if isinstance(v, str) else text(v)


def _describe(p: dict, ftype: str) -> str:
    """The pattern in words (datetime differences are in seconds)."""
    kind = p["pattern"]
    if kind == "scale":
        return f"served = {p['factor']:g} × offline (a unit change)"
    if kind == "offset":
        unit = " s" if ftype == "datetime" else ""
        return f"served = offline {'+' if p['offset'] >= 0 else '−'} {abs(p['offset']):g}{unit}"
    if kind == "capped":
        return f"served = min(offline, {p['cap']:g}): capped at {p['cap']:g}"
    if kind == "floored":
        return f"served = max(offline, {p['floor']:g}): floored at {p['floor']:g}"
    if kind == "default":
        return f"served as the constant {_value(p['value'])} where it differs"
    if kind == "rounded":
        return f"served rounded to {p['step']:g}"
    if kind == "truncated":
        return "served lower than offline without a common cap (a shorter window or truncation)"
    if kind == "missing":
        if p["side"] == "served":
            return "missing when served although offline has a value"
        fill = "" if p.get("fill_value") is None else f", served as {_value(p['fill_value'])}"
        return f"missing offline but filled when served{fill} (a different default)"
    if kind == "category_mapping":
        pairs = ", ".join(f"{k} → {v}" for k, v in list(p["mapping"].items())[:5])
        more = f" and {len(p['mapping']) - 5} more" if len(p["mapping"]) > 5 else ""
        return f"categories mapped differently: {pairs}{more}"
    if kind == "match":
        return "same values"
    return "differs without a common pattern"


def _unit_hints(incident) -> dict:
    seed = int(incident.threshold("general", "seed"))
    ref = sample_rows(incident.reference, HINT_ROWS, seed=seed)
    prod = sample_rows(incident.production, HINT_ROWS, seed=seed)
    hints = {}
    for f in incident.features:
        if incident.feature_types[f] != "numeric":
            continue
        found = st.unit_change(as_numbers(ref[f]), as_numbers(prod[f]))
        if found:
            hints[f] = found
    return hints


DUPLICATE_RULE = ("one row per id: repeats identical in every compared feature count once (the first in "
                  "file order); ids whose repeated rows disagree are left out, since which of them was "
                  "recomputed offline is unknown")


def one_row_per_key(keys: pd.Series, values: pd.DataFrame) -> tuple[np.ndarray, dict]:
    """The rows a join on ``keys`` uses, by :data:`DUPLICATE_RULE`, and what was dropped.

    Returns the boolean mask of kept rows and ``repeated_rows`` (rows whose key repeats an earlier
    row's), ``identical_dropped`` (repeats identical to the kept row), ``ambiguous`` (keys whose
    rows disagree, all left out) and ``ambiguous_rows``.
    """
    present = keys.notna().to_numpy()
    first = present & ~keys.duplicated(keep="first").to_numpy()
    repeated = present & keys.duplicated(keep=False).to_numpy()
    info = {"repeated_rows": int(present.sum() - first.sum()), "identical_dropped": 0,
            "ambiguous": [], "ambiguous_rows": 0}
    if not repeated.any():
        return first, info
    sub = values.loc[repeated] if len(values.columns) else pd.DataFrame(index=values.index[repeated])
    try:
        fingerprint = pd.util.hash_pandas_object(sub, index=False).to_numpy()
    except TypeError:  # cells holding lists or dicts: compare their text
        fingerprint = pd.util.hash_pandas_object(sub.astype(str), index=False).to_numpy()
    if not len(sub.columns):
        fingerprint = np.zeros(int(repeated.sum()), dtype=np.uint64)
    versions = pd.Series(fingerprint).groupby(keys[repeated].to_numpy()).nunique()
    ambiguous = versions.index[versions.to_numpy() > 1]
    bad = keys.isin(ambiguous).to_numpy() & present
    keep = first & ~bad
    info.update(identical_dropped=int(info["repeated_rows"] - (bad.sum() - (first & bad).sum())),
                ambiguous=list(ambiguous), ambiguous_rows=int(bad.sum()))
    return keep, info


def _duplicate_rows(info: dict, rows: int, side: str) -> list[dict]:
    out = []
    if info["identical_dropped"]:
        out.append({"direction": f"{side} rows dropped as repeats of an identical row (same id)",
                    "rows": info["identical_dropped"], "share of the file": info["identical_dropped"] / max(rows, 1),
                    "example ids": ""})
    if info["ambiguous_rows"]:
        out.append({"direction": f"{side} rows left out: their id repeats with different values",
                    "rows": info["ambiguous_rows"], "share of the file": info["ambiguous_rows"] / max(rows, 1),
                    "example ids": ", ".join(map(str, info["ambiguous"][:5]))})
    return out


def _duplicate_caveat(dups: dict) -> str:
    parts = []
    for side in ("production", "offline"):
        d = dups[side]
        if d["identical_dropped"]:
            parts.append(f"{number(d['identical_dropped'])} repeated {side} row(s) were counted once")
        if d["ambiguous_rows"]:
            parts.append(f"{number(d['ambiguous_rows'])} {side} row(s) whose id repeats with different "
                         "values were left out")
    return (" Duplicate ids: " + "; ".join(parts) + ".") if parts else ""


def _skipped(incident, reason: str) -> Result:
    hints = _unit_hints(incident)
    summary = reason
    if hints:
        summary += (f" Hint: production values of {', '.join(hints)} look like reference values × "
                    f"{', '.join(format(h['factor'], 'g') for h in hints.values())} (a possible unit change).")
    finding = Finding(CHECK, "skipped", "info", summary, evidence=SkewEvidence(unit_change_hints=hints))
    table = pd.DataFrame([{"feature": f, "factor": h["factor"],
                           "quantile_ratios": ", ".join(f"{r:.4g}" for r in h["ratios"])}
                          for f, h in hints.items()])
    return Result(finding, tables={**_empty_tables(), "unit_change_hints": table}, data={"pairs": {}})


def _empty_tables() -> dict[str, pd.DataFrame]:
    """Every table the page shows, empty: a skipped or inconclusive result still renders."""
    return {name: pd.DataFrame() for name in ("features", "mappings", "unjoined", "impact", "unit_change_hints")}


def _model_frame(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Model inputs with categories as plain objects (how pipelines are usually fitted)."""
    out = df[columns].copy()
    for c in columns:
        if isinstance(out[c].dtype, pd.CategoricalDtype):
            out[c] = out[c].astype(object).where(out[c].notna(), np.nan)
    return out


def _impact(incident, served: pd.DataFrame, offline: pd.DataFrame, culprits: list[str]) -> dict:
    """Predictions that change when the model sees the served instead of the offline features."""
    from ..model import load_model, model_status

    status = model_status(incident)
    if not status.trusted:
        return {"available": False, "reason": status.reason}
    try:
        model = load_model(incident)
    except Exception as exc:  # noqa: BLE001 - a model that cannot be loaded leaves the rest of the check intact
        return {"available": False, "model_failed": True, "reason": str(exc)}
    names = getattr(model, "feature_names_in_", None)
    columns = [str(c) for c in names] if names is not None else list(incident.features)
    missing = [c for c in columns if c not in served.columns]
    if missing:
        return {"available": False, "reason": f"the model needs columns missing from production: {missing[:5]}"}
    seed = int(incident.threshold("general", "seed"))
    n = int(incident.threshold("skew", "sample_rows"))
    idx = np.sort(np.random.default_rng(seed).choice(len(served), min(n, len(served)), replace=False))
    srv = _model_frame(served.iloc[idx], columns)
    off = _model_frame(offline.iloc[idx], columns)
    for c in columns:  # features the offline file lacks are scored as served on both sides
        if c not in offline.columns:
            off[c] = srv[c]

    try:
        # One thread: OpenMP tree ensembles predict ~10× slower when the cores are shared.
        with threadpool_limits(1):
            return _flips(incident, model, status, srv, off, columns, culprits)
    except Exception as exc:  # noqa: BLE001 - the model may reject these inputs; say so instead of failing
        return {"available": False, "model_failed": True,
                "reason": f"the model could not score the joined rows: {type(exc).__name__}: {exc}"}


def _flips(incident, model, status, srv: pd.DataFrame, off: pd.DataFrame, columns: list[str],
           culprits: list[str]) -> dict:
    def changed(a, b) -> np.ndarray:
        if incident.kind == "regression":
            a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
            return ~np.isclose(a, b, rtol=1e-6, atol=1e-9)
        return np.asarray(a, dtype=object) != np.asarray(b, dtype=object)

    base = model.predict(off)
    flips = changed(base, model.predict(srv))
    per_feature = {}
    for f in culprits:
        if f in columns:
            mixed = off.copy()
            mixed[f] = srv[f].to_numpy()
            per_feature[f] = float(changed(base, model.predict(mixed)).mean())
    lo, hi = wilson(flips.sum(), len(flips))
    return {"available": True, "reason": status.reason, "rows_scored": int(len(flips)),
            "flips": int(flips.sum()), "flip_share": float(flips.mean()), "flip_ci": [float(lo), float(hi)],
            "per_feature": per_feature,
            "meaning": "predictions that change" if incident.kind == "regression" else "predicted classes that flip"}


def run(incident) -> Result:
    """Compare served and offline-recomputed features of the same production rows.

    Returns
    -------
    Result
        Tables ``features`` (one row per compared feature), ``mappings`` (remapped categories),
        ``unjoined`` and ``impact``; ``data["pairs"]`` holds sampled (offline, served) values of
        the skewed features for the plots.
    """
    ident = incident.columns.id
    offline = incident.offline
    if offline is None and not ident:
        return _skipped(incident, "Skew needs serving.offline in the spec (production rows with their features "
                        "recomputed by the training pipeline) and columns.id (the row key that joins them).")
    if offline is None:
        return _skipped(incident, "Skew needs serving.offline in the spec: production rows with their features "
                        f"recomputed offline by the training pipeline, keyed by columns.id ({ident}).")
    if not ident:
        return _skipped(incident, "Skew needs columns.id in the spec: the row key that joins production rows "
                        "to the recomputed rows in serving.offline.")
    prod = incident.production
    if ident not in prod.columns:
        return _skipped(incident, f"Skew needs the id column {ident!r} (columns.id) in production to join "
                        "serving.offline; production has no such column.")

    seed = int(incident.threshold("general", "seed"))
    th = {k: incident.threshold("skew", k) for k in ("match_tolerance", "mismatch_rate", "unjoined_rate",
                                                      "pattern_share")}
    k_prod, k_off = _keys(prod[ident], offline[ident])
    compared = [f for f in incident.features if f in offline.columns]
    not_in_offline = [f for f in incident.features if f not in offline.columns]
    p_keep, p_dup = one_row_per_key(k_prod, prod[compared])
    o_keep, o_dup = one_row_per_key(k_off, offline[compared])
    dup = {"production": p_dup["repeated_rows"], "offline": o_dup["repeated_rows"]}
    p_keys = pd.Index(k_prod[p_keep])
    o_keys = pd.Index(k_off[o_keep])
    served = prod.loc[p_keep, incident.features].set_axis(p_keys, axis=0)
    recomputed = offline.loc[o_keep, compared].set_axis(o_keys, axis=0)
    ambiguous = pd.Index(p_dup["ambiguous"]).union(pd.Index(o_dup["ambiguous"]))
    common = p_keys.intersection(o_keys).difference(ambiguous)
    unjoined_p = p_keys.difference(o_keys).difference(ambiguous)
    unjoined_o = o_keys.difference(p_keys).difference(ambiguous)
    served, recomputed = served.loc[common], recomputed.loc[common]
    n_prod = int(len(prod))
    lost_p = int(len(unjoined_p) + k_prod.isna().sum())
    unjoined = {"joined_rows": int(len(common)), "production_rows": n_prod, "offline_rows": int(len(offline)),
                "unjoined_production": lost_p,
                "unjoined_production_share": float(lost_p / n_prod) if n_prod else np.nan,
                "unjoined_offline": int(len(unjoined_o) + k_off.isna().sum()),
                "duplicate_ids": dup,
                "duplicates": {"rule": DUPLICATE_RULE,
                               "production": {k: v for k, v in p_dup.items() if k != "ambiguous"},
                               "offline": {k: v for k, v in o_dup.items() if k != "ambiguous"},
                               "ambiguous_ids_left_out": int(len(ambiguous))}}
    n_off = int(len(offline))
    every = getattr(getattr(incident, "aggregates", None), "offline_join", None)
    if every:  # an engine joined every row of both sides; the frames hold the sample and its twins
        n_prod, n_off = every["production_rows"], every["offline_rows"]
        unjoined.update(production_rows=n_prod, offline_rows=n_off, unjoined_production=every["unjoined_production"],
                        unjoined_production_share=every["unjoined_production"] / n_prod if n_prod else np.nan,
                        unjoined_offline=every["unjoined_offline"], joined_rows_compared=int(len(common)),
                        joined_rows=n_prod - every["unjoined_production"],
                        duplicate_ids={"production": int(incident.duplicate_ids.get("production", dup["production"])),
                                       "offline": int(every["offline_duplicate_ids"])})
    unjoined_table = pd.DataFrame([
        {"direction": "production rows without an offline twin", "rows": unjoined["unjoined_production"],
         "share of the file": unjoined["unjoined_production_share"],
         "example ids": ", ".join(map(str, list(unjoined_p[:5])))},
        {"direction": "offline rows without a production row", "rows": unjoined["unjoined_offline"],
         "share of the file": unjoined["unjoined_offline"] / max(n_off, 1),
         "example ids": "" if every else ", ".join(map(str, list(unjoined_o[:5])))}]
        + _duplicate_rows(p_dup, n_prod, "production") + _duplicate_rows(o_dup, n_off, "offline"))

    if len(common) < MIN_JOINED or not compared:
        why = (f"only {number(len(common))} of {number(n_prod)} production rows joined serving.offline on "
               f"{ident}; check that columns.id names the same key in both files" if len(common) < MIN_JOINED
               else "serving.offline shares no feature column with production")
        if len(ambiguous) and len(common) < MIN_JOINED:
            why += (f" ({number(len(ambiguous))} id(s) were left out because their repeated rows disagree, "
                    "so their twin is unknown)")
        finding = Finding(CHECK, "inconclusive", "warning", f"Skew could not be measured: {why}.",
                          evidence=SkewEvidence(**unjoined, not_in_offline=not_in_offline))
        return Result(finding, tables={**_empty_tables(), "unjoined": unjoined_table}, data={"pairs": {}})

    rng = np.random.default_rng(seed)
    pair_idx = np.sort(rng.choice(len(common), min(PAIR_POINTS, len(common)), replace=False))
    rows, patterns, pairs = [], {}, {}
    for f in compared:
        ftype = incident.feature_types[f]
        numeric = ftype in ("numeric", "datetime")
        s, o = _values(served[f], ftype), _values(recomputed[f], ftype)
        c = st.compare(s, o, tolerance=th["match_tolerance"], numeric=numeric)
        lo, hi = wilson(c["mismatches"], c["rows"])
        skewed = bool(np.isfinite(lo) and lo > th["mismatch_rate"])
        pattern = ((st.numeric_pattern(s, o, c["mismatch"], share=th["pattern_share"]) if numeric
                    else st.categorical_pattern(s, o, c["mismatch"], share=th["pattern_share"]))
                   if c["mismatches"] else {"pattern": "match"})
        diffs = st.difference_summary(s, o, c["mismatch"]) if numeric else {}
        rows.append({"feature": f, "type": ftype, "rows": c["rows"], "exact_match_rate": c["exact_match_rate"],
                     "match_rate": c["match_rate"], "mismatch_rate": c["mismatch_rate"],
                     "mismatch_low": float(lo), "mismatch_high": float(hi), "skewed": skewed,
                     "pattern": pattern["pattern"], "description": _describe(pattern, ftype),
                     "served_missing": c["served_missing"], "offline_missing": c["offline_missing"], **diffs})
        patterns[f] = pattern
        if skewed:
            pairs[f] = {"offline": o[pair_idx], "served": s[pair_idx], "type": ftype, "pattern": pattern}
    table = pd.DataFrame(rows)
    culprits = list(table.loc[table["skewed"], "feature"])
    impact = (_impact(incident, served, recomputed, culprits) if culprits
              else {"available": False, "reason": "no skewed feature to score"})
    per_feature = impact.get("per_feature", {})
    table["flip_share_alone"] = table["feature"].map(per_feature).astype(float)
    table = table.sort_values(["skewed", "flip_share_alone", "mismatch_rate", "feature"],
                              ascending=[False, False, False, True], na_position="last", ignore_index=True)
    culprits = list(table.loc[table["skewed"], "feature"])

    features_ev = {}
    for f in culprits:
        r = table.set_index("feature").loc[f]
        features_ev[f] = {**{k: v for k, v in patterns[f].items()}, "description": r["description"],
                          "match_rate": r["match_rate"], "exact_match_rate": r["exact_match_rate"],
                          "mismatch_rate": r["mismatch_rate"], "rows": int(r["rows"])}
    mappings = pd.DataFrame([{"feature": f, "offline": k, "served": v}
                             for f in culprits if patterns[f]["pattern"] == "category_mapping"
                             for k, v in patterns[f]["mapping"].items()])
    caveat = ""
    if unjoined["unjoined_production_share"] > th["unjoined_rate"]:
        caveat = (f" {unjoined['unjoined_production_share']:.0%} of production rows have no recomputed twin, "
                  "so the comparison covers only the rest.")
    if culprits:
        verdict = "detected"
        parts = [f"{f} ({features_ev[f]['description']}, {features_ev[f]['mismatch_rate']:.0%} of rows)"
                 for f in culprits[:3]]
        more = f" and {len(culprits) - 3} more" if len(culprits) > 3 else ""
        lead = (f"{len(culprits)} features are computed differently when served than in training: "
                if len(culprits) > 1 else "One feature is computed differently when served than in training: ")
        summary = lead + "; ".join(parts) + more + "."
        if impact.get("available"):
            summary += (f" Served features change {impact['flip_share']:.1%} of the model's predictions "
                        "compared with the offline ones.")
            critical = impact["flip_share"] >= th["mismatch_rate"]
        else:
            critical = table["mismatch_rate"].max() >= 10 * th["mismatch_rate"]
            if impact.get("model_failed"):
                summary += (f" The predictions these features change were not measured: {impact['reason']}.")
        severity = "critical" if critical else "warning"
        strength = float(np.clip(impact["flip_share"] * 5 if impact.get("available")
                                 else table.loc[table["skewed"], "mismatch_rate"].max(), 0.3, 1.0))
    else:
        verdict, severity, strength = "clear", "info", 0.0
        summary = (f"Served features match their offline recomputation: all {len(compared)} compared features "
                   f"agree on at least {1 - table['mismatch_rate'].max():.1%} of {len(common)} joined rows.")
    summary += caveat + _duplicate_caveat(unjoined["duplicates"])

    evidence = SkewEvidence(**unjoined, features=features_ev, compared=compared, not_in_offline=not_in_offline,
                            impact=impact, thresholds={k: float(v) for k, v in th.items()})
    changed = f"share of {impact.get('meaning', 'predictions that change')}"
    impact_table = pd.DataFrame(
        [{"served features": "all skewed features", changed: impact["flip_share"],
          "rows scored": impact["rows_scored"]}]
        + [{"served features": f"only {f}", changed: v, "rows scored": impact["rows_scored"]}
           for f, v in per_feature.items()]) if impact.get("available") else pd.DataFrame(
        [{"impact": "not measured", "reason": impact["reason"]}])
    finding = Finding(CHECK, verdict, severity, summary, culprits, evidence, strength=strength)
    return Result(finding, tables={**_empty_tables(), "features": table, "mappings": mappings,
                                   "unjoined": unjoined_table, "impact": impact_table},
                  data={"pairs": pairs, "impact": impact})


def page_table(result) -> pd.DataFrame:
    """The feature comparison as the page shows it (worst first)."""
    t = result.to_df("features")
    if t.empty:
        return t
    return pd.DataFrame({
        "feature": t["feature"], "type": t["type"], "rows compared": t["rows"],
        "exact match": t["exact_match_rate"], "near-exact match": t["match_rate"],
        "mismatch": t["mismatch_rate"],
        "95% interval": [f"{a:.3f} – {b:.3f}" for a, b in zip(t["mismatch_low"], t["mismatch_high"], strict=True)],
        "skewed": np.where(t["skewed"], "yes", ""), "pattern": t["pattern"], "what differs": t["description"],
        "median served − offline": t.get("diff_median", np.nan),
        "predictions changed by this feature alone": t["flip_share_alone"]})


def sample_note(result) -> str:
    """The sentence that tells the reader what was sampled."""
    impact = result.data.get("impact") or {}
    scored = (f" The model scored a seeded sample of {impact['rows_scored']:,} joined rows."
              if impact.get("available") else "")
    return (f"Match rates use every joined row; the plots show a seeded sample of at most {PAIR_POINTS:,} "
            f"of them.{scored}")


# --- contract -----------------------------------------------------------------------------------
# the defaults behind the verdict, overridable under thresholds.skew (docs/thresholds.md)
THRESHOLDS = {
    "match_tolerance": Threshold(1e-6, "relative difference counted as a near-exact match"),
    "mismatch_rate": Threshold(0.01, "share of joined rows that may differ before a feature is skewed"),
    "unjoined_rate": Threshold(0.05,
                         "share of production rows without an offline twin above which the comparison is partial"),
    "pattern_share": Threshold(0.9, "share of mismatching rows a named pattern (scale, cap …) must explain"),
    "sample_rows": Threshold(20_000, "seeded sample of joined rows scored by the model for prediction flips"),
}
THRESHOLD_NOTES = (
    "Served vs offline-recomputed features, joined on `columns.id`."
)


class SkewEvidence(Evidence):
    """The skew finding's evidence."""

    unit_change_hints: dict[str, dict[str, Any]] | None = None  # skipped: features that look like a unit change
    # the join of production rows to serving.offline by columns.id
    joined_rows: int | None = None
    production_rows: int | None = None
    offline_rows: int | None = None
    unjoined_production: int | None = None
    unjoined_production_share: float | None = None
    unjoined_offline: int | None = None
    # on DuckDB or Spark the counts above cover every row of both sides; the comparison covers the
    # production sample's rows joined to their twins, this many
    joined_rows_compared: int | None = None
    duplicate_ids: dict[str, int] | None = None  # production, offline: rows whose id repeats
    duplicates: dict[str, Any] | None = None  # the rule for repeated ids and what it left out
    # the comparison
    features: dict[str, dict[str, Any]] | None = None  # skewed feature → pattern, its numbers, match rates
    compared: list[str] | None = None
    not_in_offline: list[str] | None = None  # features serving.offline does not hold
    impact: dict[str, Any] | None = None  # predictions the served features change (when the model file is trusted)
    thresholds: dict[str, float] | None = None


def _actions(finding: dict, ctx: Context) -> list[dict]:
    return [{"check": CHECK, "action": "Fix the serving feature pipeline",
             "detail": "recompute " + ", ".join(finding.get("culprits", [])[:5])
                       + " the way training does (see the skew page for each pattern)",
             "why": finding["summary"]}]


CONTRACT = register(CheckContract(
    id=CHECK, thresholds=THRESHOLDS, threshold_notes=THRESHOLD_NOTES,
    title="Training-serving skew", question="Are features computed the same way offline and live?",
    stage="cause", module=__name__, evidence=SkewEvidence,
    requires=(Requirement(lambda incident: incident.offline is not None,
                          "Provide serving.offline: production rows (by columns.id) with their features "
                          "recomputed by the training pipeline."),),
    explains=(CoversColumns("drift", reason="a feature computed differently when served looks drifted"),
              CoversColumns("health", symptom_kinds=("out_of_range", "unseen"),
                            reason="a feature computed differently when served leaves the reference range"),
              WhenSymptomBlamesOnly("labels", frozenset({"definition", "label noise"}), priority=20,
                                    reason="skewed inputs change how often the model is right at a given score")),
    actions=_actions,
    checklist=(("data", "Features are computed the same way offline and live"),),
    cost=2.5))
