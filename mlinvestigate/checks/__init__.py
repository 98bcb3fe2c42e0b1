"""The checks: one module per investigation, each exposing ``run(incident) -> Result``.

Triage checks come first (is the comparison fair, is the right model serving, is serving healthy,
where does it fail), then the root causes. Each check has a notebook of the same name in
``notebooks/`` that presents it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

TRIAGE = ("measurement", "deployment", "health", "segments")
ROOT_CAUSES = ("drift", "leakage", "skew", "labels", "prior_shift")
CHECK_IDS = TRIAGE + ROOT_CAUSES

TITLES = {
    "measurement": "Measurement: is the gap real?",
    "deployment": "Deployment: is the right model serving?",
    "health": "Serving health",
    "segments": "Segments: where does it fail?",
    "drift": "Data drift",
    "leakage": "Data leakage",
    "skew": "Training-serving skew",
    "labels": "Label quality",
    "prior_shift": "Prior (class balance) shift",
}


def short_title(check_id: str) -> str:
    """The title without its question: "Segments" for "Segments: where does it fail?"."""
    return TITLES[check_id].split(":")[0]


def get(check_id: str) -> ModuleType:
    """The module of check ``check_id`` (imported on first use)."""
    if check_id not in CHECK_IDS:
        raise KeyError(f"unknown check {check_id!r}; valid checks: {', '.join(CHECK_IDS)}")
    return importlib.import_module(f"{__name__}.{check_id}")
