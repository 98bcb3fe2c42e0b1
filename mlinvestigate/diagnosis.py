"""Ranking detected causes: strongest evidence first, symptoms after their causes.

Several checks can fire on one incident because one cause shows up in several places: a feature
computed in cents instead of dollars (skew) also looks drifted; a feature that went missing in
serving (health) also changes its distribution; a failing segment that grew changes the segment
column's mix; labels that arrive only for some predictions (measurement) distort every
label-based check. A reader should fix the cause, not chase the symptom, so a finding that
another detected finding fully accounts for is ranked after it, and the summary says why.
"""

from __future__ import annotations

from . import checks

_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
# checks whose verdict rests on production labels
_LABEL_BASED = ("segments", "labels", "prior_shift", "leakage")
# causes that change P(target | score) without any label problem, in the order they are credited
_MODEL_SIDE = ("leakage", "skew", "deployment", "segments", "drift", "prior_shift")
# the labels check names these instead of a label source when it cannot tell which source moved
_UNATTRIBUTED_LABELS = {"definition", "label noise"}


def _features_accounted_for(findings: dict[str, dict], detected: set[str]) -> dict[str, str]:
    """Feature → the detected check that explains why it looks different in production."""
    out: dict[str, str] = {}
    for cid in ("skew", "leakage"):
        if cid in detected:
            for c in findings[cid].get("culprits", []):
                out.setdefault(str(c), cid)
    if "health" in detected:
        # a feature that went missing in serving changes its distribution; values out of range or
        # unseen categories are the drift itself, not its cause
        for c in findings["health"].get("culprits", []):
            kind, _, feature = str(c).partition(":")
            if feature and kind == "missing":
                out.setdefault(feature, "health")
    if "segments" in detected:
        for c in findings["segments"].get("culprits", []):
            column, sep, _ = str(c).partition("=")
            if sep:
                out.setdefault(column, "segments")
    return out


def explained_by(findings: dict[str, dict]) -> dict[str, str]:
    """Detected check → the detected check that accounts for it (only when it does so fully)."""
    detected = {c for c, f in findings.items() if f.get("verdict") == "detected"}
    out: dict[str, str] = {}
    drift = findings.get("drift", {})
    if "drift" in detected and drift.get("culprits"):
        accounted = _features_accounted_for(findings, detected - {"drift"})
        owners = {accounted.get(str(c)) for c in drift["culprits"]}
        if None not in owners:
            # every drifted feature is explained; credit the explainer of the strongest one
            out["drift"] = accounted[str(drift["culprits"][0])]
        elif "prior_shift" in detected and drift.get("severity") != "critical":
            # a class-balance change moves the features that separate the classes: moderate
            # drift alongside a detected prior shift is what a pure prior shift looks like
            out["drift"] = "prior_shift"
    health = findings.get("health", {})
    if "health" in detected and health.get("culprits"):
        inputs = [str(c).partition(":") for c in health["culprits"]]
        if all(kind in ("out_of_range", "unseen") for kind, _, _ in inputs):
            # out-of-range values or unseen categories in features that drifted or are skewed
            for cid in ("skew", "leakage", "drift"):
                if cid in detected and {f for _, _, f in inputs} <= set(map(str, findings[cid].get("culprits", []))):
                    out["health"] = cid
                    break
    labels = findings.get("labels", {})
    if ("labels" in detected and labels.get("culprits")
            and set(map(str, labels["culprits"])) <= _UNATTRIBUTED_LABELS):
        # the label rate at a given score moved, but no label source stands out: a model-side
        # cause found elsewhere explains that as well as a label definition change would
        for cid in _MODEL_SIDE:
            if cid in detected and out.get(cid) != "labels":
                out["labels"] = cid
                break
    meas = findings.get("measurement", {})
    if "measurement" in detected and meas.get("evidence", {}).get("labels_biased"):
        for cid in _LABEL_BASED:
            if cid in detected and not findings[cid].get("evidence", {}).get("estimated"):
                out.setdefault(cid, "measurement")
    return out


def rank(findings: dict[str, dict]) -> list[str]:
    """Detected check ids: causes by severity then strength, each followed by what it explains."""
    detected = [c for c, f in findings.items() if f.get("verdict") == "detected"]
    explained = explained_by(findings)

    def key(c):
        f = findings[c]
        return (_SEVERITY_RANK.get(f.get("severity"), 3), -(f.get("strength") or 0.0),
                checks.CHECK_IDS.index(c) if c in checks.CHECK_IDS else 99)

    causes = sorted((c for c in detected if c not in explained), key=key)
    ordered: list[str] = []
    for cause in causes:
        ordered.append(cause)
        ordered.extend(sorted((c for c, by in explained.items() if by == cause and c in detected), key=key))
    # anything explained by a chain that was not placed yet (defensive: keeps every detected id)
    ordered.extend(c for c in sorted(detected, key=key) if c not in ordered)
    return ordered
