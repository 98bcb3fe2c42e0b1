"""Exceptions raised by mlinvestigate.

One base class so callers can catch everything the kit raises on purpose; the subclasses say
whether the user's input or the investigation itself is at fault.
"""


class InvestigationError(Exception):
    """Base class of every error mlinvestigate raises on purpose."""


class SpecError(InvestigationError):
    """The incident spec is unusable: a missing or unknown key, a bad value, a missing file."""


class DataError(InvestigationError):
    """The data files cannot support an investigation: a missing column, an empty table, …"""


class ModelTrustError(InvestigationError):
    """A model file's checksum does not match the spec and the user did not pass a trust flag."""


class ModelLoadError(InvestigationError):
    """A trusted model file could not be loaded, or what it holds cannot predict."""
