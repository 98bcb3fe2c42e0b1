"""The incident summary: a diagnosis, not a pile of checks.

:func:`build` reads every check's finding (``findings.json``) and the incident, and returns a
:class:`Summary`: what most likely happened and what was ruled out, the gap attribution, what to
do now (derived from the evidence), what to monitor from now on (ready-to-paste alerts) and the
debugging checklist ticked from the evidence. ``Summary.save`` adds ``attribution``, ``actions``,
``monitoring`` and ``checklist`` to ``findings.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .attribution import attribute_gap
from .contract import Context, registered
from .document import DRAFT
from .findings import jsonable
from .metrics import row_outcome


def _title(check_id: str) -> str:
    found = registered()
    return found[check_id].title if check_id in found else check_id


@dataclass
class Summary:
    """Everything the summary page shows; see :func:`build`."""

    doc: dict
    headline: str
    ruled_out: list[str]
    undecided: list[str]
    attribution: dict | None
    actions: list[dict]
    monitoring: list[dict]
    checklist: pd.DataFrame
    routing: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def diagnosis_table(self) -> pd.DataFrame:
        return diagnosis_table(self.doc)

    def monitoring_yaml(self) -> str:
        import yaml

        return yaml.safe_dump({"alerts": [{k: v for k, v in a.items() if k != "why"} for a in self.monitoring]},
                              sort_keys=False, width=100)

    def sections(self) -> dict:
        """What the summary adds to ``findings.json``."""
        return jsonable({"diagnosis": {"headline": self.headline, "ruled_out": self.ruled_out,
                                       "undecided": self.undecided},
                         "attribution": self.attribution, "actions": self.actions,
                         "monitoring": self.monitoring,
                         "checklist": self.checklist.to_dict(orient="records")})

    def save(self, out: str | Path | None) -> None:
        """Hand the summary's sections to the runner (``<out>/findings/summary.json``), which writes
        ``findings.json`` once, complete."""
        if not out:
            return
        folder = Path(out) / "findings"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "summary.json").write_text(json.dumps(self.sections(), indent=1))


def load_findings(out: str | Path = "", data: str | Path = "") -> dict:
    """The run's findings document: the runner's draft in the cache ``data`` (during a run), else
    the ``findings.json`` of a finished report folder ``out``."""
    draft = Path(data) / DRAFT if data else None
    if draft is not None and draft.exists():
        return json.loads(draft.read_text())
    return json.loads((Path(out) / "findings.json").read_text())


# --- diagnosis -------------------------------------------------------------------------------
def _unexplained_gap(doc: dict, min_gap: float) -> str | None:
    """The gap in words when it is material and its two intervals do not overlap, else None."""
    m = doc.get("metric", {})
    ref, prod = m.get("reference"), m.get("production")
    if ref is None or prod is None:
        return None
    higher = m.get("higher_is_better", True)
    lost = (ref - prod) if higher else (prod - ref)
    if m.get("relative_gap") and ref:
        lost = lost / abs(ref)
    ref_ci, prod_ci = m.get("reference_ci") or [None, None], m.get("production_ci") or [None, None]
    separated = (None not in (*ref_ci, *prod_ci)
                 and (prod_ci[1] < ref_ci[0] if higher else prod_ci[0] > ref_ci[1]))
    if lost < min_gap or not separated:
        return None
    return f"{m.get('name', 'the metric')} {ref:.3f} offline vs {prod:.3f} in production"


def diagnose(doc: dict, *, min_gap: float = 0.02) -> tuple[str, list[str], list[str]]:
    """The headline sentence, the checks ruled out and those that could not decide.

    Nothing detected does not mean nothing is wrong when the headline metric dropped: a material
    gap the checks that ran do not explain is said as such, with the checks that did not run.
    """
    checks = doc["checks"]
    ranking = doc["ranking"]
    ruled_out = [c for c, f in checks.items() if f["verdict"] == "clear"]
    undecided = [c for c, f in checks.items() if f["verdict"] in ("inconclusive", "skipped", "error")]

    def name(c):
        return _title(c).lower()

    if not ranking:
        not_run = [c for c in registered() if c not in checks]
        gap = _unexplained_gap(doc, min_gap)
        if gap:
            headline = f"Unexplained gap: {gap}, and no investigation that ran explains it."
            if not_run:
                headline += " Not run: " + ", ".join(map(name, not_run)) + "."
        else:
            headline = "Nothing is wrong: no investigation found a problem."
        if undecided:
            headline += (" Not everything could be checked: "
                         + ", ".join(f"{name(c)} ({checks[c]['verdict']})" for c in undecided) + ".")
        return headline, ruled_out, undecided
    top = ranking[0]
    f = checks[top]
    headline = f"Most likely cause: {name(top)}. {f['summary']}"
    explained = doc.get("explained_by", {})
    others = [c for c in ranking[1:] if c not in explained]
    symptoms = [c for c in ranking[1:] if c in explained]
    if others:
        headline += " Also detected: " + ", ".join(map(name, others)) + "."
    if symptoms:
        headline += (" Detected as consequences: " + ", ".join(f"{name(c)} (follows from {name(explained[c])})"
                                                              for c in symptoms) + ".")
    return headline, ruled_out, undecided


# --- attribution ------------------------------------------------------------------------------
def facts(incident, doc: dict) -> dict:
    """What the checks' findings tell the attribution (see ``contract.FACTS``), strongest first."""
    ctx, out = Context(incident, doc), {}
    for cid in doc["ranking"] + [c for c in doc["checks"] if c not in doc["ranking"]]:
        contract = registered().get(cid)
        if contract is not None:
            for key, value in contract.facts(doc["checks"][cid], ctx).items():
                out.setdefault(key, (value, cid))
    return out


def _production_rates(incident, known: dict) -> tuple[dict | None, str]:
    """Production class shares: a check's (estimated if needed), else the observed labels."""
    if "production_class_rates" in known:
        rates, cid = known["production_class_rates"]
        return rates, f"{_title(cid).lower()} check"
    y = incident.production[incident.target].dropna()
    if len(y) == 0:
        return None, "none"
    return {str(k): float(v) for k, v in y.astype(str).value_counts(normalize=True).items()}, "observed labels"


ATTRIBUTION_ROWS = 50_000  # seeded reference rows the attribution is computed on (said on the page)


def attribution(incident, doc: dict, *, seed: int = 0, shared: dict | None = None) -> dict | None:
    """The gap split into covariate shift, prior shift, measurement and unexplained parts."""
    metric = doc["metric"]
    if metric.get("production") is None or metric.get("reference") is None:
        return None
    from .data import sample_rows
    from .stats.domain import density_ratios

    # Means and their bootstrap need no more than ATTRIBUTION_ROWS rows (an accuracy's 95% interval
    # within ±0.003); scoring density ratios for more reference rows cost most of the page at 1M rows.
    rows = min(ATTRIBUTION_ROWS, int(incident.threshold("general", "sample_rows")))
    reference = sample_rows(incident.reference, rows, seed=seed)
    outcome = row_outcome(incident, reference)
    domain = next((objects["domain"] for objects in (shared or {}).values() if "domain" in objects), None)
    if domain is None or set(domain.features) | set(domain.excluded) != set(incident.features):
        # no check of this run shared one (or it saw other features): fit the same classifier here
        from .checks.drift import domain_classifier

        domain = domain_classifier(incident, importance=False)
    weights = density_ratios(domain, reference)
    if not np.isfinite(weights).all():
        weights = None
    known = facts(incident, doc)
    rates, rates_from = (None, "none") if not incident.is_classification else _production_rates(incident, known)
    y_ref = reference[incident.target].to_numpy(object) if incident.is_classification else None
    res = attribute_gap(outcome, covariate_weights=weights, y_ref=y_ref, production_rates=rates,
                        observed_production=float(metric["production"]),
                        fair_production=known.get("fair_production", (None,))[0],
                        outside=_out_of_support(domain, incident),
                        seed=seed)
    res["metric"] = metric["name"]
    if len(reference) < len(incident.reference):
        res["reliability"].append(
            f"computed on a seeded sample of {len(reference):,} of the {len(incident.reference):,} reference rows "
            f"(offline level there {res['reference']:.4f}, on every row {float(metric['reference']):.4f})")
    res["higher_is_better"] = metric.get("higher_is_better", True)
    res["production_rates_from"] = rates_from
    res["domain_auc"] = domain.auc
    outside = _outside_reference(domain, incident, seed=seed)
    res["production_outside_reference"] = outside
    if outside is not None and outside > 0.01 and not res["parts"]["out_of_support"]["value"]:
        res["reliability"].append(
            f"{outside:.0%} of production rows look like no reference row (density ratio at its cap): "
            "how the model does there cannot be learned from reference rows, and too few of them are "
            "labelled to measure it, so their loss lands in 'unexplained'")
    if domain.excluded:
        res["reliability"].append(
            "left out of the covariate part because they alone tell production from reference "
            "(a unit change, an id or a new category; their effect lands in 'unexplained'): "
            + ", ".join(sorted(domain.excluded)))
    return res


OUT_OF_SUPPORT_RATIO = 100.0  # density ratio at the clip: production rows reference has (almost) no rows like
MIN_OUT_OF_SUPPORT_ROWS = 30  # labelled rows needed out of support to measure the model there


def _out_of_support(domain, incident, *, rows: int = 20_000) -> dict | None:
    """Labelled production rows out of the reference's support: their share and the metric there."""
    from .data import sample_rows
    from .stats.domain import density_ratios

    if not np.isfinite(domain.auc) or not incident.labelled.any():
        return None
    seed = int(incident.threshold("general", "seed"))
    labelled = sample_rows(incident.labelled_production, rows, seed=seed)
    out = density_ratios(domain, labelled, clip=(0.0, OUT_OF_SUPPORT_RATIO)) >= OUT_OF_SUPPORT_RATIO
    outcome = row_outcome(incident, labelled)
    ok = np.isfinite(outcome)
    out, outcome = out[ok], outcome[ok]
    if out.sum() < MIN_OUT_OF_SUPPORT_ROWS:
        return None
    found = {"share": float(out.mean()), "metric": float(outcome[out].mean()), "rows": int(out.sum())}
    if len(labelled) < int(incident.labelled.sum()):
        found["sample"] = len(labelled)  # said on the page
    return found


def _outside_reference(domain, incident, *, seed: int, rows: int = 20_000,
                       cap: float = OUT_OF_SUPPORT_RATIO) -> float | None:
    """Share of production rows (seeded sample) whose density ratio reaches ``cap``."""
    from .data import sample_rows
    from .stats.domain import density_ratios

    if not np.isfinite(domain.auc):
        return None
    ratios = density_ratios(domain, sample_rows(incident.production, rows, seed=seed), clip=(0.0, cap))
    return float(np.mean(ratios >= cap)) if len(ratios) else None


# --- what to do now -------------------------------------------------------------------------
def routing_curve(incident) -> pd.DataFrame:
    """Coverage (share of traffic the model keeps) vs accuracy on what it keeps, most confident first.

    Uses labelled production rows (reference rows when production has no labels). Confidence is
    the distance of the score from the decision threshold; without a score the curve is empty.
    """
    if not incident.is_classification or not incident.score:
        return pd.DataFrame(columns=["coverage", "accuracy", "routed"])
    df = incident.labelled_production if incident.labelled.any() else incident.reference
    if incident.score not in df.columns or len(df) == 0:
        return pd.DataFrame(columns=["coverage", "accuracy", "routed"])
    s = pd.to_numeric(df[incident.score], errors="coerce").to_numpy(float)
    correct = row_outcome(incident, df)
    ok = np.isfinite(s) & np.isfinite(correct)
    s, correct = s[ok], correct[ok]
    if len(s) == 0:
        return pd.DataFrame(columns=["coverage", "accuracy", "routed"])
    confidence = np.abs(s - 0.5)
    order = np.argsort(-confidence, kind="stable")
    cum = np.cumsum(correct[order])
    n = len(s)
    coverage = np.linspace(0.05, 1.0, 20)
    k = np.maximum(1, np.round(coverage * n).astype(int))
    acc = cum[k - 1] / k
    cutoff = confidence[order][k - 1]
    return pd.DataFrame({"coverage": coverage, "accuracy": acc, "routed": 1 - coverage,
                         "confidence_cutoff": cutoff,
                         "rows_from": "production" if incident.labelled.any() else "reference"})


def actions(incident, doc: dict, routing: pd.DataFrame) -> list[dict]:
    """What to do now: each detected cause's own actions (its contract computes them from its
    evidence), strongest cause first, then routing to human review while the cause is fixed.

    A symptom another finding accounts for gets that finding's action, not its own.
    """
    contracts, explained, ctx = registered(), doc.get("explained_by", {}), Context(incident, doc)
    out: list[dict] = []
    seen: set[str] = set()
    for cid in doc["ranking"]:
        if cid in explained or cid not in contracts:
            continue
        for action in contracts[cid].actions(doc["checks"][cid], ctx):
            if action["action"] not in seen:  # drift and segments both propose retraining: once
                seen.add(action["action"])
                out.append(action)
    if len(routing) and doc["ranking"]:
        target = float(doc["metric"]["reference"] or 0)
        ok = routing[routing["accuracy"] >= target]
        if len(ok):
            best = ok.iloc[-1]
            detail = (f"route the {best['routed']:.0%} least confident predictions to human review; "
                      f"the rest keeps {best['accuracy']:.1%} accuracy (the offline level)")
        else:
            best = routing.iloc[len(routing) // 2]
            detail = (f"routing the {best['routed']:.0%} least confident predictions to review keeps "
                      f"{best['accuracy']:.1%} accuracy on the rest; pick the share on the curve below")
        out.append({"check": "", "action": "Route low-confidence predictions to human review", "detail": detail,
                    "why": "buys time while the cause is fixed"})
    return out


# --- what to monitor --------------------------------------------------------------------------
def monitoring(incident, doc: dict) -> list[dict]:
    """Alerts this incident shows are needed, as ready-to-paste rules: each check's contract says
    which alerts its finding calls for."""
    ctx = Context(incident, doc)
    out: list[dict] = []
    for cid, contract in registered().items():
        if cid in doc["checks"]:
            out.extend(contract.alerts(doc["checks"][cid], ctx))
    return out


def checklist(doc: dict) -> pd.DataFrame:
    """The debugging checklist, each item ticked from its check's verdict."""
    status = {"clear": "checked and fine", "detected": "checked and failing",
              "inconclusive": "checked, could not decide", "skipped": "not checked (input missing)",
              "error": "not checked (the check failed)"}
    rows = []
    for cid, contract in registered().items():
        f = doc["checks"].get(cid)
        for area, item in contract.checklist:
            rows.append({"area": area, "item": item,
                         "status": status[f["verdict"]] if f else "not checked (not run)",
                         "evidence": f["summary"] if f else "", "page": f["report"] if f else ""})
    return pd.DataFrame(rows, columns=["area", "item", "status", "evidence", "page"])


def build(incident, doc: dict, *, seed: int = 0, shared: dict | None = None) -> Summary:
    """The summary of one run from its ``findings.json`` document (``shared``: the objects the
    run's checks shared, see :func:`mlinvestigate.findings.load_shared`)."""
    headline, ruled_out, undecided = diagnose(doc, min_gap=incident.threshold("measurement", "metric_gap"))
    notes = []
    try:
        attr = attribution(incident, doc, seed=seed, shared=shared)
    except Exception as exc:  # noqa: BLE001 - the page says why instead of losing the summary
        attr, notes = None, [f"gap attribution could not be computed: {exc}"]
    routing = routing_curve(incident)
    return Summary(doc=doc, headline=headline, ruled_out=ruled_out, undecided=undecided,
                   attribution=attr, actions=actions(incident, doc, routing),
                   monitoring=monitoring(incident, doc), checklist=checklist(doc), routing=routing,
                   notes=notes)


# --- in-process runs (live notebooks) ---------------------------------------------------------
def collect(incident, check_ids=None) -> dict:
    """Run every check in this process and build the findings document (no files written).

    For live notebooks opened without a batch run; the batch runner runs each check's notebook
    instead.
    """
    import datetime as dt
    import traceback

    from . import checks
    from .document import findings_document, incident_facts
    from .findings import Finding

    found = {}
    for cid in check_ids or list(registered()):
        try:
            found[cid] = checks.run(cid, incident).finding.to_dict()
        except Exception as exc:  # noqa: BLE001 - one failing check must not hide the others
            found[cid] = Finding(cid, "error", "warning", f"The {cid} investigation failed: {exc}",
                                 evidence={"traceback": traceback.format_exc()[-4000:]}).to_dict()
    return findings_document(incident_facts(incident), found, created=dt.datetime.now(dt.UTC).replace(microsecond=0),
                             command="(live notebook)")


# --- HTML sections (every data value escaped) ------------------------------------------------
def _num(v, fmt=".3f"):
    return "–" if v is None else format(v, fmt)


def header_html(doc: dict) -> str:
    from .display import esc, shown_path

    base = Path(doc["spec"]).parent if doc.get("spec") else None
    rows = "".join(
        f"<tr><td>{esc(i['role'])}</td><td><code>{esc(shown_path(i['path'], base) if base else i['path'])}</code></td>"
        f"<td>{esc(i['rows'] if i['rows'] is not None else '–')}</td><td><code>{esc(i['sha256'])}</code></td>"
        f"<td>{esc(' → '.join(doc.get('time_range', {}).get(i['role'], [])))}</td></tr>"
        for i in doc["inputs"])
    return (f"<p>Incident <code>{esc(doc['incident'])}</code> · report created {esc(doc['created'])} · "
            f"mlinvestigate {esc(doc['version'])} · task {esc(doc.get('task', ''))}</p>"
            f"<table class='mli-table'><tr><th>input</th><th>file</th><th>rows</th><th>sha256</th>"
            f"<th>time range</th></tr>{rows}</table>"
            f"<p>Reproduce this report from the folder that holds the spec: <code>{esc(_command(doc))}</code></p>")


def _command(doc: dict) -> str:
    """The command that reproduces the report, naming the spec from its own folder."""
    command = doc.get("command", "")
    if doc.get("spec"):
        import shlex

        spec = Path(doc["spec"])
        command = command.replace(shlex.quote(str(spec)), shlex.quote(spec.name))
    return command


def headline_html(s: Summary) -> str:
    """The verdict of the whole investigation, first thing on the page, and how sure it is."""
    from .display import esc

    ranking = s.doc["ranking"]
    if not ranking:
        colour, sure = "#1e8449", (f"{len(s.ruled_out)} of {len(s.doc['checks'])} investigations ran and "
                                   "found nothing.")
    else:
        top = s.doc["checks"][ranking[0]]
        colour = "#c0392b"
        sure = ("Strong evidence: the effect is large and significant after false-discovery control."
                if top["severity"] == "critical" else
                "Moderate evidence: the effect crosses the warning threshold, not the critical one.")
    return (f"<div style='border-left:6px solid {colour};padding:0.6em 1em;background:#fafafa'>"
            f"<p style='font-size:1.25em;margin:0'><b>{esc(s.headline)}</b></p>"
            f"<p style='margin:0.4em 0 0 0'>{esc(sure)}</p></div>")


def gap_html(doc: dict) -> str:
    from .display import esc

    m = doc["metric"]
    text = (f"<p style='font-size:1.2em'>{esc(m['name'])}: <b>{_num(m['reference'])}</b> offline "
            f"(95% CI {_num(m['reference_ci'][0])}–{_num(m['reference_ci'][1])}, {esc(m['reference_rows'])} rows) "
            f"vs <b>{_num(m['production'])}</b> in production (95% CI {_num(m['production_ci'][0])}–"
            f"{_num(m['production_ci'][1])}, {esc(m['production_labelled_rows'])} labelled rows).</p>")
    for cid, contract in registered().items():
        f = doc["checks"].get(cid)
        if not contract.about_the_gap or f is None:
            continue
        if f["verdict"] == "detected":
            text += (f"<p><b>The comparison as made is misleading</b> — {esc(f['summary'])} "
                     f"(<a href='{esc(f['report'])}'>{esc(contract.title.lower())} page</a>)</p>")
        elif f["verdict"] == "clear":
            text += f"<p>{esc(contract.about_the_gap)}</p>"
    return text


def diagnosis_table(doc: dict) -> pd.DataFrame:
    """Every check's verdict, causes first (each followed by what it explains)."""
    rows = []
    order = doc["ranking"] + [c for c in doc["checks"] if c not in doc["ranking"]]
    explained = doc.get("explained_by", {})
    for cid in order:
        f = doc["checks"][cid]
        why = f"Follows from {_title(explained[cid]).lower()}: " if cid in explained else ""
        rows.append({"check": _title(cid), "verdict": f["verdict"],
                     "severity": f["severity"], "summary": why + f["summary"],
                     "culprits": ", ".join(map(str, f.get("culprits", [])[:6])), "page": f["report"]})
    return pd.DataFrame(rows, columns=["check", "verdict", "severity", "summary", "culprits", "page"])


def diagnosis_html(doc: dict) -> str:
    """The table of every check's verdict, causes first, each linking its page."""
    from .display import esc

    colours = {"detected": "#c0392b", "clear": "#1e8449", "inconclusive": "#b9770e", "skipped": "#7f8c8d",
               "error": "#6c3483"}
    rows = "".join(
        f"<tr><td><a href='{esc(r.page)}'>{esc(r.check)}</a></td><td><span style='background:"
        f"{colours[r.verdict]};color:white;padding:1px 6px;border-radius:3px'>{esc(r.verdict)}</span></td>"
        f"<td>{esc(r.severity)}</td><td style='text-align:left'>{esc(r.summary)}</td>"
        f"<td style='text-align:left'>{esc(r.culprits)}</td></tr>"
        for r in diagnosis_table(doc).itertuples())
    ruled_out = [c for c, f in doc["checks"].items() if f["verdict"] == "clear"]
    ruled = ", ".join(esc(_title(c).lower()) for c in ruled_out) or "nothing"
    return (f"<p>Ruled out: {ruled}.</p>"
            f"<table class='mli-table'><tr><th>check</th><th>verdict</th><th>severity</th><th>summary</th>"
            f"<th>culprits</th></tr>{rows}</table>")


def attribution_table(attr: dict) -> pd.DataFrame:
    names = {"covariate_shift": "covariate shift within the reference's support",
             "out_of_support": "inputs the reference never covered",
             "prior_shift": "prior shift (production's class balance)",
             "unexplained": "unexplained (concept drift, skew, labels, leakage, other model)",
             "measurement": "measurement artefact (biased labelled sample)"}
    metric = attr.get("metric", "metric")

    def effect(value):  # what the part does to the metric, as the waterfall shows it
        return None if value is None else -value

    return pd.DataFrame([{"part": names[p], f"effect on {metric}": effect(v["value"]),
                          "95% CI low": effect(v["ci"][1]), "95% CI high": effect(v["ci"][0])}
                         for p, v in attr["parts"].items()])


def actions_html(s: Summary) -> str:
    from .display import esc

    if not s.actions:
        return "<p>No action needed: nothing was detected.</p>"
    items = "".join(f"<li><b>{esc(a['action'])}</b>: {esc(a['detail'])}<br><small>why: {esc(a['why'])}</small></li>"
                    for a in s.actions)
    return f"<ol>{items}</ol>"


def monitoring_html(s: Summary) -> str:
    from .display import esc

    return f"<pre style='background:#f4f6f6;padding:0.6em'>{esc(s.monitoring_yaml())}</pre>"
