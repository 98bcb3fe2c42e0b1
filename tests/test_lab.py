"""`mlinvestigate lab`: a workspace of notebooks with `spec` set, and JupyterLab serving it."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request

import nbformat

from mlinvestigate.lab import lab_command, prepare_workspace
from mlinvestigate.resources import notebooks as _notebooks
from tests.conftest import run_cli
from tests.helpers import tiny_incident

NOTEBOOKS = _notebooks()


def test_workspace_has_every_notebook_with_spec_set(tmp_path):
    spec = tiny_incident(tmp_path / "inc")
    workspace, written = prepare_workspace(spec)
    assert workspace == tmp_path / "inc" / "notebooks"
    assert {p.name for p in written} == {p.name for p in NOTEBOOKS.glob("*.ipynb")}
    nb = nbformat.read(workspace / "summary.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and str(spec.resolve()) in injected[0].source


def test_existing_workspace_notebooks_are_kept(tmp_path):
    """A second `lab` never overwrites a notebook the user may have edited."""
    spec = tiny_incident(tmp_path / "inc")
    workspace, _ = prepare_workspace(spec)
    (workspace / "summary.ipynb").write_text("{}")
    _, written = prepare_workspace(spec)
    assert written == [] and (workspace / "summary.ipynb").read_text() == "{}"


def test_cli_prepare_only_and_bad_spec(tmp_path):
    spec = tiny_incident(tmp_path / "inc")
    proc = run_cli("lab", spec, "--prepare-only", "--no-browser", "--port", "8899")
    assert proc.returncode == 0, proc.stderr
    assert "--no-browser" in proc.stdout and "--port=8899" in proc.stdout
    proc = run_cli("lab", tmp_path / "missing.yaml", "--prepare-only")
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jupyterlab_serves_the_workspace(tmp_path):
    """The command really starts JupyterLab on localhost with the workspace as its root."""
    spec = tiny_incident(tmp_path / "inc")
    workspace, _ = prepare_workspace(spec)
    port = _free_port()
    cmd = lab_command(workspace, port=port, no_browser=True)[:-1] + ["--IdentityProvider.token=t"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents?token=t", timeout=5) as r:
                    listing = json.load(r)
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(1)
        assert "summary.ipynb" in {item["name"] for item in listing["content"]}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
