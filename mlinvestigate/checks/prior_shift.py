"""Prior shift: did the class balance (or the target distribution) move between reference and production?

With representative production labels the observed shares are compared with reference (Wilson
intervals). Labels usually arrive late, or only for some predictions, so the production shares are
also estimated from the model's outputs over *all* production rows — BBSE from the hard predictions
and, for a binary model with a score, EM on the recalibrated score — and the estimate replaces the
observed shares when labels are missing or the labelled rows are not a fair sample of the traffic.
For a binary model with a score the page then works out what the new balance does at the current
threshold and which threshold would be best now.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..contract import (
    Accompanies,
    CheckContract,
    Context,
    Culprit,
    Evidence,
    Threshold,
    WhenSymptomBlamesOnly,
    register,
)
from ..data import sample_rows
from ..findings import Finding, Result, skipped
from ..stats import prior as sp
from ..stats.intervals import fdr, wilson
from ..stats.proportions import proportion_difference
from ..stats.triage_values import class_codes

CHECK = "prior_shift"
# Fewer labelled production rows than this are not used as the production class balance.
MIN_LABELLED = 30
N_RESAMPLES = 200


def _sample_size(incident) -> int:
    return int(incident.threshold("general", "sample_rows"))


def run(incident, *, cost_ratio: float | None = None) -> Result:
    """Compare the class balance (classification) or target distribution (regression).

    Parameters
    ----------
    incident : Incident
    cost_ratio : float, optional
        Cost of a false negative over a false positive for the recommended threshold; default
        ``thresholds.prior_shift.cost_ratio``.
    """
    if cost_ratio is None:
        cost_ratio = incident.threshold(CHECK, "cost_ratio")
    # The labels check reads this finding too: a run's kernel computes it once per incident it read
    # from the run's cache (``Incident.results``); an incident built or changed by hand is not kept.
    memo = getattr(incident, "results", None)
    key = (CHECK, float(cost_ratio))
    if memo is not None and key in memo:
        return memo[key]
    result = _regression(incident) if incident.kind == "regression" else _classification(incident, float(cost_ratio))
    if memo is not None:
        memo[key] = result
    return result


# --- classification ---------------------------------------------------------------------------------
def _classification(incident, cost_ratio: float) -> Result:
    classes = list(incident.classes)
    k = len(classes)
    ref, prod = incident.reference, incident.production
    ref_y = class_codes(ref[incident.target], classes)
    ref_pred = class_codes(ref[incident.prediction], classes)
    prod_y = class_codes(prod[incident.target], classes)
    prod_pred = class_codes(prod[incident.prediction], classes)
    binary = incident.kind == "binary"
    pos = classes.index(incident.positive_label) if binary else None
    alpha = incident.threshold("general", "alpha")
    seed = int(incident.threshold("general", "seed"))
    notes: list[str] = []

    ref_counts = np.bincount(ref_y[ref_y >= 0], minlength=k).astype(float)
    ref_shares = ref_counts / ref_counts.sum()
    labelled = prod_y >= 0
    n_lab = int(labelled.sum())
    obs_counts = np.bincount(prod_y[labelled], minlength=k).astype(float)
    obs_lo, obs_hi = wilson(obs_counts, n_lab)

    representative = _representativeness(prod_pred, labelled, k, incident, alpha)
    estimates = _estimates(incident, ref_y, ref_pred, prod_pred, k, pos, seed)
    trusted, why = _trusted(incident, estimates, binary)

    use_observed = n_lab >= MIN_LABELLED and representative["representative"]
    if use_observed:
        prod_shares = obs_counts / n_lab
        prod_lo, prod_hi = obs_lo, obs_hi
        source = "observed"
        if 0 < n_lab < len(prod):
            notes.append(f"{n_lab:,} of {len(prod):,} production rows are labelled; their predictions "
                         "look like all production rows', so the observed class balance is used.")
    elif trusted is not None:
        prod_shares, prod_lo, prod_hi = trusted.prior, trusted.ci_low, trusted.ci_high
        source = trusted.method
        if n_lab == 0:
            notes.append("Production has no labels: its class balance is estimated from the model's "
                         f"outputs ({_METHOD_NAMES[trusted.method]}).")
        elif n_lab < MIN_LABELLED:
            notes.append(f"Only {n_lab} production rows are labelled: the class balance is estimated "
                         f"from the model's outputs over all rows ({_METHOD_NAMES[trusted.method]}).")
        else:
            notes.append("The labelled production rows are not a fair sample of production (their "
                         "predictions differ from all rows'), so the observed labels would bias the "
                         "class balance; it is estimated over all production rows instead "
                         f"({_METHOD_NAMES[trusted.method]}).")
    else:
        evidence = PriorShiftEvidence(reference_class_rates=dict(zip(map(str, classes), ref_shares, strict=True)),
                                      estimated=True, labelled_rows=n_lab, reason=why)
        if binary:
            evidence.reference_positive_rate = float(ref_shares[pos])
            evidence.production_positive_rate = None
        return Result(Finding(CHECK, "inconclusive", "info",
                              "The production class balance cannot be measured or estimated: "
                              f"{why}. Provide production labels for a representative sample of rows.",
                              evidence=evidence),
                      tables={"estimates": _estimates_table(classes, ref_shares, obs_counts, n_lab,
                                                            estimates, None)})

    estimated = source != "observed"
    confusion = sp.conditional_confusion(sp.joint_counts(ref_y, ref_pred, k))
    n_ref = int(ref_counts.sum())
    change = _change_table(classes, ref_shares, prod_shares, prod_lo, prod_hi, incident,
                           counts=None if estimated else (obs_counts, n_lab), n_ref=n_ref)
    impact = _impact(confusion, ref_shares, prod_shares, pos, incident, change)
    change["material"] = change["significant"] & impact["material"]
    moved = change[change["material"]]
    fit = _label_shift_fit(incident, estimates, trusted, ref_y, pos, seed)
    evidence = _evidence(incident, classes, ref_shares, prod_shares, prod_lo, prod_hi, estimated, source,
                         n_lab, obs_counts, representative, estimates, trusted, why, binary, pos)
    evidence.label_shift_fit = fit
    evidence.significant_move = bool(change["significant"].any())
    evidence.impact = {key: v for key, v in impact.items() if key != "precision_by_class"}
    if "precision_class" in impact:
        evidence.impact["precision_class"] = str(classes[impact["precision_class"]])
    tables = {"class_balance": change,
              "estimates": _estimates_table(classes, ref_shares, obs_counts, n_lab, estimates, source),
              "representativeness": representative["table"]}
    data = {"classes": classes, "binary": binary, "positive_index": pos, "cost_ratio": cost_ratio,
            "estimated": estimated, "source": source, "notes": notes}
    if binary:
        consequences = _consequences(incident, ref_y == pos, ref_y >= 0, ref_pred == pos, prod,
                                     float(ref_shares[pos]), float(prod_shares[pos]), cost_ratio,
                                     estimates.get("em_calibration"), seed, ref_pred >= 0)
        if consequences:
            tables.update(consequences.pop("tables"))
            data.update(consequences.pop("data"))
            for key, value in consequences.items():
                setattr(evidence, key, value)
    else:
        evidence.expected_accuracy = _multiclass_accuracy(ref_y, ref_pred, k, ref_shares, prod_shares)

    if len(prod) > _sample_size(incident) or len(ref) > _sample_size(incident):
        notes.append(f"The score-mixture check, the re-weighted probabilities and the threshold explorer use "
                     f"seeded samples of at most {_sample_size(incident):,} rows a side; class shares, BBSE, EM and the "
                     "threshold curves use every row.")
    if fit.get("violated"):
        notes.append("The production outputs are not a re-weighted mix of the reference classes' outputs "
                     f"(distance {fit['distance']:.2f}): something other than the class balance moved "
                     "them (drifting inputs, a different model), so estimates from the outputs are unreliable.")
    reading = (_reading(incident, confusion, ref_shares, prod_shares, change, trusted, pos, n_ref)
               if not estimated and not fit.get("violated") and trusted is not None and len(moved) else None)
    evidence.label_free_reading = reading
    evidence.follows_from_labels = bool(reading is not None and reading["reading"] == "labels")
    rates = _describe_rates(classes, ref_shares, prod_shares, binary, pos, estimated, source)
    effect = _impact_text(impact, classes, pos)
    if not change["significant"].any():
        finding = Finding(CHECK, "clear", "info", f"The class balance is steady: {rates}; no class share "
                          "moved significantly.", [], evidence)
    elif not impact["material"]:
        finding = Finding(CHECK, "clear", "info",
                          f"The class balance moved significantly but too little to matter: {rates}. "
                          f"At the current decisions that alone {effect}, below the "
                          f"{impact['metric_limit']:.0%} (accuracy) and {impact['precision_limit']:.0%} "
                          "(precision) that count as material.", [], evidence)
    elif estimated and fit.get("violated"):
        finding = Finding(CHECK, "inconclusive", "info",
                          f"The model's outputs imply a class-balance change ({rates}), but they moved in a "
                          "way a change of class balance does not explain; check drift and deployment, "
                          "and provide production labels to measure the balance.", [], evidence)
    elif reading is not None and reading["reading"] == "labels":
        est = trusted.prior[pos] if binary else None
        outputs = (f"the model's outputs on the same traffic imply {est:.1%} ({_METHOD_NAMES[trusted.method]})"
                   if binary else f"the model's outputs imply shares close to reference ({_METHOD_NAMES[trusted.method]})")
        finding = Finding(CHECK, "inconclusive", "info",
                          f"The labels moved but the traffic did not: {rates}, while {outputs}. The move "
                          "follows from a change in how labels are given, or in what they mean, not from a "
                          "prior shift (see the labels check).", [], evidence)
    elif reading is not None and reading["reading"] == "opposite":
        finding = Finding(CHECK, "inconclusive", "info",
                          f"The labels and the model's outputs disagree: {rates}, while the outputs imply a "
                          f"move the other way ({_METHOD_NAMES[trusted.method]}). Check the labels and "
                          "drift checks before reading this as a prior shift.", [], evidence)
    else:
        target = incident.target
        ordered = moved.sort_values("abs_change", ascending=False)["class"]
        culprits = [f"{target}={classes[pos]}"] if binary else [f"{target}={c}" for c in ordered]
        strongest = float(moved["abs_change"].max())
        accuracy_effect = abs(impact["accuracy_change"]) if np.isfinite(impact["accuracy_change"]) else 0.0
        critical = (strongest >= 2 * incident.threshold(CHECK, "rate_change")
                    or accuracy_effect >= 3 * impact["metric_limit"])
        summary = f"The class balance moved: {rates}."
        if np.isfinite(impact["accuracy_change"]):
            summary += f" At the current decisions that alone {effect}."
        if reading is not None and reading["reading"] == "both":
            summary += (f" The model's outputs on all production rows move the same way "
                        f"({_METHOD_NAMES[trusted.method]}), so the traffic itself changed.")
        if binary and evidence.recommended_threshold is not None:
            summary += (f" At this balance the best threshold for the cost ratio {cost_ratio:g} is "
                        f"{evidence.recommended_threshold:.3g} (now {evidence.current_threshold:.3g}).")
        finding = Finding(CHECK, "detected", "critical" if critical else "warning", summary, culprits, evidence,
                          strength=float(min(1.0, 0.3 + max(strongest / 0.2, accuracy_effect / 0.1))))
    return Result(finding, tables=tables, data=data)


def _impact(confusion, ref_shares, prod_shares, pos, incident, change) -> dict:
    """Expected effect of the new balance on the headline metric and on precision/recall at the
    current decisions, and whether it is material.

    A move matters when it changes the expected accuracy by ``metric_impact`` or the precision by
    ``precision_impact`` (of the positive class; multiclass: of the class whose precision moves
    most); recall at fixed decisions does not move with the class balance. Without
    reference decisions to judge by, the share moves themselves decide (``rate_change`` /
    ``relative_change``).
    """
    metric_limit = incident.threshold(CHECK, "metric_impact")
    precision_limit = incident.threshold(CHECK, "precision_impact")
    out = {"metric_limit": metric_limit, "precision_limit": precision_limit}
    if confusion.sum() == 0:
        share_rule = _material(change["abs_change"].to_numpy(float), change["reference"].to_numpy(float), incident)
        out.update(accuracy_change=float("nan"), precision_change=float("nan"), recall_change=float("nan"),
                   material=bool((share_rule & change["significant"].to_numpy(bool)).any()),
                   judged_by="share change (no reference decisions)")
        return out
    impact = sp.prior_shift_impact(confusion, ref_shares, prod_shares, positive=pos)
    material = (abs(impact["accuracy_change"]) >= metric_limit
                or (np.isfinite(impact["precision_change"]) and abs(impact["precision_change"]) >= precision_limit))
    out.update(impact, material=bool(material), judged_by="expected effect at the current decisions")
    return out


def _impact_text(impact: dict, classes, pos) -> str:
    if not np.isfinite(impact.get("accuracy_change", np.nan)):
        return "cannot be judged against the model's decisions"
    which = f"precision for {classes[impact.get('precision_class', pos)]!s}"
    return (f"moves the expected accuracy from {impact['accuracy_reference']:.1%} to "
            f"{impact['accuracy_production']:.1%} ({100 * impact['accuracy_change']:+.1f} points) and the "
            f"{which} from {impact['precision_reference']:.1%} to {impact['precision_production']:.1%} "
            f"({100 * impact['precision_change']:+.1f} points), recall unchanged")


def _reading(incident, confusion, ref_shares, observed, change, trusted, pos, n_ref) -> dict:
    """Observed labels moved: do the model's outputs on all production rows move the same way?

    ``both``: the label-free estimate moved significantly and materially in the direction of the
    labels, so the traffic changed (a prior shift, even if the two disagree on how far).
    ``labels``: the estimate stays consistent with reference while the observed shares lie outside
    its interval: the labels moved at the same inputs (a label definition, not a prior shift).
    ``opposite``: the estimate moved significantly the other way. ``consistent``: the estimate is
    too uncertain to say more, and does not contradict the labels.
    """
    est = trusted.prior
    est_change = _change_table([str(i) for i in range(len(est))], ref_shares, est, trusted.ci_low,
                               trusted.ci_high, incident, counts=None, n_ref=n_ref)
    est_impact = _impact(confusion, ref_shares, est, pos, incident, est_change)
    moved = change["material"].to_numpy(bool)
    est_sig = est_change["significant"].to_numpy(bool)
    direction = np.sign(observed - ref_shares)
    same = est_sig & (np.sign(est - ref_shares) == direction) & moved
    opposite = est_sig & (np.sign(est - ref_shares) == -direction) & moved
    est_moved = bool(est_sig.any() and est_impact["material"])
    if same.any() and est_moved:
        reading = "both"
    elif opposite.any() and est_moved:
        reading = "opposite"
    elif not est_moved and _disagrees(observed, trusted, incident):
        reading = "labels"
    else:
        reading = "consistent"
    return {"reading": reading, "method": trusted.method, "estimate_moved": est_moved,
            "estimate_accuracy_change": est_impact.get("accuracy_change")}


def _label_shift_fit(incident, estimates, trusted, ref_y, pos, seed) -> dict:
    """Binary with a score: are production scores the reference classes' scores re-mixed at the estimate?"""
    if pos is None or trusted is None or "em_calibration" not in estimates:
        return {"checked": False}
    score = incident.score
    ref_s = pd.to_numeric(incident.reference[score], errors="coerce").to_numpy(float)
    prod_s = pd.to_numeric(incident.production[score], errors="coerce").to_numpy(float)
    ok = np.isfinite(ref_s) & (ref_y >= 0)
    prod_s = prod_s[np.isfinite(prod_s)]
    if len(prod_s) > _sample_size(incident):
        prod_s = np.random.default_rng(seed).choice(prod_s, _sample_size(incident), replace=False)
    distance = sp.mixture_distance(ref_s[ok], ref_y[ok] == pos, prod_s, float(trusted.prior[pos]))
    # two-sample KS critical value at 5%, with the reference side counted by its rarer class
    n_ref = min(int((ref_y[ok] == pos).sum()), int((ref_y[ok] != pos).sum()))
    critical = 1.36 * np.sqrt(1 / len(prod_s) + 1 / max(n_ref, 1))
    limit = incident.threshold(CHECK, "ks_statistic")
    return {"checked": True, "distance": distance, "critical": float(critical),
            "violated": bool(distance >= limit and distance > critical)}


def _disagrees(observed: np.ndarray, trusted, incident) -> bool:
    """Observed shares materially outside the interval of the estimate from the outputs."""
    outside = (observed < trusted.ci_low) | (observed > trusted.ci_high)
    material = _material(np.abs(observed - trusted.prior), trusted.prior, incident)
    return bool(np.any(outside & material))


_METHOD_NAMES = {"em": "EM on the recalibrated score", "bbse": "black-box shift estimation",
                 "observed": "observed labels", "predicted": "share of predictions"}


def _representativeness(prod_pred, labelled, k, incident, alpha) -> dict:
    """Do labelled production rows have the prediction mix of all production rows?"""
    n_lab, n_all = int(labelled.sum()), len(labelled)
    ok = prod_pred >= 0
    lab_counts = np.bincount(prod_pred[labelled & ok], minlength=k).astype(float)
    unl_counts = np.bincount(prod_pred[~labelled & ok], minlength=k).astype(float)
    all_counts = lab_counts + unl_counts
    n_lab_ok, n_unl_ok, n_ok = lab_counts.sum(), unl_counts.sum(), all_counts.sum()
    table = pd.DataFrame({"predicted": [str(c) for c in incident.classes],
                          "share_of_labelled": lab_counts / max(n_lab_ok, 1),
                          "share_of_all": all_counts / max(n_ok, 1)})
    if n_lab == 0 or n_lab == n_all or n_unl_ok == 0 or n_lab_ok == 0:
        table["significant"] = False
        table["material"] = False
        return {"representative": n_lab > 0, "table": table, "tested": False}
    diff, p = proportion_difference(lab_counts, n_lab_ok, unl_counts, n_unl_ok)
    _, significant = fdr(p, alpha=alpha)
    share_diff = table["share_of_labelled"] - table["share_of_all"]
    material = _material(share_diff.abs().to_numpy(), table["share_of_all"].to_numpy(), incident)
    table["significant"] = significant
    table["material"] = material
    return {"representative": not bool(np.any(significant & material)), "table": table, "tested": True}


def _material(abs_change: np.ndarray, base: np.ndarray, incident) -> np.ndarray:
    rel = np.divide(abs_change, base, out=np.full_like(abs_change, np.inf, dtype=float), where=base > 0)
    return (abs_change >= incident.threshold(CHECK, "rate_change")) | (
        rel >= incident.threshold(CHECK, "relative_change"))


def _estimates(incident, ref_y, ref_pred, prod_pred, k, pos, seed) -> dict:
    """BBSE (always, when predictions allow), EM (binary with a score) and the naive prediction shares."""
    out: dict = {}
    joint = sp.joint_counts(ref_y, ref_pred, k)
    prod_pred_counts = np.bincount(prod_pred[prod_pred >= 0], minlength=k).astype(float)
    if prod_pred_counts.sum() == 0 or joint.sum() == 0:
        return out
    shares = prod_pred_counts / prod_pred_counts.sum()
    lo, hi = wilson(prod_pred_counts, prod_pred_counts.sum())
    out["predicted"] = sp.PriorEstimate("predicted", shares, lo, hi,
                                        message="share of each predicted class (no correction for the "
                                                "model's errors)")
    out["bbse"] = sp.bbse_estimate(joint, prod_pred_counts, n_resamples=N_RESAMPLES, seed=seed)
    score = incident.score
    if pos is not None and score and score in incident.reference.columns and score in incident.production.columns:
        ref_s = pd.to_numeric(incident.reference[score], errors="coerce").to_numpy(float)
        prod_s = pd.to_numeric(incident.production[score], errors="coerce").to_numpy(float)
        ok_ref = np.isfinite(ref_s) & (ref_y >= 0)
        ok_prod = np.isfinite(prod_s)
        if ok_ref.sum() >= MIN_LABELLED and ok_prod.any() and len(np.unique(ref_y[ok_ref])) == 2:
            em, calibration = sp.em_estimate(ref_s[ok_ref], (ref_y[ok_ref] == pos).astype(float),
                                             prod_s[ok_prod], n_resamples=N_RESAMPLES, seed=seed)
            # em_estimate works on [negative, positive]; place them at the classes' indices
            for name in ("prior", "ci_low", "ci_high"):
                values = getattr(em, name)
                placed = np.zeros(k)
                placed[pos], placed[1 - pos] = values[1], values[0]
                setattr(em, name, placed)
            out["em"] = em
            out["em_calibration"] = calibration
    return out


def _trusted(incident, estimates: dict, binary: bool) -> tuple[sp.PriorEstimate | None, str]:
    """The estimate to rely on, and why: EM when the recalibrated score is calibrated, else BBSE."""
    em, bbse = estimates.get("em"), estimates.get("bbse")
    reasons = []
    if em is not None:
        ece = em.diagnostics["ece_calibrated"]
        limit = incident.threshold(CHECK, "calibration_ece")
        if em.usable and ece <= limit:
            return em, (f"EM is trusted: after Platt scaling the score is calibrated on reference "
                        f"(expected calibration error {ece:.3f} ≤ {limit:g}); it uses every row's "
                        "score, so it is less noisy than BBSE, which only uses the predicted class.")
        reasons.append(em.message or f"the score is not calibrated on reference even after Platt scaling "
                                     f"(expected calibration error {ece:.3f} > {limit:g})")
    elif binary:
        reasons.append("there is no score, so EM cannot run")
    else:
        reasons.append("a multiclass model logs no per-class probabilities, so EM cannot run")
    if bbse is not None and bbse.usable:
        return bbse, (f"BBSE is trusted ({'; '.join(reasons)}); the reference confusion matrix is "
                      f"well conditioned (condition number {bbse.diagnostics['condition_number']:.3g}).")
    if bbse is not None:
        reasons.append(bbse.message)
    if not estimates:
        reasons.append("there are no usable predictions")
    return None, "; ".join(reasons)


def _change_table(classes, ref_shares, prod_shares, lo, hi, incident, *, counts=None, n_ref: int = 0) -> pd.DataFrame:
    """Per class: reference and production share, the change, and whether it is significant.

    Significance is a test per class with Benjamini–Hochberg control across classes: for observed
    labels (``counts`` = production counts and labelled rows) the two-proportion test against the
    reference counts; for an estimate, a normal test from its bootstrap interval, which already
    carries the reference's sampling noise. ``material`` is filled in by the impact rule.
    """
    change = prod_shares - ref_shares
    table = pd.DataFrame({"class": [str(c) for c in classes], "reference": ref_shares,
                          "production": prod_shares, "ci_low": lo, "ci_high": hi, "change": change,
                          "abs_change": np.abs(change)})
    table["relative_change"] = np.divide(change, ref_shares, out=np.full_like(change, np.nan),
                                         where=ref_shares > 0)
    if counts is not None and n_ref:
        obs, n = counts
        _, p = proportion_difference(obs, n, np.asarray(ref_shares) * n_ref, n_ref)
    else:
        se = (np.asarray(hi, dtype=float) - np.asarray(lo, dtype=float)) / (2 * 1.959964)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.where(se > 0, np.abs(change) / se, np.where(np.abs(change) > 0, np.inf, 0.0))
        p = 2 * stats.norm.sf(z)
    p = np.asarray(p, dtype=float)
    table["p_value"] = p
    table["p_adjusted"], significant = fdr(p, alpha=incident.threshold("general", "alpha"))
    # the interval must exclude the reference share too, so the page's interval and verdict agree
    table["significant"] = significant & ((ref_shares < lo) | (ref_shares > hi))
    table["material"] = False
    return table


def _estimates_table(classes, ref_shares, obs_counts, n_lab, estimates, source) -> pd.DataFrame:
    rows = []
    lo, hi = wilson(obs_counts, n_lab)
    for i, c in enumerate(classes):
        rows.append({"class": str(c), "estimate": "reference (labels)", "share": ref_shares[i],
                     "ci_low": np.nan, "ci_high": np.nan, "used": False})
        if n_lab:
            rows.append({"class": str(c), "estimate": "production, labelled rows", "share": obs_counts[i] / n_lab,
                         "ci_low": lo[i], "ci_high": hi[i], "used": source == "observed"})
        for key in ("em", "bbse", "predicted"):
            est = estimates.get(key)
            if est is None:
                continue
            rows.append({"class": str(c), "estimate": f"production, {_METHOD_NAMES[key]}",
                         "share": est.prior[i], "ci_low": est.ci_low[i], "ci_high": est.ci_high[i],
                         "used": source == key})
    return pd.DataFrame(rows)


def _evidence(incident, classes, ref_shares, prod_shares, lo, hi, estimated, source, n_lab, obs_counts,
              representative, estimates, trusted, why, binary, pos) -> PriorShiftEvidence:
    names = [str(c) for c in classes]
    if binary:
        ev = PriorShiftEvidence(reference_positive_rate=float(ref_shares[pos]),
                                production_positive_rate=float(prod_shares[pos]),
                                production_ci=[float(lo[pos]), float(hi[pos])],
                                positive_label=incident.positive_label)
    else:
        ev = PriorShiftEvidence(reference_class_rates=dict(zip(names, map(float, ref_shares), strict=True)),
                                production_class_rates=dict(zip(names, map(float, prod_shares), strict=True)),
                                production_ci={n: [float(a), float(b)] for n, a, b in zip(names, lo, hi, strict=True)})
    ev.estimated = bool(estimated)
    ev.production_source = source
    ev.labelled_rows = n_lab
    ev.production_rows = len(incident.production)
    ev.labelled_representative = bool(representative["representative"]) if n_lab else None
    ev.trusted_estimate = trusted.method if trusted is not None else None
    ev.trust_reason = why
    if n_lab:
        observed = obs_counts / n_lab
        if binary:
            ev.observed_positive_rate = float(observed[pos])
        else:
            ev.observed_class_rates = dict(zip(names, map(float, observed), strict=True))
    for key in ("em", "bbse"):
        est = estimates.get(key)
        if est is None:
            continue
        reading = {"usable": est.usable, "message": est.message, **{d: v for d, v in est.diagnostics.items()}}
        if est.usable:
            if binary:
                reading.update(positive_rate=float(est.prior[pos]),
                               ci=[float(est.ci_low[pos]), float(est.ci_high[pos])])
            else:
                reading["class_rates"] = dict(zip(names, map(float, est.prior), strict=True))
        setattr(ev, key, reading)
    return ev


def _describe_rates(classes, ref_shares, prod_shares, binary, pos, estimated, source) -> str:
    how = f"estimated by {_METHOD_NAMES[source]}" if estimated else "observed"
    if binary:
        return (f"the share of {classes[pos]!s} is {prod_shares[pos]:.1%} in production ({how}) "
                f"against {ref_shares[pos]:.1%} in reference")
    order = np.argsort(-np.abs(prod_shares - ref_shares))[:3]
    parts = ", ".join(f"{classes[i]!s} {ref_shares[i]:.1%} → {prod_shares[i]:.1%}" for i in order)
    return f"class shares reference → production ({how}): {parts}"


def _multiclass_accuracy(ref_y, ref_pred, k, ref_shares, prod_shares) -> dict:
    """Expected accuracy of the current predictions at the reference and the production balance."""
    recall = np.diag(sp.conditional_confusion(sp.joint_counts(ref_y, ref_pred, k)))
    return {"reference_prior": float(recall @ ref_shares), "production_prior": float(recall @ prod_shares)}


def _consequences(incident, ref_is_pos, ref_labelled, ref_pred_pos, prod, ref_rate, prod_rate, cost_ratio,
                  calibration, seed, ref_pred_ok) -> dict | None:
    """Binary: metrics at the current threshold and the best thresholds under the new balance."""
    score = incident.score
    ok_pred = ref_labelled & ref_pred_ok
    if not (score and score in incident.reference.columns):
        # no score: only the current predictions can be re-weighted
        if not ok_pred.any():
            return None
        tpr = float(np.mean(ref_pred_pos[ok_pred & ref_is_pos])) if (ok_pred & ref_is_pos).any() else np.nan
        fpr = float(np.mean(ref_pred_pos[ok_pred & ~ref_is_pos])) if (ok_pred & ~ref_is_pos).any() else np.nan
        rows = [{"operating point": "current predictions", "prior": name, "threshold": np.nan,
                 **{m: float(v) for m, v in sp.operating_metrics(tpr, fpr, rate, cost_ratio=cost_ratio).items()}}
                for name, rate in (("reference", ref_rate), ("production", prod_rate))]
        table = pd.DataFrame(rows)
        return {"tables": {"operating_points": table}, "data": {},
                "expected_at_current": _metrics_dict(table, "current predictions")}
    ref_s = pd.to_numeric(incident.reference[score], errors="coerce").to_numpy(float)
    ok = np.isfinite(ref_s) & ref_labelled
    if ok.sum() < MIN_LABELLED or ref_is_pos[ok].all() or not ref_is_pos[ok].any():
        return None
    current, agreement = sp.infer_threshold(ref_s[ok & ref_pred_ok], ref_pred_pos[ok & ref_pred_ok])
    grid = sp.threshold_grid(ref_s[ok], extra=[current, 0.5])
    tpr, fpr = sp.roc_points(ref_s[ok], ref_is_pos[ok], grid)
    curves = {name: sp.operating_metrics(tpr, fpr, rate, cost_ratio=cost_ratio)
              for name, rate in (("reference", ref_rate), ("production", prod_rate))}
    i_cur = int(np.flatnonzero(grid == current)[0])
    best = {"accuracy": int(np.nanargmax(curves["production"]["accuracy"])),
            "cost": int(np.nanargmin(curves["production"]["cost"]))}
    points = [("current", i_cur), ("best accuracy now", best["accuracy"]),
              (f"lowest cost now (FN cost = {cost_ratio:g} × FP cost)", best["cost"])]
    rows = []
    for label, i in points:
        for name in ("reference", "production"):
            rows.append({"operating point": label, "prior": name, "threshold": float(grid[i]),
                         **{m: float(v[i]) for m, v in curves[name].items()}})
    table = pd.DataFrame(rows)
    reweighted, reweighted_data = _reweighted(incident, prod, ref_rate, prod_rate, current, calibration, seed)
    sample = sample_rows(pd.DataFrame({"s": ref_s[ok], "y": ref_is_pos[ok]}), _sample_size(incident), seed=seed)
    return {
        "tables": {"operating_points": table, **({"reweighted": reweighted} if reweighted is not None else {})},
        "data": {"grid": grid, "curves": curves, "current_threshold": current,
                 "best_index": best, "ref_scores": sample["s"].to_numpy(float),
                 "ref_positive": sample["y"].to_numpy(bool), "reference_rate": ref_rate,
                 "production_rate": prod_rate, **reweighted_data},
        "current_threshold": current, "threshold_agreement": agreement,
        "expected_at_current": _metrics_dict(table, "current"),
        "recommended_threshold_accuracy": float(grid[best["accuracy"]]),
        "recommended_threshold_cost": float(grid[best["cost"]]),
        # the page recommends the lowest-cost threshold; at cost ratio 1 it is the most accurate one
        "recommended_threshold": float(grid[best["cost"]]),
        "cost_ratio": cost_ratio,
    }


def _metrics_dict(table: pd.DataFrame, point: str) -> dict:
    sub = table[table["operating point"] == point].set_index("prior")
    return {prior: {m: float(sub.loc[prior, m]) for m in ("accuracy", "precision", "recall", "positive_share")}
            for prior in sub.index}


def _reweighted(incident, prod, ref_rate, prod_rate, threshold, calibration, seed):
    """Production probabilities re-weighted to the new balance, ``p' ∝ p · π'/π``, summarised."""
    score = incident.score
    if not (score and score in prod.columns):
        return None, {}
    s = pd.to_numeric(prod[score], errors="coerce").to_numpy(float)
    s = s[np.isfinite(s)]
    if len(s) == 0:
        return None, {}
    n = _sample_size(incident)
    s = np.random.default_rng(seed).choice(s, n, replace=False) if len(s) > n else s
    base = calibration.apply(s) if calibration is not None else s
    adjusted = sp.prior_adjusted(base, ref_rate, prod_rate)
    rows = []
    for name, values in (("logged score", s), ("score calibrated on reference", base),
                         ("re-weighted to the production balance", adjusted)):
        rows.append({"probability": name, "mean": float(values.mean()),
                     "share_at_or_above_threshold": float(np.mean(values >= threshold)),
                     "median": float(np.median(values)), "p90": float(np.quantile(values, 0.9)),
                     "p99": float(np.quantile(values, 0.99))})
    return pd.DataFrame(rows), {"prod_calibrated": base, "prod_adjusted": adjusted}


# --- regression -----------------------------------------------------------------------------------------
def _regression(incident) -> Result:
    ref_t = pd.to_numeric(incident.reference[incident.target], errors="coerce").to_numpy(float)
    prod_t = pd.to_numeric(incident.production[incident.target], errors="coerce").to_numpy(float)
    ref_t, prod_t = ref_t[np.isfinite(ref_t)], prod_t[np.isfinite(prod_t)]
    quantiles = [0.05, 0.25, 0.5, 0.75, 0.95]

    def describe(values):
        return {f"q{int(q * 100):02d}": float(np.quantile(values, q)) for q in quantiles} | {
            "mean": float(values.mean()), "rows": len(values)}

    if len(prod_t) < MIN_LABELLED:
        ref_p = pd.to_numeric(incident.reference[incident.prediction], errors="coerce").to_numpy(float)
        prod_p = pd.to_numeric(incident.production[incident.prediction], errors="coerce").to_numpy(float)
        hint = sp.psi(ref_p, prod_p)
        return Result(skipped(CHECK, f"Production has {len(prod_t)} target values, too few to compare the "
                                     "target distribution; provide production labels. (The predictions' "
                                     f"PSI is {hint:.2f}, which reflects inputs as much as the target.)",
                              prediction_psi=hint, labelled_rows=len(prod_t)))
    psi_value = sp.psi(ref_t, prod_t)
    ks_stat, ks_p = sp.ks(ref_t, prod_t)
    table = pd.DataFrame([{"set": "reference", **describe(ref_t)}, {"set": "production", **describe(prod_t)}])
    psi_limit = incident.threshold(CHECK, "psi_critical")
    ks_limit = incident.threshold(CHECK, "ks_statistic")
    alpha = incident.threshold("general", "alpha")
    detected = (psi_value > psi_limit or ks_stat >= ks_limit) and ks_p < alpha
    evidence = PriorShiftEvidence(psi=psi_value, ks_statistic=ks_stat, ks_p_value=ks_p,
                                  reference_mean=float(ref_t.mean()), production_mean=float(prod_t.mean()),
                                  reference_median=float(np.median(ref_t)),
                                  production_median=float(np.median(prod_t)),
                                  estimated=False, labelled_rows=len(prod_t))
    seed = int(incident.threshold("general", "seed"))
    data = {"reference": sample_rows(pd.DataFrame({"t": ref_t}), _sample_size(incident), seed=seed)["t"].to_numpy(),
            "production": sample_rows(pd.DataFrame({"t": prod_t}), _sample_size(incident), seed=seed)["t"].to_numpy()}
    described = (f"PSI {psi_value:.2f}, KS {ks_stat:.2f}; median {np.median(ref_t):.4g} → "
                 f"{np.median(prod_t):.4g}")
    if detected:
        finding = Finding(CHECK, "detected", "critical" if psi_value > psi_limit else "warning",
                          f"The target distribution moved ({described}).", [incident.target], evidence,
                          strength=float(min(1.0, max(psi_value / (2 * psi_limit), ks_stat / (2 * ks_limit)))))
    else:
        finding = Finding(CHECK, "clear", "info", f"The target distribution is steady ({described}).",
                          [], evidence)
    return Result(finding, tables={"target": table}, data=data)


_COLUMNS = {"class": "class", "reference": "reference share", "production": "production share",
            "ci_low": "95% low", "ci_high": "95% high", "change": "change", "abs_change": "absolute change",
            "relative_change": "relative change", "material": "material", "significant": "significant",
            "estimate": "estimate", "share": "share", "used": "used for the verdict",
            "predicted": "predicted class", "share_of_labelled": "share of labelled rows",
            "share_of_all": "share of all rows", "operating point": "operating point",
            "prior": "class balance", "threshold": "threshold", "accuracy": "accuracy", "precision": "precision",
            "recall": "recall", "positive_share": "share flagged positive", "cost": "cost per row (FP units)",
            "probability": "probability", "mean": "mean", "share_at_or_above_threshold": "share ≥ threshold",
            "median": "median", "p90": "90th percentile", "p99": "99th percentile", "set": "period",
            "rows": "rows"}


def page_table(result, name: str) -> pd.DataFrame:
    """Table ``name`` as the page shows it: readable column names (empty when absent)."""
    t = result.tables.get(name)
    if t is None:
        return pd.DataFrame()
    return t.rename(columns=_COLUMNS)


# --- contract -----------------------------------------------------------------------------------
# the defaults behind the verdict, overridable under thresholds.prior_shift (docs/thresholds.md)
THRESHOLDS = {
    "metric_impact": Threshold(0.01,
                         "expected accuracy change at the current decisions that makes a significant move material"),
    "precision_impact": Threshold(0.03,
                         "…or expected precision change (positive class; multiclass: the class whose precision moves most)"),
    "rate_change": Threshold(0.05,
                         "share difference that matters where no decisions judge impact; critical at 2×"),
    "relative_change": Threshold(0.25, "…or relative difference"),
    "cost_ratio": Threshold(1.0, "cost of a false negative / cost of a false positive"),
    "calibration_ece": Threshold(0.03,
                         "EM needs the score calibrated on reference (ECE after Platt scaling)"),
    "psi_critical": Threshold(0.25, "regression: target PSI on 10 reference-quantile bins"),
    "ks_statistic": Threshold(0.1, "regression: …or KS statistic (with p < alpha)"),
}
THRESHOLD_NOTES = (
    "Class balance (or target distribution for regression), observed or estimated from the model's "
    "outputs.\n\n"
    "A class share has **moved** when its test against reference stays significant after "
    "Benjamini–Hochberg control across classes (observed labels: the two-proportion test; an estimate "
    "from the outputs: its bootstrap interval) and that interval excludes the reference share. A "
    "significant move is always reported; whether it **matters** is judged by its impact, not by the size "
    "of the share change: the expected effect of the new balance on the model's current decisions, with "
    "the reference confusion matrix held fixed (a change of class balance alone leaves each class's "
    "recall as it was). The move is material when it changes the expected accuracy (the headline metric) "
    "by at least `metric_impact`, or the expected precision (of the positive class; multiclass: of the "
    "class whose precision moves most) by at least `precision_impact`. A significant move below both is "
    "reported with its impact and the verdict stays clear; a material one is detected. Only when there "
    "are no reference decisions to judge impact by do the share cut-offs `rate_change` / "
    "`relative_change` decide; they also say when labelled rows are not a fair sample of production "
    "(their predicted-class mix differs by that much from all rows') and when the observed shares "
    "disagree with the label-free estimate.\n\n"
    "When representative labels moved, the label-free estimate reads them: if it moved significantly and "
    "materially the same way, the traffic changed (a prior shift, even if the two disagree on how far); "
    "if it stays consistent with reference while the labels lie outside its interval, the labels moved at "
    "the same inputs, so the move follows from the label definition (`evidence.follows_from_labels`).\n\n"
    "Severity is critical when the expected accuracy moves by 3 × `metric_impact` or a share by 2 × "
    "`rate_change`."
)


def _culprit(text: str) -> Culprit:
    column, sep, value = text.partition("=")
    return Culprit("class", column=column, value=value) if sep else Culprit("class", value=text)


class PriorShiftEvidence(Evidence):
    """The prior-shift finding's evidence. DESIGN.md fixes ``reference_positive_rate``,
    ``production_positive_rate`` and ``estimated`` (binary) and ``reference_class_rates`` /
    ``production_class_rates`` (multiclass); regression compares the target distribution."""

    # classification: the class balance on each side
    reference_positive_rate: float | None = None  # binary
    production_positive_rate: float | None = None  # binary; None when it could not be measured or estimated
    production_ci: list[float | None] | dict[str, list[float | None]] | None = None  # binary: [low, high]; multiclass: by class
    positive_label: bool | int | float | str | None = None
    reference_class_rates: dict[str, float | None] | None = None  # class → share
    production_class_rates: dict[str, float | None] | None = None  # multiclass
    estimated: bool | None = None  # production shares estimated from the model's outputs, not observed labels
    production_source: str | None = None  # observed, em, bbse or predicted
    labelled_rows: int | None = None
    production_rows: int | None = None
    labelled_representative: bool | None = None  # the labelled rows' predictions look like all rows'
    trusted_estimate: str | None = None  # the label-free estimate trusted (em, bbse, predicted)
    trust_reason: str | None = None
    reason: str | None = None  # inconclusive: why the balance could be neither measured nor estimated
    observed_positive_rate: float | None = None  # binary, on the labelled rows
    observed_class_rates: dict[str, float | None] | None = None  # multiclass, on the labelled rows
    em: dict[str, Any] | None = None  # the EM (Saerens) estimate and its diagnostics
    bbse: dict[str, Any] | None = None  # the black-box shift estimate and its diagnostics
    label_shift_fit: dict[str, Any] | None = None  # are production outputs a re-weighted mix of the reference classes'?
    significant_move: bool | None = None
    impact: dict[str, Any] | None = None  # expected effect of the new balance at the current decisions
    # binary with a score: metrics at the current threshold and the best ones under the new balance
    current_threshold: float | None = None
    threshold_agreement: float | None = None
    expected_at_current: dict[str, dict[str, float | None]] | None = None
    recommended_threshold_accuracy: float | None = None
    recommended_threshold_cost: float | None = None
    recommended_threshold: float | None = None  # the lowest-cost threshold, proposed as an action
    cost_ratio: float | None = None
    expected_accuracy: dict[str, float | None] | None = None  # multiclass: reference and production prior
    label_free_reading: dict[str, Any] | None = None  # what the label-free estimate says of moved labels
    follows_from_labels: bool | None = None  # the labels moved at the same inputs: a label change, not a prior shift
    # regression: the target distribution
    psi: float | None = None
    ks_statistic: float | None = None
    ks_p_value: float | None = None
    reference_mean: float | None = None
    production_mean: float | None = None
    reference_median: float | None = None
    production_median: float | None = None
    prediction_psi: float | None = None  # skipped (too few targets): the predictions' PSI, as a hint


def _actions(finding: dict, ctx: Context) -> list[dict]:
    ev = CONTRACT.evidence_of(finding)
    rec = next((r for r in (ev.recommended_threshold, ev.recommended_threshold_cost,
                            ev.recommended_threshold_accuracy) if isinstance(r, (int, float))), None)
    if isinstance(rec, (int, float)):
        return [{"check": CHECK, "action": "Adjust the decision threshold", "threshold": float(rec),
                 "detail": f"move the threshold to {rec:.2f} for the new class balance "
                           "(see the threshold curve on the prior-shift page)",
                 "why": finding["summary"]}]
    return [{"check": CHECK, "action": "Adjust the decision threshold or recalibrate",
             "detail": "the class balance moved; re-weight scores to the new prior",
             "why": finding["summary"]}]


def _alerts(finding: dict, ctx: Context) -> list[dict]:
    if finding.get("verdict") != "detected":
        return []
    return [{"alert": "prior_shift", "metric": "predicted positive share",
             "condition": "weekly predicted positive share outside the reference interval",
             "why": "the class balance moved in this incident"}]


def _facts(finding: dict, ctx: Context) -> dict:
    ev, incident = CONTRACT.evidence_of(finding), ctx.incident
    if ev.production_class_rates:
        return {"production_class_rates": ev.production_class_rates}
    if ev.production_positive_rate is not None and incident.kind == "binary":
        negative = next(c for c in incident.classes if c != incident.positive_label)
        rate = ev.production_positive_rate
        return {"production_class_rates": {str(incident.positive_label): rate, str(negative): 1 - rate}}
    return {}


CONTRACT = register(CheckContract(
    id=CHECK, thresholds=THRESHOLDS, threshold_notes=THRESHOLD_NOTES,
    title="Prior (class balance) shift", question="Did the class balance change?", stage="cause", module=__name__,
    culprit=_culprit,
    explains=(Accompanies("drift", max_severity="warning",
                          reason="a class-balance change moves the features that separate the classes"),
              WhenSymptomBlamesOnly("labels", frozenset({"definition", "label noise"}), priority=60,
                                    reason="a new class balance changes how often a score is right")),
    actions=_actions, alerts=_alerts, facts=_facts, evidence=PriorShiftEvidence,
    checklist=(("model", "The class balance (target distribution) is unchanged"),),
    cost=3))
