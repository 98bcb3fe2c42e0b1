"""Measurement: is the gap real, or are we comparing different things?

"95% offline, 65% live" compares two numbers; this check makes sure they measure the same thing.
It recomputes the headline metric on both sides from the rows with one definition (and every other
metric beside it, each with an interval), then looks for the usual ways the comparison misleads:

- biased labels: production labels exist only for some kinds of rows (flagged cases get reviewed,
  the rest wait), so the production metric describes those rows, not all traffic. A
  labelled-vs-unlabelled classifier measures it; the fair number comes from reweighting labelled
  rows by their inverse labelling propensity and, for a binary model whose score is calibrated on
  reference, from confidence-based performance estimation;
- a class-balance artefact: the classes' shares moved, so accuracy changes although the model
  recognises each class as well as before (balanced accuracy does not move), or the reverse;
- an incomparable metric: production predictions or labels take values reference never had;
- the time windows of the two samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..contract import (
    CheckContract,
    Context,
    Evidence,
    MonitorRule,
    Threshold,
    WhenEvidence,
    register,
)
from ..data import sample_rows
from ..findings import Finding, Result
from ..metrics import headline, headline_name, metric_table, row_outcome
from ..stats.encoding import encode
from ..stats.intervals import bootstrap_ci, wilson
from ..stats.proportions import difference_ci
from ..stats.segments import grouped_bootstrap_mean
from ..stats.triage_labels import (
    calibration,
    column_differences,
    effective_size,
    expected_correct,
    labelling_classifier,
    weighted_mean,
)
from ..stats.triage_time import grain, period_codes
from ..stats.triage_values import as_text, class_codes, text_codes

CHECK = "measurement"
MAX_CLASSES_SHOWN = 20
MIN_PROPENSITY = 0.01    # weights capped at 100: a row almost never labelled cannot stand for a crowd
SUPPORT_PROPENSITY = 0.02  # a row this unlikely to be labelled has no labelled twin to stand in for it
FIT_ROWS = 50_000        # rows the labelled-vs-unlabelled classifier learns from (seeded sample)


# --- pieces of evidence -------------------------------------------------------------------------
def time_windows(incident) -> pd.DataFrame:
    """First and last timestamp of reference and production, and days covered."""
    ts = incident.columns.timestamp
    rows = []
    for role, df in (("reference", incident.reference), ("production", incident.production)):
        if ts and ts in df.columns and df[ts].notna().any():
            first, last = df[ts].min(), df[ts].max()
            rows.append({"set": role, "first": first, "last": last,
                         "days": round((last - first) / pd.Timedelta(days=1), 1), "rows": len(df)})
    return pd.DataFrame(rows, columns=["set", "first", "last", "days", "rows"])


def label_coverage(incident) -> tuple[float, pd.DataFrame]:
    """Share of production predictions with a label, overall and per day (or week)."""
    prod = incident.production
    lab = incident.labelled.to_numpy()
    ts = incident.columns.timestamp
    if not (ts and ts in prod.columns and prod[ts].notna().any()):
        return float(lab.mean()), pd.DataFrame()
    freq = grain(prod[ts])
    codes, periods = period_codes(prod[ts], freq)
    ok = codes >= 0
    n = np.bincount(codes[ok], minlength=len(periods))
    k = np.bincount(codes[ok & lab], minlength=len(periods))
    lo, hi = wilson(k, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = pd.DataFrame({"period": periods, "rows": n, "labelled": k, "coverage": k / n,
                              "ci_low": lo, "ci_high": hi})
    table.attrs["freq"] = freq
    return float(lab.mean()), table


def class_balance(incident) -> pd.DataFrame:
    """Class shares: labels in reference and in labelled production, predictions on both sides."""
    ref, prod = incident.reference, incident.production
    t, p = incident.target, incident.prediction
    classes = [as_text(c) for c in incident.classes]
    out = pd.DataFrame({"class": classes})
    for name, s in (("reference_labels", ref[t]), ("production_labels", prod[t]),
                    ("reference_predictions", ref[p]), ("production_predictions", prod[p])):
        codes = class_codes(s, classes)
        counts = np.bincount(codes[codes >= 0], minlength=len(classes))
        total = (codes >= 0).sum()
        out[name] = counts / total if total else np.nan
        if name.endswith("labels"):
            out[f"{name}_low"], out[f"{name}_high"] = wilson(counts, np.full(len(classes), total))
    return out


def confusion(incident, df: pd.DataFrame) -> pd.DataFrame:
    """Confusion matrix (rows: true class, columns: predicted class) of ``df``'s labelled rows."""
    classes = [as_text(c) for c in incident.classes][:MAX_CLASSES_SHOWN]
    y, yp = class_codes(df[incident.target], classes), class_codes(df[incident.prediction], classes)
    ok = (y >= 0) & (yp >= 0)
    k = len(classes)
    cm = np.bincount(y[ok] * k + yp[ok], minlength=k * k).reshape(k, k)
    return pd.DataFrame(cm, index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted"))


def unknown_values(incident) -> dict[str, float]:
    """Share of production predictions and labels with a value reference never had (classification)."""
    ref, prod = incident.reference, incident.production
    known = sorted(set(text_codes(ref[incident.target])[1]) | set(text_codes(ref[incident.prediction])[1]))
    out = {}
    for name, col in (("predictions", incident.prediction), ("labels", incident.target)):
        codes = class_codes(prod[col], known)
        present = prod[col].notna().to_numpy()
        out[name] = float((present & (codes < 0)).sum() / present.sum()) if present.any() else 0.0
    return out


def labelling_bias(incident, outcome: np.ndarray) -> tuple[dict, pd.DataFrame]:
    """Labelled vs unlabelled production rows: classifier AUC, per-column differences and the
    inverse-propensity-weighted metric for all production rows."""
    prod = incident.production
    lab = incident.labelled.to_numpy()
    types = {f: incident.feature_types[f] for f in incident.features}
    for s in incident.columns.segments:
        types.setdefault(s, "categorical")
    if incident.score and incident.score in prod.columns:
        types[incident.score] = "numeric"
    types[incident.prediction] = "categorical" if incident.is_classification else "numeric"
    differences = column_differences(prod, lab, types)
    seed = int(incident.threshold("general", "seed"))
    n_fit = int(min(incident.threshold("general", "sample_rows"), FIT_ROWS))
    sample = sample_rows(prod.assign(_outcome=outcome, _labelled=lab), n_fit, seed=seed)
    (X,), categorical = encode([sample], types)
    y = sample["_labelled"].to_numpy(bool)
    fit = labelling_classifier(X, y, categorical, seed=seed)
    info = {"auc": fit["auc"], "auc_ci": list(fit["auc_ci"]), "rows_fitted": int(len(sample)),
            "rows_total": int(len(prod)), "sampled": len(sample) < len(prod)}
    if fit["models"]:
        o = sample["_outcome"].to_numpy(float)[y]
        w = 1 / np.clip(fit["oof"][y], MIN_PROPENSITY, 1)
        estimate = weighted_mean(o, w)
        lo, hi = bootstrap_ci(lambda o, w: weighted_mean(o, w), o, w, seed=seed)
        ess = effective_size(w)
        # Reweighting can only stand labelled rows in for traffic that had a chance of being labelled
        # (positivity). Rows whose labelling propensity is near zero have no labelled twin, and a
        # few heavily weighted rows carry the estimate when the effective sample collapses.
        unsupported = float(np.mean(fit["oof"] < SUPPORT_PROPENSITY)) if len(fit["oof"]) else np.nan
        info.update(reweighted=estimate, reweighted_ci=[lo, hi], effective_rows=ess,
                    effective_share=ess / max(int(y.sum()), 1), unsupported_share=unsupported,
                    sample_measured=float(np.nanmean(o)) if len(o) else np.nan)
        info["positivity"] = bool(unsupported <= incident.threshold(CHECK, "unsupported_share")
                                  and info["effective_share"] >= incident.threshold(CHECK, "effective_share"))
    return info, differences


def confidence_estimate(incident) -> dict | None:
    """Accuracy expected on every production row from the score, when it is calibrated on reference."""
    if incident.kind != "binary" or not incident.score or incident.score not in incident.production.columns \
            or incident.score not in incident.reference.columns:
        return None
    ref, prod = incident.reference, incident.production
    y_ref = incident.to_positive(ref[incident.target])
    ece, table = calibration(y_ref, pd.to_numeric(ref[incident.score], errors="coerce").to_numpy(float))
    info = {"calibration_error": ece, "calibrated": bool(ece <= incident.threshold(CHECK, "calibration_error")),
            "reliability": table}
    score = pd.to_numeric(prod[incident.score], errors="coerce").to_numpy(float)
    pred = prod[incident.prediction]
    ok = np.isfinite(score) & pred.notna().to_numpy()
    correct = expected_correct(score[ok], pred[ok].eq(incident.positive_label).to_numpy(bool))
    if len(correct) == 0:
        return info
    lo, hi = (float(b[0]) for b in grouped_bootstrap_mean(correct, np.zeros(len(correct), dtype=np.int64), 1,
                                                         seed=int(incident.threshold("general", "seed"))))
    info.update(estimate=float(correct.mean()), estimate_ci=[lo, hi], rows=int(ok.sum()))
    lab = incident.labelled.to_numpy()[ok]
    if lab.any():
        info["estimate_on_labelled"] = float(correct[lab].mean())
    return info


# --- the check ----------------------------------------------------------------------------------
def run(incident) -> Result:
    """Recompute the metrics on both sides and look for ways the comparison misleads."""
    metric = headline_name(incident)
    higher_better = incident.is_classification
    gap_limit = incident.threshold(CHECK, "metric_gap" if higher_better else "relative_gap")
    seed = int(incident.threshold("general", "seed"))
    ref_h, prod_h = headline(incident, incident.reference), headline(incident, incident.production)
    n_lab, n_prod = prod_h["rows"], len(incident.production)
    metrics = metric_table(incident, {"reference": incident.reference, "production": incident.production},
                           seed=seed)
    coverage, coverage_table = label_coverage(incident)
    windows = time_windows(incident)
    tables: dict[str, pd.DataFrame] = {"metrics": metrics, "coverage": coverage_table, "windows": windows}
    data: dict = {"metric": metric, "higher_is_better": higher_better}
    evidence = MeasurementEvidence(metric=metric, reference=ref_h, production=prod_h, labelled_share=coverage,
                                   windows=windows.to_dict(orient="records"))
    reasons: list[tuple[str, str]] = []   # (kind, sentence)

    def material(a, b) -> bool:
        if a is None or b is None or not (np.isfinite(a) and np.isfinite(b)):
            return False
        return abs(a - b) >= (gap_limit if higher_better else gap_limit * abs(b))

    if incident.is_classification:
        tables["class_balance"] = class_balance(incident)
        tables["confusion_reference"] = confusion(incident, incident.reference)
        tables["confusion_production"] = confusion(incident, incident.production)
        unknown = unknown_values(incident)
        evidence.unknown_values = unknown
        if max(unknown.values()) > 0.01:
            what = " and ".join(f"{share:.0%} of production {name}" for name, share in unknown.items() if share > 0.01)
            reasons.append(("incomparable", f"{what} take values reference never had ({', '.join(map(str, incident.classes[:6]))}"
                            f"{' …' if len(incident.classes) > 6 else ''}): the two sides do not use the same labels"))

    outcome = row_outcome(incident, incident.production)
    fair = {"measured": prod_h["value"]}
    n_with_label = int(incident.labelled.sum())
    if 10 <= n_with_label <= n_prod - 10:
        bias, differences = labelling_bias(incident, outcome)
        tables["labelled_vs_unlabelled"] = differences
        evidence.labelling = bias
        data["labelling"] = bias
        biased = (np.isfinite(bias["auc"]) and bias["auc"] > incident.threshold(CHECK, "coverage_bias_auc")
                  and bias["auc_ci"][0] > 0.5)
        evidence.labels_biased = bool(biased)
        if "reweighted" in bias:
            fair["reweighted"] = bias["reweighted"]
        if biased:
            top = differences.head(2)
            where = ", ".join(f"{r.column}" for r in top.itertuples()) if len(top) else "the inputs"
            correctable = bool(bias.get("positivity"))
            evidence.labels_correctable = correctable
            shift = "reweighted" in bias and material(bias["reweighted"], prod_h["value"]) and not (
                bias["reweighted_ci"][0] <= prod_h["value"] <= bias["reweighted_ci"][1])
            if not correctable or shift:
                why = ""
                if "reweighted" in bias and not correctable:
                    why = (f"; they cannot be reweighted into a fair sample: {bias['unsupported_share']:.0%} of "
                           f"production rows had almost no chance of a label (propensity below "
                           f"{SUPPORT_PROPENSITY:.0%}) and the weighted labelled rows are worth "
                           f"{bias['effective_rows']:,.0f} rows ({bias['effective_share']:.0%} of them)")
                reasons.append(("biased_labels",
                                f"the {n_with_label:,} labelled production rows ({coverage:.0%}) are not a fair sample of all "
                                f"predictions (labelled vs unlabelled rows are told apart with AUC {bias['auc']:.2f}, "
                                f"mostly by {where}){why}"))
            else:
                evidence.labelling_note = ("labelled rows differ from unlabelled ones, but reweighting them does "
                                           "not change the metric materially")
    conf = confidence_estimate(incident)
    if conf is not None:
        data["confidence"] = conf
        tables["calibration_reference"] = conf.pop("reliability")
        evidence.confidence_estimate = conf
        # trusted when calibrated on reference and, on the labelled production rows, agreeing with
        # the accuracy actually measured there (the score still means what it meant offline)
        conf["validated"] = bool(conf["calibrated"] and "estimate" in conf and (
            "estimate_on_labelled" not in conf
            or abs(conf["estimate_on_labelled"] - prod_h["value"]) <= max(gap_limit, prod_h["ci"][1] - prod_h["ci"][0])))
        if conf["validated"]:
            fair["confidence_based"] = conf["estimate"]

    biased_labels = any(k == "biased_labels" for k, _ in reasons)
    if incident.is_classification and n_lab >= incident.threshold(CHECK, "min_labels"):
        artefact = _balance_artefact(incident, metrics, tables["class_balance"], gap_limit)
        evidence.class_balance = artefact
        # with biased labels the labelled rows' class mix says how labels were chosen, not the traffic
        if artefact.get("misleading") and not biased_labels:
            reasons.append(("class_balance", artefact["sentence"]))

    fair_value = prod_h["value"]
    if biased_labels:
        # reweighting is only valid where every part of traffic could have been labelled; else the
        # label-free estimate (calibrated on reference) is the one number for all rows
        usable = {k: v for k, v in fair.items() if k != "measured"
                  and (k != "reweighted" or evidence.labels_correctable)}
        if conf is not None and conf.get("calibrated") and "estimate" in conf:
            usable.setdefault("confidence_based", conf["estimate"])
        fair_value = usable.get("confidence_based", usable.get("reweighted"))
        evidence.fair_from = next((k for k in ("confidence_based", "reweighted") if k in usable), None)
        if evidence.fair_from == "confidence_based":
            evidence.fair_production_ci = conf.get("estimate_ci")
    evidence.fair_production = fair_value
    evidence.estimates = fair
    tables["estimates"] = _estimates_table(ref_h, prod_h, evidence, conf)
    data["fair_production"] = fair_value

    return Result(_finding(incident, reasons, ref_h, prod_h, fair_value, coverage, evidence, metric,
                           higher_better), tables=tables, data=data)


def _balance_artefact(incident, metrics: pd.DataFrame, balance: pd.DataFrame, gap_limit: float) -> dict:
    """Do accuracy and balanced accuracy tell different stories while the class shares moved?

    Each part must be real, not noise: the class share moved beyond its 95% interval, and the
    metric change said to matter has intervals on the two sides that do not overlap.
    """
    m = metrics.set_index(["set", "metric"])
    needed = [(s, k) for s in ("reference", "production") for k in ("accuracy", "balanced_accuracy")]
    if any(key not in m.index for key in needed):
        return {}
    n_ref, n_prod = m.loc[("reference", "accuracy"), "rows"], m.loc[("production", "accuracy"), "rows"]
    shift = (balance["production_labels"] - balance["reference_labels"]).abs()
    i = int(shift.fillna(0).to_numpy().argmax())
    moved = float(shift.iloc[i]) if shift.notna().any() else 0.0
    lo, hi = difference_ci(balance["production_labels"].iloc[i] * n_prod, n_prod,
                           balance["reference_labels"].iloc[i] * n_ref, n_ref)
    shares_moved = moved >= incident.threshold(CHECK, "class_balance_change") and (lo > 0 or hi < 0)

    def change(metric):
        ref, prod = m.loc[("reference", metric)], m.loc[("production", metric)]
        real = prod["ci_high"] < ref["ci_low"] or prod["ci_low"] > ref["ci_high"]
        return float(prod["value"] - ref["value"]), bool(real)

    d_acc, acc_real = change("accuracy")
    d_bal, bal_real = change("balanced_accuracy")
    out = {"class_share_change": moved, "accuracy_change": d_acc, "balanced_accuracy_change": d_bal,
           "misleading": False}
    if not shares_moved:
        return out
    if abs(d_acc) >= gap_limit and acc_real and abs(d_bal) < gap_limit:
        out["misleading"] = True
        out["sentence"] = (f"class shares moved by up to {moved:.0%} between reference and labelled production; "
                           f"accuracy changed by {d_acc:+.3f} but balanced accuracy (every class weighted alike) only "
                           f"by {d_bal:+.3f}, so the accuracy gap is mostly the class mix: compare balanced accuracy")
    elif -d_bal >= gap_limit and bal_real and abs(d_acc) < gap_limit:
        out["misleading"] = True
        out["sentence"] = (f"class shares moved by up to {moved:.0%}; accuracy changed by only {d_acc:+.3f} while "
                           f"balanced accuracy fell by {-d_bal:.3f}: accuracy hides a drop on the rarer class, "
                           "compare balanced accuracy")
    return out


def _estimates_table(ref_h, prod_h, evidence, conf) -> pd.DataFrame:
    rows = [{"estimate": "reference (all labelled rows)", "value": ref_h["value"], "ci_low": ref_h["ci"][0],
             "ci_high": ref_h["ci"][1], "rows": ref_h["rows"]},
            {"estimate": "production, labelled rows as measured", "value": prod_h["value"], "ci_low": prod_h["ci"][0],
             "ci_high": prod_h["ci"][1], "rows": prod_h["rows"]}]
    lab = evidence.labelling or {}
    if "reweighted" in lab:
        rows.append({"estimate": "production, all rows (labelled rows reweighted)", "value": lab["reweighted"],
                     "ci_low": lab["reweighted_ci"][0], "ci_high": lab["reweighted_ci"][1],
                     "rows": round(lab["effective_rows"])})
    if conf and "estimate" in conf:
        name = "production, all rows (from the score" + ("" if conf["validated"] else "; not trusted: score "
                                                           "not calibrated") + ")"
        rows.append({"estimate": name, "value": conf["estimate"], "ci_low": conf["estimate_ci"][0],
                     "ci_high": conf["estimate_ci"][1], "rows": conf["rows"]})
    return pd.DataFrame(rows)


def _fmt(value, higher_better: bool) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:.3f}" if higher_better else f"{value:.4g}"


def _finding(incident, reasons, ref_h, prod_h, fair_value, coverage, evidence, metric, higher_better) -> Finding:
    f = lambda v: _fmt(v, higher_better)  # noqa: E731
    min_labels = incident.threshold(CHECK, "min_labels")
    n_lab = prod_h["rows"]
    measured_gap = (ref_h["value"] - prod_h["value"]) if n_lab and ref_h["value"] is not None else None
    if reasons:
        kinds = [k for k, _ in reasons]
        text = "; ".join(s for _, s in reasons)
        fair = ""
        if "biased_labels" in kinds and fair_value is not None and np.isfinite(fair_value):
            ci = evidence.fair_production_ci
            how = (" from the score, calibrated on reference" if evidence.fair_from == "confidence_based"
                   else " by reweighting the labelled rows")
            interval = f" [{f(ci[0])}, {f(ci[1])}]" if ci else ""
            fair = (f" Measured on the labelled rows production {metric} is {f(prod_h['value'])}; estimated{how} "
                    f"for all production rows it is {f(fair_value)}{interval}, against {f(ref_h['value'])} offline.")
        elif "biased_labels" in kinds:
            fair = " No fair estimate could be made; label a random sample of production rows."
        summary = f"The comparison is misleading: {text}.{fair}"
        fair_gap = (ref_h["value"] - fair_value) if fair_value is not None and ref_h["value"] is not None else None
        explained = 0.5
        if measured_gap and fair_gap is not None and np.isfinite(fair_gap):
            explained = float(np.clip(1 - abs(fair_gap) / abs(measured_gap), 0, 1))
        severity = "critical" if "incomparable" in kinds or explained >= 0.5 else "warning"
        return Finding(CHECK, "detected", severity, _capital(summary), [], evidence,
                       strength=max(explained, 0.3))
    if n_lab < min_labels:
        conf = evidence.confidence_estimate or {}
        est = (f" From the calibrated score, production {metric} is estimated at {f(conf['estimate'])}."
               if conf.get("calibrated") and "estimate" in conf else "")
        have = (f"only {n_lab:,} labelled rows (fewer than {min_labels:.0f}), too few to judge the gap"
                if n_lab else "no labelled rows, so the gap cannot be measured")
        return Finding(CHECK, "inconclusive", "warning",
                       f"Production has {have}; label more production rows.{est}", [], evidence)
    bias = evidence.labelling
    fairness = (f" (a fair sample: labelled and unlabelled rows look alike, AUC {bias['auc']:.2f})"
                if bias and np.isfinite(bias["auc"]) and not evidence.labels_biased
                else " (every production row has a label)" if coverage == 1 else "")
    summary = (f"The gap is real: {metric} {f(ref_h['value'])} [{f(ref_h['ci'][0])}, {f(ref_h['ci'][1])}] offline vs "
               f"{f(prod_h['value'])} [{f(prod_h['ci'][0])}, {f(prod_h['ci'][1])}] in production, computed the same way "
               f"on the {n_lab:,} labelled production rows with a prediction{fairness}.")
    if evidence.labelling_note is not None:
        summary += " Labelled rows differ from unlabelled ones, but reweighting them does not change the metric."
    return Finding(CHECK, "clear", "info", summary, [], evidence)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def metrics_wide(result) -> pd.DataFrame:
    """The metrics table with reference and production side by side, for the page."""
    t = result.to_df("metrics")
    if t.empty:
        return t
    order = list(dict.fromkeys(t["metric"]))
    wide = t.pivot(index="metric", columns="set", values=["value", "ci_low", "ci_high"]).reindex(order)
    out = pd.DataFrame(index=order)
    for side in ("reference", "production"):
        if ("value", side) in wide.columns:
            out[side] = wide[("value", side)]
            out[f"{side} 95% interval"] = [f"[{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else "–"
                                           for lo, hi in zip(wide[("ci_low", side)], wide[("ci_high", side)],
                                                             strict=True)]
    if {"reference", "production"} <= set(out.columns):
        out["change"] = out["production"] - out["reference"]
    return out.rename_axis("metric").reset_index()


# --- contract -----------------------------------------------------------------------------------
# the defaults behind the verdict, overridable under thresholds.measurement (docs/thresholds.md)
THRESHOLDS = {
    "metric_gap": Threshold(0.02, "smallest metric difference that counts as material"),
    "unsupported_share": Threshold(0.05, "share of production rows with (almost) no chance of a label above which "
                                         "reweighting the labelled rows cannot correct them (positivity fails)"),
    "effective_share": Threshold(0.1, "effective sample of the reweighted labelled rows, as a share of them, "
                                      "below which reweighting cannot correct them"),
    "coverage_bias_auc": Threshold(0.6,
                         "labelled-vs-unlabelled classifier AUC above which labels are a biased sample"),
    "relative_gap": Threshold(0.1, "regression: relative metric (MAE) difference that counts as material"),
    "min_labels": Threshold(100, "fewer labelled production rows than this: too few to judge the gap"),
    "class_balance_change": Threshold(0.05,
                         "absolute change of a class share that makes accuracy comparisons unfair"),
    "calibration_error": Threshold(0.05,
                         "expected calibration error on reference below which the score is trusted"),
}
THRESHOLD_NOTES = (
    "Is the offline-vs-production comparison fair?"
)


class MeasurementEvidence(Evidence):
    """The measurement finding's evidence (``checks.measurement.evidence`` in findings.json)."""

    metric: str | None = None  # the headline metric's name
    reference: dict[str, Any] | None = None  # headline metric on reference: value, ci, rows
    production: dict[str, Any] | None = None  # the same on the labelled production rows
    labelled_share: float | None = None  # share of production rows with a label
    windows: list[dict[str, Any]] | None = None  # first/last timestamp, days and rows of each side
    unknown_values: dict[str, float] | None = None  # classification: share of production predictions/labels unseen in reference
    labelling: dict[str, Any] | None = None  # labelled-vs-unlabelled classifier (auc, reweighted estimate, positivity …)
    labels_biased: bool | None = None  # the labelled production rows are not a fair sample of all rows
    labels_correctable: bool | None = None  # biased, but reweighting the labelled rows can correct them
    labelling_note: str | None = None  # biased labels that do not change the metric materially
    confidence_estimate: dict[str, Any] | None = None  # the metric estimated from a score calibrated on reference
    class_balance: dict[str, Any] | None = None  # whether a class-share change makes the comparison misleading
    fair_from: str | None = None  # biased labels: the estimate behind fair_production (confidence_based, reweighted)
    fair_production_ci: list[float] | None = None
    fair_production: float | None = None  # the headline metric for all production rows
    estimates: dict[str, float | None] | None = None  # every estimate of the production metric, by method


def _actions(finding: dict, ctx: Context) -> list[dict]:
    return [{"check": CHECK, "action": "Report the fair metric, not the raw one",
             "detail": "the labelled production rows are not a fair sample; use the measurement "
                       "page's estimate for all traffic",
             "why": finding["summary"]}]


def _alerts(finding: dict, ctx: Context) -> list[dict]:
    metric, incident = ctx.doc["metric"], ctx.incident
    out = []
    # the bars are the monitor's (MONITOR below): one number per bar, wherever it is quoted
    gap, drop, window = ctx.monitor_bar("offline_gap"), ctx.monitor_bar("metric_drop"), incident.spec.monitoring.window
    higher = metric.get("higher_is_better", True)
    if metric.get("reference") is not None and gap is not None:
        bound = metric["reference"] - gap if higher else metric["reference"] * (1 + gap)
        out.append({"alert": "metric_gap", "metric": metric["name"],
                    "condition": f"{metric['name']} per {window} window {'<' if higher else '>'} {bound:.3f} "
                                 "(its interval entirely beyond)", "monitor": "offline_gap",
                    "why": "the production metric left the offline value"})
    if drop is not None:
        change = f"{drop:g} below" if higher else f"{drop:.0%} above"
        out.append({"alert": "metric_drop", "metric": metric["name"],
                    "condition": f"{metric['name']} per {window} window {change} the median of the previous "
                                 f"{incident.spec.monitoring.baseline_windows} windows", "monitor": "metric_drop",
                    "why": "a sudden fall, whatever the offline value"})
    if incident.target in incident.production.columns:
        coverage = float(incident.labelled.mean())
        out.append({"alert": "label_coverage", "metric": "labelled share",
                    "condition": f"weekly labelled share < {max(coverage * 0.8, 0.0):.2f} or labelled rows biased",
                    "why": f"{coverage:.0%} of production rows are labelled now"})
    return out


# Alert rules `mlinvestigate monitor` evaluates per window: this check judges the headline gap.
MONITOR = (
    MonitorRule("metric_drop", "performance", critical=0.05, unit="metric", test="metric_vs_trailing",
                subject="metric", watches="headline metric down against the trailing windows",
                sentence="Headline metric {value}{estimated} against {bar} in the trailing windows"),
    MonitorRule("offline_gap", "performance", critical=0.15, unit="metric", test="metric_vs_offline",
                subject="metric", watches="headline metric below its offline (reference) value",
                sentence="Headline metric {value}{estimated} against {bar} offline"),
)


def _facts(finding: dict, ctx: Context) -> dict:
    v = CONTRACT.evidence_of(finding).fair_production
    if finding.get("verdict") != "detected" or not isinstance(v, (int, float)):
        return {}
    return {"fair_production": float(v)}


BIASED_LABELS = "their verdicts rest on labelled production rows, which are a biased sample"

CONTRACT = register(CheckContract(
    id=CHECK, thresholds=THRESHOLDS, threshold_notes=THRESHOLD_NOTES,
    title="Measurement", question="Is the gap real?", stage="triage", module=__name__,
    explains=(WhenEvidence(("segments", "labels", "leakage"), flag="labels_biased", reason=BIASED_LABELS),
              # a class balance estimated from the model's outputs, not the labels, is not biased by them
              WhenEvidence(("prior_shift",), flag="labels_biased", unless="estimated", reason=BIASED_LABELS)),
    actions=_actions, alerts=_alerts, facts=_facts, evidence=MeasurementEvidence, monitor=MONITOR,
    about_the_gap="The measurement check found the comparison fair: same metric, representative labels.",
    checklist=(("measurement", "Offline and production metrics compare like with like"),),
    cost=4.5))
