"""Shared fixtures: scenario incidents generated once per session, and the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

E2E_ROWS = int(os.environ.get("MLINVESTIGATE_TEST_ROWS", "6000"))


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``mlinvestigate ARGS`` as a user would, in a separate process."""
    return subprocess.run([sys.executable, "-m", "mlinvestigate", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def scenario(tmp_path_factory):
    """``scenario(name, rows=None, seed=0) -> Path`` of its incident.yaml (made once per session).

    ``rows`` defaults to ``E2E_ROWS``, or fewer for a scenario whose catalog entry says so
    (``scenarios.E2E_ROWS``: a wide table's cost is in its columns).
    """
    from mlinvestigate import scenarios

    made: dict[tuple, Path] = {}

    def make(name: str, *, rows: int | None = None, seed: int = 0) -> Path:
        rows = scenarios.e2e_rows(name, E2E_ROWS) if rows is None else rows
        key = (name, rows, seed)
        if key not in made:
            folder = tmp_path_factory.mktemp(f"scenario-{name}")
            made[key] = scenarios.make(name, folder, rows=rows, seed=seed)
        return made[key]

    return make


@pytest.fixture(scope="session")
def investigated(scenario, tmp_path_factory):
    """``investigated(name) -> findings.json`` of a real CLI run with every check.

    Each scenario is investigated once per session, whichever test asks first; ``checks`` is
    accepted for readability at the call site but every check runs, so the run is shared.
    """
    runs: dict[tuple, dict] = {}

    def get(name: str, checks: tuple[str, ...] | None = None, **kw) -> dict:
        key = (name, tuple(sorted(kw.items())))
        if key not in runs:
            spec = scenario(name, **kw)
            out = tmp_path_factory.mktemp(f"reports-{name}")
            proc = run_cli("run", spec, "--out", out)
            assert proc.returncode in (0, 1), proc.stderr
            folder = next(p for p in out.iterdir() if p.is_dir())
            doc = json.loads((folder / "findings.json").read_text())
            doc["_folder"] = str(folder)
            doc["_exit"] = proc.returncode
            runs[key] = doc
        return runs[key]

    return get
