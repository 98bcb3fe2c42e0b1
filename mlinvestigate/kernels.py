"""The run's IPython kernels, started before anything heavy is imported.

A kernel takes seconds to start and import pandas, scikit-learn, matplotlib and the checks
(:mod:`mlinvestigate.warm`, run as it starts). The command line starts them first, so that they
import while its own process imports the runner, reads the spec and loads the data. This module
imports nothing heavy itself (``jupyter_client`` only when a kernel starts).
"""

from __future__ import annotations

import os

KERNEL_ARGS = ["--IPKernelApp.log_level=CRITICAL",  # the kernel's loopback notice is noise on a terminal
               # imports while the runner loads the data, not in the first page (mlinvestigate.warm)
               "--IPKernelApp.exec_lines=['import mlinvestigate.warm']"]


class Kernel:
    """One IPython kernel that executes several notebooks in turn.

    A run executes ten notebooks, so each worker keeps its kernel (papermill accepts a running
    kernel manager) and the incident is read from the run's cache once per kernel.
    """

    def __init__(self, cwd: str, threads: int, env: dict[str, str] | None = None):
        from jupyter_client.manager import KernelManager

        env = {**os.environ, **(env or {}), "OMP_NUM_THREADS": str(threads)}
        # OpenMP threads (gradient boosting) spin-wait for each other when there are more threads
        # than free cores, which made fits 20x slower with two kernels on two cores.
        self.cwd = cwd
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=cwd, env=env, extra_arguments=KERNEL_ARGS)

    def execute(self, source: str, target: str, parameters: dict) -> None:
        import papermill as pm

        if not self.km.is_alive():  # a notebook that killed its kernel must not fail the next one
            self.km.restart_kernel(now=True)
        pm.execute_notebook(source, target, kernel_name="python3", parameters=parameters,
                            progress_bar=False, km=self.km,
                            # the notebook is written once at the end, not after every cell
                            request_save_on_cell_execute=False, autosave_cell_every=0)

    def close(self) -> None:
        self.km.shutdown_kernel(now=True)


def count(jobs: int, checks: list[str] | None = None) -> int:
    """Kernels a run uses: ``jobs``, but no more than the checks asked for."""
    return max(1, min(jobs, len(checks))) if checks else max(1, jobs)


def threads_per_kernel(jobs: int) -> int:
    """OpenMP threads each of ``jobs`` kernels gets: the cores shared out, at least one."""
    return max(1, (os.cpu_count() or 1) // max(jobs, 1))


def plugin_env() -> dict[str, str]:
    """Kernels import the modules of checks registered in this process that are not built in."""
    from .checks import CHECK_IDS, PLUGINS_ENV
    from .contract import registered_so_far

    # checks registered so far: the built-in modules need not be imported (seconds) to know it
    modules = [c.module for cid, c in registered_so_far().items() if cid not in CHECK_IDS]
    known = [m for m in os.environ.get(PLUGINS_ENV, "").split(",") if m]
    return {PLUGINS_ENV: ",".join(dict.fromkeys(known + modules))} if modules or known else {}


def start(jobs: int, cwd, env: dict[str, str] | None = None) -> list[Kernel]:
    """``jobs`` kernels started now in ``cwd`` (each imports for seconds in its own process), with
    ``env`` added to this process's environment (default: :func:`plugin_env`)."""
    env = plugin_env() if env is None else env
    kernels: list[Kernel] = []
    try:
        for _ in range(max(1, jobs)):
            kernels.append(Kernel(str(cwd), threads_per_kernel(jobs), env))
    except Exception:
        for k in kernels:
            k.close()
        raise
    return kernels
