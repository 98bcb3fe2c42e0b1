"""Deployment: is the model we think is serving actually serving?

Three pieces of evidence. The versions logged with each prediction (``columns.model_version``):
traffic served by a version other than ``model.version`` — a canary left on, a rollback that did
not roll back — is a finding on its own, with its metric beside the expected version's. The model
file: its sha256 against ``model.sha256`` (a mismatching file is never unpickled unless the
incident was loaded with ``trust_model=True``). And, where the file loads, a seeded sample of
production rows re-scored and compared with the logged predictions: rows the file cannot
reproduce were scored by a different model or from different inputs. Reference rows are re-scored
too: if those do not reproduce either, the file is not the model that made them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..contract import (
    CheckContract,
    Context,
    Culprit,
    Evidence,
    MonitorRule,
    Threshold,
    WhenSymptomBlamesOnly,
    register,
)
from ..data import sample_rows
from ..display import shown_path
from ..findings import Finding, Result, skipped
from ..metrics import headline_name, row_outcome
from ..model import load_model, model_status
from ..stats.intervals import wilson
from ..stats.segments import grouped_bootstrap_mean
from ..stats.triage_time import grain, period_codes
from ..stats.triage_values import text_codes

CHECK = "deployment"
MISSING = "(missing)"
_RTOL = 1e-6  # beyond the logged rounding (see logged_precision), float noise only


def version_text(s: pd.Series) -> pd.Series:
    """Model versions as text (``2.0`` read as a float stays ``"2.0"``), missing as ``(missing)``."""
    codes, uniques = pd.factorize(s.astype(object), use_na_sentinel=True)
    lookup = np.array([str(v).strip() for v in uniques] + [MISSING], dtype=object)
    return pd.Series(lookup[codes], index=s.index, dtype=object)


def same_version(a: str, b: str) -> bool:
    """Versions match ignoring case, a leading ``v`` and ``2`` vs ``2.0``."""
    a, b = str(a).strip().lower().removeprefix("v"), str(b).strip().lower().removeprefix("v")
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except ValueError:
        return False


def _expected_version(incident, versions: pd.Series) -> tuple[str | None, str]:
    if incident.spec.model.version is not None:
        return incident.spec.model.version, "model.version in the spec"
    col = incident.columns.model_version
    ref = incident.reference
    if col in ref.columns and ref[col].notna().any():
        return version_text(ref[col]).value_counts().index[0], "the version that scored the reference rows"
    counts = versions.value_counts()
    if len(counts):
        return counts.index[0], "the most common version (no model.version in the spec)"
    return None, ""


def _version_tables(incident, versions: pd.Series, expected: str | None):
    prod = incident.production
    counts = versions.value_counts()
    table = pd.DataFrame({"version": counts.index.astype(str), "rows": counts.to_numpy(),
                          "share": counts.to_numpy() / len(prod)})
    table["expected"] = [expected is not None and same_version(v, expected) for v in table["version"]]
    col = incident.columns.model_version
    if col in incident.reference.columns:
        ref_share = version_text(incident.reference[col]).value_counts(normalize=True)
        table["reference_share"] = table["version"].map(ref_share).fillna(0.0)
    # headline metric per version on labelled production rows
    outcome = row_outcome(incident, prod)
    codes = pd.Categorical(versions, categories=table["version"]).codes
    lab = np.isfinite(outcome)
    n = np.bincount(codes[lab], minlength=len(table))
    total = np.bincount(codes[lab], weights=outcome[lab], minlength=len(table))
    with np.errstate(invalid="ignore", divide="ignore"):
        table["labelled_rows"] = n
        table[headline_name(incident)] = total / n
    if incident.is_classification:
        lo, hi = wilson(total, n)
    else:
        lo, hi = grouped_bootstrap_mean(outcome, np.where(lab, codes, -1), len(table),
                                        seed=int(incident.threshold("general", "seed")))
    table["ci_low"], table["ci_high"] = lo, hi

    over_time = pd.DataFrame()
    ts_col = incident.columns.timestamp
    if ts_col and ts_col in prod.columns and prod[ts_col].notna().any():
        freq = grain(prod[ts_col])
        period, periods = period_codes(prod[ts_col], freq)
        k = len(table)
        ok = period >= 0
        grid = np.bincount(period[ok] * k + codes[ok], minlength=len(periods) * k).reshape(len(periods), k)
        rows = grid.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = grid / rows
        over_time = pd.DataFrame(shares, columns=table["version"].tolist())
        over_time.insert(0, "period", periods)
        over_time.insert(1, "rows", rows[:, 0])
        over_time.attrs["freq"] = freq
    return table, over_time


# --- re-scoring ---------------------------------------------------------------------------------
def _model_inputs(model, incident, df: pd.DataFrame) -> tuple[list[pd.DataFrame], list[str]]:
    """Frames to try predicting on (categories as plain values first, typed second) and the
    columns the model needs that ``df`` lacks."""
    names = getattr(model, "feature_names_in_", None)
    cols = [str(c) for c in names] if names is not None else list(incident.features)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        return [], missing
    typed = df[cols]
    plain = typed.copy()
    for c in cols:
        if isinstance(plain[c].dtype, pd.CategoricalDtype):
            plain[c] = plain[c].astype(object).where(plain[c].notna(), np.nan)
    return [plain, typed], []


def _predict(model, frames: list[pd.DataFrame], want_score: bool, positive):
    """Model predictions (and positive-class scores) for the first input frame the model accepts."""
    from threadpoolctl import threadpool_limits

    error = None
    for X in frames:
        try:
            with threadpool_limits(limits=1, user_api="openmp"):
                pred = np.asarray(model.predict(X))
            score = None
            if want_score and hasattr(model, "predict_proba"):
                classes = [str(c) for c in getattr(model, "classes_", [])]
                if str(positive) in classes:
                    with threadpool_limits(limits=1, user_api="openmp"):
                        proba = np.asarray(model.predict_proba(X))
                    score = proba[:, classes.index(str(positive))].astype(float)
            return pred, score, None
        except Exception as exc:  # noqa: BLE001 - the message goes on the page
            error = exc
    return None, None, f"{type(error).__name__}: {error}"


def _label_text(values) -> np.ndarray:
    """Labels as comparable text (``1``, ``1.0`` and ``np.int64(1)`` all read ``"1"``), None if missing."""
    codes, labels = text_codes(pd.Series(np.asarray(values, dtype=object)))
    return np.array(labels + [None], dtype=object)[codes]


def logged_precision(values) -> float:
    """Half a unit of the last decimal the logged numbers keep (``0.005`` for values rounded to
    cents), so a re-computed value that rounds to the logged one counts as the same."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)][:10_000]
    for decimals in range(0, 9):
        if np.allclose(x, np.round(x, decimals), rtol=0, atol=1e-9 * max(1.0, float(np.abs(x).max(initial=0)))):
            return 0.5 * 10.0**-decimals
    return 0.0


def _same_number(logged, recomputed) -> np.ndarray:
    atol = logged_precision(logged) * (1 + 1e-9) + 1e-12
    return np.isclose(logged, np.asarray(recomputed, dtype=float), rtol=_RTOL, atol=atol)


def _agreement(incident, df: pd.DataFrame, pred, score) -> dict[str, np.ndarray]:
    logged = df[incident.prediction].to_numpy(object)
    if incident.is_classification:
        same_pred = _label_text(logged) == _label_text(pred)
    else:
        same_pred = _same_number(pd.to_numeric(df[incident.prediction], errors="coerce").to_numpy(float), pred)
    out = {"prediction": same_pred}
    if score is not None and incident.score and incident.score in df.columns:
        out["score"] = _same_number(pd.to_numeric(df[incident.score], errors="coerce").to_numpy(float), score)
    out["reproduced"] = out["prediction"] & out.get("score", True)
    return out


def _rescore(incident, model, df: pd.DataFrame, by_version: bool, n: int, seed: int, role: str):
    """Re-score a seeded sample of ``df``'s rows that have a logged prediction."""
    has_pred = df[incident.prediction].notna().to_numpy()
    sample = sample_rows(df[has_pred], n, seed=seed)
    frames, missing = _model_inputs(model, incident, sample)
    if missing:
        return None, f"{role} lacks column(s) the model needs: {', '.join(missing)}"
    if len(sample) == 0:
        return None, f"no {role} rows with a logged prediction"
    want_score = incident.kind == "binary" and bool(incident.score) and incident.score in sample.columns
    pred, score, error = _predict(model, frames, want_score, incident.positive_label)
    if error:
        return None, f"the model could not score the {role} rows ({error})"
    agree = _agreement(incident, sample, pred, score)
    rows = []  # per version, when there are several
    groups = version_text(sample[incident.columns.model_version]) if by_version else None
    for name in (groups.value_counts().index if by_version else []):
        pos = np.flatnonzero(groups.to_numpy() == name)
        k, m = int(agree["reproduced"][pos].sum()), len(pos)
        lo, hi = wilson(k, m)
        rows.append({"set": role, "version": name, "rows_rescored": m,
                     "prediction_agreement": float(agree["prediction"][pos].mean()),
                     "score_agreement": float(agree["score"][pos].mean()) if "score" in agree else np.nan,
                     "reproduced": k / m, "ci_low": float(lo), "ci_high": float(hi)})
    k, m = int(agree["reproduced"].sum()), len(sample)
    lo, hi = wilson(k, m)
    overall = {"set": role, "version": "(all)", "rows_rescored": m,
               "prediction_agreement": float(agree["prediction"].mean()),
               "score_agreement": float(agree["score"].mean()) if "score" in agree else np.nan,
               "reproduced": k / m, "ci_low": float(lo), "ci_high": float(hi)}
    return pd.DataFrame([overall] + (rows if len(rows) > 1 else [])), None


def _model_evidence(incident, has_versions: bool):
    """Checksum status and, when the file may be loaded, re-scoring of production and reference."""
    status = model_status(incident)
    info = {"path": status.path, "shown_path": shown_path(status.path, Path(incident.spec.source).parent),
            "expected_sha256": status.expected_sha256,
            "actual_sha256": status.actual_sha256, "checksum_matches": status.checksum_matches,
            "loaded": False, "reason": status.reason}
    if status.path is None or not status.trusted:
        return info, pd.DataFrame()
    try:
        model = load_model(incident)
    except Exception as exc:  # noqa: BLE001 - a file that does not load is evidence, not a crash
        info["reason"] = f"the file could not be loaded: {type(exc).__name__}: {exc}"
        return info, pd.DataFrame()
    info["loaded"] = True
    n = int(incident.threshold("general", "sample_rows"))
    seed = int(incident.threshold("general", "seed"))
    tables, problems = [], []
    for role, df in (("production", incident.production), ("reference", incident.reference)):
        by_version = has_versions and incident.columns.model_version in df.columns
        table, problem = _rescore(incident, model, df, by_version, n, seed, role)
        if problem:
            problems.append(problem)
        else:
            tables.append(table)
    info["rescore_problems"] = problems
    # only the sides whose rows were actually scored: a failed attempt re-scored nothing
    scored = {t["set"].iloc[0]: int(t.loc[t["version"] == "(all)", "rows_rescored"].iloc[0]) for t in tables}
    if scored:
        info["rescored_rows"] = scored
    return info, (pd.concat(tables, ignore_index=True) if tables else pd.DataFrame())


def run(incident) -> Result:
    """Which model versions served production, and does the model file reproduce their predictions?"""
    col = incident.columns.model_version
    has_versions = bool(col) and col in incident.production.columns
    if not has_versions and incident.spec.model.path is None:
        return Result(skipped(CHECK, "Not checked: the spec gives neither columns.model_version (the version "
                                     "logged with each prediction) nor model.path (the model file to re-score "
                                     "production rows with); provide either."))
    min_share = incident.threshold(CHECK, "minor_version_share")
    reproduce_rate = incident.threshold(CHECK, "reproduce_rate")

    versions_table, over_time, expected, why_expected = pd.DataFrame(), pd.DataFrame(), None, ""
    if has_versions:
        versions = version_text(incident.production[col])
        expected, why_expected = _expected_version(incident, versions)
        versions_table, over_time = _version_tables(incident, versions, expected)
    model_info, rescored = _model_evidence(incident, has_versions)

    evidence = DeploymentEvidence(expected_version=expected, expected_version_from=why_expected,
                                  model_file=model_info)
    problems: list[str] = []
    culprits: list[str] = []
    severity, strength = "info", 0.0

    if has_versions:
        unexpected = versions_table[~versions_table["expected"]]
        evidence.versions = versions_table.to_dict(orient="records")
        evidence.unexpected_share = float(unexpected["share"].sum())
        if len(unexpected):
            culprits += unexpected["version"].tolist()
            share = float(unexpected["share"].sum())
            problems.append(_versions_sentence(incident, versions_table, unexpected, expected))
            severity = "critical" if share >= min_share else "warning"
            strength = max(strength, min(1.0, 0.5 + share))

    rescore_verdict = None
    if not rescored.empty:
        prod_all = rescored[(rescored["set"] == "production") & (rescored["version"] == "(all)")]
        ref_all = rescored[(rescored["set"] == "reference") & (rescored["version"] == "(all)")]
        ref_ok = ref_all.empty or float(ref_all["ci_high"].iloc[0]) >= reproduce_rate
        evidence.reproduction = rescored.to_dict(orient="records")
        if not ref_ok:
            rescore_verdict = "file"
            problems.append(f"the model file reproduces only {ref_all['reproduced'].iloc[0]:.0%} of the reference "
                            "predictions: it is not the model that made them, so it cannot tell which model "
                            "served production")
        elif not prod_all.empty and float(prod_all["ci_high"].iloc[0]) < reproduce_rate:
            rescore_verdict = "production"
            bad = rescored[(rescored["set"] == "production") & (rescored["version"] != "(all)")
                           & (rescored["ci_high"] < reproduce_rate)]
            culprits += [v for v in bad["version"] if v not in culprits]
            good = rescored[(rescored["set"] == "production") & (rescored["version"] != "(all)")
                            & (rescored["ci_high"] >= reproduce_rate)]
            if len(bad) and len(good):
                problems.append("re-scored with the model file, the logged predictions of "
                                + ", ".join(f"{r.version} ({r.reproduced:.0%})" for r in good.itertuples())
                                + " reproduce but those of "
                                + ", ".join(f"{r.version} ({r.reproduced:.0%})" for r in bad.itertuples())
                                + " do not")
            else:
                problems.append("the model file reproduces the reference predictions but only "
                                f"{prod_all['reproduced'].iloc[0]:.0%} of the logged production ones: those rows "
                                "were scored by a different model or from different inputs")
            severity = "critical"
            strength = max(strength, 1 - float(prod_all["reproduced"].iloc[0]))
    mismatch = model_info["checksum_matches"] is False
    reproduced_everything = (not rescored.empty and rescore_verdict is None)
    if mismatch and not reproduced_everything:
        problems.append("the model file's checksum does not match model.sha256"
                        + ("" if model_info["loaded"] else " (not loaded; pass --trust-model to re-score with it)"))
        severity = "warning" if severity == "info" else severity
        strength = max(strength, 0.3)
    elif mismatch:
        evidence.note = ("the file's checksum does not match model.sha256, but it reproduces the logged "
                         "predictions: the checksum in the spec is probably out of date")

    if problems and (culprits or rescore_verdict == "production" or mismatch):
        summary = _capitalise("; ".join(problems)) + "."
        return _result(Finding(CHECK, "detected", severity, summary, culprits, evidence, strength=strength),
                       versions_table, over_time, rescored, model_info, expected, incident)
    if rescore_verdict == "file":
        summary = _capitalise(problems[0]) + "; provide the model file that was deployed."
        return _result(Finding(CHECK, "inconclusive", "warning", summary, [], evidence),
                       versions_table, over_time, rescored, model_info, expected, incident)
    return _result(Finding(CHECK, "clear", "info", _clear_sentence(versions_table, expected, model_info, rescored),
                           [], evidence), versions_table, over_time, rescored, model_info, expected, incident)


def _result(finding, versions_table, over_time, rescored, model_info, expected, incident) -> Result:
    return Result(finding, tables={"versions": versions_table, "versions_over_time": over_time,
                                   "reproduction": rescored},
                  data={"model_file": model_info, "expected_version": expected,
                        "metric": headline_name(incident), "higher_is_better": incident.is_classification,
                        "reproduce_rate": incident.threshold(CHECK, "reproduce_rate"),
                        "rescored_rows": int(incident.threshold("general", "sample_rows"))})


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _versions_sentence(incident, table, unexpected, expected) -> str:
    metric = headline_name(incident)
    parts = []
    for r in unexpected.head(3).itertuples():
        m = getattr(r, metric)
        perf = f", {metric} {m:.3f}" if np.isfinite(m) and r.labelled_rows else ""
        parts.append(f"version {r.version} served {r.share:.1%} of production traffic{perf}")
    exp = table[table["expected"]]
    base = ""
    if len(exp) and np.isfinite(exp[metric].iloc[0]) and exp["labelled_rows"].iloc[0]:
        base = f" against {exp[metric].iloc[0]:.3f} for {exp['version'].iloc[0]}"
    expected_text = f"the expected {expected}" if expected else "the expected version"
    more = f" ({len(unexpected) - 3} more versions)" if len(unexpected) > 3 else ""
    return f"{'; '.join(parts)}{base}, instead of {expected_text}{more}"


def _clear_sentence(table, expected, model_info, rescored) -> str:
    parts = []
    if len(table):
        parts.append(f"every production row was served by the expected version {expected}")
    if not rescored.empty:
        prod = rescored[(rescored["set"] == "production") & (rescored["version"] == "(all)")]
        if not prod.empty:
            parts.append(f"the model file reproduces {prod['reproduced'].iloc[0]:.1%} of "
                         f"{prod['rows_rescored'].iloc[0]:,} re-scored production predictions")
    elif model_info["path"] is not None:
        parts.append(f"the model file was not re-scored ({model_info['reason']})")
    return _capitalise("; ".join(parts) or "nothing points at a different model serving") + "."


def model_file_table(result) -> pd.DataFrame:
    """The model file's checksum status as a two-column table for the page."""
    info = result.data.get("model_file") or {}
    if not info or info.get("path") is None:
        return pd.DataFrame({"item": ["model file"], "value": ["not given (model.path in the spec)"]})
    rows = [("file", info.get("shown_path", info["path"])), ("expected sha256 (model.sha256)", info["expected_sha256"] or "not given"),
            ("actual sha256", info["actual_sha256"]),
            ("checksum matches", {True: "yes", False: "NO", None: "cannot tell"}[info["checksum_matches"]]),
            ("loaded and re-scored", "yes" if info["loaded"] else "no"), ("why", info["reason"])]
    rows += [("could not re-score", p) for p in info.get("rescore_problems", [])]
    return pd.DataFrame(rows, columns=["item", "value"])


# --- contract -----------------------------------------------------------------------------------
# the defaults behind the verdict, overridable under thresholds.deployment (docs/thresholds.md)
THRESHOLDS = {
    "reproduce_rate": Threshold(0.99, "share of logged predictions the model must reproduce"),
    "minor_version_share": Threshold(0.01, "versions below this share of traffic are still reported"),
}
THRESHOLD_NOTES = (
    "Is the validated model the one serving?"
)


class DeploymentEvidence(Evidence):
    """The deployment finding's evidence (none when skipped)."""

    expected_version: str | None = None  # the version that should be serving
    expected_version_from: str | None = None  # where that comes from (model.version, the reference's version …)
    model_file: dict[str, Any] | None = None  # the model file: path, checksum, loaded, rows re-scored …
    versions: list[dict[str, Any]] | None = None  # each version logged in production: rows, share, expected …
    unexpected_share: float | None = None  # share of production served by another version
    reproduction: list[dict[str, Any]] | None = None  # re-scored with the file: agreement per set and version
    note: str | None = None  # a checksum that does not match a file that reproduces the predictions


def _actions(finding: dict, ctx: Context) -> list[dict]:
    versions = finding.get("culprits", [])
    expected = ctx.incident.spec.model.version
    return [{"check": CHECK, "action": "Roll back / pin the serving version",
             "detail": f"route all traffic to version {expected or 'the validated one'}"
                       + (f"; stop serving {', '.join(versions)}" if versions else ""),
             "why": finding["summary"]}]


def _alerts(finding: dict, ctx: Context) -> list[dict]:
    spec = ctx.incident.spec
    if not (spec.columns.model_version or spec.model.version):
        return []
    share = ctx.monitor_bar("model_version")  # the monitor's bar (MONITOR below)
    return [{"alert": "model_version", "metric": "versions serving",
             "condition": f"more than {share:.0%} of a {spec.monitoring.window} window's traffic (Wilson interval's "
                          f"low end) served by a version other than {spec.model.version or 'the validated one'}",
             "monitor": "model_version", "why": "catch a wrong deployment at once"}]


# Alert rules `mlinvestigate monitor` evaluates per window.
MONITOR = (
    MonitorRule("model_version", "infrastructure", critical=0.01, unit="share", statistic="version_other_share",
                low="version_other_low", subject="not {model.version}", needs=("model.version",),
                watches="share of traffic served by another model version",
                sentence="{value} of traffic served by a model version other than the expected one (bar {bar})"),
)


CONTRACT = register(CheckContract(
    id=CHECK, thresholds=THRESHOLDS, threshold_notes=THRESHOLD_NOTES,
    title="Deployment", question="Is the right model serving?", stage="triage", module=__name__,
    culprit=lambda text: Culprit("version", value=text), evidence=DeploymentEvidence,
    explains=(WhenSymptomBlamesOnly("labels", frozenset({"definition", "label noise"}), priority=30,
                                    reason="another model serving changes how often a score is right"),),
    actions=_actions, alerts=_alerts, monitor=MONITOR,
    checklist=(("deployment", "The model version serving is the one validated"),),
    cost=1.5))
