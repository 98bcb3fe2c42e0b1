"""Command line: ``mlinvestigate new | run | monitor | demo | scenarios``.

Exit codes: 0 done, 1 some investigation failed (its page and finding say why), 2 the spec or the
data is unusable (the message names the file, key or column and how to fix it), 3 (``monitor``) an
alert is new.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from . import __version__, resources
from .errors import InvestigationError

# jsonschema (under nbformat, which papermill and nbconvert use) imports rfc3987_syntax whenever it
# is installed, and that compiles a grammar for 3 CPU seconds of every run; nbformat's schemas check
# no IRI format, so the command line skips that optional import (jsonschema expects it may fail).
sys.modules.setdefault("rfc3987_syntax", None)


def _progress(msg: str) -> None:
    click.echo(f"mlinvestigate: {msg}", err=True)


def _fail(exc: Exception) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(2)


def _checks_option(value: str | None) -> list[str] | None:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


def _absolute(path: Path) -> Path:
    """A command-line path, resolved once against the current directory."""
    return path.expanduser().resolve()


def _output_folder(out: Path) -> Path:
    """``--out`` made absolute and proved writable before any work starts (exit 2 otherwise).

    Nothing is created here: a refused run leaves no trace.
    """
    import os

    out = _absolute(out)
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir():
        _fail(InvestigationError(f"--out {out}: {existing} is a file; give a folder to receive the report."))
    if not os.access(existing, os.W_OK | os.X_OK):
        _fail(InvestigationError(f"--out {out}: {existing} is not writable; choose a folder you can write to."))
    return out


def _run(spec: Path, out: Path, checks: str | None, jobs: int, trust_model: bool,
         single_file: bool = False) -> int:
    spec, out = _absolute(spec), _output_folder(out)
    chosen = _checks_option(checks)
    from . import kernels as kernel_pool
    from .spec import load_spec

    try:  # a broken spec or a missing file is refused before any kernel starts
        load_spec(spec, registry=False)
    except InvestigationError as exc:
        _fail(exc)
    # the kernels start first and import while this process imports the runner and loads the data
    try:
        kernels = kernel_pool.start(kernel_pool.count(jobs, chosen), spec.parent if spec.is_file() else spec)
    except Exception:  # noqa: BLE001 - the runner tries again and reports it on every page it cannot run
        kernels = None
    from .runner import investigate

    try:
        result = investigate(spec, out=out, checks_to_run=chosen, jobs=jobs, trust_model=trust_model,
                             progress=_progress, kernels=kernels)
    except InvestigationError as exc:
        _fail(exc)
    doc = result.findings
    headline = doc.get("diagnosis", {}).get("headline")
    if headline:
        click.echo(headline)
    ranking = doc["ranking"]
    click.echo("detected: " + (", ".join(ranking) if ranking else "nothing"))
    if single_file:
        from .export import single_file as export

        click.echo(f"single file: {export(result.folder)}")
    if result.failed:
        click.echo(f"failed: {', '.join(result.failed)} (see their pages)", err=True)
    click.echo(f"open {_shown(result.folder / 'index.html')}")
    return result.exit_code


def _shown(path: Path) -> str:
    """``path`` relative to the current directory when it is inside it (shorter to read and click)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlinvestigate")
def main() -> None:
    """Find out why a model that scored well offline fails in production."""


@main.command()
@click.argument("spec", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports"), show_default=True,
              help="Folder that receives the dated report folder.")
@click.option("--checks", help="Comma-separated check ids to run (default: all).")
@click.option("--jobs", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Notebooks executed in parallel.")
@click.option("--trust-model", is_flag=True,
              help="Load the model file even if its sha256 does not match the spec (pickles run code).")
@click.option("--single-file", is_flag=True, help="Also write one self-contained HTML file with every page.")
def run(spec: Path, out: Path, checks: str | None, jobs: int, trust_model: bool, single_file: bool) -> None:
    """Investigate the incident described by SPEC (an incident.yaml)."""
    sys.exit(_run(spec, out, checks, jobs, trust_model, single_file))


@main.command()
@click.argument("report_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--out", "dest", type=click.Path(path_type=Path), default=None,
              help="File to write (default: REPORT_DIR/<folder name>.html; never overwritten).")
def export(report_dir: Path, dest: Path | None) -> None:
    """Write one self-contained HTML file holding every page of REPORT_DIR."""
    from .export import single_file

    try:
        click.echo(f"wrote {single_file(_absolute(report_dir), _absolute(dest) if dest else None)}")
    except InvestigationError as exc:
        _fail(exc)


@main.command()
@click.argument("name")
@click.option("--dir", "parent", type=click.Path(path_type=Path), default=Path("."), show_default=True,
              help="Where to create the NAME folder.")
def new(name: str, parent: Path) -> None:
    """Write NAME/incident.yaml, a commented spec to fill in."""
    import re

    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
        _fail(InvestigationError(f"{name!r} is not a valid incident name: use lowercase letters, digits and '-'."))
    target = _absolute(parent) / name / "incident.yaml"
    if target.exists():
        _fail(InvestigationError(f"{target} already exists; nothing was changed."))
    target.parent.mkdir(parents=True, exist_ok=True)
    text = (resources.templates() / "incident.yaml").read_text(encoding="utf-8").replace("{{ name }}", name)
    target.write_text(text, encoding="utf-8")
    click.echo(f"wrote {_shown(target)}: fill in the data files and columns, "
               f"then `mlinvestigate run {_shown(target)}`")


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports"), show_default=True)
@click.option("--scenario", default="drift", show_default=True, help="Which synthetic incident to investigate.")
@click.option("--jobs", type=click.IntRange(1, 64), default=2, show_default=True)
def demo(out: Path, scenario: str, jobs: int) -> None:
    """Make a synthetic incident and run the whole investigation on it."""
    from . import scenarios

    out = _output_folder(out)
    data = out / "demo-incidents" / scenario
    if data.exists():
        shutil.rmtree(data)  # our own generated inputs, never a report
    try:
        spec = scenarios.make(scenario, data)
    except InvestigationError as exc:
        _fail(exc)
    click.echo(f"demo incident written to {_shown(data)}")
    sys.exit(_run(spec, out, None, jobs, trust_model=False))


@main.command()
@click.argument("spec", type=click.Path(path_type=Path))
@click.option("--window", default=None, help="Window length: 1d, 12h, 1w … (default: monitoring.window, 1d).")
@click.option("--since", default=None, help="Only compute windows starting on or after this date.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("monitoring"), show_default=True,
              help="Folder that keeps the history, alerts.json and the trend page (in <out>/<name>/).")
@click.option("--investigate", is_flag=True, help="Run the full investigation of each new alert's window.")
@click.option("--no-page", is_flag=True, help="Skip the trend page (history and alerts.json only; faster).")
@click.option("--trust-model", is_flag=True,
              help="Load the model file even if its sha256 does not match the spec (pickles run code).")
def monitor(spec: Path, window: str | None, since: str | None, out: Path, investigate: bool, no_page: bool,
            trust_model: bool) -> None:
    """Monitor SPEC's production window by window; exit 3 when an alert is new."""
    from .monitoring import monitor as run_monitor

    spec, out = _absolute(spec), _output_folder(out)
    try:
        result = run_monitor(spec, out=out, window=window, since=since, investigate=investigate,
                             trust_model=trust_model, page=not no_page, progress=_progress)
    except InvestigationError as exc:
        _fail(exc)
    if result.changed:
        click.echo("changed windows: " + "; ".join(f"{k} ({v})" for k, v in result.changed.items()))
    active = [a for a in result.alerts if a["active"]]
    for a in result.alerts:
        if a["new"] or a["active"]:
            flag = "NEW " if a["new"] else ""
            click.echo(f"{flag}{a['severity']}: {a['rule']} {a['subject']}: {a['summary']}")
    click.echo(f"alerts: {len(active)} active, {len(result.new)} new")
    fired = [t["trigger"] for t in result.triggers if t["status"] == "triggered"]
    if fired:
        click.echo("retraining triggered: " + ", ".join(fired))
    if result.page is not None:
        click.echo(f"open {_shown(result.page)}")
    sys.exit(result.exit_code)


@main.command()
@click.argument("spec", type=click.Path(path_type=Path))
@click.option("--dir", "folder", type=click.Path(path_type=Path), default=None,
              help="Workspace folder (default: a notebooks/ folder next to SPEC).")
@click.option("--port", type=int, default=None, help="Port for JupyterLab (default: JupyterLab's own).")
@click.option("--no-browser", is_flag=True, help="Do not open a browser.")
@click.option("--prepare-only", is_flag=True, help="Write the workspace and print the command; do not start.")
def lab(spec: Path, folder: Path | None, port: int | None, no_browser: bool, prepare_only: bool) -> None:
    """Open SPEC's incident in JupyterLab: every notebook copied with `spec` already set."""
    import subprocess

    from .lab import lab_command, prepare_workspace

    try:
        workspace, written = prepare_workspace(_absolute(spec), folder=_absolute(folder) if folder else None)
    except InvestigationError as exc:
        _fail(exc)
    click.echo(f"workspace {workspace}: {len(written)} notebook(s) written, existing ones kept")
    cmd = lab_command(workspace, port=port, no_browser=no_browser)
    if prepare_only:
        click.echo(" ".join(cmd))
        return
    sys.exit(subprocess.call(cmd))


@main.group()
def scenarios() -> None:
    """The project's synthetic incidents with known causes."""


@scenarios.command("list")
def scenarios_list() -> None:
    """List the scenarios and what each one plants."""
    from . import scenarios as sc

    described = sc.describe()
    width = max(map(len, described))
    for name, desc in described.items():
        click.echo(f"{name:{width}s}  {desc}")


@scenarios.command("make")
@click.argument("name")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--rows", type=int, default=None, help="Rows per side (default: the scenario's own).")
@click.option("--seed", type=int, default=0, show_default=True)
def scenarios_make(name: str, directory: Path, rows: int | None, seed: int) -> None:
    """Write scenario NAME's data and incident.yaml into DIRECTORY."""
    from . import scenarios as sc

    try:
        spec = sc.make(name, _absolute(directory), rows=rows, seed=seed)
    except InvestigationError as exc:
        _fail(exc)
    click.echo(f"wrote {spec}")


@scenarios.command("timeline")
@click.argument("variant")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--days", type=int, default=60, show_default=True)
@click.option("--rows-per-day", type=int, default=150, show_default=True)
def scenarios_timeline(variant: str, directory: Path, seed: int, days: int, rows_per_day: int) -> None:
    """Write a monitoring timeline (steady, drift-day30, labels-delayed, serving-empty-day40) into DIRECTORY."""
    from .scenarios import timeline

    try:
        spec = timeline.make(variant, _absolute(directory), seed=seed, days=days, rows_per_day=rows_per_day)
    except InvestigationError as exc:
        _fail(exc)
    click.echo(f"wrote {spec}")
    click.echo(f"monitor it: mlinvestigate monitor {spec}")


if __name__ == "__main__":
    main()
