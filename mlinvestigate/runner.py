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
from dataclasses import dataclass
from pathlib import Path

from . import __version__, checks, resources
from .data import Incident, load_incident
from .diagnosis import explained_by, rank
from .errors import InvestigationError
from .findings import Finding, jsonable
from .metrics import metric_summary
from .spec import IncidentSpec, load_spec

KERNEL_ARGS = ["--IPKernelApp.log_level=CRITICAL"]  # the kernel's loopback notice is noise on a terminal
WARM_UP = "import mlinvestigate.checks, mlinvestigate.display, mlinvestigate.plots, matplotlib.pyplot, sklearn.ensemble"


@dataclass
class RunResult:
    folder: Path
    findings: dict
    failed: list[str]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def available_checks(notebooks: Path | None = None) -> list[str]:
    """Check ids whose notebook exists, in investigation order."""
    notebooks = notebooks or resources.notebooks()
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


class _Kernel:
    """One IPython kernel that executes several notebooks in turn.

    Starting a kernel and importing pandas, scikit-learn and matplotlib costs seconds; a run
    executes ten notebooks, so each worker keeps its kernel (papermill accepts a running kernel
    manager) and the incident is read from the run's cache once per kernel.
    """

    def __init__(self, cwd: str, threads: int):
        from jupyter_client.manager import KernelManager

        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        # OpenMP threads (gradient boosting) spin-wait for each other when there are more threads
        # than free cores, which made fits 20x slower with two kernels on two cores.
        self.cwd = cwd
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=cwd, env=env, extra_arguments=KERNEL_ARGS)
        # Import the heavy libraries while the run is still being prepared; the kernel handles
        # requests in order, so the first notebook simply finds them imported.
        client = self.km.client()
        client.start_channels()
        client.execute(WARM_UP, silent=True, store_history=False)
        self._warm_up_client = client

    def execute(self, source: str, target: str, parameters: dict) -> None:
        import papermill as pm

        if not self.km.is_alive():  # a notebook that killed its kernel must not fail the next one
            self.km.restart_kernel(now=True)
        pm.execute_notebook(source, target, kernel_name="python3", parameters=parameters,
                            progress_bar=False, km=self.km,
                            # the notebook is written once at the end, not after every cell
                            request_save_on_cell_execute=False, autosave_cell_every=0)

    def close(self) -> None:
        self._warm_up_client.stop_channels()
        self.km.shutdown_kernel(now=True)


def _run_task(kernel: _Kernel, task: _Task, render: Callable[[Path, Path, dict], None]) -> dict:
    """Execute and render one notebook; return its finding (an ``error`` one when it failed)."""
    folder = Path(task.parameters["out"])
    out_nb = folder / f"{task.check}.ipynb"
    error = None
    try:
        kernel.execute(task.notebook, str(out_nb), task.parameters)
    except Exception as exc:  # noqa: BLE001 - any failure becomes this check's error finding
        error = exc
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
    return finding


class _Workers:
    """``jobs`` kernels, each driven by a thread of this process, fed from one queue.

    The work happens in the kernels (separate processes); a thread only waits on its kernel and
    renders the page, so threads cost no start-up where worker processes would import everything
    a second time.
    """

    def __init__(self, jobs: int, cwd: Path):
        import queue
        import threading

        self.tasks: queue.Queue = queue.Queue()
        self.results: queue.Queue = queue.Queue()
        self._render_lock = threading.Lock()
        self._exporter = None
        threads = max(1, (os.cpu_count() or 1) // jobs)
        self.threads = [threading.Thread(target=self._serve, args=(str(cwd), threads), daemon=True)
                        for _ in range(jobs)]
        for t in self.threads:
            t.start()

    def _serve(self, cwd: str, threads: int) -> None:
        kernel = None
        try:
            kernel = _Kernel(cwd, threads)
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
                progress: Callable[[str], None] = lambda msg: None) -> RunResult:
    """Run the investigations of one incident into a new dated report folder.

    ``spec`` and ``out`` are resolved against the current directory here, once; notebooks,
    workers and templates only ever see absolute paths.

    Raises
    ------
    SpecError, DataError
        Before anything is written, when the spec or the data is unusable.
    """
    spec_path = Path(spec).expanduser().resolve()
    out = Path(out).expanduser().resolve()
    notebooks = Path(notebooks).resolve() if notebooks else resources.notebooks()
    spec_obj = load_spec(spec_path)  # a broken spec fails before any kernel starts
    selected = _select(checks_to_run, notebooks)
    # kernels start (and import) while the data is read; a refused spec stops them again
    workers = _Workers(max(1, min(jobs, len(selected))), spec_path.parent)
    try:
        return _investigate(spec_obj, out, selected, notebooks, workers, checks_to_run=checks_to_run,
                            trust_model=trust_model, progress=progress)
    finally:
        workers.close()


def _investigate(spec: IncidentSpec, out: Path, selected: list[str], notebooks: Path, workers: _Workers, *,
                 checks_to_run, trust_model: bool, progress) -> RunResult:
    spec_path = Path(spec.source)
    progress(f"loading {spec_path}")
    incident = load_incident(spec, trust_model=trust_model)
    created = dt.datetime.now(dt.UTC).replace(microsecond=0)
    folder = new_report_folder(out, incident.spec.name, today=created.date())
    progress(f"report folder {folder}")
    meta = {"title": incident.spec.display_title, "incident": incident.spec.name,
            "created": created.isoformat(), "version": __version__, "pages": _pages(selected)}
    command = "mlinvestigate run " + shlex.quote(str(spec_path)) + (
        f" --checks {','.join(selected)}" if checks_to_run else "") + (" --trust-model" if trust_model else "")

    with tempfile.TemporaryDirectory(prefix="mlinvestigate-") as cache:
        incident.save_cache(Path(cache))
        parameters = {"spec": str(spec_path), "out": str(folder), "data": cache, "trust_model": trust_model,
                      "interactive": False}

        def task(check: str, page: str) -> _Task:
            return _Task(check, str(notebooks / f"{check}.ipynb"), page, parameters, meta)

        def said(i: int, check: str, finding: dict) -> None:
            progress(f"[{i}/{len(selected)}] {check}: {finding['verdict']}")

        found = workers.run([task(c, f"{c}.html") for c in selected], said)
        findings = {c: found[c] for c in selected}
        doc = findings_document(incident, findings, created=created, command=command)
        (folder / "findings.json").write_text(json.dumps(doc, indent=1))
        summary_error = None
        if (notebooks / "summary.ipynb").exists():
            progress("summary")
            summary = workers.run([task("summary", "index.html")], lambda *a: None)["summary"]
            if summary.get("verdict") == "error":
                summary_error = summary["summary"]
    if summary_error or not (folder / "index.html").exists():
        # the plain index still lists every verdict; a failure is shown on it
        if summary_error:
            doc["warnings"] = doc["warnings"] + [summary_error]
        write_index(folder, doc, meta)
    doc = json.loads((folder / "findings.json").read_text())
    failed = [c for c, f in findings.items() if f["verdict"] == "error"] + (["summary"] if summary_error else [])
    return RunResult(folder=folder, findings=doc, failed=failed)


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

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(resources.templates())), autoescape=True)
    page = env.get_template("index.html.j2").render(doc=doc, meta={**meta, "current": "index.html"},
                                                   titles=checks.TITLES)
    (folder / "index.html").write_text(page, encoding="utf-8")
