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


def _shared_root(tmp_path_factory) -> Path:
    """A folder every test process of this session sees: under pytest-xdist each worker has its own
    base temporary folder, and their common parent belongs to this session alone."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared"
    root.mkdir(exist_ok=True)
    return root


def _once(root: Path, key: str, make):
    """``make(folder)`` run once per session across every test process; later callers (in this
    process or another) wait for it and get the same folder."""
    from filelock import FileLock

    folder, done = root / key, root / f"{key}.done"
    with FileLock(str(root / f"{key}.lock")):
        if not done.exists():
            if folder.exists():  # a process that died half-way left it
                import shutil

                shutil.rmtree(folder)
            folder.mkdir()
            result = make(folder)
            done.write_text(str(result))
        return Path(done.read_text())


@pytest.fixture(scope="session")
def scenario(tmp_path_factory):
    """``scenario(name, rows=None, seed=0) -> Path`` of its incident.yaml (made once per session,
    shared by every test process).

    ``rows`` defaults to ``E2E_ROWS``, or fewer for a scenario whose catalog entry says so
    (``scenarios.E2E_ROWS``: a wide table's cost is in its columns).
    """
    from mlinvestigate import scenarios

    root = _shared_root(tmp_path_factory)

    def make(name: str, *, rows: int | None = None, seed: int = 0) -> Path:
        rows = scenarios.e2e_rows(name, E2E_ROWS) if rows is None else rows
        return _once(root, f"scenario-{name}-{rows}-{seed}",
                     lambda folder: scenarios.make(name, folder, rows=rows, seed=seed))

    return make


@pytest.fixture(scope="session")
def investigated(scenario, tmp_path_factory):
    """``investigated(name) -> findings.json`` of a real CLI run with every check.

    Each scenario is investigated once per session, whichever test (in whichever test process)
    asks first; ``checks`` is accepted for readability at the call site but every check runs, so
    the run is shared.
    """
    root = _shared_root(tmp_path_factory)
    runs: dict[tuple, dict] = {}

    def run(spec: Path, out: Path) -> Path:
        # one kernel: the test processes already keep every core busy, and a second kernel would
        # cost its start-up and imports again for every scenario
        proc = run_cli("run", spec, "--out", out, "--jobs", "1")
        assert proc.returncode in (0, 1), proc.stderr
        folder = next(p for p in out.iterdir() if p.is_dir())
        (out / "exit-code").write_text(str(proc.returncode))  # beside the report, not in it
        return folder

    def get(name: str, checks: tuple[str, ...] | None = None, **kw) -> dict:
        key = (name, tuple(sorted(kw.items())))
        if key not in runs:
            spec = scenario(name, **kw)
            label = "-".join([name] + [f"{k}{v}" for k, v in key[1]])
            folder = _once(root, f"reports-{label}", lambda out: run(spec, out))
            doc = json.loads((folder / "findings.json").read_text())
            doc["_folder"] = str(folder)
            doc["_exit"] = int((folder.parent / "exit-code").read_text())
            runs[key] = doc
        return runs[key]

    return get


# Under pytest-xdist (``-n auto --dist loadgroup``) tests spread over the cores one by one, except
# these: modules whose module-scoped fixture is costly (a wheel in a fresh venv, monitoring runs,
# findings of real checks) stay in one process so it is built once, and every Spark test shares one
# local Spark session.
GROUPED_MODULES = {"test_first_command", "test_monitor", "test_summary", "test_runner", "test_browser",
                   "test_scenarios", "test_drift"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups from the marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rpartition(".")[2] if getattr(item, "module", None) else ""
        if "spark" in item.name:
            item.add_marker(pytest.mark.xdist_group("spark"))
        elif module in GROUPED_MODULES:
            item.add_marker(pytest.mark.xdist_group(module))
