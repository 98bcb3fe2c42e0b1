"""Spec → notebooks → HTML → index: the batch investigation.

Reads like papermill's own ``execute_notebook``: validate the spec and load the data once (a
columnar cache every notebook reads back), execute each check's notebook with papermill in
parallel, render each executed notebook to HTML with the project's nbconvert template, then
write ``findings.json`` and ``index.html``. A failing notebook still gets its page, with the
error shown, and an ``error`` finding; the other checks are not affected.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import tempfile
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from . import __version__, checks
from .data import Incident, load_incident
from .diagnosis import explained_by, rank
from .errors import InvestigationError
from .findings import Finding, jsonable
from .metrics import metric_summary

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
TEMPLATES = ROOT / "templates"


@dataclass
class RunResult:
    folder: Path
    findings: dict
    failed: list[str]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def available_checks(notebooks: Path = NOTEBOOKS) -> list[str]:
    """Check ids whose notebook exists, in investigation order."""
    return [c for c in checks.CHECK_IDS if (notebooks / f"{c}.ipynb").exists()]


def new_report_folder(out: Path, name: str, *, today: dt.date | None = None) -> Path:
    """``out/<YYYY-MM-DD>-<name>``, or with ``-2``, ``-3`` … appended: never an existing folder."""
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{(today or dt.date.today()).isoformat()}-{name}"
    for i in range(1, 10_000):
        folder = out / (stem if i == 1 else f"{stem}-{i}")
        try:
            folder.mkdir()  # atomic: two runs at once cannot take the same folder
            return folder
        except FileExistsError:
            continue
    raise InvestigationError(f"too many reports named {stem} in {out}")


def _pages(selected: list[str]) -> list[dict]:
    return [{"href": "index.html", "label": "Summary"}] + [
        {"href": f"{c}.html", "label": checks.short_title(c)} for c in selected]


def render_html(notebook: Path, html_path: Path, meta: dict) -> None:
    """Render an executed notebook with the project's template: code hidden, nothing remote."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    nb.metadata["mlinvestigate"] = meta
    exporter = HTMLExporter(template_name="mlinvestigate", extra_template_basedirs=[str(TEMPLATES)],
                            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
                            embed_images=True)
    body, _ = exporter.from_notebook_node(nb)
    html_path.write_text(body, encoding="utf-8")


@contextmanager
def _kernel_threads(jobs: int):
    """Share the cores between notebooks running side by side (kernels started inside the block).

    OpenMP threads (gradient boosting) spin-wait for each other when there are more threads than
    free cores, which made fits 20x slower with two notebooks on two cores.
    """
    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // max(1, jobs)))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = before


def _execute(source: Path, out_nb: Path, spec_path: Path, folder: Path, cache: str, trust_model: bool) -> None:
    """papermill: run ``source`` into ``out_nb`` with the run's parameters, no display attached."""
    import papermill as pm

    pm.execute_notebook(str(source), str(out_nb), kernel_name="python3",
                        parameters={"spec": str(spec_path), "out": str(folder), "data": cache,
                                    "trust_model": trust_model, "interactive": False},
                        progress_bar=False, cwd=str(spec_path.parent),
                        # the kernel listens on loopback only; its TCP notice is noise on a terminal
                        extra_arguments=["--IPKernelApp.log_level=CRITICAL"])


def _run_one(check: str, notebook: str, spec_path: str, folder: str, cache: str, trust_model: bool,
             meta: dict, jobs: int) -> dict:
    """Execute and render one check's notebook (in a worker process). Returns its finding."""
    folder_p = Path(folder)
    out_nb = folder_p / f"{check}.ipynb"
    error = None
    try:
        with _kernel_threads(jobs):
            _execute(Path(notebook), out_nb, Path(spec_path), folder_p, cache, trust_model)
    except Exception as exc:  # noqa: BLE001 - any failure becomes this check's error finding
        error = exc
    finding_file = folder_p / "findings" / f"{check}.json"
    if error is not None:
        text = getattr(error, "evalue", None) or str(error)
        tb = "".join(traceback.format_exception_only(type(error), error))
        finding = Finding(check, "error", "warning",
                          f"The {check} investigation failed: {str(text).splitlines()[0][:300] if text else type(error).__name__}",
                          evidence={"error": str(text), "traceback": tb[-4000:]}).to_dict()
        finding_file.parent.mkdir(parents=True, exist_ok=True)
        finding_file.write_text(json.dumps(finding, indent=1))
    elif finding_file.exists():
        finding = json.loads(finding_file.read_text())
    else:
        finding = Finding(check, "error", "warning",
                          f"The {check} notebook ran but saved no finding (result.save(out) missing).").to_dict()
    if out_nb.exists():
        try:
            render_html(out_nb, folder_p / f"{check}.html", {**meta, "current": f"{check}.html"})
        except Exception as exc:  # noqa: BLE001
            finding = Finding(check, "error", "warning", f"The {check} page could not be rendered: {exc}",
                              evidence={"traceback": traceback.format_exc()[-4000:]}).to_dict()
    return finding


def investigate(spec: str | Path, *, out: str | Path = "reports", checks_to_run: list[str] | None = None,
                jobs: int = 2, trust_model: bool = False, notebooks: Path = NOTEBOOKS,
                progress: Callable[[str], None] = lambda msg: None) -> RunResult:
    """Run the investigations of one incident into a new dated report folder.

    Raises
    ------
    SpecError, DataError
        Before anything is written, when the spec or the data is unusable.
    """
    spec_path = Path(spec).resolve()
    progress(f"loading {spec_path}")
    incident = load_incident(spec_path, trust_model=trust_model)
    selected = _select(checks_to_run, Path(notebooks))
    created = dt.datetime.now(dt.UTC).replace(microsecond=0)
    folder = new_report_folder(Path(out), incident.spec.name, today=created.date())
    progress(f"report folder {folder}")
    meta = {"title": incident.spec.display_title, "incident": incident.spec.name,
            "created": created.isoformat(), "version": __version__, "pages": _pages(selected)}
    command = "mlinvestigate run " + shlex.quote(str(spec_path)) + (
        f" --checks {','.join(selected)}" if checks_to_run else "") + (" --trust-model" if trust_model else "")

    findings: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="mlinvestigate-") as cache:
        incident.save_cache(Path(cache))
        with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_run_one, c, str(Path(notebooks) / f"{c}.ipynb"), str(spec_path),
                                   str(folder), cache, trust_model, meta, jobs): c
                       for c in selected}
            for i, fut in enumerate(as_completed(futures), 1):
                check = futures[fut]
                try:
                    findings[check] = fut.result()
                except Exception as exc:  # noqa: BLE001 - a crashed worker must not lose the others
                    findings[check] = Finding(check, "error", "warning",
                                              f"The {check} investigation crashed: {exc}").to_dict()
                progress(f"[{i}/{len(selected)}] {check}: {findings[check]['verdict']}")
        findings = {c: findings[c] for c in selected}
        doc = findings_document(incident, findings, created=created, command=command)
        (folder / "findings.json").write_text(json.dumps(doc, indent=1))
        progress("summary")
        with _kernel_threads(1):
            summary_error = _run_summary(Path(notebooks), spec_path, folder, cache, trust_model, meta)
    if summary_error or not (folder / "index.html").exists():
        # the plain index still lists every verdict; a failure is shown on it
        if summary_error:
            doc["warnings"] = doc["warnings"] + [f"The summary page failed: {summary_error}"]
        write_index(folder, doc, meta)
    doc = json.loads((folder / "findings.json").read_text())
    failed = [c for c, f in findings.items() if f["verdict"] == "error"] + (["summary"] if summary_error else [])
    return RunResult(folder=folder, findings=doc, failed=failed)


def _run_summary(notebooks: Path, spec_path: Path, folder: Path, cache: str, trust_model: bool,
                 meta: dict) -> str | None:
    """Execute the summary notebook into ``index.html``; return the error text if it failed."""
    source = notebooks / "summary.ipynb"
    if not source.exists():
        return None
    out_nb = folder / "summary.ipynb"
    try:
        _execute(source, out_nb, spec_path, folder, cache, trust_model)
        render_html(out_nb, folder / "index.html", {**meta, "current": "index.html"})
    except Exception as exc:  # noqa: BLE001 - fall back to the plain index
        return str(getattr(exc, "evalue", None) or exc).splitlines()[0][:300]
    return None


def _select(requested: list[str] | None, notebooks: Path) -> list[str]:
    available = available_checks(notebooks)
    if not requested:
        return available
    unknown = [c for c in requested if c not in checks.CHECK_IDS]
    if unknown:
        raise InvestigationError(f"unknown check(s) {', '.join(unknown)}; valid: {', '.join(checks.CHECK_IDS)}")
    missing = [c for c in requested if c not in available]
    if missing:
        raise InvestigationError(f"no notebook for check(s) {', '.join(missing)} in {notebooks}")
    return [c for c in available if c in requested]


def findings_document(incident: Incident, findings: dict[str, dict], *, created: dt.datetime,
                      command: str) -> dict:
    """``findings.json`` as DESIGN.md specifies, plus ``command``, ``warnings`` and ``time_range``."""
    return jsonable({
        "incident": incident.spec.name,
        "title": incident.spec.display_title,
        "created": created.isoformat().replace("+00:00", "Z"),
        "version": __version__,
        "command": command,
        "inputs": incident.inputs,
        "task": incident.kind,
        "time_range": _time_range(incident),
        "metric": metric_summary(incident),
        "warnings": incident.warnings,
        "checks": findings,
        "ranking": rank(findings),
        "explained_by": explained_by(findings),
    })


def _time_range(incident: Incident) -> dict:
    ts = incident.spec.columns.timestamp
    out = {}
    for role, df in (("reference", incident.reference), ("production", incident.production)):
        if ts and ts in df.columns and df[ts].notna().any():
            out[role] = [df[ts].min().isoformat(), df[ts].max().isoformat()]
    return out


def write_index(folder: Path, doc: dict, meta: dict) -> None:
    """The report's front page: header, metric gap, one row per check linking its page."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)
    page = env.get_template("index.html.j2").render(doc=doc, meta={**meta, "current": "index.html"},
                                                   titles=checks.TITLES)
    (folder / "index.html").write_text(page, encoding="utf-8")
