"""Findings (the contract in DESIGN.md) and the Result object every check returns.

A check returns a :class:`Result`: the :class:`Finding` (verdict, severity, one-sentence summary,
culprits, evidence) plus the evidence tables the page shows. ``Result.save(out)`` writes the finding
where the runner collects it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .contract import Evidence, evidence_dict

VERDICTS = ("detected", "clear", "inconclusive", "skipped", "error")
SEVERITIES = ("critical", "warning", "info")


def jsonable(value: Any) -> Any:
    """Convert numpy/pandas scalars and containers to plain JSON values (NaN → None)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, np.ndarray, pd.Index)):
        return [jsonable(v) for v in value]
    if isinstance(value, pd.Series):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, pd.DataFrame):
        return jsonable(value.to_dict(orient="records"))
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return None if math.isnan(v) or math.isinf(v) else v
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, Path):
        return str(value)
    if value is pd.NA or value is pd.NaT:
        return None
    return value


@dataclass
class Finding:
    """One check's answer.

    ``strength`` (0–1) extends the contract: how strong the evidence is, used to rank detected
    checks against each other in ``findings.json``. ``evidence`` is given as the check's evidence
    type (:class:`~mlinvestigate.contract.Evidence`) and kept as the dict of the keys it set; a plain
    dict is checked against the type the check's contract declares.
    """

    check: str
    verdict: str
    severity: str
    summary: str
    culprits: list[str] = field(default_factory=list)
    evidence: dict[str, Any] | Evidence = field(default_factory=dict)
    report: str = ""
    strength: float = 0.0

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")
        self.culprits = [str(c) for c in self.culprits]
        self.evidence = evidence_dict(self.check, self.evidence)
        if not self.report:
            self.report = f"{self.check}.html"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("check")
        return jsonable(d)

    @classmethod
    def from_dict(cls, check: str, d: dict[str, Any]) -> Finding:
        return cls(check=check, **d)


def load_shared(data: str | Path | None) -> dict[str, dict[str, Any]]:
    """Check id → the objects it shared in this run's cache ``data`` (empty outside a run)."""
    import pickle

    folder = Path(data) / "shared" if data else None
    if folder is None or not folder.is_dir():
        return {}
    out = {}
    for path in sorted(folder.glob("*.pkl")):
        with open(path, "rb") as fh:
            out[path.stem] = pickle.load(fh)  # written by this run's own kernels (Result.save)
    return out


def skipped(check: str, summary: str, **evidence: Any) -> Finding:
    """A finding for a check whose inputs are absent; ``summary`` says what to provide."""
    return Finding(check, "skipped", "info", summary, evidence=evidence)


@dataclass
class Result:
    """What a check returns: the finding and the evidence behind it.

    Attributes
    ----------
    finding : Finding
    tables : dict of DataFrame
        Named evidence tables, the first one being the main table of the page.
    data : dict
        Anything else plot helpers need (arrays, fitted objects); never serialised.
    shared : dict
        Fitted objects other pages of the same run reuse instead of fitting again (the drift
        check's domain classifier, for the summary's gap attribution); kept in the run's private
        cache, never in the report.
    """

    finding: Finding
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)

    def to_df(self, name: str | None = None) -> pd.DataFrame:
        """The main evidence table, or the one called ``name``."""
        if not self.tables:
            return pd.DataFrame()
        return self.tables[name] if name else next(iter(self.tables.values()))

    def save(self, out: str | Path | None, data: str | Path | None = None) -> Path | None:
        """Write the finding to ``<out>/findings/<check>.json`` (no-op when ``out`` is empty), and
        ``shared`` into the run's cache ``data`` for the other pages of the run."""
        if data and self.shared:
            import pickle

            folder = Path(data) / "shared"
            folder.mkdir(parents=True, exist_ok=True)
            # the run's own objects in its private temporary cache, read back only by that run
            with open(folder / f"{self.finding.check}.pkl", "wb") as fh:
                pickle.dump(self.shared, fh, protocol=pickle.HIGHEST_PROTOCOL)
        if not out:
            return None
        folder = Path(out) / "findings"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.finding.check}.json"
        path.write_text(json.dumps(self.finding.to_dict(), indent=1))
        return path

    def _repr_html_(self) -> str:
        from .display import verdict_html

        return verdict_html(self.finding)
