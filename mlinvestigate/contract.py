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

import difflib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, create_model

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


# --- evidence -------------------------------------------------------------------------------------
class EvidenceError(ValueError):
    """A check's evidence names a key its type does not declare, or holds a value of the wrong type."""


class Evidence(BaseModel):
    """The numbers behind a check's verdict, one declared and typed field per key.

    Each check declares a subclass next to its ``CONTRACT`` (``evidence=DriftEvidence``) and builds
    its evidence through it, so a misspelt key fails where it is written::

        class DriftEvidence(Evidence):
            features_compared: int | None = None
            domain_classifier: dict[str, Any] | None = None

        evidence = DriftEvidence(features_compared=8)
        evidence.domain_classifier = {"auc": 0.81}
        Finding("drift", "detected", "critical", summary, culprits, evidence)

    Fields a verdict does not always set default to None; findings.json carries the keys the check
    set, in the order it set them (:meth:`to_dict`), so a key absent for a verdict stays absent. The
    values are kept as the check computed them (a dict it fills in later stays that dict); their types
    are checked when the :class:`~mlinvestigate.findings.Finding` is made. Readers get the typed
    object back from a finding with :meth:`CheckContract.evidence_of`. ``error`` and ``traceback`` are
    set by the runner when the investigation itself failed.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, protected_namespaces=())
    check_id: ClassVar[str | None] = None  # the check whose contract declares this type (set by register)
    _written: list[str] = PrivateAttr(default_factory=list)  # the keys set, in order

    error: str | None = None
    traceback: str | None = None

    def __init__(self, **values: Any):
        _refuse_undeclared(type(self), values)
        state = type(self).model_construct(**values)  # no conversion: the check's own objects
        for attr in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"):
            object.__setattr__(self, attr, getattr(state, attr))
        self._written = list(values)

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_"):
            _refuse_undeclared(type(self), (name,))
            if name not in self._written:
                self._written.append(name)
        super().__setattr__(name, value)

    @classmethod
    def read(cls, evidence: Mapping[str, Any] | None) -> Evidence:
        """The typed evidence of a finding's ``evidence`` dict (as a check wrote it or as findings.json
        holds it): every key declared, every value of its field's type."""
        values = dict(evidence or {})
        _refuse_undeclared(cls, values)
        try:
            checked = cls._schema().model_validate(values)
        except ValidationError as exc:
            raise EvidenceError(_wrong_type(cls, exc)) from None
        return cls(**{name: getattr(checked, name) for name in values})

    @classmethod
    def _schema(cls) -> type[BaseModel]:
        """A plain model of the same fields, which validates (this type keeps values as given)."""
        if "_schema_model" not in cls.__dict__:
            fields = {name: (f.annotation, f.default) for name, f in cls.model_fields.items()}
            schema = create_model(cls.__name__, __config__=ConfigDict(
                extra="forbid", arbitrary_types_allowed=True, protected_namespaces=()), **fields)
            type.__setattr__(cls, "_schema_model", schema)
        return cls.__dict__["_schema_model"]

    def to_dict(self) -> dict[str, Any]:
        """The keys the check set, in the order it set them: the finding's ``evidence``."""
        return {name: getattr(self, name) for name in self._written}

    @classmethod
    def flags(cls) -> list[str]:
        """The boolean fields: what diagnosis rules may name."""
        return [name for name, f in cls.model_fields.items() if _is_bool(f.annotation)]


def _owner(cls: type[Evidence]) -> str:
    return f"the {cls.check_id} check's evidence" if cls.check_id else f"evidence {cls.__qualname__}"


def _refuse_undeclared(cls: type[Evidence], names) -> None:
    for name in names:
        if name not in cls.model_fields:
            close = difflib.get_close_matches(str(name), list(cls.model_fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise EvidenceError(f"{_owner(cls)} has no key {name!r}{hint}; declare it as a field of "
                                f"{cls.__qualname__}")


def _wrong_type(cls: type[Evidence], exc: ValidationError) -> str:
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {type(e['input']).__name__})"
                         for e in exc.errors())
    return f"{_owner(cls)} ({cls.__qualname__}) holds a value of the wrong type: {problems}"


def _is_bool(annotation: Any) -> bool:
    if annotation is bool:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return set(typing.get_args(annotation)) - {type(None)} == {bool}
    return False


def evidence_dict(check: str, evidence: Evidence | Mapping[str, Any] | None) -> dict[str, Any]:
    """A finding's ``evidence`` as a dict, checked against the type the check's contract declares.

    Typed evidence gives the keys it set; a plain dict (``skipped(check, summary, **evidence)``, the
    runner's errors) is checked key by key against the registered type and kept as it is.
    """
    if isinstance(evidence, Evidence):
        cls = type(evidence)
        if cls.check_id is not None and cls.check_id != check:
            raise EvidenceError(f"a {check} finding was given {_owner(cls)} ({cls.__qualname__})")
        evidence = evidence.to_dict()
        cls.read(evidence)  # the values' types
        return evidence
    evidence = dict(evidence or {})
    found = _REGISTRY.get(check)
    if found is not None and found.evidence is not None:
        found.evidence.read(evidence)
    return evidence


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

    def monitor_bar(self, rule: str, which: str = "critical") -> float | None:
        """The bar ``mlinvestigate monitor`` uses for ``rule`` on this incident (see :func:`monitor_bar`)."""
        return monitor_bar(rule, self.incident.spec, which)


# --- monitoring alert rules ------------------------------------------------------------------------
MONITOR_LAYERS = ("infrastructure", "behaviour", "performance", "business")


@dataclass(frozen=True)
class MonitorRule:
    """An alert rule ``mlinvestigate monitor`` evaluates on every window, declared by the check whose
    question it watches; ``monitoring.alerts.<id>`` in the spec overrides its bars and persistence.

    ``critical`` and ``warning`` are the bars, each one of: a number; the name of one of the check's
    own thresholds (the investigation, the summary's proposed alerts and the monitor then share one
    default, and ``thresholds.<check>.<key>`` moves all three); a spec key such as
    ``expected.latency_p95_ms``. ``None`` (or an unset spec key) leaves the rule off until a bar is
    set. ``test`` names how a window crosses the bar (:data:`mlinvestigate.monitoring.alerts.TESTS`):
    ``interval_above`` reads ``statistic`` and the low end of its 95% interval (``low``, default
    ``<statistic>_low``) from the window's history. ``subject`` is ``"feature"`` for one alert per
    feature, else the text the alert names (``{model.version}`` and the like are read from the spec);
    ``needs`` lists spec keys without which the rule does not run; ``unit`` says how values read
    (share, psi, auc, ms, rows, metric, number); ``sentence`` is the alert's summary, a template with
    ``{subject}``, ``{value}``, ``{bar}``, ``{level}`` and ``{estimated}``. ``measure``, when given,
    computes the statistics the rule reads from one window's production rows
    (``(incident, rows) -> {name: number}``), kept in the window's history.
    """

    id: str
    layer: str
    critical: float | str | None
    warning: float | str | None = None
    watches: str = ""
    unit: str = "number"
    test: str = "interval_above"
    statistic: str = ""
    low: str = ""
    subject: str = ""
    needs: tuple[str, ...] = ()
    sentence: str = "{watches}: {value} against the bar {bar}"
    measure: Callable[[Any, Any], dict] | None = None

    @property
    def low_column(self) -> str:
        return self.low or f"{self.statistic}_low"

    def default(self, check: CheckContract, which: str = "critical", spec: Any = None) -> float | None:
        """The bar before any ``monitoring.alerts`` override. A threshold name reads the check's
        threshold (with the spec's ``thresholds`` override when ``spec`` is given); a spec key reads
        the spec (None without one, or when the key is unset)."""
        value = self.critical if which == "critical" else self.warning
        if value is None or isinstance(value, (int, float)):
            return None if value is None else float(value)
        if "." in value:
            return spec_value(spec, value)
        overrides = (spec.thresholds if spec is not None else None) or {}
        return float(overrides.get(check.id, {}).get(value, check.thresholds[value].default))

    def source(self, check: CheckContract, which: str = "critical") -> str:
        """Where the default bar comes from, for the docs: ``0.25 (drift.psi_critical)``."""
        value = self.critical if which == "critical" else self.warning
        if value is None:
            return "–"
        if isinstance(value, (int, float)):
            return f"{value:g}"
        if "." in value:
            return f"`{value}`"
        return f"{check.thresholds[value].default:g} (`thresholds.{check.id}.{value}`)"


def spec_value(spec: Any, key: str) -> Any:
    """``expected.latency_p95_ms`` read from a spec (None when unset or without a spec)."""
    obj = spec
    for part in key.split("."):
        obj = getattr(obj, part, None)
    return obj


def monitor_rules() -> dict[str, tuple[CheckContract, MonitorRule]]:
    """Every monitoring alert rule the registered checks declare: rule id → (its check, the rule)."""
    out: dict[str, tuple[CheckContract, MonitorRule]] = {}
    for contract in registered().values():
        for rule in contract.monitor:
            if rule.id in out:
                raise ValueError(f"monitoring rule {rule.id!r} is declared by both the {out[rule.id][0].id} "
                                 f"and the {contract.id} check; rule ids are unique")
            if rule.layer not in MONITOR_LAYERS:
                raise ValueError(f"monitoring rule {rule.id!r} of the {contract.id} check has layer "
                                 f"{rule.layer!r}; use one of {', '.join(MONITOR_LAYERS)}")
            out[rule.id] = (contract, rule)
    return out


def monitor_bar(rule: str, spec: Any = None, which: str = "critical") -> float | None:
    """The bar in force for monitoring rule ``rule``: ``monitoring.alerts.<rule>.threshold`` (or
    ``.warning``) in the spec, else the default its check declares (:meth:`MonitorRule.default`)."""
    rules = monitor_rules()
    if rule not in rules:
        raise InvestigationError(f"unknown monitoring rule {rule!r}; rules: {', '.join(rules)}")
    check, declared = rules[rule]
    override = spec.monitoring.alerts.get(rule) if spec is not None else None
    if override is not None:
        value = override.threshold if which == "critical" else override.warning
        if value is not None:
            return float(value)
    return declared.default(check, which, spec)


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
    cost: float = 1.0  # seconds its page takes at the working size (1M rows a side); the runner starts the costliest first
    evidence: type[Evidence] | None = None  # the type of its finding's evidence (required by register)
    monitor: tuple[MonitorRule, ...] = ()  # the alert rules `mlinvestigate monitor` evaluates per window

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

    def evidence_of(self, finding: Any) -> Evidence:
        """The finding's evidence as this check's typed :attr:`evidence` (a finding dict from
        findings.json, or a :class:`~mlinvestigate.findings.Finding`); an undeclared key raises."""
        raw = finding.get("evidence") if isinstance(finding, Mapping) else finding.evidence
        if isinstance(raw, Evidence):
            return raw
        if self.evidence is None:
            raise EvidenceError(f"the {self.id} check's contract declares no evidence type")
        return self.evidence.read(raw)

    def notebook_path(self) -> Path:
        if self.notebook is not None:
            return Path(self.notebook)
        from .resources import notebooks

        return notebooks() / f"{self.id}.ipynb"


_REGISTRY: dict[str, CheckContract] = {}


_RULES_CHECKED = False  # every rule's evidence keys checked against the registered types


def _flag_problem(rule: Rule, owner: str, key: str, check: str, cls: type[Evidence] | None) -> str | None:
    """Why ``key`` of ``rule`` (in ``owner``'s contract) is not a boolean field of ``check``'s evidence
    type ``cls`` (None when that check is not registered yet: checked again when it is)."""
    if cls is None or key in cls.flags():
        return None
    what = "is not a boolean field of" if key in cls.model_fields else "is not a field of"
    return (f"{type(rule).__name__} rule of the {owner} check names {key!r}, which {what} the {check} "
            f"check's evidence ({cls.__qualname__}; its boolean fields: {', '.join(cls.flags()) or 'none'})")


def _rule_problems(contract: CheckContract, *, own_only: bool) -> list[str]:
    """Evidence keys named by ``contract``'s rules that are not boolean fields of the evidence they read:
    a ``WhenEvidence.flag`` its own, ``unless`` each symptom's, a ``WhenSymptomSays.flag`` the symptom's."""
    keys: list[tuple[Rule, str, str]] = []
    for rule in contract.explains:
        if isinstance(rule, WhenEvidence):
            keys.append((rule, rule.flag, contract.id))
            if rule.unless and not own_only:
                keys += [(rule, rule.unless, symptom) for symptom in rule.symptoms]
        elif isinstance(rule, WhenSymptomSays) and not own_only:
            keys.append((rule, rule.flag, rule.symptom))

    def evidence(check: str) -> type[Evidence] | None:
        return contract.evidence if check == contract.id else getattr(_REGISTRY.get(check), "evidence", None)

    return [p for rule, key, check in keys if (p := _flag_problem(rule, contract.id, key, check, evidence(check)))]


def register(contract: CheckContract) -> CheckContract:
    """Add a check to the investigation (re-registering the same id replaces it).

    Its evidence type is required, and a ``WhenEvidence`` flag must be a boolean field of it; the rules
    that read another check's evidence are checked by :func:`registered`, once both are registered.
    """
    global _RULES_CHECKED
    if contract.stage not in ("triage", "cause"):
        raise ValueError(f"stage must be 'triage' or 'cause', got {contract.stage!r} for {contract.id!r}")
    if not (isinstance(contract.evidence, type) and issubclass(contract.evidence, Evidence)):
        raise ValueError(f"the {contract.id} check declares no evidence type: give its contract "
                         "evidence=<a subclass of mlinvestigate.contract.Evidence> with one field per key")
    bound = contract.evidence.check_id
    if bound not in (None, contract.id) and bound in _REGISTRY:
        raise ValueError(f"the {contract.id} check's evidence type {contract.evidence.__qualname__} is the "
                         f"{bound} check's already; declare one type per check")
    problems = _rule_problems(contract, own_only=True)
    if problems:
        raise ValueError("; ".join(problems))
    contract.evidence.check_id = contract.id
    _REGISTRY[contract.id] = contract
    _RULES_CHECKED = False
    return contract


def unregister(check_id: str) -> None:
    global _RULES_CHECKED
    _REGISTRY.pop(check_id, None)
    _RULES_CHECKED = False


def check_rules() -> None:
    """Every registered rule that names another check's evidence names one of its boolean fields."""
    global _RULES_CHECKED
    if _RULES_CHECKED:
        return
    problems = [p for c in list(_REGISTRY.values()) for p in _rule_problems(c, own_only=False)]
    if problems:
        raise ValueError("; ".join(problems))
    _RULES_CHECKED = True


def registered() -> dict[str, CheckContract]:
    """Every registered check, triage first, in registration order."""
    import importlib

    # by name: the checks sit a layer above this module and register themselves on import
    checks = importlib.import_module("mlinvestigate.checks")
    checks.load_builtin()
    check_rules()
    order = {cid: i for i, cid in enumerate(checks.CHECK_IDS)}
    arrival = {cid: i for i, cid in enumerate(_REGISTRY)}
    return dict(sorted(_REGISTRY.items(), key=lambda kv: (kv[1].stage != "triage",
                                                          order.get(kv[0], len(order) + arrival[kv[0]]))))


def registered_so_far() -> dict[str, CheckContract]:
    """The checks registered until now, without importing the built-in ones (which costs seconds)."""
    return dict(_REGISTRY)


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
