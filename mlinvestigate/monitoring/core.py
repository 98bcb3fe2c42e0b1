"""``mlinvestigate monitor``: window production, keep the history, alert, trigger, page.

One run: load the incident, cut production into windows, recompute the windows that are new or
whose rows, labels or context changed (and say which and why), evaluate the alert rules and the
retraining triggers on the whole history, write ``alerts.json`` and ``monitor.json``, optionally
investigate the windows of new alerts, and render the trend page. Everything lands in
``<out>/<name>/``; the exit code is 3 when an alert is new.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import __version__
from ..contract import monitor_rules
from ..data import load_incident
from ..document import write_json
from ..errors import InvestigationError
from ..findings import jsonable
from ..spec import load_spec
from . import alerts as al
from . import store, triggers
from . import windows as win

NEW_ALERT_EXIT = 3


@dataclass
class MonitorResult:
    folder: Path
    computed: list[str] = field(default_factory=list)
    changed: dict[str, str] = field(default_factory=dict)   # window label -> why it was recomputed
    unchanged: int = 0
    alerts: list[dict] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    triggers: list[dict] = field(default_factory=list)
    page: Path | None = None

    @property
    def exit_code(self) -> int:
        return NEW_ALERT_EXIT if self.new else 0


def default_out(spec: str | Path) -> Path:
    """``monitoring/`` next to the spec: where a notebook opened on its own keeps its history."""
    path = Path(spec).expanduser().resolve()
    return (path if path.is_dir() else path.parent) / "monitoring"


def _since(text) -> pd.Timestamp | None:
    if text is None or text == "":
        return None
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise InvestigationError(f"--since {text!r} is not a date; write it as 2026-10-20.") from None
    return ts.tz_convert(None) if ts.tzinfo else ts


def monitor(spec: str | Path, *, out: str | Path = "monitoring", window: str | None = None,
            since: str | None = None, investigate: bool = False, investigate_checks: list[str] | None = None,
            trust_model: bool = False, page: bool = True,
            progress: Callable[[str], None] = lambda msg: None) -> MonitorResult:
    """Monitor the production traffic of ``spec`` window by window; see the module docstring.

    Raises
    ------
    SpecError, DataError, InvestigationError
        Before anything is written, when the spec, the data or an option is unusable.
    """
    spec_path = Path(spec).expanduser().resolve()
    out = Path(out).expanduser().resolve()
    spec_obj = load_spec(spec_path)
    w = win.parse_window(window or spec_obj.monitoring.window)
    start_from = _since(since)
    progress(f"loading {spec_path}")
    incident = load_incident(spec_obj, trust_model=trust_model)
    win.check_columns(incident)
    triggers.trained_at(incident)  # a bad date fails before any work
    base = win.prepare_baseline(incident)
    measures = sorted(rid for rid, (_, rule) in monitor_rules().items() if rule.measure is not None)
    context = store.context_digest(incident, {"window": w.text, "measured_rules": measures,
                                              "engine": incident.engine})
    source = _windows_of(incident, w, start_from)
    try:
        return _monitor(incident, spec_path, spec_obj, out, w, base, context, source, investigate=investigate,
                        investigate_checks=investigate_checks, trust_model=trust_model, page=page,
                        progress=progress)
    finally:
        source.close()


class _FrameWindows:
    """Windows of a production log held in pandas (:func:`windows.split`)."""

    def __init__(self, incident, w, since):
        self.incident = incident
        self.pieces = {win.window_key(start): (start, rows, partial)
                       for start, rows, partial in win.split(incident, w, since=since)}
        self.starts = [(start, key, partial) for key, (start, _, partial) in self.pieces.items()]

    def fingerprints(self, key, context):
        return store.fingerprints(self.incident, self.pieces[key][1], context)

    def stats(self, base, key):
        return win.window_stats(self.incident, base, self.pieces[key][1])

    def rows(self, key):
        return self.pieces[key][1]

    def close(self):
        pass


class _EngineWindows:
    """Windows aggregated by DuckDB (:class:`sql.EngineWindows`), keyed like the pandas ones."""

    def __init__(self, incident, w, since):
        from .sql import EngineWindows

        self.source = EngineWindows(incident, w, since=since)
        self.buckets = {win.window_key(start): b for start, b, _ in self.source.starts}
        self.starts = [(start, win.window_key(start), partial) for start, _, partial in self.source.starts]

    def fingerprints(self, key, context):
        return self.source.fingerprints(self.buckets[key], context)

    def stats(self, base, key):
        record, feats, _ = self.source.stats(base, self.buckets[key])
        return record, feats

    def rows(self, key):
        return self.source.rows(self.buckets[key])

    def close(self):
        self.source.close()


def _windows_of(incident, w, since):
    return _FrameWindows(incident, w, since) if incident.engine == "pandas" else _EngineWindows(incident, w, since)


def _monitor(incident, spec_path, spec_obj, out, w, base, context, source, *, investigate, investigate_checks,
             trust_model, page, progress) -> MonitorResult:
    folder = out / spec_obj.name
    with store.locked(folder):
        result = MonitorResult(folder=folder)
        history = store.History(folder / "history" / w.text)
        previous = history.fingerprints()
        for start, key, partial in source.starts:
            prints = {**source.fingerprints(key, context), "partial": str(partial)}
            old = previous.get(key)
            if old is not None and all(old.get(k) == v for k, v in prints.items() if k != "partial") \
                    and _stored_partial(history, key) == partial:
                result.unchanged += 1
                continue
            record, feats = source.stats(base, key)
            history.write(key, start, start + w.length, partial, record, feats,
                          {k: v for k, v in prints.items() if k != "partial"})
            label = win.label(start, w)
            result.computed.append(label)
            if old is not None:
                result.changed[label] = _why(old, prints)
        if result.computed:
            progress(f"{len(result.computed)} window(s) computed ({len(result.changed)} changed), "
                     f"{result.unchanged} unchanged")
        else:
            progress(f"nothing new: {result.unchanged} window(s) unchanged")

        windows, feats = history.load()
        settings = al.settings_from(incident, base, w)
        labels = {s: win.label(s, w) for s in windows["window_start"]} if len(windows) else {}
        fired = al.firing(al.crossings(windows, feats, settings), settings)
        latest = windows["window_start"].iloc[-1] if len(windows) else None
        found = al.episodes(fired, labels, latest, settings)
        unjudged = al.not_judged(windows, labels, settings)
        al.mark_new(found, _read(folder / "alerts.json").get("alerts", []))
        result.alerts = found
        result.new = [a["id"] for a in found if a["new"]]
        result.triggers = triggers.evaluate(incident, windows, found, higher_is_better=base.higher_is_better)
        if investigate:
            _investigate(incident, source, w, found, folder, checks=investigate_checks,
                         trust_model=trust_model, progress=progress)

        created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        write_json(folder / "alerts.json", jsonable({
            "monitor": spec_obj.name, "created": created, "window": w.text,
            "latest_window": labels.get(latest), "new": result.new, "alerts": found, "not_judged": unjudged}))
        write_json(folder / "monitor.json", jsonable({
            "monitor": spec_obj.name, "title": spec_obj.display_title, "created": created, "version": __version__,
            "spec": str(spec_path), "window": w.text, "windows": len(windows),
            "computed": result.computed, "changed": result.changed, "unchanged": result.unchanged,
            "reference": {"metric": base.metric_name, "value": base.metric.get("value"),
                          "ci": base.metric.get("ci"), "rows": base.metric.get("rows"),
                          "higher_is_better": base.higher_is_better, "positive_rate": base.positive_rate,
                          "low_confidence": base.low_confidence},
            "estimator": base.estimator,
            "expected": {"volume_per_window": (settings.daily_volume * w.days) if settings.daily_volume else None,
                         "latency_p95_ms": settings.latency_p95_ms, "version": settings.expected_version},
            "rules": settings.rules, "min_labels": settings.min_labels, "not_judged": unjudged,
            "domain_rows": spec_obj.monitoring.domain_rows,
            "engine": {"name": incident.engine, "window_sample_rows": spec_obj.monitoring.window_sample_rows},
            "fired": fired[fired["fired"] > 0].assign(window=lambda d: d["window_start"].map(labels))
            .to_dict(orient="records") if len(fired) else [],
            "triggers": result.triggers}))
        stale = not (folder / "index.html").exists() or bool(result.computed) or bool(result.new) or investigate
        if page and stale:
            progress("trend page")
            result.page = render_page(spec_path, folder, w, title=spec_obj.display_title, name=spec_obj.name,
                                      trust_model=trust_model)
        elif (folder / "index.html").exists():
            result.page = folder / "index.html"
    return result


def _stored_partial(history: store.History, key: str) -> bool | None:
    try:
        return bool(pd.read_parquet(history.folder / f"{key}.parquet", columns=["partial"])["partial"].iloc[0])
    except Exception:  # noqa: BLE001 - unreadable: recompute
        return None


def _why(old: dict, new: dict) -> str:
    if old.get("context_hash") != new["context_hash"]:
        return "the reference or the settings changed"
    if old.get("rows_hash") != new["rows_hash"]:
        return "rows were added or changed"
    if old.get("labels_hash") != new["labels_hash"]:
        return "labels arrived or changed"
    return "the window is now complete"


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


# --- investigations -----------------------------------------------------------------------------
def window_spec(incident, rows: pd.DataFrame, folder: Path, name: str) -> Path:
    """An incident spec whose production is one window's rows (written to ``folder``)."""
    import yaml

    spec = incident.spec
    raw = yaml.safe_load(Path(spec.source).read_text(encoding="utf-8"))
    folder.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(folder / "production.parquet", index=False)
    raw.update(name=name, production="production.parquet", title=f"{spec.display_title} — window {name}")
    if isinstance(spec.reference, Path):
        raw["reference"] = str(spec.reference)
    elif isinstance(raw.get("reference"), dict) and raw["reference"].get("duckdb"):  # a database table
        raw["reference"]["duckdb"] = str((Path(spec.source).parent / raw["reference"]["duckdb"]).resolve())
    if spec.serving.offline is not None:
        raw.setdefault("serving", {})["offline"] = str(spec.serving.offline)
    if spec.model.path is not None:
        raw.setdefault("model", {})["path"] = str(spec.model.path)
    target = folder / "incident.yaml"
    target.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return target


def _investigate(incident, source, w, found: list[dict], folder: Path, *, checks, trust_model, progress) -> None:
    """Investigate the latest firing window of every new alert (one investigation per window)."""
    from ..runner import investigate

    by_label = {win.label(s, w): (s, key) for s, key, _ in source.starts}
    done: dict[str, str] = {}
    for a in found:
        label = a["last_window"]
        if not a["new"] or label not in by_label:
            continue
        if label not in done:
            start, key = by_label[label]
            name = f"{incident.spec.name}-{key.lower()}"
            spec = window_spec(incident, source.rows(key), folder / "incidents" / key, name)
            progress(f"investigating window {label}")
            run = investigate(spec, out=folder / "investigations", checks_to_run=checks,
                              trust_model=trust_model, progress=progress)
            done[label] = os.path.relpath(run.folder / "index.html", folder)
        a["investigation"] = done[label]


# --- the trend page -----------------------------------------------------------------------------
def render_page(spec_path: Path, folder: Path, w, *, title: str, name: str, trust_model: bool = False) -> Path:
    """Execute the monitor notebook on ``folder`` and render it with the report template."""
    import papermill as pm

    from .. import resources
    from ..kernels import KERNEL_ARGS
    from ..runner import render_html

    executed = folder / "monitor.ipynb"
    parameters = {"spec": str(spec_path), "out": str(folder), "data": "", "trust_model": trust_model,
                  "interactive": False, "history": str(folder), "window": w.text}
    pm.execute_notebook(str(resources.notebooks() / "monitor.ipynb"), str(executed), parameters=parameters,
                        kernel_name="python3", progress_bar=False, cwd=str(folder),
                        extra_arguments=KERNEL_ARGS)
    meta = {"title": f"Monitoring: {title}", "incident": name,
            "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(), "version": __version__,
            "pages": [{"href": "index.html", "label": "Trend"}], "current": "index.html"}
    render_html(executed, folder / "index.html", meta)
    return folder / "index.html"
