"""The checks: one module per investigation, each exposing ``run(incident) -> Result`` and ending
with its :class:`~mlinvestigate.contract.CheckContract`.

Triage checks come first (is the comparison fair, is the right model serving, is serving healthy,
where does it fail), then the root causes. Each check has a notebook of the same name in
``mlinvestigate/notebooks/`` that presents it. Other checks join through
:func:`mlinvestigate.contract.register`.
"""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType

from ..contract import check_options, contract, registered

TRIAGE = ("measurement", "deployment", "health", "segments")
ROOT_CAUSES = ("drift", "leakage", "skew", "labels", "prior_shift")
CHECK_IDS = TRIAGE + ROOT_CAUSES  # the built-in checks DESIGN.md names


PLUGINS_ENV = "MLINVESTIGATE_CHECKS"  # comma-separated modules that register further checks
_loaded = False


def load_builtin() -> None:
    """Import the check modules; each registers its contract.

    The built-in checks, then any module named by an ``mlinvestigate.checks`` entry point of an
    installed package or in ``$MLINVESTIGATE_CHECKS`` (the runner sets it for its kernels, so a
    check registered in the calling process is known to the summary page too).
    """
    global _loaded
    if _loaded:
        return
    import os
    from importlib.metadata import entry_points

    _loaded = True
    for cid in CHECK_IDS:
        importlib.import_module(f"{__name__}.{cid}")
    modules = [ep.value.split(":")[0] for ep in entry_points(group="mlinvestigate.checks")]
    modules += [m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(",") if m.strip()]
    for module in modules:
        importlib.import_module(module)


def ids() -> list[str]:
    """Every registered check id, in investigation order."""
    return list(registered())


def short_title(check_id: str) -> str:
    """The title without its question: "Segments"."""
    return contract(check_id).title


def get(check_id: str) -> ModuleType:
    """The module of check ``check_id`` (its ``run`` computes the finding)."""
    return importlib.import_module(contract(check_id).module)


def run(check_id: str, incident, **options):
    """Run one check; an option it does not take is an error that names it."""
    fn = get(check_id).run
    params = inspect.signature(fn).parameters
    accepted = tuple(n for n, p in params.items() if p.kind is p.KEYWORD_ONLY)
    check_options(check_id, options, accepted)
    return fn(incident, **options)
