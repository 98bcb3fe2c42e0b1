"""mlinvestigate: why does a model that scored well offline fail in production?

The public API is small: :func:`load_incident` reads an incident, :func:`investigate` runs the
batch investigation into a report folder, and ``mlinvestigate.checks.get(check_id).run`` runs one
check in a notebook or a script.
"""

__version__ = "0.1.0"

from .data import Incident, load_incident  # noqa: E402
from .errors import DataError, InvestigationError, ModelTrustError, SpecError  # noqa: E402
from .spec import load_spec  # noqa: E402


def investigate(spec, **kwargs):
    """Run an incident's investigations into a new report folder; see :func:`runner.investigate`."""
    from .runner import investigate as _investigate

    return _investigate(spec, **kwargs)


__all__ = ["__version__", "load_incident", "load_spec", "investigate", "Incident",
           "InvestigationError", "SpecError", "DataError", "ModelTrustError"]
