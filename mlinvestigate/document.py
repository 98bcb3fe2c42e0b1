"""``findings.json``: the document DESIGN.md fixes, built in one place and written once.

The runner collects every check's finding, builds the document with :func:`findings_document`,
hands it to the summary page as a draft in the run's cache (:data:`DRAFT`), adds the sections
the summary computed (diagnosis, attribution, actions, monitoring, checklist) and writes the
finished document into the report folder once, atomically (:func:`write_json`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path

from . import __version__
from .contract import registered
from .diagnosis import explained_by, rank
from .findings import jsonable
from .metrics import metric_summary

DRAFT = "findings-draft.json"  # in the run's cache folder, read by the summary page


def incident_facts(incident) -> dict:
    """What ``findings.json`` says of the incident itself: taken once, so that the runner can let
    the data go while the kernels work."""
    return {"incident": incident.spec.name, "title": incident.spec.display_title,
            "spec": str(incident.spec.source) if incident.spec.source else None, "inputs": incident.inputs,
            "task": incident.kind, "time_range": time_range(incident), "metric": metric_summary(incident),
            "warnings": list(incident.warnings)}


def findings_document(facts: dict, findings: dict[str, dict], *, created: dt.datetime, command: str) -> dict:
    """``findings.json`` as DESIGN.md specifies, plus ``command``, ``warnings``, ``time_range``,
    ``task``, ``explained_by`` and each finding's typed ``culprit_details``; ``facts`` is
    :func:`incident_facts` of the incident."""
    contracts = registered()
    checks = {}
    for cid, f in findings.items():
        f = dict(f)
        if cid in contracts and f.get("culprits"):
            f["culprit_details"] = [c.to_dict() for c in contracts[cid].culprits(f)]
        checks[cid] = f
    return jsonable({
        "incident": facts["incident"],
        "title": facts["title"],
        "created": created.isoformat().replace("+00:00", "Z"),
        "version": __version__,
        "command": command,
        "spec": facts["spec"],
        "inputs": facts["inputs"],
        "task": facts["task"],
        "time_range": facts["time_range"],
        "metric": facts["metric"],
        "warnings": facts["warnings"],
        "checks": checks,
        "ranking": rank(findings),
        "explained_by": explained_by(findings),
    })


def time_range(incident) -> dict:
    """First and last production and reference timestamps, when the spec names the column."""
    ts = incident.spec.columns.timestamp
    out = {}
    for role, df in (("reference", incident.reference), ("production", incident.production)):
        if ts and ts in df.columns and df[ts].notna().any():
            out[role] = [df[ts].min().isoformat(), df[ts].max().isoformat()]
    return out


def write_json(path: Path, doc: dict) -> None:
    """Write ``doc`` to ``path`` atomically: a reader sees the old file or the complete new one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
