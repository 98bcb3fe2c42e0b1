"""What notebooks display: the verdict first, then escaped evidence tables.

Every value that comes from the data is HTML-escaped here, so a category named ``<script>``
reaches the report as text.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

_BADGE = {"detected": "#c0392b", "clear": "#1e8449", "inconclusive": "#b9770e",
          "skipped": "#7f8c8d", "error": "#6c3483"}


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def scalar(value):
    """A numpy or pandas scalar as the plain Python value it holds (anything else unchanged)."""
    if isinstance(value, np.generic):
        return value.item()
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def text(value) -> str:
    """A value as a reader should see it: ``0`` not ``np.int64(0)``, ``2.5`` not ``np.float64(2.5)``,
    a whole float without ``.0``, missing as ``missing``.

    Examples
    --------
    >>> text(np.int64(3)), text(np.float64(2.0)), text(np.float64(0.125)), text(None), text("eu")
    ('3', '2', '0.125', 'missing', 'eu')
    """
    value = scalar(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return number(value)
    return str(value)


def number(value, digits: int = 3) -> str:
    """A count or measurement for people: thousands separated, ``digits`` significant digits for
    fractions, ``∞`` for infinity.

    Examples
    --------
    >>> number(np.int64(1234567)), number(3.0), number(0.012345), number(float("-inf"))
    ('1,234,567', '3', '0.0123', '−∞')
    """
    value = scalar(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    if isinstance(value, (bool, int)):
        return f"{int(value):,}"
    v = float(value)
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v.is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def percent(share, digits: int = 1) -> str:
    """A share (0–1) as a percentage: ``0.1234`` → ``12.3%``; a share too small to show at
    ``digits`` decimals reads ``<0.1%`` rather than ``0.0%``.

    Examples
    --------
    >>> percent(0.1234), percent(np.float64(1.0)), percent(0.00002), percent(0.0)
    ('12.3%', '100%', '<0.1%', '0%')
    """
    share = scalar(share)
    if share is None or not math.isfinite(float(share)):
        return "missing"
    p = 100 * float(share)
    if p == 0 or p == 100:
        return f"{p:.0f}%"
    smallest = 10.0 ** -digits
    if 0 < p < smallest:
        return f"<{smallest:g}%"
    return f"{p:.{digits}f}%"


def listing(values, limit: int = 5) -> str:
    """Values for a sentence: ``'a', 'b' and 3 more`` (quoted texts, plain numbers)."""
    values = list(values)
    shown = [repr(v) if isinstance(v, str) else text(v) for v in (scalar(v) for v in values[:limit])]
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return ", ".join(shown) + more


def shown_path(path, base) -> str:
    """A file's path as a shared page shows it: relative to ``base`` (the spec's folder, where the
    spec names it from) when it lies below it, else its name; never the machine's folders."""
    from pathlib import Path

    if path is None:
        return ""
    path = Path(path)
    try:
        return path.relative_to(Path(base)).as_posix()
    except ValueError:
        return path.name


def verdict_html(finding) -> str:
    """The verdict box that opens every page: badge, severity, summary, culprits (of a Finding)."""
    colour = _BADGE[finding.verdict]
    culprits = ""
    if finding.culprits:
        items = ", ".join(f"<code>{esc(c)}</code>" for c in finding.culprits[:10])
        more = f" and {len(finding.culprits) - 10} more" if len(finding.culprits) > 10 else ""
        culprits = f"<p><b>Culprits</b> (strongest first): {items}{more}</p>"
    return (f'<div class="mli-verdict" style="border-left:6px solid {colour};padding:0.6em 1em;'
            f'background:#fafafa;margin:0.5em 0">'
            f'<p style="margin:0"><span style="background:{colour};color:white;padding:2px 8px;'
            f'border-radius:3px;font-weight:bold;text-transform:uppercase">{esc(finding.verdict)}</span> '
            f'<span style="color:#555">severity: {esc(finding.severity)} · check: '
            f'<code>{esc(finding.check)}</code></span></p>'
            f'<p style="font-size:1.15em;margin:0.5em 0 0.2em 0">{esc(finding.summary)}</p>{culprits}</div>')


def table_html(df: pd.DataFrame, *, max_rows: int = 30, digits: int = 3) -> str:
    """An escaped HTML table of the first ``max_rows`` rows, floats rounded."""
    shown = df.head(max_rows)
    out = shown.to_html(index=False, escape=True, na_rep="–", border=0, classes="mli-table",
                        float_format=lambda v: f"{v:.{digits}g}" if abs(v) < 1e-3 and v != 0 else f"{v:.{digits}f}")
    if len(df) > max_rows:
        out += f"<p><i>{len(df) - max_rows} more rows not shown (all of them are in the .ipynb).</i></p>"
    return out


def show(obj, **kwargs) -> None:
    """Display a Finding, a Result or a DataFrame as escaped HTML in the notebook."""
    from IPython.display import HTML, display

    obj = getattr(obj, "finding", obj)  # a Result shows its finding
    if all(hasattr(obj, a) for a in ("verdict", "severity", "summary", "culprits")):
        display(HTML(verdict_html(obj)))
    elif isinstance(obj, pd.DataFrame):
        display(HTML(table_html(obj, **kwargs)))
    else:
        display(HTML(f"<p>{esc(obj)}</p>"))


def show_html(markup: str) -> None:
    """Display markup built by the package (which escapes every data value it interpolates)."""
    from IPython.display import HTML, display

    display(HTML(markup))


FIGURE_DPI = 100


def figure_png(fig, dpi: int = FIGURE_DPI) -> bytes:
    """A figure as PNG bytes, drawn once.

    Every figure of the kit lays itself out (``layout="constrained"``). ``savefig`` draws a figure
    that has a layout engine twice (once without rendering, to lay it out, then for real), and the
    inline backend's ``bbox_inches="tight"`` would measure it once more: drawing the canvas once
    (the layout runs inside that draw) and encoding its pixels gives the same image for less than
    half the cost of the figures, which are most of a small run's time. Minor ticks of logarithmic
    axes (eight per decade, each a tick object with its own line and label) are dropped: they cost
    about a third of such a figure and the labelled decades carry the reading.
    """
    import io

    from matplotlib.image import imsave
    from matplotlib.ticker import NullLocator

    if fig.get_layout_engine() is None:
        fig.set_layout_engine("constrained")
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() in ("log", "symlog"):
                axis.set_minor_locator(NullLocator())
    fig.set_dpi(dpi)
    fig.patch.set_facecolor("white")
    fig.canvas.draw()
    buffer = io.BytesIO()
    imsave(buffer, fig.canvas.buffer_rgba(), format="png", dpi=dpi)
    return buffer.getvalue()


def show_figure(fig) -> None:
    """Display a matplotlib figure (embedded as PNG in the report) and free it."""
    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    try:
        display(Image(data=figure_png(fig), format="png"))
    finally:
        plt.close(fig)


def note(text: str) -> None:
    """A sentence for the reader (escaped), e.g. a statement that a statistic was sampled."""
    from IPython.display import HTML, display

    display(HTML(f"<p><i>{esc(text)}</i></p>"))


def show_warnings(incident) -> None:
    """Data warnings from loading, as a list a reader cannot miss."""
    from IPython.display import HTML, display

    if incident.warnings:
        items = "".join(f"<li>{esc(w)}</li>" for w in incident.warnings)
        display(HTML(f'<div class="mli-warnings"><b>Data warnings</b><ul>{items}</ul></div>'))
