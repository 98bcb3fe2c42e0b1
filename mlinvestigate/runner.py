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
import shlex
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__, resources
from . import kernels as kernel_pool
from .contract import registered
from .data import load_incident, release_memory
from .display import esc
from .document import DRAFT, findings_document, incident_facts, write_json
from .errors import InvestigationError
from .findings import Finding
from .kernels import Kernel, threads_per_kernel
from .spec import IncidentSpec, load_spec


@dataclass
class RunResult:
    folder: Path
    findings: dict
    failed: list[str]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def available_checks(notebooks: Path | None = None) -> list[str]:
    """Registered check ids whose notebook exists, in investigation order."""
    return list(_select(None, notebooks))


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
        {"href": f"{c}.html", "label": registered()[c].title} for c in selected]


def _exporter():
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="mlinvestigate", extra_template_basedirs=[str(resources.templates())],
                        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
                        embed_images=True)


def render_html(notebook: Path, html_path: Path, meta: dict, exporter=None) -> None:
    """Render an executed notebook with the project's template: code hidden, nothing remote."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    nb.metadata["mlinvestigate"] = meta
    body, _ = (exporter or _exporter()).from_notebook_node(nb)
    html_path.write_text(body, encoding="utf-8")


@dataclass
class _Task:
    """One notebook to execute into the report folder and render to ``page``."""

    check: str  # check id, or "summary"
    notebook: str
    page: str
    parameters: dict
    meta: dict
    timing: dict = field(default_factory=dict)  # seconds spent executing and rendering, filled in by the run


def _run_task(kernel: Kernel, task: _Task, render: Callable[[Path, Path, dict], None]) -> dict:
    """Execute and render one notebook; return its finding (an ``error`` one when it failed)."""
    folder = Path(task.parameters["out"])
    out_nb = folder / f"{task.check}.ipynb"
    error = None
    started = time.perf_counter()
    try:
        kernel.execute(task.notebook, str(out_nb), task.parameters)
    except Exception as exc:  # noqa: BLE001 - any failure becomes this check's error finding
        error = exc
    executed = time.perf_counter()
    finding_file = folder / "findings" / f"{task.check}.json"
    if error is not None:
        text = str(getattr(error, "evalue", None) or error) or type(error).__name__
        tb = "".join(traceback.format_exception_only(type(error), error))
        finding = _failed(task.check, f"failed: {text.splitlines()[0][:300]}", error=text, traceback=tb[-4000:])
    elif finding_file.exists() or task.check == "summary":
        finding = json.loads(finding_file.read_text()) if finding_file.exists() else {}
    else:
        finding = _failed(task.check, "notebook ran but saved no finding (result.save(out) missing).")
    if out_nb.exists():
        try:
            render(out_nb, folder / task.page, {**task.meta, "current": task.page})
        except Exception as exc:  # noqa: BLE001
            finding = _failed(task.check, f"page could not be rendered: {exc}",
                              traceback=traceback.format_exc()[-4000:])
    task.timing.update(execute=round(executed - started, 2), render=round(time.perf_counter() - executed, 2))
    return finding


class _Workers:
    """``jobs`` kernels, each driven by a thread of this process, fed from one queue.

    The work happens in the kernels (separate processes); a thread only waits on its kernel and
    renders the page, so threads cost no start-up where worker processes would import everything
    a second time.
    """

    def __init__(self, jobs: int, cwd: Path, env: dict[str, str], kernels: list[Kernel] | None = None):
        import queue
        import threading

        self.tasks: queue.Queue = queue.Queue()
        self.results: queue.Queue = queue.Queue()
        self._render_lock = threading.Lock()
        self._exporter = None
        # kernels the caller started already (the command line does, before its imports), else new ones
        started = list(kernels or [])
        jobs = len(started) or jobs
        self.threads = [threading.Thread(target=self._serve, daemon=True,
                                         args=(str(cwd), threads_per_kernel(jobs), env,
                                               started[i] if i < len(started) else None))
                        for i in range(jobs)]
        for t in self.threads:
            t.start()

    def _serve(self, cwd: str, threads: int, env: dict[str, str], kernel: Kernel | None) -> None:
        try:
            kernel = kernel or Kernel(cwd, threads, env)
            while (task := self.tasks.get()) is not None:
                try:
                    self.results.put((task.check, _run_task(kernel, task, self.render)))
                except Exception as exc:  # noqa: BLE001 - report it and keep serving
                    self.results.put((task.check, _failed(task.check, f"crashed: {exc}")))
        except Exception as exc:  # noqa: BLE001 - a kernel that cannot start fails its tasks, visibly
            while (task := self.tasks.get()) is not None:
                self.results.put((task.check, _failed(task.check, f"could not start a kernel: {exc}")))
        finally:
            if kernel is not None:
                kernel.close()

    def render(self, notebook: Path, html_path: Path, meta: dict) -> None:
        """Render a page; one exporter for the run (building one costs seconds), one page at a time."""
        with self._render_lock:
            if self._exporter is None:
                self._exporter = _exporter()
            render_html(notebook, html_path, meta, self._exporter)

    def run(self, tasks: list[_Task], progress: Callable[[int, str, dict], None]) -> dict[str, dict]:
        for t in tasks:
            self.tasks.put(t)
        done: dict[str, dict] = {}
        while len(done) < len(tasks):
            check, finding = self.results.get()
            done[check] = finding
            progress(len(done), check, finding)
        return done

    def close(self) -> None:
        for _ in self.threads:
            self.tasks.put(None)
        for t in self.threads:
            t.join(timeout=60)


def _failed(check: str, what: str, **evidence) -> dict:
    return Finding(check, "error", "warning", f"The {check} investigation {what}", evidence=evidence).to_dict()


def investigate(spec: str | Path, *, out: str | Path = "reports", checks_to_run: list[str] | None = None,
                jobs: int = 2, trust_model: bool = False, notebooks: Path | None = None,
                progress: Callable[[str], None] | None = None, kernels: list[Kernel] | None = None) -> RunResult:
    """Run the investigations of one incident into a new dated report folder.

    ``spec`` and ``out`` are resolved against the current directory here, once; notebooks,
    workers and templates only ever see absolute paths. ``kernels``, started by the caller
    (:func:`mlinvestigate.kernels.start`, in the spec's folder), are used instead of ``jobs`` new
    ones, and shut down at the end like them.

    Raises
    ------
    SpecError, DataError
        Before anything is written, when the spec or the data is unusable.
    """
    spec_path = Path(spec).expanduser().resolve()
    out = Path(out).expanduser().resolve()
    notebooks = Path(notebooks).resolve() if notebooks else None
    if not kernels:  # a broken spec or a missing file costs no kernel start (the caller checked, if it started them)
        load_spec(spec_path, registry=False)
    # Kernels start (and import for seconds) first, while this process reads the spec, imports the
    # checks and loads the data; a refused spec or unusable data stops them again.
    workers = _Workers(kernel_pool.count(jobs, checks_to_run), spec_path.parent, kernel_pool.plugin_env(), kernels)
    try:
        spec_obj = load_spec(spec_path)
        selected = _select(checks_to_run, notebooks)
        return _investigate(spec_obj, out, selected, notebooks, workers, checks_to_run=checks_to_run,
                            trust_model=trust_model, progress=progress)
    finally:
        workers.close()


def _investigate(spec: IncidentSpec, out: Path, selected: dict[str, Path], notebooks: Path | None,
                 workers: _Workers, *, checks_to_run, trust_model: bool, progress) -> RunResult:
    spec_path = Path(spec.source)
    given, progress = progress, progress or (lambda msg: None)  # given: bars per phase of an engine's load
    progress(f"loading {spec_path}")
    clock = time.perf_counter()
    incident = load_incident(spec, trust_model=trust_model, progress=given)
    timings: dict = {"load": round(time.perf_counter() - clock, 2)}
    created = dt.datetime.now(dt.UTC).replace(microsecond=0)
    folder = new_report_folder(out, incident.spec.name, today=created.date())
    progress(f"report folder {folder}")
    meta = {"title": incident.spec.display_title, "incident": incident.spec.name,
            "created": created.isoformat(), "version": __version__, "pages": _pages(list(selected))}
    command = "mlinvestigate run " + shlex.quote(str(spec_path)) + (
        f" --checks {','.join(selected)}" if checks_to_run else "") + (" --trust-model" if trust_model else "")
    contracts = registered()

    with tempfile.TemporaryDirectory(prefix="mlinvestigate-") as cache:
        clock = time.perf_counter()
        incident.save_cache(Path(cache))
        # the kernels read the data from the cache; this process keeps only what findings.json says
        # of the incident and gives the rest back (1.4 GB at 1M rows a side), so the run holds the
        # data once while the pages execute
        facts = incident_facts(incident)
        del incident
        release_memory()
        timings["cache"] = round(time.perf_counter() - clock, 2)
        clock = time.perf_counter()
        parameters = {"spec": str(spec_path), "out": str(folder), "data": cache, "trust_model": trust_model,
                      "interactive": False}

        def said(i: int, check: str, finding: dict) -> None:
            progress(f"[{i}/{len(selected)}] {check}: {finding['verdict']}")

        # the costliest first, so the two kernels finish together
        order = sorted(selected, key=lambda c: -contracts[c].cost if c in contracts else 0.0)
        tasks = [_Task(c, str(selected[c]), f"{c}.html", parameters, meta) for c in order]
        found = workers.run(tasks, said)
        timings["pages"] = {t.check: t.timing for t in tasks}
        timings["checks_wall"] = round(time.perf_counter() - clock, 2)
        findings = {c: found[c] for c in selected}
        doc = findings_document(facts, findings, created=created, command=command)
        write_json(Path(cache) / DRAFT, doc)
        summary_nb = (notebooks / "summary.ipynb") if notebooks and (notebooks / "summary.ipynb").exists() \
            else resources.notebooks() / "summary.ipynb"
        progress("summary")
        clock = time.perf_counter()
        summary_task = _Task("summary", str(summary_nb), "index.html", parameters, meta)
        summary = workers.run([summary_task], lambda *a: None)["summary"]
        timings["summary"] = summary_task.timing
    summary_error = summary["summary"] if summary.get("verdict") == "error" else None
    sections = folder / "findings" / "summary.json"
    if sections.exists():
        doc.update(json.loads(sections.read_text()))
    if summary_error:
        doc["warnings"] = doc["warnings"] + [summary_error]
    doc["timings"] = timings
    write_json(folder / "findings.json", doc)
    if not (folder / "index.html").exists():
        _failed_index(folder, doc, meta, summary_error or "the summary page was not written")
    failed = [c for c, f in findings.items() if f["verdict"] == "error"] + (["summary"] if summary_error else [])
    return RunResult(folder=folder, findings=doc, failed=failed)


def _select(requested: list[str] | None, notebooks: Path | None) -> dict[str, Path]:
    """Check id → its notebook, for the checks to run (a folder ``notebooks`` overrides the packaged ones)."""
    contracts = registered()
    available = {}
    for cid, contract in contracts.items():
        override = notebooks / f"{cid}.ipynb" if notebooks else None
        path = override if override is not None and override.exists() else contract.notebook_path()
        if path.exists() and (notebooks is None or override == path or contract.notebook is not None):
            available[cid] = path
    if not requested:
        return available
    unknown = [c for c in requested if c not in contracts]
    if unknown:
        raise InvestigationError(f"unknown check(s) {', '.join(unknown)}; valid: {', '.join(contracts)}")
    missing = [c for c in requested if c not in available]
    if missing:
        raise InvestigationError(f"no notebook for check(s) {', '.join(missing)}")
    return {c: p for c, p in available.items() if c in requested}


def _failed_index(folder: Path, doc: dict, meta: dict, error: str) -> None:
    """The front page when the summary page could not be made at all: the same template, the
    failure said first, then every verdict."""
    import nbformat

    from .summary import diagnosis_html, gap_html, header_html

    html = (f"<div class='mli-warnings'><p><b>The summary page failed:</b> {esc(error)}</p></div>"
            + header_html(doc) + gap_html(doc) + diagnosis_html(doc))
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": html})]
    nb.cells = [nbformat.v4.new_markdown_cell("# Summary"), cell]
    nb.metadata["mlinvestigate"] = {**meta, "current": "index.html"}
    body, _ = _exporter().from_notebook_node(nb)
    (folder / "index.html").write_text(body, encoding="utf-8")
