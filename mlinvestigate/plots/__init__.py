"""Plot helpers: numbers in, matplotlib figures out.

Every figure has a title and labelled axes with units, and reference vs production always use the
same two colours (:data:`REFERENCE`, :data:`PRODUCTION`). matplotlib is imported inside the
functions so that importing the package stays light.
"""

from __future__ import annotations

REFERENCE = "#1f77b4"   # blue: reference (offline, training/validation)
PRODUCTION = "#d62728"  # red: production (live traffic)
NEUTRAL = "#7f7f7f"
COLORS = {"reference": REFERENCE, "production": PRODUCTION}


def plain(value, limit: int = 40) -> str:
    """A data value as figure text: ``$`` would start matplotlib math, long values are cut."""
    text = str(value)
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def figure(title: str, *, xlabel: str, ylabel: str, size=(7.5, 3.8), ax=None):
    """A new figure and axes with the title and axis labels set (or label an existing ``ax``)."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=size, layout="constrained")
    else:
        fig = ax.figure
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig, ax
