"""Labels: were production labels wrong, or given by a different definition?

Three comparisons, each against reference or between label sources of the same period — never
against zero, since even clean labels disagree with a model now and then:

- **Label issues** (confident learning): a gradient-boosted model fitted on the reference features
  (out-of-fold; the logged score when there are no features) flags labelled rows it places
  confidently in another class. The flags' rate is compared with the rate the model's own
  uncertainty predicts, in reference and production (judged with reference's per-class thresholds).
- **Label sources**: each source's issue rate and agreement with the logged predictions, against the
  other sources of the same period; and which sources are new or changed share.
- **Definition**: the label rate at the same score (binary: a reliability curve on reference score
  bins) or the labels given to inputs the model places in each class (multiclass), production
  against reference re-weighted to production's class balance — so a plain change of class balance
  (the prior_shift check) is not mistaken for a new definition — and each source against the rest.

Regression has no class flips: residual outliers (robust z) and each source's residual bias instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..contract import (
    CheckContract,
    Context,
    Culprit,
    Evidence,
    Threshold,
    WhenSymptomSays,
    register,
)
from ..findings import Finding, Result, skipped
from ..stats import labels as sl
from ..stats.encoding import encode
from ..stats.intervals import fdr, wilson
from ..stats.proportions import proportion_difference
from ..stats.triage_values import class_codes

CHECK = "labels"
MAX_FIT_ROWS = 20_000      # reference rows the kit's cross-validated model is fitted on (seeded sample)
MAX_JUDGED_ROWS = 50_000   # labelled production rows whose labels the model judges (seeded sample)
MIN_ROWS = 30              # smallest group (side, source, bin) a comparison is made for
REVIEW_ROWS = 50           # likely mislabelled rows listed per period
SCORE_BINS = 10

UNKNOWN_SOURCE = "(no source)"


def run(incident) -> Result:
    """Compare label quality and label definitions between reference, production and label sources."""
    if incident.kind == "regression":
        return _regression(incident)
    return _classification(incident)


# --- shared pieces ----------------------------------------------------------------------------------
def _sources(incident, df: pd.DataFrame) -> pd.Series | None:
    """The label source of each row as text, or None when the side has no label_source column."""
    col = incident.columns.label_source
    if not col or col not in df.columns:
        return None
    s = df[col]
    return s.astype(object).where(s.notna(), UNKNOWN_SOURCE).astype(str)


def _comparable_sources(incident) -> bool:
    """At least two label sources on some side (so sources can be compared with each other)."""
    for df in (incident.reference, incident.labelled_production):
        src = _sources(incident, df)
        if src is not None and (src.value_counts() >= MIN_ROWS).sum() >= 2:
            return True
    return False


def _sample_positions(mask: np.ndarray, n: int, seed: int) -> np.ndarray:
    idx = np.flatnonzero(mask)
    if len(idx) > n:
        idx = np.sort(np.random.default_rng(seed).choice(idx, n, replace=False))
    return idx


def _composition(ref_src: pd.Series | None, prod_src: pd.Series | None, alpha: float) -> tuple[pd.DataFrame, list]:
    """Share of labelled rows per source and period, with Wilson intervals; sources new in production."""
    rows = []
    for side, src in (("reference", ref_src), ("production", prod_src)):
        if src is None or len(src) == 0:
            continue
        counts = src.value_counts()
        lo, hi = wilson(counts.to_numpy(), len(src))
        for (name, n), a, b in zip(counts.items(), lo, hi, strict=True):
            rows.append({"source": name, "side": side, "rows": int(n), "share": n / len(src),
                         "ci_low": a, "ci_high": b})
    table = pd.DataFrame(rows, columns=["source", "side", "rows", "share", "ci_low", "ci_high"])
    new = []
    if ref_src is not None and prod_src is not None and len(ref_src) and len(prod_src):
        new = sorted(set(prod_src.unique()) - set(ref_src.unique()))
        wide = table.pivot_table(index="source", columns="side", values="rows", fill_value=0)
        wide = wide.reindex(columns=["reference", "production"], fill_value=0)
        diff, p = proportion_difference(wide["production"], len(prod_src), wide["reference"], len(ref_src))
        change = pd.DataFrame({"source": wide.index, "share_change": diff,
                               "share_change_significant": fdr(p, alpha=alpha)[1]})
        table = table.merge(change, on="source", how="left")
    return table, new


# --- classification ---------------------------------------------------------------------------------
def _classification(incident) -> Result:
    classes = list(incident.classes)
    k = len(classes)
    seed = int(incident.threshold("general", "seed"))
    alpha = incident.threshold("general", "alpha")
    ref, prod = incident.reference, incident.production
    ref_y = class_codes(ref[incident.target], classes)
    prod_y = class_codes(prod[incident.target], classes)
    ref_lab, prod_lab = ref_y >= 0, prod_y >= 0
    notes: list[str] = []

    ref_src_all, prod_src_all = _sources(incident, ref), _sources(incident, prod)
    ref_src = ref_src_all[ref_lab] if ref_src_all is not None else None
    prod_src = prod_src_all[prod_lab] if prod_src_all is not None else None
    composition, new_sources = _composition(ref_src, prod_src, alpha)

    new_classes = sorted({str(classes[c]) for c in np.unique(prod_y[prod_lab])} -
                         {str(classes[c]) for c in np.unique(ref_y[ref_lab])})

    # Probabilities: the kit's cross-validated model, else the logged score.
    ref_idx = _sample_positions(ref_lab, MAX_FIT_ROWS, seed)
    judged = min(MAX_JUDGED_ROWS, int(incident.threshold("general", "sample_rows")))
    prod_idx = _sample_positions(prod_lab, judged, seed)
    if len(ref_idx) < ref_lab.sum():
        notes.append(f"Label issues are computed on a seeded sample of {len(ref_idx):,} of "
                     f"{int(ref_lab.sum()):,} labelled reference rows.")
    if len(prod_idx) < prod_lab.sum():
        notes.append(f"Production label issues are computed on a seeded sample of {len(prod_idx):,} of "
                     f"{int(prod_lab.sum()):,} labelled rows.")
    probs = _probabilities(incident, ref_idx, prod_idx, ref_y, k, seed)
    if probs is not None and "gradient-boosted" in probs["how"] and len(incident.features) > sl.MAX_FEATURES:
        notes.append(f"With {len(incident.features):,} features, each cross-validation fold's model is fitted on "
                     f"the {sl.MAX_FEATURES} most associated with the label on that fold's training rows "
                     "(chi-square test of each feature's bins against the label); the rows it judges never "
                     "chose them, so its out-of-fold probabilities stay honest.")
    if probs is not None and "in_support" in probs and not probs["in_support"].all():
        inside = probs.pop("in_support")
        notes.append(f"{int((~inside).sum()):,} of {len(inside):,} labelled production rows ({np.mean(~inside):.1%}) "
                     "have feature values outside the reference range; the model never saw such inputs and "
                     "cannot judge their labels, so they are left out of the label-issue and definition comparisons.")
        prod_idx, probs["prod"] = prod_idx[inside], probs["prod"][inside]

    evidence = LabelsEvidence(probabilities=probs["how"] if probs else None, new_label_classes=new_classes,
                              new_sources=new_sources, labelled_production_rows=int(prod_lab.sum()))
    tables: dict[str, pd.DataFrame] = {}
    data: dict = {"classes": classes, "binary": incident.kind == "binary", "notes": notes,
                  "positive_index": classes.index(incident.positive_label) if incident.kind == "binary" else None}

    issues = None
    if probs is not None:
        issues = _issues(incident, probs, ref_y[ref_idx], prod_y[prod_idx], k)
        for key, value in issues["evidence"].items():
            setattr(evidence, key, value)
        tables["issue_rates"] = issues["table"]
        tables["review"] = _review(incident, classes, probs, issues, ref_y[ref_idx], prod_y[prod_idx],
                                   ref_idx, prod_idx, ref_src_all, prod_src_all)
    else:
        notes.append("No features and no score: label issues cannot be estimated; only agreement with "
                     "the logged predictions and the labels given per predicted class are compared.")

    if not prod_lab.any() and not _comparable_sources(incident):
        rate = evidence.reference_issue_rate
        summary = ("Production has no labels and no label sources to compare, so label quality cannot "
                   "be compared; provide production labels (or a label_source column).")
        if rate is not None:
            summary += (f" In reference {rate:.1%} of labels are flagged as likely wrong (the model's own "
                        f"uncertainty accounts for {evidence.reference_expected_issue_rate:.1%}).")
        finding = skipped(CHECK, summary, **evidence.to_dict())
        return Result(finding, tables=tables, data=data)

    sources = _source_table(incident, classes, ref, prod, ref_y, prod_y, ref_src_all, prod_src_all,
                            issues, ref_idx, prod_idx, alpha)
    tables["sources"] = sources
    tables["source_composition"] = composition
    definition = _definition(incident, classes, probs, issues, ref_y, prod_y, ref_idx, prod_idx,
                             ref_src_all, prod_src_all, alpha)
    tables["definition"] = definition["table"]
    data["reliability"] = definition["curves"]
    evidence.definition = definition["evidence"]
    evidence.sources = sources.to_dict(orient="records") if len(sources) else []
    if issues is not None:
        data["issues"] = {"ref_flags": issues["ref_flags"], "prod_flags": issues["prod_flags"]}
    evidence.class_shares = _class_shares_vs_inputs(incident)
    return Result(_verdict(incident, evidence, issues, sources, definition, new_classes, new_sources,
                           prod_src, prod_lab), tables=tables, data=data)


def _class_shares_vs_inputs(incident) -> dict:
    """Did the labels' class shares move while the model's outputs on the same traffic did not?

    The prior-shift check's reading of representative production labels against its label-free
    estimate: shares that moved significantly and materially in the labels, while the estimate
    from all production rows' outputs stays consistent with reference, mean the same inputs now get
    other labels, which is a label definition change (a real change of class balance moves the
    inputs, and with them the outputs).
    """
    from . import prior_shift

    try:
        finding = prior_shift.run(incident).finding
    except Exception as exc:  # a failure there must not cost the label comparisons
        return {"checked": False, "reason": f"{type(exc).__name__}: {exc}"}
    ev = prior_shift.CONTRACT.evidence_of(finding)
    reading = ev.label_free_reading or {}
    out = {"checked": bool(reading), "reading": reading.get("reading"),
           "moved_at_same_inputs": bool(ev.follows_from_labels)}
    if ev.reference_class_rates is not None and ev.production_class_rates:
        out.update(reference=ev.reference_class_rates, labels=ev.observed_class_rates)
    elif ev.production_positive_rate is not None:
        pos = str(incident.positive_label)
        out.update(reference={pos: ev.reference_positive_rate}, labels={pos: ev.observed_positive_rate})
    out["estimate_method"] = reading.get("method")
    return out


def _feature_matrix(incident, frames: list[pd.DataFrame]) -> tuple[list[np.ndarray], list[bool]]:
    """The frames as the shared model encoding (:func:`~mlinvestigate.stats.encoding.encode`), and
    which columns are categorical."""
    matrices, mask = encode(frames, {f: incident.feature_types[f] for f in incident.features})
    return matrices, mask.tolist()


def _probabilities(incident, ref_idx, prod_idx, ref_y, k, seed) -> dict | None:
    """Out-of-fold reference probabilities and production probabilities, or None."""
    ref_codes = ref_y[ref_idx]
    enough = len(ref_idx) >= 2 * MIN_ROWS and (np.bincount(ref_codes, minlength=k) >= 2).sum() >= 2
    if incident.features and enough:
        (X_ref, X_prod), categorical = _feature_matrix(
            incident, [incident.reference.iloc[ref_idx], incident.production.iloc[prod_idx]])
        oof, predict = sl.cross_validated_probabilities(X_ref, ref_codes, k, categorical=categorical, seed=seed)
        prod = predict(X_prod) if len(prod_idx) else np.empty((0, k))
        return {"ref": oof, "prod": prod, "in_support": _in_support(X_ref, X_prod, categorical),
                "how": "out-of-fold probabilities of a gradient-boosted model fitted on the reference features"}
    score = incident.score
    if incident.kind == "binary" and score and score in incident.reference.columns and score in incident.production.columns:
        pos = list(incident.classes).index(incident.positive_label)

        def two_columns(df, idx):
            s = np.clip(pd.to_numeric(df[score].iloc[idx], errors="coerce").to_numpy(float), 0, 1)
            s = np.where(np.isfinite(s), s, 0.5)  # rows without a score are never confident
            out = np.empty((len(s), 2))
            out[:, pos], out[:, 1 - pos] = s, 1 - s
            return out

        return {"ref": two_columns(incident.reference, ref_idx), "prod": two_columns(incident.production, prod_idx),
                "how": "the logged score (no features to fit a model on)"}
    return None


def _in_support(X_ref: np.ndarray, X_new: np.ndarray, categorical: list[bool]) -> np.ndarray:
    """New rows whose every feature lies within what the model saw: the reference range for numbers,
    a known category (missing values only where reference had some)."""
    ok = np.ones(len(X_new), dtype=bool)
    for j, is_cat in enumerate(categorical):
        ref, new = X_ref[:, j], X_new[:, j]
        finite = np.isfinite(ref)
        missing_ok = (~finite).any()
        if not finite.any():
            continue
        inside = np.isin(new, np.unique(ref[finite])) if is_cat else (new >= ref[finite].min()) & (new <= ref[finite].max())
        ok &= inside | (np.isnan(new) & missing_ok)
    return ok


def _issues(incident, probs, ref_codes, prod_codes, k) -> dict:
    """Confident-learning flags in both periods and the rates clean labels would produce."""
    thresholds = sl.confident_thresholds(ref_codes, probs["ref"])
    ref_flags = sl.issue_flags(ref_codes, probs["ref"], thresholds)
    prod_flags = sl.issue_flags(prod_codes, probs["prod"], thresholds)
    # The rate clean labels would produce needs calibrated probabilities: temperature-scaled on
    # reference, and for production re-weighted to its class balance, so a prior shift alone does
    # not read as label noise (the weights are relative to the same fit on reference, which absorbs
    # what calibration is left).
    temperature = sl.fit_temperature(probs["ref"], ref_codes)
    cal_ref, cal_prod = (sl.apply_temperature(p, temperature) for p in (probs["ref"], probs["prod"]))
    weights = (sl.fit_prior_weights(cal_prod, prod_codes) / sl.fit_prior_weights(cal_ref, ref_codes)
               if len(prod_codes) else np.ones(k))
    ref_expected = sl.expected_issue_probability(probs["ref"], thresholds, cal_ref)
    prod_expected = sl.expected_issue_probability(probs["prod"], thresholds, sl.adjust_priors(cal_prod, weights))
    rows = []
    for side, flags, expected in (("reference", ref_flags, ref_expected), ("production", prod_flags, prod_expected)):
        n = len(flags)
        lo, hi = wilson(flags.sum(), n)
        excess = flags - expected
        se = float(excess.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
        rows.append({"side": side, "rows": n, "issue_rate": flags.mean() if n else np.nan,
                     "ci_low": float(lo), "ci_high": float(hi),
                     "expected_rate": expected.mean() if n else np.nan,
                     "excess": excess.mean() if n else np.nan,
                     "excess_ci_low": excess.mean() - 1.96 * se if n > 1 else np.nan,
                     "excess_ci_high": excess.mean() + 1.96 * se if n > 1 else np.nan})
    table = pd.DataFrame(rows)
    diff, se, p = sl.mean_difference_test(prod_flags - prod_expected, ref_flags - ref_expected)
    ev = {"reference_issue_rate": float(table.loc[0, "issue_rate"]),
          "reference_issue_ci": [float(table.loc[0, "ci_low"]), float(table.loc[0, "ci_high"])],
          "reference_expected_issue_rate": float(table.loc[0, "expected_rate"]),
          "production_issue_rate": float(table.loc[1, "issue_rate"]) if len(prod_flags) else None,
          "production_issue_ci": [float(table.loc[1, "ci_low"]), float(table.loc[1, "ci_high"])] if len(prod_flags) else None,
          "production_expected_issue_rate": float(table.loc[1, "expected_rate"]) if len(prod_flags) else None,
          "excess_issue_change": {"difference": diff, "se": se, "p_value": p},
          "temperature": temperature,
          "confident_thresholds": dict(zip(map(str, incident.classes), map(float, thresholds), strict=True)),
          "production_prior_weights": dict(zip(map(str, incident.classes), map(float, weights), strict=True))}
    return {"table": table, "evidence": ev, "thresholds": thresholds, "weights": weights,
            "ref_flags": ref_flags, "prod_flags": prod_flags,
            "ref_excess": ref_flags - ref_expected, "prod_excess": prod_flags - prod_expected}


def _review(incident, classes, probs, issues, ref_codes, prod_codes, ref_idx, prod_idx, ref_src, prod_src) -> pd.DataFrame:
    """The flagged rows most likely mislabelled (lowest probability of the given label first)."""
    parts = []
    for side, df, p, codes, flags, idx, src in (
            ("production", incident.production, probs["prod"], prod_codes, issues["prod_flags"], prod_idx, prod_src),
            ("reference", incident.reference, probs["ref"], ref_codes, issues["ref_flags"], ref_idx, ref_src)):
        flagged = np.flatnonzero(flags)
        if not len(flagged):
            continue
        # cleanlab's default ranking ("self_confidence"): the model's probability of the given label
        quality = p[flagged, codes[flagged]]
        top = flagged[np.argsort(quality, kind="stable")[:REVIEW_ROWS]]
        suggested = sl.confident_class(p[top], issues["thresholds"])
        suggested = np.where(suggested >= 0, suggested, p[top].argmax(axis=1))
        rows = df.iloc[idx[top]]
        part = pd.DataFrame({
            "side": side,
            "row": rows[incident.columns.id].to_numpy(object) if incident.columns.id in df.columns else idx[top],
            "label_source": src.iloc[idx[top]].to_numpy(object) if src is not None else None,
            "given_label": [classes[c] for c in codes[top]],
            "suggested_label": [classes[c] for c in suggested],
            "confidence": p[top, suggested],
            "probability_of_given_label": p[top, codes[top]]})
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["side", "row", "label_source", "given_label", "suggested_label",
                                     "confidence", "probability_of_given_label"])
    out = pd.concat(parts, ignore_index=True)
    if incident.columns.id:
        out = out.rename(columns={"row": incident.columns.id})
    return out


def _source_table(incident, classes, ref, prod, ref_y, prod_y, ref_src, prod_src, issues, ref_idx,
                  prod_idx, alpha) -> pd.DataFrame:
    """Per period and label source: agreement with the model and issue rates, each source against the rest."""
    gap = incident.threshold(CHECK, "issue_rate_gap")
    disagreement = incident.threshold(CHECK, "source_disagreement")
    rows = []
    for side, df, codes, src, idx, excess_key, flag_key in (
            ("reference", ref, ref_y, ref_src, ref_idx, "ref_excess", "ref_flags"),
            ("production", prod, prod_y, prod_src, prod_idx, "prod_excess", "prod_flags")):
        labelled = codes >= 0
        if not labelled.any():
            continue
        names = src if src is not None else pd.Series(UNKNOWN_SOURCE, index=df.index)
        pred = class_codes(df[incident.prediction], classes)
        has_pred = labelled & (pred >= 0)
        agree = (pred == codes) & has_pred
        sampled_names = names.iloc[idx].to_numpy(object)
        for name in pd.unique(names[labelled]):
            in_src = (names == name).to_numpy()
            n_pred, k_agree = int((in_src & has_pred).sum()), int((in_src & agree).sum())
            rest_pred, rest_agree = int((~in_src & has_pred).sum()), int((~in_src & agree).sum())
            lo, hi = wilson(k_agree, n_pred)
            row = {"side": side, "source": name, "labelled_rows": int((in_src & labelled).sum()),
                   "agreement": k_agree / n_pred if n_pred else np.nan, "agreement_ci_low": float(lo),
                   "agreement_ci_high": float(hi)}
            enough = n_pred >= MIN_ROWS and rest_pred >= MIN_ROWS
            d, p = proportion_difference(k_agree, n_pred, rest_agree, rest_pred)
            row.update(agreement_vs_rest=float(d) if enough else np.nan, agreement_p=float(p) if enough else np.nan)
            if issues is not None:
                s_mask = sampled_names == name
                flags = issues[flag_key][s_mask]
                lo, hi = wilson(flags.sum(), len(flags))
                row.update(issue_rate=flags.mean() if len(flags) else np.nan, issue_ci_low=float(lo),
                           issue_ci_high=float(hi),
                           excess=issues[excess_key][s_mask].mean() if len(flags) else np.nan)
                if s_mask.sum() >= MIN_ROWS and (~s_mask).sum() >= MIN_ROWS:
                    diff, _, p_ex = sl.mean_difference_test(issues[excess_key][s_mask], issues[excess_key][~s_mask])
                    row.update(excess_vs_rest=diff, excess_p=p_ex)
            rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    for col in ("agreement_vs_rest", "agreement_p", "excess_vs_rest", "excess_p"):
        if col not in table.columns:
            table[col] = np.nan
    p_all = np.concatenate([table["agreement_p"].to_numpy(float), table["excess_p"].to_numpy(float)])
    _, significant = fdr(p_all, alpha=alpha)
    n = len(table)
    table["disagrees"] = significant[:n] & (table["agreement_vs_rest"] <= -disagreement).to_numpy()
    table["more_issues"] = significant[n:] & (table["excess_vs_rest"] >= gap).to_numpy()
    table["flagged"] = table["disagrees"] | table["more_issues"]
    return table


def _definition(incident, classes, probs, issues, ref_y, prod_y, ref_idx, prod_idx, ref_src, prod_src,
                alpha) -> dict:
    """Labels given at the same score (binary) or to the same placed-in class, across periods and sources."""
    binary = incident.kind == "binary"
    k = len(classes)
    pos = classes.index(incident.positive_label) if binary else None
    if probs is not None:
        ref_codes, prod_codes = ref_y[ref_idx], prod_y[prod_idx]
        ref_names = ref_src.iloc[ref_idx].to_numpy(object) if ref_src is not None else None
        prod_names = prod_src.iloc[prod_idx].to_numpy(object) if prod_src is not None else None
        if binary:
            edges = _balanced_edges(probs["ref"][:, pos], ref_codes == pos)
            ref_g = np.searchsorted(edges, probs["ref"][:, pos], side="right")
            prod_g = np.searchsorted(edges, probs["prod"][:, pos], side="right")
            groups = [f"score bin {i + 1}" for i in range(len(edges) + 1)]
            centre = {"ref": probs["ref"][:, pos], "prod": probs["prod"][:, pos]}
        else:
            placed = [sl.confident_class(p, issues["thresholds"]) for p in (probs["ref"], probs["prod"])]
            ref_g, prod_g = (np.where(c >= 0, c, p.argmax(axis=1)) for c, p in zip(placed, (probs["ref"], probs["prod"]), strict=True))
            groups = [str(c) for c in classes]
            centre = None
        placed_by = "score bin" if binary else "class the model places the input in"
    else:
        ref_lab, prod_lab = ref_y >= 0, prod_y >= 0
        ref_codes, prod_codes = ref_y[ref_lab], prod_y[prod_lab]
        ref_g = class_codes(incident.reference[incident.prediction], classes)[ref_lab]
        prod_g = class_codes(incident.production[incident.prediction], classes)[prod_lab]
        ref_names = ref_src[ref_lab].to_numpy(object) if ref_src is not None else None
        prod_names = prod_src[prod_lab].to_numpy(object) if prod_src is not None else None
        groups = [str(c) for c in classes]
        centre = None
        placed_by = "logged prediction"
    g = len(groups)

    def counts(g_codes, y_codes):
        out = np.zeros((g, k))
        ok = g_codes >= 0
        np.add.at(out, (g_codes[ok], y_codes[ok]), 1)
        return out

    ref_counts, prod_counts = counts(ref_g, ref_codes), counts(prod_g, prod_codes)
    ref_rates = (ref_counts + 0.5 / k) / (ref_counts.sum(axis=1, keepdims=True) + 0.5)
    tested = [pos] if binary else list(range(k))
    rows: list[dict] = []

    def compare(comparison, source, cnt):
        """Labels per group against reference re-weighted to these labels' own class balance."""
        cells = np.argwhere(cnt > 0)
        weights = (sl.fit_prior_weights(ref_rates[cells[:, 0]], cells[:, 1], counts=cnt[cells[:, 0], cells[:, 1]])
                   if len(cells) else np.ones(k))
        baseline = sl.adjust_priors(ref_rates, weights)
        n_ref, n = ref_counts.sum(axis=1), cnt.sum(axis=1)
        for gi in range(g):
            for j in tested:
                enough = n_ref[gi] >= MIN_ROWS and n[gi] >= MIN_ROWS
                d, p = proportion_difference(cnt[gi, j], n[gi], baseline[gi, j] * n_ref[gi], n_ref[gi])
                rows.append({"comparison": comparison, "source": source, "group": groups[gi],
                             "label": str(classes[j]), "rows": int(n[gi]),
                             "rate": cnt[gi, j] / n[gi] if n[gi] else np.nan,
                             "reference_rate": ref_counts[gi, j] / n_ref[gi] if n_ref[gi] else np.nan,
                             "baseline_rate": baseline[gi, j], "gap": float(d) if enough else np.nan,
                             "p_value": float(p) if enough else np.nan})
        return weights, baseline

    weights, adjusted = compare("production vs reference", "(all)", prod_counts)
    source_baselines = {}
    # Each source against reference at the source's own class balance: a source that labels by
    # another definition stands out, and the others are not blamed for it (comparing sources with
    # each other cannot tell which of two is off).
    for side, names, gcodes, ycodes in (("reference", ref_names, ref_g, ref_codes),
                                        ("production", prod_names, prod_g, prod_codes)):
        if names is None or len(pd.unique(names)) < 2:
            continue
        for name in pd.unique(names):
            m = names == name
            source_baselines[(side, str(name))] = compare(f"{side} source vs reference", name,
                                                          counts(gcodes[m], ycodes[m]))[1]
    table = pd.DataFrame(rows)
    limit = incident.threshold(CHECK, "definition_shift")
    _, significant = fdr(table["p_value"].to_numpy(float), alpha=alpha)
    table["moved"] = significant & (table["gap"].abs() >= limit).to_numpy()
    moved = table[table["moved"]].sort_values("gap", key=np.abs, ascending=False)
    if binary and centre is not None:
        curves = _curves(groups, adjusted, pos, centre, ref_g, ref_codes, prod_g, prod_codes, prod_names,
                         {name: b for (side, name), b in source_baselines.items() if side == "production"})
    else:
        curves = {"groups": groups, "reference": ref_counts, "production": prod_counts, "adjusted": adjusted}
    overall = table[table["comparison"] == "production vs reference"]
    evidence = {"placed_by": placed_by, "tests": int(table["p_value"].notna().sum()),
                "max_gap_vs_reference": float(overall["gap"].abs().max()) if overall["gap"].notna().any() else None,
                "class_weights": dict(zip(map(str, classes), map(float, weights), strict=True)),
                "moved": moved.head(10)[["comparison", "source", "group", "label", "rate", "baseline_rate", "gap"]].to_dict(orient="records")}
    return {"table": table, "moved": moved, "curves": curves, "evidence": evidence}


def _balanced_edges(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Score-bin edges at quantiles with each class given equal weight: half the bins cover where
    negatives score and half where positives do, so a rare class still gets resolution."""
    order = np.argsort(scores, kind="stable")
    s, y = scores[order], positive[order]
    n_pos, n_neg = y.sum(), (~y).sum()
    if n_pos == 0 or n_neg == 0:
        return np.unique(np.quantile(scores, np.linspace(0, 1, SCORE_BINS + 1))[1:-1])
    weight = np.cumsum(np.where(y, 0.5 / n_pos, 0.5 / n_neg))
    cuts = np.searchsorted(weight, np.linspace(0, 1, SCORE_BINS + 1)[1:-1])
    return np.unique(s[np.clip(cuts, 0, len(s) - 1)])


def _curves(groups, adjusted, pos, centre, ref_g, ref_codes, prod_g, prod_codes, prod_names, baselines) -> dict:
    """Reliability curves (binary): mean score and positive rate per bin, overall and per production source."""
    g = len(groups)

    def per_bin(g_codes, scores, y_codes):
        n = np.bincount(g_codes, minlength=g).astype(float)
        k = np.bincount(g_codes, weights=(y_codes == pos).astype(float), minlength=g)
        mean_s = np.bincount(g_codes, weights=scores, minlength=g)
        lo, hi = wilson(k, n)
        return {"score": np.divide(mean_s, n, out=np.full(g, np.nan), where=n > 0),
                "rate": np.divide(k, n, out=np.full(g, np.nan), where=n > 0),
                "ci_low": lo, "ci_high": hi, "rows": n}

    out = {"reference": per_bin(ref_g, centre["ref"], ref_codes),
           "production": per_bin(prod_g, centre["prod"], prod_codes),
           "adjusted": adjusted[:, pos], "sources": {}}
    if prod_names is not None and len(pd.unique(prod_names)) > 1:
        for name in pd.unique(prod_names):
            m = prod_names == name
            out["sources"][str(name)] = per_bin(prod_g[m], centre["prod"][m], prod_codes[m])
            out["sources"][str(name)]["adjusted"] = baselines[str(name)][:, pos]
    return out


def _verdict(incident, evidence, issues, sources, definition, new_classes, new_sources, prod_src, prod_lab) -> Finding:
    gap = incident.threshold(CHECK, "issue_rate_gap")
    alpha = incident.threshold("general", "alpha")
    limit = incident.threshold(CHECK, "definition_shift")
    disagreement = incident.threshold(CHECK, "source_disagreement")
    reasons: list[str] = []
    culprits: list[str] = []
    ratios = [0.0]

    def blame(name):
        if name not in culprits:
            culprits.append(str(name))

    flagged = sources[sources["flagged"]] if len(sources) else sources
    if len(flagged):
        effect = np.maximum(-flagged["agreement_vs_rest"].fillna(0) / disagreement,
                            flagged["excess_vs_rest"].fillna(0) / gap)
        flagged = flagged.assign(effect=effect).sort_values(["side", "effect"], ascending=[False, False])
        for _, row in flagged.iterrows():
            blame(row["source"])
        ratios.append(float(flagged["effect"].max()))
        top = flagged.iloc[0]
        new = ""
        if top["source"] in new_sources and prod_src is not None:
            new = f", new in production with {np.mean(prod_src == top['source']):.0%} of its labels"
        text = f"label source {top['source']} ({top['side']}{new}) disagrees with the rest"
        if pd.notna(top.get("agreement_vs_rest")):
            text += (f": it agrees with the model on {top['agreement']:.0%} of rows, "
                     f"{-top['agreement_vs_rest']:.0%} below the other sources")
        if pd.notna(top.get("excess_vs_rest")) and top["excess_vs_rest"] >= gap:
            text += f", and has {top['excess_vs_rest']:.1%} more likely-wrong labels"
        reasons.append(text)

    shares = evidence.class_shares or {}
    if shares.get("moved_at_same_inputs") and shares.get("labels"):
        ref_rates, lab_rates = shares["reference"], shares["labels"]
        order = sorted(lab_rates, key=lambda c: -abs(lab_rates[c] - ref_rates.get(c, 0.0)))[:2]
        largest = max(abs(lab_rates[c] - ref_rates.get(c, 0.0)) for c in order)
        ratios.append(largest / limit)
        moves = ", ".join(f"{c} {ref_rates.get(c, 0.0):.1%} → {lab_rates[c]:.1%}" for c in order)
        reasons.append(f"the labels' class shares moved ({moves}) while the model's outputs on the same "
                       "traffic imply shares close to reference: the same inputs now get other labels")

    moved = definition["moved"]
    by_source = moved[moved["comparison"] != "production vs reference"]
    for name in by_source["source"]:
        blame(name)
    overall = moved[moved["comparison"] == "production vs reference"]
    if len(moved):
        ratios.append(float(moved["gap"].abs().max() / limit))
        top = (by_source if len(by_source) else moved).iloc[0]
        where = top["group"] if evidence.definition["placed_by"] == "score bin" else (
            f"inputs placed in {top['group']}")
        whose = "production" if top["comparison"] == "production vs reference" else f"source {top['source']}"
        reasons.append(f"the label definition (or the concept) moved: in {where}, {whose} labels {top['rate']:.0%} as "
                       f"{top['label']} where reference, at the same class balance, would give "
                       f"{top['baseline_rate']:.0%}")

    quality = None
    if issues is not None and len(issues["prod_flags"]) >= MIN_ROWS:
        change = evidence.excess_issue_change
        # one-sided: production labels cleaner than reference's cannot make production look worse
        if np.isfinite(change["p_value"]) and change["p_value"] < alpha and change["difference"] >= gap:
            quality = change["difference"]
            ratios.append(abs(quality) / gap)
            reasons.append(f"{evidence.production_issue_rate:.1%} of production labels are flagged as likely "
                           f"wrong against {evidence.reference_issue_rate:.1%} in reference "
                           f"({abs(quality):.1%} {'more' if quality > 0 else 'fewer'} than the model's own "
                           "uncertainty explains)")
    if new_classes:
        reasons.append(f"production labels use class(es) never seen in reference: {', '.join(new_classes)}")
        ratios.append(2.0)

    if reasons and not culprits:
        single = pd.unique(prod_src) if prod_src is not None else []
        if len(single) == 1 and single[0] in new_sources:
            blame(single[0])
    if new_classes or ((len(overall) or shares.get("moved_at_same_inputs")) and not culprits):
        blame("definition")
    if quality is not None and not culprits:
        blame("label noise")

    if reasons:
        strongest = max(ratios)
        summary = "Labels changed: " + "; ".join(reasons[:2]) + "."
        # Without a label source to blame, a new label definition and a changed concept look the
        # same from the labels alone, so the finding stays a warning.
        named = any(c not in ("definition", "label noise") for c in culprits)
        return Finding(CHECK, "detected", "critical" if strongest >= 2 and named else "warning", summary,
                       culprits, evidence, strength=float(min(1.0, strongest / 4)))

    ran_sources = len(sources) and sources[["agreement_p", "excess_p"]].notna().any().any()
    ran_quality = issues is not None and len(issues["prod_flags"]) >= MIN_ROWS
    ran_definition = evidence.definition["tests"] > 0
    if not (ran_sources or ran_quality or ran_definition):
        return Finding(CHECK, "inconclusive", "info",
                       f"Too few labelled rows to compare label quality ({int(prod_lab.sum())} labelled in "
                       "production, fewer than "
                       f"{MIN_ROWS} per label source or score bin); provide more production labels.",
                       [], evidence)
    parts = []
    if ran_quality:
        parts.append(f"{evidence.production_issue_rate:.1%} of production labels are flagged as likely wrong "
                     f"against {evidence.reference_issue_rate:.1%} in reference, in line with the model's "
                     "own uncertainty")
    if ran_sources:
        parts.append("no label source disagrees with the others")
    if ran_definition:
        parts.append("the same score means the same label rate" if evidence.definition["placed_by"] == "score bin"
                     else "inputs get the same labels for the same prediction")
    return Finding(CHECK, "clear", "info", "Labels look as clean as the model can tell: " + "; ".join(parts) + ".",
                   [], evidence)


# --- regression ---------------------------------------------------------------------------------------
def _regression(incident) -> Result:
    alpha = incident.threshold("general", "alpha")
    gap = incident.threshold(CHECK, "issue_rate_gap")
    bias_limit = incident.threshold(CHECK, "residual_bias")
    frames = {}
    for side, df in (("reference", incident.reference), ("production", incident.production)):
        y = pd.to_numeric(df[incident.target], errors="coerce").to_numpy(float)
        pred = pd.to_numeric(df[incident.prediction], errors="coerce").to_numpy(float)
        ok = np.isfinite(y) & np.isfinite(pred)
        src = _sources(incident, df)
        frames[side] = pd.DataFrame({
            "row": df[incident.columns.id].to_numpy(object)[ok] if incident.columns.id in df.columns else np.flatnonzero(ok),
            "source": src.to_numpy(object)[ok] if src is not None else UNKNOWN_SOURCE,
            "target": y[ok], "prediction": pred[ok], "residual": (y - pred)[ok]})
    ref, prod = frames["reference"], frames["production"]
    centre, scale = sl.robust_location_scale(ref["residual"])
    for df in (ref, prod):
        df["robust_z"] = sl.robust_z(df["residual"], centre, scale)
        df["outlier"] = df["robust_z"].abs() > sl.OUTLIER_Z
    evidence = LabelsEvidence(residual_centre=centre, residual_scale=scale, outlier_z=sl.OUTLIER_Z,
                              labelled_production_rows=len(prod))
    rows = []
    for side, df in (("reference", ref), ("production", prod)):
        lo, hi = wilson(df["outlier"].sum(), len(df))
        rows.append({"side": side, "rows": len(df), "outlier_rate": df["outlier"].mean() if len(df) else np.nan,
                     "ci_low": float(lo), "ci_high": float(hi),
                     "median_robust_z": float(df["robust_z"].median()) if len(df) else np.nan})
    table = pd.DataFrame(rows)
    evidence.reference_outlier_rate = float(table.loc[0, "outlier_rate"])
    evidence.production_outlier_rate = float(table.loc[1, "outlier_rate"]) if len(prod) else None
    review = (pd.concat([prod.assign(side="production"), ref.assign(side="reference")])
              .assign(abs_z=lambda d: d["robust_z"].abs()).sort_values(["side", "abs_z"], ascending=[False, False])
              .groupby("side", sort=False).head(REVIEW_ROWS).drop(columns=["abs_z", "outlier"]))
    if incident.columns.id:
        review = review.rename(columns={"row": incident.columns.id})
    tables = {"outlier_rates": table, "review": review}
    if len(prod) == 0 and not _comparable_sources(incident):
        return Result(skipped(CHECK, "Production has no labels and no label sources to compare, so label "
                                     f"quality cannot be compared; in reference {table.loc[0, 'outlier_rate']:.1%} "
                                     "of targets are residual outliers. Provide production labels "
                                     "(or a label_source column).", **evidence.to_dict()), tables=tables)
    # sources against the rest of their period: residual bias (robust SDs) and outlier rate
    src_rows = []
    for side, df in (("reference", ref), ("production", prod)):
        names = pd.unique(df["source"])
        for name in names:
            a, b = df[df["source"] == name], df[df["source"] != name]
            lo, hi = wilson(a["outlier"].sum(), len(a))
            row = {"side": side, "source": name, "labelled_rows": len(a),
                   "median_robust_z": float(a["robust_z"].median()), "outlier_rate": float(a["outlier"].mean()),
                   "outlier_ci_low": float(lo), "outlier_ci_high": float(hi)}
            if len(names) > 1 and len(a) >= MIN_ROWS and len(b) >= MIN_ROWS:
                row["bias_vs_rest"] = float(a["robust_z"].median() - b["robust_z"].median())
                row["bias_p"] = float(stats.mannwhitneyu(a["robust_z"], b["robust_z"]).pvalue)
                d, p = proportion_difference(a["outlier"].sum(), len(a), b["outlier"].sum(), len(b))
                row["outliers_vs_rest"], row["outliers_p"] = float(d), float(p)
            src_rows.append(row)
    sources = pd.DataFrame(src_rows)
    for col in ("bias_vs_rest", "bias_p", "outliers_vs_rest", "outliers_p"):
        if col not in sources.columns:
            sources[col] = np.nan
    p_all = np.concatenate([sources["bias_p"].to_numpy(float), sources["outliers_p"].to_numpy(float),
                            np.atleast_1d(proportion_difference(prod["outlier"].sum(), len(prod), ref["outlier"].sum(), len(ref))[1])])
    _, significant = fdr(p_all, alpha=alpha)
    n = len(sources)
    sources["biased"] = significant[:n] & (sources["bias_vs_rest"].abs() >= bias_limit).to_numpy()
    sources["more_outliers"] = significant[n:2 * n] & (sources["outliers_vs_rest"] >= gap).to_numpy()
    sources["flagged"] = sources["biased"] | sources["more_outliers"]
    tables["sources"] = sources
    evidence.sources = sources.to_dict(orient="records")
    outlier_change = (table.loc[1, "outlier_rate"] - table.loc[0, "outlier_rate"]) if len(prod) else np.nan
    quality = bool(len(prod) >= MIN_ROWS and significant[-1] and abs(outlier_change) >= gap)
    evidence.outlier_rate_change = float(outlier_change) if np.isfinite(outlier_change) else None

    reasons, culprits, ratios = [], [], [0.0]
    flagged = sources[sources["flagged"]]
    for _, row in flagged.sort_values("side", ascending=False).iterrows():
        culprits.append(str(row["source"]))
        ratios.append(max(abs(row["bias_vs_rest"]) / bias_limit, row["outliers_vs_rest"] / gap))
        reasons.append(f"label source {row['source']} ({row['side']}) is off from the rest by "
                       f"{row['bias_vs_rest']:+.2f} robust SDs of residual, outlier rate {row['outlier_rate']:.1%}")
    if quality:
        ratios.append(abs(outlier_change) / gap)
        reasons.append(f"{table.loc[1, 'outlier_rate']:.1%} of production targets are residual outliers "
                       f"against {table.loc[0, 'outlier_rate']:.1%} in reference")
        if not culprits:
            culprits.append("label noise")
    culprits = list(dict.fromkeys(culprits))
    if reasons:
        strongest = max(ratios)
        finding = Finding(CHECK, "detected", "critical" if strongest >= 2 else "warning",
                          "Labels changed: " + "; ".join(reasons[:2]) + ".", culprits, evidence,
                          strength=float(min(1.0, strongest / 4)))
    else:
        finding = Finding(CHECK, "clear", "info",
                          f"Targets look as clean as in reference: {table.loc[1, 'outlier_rate']:.1%} residual outliers "
                          f"in production against {table.loc[0, 'outlier_rate']:.1%}, and no label source is biased.",
                          [], evidence)
    return Result(finding, tables=tables, data={"reference_z": ref["robust_z"].to_numpy(),
                                                "production_z": prod["robust_z"].to_numpy(),
                                                "sources": sources})


# --- page helpers -------------------------------------------------------------------------------------
_COLUMNS = {"side": "period", "rows": "rows", "issue_rate": "flagged as likely wrong", "ci_low": "95% low",
            "ci_high": "95% high", "expected_rate": "expected from model uncertainty",
            "excess": "flagged beyond expectation", "excess_ci_low": "beyond: 95% low",
            "excess_ci_high": "beyond: 95% high", "outlier_rate": "residual outliers",
            "median_robust_z": "median residual (robust SD)", "source": "label source", "share": "share of labels",
            "share_change": "share change", "share_change_significant": "change significant",
            "label_source": "label source", "given_label": "given label", "suggested_label": "suggested label",
            "confidence": "probability of suggested", "probability_of_given_label": "probability of given",
            "target": "target", "prediction": "prediction", "residual": "residual", "robust_z": "robust z"}


def page_table(result, name: str) -> pd.DataFrame:
    """Table ``name`` as the page shows it: readable column names (empty when absent)."""
    if name == "definition":
        return definition_view(result)
    if name == "sources":
        return sources_view(result)
    t = result.tables.get(name)
    if t is None:
        return pd.DataFrame()
    return t.rename(columns=_COLUMNS)


def definition_view(result, *, rows: int = 40) -> pd.DataFrame:
    """The definition comparisons as the page shows them: moved first, then the largest gaps."""
    t = result.tables.get("definition")
    if t is None or t.empty:
        return pd.DataFrame()
    t = t[t["p_value"].notna()].assign(size=lambda d: d["gap"].abs())
    t = t.sort_values(["moved", "size"], ascending=[False, False]).head(rows)
    placed = CONTRACT.evidence_of(result.finding).definition["placed_by"]
    return pd.DataFrame({
        "labels of": np.where(t["comparison"] == "production vs reference", "production",
                              t["comparison"].str.split(" source").str[0] + " source " + t["source"].astype(str)),
        placed: t["group"], "label": t["label"], "rows": t["rows"], "share with label": t["rate"],
        "reference at the same class balance": t["baseline_rate"], "gap": t["gap"], "p-value": t["p_value"],
        "moved": t["moved"]})


def sources_view(result) -> pd.DataFrame:
    """The label-source table with readable column names (classification or regression)."""
    t = result.tables.get("sources")
    if t is None or t.empty:
        return pd.DataFrame()
    names = {"side": "period", "source": "label source", "labelled_rows": "labelled rows",
             "agreement": "agreement with model", "agreement_vs_rest": "agreement vs other sources",
             "issue_rate": "flagged as likely wrong", "excess": "flagged beyond model uncertainty",
             "excess_vs_rest": "excess vs other sources", "median_robust_z": "median residual (robust SD)",
             "bias_vs_rest": "bias vs other sources", "outlier_rate": "residual outliers",
             "outliers_vs_rest": "outliers vs other sources", "flagged": "stands out"}
    return t[[c for c in names if c in t.columns]].rename(columns=names)


# --- contract -----------------------------------------------------------------------------------
# the defaults behind the verdict, overridable under thresholds.labels (docs/thresholds.md)
THRESHOLDS = {
    "issue_rate_gap": Threshold(0.03, "label-issue rate difference (absolute) that matters"),
    "source_disagreement": Threshold(0.1, "a label source's agreement with the model below the rest by this"),
    "definition_shift": Threshold(0.1, "max reliability-curve gap at the same score"),
    "residual_bias": Threshold(0.5, "regression: a source's median residual vs the rest, in robust SDs"),
}
THRESHOLD_NOTES = (
    "Label quality by confident learning, per label source and per score bin."
)


def _culprit(text: str) -> Culprit:
    if text in ("definition", "label noise"):
        return Culprit("label", value=text)
    return Culprit("label_source", value=text)


class LabelsEvidence(Evidence):
    """The label-quality finding's evidence."""

    labelled_production_rows: int | None = None
    # classification
    probabilities: str | None = None  # where the probabilities judging the labels come from (None: no model, no score)
    new_label_classes: list[str] | None = None  # classes production labels use that reference never did
    new_sources: list[str] | None = None  # label sources new in production
    reference_issue_rate: float | None = None  # share of labels flagged as likely wrong (confident learning)
    reference_issue_ci: list[float | None] | None = None
    reference_expected_issue_rate: float | None = None  # what the model's own uncertainty accounts for
    production_issue_rate: float | None = None
    production_issue_ci: list[float | None] | None = None
    production_expected_issue_rate: float | None = None
    excess_issue_change: dict[str, float | None] | None = None  # difference, se, p_value
    temperature: float | None = None
    confident_thresholds: dict[str, float | None] | None = None  # class → threshold
    production_prior_weights: dict[str, float | None] | None = None  # class → weight
    definition: dict[str, Any] | None = None  # same score (or inputs), same label rate? placed_by, tests, moved …
    class_shares: dict[str, Any] | None = None  # the prior-shift reading: did shares move at the same inputs?
    # regression: residual outliers
    residual_centre: float | None = None
    residual_scale: float | None = None
    outlier_z: float | None = None
    reference_outlier_rate: float | None = None
    production_outlier_rate: float | None = None
    outlier_rate_change: float | None = None
    sources: list[dict[str, Any]] | None = None  # per label source and period


def _actions(finding: dict, ctx: Context) -> list[dict]:
    culprits = finding.get("culprits", [])
    return [{"check": CHECK, "action": "Audit the labels before trusting the production metric",
             "detail": "review the likely mislabelled rows on the labels page; align label definitions"
                       + (" with " + ", ".join(culprits[:3]) if culprits else ""),
             "why": finding["summary"]}]


CONTRACT = register(CheckContract(
    id=CHECK, thresholds=THRESHOLDS, threshold_notes=THRESHOLD_NOTES,
    title="Label quality", question="Are labels as clean and as defined as offline?", stage="cause",
    module=__name__, culprit=_culprit, actions=_actions, evidence=LabelsEvidence,
    explains=(WhenSymptomSays("prior_shift", flag="follows_from_labels",
                              reason="class shares moved at the same inputs and scores: the labels changed, "
                                     "not the traffic"),),
    checklist=(("measurement", "Labels are as clean and as defined as offline"),),
    cost=16))
