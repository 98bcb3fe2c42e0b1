"""Ranking detected causes: strongest evidence first, symptoms after their causes.

Several checks can fire on one incident because one cause shows up in several places: a feature
computed in cents instead of dollars (skew) also looks drifted; a feature that went missing in
serving (health) also changes its distribution; a failing segment that grew changes the segment
column's mix; labels that arrive only for some predictions (measurement) distort every
label-based check. A reader should fix the cause, not chase the symptom, so a finding that
another detected finding fully accounts for is ranked after it, and the summary says why.

The rules are data in each check's contract (``explains``); this module only evaluates them.
"""

from __future__ import annotations

from .contract import (
    SEVERITY_ORDER,
    Accompanies,
    CoversColumns,
    WhenEvidence,
    WhenSymptomBlamesOnly,
    WhenSymptomSays,
    registered,
)


def _covered(symptom: str, findings: dict[str, dict], detected: set[str], contracts) -> str | None:
    """The check credited when detected checks' column rules together cover every symptom culprit."""
    culprits = contracts[symptom].culprits(findings[symptom]) if symptom in contracts else []
    if not culprits:
        return None
    owner: dict[str, str] = {}
    for cid in detected - {symptom}:
        for rule in contracts[cid].explains:
            if not (isinstance(rule, CoversColumns) and rule.symptom == symptom):
                continue
            if rule.symptom_kinds and any(c.kind not in rule.symptom_kinds for c in culprits):
                continue
            for c in contracts[cid].culprits(findings[cid]):
                if c.column and (rule.own_kinds is None or c.kind in rule.own_kinds):
                    owner.setdefault(c.column, cid)
    columns = [c.column for c in culprits]
    if all(col in owner for col in columns):
        return owner[columns[0]]  # the explainer of the strongest culprit
    return None


def _holds(rule, symptom: str, findings: dict[str, dict], explainer: str, contracts) -> bool:
    f = findings[symptom]
    if isinstance(rule, Accompanies):
        return (rule.symptom == symptom
                and SEVERITY_ORDER.get(f.get("severity"), 3) >= SEVERITY_ORDER[rule.max_severity])
    if isinstance(rule, WhenSymptomBlamesOnly):
        blamed = set(map(str, f.get("culprits", [])))
        return rule.symptom == symptom and bool(blamed) and blamed <= rule.culprits
    # evidence flags are boolean fields of the checks' evidence types (checked when they register)
    if isinstance(rule, WhenSymptomSays):
        return rule.symptom == symptom and getattr(contracts[symptom].evidence_of(f), rule.flag) is True
    if isinstance(rule, WhenEvidence):
        return (symptom in rule.symptoms
                and bool(getattr(contracts[explainer].evidence_of(findings[explainer]), rule.flag))
                and not (rule.unless and getattr(contracts[symptom].evidence_of(f), rule.unless)))
    return False


def explained_by(findings: dict[str, dict]) -> dict[str, str]:
    """Detected check → the detected check that accounts for it (only when it does so fully).

    Every rule that holds is a candidate; the strongest rules (lowest priority number, column
    coverage first) are applied first, and a rule that would make two checks explain each other,
    directly or through a chain, is passed over.
    """
    contracts = registered()
    detected = {c for c, f in findings.items() if f.get("verdict") == "detected" and c in contracts}
    order = [c for c in contracts if c in detected]
    candidates = []
    for symptom in order:
        by = _covered(symptom, findings, detected, contracts)
        if by is not None:
            candidates.append((-1, order.index(symptom), 0, symptom, by))
        for explainer in order:
            if explainer == symptom:
                continue
            for rule in contracts[explainer].explains:
                if not isinstance(rule, CoversColumns) and _holds(rule, symptom, findings, explainer, contracts):
                    candidates.append((rule.priority, order.index(symptom), order.index(explainer), symptom, explainer))
    out: dict[str, str] = {}
    for *_, symptom, by in sorted(candidates):
        if symptom in out:
            continue
        root = by
        while root in out and root != symptom:
            root = out[root]
        if root != symptom:
            out[symptom] = by
    return out


def rank(findings: dict[str, dict]) -> list[str]:
    """Detected check ids: causes by severity then strength, each followed by what it explains."""
    contracts = registered()
    ids = list(contracts)
    detected = [c for c, f in findings.items() if f.get("verdict") == "detected"]
    explained = explained_by(findings)

    def key(c):
        f = findings[c]
        return (SEVERITY_ORDER.get(f.get("severity"), 3), -(f.get("strength") or 0.0),
                ids.index(c) if c in ids else len(ids))

    causes = sorted((c for c in detected if c not in explained), key=key)
    ordered: list[str] = []
    for cause in causes:
        ordered.append(cause)
        ordered.extend(sorted((c for c, by in explained.items() if by == cause and c in detected), key=key))
    # anything explained by a chain that was not placed yet (defensive: keeps every detected id)
    ordered.extend(c for c in sorted(detected, key=key) if c not in ordered)
    return ordered
