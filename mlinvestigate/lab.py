"""``mlinvestigate lab``: an incident workspace in JupyterLab.

The workspace is a folder next to the incident holding a copy of every investigation notebook with
``spec`` already set (papermill's parameter injection, the same mechanism the batch runner uses),
so a newcomer opens JupyterLab and runs any notebook without writing code. Existing copies are
kept: they may hold the user's own cells.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from . import resources
from .spec import load_spec


def prepare_workspace(spec_path: str | Path, *, folder: str | Path | None = None) -> tuple[Path, list[Path]]:
    """Copy the notebooks with ``spec`` set into ``folder`` (default ``<spec dir>/notebooks``).

    Returns the folder and the notebooks written (already present ones are not touched).
    """
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    spec_path = Path(spec_path).resolve()
    spec = load_spec(spec_path)  # fail early, with the usual message, on a broken spec
    workspace = Path(folder) if folder else spec_path.parent / "notebooks"
    workspace.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted(resources.notebooks().glob("*.ipynb")):
        target = workspace / source.name
        if target.exists():
            continue
        nb = load_notebook_node(str(source))  # papermill's reader tags every cell, as it expects
        nb = parameterize_notebook(nb, {"spec": str(spec_path), "interactive": True})
        nb.metadata.setdefault("mlinvestigate", {})["incident"] = spec.name
        nbformat.write(nb, target)
        written.append(target)
    return workspace, written


def lab_command(workspace: Path, *, port: int | None = None, no_browser: bool = False) -> list[str]:
    """The JupyterLab command line that serves ``workspace`` on localhost."""
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={workspace}", "--ServerApp.ip=127.0.0.1"]
    if port:
        cmd.append(f"--port={port}")
    if no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI machines often run as root
    start = workspace / "summary.ipynb"
    if start.exists():
        cmd.append(str(start))
    return cmd
