"""Imports a run's kernels make while the runner is still loading the data.

The runner starts its kernels before it reads the files and asks each to run
``import mlinvestigate.warm`` as it starts (``IPKernelApp.exec_lines``), so pandas, scikit-learn,
matplotlib and every check and plot module are imported during the load instead of in the first
page's first cell. Nothing is computed and nothing is added to the notebook's namespace.
"""

from __future__ import annotations

import matplotlib.pyplot  # noqa: F401
import sklearn.ensemble  # noqa: F401
import sklearn.linear_model  # noqa: F401
import sklearn.model_selection  # noqa: F401

from . import display, document, findings, plots, summary  # noqa: F401
from .checks import load_builtin
from .plots import deployment, drift, health, labels, leakage, measurement, prior_shift, segments, skew  # noqa: F401
from .plots import summary as summary_plots  # noqa: F401

load_builtin()
