"""Monitoring: the same statistics as the investigations, every day, with alerts.

:func:`monitor` (``mlinvestigate monitor SPEC``) cuts production into time windows, computes the
four layers of model monitoring per window against the reference (infrastructure, model
behaviour, performance, business), keeps them in a history that survives re-runs, raises alerts
with persistence, evaluates retraining triggers and renders a trend page. :func:`load` reads a
monitoring folder back for the trend page and notebooks.
"""

from __future__ import annotations

from .core import NEW_ALERT_EXIT, MonitorResult, default_out, monitor
from .state import State, load

__all__ = ["monitor", "default_out", "MonitorResult", "NEW_ALERT_EXIT", "load", "State"]
