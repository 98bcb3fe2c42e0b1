"""What a check declares about itself, in one place, and the registry the rest of the kit reads.

Every check module ends with ``CONTRACT = register(CheckContract(...))``: its id, title and
question; what it needs from the spec (and what to say when that is absent); its named thresholds
with defaults and reasons; how its culprits read; which other checks' findings it accounts for
(rules as data); the actions it proposes, the alerts it asks for and its checklist lines, computed
from its own finding. The runner, the diagnosis, the summary, the report and the command line loop
over :func:`registered` and hold no per-check branches, so adding a check is a module, a notebook
and tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InvestigationError

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


# --- culprits ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Culprit:
    """What a finding blames, typed: ``kind`` (feature, segment, version, label_source, class or a
    signal such as ``missing``), the ``column`` it concerns, a ``value`` and a ``detail``.

    ``str(culprit)`` is the findings.json form DESIGN.md fixes: ``amount``, ``country=asia``,
    ``1.4``, ``missing:amount``.
    """

    kind: str
    column: str | None = None
    value: str | None = None
    detail: str | None = None

    def __str__(self) -> str:
        if self.kind == "feature":
            return str(self.column)
        if self.kind in ("segment", "class"):
            return f"{self.column}={self.value}"
        if self.kind in ("version", "label_source", "label", "signal"):
            return str(self.value)
        return f"{self.kind}:{self.column}" if self.column else self.kind

    def to_dict(self) -> dict[str, str | None]:
        return {"kind": self.kind, "column": self.column, "value": self.value, "detail": self.detail}


def feature_culprit(text: str) -> Culprit:
    return Culprit("feature", column=text)


def segment_culprit(text: str) -> Culprit:
    column, sep, value = text.partition("=")
    return Culprit("segment", column=column, value=value) if sep else Culprit("feature", column=text)


# --- explanation rules (data, evaluated by mlinvestigate.diagnosis) -----------------------------
@dataclass(frozen=True)
class CoversColumns:
    """This check accounts for ``symptom`` when every column the symptom blames is one it blames too.

    Several detected checks may share the work (one explains ``amount``, another ``country``); the
    symptom is then credited to the check that explains its strongest culprit.
    ``symptom_kinds`` limits the rule to symptoms whose culprits are all of these kinds;
    ``own_kinds`` to this check's culprits of these kinds.
    """

    symptom: str
    reason: str
    own_kinds: tuple[str, ...] | None = None
    symptom_kinds: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Accompanies:
    """This check accounts for ``symptom`` whenever both are detected and the symptom is at most
    ``max_severity`` (a class-balance change moves the features that separate the classes)."""

    symptom: str
    reason: str
    max_severity: str = "warning"
    priority: int = 50


@dataclass(frozen=True)
class WhenSymptomBlamesOnly:
    """This check accounts for ``symptom`` when the symptom blames nothing but ``culprits``
    (labels that moved at the same score without any one source standing out)."""

    symptom: str
    culprits: frozenset[str]
    reason: str
    priority: int = 50


@dataclass(frozen=True)
class WhenEvidence:
    """This check accounts for each of ``symptoms`` when its own evidence has ``flag`` true, unless
    the symptom's evidence has ``unless`` true (it corrected for the problem itself)."""

    symptoms: tuple[str, ...]
    flag: str
    reason: str
    unless: str | None = None
    priority: int = 90


@dataclass(frozen=True)
class WhenSymptomSays:
    """This check accounts for ``symptom`` when the symptom's own evidence has ``flag`` true (the
    class-balance move it saw happened at the same inputs, so it follows from a label change)."""

    symptom: str
    flag: str
    reason: str
    priority: int = 5


Rule = CoversColumns | Accompanies | WhenSymptomBlamesOnly | WhenEvidence | WhenSymptomSays


# --- the contract ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Threshold:
    """A named threshold: its default and why it is that."""

    default: float
    meaning: str


@dataclass(frozen=True)
class Requirement:
    """An input the check cannot do without: ``present(incident)`` and what to provide otherwise."""

    present: Callable[[Any], bool]
    provide: str


@dataclass(frozen=True)
class Context:
    """What actions and alerts may read besides the check's own finding."""

    incident: Any
    doc: dict

    def threshold(self, section: str, key: str) -> float:
        return self.incident.threshold(section, key)


def _none(finding: dict, ctx: Context) -> list[dict]:
    return []


def _no_facts(finding: dict, ctx: Context) -> dict:
    return {}


# What a check's finding may tell the summary's gap attribution (``CheckContract.facts``):
FACTS = {
    "production_class_rates": "class → share of production rows (observed or estimated)",
    "fair_production": "the headline metric estimated for all production rows when the labelled ones are biased",
}


@dataclass(frozen=True)
class CheckContract:
    """Everything about one check; see the module docstring."""

    id: str
    title: str  # short: "Data drift"
    question: str  # "Do production inputs look like the ones the model was validated on?"
    stage: str  # "triage" or "cause"
    module: str  # the module whose ``run(incident, **options)`` computes the finding
    thresholds: dict[str, Threshold] = field(default_factory=dict)
    threshold_notes: str = ""  # how the thresholds combine into the verdict (docs/thresholds.md)
    requires: tuple[Requirement, ...] = ()
    culprit: Callable[[str], Culprit] = feature_culprit
    explains: tuple[Rule, ...] = ()
    actions: Callable[[dict, Context], list[dict]] = _none  # when its finding is detected
    alerts: Callable[[dict, Context], list[dict]] = _none  # whatever the verdict
    checklist: tuple[tuple[str, str], ...] = ()  # (area, item) ticked from its verdict
    facts: Callable[[dict, Context], dict] = _no_facts  # named in FACTS, for the gap attribution
    about_the_gap: str = ""  # said next to the headline gap when this check is clear (it judges the gap)
    notebook: Path | None = None  # default: the packaged notebooks/<id>.ipynb
    cost: float = 1.0  # relative run time; the runner starts the costliest first

    @property
    def heading(self) -> str:
        """The page's title: "Segments: where does it fail?"."""
        return f"{self.title}: {self.question[0].lower()}{self.question[1:]}"

    def missing(self, incident) -> str | None:
        """What to provide when an input the check needs is absent, else None."""
        gaps = [r.provide for r in self.requires if not r.present(incident)]
        return " ".join(gaps) if gaps else None

    def culprits(self, finding: dict) -> list[Culprit]:
        return [self.culprit(str(c)) for c in finding.get("culprits", [])]

    def notebook_path(self) -> Path:
        if self.notebook is not None:
            return Path(self.notebook)
        from .resources import notebooks

        return notebooks() / f"{self.id}.ipynb"


_REGISTRY: dict[str, CheckContract] = {}


def register(contract: CheckContract) -> CheckContract:
    """Add a check to the investigation (re-registering the same id replaces it)."""
    if contract.stage not in ("triage", "cause"):
        raise ValueError(f"stage must be 'triage' or 'cause', got {contract.stage!r} for {contract.id!r}")
    _REGISTRY[contract.id] = contract
    return contract


def unregister(check_id: str) -> None:
    _REGISTRY.pop(check_id, None)


def registered() -> dict[str, CheckContract]:
    """Every registered check, triage first, in registration order."""
    import importlib

    # by name: the checks sit a layer above this module and register themselves on import
    checks = importlib.import_module("mlinvestigate.checks")
    checks.load_builtin()
    order = {cid: i for i, cid in enumerate(checks.CHECK_IDS)}
    arrival = {cid: i for i, cid in enumerate(_REGISTRY)}
    return dict(sorted(_REGISTRY.items(), key=lambda kv: (kv[1].stage != "triage",
                                                          order.get(kv[0], len(order) + arrival[kv[0]]))))


def contract(check_id: str) -> CheckContract:
    found = registered()
    if check_id not in found:
        raise InvestigationError(f"unknown check {check_id!r}; valid checks: {', '.join(found)}")
    return found[check_id]


def check_options(check_id: str, options: dict, accepted: tuple[str, ...]) -> None:
    """Refuse options a check does not take, naming them (nothing is silently ignored)."""
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InvestigationError(
            f"{check_id} does not take option(s) {', '.join(map(repr, unknown))}; "
            f"it takes: {', '.join(accepted) if accepted else 'none'}.")
