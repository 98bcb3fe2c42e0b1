"""Loading the incident's model file, safely.

A pickle runs code when it is loaded, so the file is only unpickled when its sha256 matches
``model.sha256`` in the spec, or when the user passed ``--trust-model`` explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .data import Incident, sha256_of
from .errors import ModelLoadError, ModelTrustError


@dataclass
class ModelStatus:
    """What is known about the model file before and after loading it."""

    path: str | None
    expected_sha256: str | None
    actual_sha256: str | None
    trusted: bool
    reason: str

    @property
    def checksum_matches(self) -> bool | None:
        if self.expected_sha256 is None or self.actual_sha256 is None:
            return None
        return self.expected_sha256 == self.actual_sha256


def model_status(incident: Incident) -> ModelStatus:
    """Whether the model file may be loaded, and why (never unpickles anything)."""
    ref = incident.spec.model
    if ref.path is None:
        return ModelStatus(None, ref.sha256, None, False, "no model.path in the spec")
    actual = sha256_of(ref.path)
    if ref.sha256 is not None and actual == ref.sha256:
        return ModelStatus(str(ref.path), ref.sha256, actual, True, "checksum matches model.sha256")
    if incident.trust_model:
        why = ("checksum does not match model.sha256" if ref.sha256 else "no model.sha256 in the spec")
        return ModelStatus(str(ref.path), ref.sha256, actual, True, f"{why}; loaded because --trust-model was given")
    if ref.sha256 is None:
        return ModelStatus(str(ref.path), None, actual, False,
                           "no model.sha256 in the spec: add it (sha256sum of the file) or pass --trust-model")
    return ModelStatus(str(ref.path), ref.sha256, actual, False,
                       f"checksum {actual[:12]}… does not match model.sha256 {ref.sha256[:12]}…; "
                       "the file was not loaded (pass --trust-model to load it anyway)")


def load_model(incident: Incident) -> Any:
    """The estimator from ``model.path``.

    Raises
    ------
    ModelTrustError
        When the checksum does not match and the user did not pass ``--trust-model``.
    ModelLoadError
        When the file cannot be unpickled (a missing library, a truncated file, another format)
        or holds something without a ``predict`` method: no check may then claim to have scored rows.
    """
    status = model_status(incident)
    if not status.trusted:
        raise ModelTrustError(f"model file {status.path!r} not loaded: {status.reason}")
    import joblib

    try:
        model = joblib.load(status.path)
    except Exception as exc:  # noqa: BLE001 - unpickling can raise anything the pickled code raises
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelLoadError(f"model file {status.path!r} could not be loaded: {type(exc).__name__}"
                             + (f": {detail}" if detail else "")) from None
    if not callable(getattr(model, "predict", None)):
        raise ModelLoadError(f"model file {status.path!r} holds a {type(model).__name__}, not an estimator "
                             "with a predict method; save the fitted model or pipeline itself.")
    return model
