"""A monitoring folder read back: the history, the alerts, the triggers and the tables the trend
page shows. Markup built here escapes every value that comes from the data."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..display import esc, number, percent
from ..errors import InvestigationError
from . import alerts as al
from .store import History


@dataclass
class State:
    folder: Path
    info: dict
    windows: pd.DataFrame
    features: pd.DataFrame
    alerts: list[dict] = field(default_factory=list)
    fired: pd.DataFrame = field(default_factory=pd.DataFrame)
    not_judged: list[dict] = field(default_factory=list)

    @property
    def triggers(self) -> list[dict]:
        return self.info.get("triggers", [])

    def performance(self) -> pd.DataFrame:
        """Realised metric and estimate per window, with what the alerts used."""
        w = self.windows
        out = al.performance(w, self.info.get("min_labels", 30)) if len(w) else pd.DataFrame()
        for c in ("metric", "metric_low", "metric_high", "estimate", "estimate_low", "estimate_high",
                  "labelled_rows"):
            out[c] = w[c].to_numpy(float) if c in w else float("nan")
        return out

    def worst_features(self, n: int = 5) -> list[str]:
        """Features with the highest PSI in any window, worst first."""
        if self.features.empty:
            return []
        return list(self.features.groupby("feature")["psi"].max().sort_values(ascending=False).head(n).index)

    def value_columns(self) -> list[str]:
        return [c for c in self.windows.columns if str(c).startswith("value:")]


def load(folder: str | Path, window: str | None = None) -> State:
    """Read ``<out>/<name>`` (the folder ``mlinvestigate monitor`` writes)."""
    folder = Path(folder)
    info_path = folder / "monitor.json"
    if not info_path.exists():
        raise InvestigationError(f"{folder} holds no monitor.json: run `mlinvestigate monitor SPEC` first.")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    alerts_doc = json.loads((folder / "alerts.json").read_text(encoding="utf-8")) \
        if (folder / "alerts.json").exists() else {}
    windows, features = History(folder / "history" / (window or info["window"])).load()
    fired = pd.DataFrame(info.get("fired", []))
    return State(folder, info, windows, features, alerts_doc.get("alerts", []), fired,
                 alerts_doc.get("not_judged", []))


# --- what the page shows ------------------------------------------------------------------------------
def headline_html(state: State) -> str:
    active = [a for a in state.alerts if a["active"]]
    new = [a for a in state.alerts if a.get("new")]
    triggered = [t for t in state.triggers if t["status"] == "triggered"]
    colour = "#c0392b" if any(a["severity"] == "critical" for a in active) else (
        "#b9770e" if active else "#1e8449")
    if active:
        head = (f"{len(active)} alert(s) active in the latest window"
                + (f", {len(new)} new since the last run" if new else ""))
    else:
        head = "No alert is active in the latest window" + (
            f" ({len(state.alerts)} earlier alert(s) resolved)" if state.alerts else "")
    ref = state.info.get("reference", {})
    lines = [f"{number(state.info.get('windows', 0))} window(s) of {esc(state.info.get('window'))}; "
             f"offline {esc(ref.get('metric'))} {number(ref.get('value'))}."]
    if triggered:
        lines.append("Retraining triggered by: " + ", ".join(esc(t["trigger"]) for t in triggered) + ".")
    if state.not_judged and state.not_judged[0].get("latest"):
        lines.append(esc(state.not_judged[0]["summary"]))
    changed = state.info.get("changed") or {}
    if changed:
        lines.append("Recomputed in this run: " + "; ".join(f"{esc(k)} ({esc(v)})" for k, v in changed.items())
                     + ".")
    body = "".join(f"<p style='margin:0.3em 0'>{line}</p>" for line in lines)
    return (f'<div class="mli-verdict" style="border-left:6px solid {colour};padding:0.6em 1em;'
            f'background:#fafafa;margin:0.5em 0"><p style="font-size:1.15em;margin:0">{esc(head)}</p>{body}</div>')


def alerts_table(state: State) -> pd.DataFrame:
    cols = ["severity", "rule", "subject", "first_window", "last_window", "windows", "active", "new",
            "estimated", "summary"]
    return pd.DataFrame([{c: a.get(c) for c in cols} for a in state.alerts], columns=cols)


def investigations_html(state: State) -> str:
    """Links to the investigations of alerting windows (relative paths inside the folder)."""
    linked = [a for a in state.alerts if a.get("investigation")]
    if not linked:
        return ("<p><i>No investigation was run (pass <code>--investigate</code> to investigate the window "
                "of each new alert).</i></p>")
    items = "".join(f'<li><a href="{esc(a["investigation"])}">{esc(a["last_window"])}</a>: '
                    f"{esc(a['summary'])}</li>" for a in linked)
    return f"<ul>{items}</ul>"


def triggers_table(state: State) -> pd.DataFrame:
    return pd.DataFrame([{"trigger": t["trigger"], "status": t["status"], "evidence": t["summary"]}
                         for t in state.triggers], columns=["trigger", "status", "evidence"])


def windows_table(state: State) -> pd.DataFrame:
    """One line per window, newest first: the numbers behind each panel."""
    w = state.windows
    if w.empty:
        return pd.DataFrame()
    perf = state.performance()
    out = pd.DataFrame({"window": w["window_start"].dt.strftime("%Y-%m-%d %H:%M"), "rows": w["rows"]})
    for c, name in (("failed_rate", "failed"), ("latency_p95", "p95 ms"), ("positive_rate", "positive rate"),
                    ("low_confidence", "low confidence"), ("missing_max", "max missing")):
        if c in w:
            out[name] = w[c]
    if "domain_auc" in w:
        out["domain AUC"] = w["domain_auc"]
    out["metric"] = perf["value"].to_numpy(float)
    out["estimated"] = perf["estimated"].to_numpy(bool)
    out["labelled"] = perf["labelled_rows"].to_numpy(float)
    for c in state.value_columns() + (["error_cost"] if "error_cost" in w else []):
        out[c] = w[c]
    out["partial"] = w["partial"].to_numpy(bool)
    return out.iloc[::-1].reset_index(drop=True)


def estimator_text(state: State) -> str:
    e = state.info.get("estimator") or {}
    labels = number(state.info.get("min_labels"))
    if not e.get("available"):
        why = e.get("reason") or "no estimate of the metric without labels is available"
        return (f"No estimate of the metric without labels: {why}. Windows with fewer than {labels} labelled rows "
                "show no performance, and the performance alerts (metric_drop, offline_gap) do not judge them.")
    return (f"Where a window has fewer than {labels} labels, accuracy is estimated from the {e['method']} (the "
            "expected share of correct predictions if it is calibrated). "
            f"On the reference it estimates {percent(e['reference_estimate'])} against the realised "
            f"{percent(e['reference_actual'])}. It cannot see changes in how labels relate to the inputs "
            "(concept drift), so estimated windows are marked as such.")


def not_judged_text(state: State) -> str:
    """Windows the performance alerts could not judge (no labels, no estimate), or an empty string."""
    return " ".join(n["summary"] for n in state.not_judged)
