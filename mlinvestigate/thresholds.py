"""Documented defaults behind every verdict, overridable per incident under ``thresholds:``.

```yaml
thresholds:
  drift: {psi_critical: 0.3}
  health: {error_rate: 0.02}
```

Each check declares its own thresholds, with the reason for each, in its contract; ``general``
holds the few shared by every check. docs/thresholds.md is generated from them
(``python -m mlinvestigate.thresholds > docs/thresholds.md``), and a test keeps the two equal.
"""

from __future__ import annotations

import difflib

from .contract import Threshold, monitor_rules, registered
from .errors import SpecError

GENERAL: dict[str, Threshold] = {
    "alpha": Threshold(0.05, "false-discovery rate (Benjamini–Hochberg) across features/segments"),
    "sample_rows": Threshold(200_000, "seeded sample size for statistics that allow sampling"),
    "seed": Threshold(0, "seed of every sample, cross-validation split and bootstrap: same inputs, same findings"),
}


def declared() -> dict[str, tuple[str, dict[str, Threshold]]]:
    """Section → (what it is about, its thresholds): ``general`` then every registered check."""
    out = {"general": ("Shared by every check.", GENERAL)}
    for cid, contract in registered().items():
        if contract.thresholds:
            out[cid] = (contract.threshold_notes or contract.question, contract.thresholds)
    return out


def defaults() -> dict[str, dict[str, float]]:
    """Section → key → default value."""
    return {section: {k: t.default for k, t in items.items()} for section, (_, items) in declared().items()}


def validate_overrides(overrides: dict[str, dict[str, float]], label: str) -> None:
    """Reject unknown sections or keys under ``thresholds:``, suggesting the nearest valid one."""
    known = defaults()
    for section, values in overrides.items():
        if section not in known:
            close = difflib.get_close_matches(section, list(known), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else f" Valid: {', '.join(known)}."
            raise SpecError(f"{label}: unknown thresholds section {section!r}.{hint}")
        for key in values:
            if key not in known[section]:
                close = difflib.get_close_matches(key, list(known[section]), n=1)
                hint = (f" Did you mean {close[0]!r}?" if close
                        else f" Valid: {', '.join(known[section])}.")
                raise SpecError(f"{label}: unknown threshold 'thresholds.{section}.{key}'.{hint}")


def resolve(overrides: dict[str, dict[str, float]], section: str, key: str) -> float:
    """The threshold in force: the spec's override, else the documented default."""
    if key in overrides.get(section, {}):
        return overrides[section][key]
    items = GENERAL if section == "general" else registered()[section].thresholds
    return items[key].default


def _number(value: float) -> str:
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"{value:_}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def markdown() -> str:
    """docs/thresholds.md, generated from the declarations."""
    lines = ["# Thresholds", "",
             "Every verdict rests on a documented threshold. Override any of them per incident in the spec:", "",
             "```yaml", "thresholds:", "  drift: {psi_critical: 0.3}",
             "  health: {error_rate: 0.02, timeout_rate: 0.01}", "```", "",
             "An unknown section or key is an error that names it and suggests the closest valid one. This page",
             "is generated from the thresholds each check declares in its contract",
             "(`python -m mlinvestigate.thresholds > docs/thresholds.md`); a test keeps the two equal.", ""]
    for section, (notes, items) in declared().items():
        lines += [f"## `{section}`", "", notes.strip(), "", "| key | default | meaning |", "| --- | ---: | --- |"]
        lines += [f"| `{k}` | {_number(t.default)} | {t.meaning} |" for k, t in items.items()]
        lines.append("")
    lines += ["## Monitoring alert rules", "",
              "`mlinvestigate monitor` evaluates these per window (docs/monitoring.md). Each check declares the rules",
              "that watch its question; a bar named after a threshold above is that threshold (its override moves",
              "the investigation, the summary's proposed alerts and the monitor together). Override a rule's bars",
              "and persistence under `monitoring.alerts.<rule>` (`threshold`, `warning`, `windows`, `firing`,",
              "`enabled`).", "",
              "| rule | check | layer | critical | warning | watches |", "| --- | --- | --- | --- | --- | --- |"]
    for rid, (check, rule) in monitor_rules().items():
        lines.append(f"| `{rid}` | {check.id} | {rule.layer} | {rule.source(check, 'critical')} | "
                     f"{rule.source(check, 'warning')} | {rule.watches} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
