"""Segments: where does the model fail?

The headline metric for every value of every ``columns.segments`` column (and for every production
week), each with an interval, each tested against the rest of production with false discoveries
controlled across all of them (Benjamini–Hochberg). A segment is flagged only when it is big
enough (``segments.min_rows`` labelled rows), significantly worse than the rest, *and* materially
worse (``segments.metric_gap`` for proportions, ``segments.relative_gap`` for errors). Beside it:
the segment's own reference metric (a segment can be bad in both), its share of traffic in
reference and production, and its contribution to the overall gap (mix change × metric change),
so that a failing segment that grew from 5% to 25% of traffic stands out. Flagged segments are
culprits when, within their column, they carry at least half of the gap; a decline spread over
every segment points at a global cause instead.

Weeks are reported (a time-local failure shows there) but do not make culprits: a metric that
worsens week after week is drift, which the drift check investigates.

On DuckDB or Spark (data larger than memory), a classifier's segments are counted over every row:
rows, labelled rows and correct predictions per value and side
(:func:`mlinvestigate.engine.aggregates.segment_counts`), so shares, accuracies, intervals and
tests are those of all the data; weeks, regression errors and quintile-binned numeric columns use
the seeded sample, as the load's warning says.
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
    Evidence,
    Threshold,
    WhenSymptomBlamesOnly,
    register,
    segment_culprit,
)
from ..findings import Finding, Result, skipped
from ..metrics import headline_name, row_outcome
from ..stats.intervals import fdr, wilson
from ..stats.proportions import lower_rate_p
from ..stats.segments import gap_contributions, grouped_bootstrap_mean, larger_than_rest_p
from ..stats.triage_time import grain, period_codes
from ..stats.triage_values import as_text, recode, text_codes

CHECK = "segments"
MISSING = "(missing)"
OTHER = "(other)"
MAX_VALUES = 50     # values per column shown separately; rarer ones are pooled into (other)
NUMERIC_BINS = 5    # a numeric segment column with many values is cut at reference quintiles
WEEK = "week"


def segment_codes(ref: pd.Series | None, prod: pd.Series) -> tuple[np.ndarray | None, np.ndarray, list[str]]:
    """Shared integer codes of a segment column in reference and production, and their labels.

    Categories keep their values; a numeric column with more than a dozen distinct values is cut
    into reference quintile bins; missing values form their own segment; beyond
    :data:`MAX_VALUES` values (by production rows) the rest are pooled into ``(other)``.
    """
    sides = [_as_number(s) for s in (ref, prod) if s is not None]
    if _binned(sides):
        base = (ref if ref is not None and ref.notna().any() else prod).astype(float)
        edges = np.unique(np.nanquantile(base, np.linspace(0, 1, NUMERIC_BINS + 1)[1:-1]))
        labels = _bin_labels(edges)

        def code(s):
            x = s.to_numpy(dtype=float, na_value=np.nan)
            c = np.searchsorted(edges, x, side="right")
            return np.where(np.isnan(x), -1, c)
        codes = [code(s) for s in sides]
    else:
        coded = [text_codes(s) for s in sides]
        labels = sorted(set().union(*(set(lab) for _, lab in coded)))
        codes = [recode(c, lab, labels) for c, lab in coded]
    if any((c < 0).any() for c in codes):
        labels = list(labels) + [MISSING]
        codes = [np.where(c < 0, len(labels) - 1, c) for c in codes]
    # pool rare values (by production rows) beyond MAX_VALUES
    prod_codes = codes[-1]
    if len(labels) > MAX_VALUES:
        counts = np.bincount(prod_codes, minlength=len(labels))
        keep = np.argsort(-counts, kind="stable")[: MAX_VALUES - 1]
        remap = np.full(len(labels), MAX_VALUES - 1)
        remap[keep] = np.arange(len(keep))
        labels = [labels[i] for i in keep] + [OTHER]
        codes = [remap[c] for c in codes]
    labels = [str(v) for v in labels]
    return (codes[0] if ref is not None else None), codes[-1], labels


def _binned(sides: list[pd.Series]) -> bool:
    """A numeric segment column with more than a dozen distinct values is cut into quintiles."""
    numeric = all(pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) for s in sides)
    return bool(numeric and pd.concat(sides).nunique() > 12)


def _every_row(incident, column: str, labels: list[str]):
    """The engine's counts over every row for a segment column, per label: (rows, labelled rows,
    correct rows) for reference and for production, and the labels extended by values the sample
    did not hold; ``None`` where the engine counted nothing for the column (pandas, regression, a
    quintile-binned numeric column, or one the engine could not count)."""
    counted = (getattr(getattr(incident, "aggregates", None), "segment_counts", None) or {}).get(column)
    if not counted or not incident.is_classification:
        return None
    ref, prod = incident.reference, incident.production
    if _binned([_as_number(s) for s in (ref[column] if column in ref.columns else None, prod[column])
                if s is not None]):
        return None
    labels = list(labels)
    index = {label: i for i, label in enumerate(labels)}
    entries = {}
    for role in ("reference", "production"):
        entries[role] = []
        for value, rows, labelled, correct in counted[role]:
            label = MISSING if value is None else as_text(value)
            if label not in index:  # a value too rare to be in the sample: pooled, or its own row
                if OTHER in index:
                    label = OTHER
                else:
                    index[label] = len(labels)
                    labels.append(label)
            entries[role].append((index[label], rows, labelled, correct))
    sides = []
    for role in ("reference", "production"):
        totals = np.zeros((3, len(labels)))  # rows, labelled rows, correct rows per label
        for i, *counts in entries[role]:
            totals[:, i] += counts
        sides.append(totals)
    return sides[0], sides[1], labels


def _counted_metric(n: np.ndarray, total: np.ndarray):
    with np.errstate(invalid="ignore", divide="ignore"):
        metric = total / n
    lo, hi = wilson(total, n)
    return metric, lo, hi


def _as_number(s: pd.Series) -> pd.Series:
    """Segment columns arrive as categories (text); numbers among them are read back as numbers."""
    if isinstance(s.dtype, pd.CategoricalDtype) and len(s.cat.categories):
        numbers = pd.to_numeric(pd.Series(s.cat.categories.astype(object)), errors="coerce").to_numpy(float)
        if np.isfinite(numbers).all():
            codes = s.cat.codes.to_numpy()
            return pd.Series(np.where(codes >= 0, numbers[np.maximum(codes, 0)], np.nan), index=s.index)
    return s


def _bin_labels(edges: np.ndarray) -> list[str]:
    fmt = "{:.3g}".format
    bounds = ["-inf"] + [fmt(e) for e in edges] + ["inf"]
    return [f"[{bounds[i]}, {bounds[i + 1]})" for i in range(len(bounds) - 1)]


def _group_metric(incident, outcome: np.ndarray, codes: np.ndarray, k: int, seed: int):
    """Labelled rows, metric and interval per code (rows with NaN outcome left out)."""
    lab = np.isfinite(outcome)
    n = np.bincount(codes[lab], minlength=k).astype(float)
    total = np.bincount(codes[lab], weights=outcome[lab], minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        metric = total / n
    if incident.is_classification:
        lo, hi = wilson(total, n)
    else:
        lo, hi = grouped_bootstrap_mean(outcome, np.where(lab, codes, -1), k, seed=seed)
    return n, total, metric, lo, hi


def _worse_than_rest(incident, outcome, codes, k, n, total, seed):
    if incident.is_classification:
        n_all, t_all = n.sum(), total.sum()
        return lower_rate_p(total, n, t_all - total, n_all - n)
    return larger_than_rest_p(outcome, np.where(np.isfinite(outcome), codes, -1), k, seed=seed)


def _worse_than_reference(incident, out_ref, ref_codes, out_prod, prod_codes, k, n_r, t_r, n_p, t_p, seed):
    """p-value per segment that production is worse than the same segment in reference."""
    if incident.is_classification:
        return lower_rate_p(t_p, n_p, t_r, n_r)
    p = np.full(k, np.nan)
    rng = np.random.default_rng(seed)
    for g in range(k):
        a = out_prod[(prod_codes == g) & np.isfinite(out_prod)]
        b = out_ref[(ref_codes == g) & np.isfinite(out_ref)]
        if len(a) and len(b):
            a = a if len(a) <= 50_000 else rng.choice(a, 50_000, replace=False)
            b = b if len(b) <= 50_000 else rng.choice(b, 50_000, replace=False)
            p[g] = stats.mannwhitneyu(a, b, alternative="greater").pvalue
    return p


def _column_table(incident, column: str, out_ref, out_prod, seed) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    ref, prod = incident.reference, incident.production
    ref_col = ref[column] if column in ref.columns else None
    ref_codes, prod_codes, labels = segment_codes(ref_col, prod[column])
    every = _every_row(incident, column, labels) if ref_codes is not None else None
    if every is not None:  # classification on an engine: counts of every row, not of the sample
        ref_counts, prod_counts, labels = every
        k = len(labels)
        n_p, t_p = prod_counts[1], prod_counts[2]
        m_p, lo_p, hi_p = _counted_metric(n_p, t_p)
        n_r, t_r = ref_counts[1], ref_counts[2]
        m_r, lo_r, hi_r = _counted_metric(n_r, t_r)
        table = pd.DataFrame({"column": column, "value": labels})
        table["production_share"] = prod_counts[0] / max(prod_counts[0].sum(), 1)
        table["reference_share"] = ref_counts[0] / max(ref_counts[0].sum(), 1)
        p_ref = lower_rate_p(t_p, n_p, t_r, n_r)
    else:
        k = len(labels)
        n_p, t_p, m_p, lo_p, hi_p = _group_metric(incident, out_prod, prod_codes, k, seed)
        table = pd.DataFrame({"column": column, "value": labels})
        table["production_share"] = np.bincount(prod_codes, minlength=k) / len(prod)
        if ref_codes is not None:
            n_r, t_r, m_r, lo_r, hi_r = _group_metric(incident, out_ref, ref_codes, k, seed)
            table["reference_share"] = np.bincount(ref_codes, minlength=k) / len(ref)
            p_ref = _worse_than_reference(incident, out_ref, ref_codes, out_prod, prod_codes, k, n_r, t_r, n_p, t_p,
                                          seed)
        else:
            n_r = t_r = m_r = lo_r = hi_r = p_ref = np.full(k, np.nan)
            table["reference_share"] = np.nan
    table["labelled_rows"] = n_p.astype(int)
    table["metric"], table["ci_low"], table["ci_high"] = m_p, lo_p, hi_p
    with np.errstate(invalid="ignore", divide="ignore"):
        table["rest_metric"] = (t_p.sum() - t_p) / (n_p.sum() - n_p)
    table["p_value"] = _worse_than_rest(incident, out_prod, prod_codes, k, n_p, t_p, seed)
    table["reference_metric"], table["reference_ci_low"], table["reference_ci_high"] = m_r, lo_r, hi_r
    table["p_worse_than_reference"] = p_ref
    # contribution of each segment to the overall change, on labelled rows (the metric's own weights)
    with np.errstate(invalid="ignore", divide="ignore"):
        w_r = n_r / np.nansum(n_r) if ref_codes is not None else np.full(k, np.nan)
        w_p = n_p / n_p.sum()
    if ref_codes is not None:
        table["contribution"] = gap_contributions(w_r, m_r, w_p, m_p)["total"]
    else:
        table["contribution"] = np.nan
    return table, prod_codes, labels


def _week_table(incident, out_prod, seed) -> tuple[pd.DataFrame, np.ndarray | None, list[str]]:
    ts_col = incident.columns.timestamp
    prod = incident.production
    if not ts_col or ts_col not in prod.columns or not prod[ts_col].notna().any():
        return pd.DataFrame(), None, []
    codes, weeks = period_codes(prod[ts_col], "W")
    if len(weeks) < 2:
        return pd.DataFrame(), None, []
    k = len(weeks)
    labels = [f"{w.date()}" for w in weeks]
    n_p, t_p, m_p, lo_p, hi_p = _group_metric(incident, np.where(codes >= 0, out_prod, np.nan),
                                              np.maximum(codes, 0), k, seed)
    table = pd.DataFrame({"column": WEEK, "value": labels,
                          "production_share": np.bincount(codes[codes >= 0], minlength=k) / len(prod),
                          "reference_share": np.nan, "labelled_rows": n_p.astype(int),
                          "metric": m_p, "ci_low": lo_p, "ci_high": hi_p})
    with np.errstate(invalid="ignore", divide="ignore"):
        table["rest_metric"] = (t_p.sum() - t_p) / (n_p.sum() - n_p)
    out = np.where(codes >= 0, out_prod, np.nan)
    table["p_value"] = _worse_than_rest(incident, out, np.maximum(codes, 0), k, n_p, t_p, seed)
    for c in ("reference_metric", "reference_ci_low", "reference_ci_high", "p_worse_than_reference",
              "contribution"):
        table[c] = np.nan
    return table, codes, labels


def run(incident) -> Result:
    """Break the headline metric down by segment and find the segments that fail."""
    columns = list(incident.columns.segments)
    if not columns:
        return Result(skipped(CHECK, "Not checked: the spec names no columns.segments; list the columns to "
                                     "break the metric down by (e.g. country, device)."))
    n_labelled = int(incident.labelled.sum())
    if n_labelled == 0:
        return Result(skipped(CHECK, "Not checked: production has no labelled rows, so no segment metric can "
                                     "be computed; provide production labels (the target column)."))
    seed = int(incident.threshold("general", "seed"))
    alpha = incident.threshold("general", "alpha")
    min_rows = incident.threshold(CHECK, "min_rows")
    higher_better = incident.is_classification
    gap_limit = incident.threshold(CHECK, "metric_gap" if higher_better else "relative_gap")

    out_ref, out_prod = row_outcome(incident, incident.reference), row_outcome(incident, incident.production)
    overall_ref = float(np.nanmean(out_ref)) if np.isfinite(out_ref).any() else np.nan
    overall_prod = float(np.nanmean(out_prod))
    counted = (getattr(getattr(incident, "aggregates", None), "segment_counts", None) or {}) \
        if incident.is_classification else {}
    if counted:  # an engine counted every row: the overall accuracy of every row, as the segments'
        sides = next(iter(counted.values()))
        ref_n, ref_ok, prod_n, prod_ok = (sum(r[i] for r in sides[role]) for role in ("reference", "production")
                                          for i in (2, 3))
        overall_ref = ref_ok / ref_n if ref_n else np.nan
        overall_prod = prod_ok / prod_n if prod_n else overall_prod
    tables, codes = [], {}
    for column in columns:
        table, prod_codes, labels = _column_table(incident, column, out_ref, out_prod, seed)
        tables.append(table)
        codes[column] = (prod_codes, labels)
    week_table, week_codes, week_labels = _week_table(incident, out_prod, seed)
    if week_codes is not None:
        tables.append(week_table)
        codes[WEEK] = (week_codes, week_labels)
    table = pd.concat(tables, ignore_index=True)

    sign = 1.0 if higher_better else -1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        # how much worse than the rest / than its own reference: absolute for proportions, relative for errors
        table["gap"] = (sign * (table["rest_metric"] - table["metric"]) if higher_better
                        else (table["metric"] - table["rest_metric"]) / table["rest_metric"])
        table["change_vs_reference"] = (sign * (table["reference_metric"] - table["metric"]) if higher_better
                                        else (table["metric"] - table["reference_metric"]) / table["reference_metric"])
    table["p_adjusted"], discovered = fdr(table["p_value"], alpha=alpha)
    table["tiny"] = table["labelled_rows"] < min_rows
    with np.errstate(invalid="ignore", divide="ignore"):
        table["bad_in_reference"] = ((overall_ref - table["reference_metric"] if higher_better
                                      else (table["reference_metric"] - overall_ref) / overall_ref) >= gap_limit)
    _, declined = fdr(table["p_worse_than_reference"], alpha=alpha)
    table["declined"] = declined & ~table["tiny"] & (table["change_vs_reference"] >= gap_limit)
    growth = incident.threshold(CHECK, "share_growth")
    table["grew"] = ((table["production_share"] >= growth * table["reference_share"])
                     & (table["production_share"] - table["reference_share"] >= 0.01))
    new_segment = table["reference_metric"].isna() & (table["column"] != WEEK)
    worse = discovered & ~table["tiny"] & (table["gap"] >= gap_limit)
    # a segment that was just as bad offline, with the same share, is not why production is worse
    table["flagged"] = worse & ((table["column"] == WEEK) | table["declined"] | table["grew"] | new_segment)
    overall_worse = sign * (overall_ref - overall_prod) if higher_better else overall_prod - overall_ref
    table["gap_contribution"] = -sign * table["contribution"]  # positive: makes production worse
    with np.errstate(invalid="ignore", divide="ignore"):
        # shares of a gap that is not there are noise: only when production is materially worse
        material = overall_worse >= (0.01 if higher_better else 0.05 * overall_ref)
        table["share_of_gap"] = (table["gap_contribution"] / overall_worse) if material else np.nan
    table = table.drop(columns=["contribution"])

    flagged = table[table["flagged"] & (table["column"] != WEEK)].sort_values(
        ["gap_contribution", "gap"], ascending=False, na_position="last")
    culprits = [f"{r.column}={r.value}" for r in flagged.itertuples()]
    pattern = _pattern(table, flagged)
    finding = _finding(incident, table, flagged, culprits, pattern, overall_ref, overall_prod, overall_worse)
    order = table.sort_values(["flagged", "gap"], ascending=[False, False], na_position="last", ignore_index=True)
    mix = table[table["column"] != WEEK][["column", "value", "reference_share", "production_share",
                                          "gap_contribution", "share_of_gap"]]
    weeks = table[table["column"] == WEEK].drop(columns=["reference_share", "reference_metric", "reference_ci_low",
                                                         "reference_ci_high", "p_worse_than_reference",
                                                         "change_vs_reference", "bad_in_reference", "declined",
                                                         "gap_contribution", "share_of_gap"])
    return Result(finding, tables={"segments": order, "mix": mix.reset_index(drop=True),
                                   "weeks": weeks.reset_index(drop=True)},
                  data={"codes": codes, "metric": headline_name(incident), "higher_is_better": higher_better,
                        "overall_reference": overall_ref, "overall_production": overall_prod,
                        "pattern": pattern, "gap_limit": gap_limit})


def _pattern(table: pd.DataFrame, flagged: pd.DataFrame) -> str:
    """``all`` when, in every segment column, segments holding at least 75% of production traffic
    declined against their own reference (nothing localises the failure); otherwise ``one`` when
    segments are flagged, ``none`` when not."""
    named = table[(table["column"] != WEEK) & ~table["tiny"] & table["reference_metric"].notna()]
    if len(named):
        shares = named.groupby("column", sort=False).apply(
            lambda t: t.loc[t["declined"], "production_share"].sum() / t["production_share"].sum()
            if t["production_share"].sum() else 0.0, include_groups=False)
        if (shares >= 0.75).all():
            return "all"
    return "one" if len(flagged) else "none"


def _fmt(incident, value) -> str:
    return f"{value:.3f}" if incident.is_classification else f"{value:.4g}"


def _finding(incident, table, flagged, culprits, pattern, overall_ref, overall_prod, overall_worse) -> Finding:
    metric = headline_name(incident)
    evidence = SegmentsEvidence(metric=metric, overall_reference=overall_ref, overall_production=overall_prod,
                                pattern=pattern, segments_tested=int(len(table)),
                                flagged=flagged[["column", "value", "labelled_rows", "metric", "ci_low", "ci_high",
                                                 "rest_metric", "reference_metric", "reference_share",
                                                 "production_share", "p_adjusted", "share_of_gap"]]
                                .to_dict(orient="records"))
    weeks = table[(table["column"] == WEEK) & table["flagged"]]
    week_note = (f" Week(s) starting {', '.join(weeks['value'].head(3))} were worse than the rest of production."
                 if len(weeks) else "")
    # Flagged segments explain the gap when, within their column, they carry at least half of it;
    # a decline spread over every segment points at a global cause, even if some are hit harder.
    # Without a material overall gap (shares undefined) a flagged segment is a local failure.
    carried = (flagged.groupby("column")["share_of_gap"].sum(min_count=1).max() if len(flagged) else np.nan)
    localised = len(flagged) > 0 and (not np.isfinite(carried) or carried >= 0.5)
    evidence.share_of_gap_carried = carried
    if not localised:
        worse = ", ".join(culprits[:3])
        if pattern == "all" or len(flagged):
            summary = (f"No single segment explains the gap: {metric} worsened across segments together "
                       f"({_fmt(incident, overall_ref)} offline vs {_fmt(incident, overall_prod)} in production), "
                       "which points at a global cause (drift, class balance, labels, measurement) rather than "
                       "one segment." + (f" Hit harder than the rest, but carrying only {carried:.0%} of the gap: "
                                         f"{worse}." if len(flagged) else ""))
        else:
            summary = f"No segment is materially worse than the rest of production.{week_note}"
        return Finding(CHECK, "clear", "info", summary.strip(), [], evidence)
    top = flagged.iloc[0]
    parts = [f"{top.column}={top.value} fails: {metric} {_fmt(incident, top.metric)} "
             f"[{_fmt(incident, top.ci_low)}, {_fmt(incident, top.ci_high)}] vs "
             f"{_fmt(incident, top.rest_metric)} for the rest"]
    if np.isfinite(top.reference_share) and top.production_share > top.reference_share * 1.5:
        parts.append(f"its share of traffic grew from {top.reference_share:.0%} to {top.production_share:.0%}")
    if np.isfinite(top.reference_metric):
        parts.append(f"in reference it scored {_fmt(incident, top.reference_metric)}"
                     + (", already worse than the rest there" if top.bad_in_reference else ""))
    if np.isfinite(top.share_of_gap):
        parts.append("it accounts for the whole overall gap" if top.share_of_gap >= 0.995
                     else f"it accounts for {max(top.share_of_gap, 0):.0%} of the overall gap")
    summary = "; ".join(parts)
    if len(flagged) > 1:
        summary += f". Also worse: {', '.join(culprits[1:4])}" + (" …" if len(culprits) > 4 else "")
    if pattern == "all":
        summary += ". Every other segment declined too, so a global cause is likely part of the story"
    summary += "."
    explained = float(np.clip(carried, 0, 1)) if np.isfinite(carried) else 0.3
    severity = "critical" if explained >= 0.5 else "warning"
    strength = max(explained, 0.3)
    return Finding(CHECK, "detected", severity, summary, culprits, evidence, strength=strength)


# --- drill-down helpers (pages and widgets) -----------------------------------------------------
def _mask(result, column: str, value: str) -> np.ndarray:
    codes, labels = result.data["codes"][column]
    if value not in labels:
        raise KeyError(f"{value!r} is not a value of segment column {column!r}; values: {labels[:10]}")
    return codes == labels.index(value)


def metric_over_time(incident, result, column: str, value: str) -> pd.DataFrame:
    """The headline metric per day (or week) for one segment and for the rest of production, with
    intervals; empty without a timestamp."""
    ts_col = incident.columns.timestamp
    prod = incident.production
    if not ts_col or ts_col not in prod.columns or not prod[ts_col].notna().any():
        return pd.DataFrame()
    inside = _mask(result, column, value)
    freq = grain(prod[ts_col])
    if freq == "D":
        day, _ = period_codes(prod[ts_col], "D")
        per_day = np.bincount(day[inside & (day >= 0) & incident.labelled.to_numpy()])
        if len(per_day) and np.median(per_day) < 100:
            freq = "W"  # too few labelled rows a day for a readable daily metric
    period, periods = period_codes(prod[ts_col], freq)
    outcome = row_outcome(incident, prod)
    seed = int(incident.threshold("general", "seed"))
    frame = pd.DataFrame({"period": periods})
    for name, rows in (("segment", inside), ("rest", ~inside)):
        codes = np.where(rows & (period >= 0), period, -1)
        ok = codes >= 0
        n, _, metric, lo, hi = _group_metric(incident, np.where(ok, outcome, np.nan), np.maximum(codes, 0),
                                             len(periods), seed)
        frame[f"{name}_rows"], frame[f"{name}_metric"] = n.astype(int), metric
        frame[f"{name}_ci_low"], frame[f"{name}_ci_high"] = lo, hi
    frame.attrs["freq"] = freq
    return frame


def drill_down(incident, result, column: str, value: str, other: str) -> pd.DataFrame:
    """Within one segment, the metric per value of a second segment column (production, with
    intervals, beside the same cell's reference metric when reference has both columns)."""
    inside = _mask(result, column, value)
    codes, labels = result.data["codes"][other]
    seed = int(incident.threshold("general", "seed"))
    outcome = row_outcome(incident, incident.production)
    k = len(labels)
    n, _, metric, lo, hi = _group_metric(incident, np.where(inside, outcome, np.nan), codes, k, seed)
    table = pd.DataFrame({other: labels, "labelled_rows": n.astype(int), "metric": metric,
                          "ci_low": lo, "ci_high": hi,
                          "share_of_segment": np.bincount(codes[inside], minlength=k) / max(int(inside.sum()), 1)})
    ref = incident.reference
    if column in ref.columns and other in ref.columns and column != WEEK and other != WEEK:
        ref_col_codes, _, col_labels = segment_codes(ref[column], incident.production[column])
        ref_other, _, other_labels = segment_codes(ref[other], incident.production[other])
        if col_labels == result.data["codes"][column][1] and other_labels == labels:
            ref_in = ref_col_codes == col_labels.index(value)
            _, _, ref_metric, _, _ = _group_metric(incident, np.where(ref_in, row_outcome(incident, ref), np.nan),
                                                   ref_other, k, seed)
            table["reference_metric"] = ref_metric
    return table[table["labelled_rows"] > 0].sort_values(
        "metric", ascending=bool(result.data["higher_is_better"]), ignore_index=True)


def worst(result, n: int = 3) -> list[tuple[str, str]]:
    """``(column, value)`` of the segments to look at first: the flagged ones (culprit order), then
    the largest gaps to the rest among segments big enough to be flagged."""
    table = result.to_df("segments") if "segments" in result.tables else pd.DataFrame()
    if table.empty:
        return []
    picked = [tuple(c.split("=", 1)) for c in result.finding.culprits]
    rest = table[(table["column"] != WEEK) & ~table["tiny"]].sort_values("gap", ascending=False)
    for r in rest.itertuples():
        if (r.column, r.value) not in picked:
            picked.append((r.column, r.value))
    return picked[:n]


def page_table(result, *, weeks: bool = False) -> pd.DataFrame:
    """The segments table in the columns a reader needs (flagged first), for the page."""
    table = result.to_df("segments") if "segments" in result.tables else pd.DataFrame()
    if table.empty:
        return table
    t = table[(table["column"] == WEEK) == weeks]
    fmt = "{:.3f}" if result.data["higher_is_better"] else "{:.4g}"

    def interval(lo, hi):
        return [f"[{fmt.format(a)}, {fmt.format(b)}]" if np.isfinite(a) else "–" for a, b in zip(lo, hi, strict=True)]

    out = pd.DataFrame({"segment": [f"{c}={v}" for c, v in zip(t["column"], t["value"], strict=True)],
                        "labelled rows": t["labelled_rows"], "production": t["metric"],
                        "95% interval": interval(t["ci_low"], t["ci_high"]), "rest": t["rest_metric"],
                        "gap to rest": t["gap"], "p (BH)": t["p_adjusted"]})
    if not weeks:
        out["reference"] = t["reference_metric"]
        out["reference interval"] = interval(t["reference_ci_low"], t["reference_ci_high"])
        out["share ref → prod"] = [f"{a:.1%} → {b:.1%}" if np.isfinite(a) else f"new → {b:.1%}"
                                   for a, b in zip(t["reference_share"], t["production_share"], strict=True)]
        out["share of gap"] = t["share_of_gap"]
    out["flag"] = np.where(t["flagged"], "FLAGGED", np.where(t["tiny"], "too small", ""))
    return out.reset_index(drop=True)


# --- contract -----------------------------------------------------------------------------------
# the defaults behind the verdict, overridable under thresholds.segments (docs/thresholds.md)
THRESHOLDS = {
    "min_rows": Threshold(30, "segments smaller than this are reported, never flagged"),
    "metric_gap": Threshold(0.05, "segment worse than the rest by at least this much (accuracy, absolute)"),
    "relative_gap": Threshold(0.2,
                         "regression: segment error (MAE) at least this much above the rest, relative"),
    "share_growth": Threshold(1.5,
                         "a segment whose traffic share grew by this factor (and 1 point) since reference"),
}
THRESHOLD_NOTES = (
    "Where does the model fail? Segment tests are Benjamini–Hochberg controlled across all segments."
)


class SegmentsEvidence(Evidence):
    """The segments finding's evidence (none when skipped)."""

    metric: str | None = None  # the headline metric's name
    overall_reference: float | None = None
    overall_production: float | None = None
    pattern: str | None = None  # how the segments declined together: none, some, all
    segments_tested: int | None = None
    flagged: list[dict[str, Any]] | None = None  # the failing segments, worst first
    share_of_gap_carried: float | None = None  # the most any one column's flagged segments carry of the gap


def _actions(finding: dict, ctx: Context) -> list[dict]:
    culprits = finding.get("culprits", [])
    return [{"check": CHECK, "action": "Ensemble with a rule-based baseline where the model is out of its depth",
             "detail": "send " + ", ".join(culprits[:4])
                       + " traffic to the previous rules or baseline until the model is retrained on recent data",
             "why": finding["summary"]},
            {"check": CHECK, "action": "Retrain on recent production data",
             "detail": "include the failing segments' recent rows once labels arrive; validate on the newest weeks",
             "why": "the model fails on part of today's traffic"}]


CONTRACT = register(CheckContract(
    id=CHECK, thresholds=THRESHOLDS, threshold_notes=THRESHOLD_NOTES,
    title="Segments", question="Where does it fail?", stage="triage", module=__name__,
    culprit=segment_culprit,
    explains=(CoversColumns("drift", own_kinds=("segment",),
                            reason="a failing segment that grew changes its column's mix"),
              WhenSymptomBlamesOnly("labels", frozenset({"definition", "label noise"}), priority=40,
                                    reason="a segment the model fails on changes how often a score is right")),
    actions=_actions, evidence=SegmentsEvidence,
    checklist=(("model", "No segment fails on its own"),),
    cost=5))
