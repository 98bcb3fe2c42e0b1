"""mlinvestigate: why does a model that scored well offline fail in production?

The public API is small: :func:`load_incident` reads an incident, :func:`investigate` runs the
batch investigation into a report folder, and ``mlinvestigate.checks.get(check_id).run`` runs one
check in a notebook or a script.

Names are imported when first used (pandas and the loaders cost a second): the command line starts
its kernels before it pays for them.
"""

__version__ = "0.1.0"

import importlib  # noqa: E402

from .errors import DataError, InvestigationError, ModelTrustError, SpecError  # noqa: E402

_LAZY = {"Incident": ".data", "load_incident": ".data", "load_spec": ".spec"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlinvestigate' has no attribute {name!r}")


def investigate(spec, **kwargs):
    """Run an incident's investigations into a new report folder; see :func:`runner.investigate`."""
    from .runner import investigate as _investigate

    return _investigate(spec, **kwargs)


__all__ = ["__version__", "load_incident", "load_spec", "investigate", "Incident",
           "InvestigationError", "SpecError", "DataError", "ModelTrustError"]
