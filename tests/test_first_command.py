"""The first thing every user does: install, then `mlinvestigate demo` or `run` with relative paths.

Runs the real command line in a subprocess from a working directory that is not the checkout,
with relative spec and output paths, and from a wheel installed into a fresh virtual environment.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from mlinvestigate import resources, scenarios
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent


def _report(folder: Path) -> dict:
    return json.loads((folder / "findings.json").read_text())


def _no_errors(doc: dict) -> None:
    failed = {c: f["summary"] for c, f in doc["checks"].items() if f["verdict"] == "error"}
    assert not failed, failed
    assert not any("summary page failed" in w for w in doc["warnings"]), doc["warnings"]
    assert "diagnosis" in doc, "the summary page did not record its diagnosis"


@pytest.mark.e2e
def test_run_with_relative_paths_from_another_folder(tmp_path):
    """`run incident/incident.yaml --out ../elsewhere` from a sub-folder: every check completes and
    the report lands where the user asked, not next to the spec."""
    work = tmp_path / "work"
    scenarios.make("drift", work / "incident", rows=1500)
    (tmp_path / "shell").mkdir()
    proc = run_cli("run", "../work/incident/incident.yaml", "--out", "../elsewhere", "--checks",
                   "drift,health,prior_shift", cwd=tmp_path / "shell")
    assert proc.returncode == 0, proc.stderr
    folders = [p for p in (tmp_path / "elsewhere").iterdir() if p.is_dir()]
    assert len(folders) == 1 and (folders[0] / "index.html").exists()
    doc = _report(folders[0])
    _no_errors(doc)
    assert doc["checks"]["drift"]["verdict"] == "detected"
    assert not (work / "incident" / "elsewhere").exists() and not (work / "incident" / "reports").exists()
    assert "open ../elsewhere/" not in proc.stdout and "index.html" in proc.stdout.splitlines()[-1]


def test_wheel_carries_every_notebook_and_template(tmp_path):
    """A wheel built from the checkout holds every notebook and template the package reads at run time."""
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    wheel = next(tmp_path.glob("mlinvestigate-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, prefix in ((resources.notebooks(), "mlinvestigate/notebooks/"),
                           (resources.templates(), "mlinvestigate/templates/")):
        shipped = {prefix + p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
                   and "__pycache__" not in p.parts}
        assert shipped and shipped <= names, shipped - names


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    """A fresh virtual environment with only the wheel installed; its dependencies are read from
    this test environment's site-packages (no network), the checkout is nowhere on its path."""
    tmp = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(tmp / "dist")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    purelib = Path(subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    # a plain path entry: the editable install's finder in the test environment is not loaded
    deps = [p for p in dict.fromkeys([*site.getsitepackages(), sysconfig.get_paths()["purelib"]])]
    (purelib / "test-dependencies.pth").write_text("\n".join(deps) + "\n")
    wheel = next((tmp / "dist").glob("mlinvestigate-*.whl"))
    proc = subprocess.run([py, "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return venv


def _venv_cli(venv: Path, *args, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    # the dependencies' data files (nbconvert's base templates, the kernel spec) stay where this
    # environment installed them, as they would sit in the venv after a normal install
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
           "JUPYTER_PATH": str(Path(sys.prefix) / "share" / "jupyter")}
    env.pop("PYTHONPATH", None)
    return subprocess.run([str(venv / "bin" / "mlinvestigate"), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.e2e
def test_wheel_install_runs_the_demo_from_any_folder(wheel_venv, tmp_path):
    """`mlinvestigate demo` from a wheel, in a folder outside the checkout: exit 0, no check fails,
    the verdict and the page to open are printed."""
    py = wheel_venv / "bin" / "python"
    where = subprocess.run([py, "-c", "import mlinvestigate; print(mlinvestigate.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(wheel_venv), where
    proc = _venv_cli(wheel_venv, "demo", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    folder = next(p for p in (tmp_path / "reports").iterdir() if p.is_dir() and p.name != "demo-incidents")
    _no_errors(_report(folder))
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == f"open reports/{folder.name}/index.html"
    assert any(line.startswith("Most likely cause: data drift") for line in lines), proc.stdout


def test_wheel_install_serves_every_command(wheel_venv, tmp_path):
    """new, scenarios, lab (workspace only) and export work from a wheel in an unrelated folder."""
    proc = _venv_cli(wheel_venv, "new", "card-gap", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "name: card-gap" in (tmp_path / "card-gap" / "incident.yaml").read_text()
    proc = _venv_cli(wheel_venv, "scenarios", "list", cwd=tmp_path)
    assert proc.returncode == 0 and "control" in proc.stdout, proc.stderr
    proc = _venv_cli(wheel_venv, "scenarios", "make", "control", "inc", "--rows", "500", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = _venv_cli(wheel_venv, "lab", "inc/incident.yaml", "--prepare-only", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert {p.stem for p in (tmp_path / "inc" / "notebooks").glob("*.ipynb")} >= {"drift", "summary"}
    report = tmp_path / "r"
    report.mkdir()
    (report / "index.html").write_text("<html><head><title>t</title></head><body><main>x</main></body></html>")
    proc = _venv_cli(wheel_venv, "export", "r", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (report / "r.html").exists()
