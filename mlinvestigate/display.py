"""What notebooks display: the verdict first, then escaped evidence tables.

Every value that comes from the data is HTML-escaped here, so a category named ``<script>``
reaches the report as text.
"""

from __future__ import annotations

import html

import pandas as pd

from .findings import Finding

_BADGE = {"detected": "#c0392b", "clear": "#1e8449", "inconclusive": "#b9770e",
          "skipped": "#7f8c8d", "error": "#6c3483"}


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def verdict_html(finding: Finding) -> str:
    """The verdict box that opens every page: badge, severity, summary, culprits."""
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

    from .findings import Result

    if isinstance(obj, Result):
        obj = obj.finding
    if isinstance(obj, Finding):
        display(HTML(verdict_html(obj)))
    elif isinstance(obj, pd.DataFrame):
        display(HTML(table_html(obj, **kwargs)))
    else:
        display(HTML(f"<p>{esc(obj)}</p>"))


def show_html(markup: str) -> None:
    """Display markup built by the package (which escapes every data value it interpolates)."""
    from IPython.display import HTML, display

    display(HTML(markup))


def show_figure(fig) -> None:
    """Display a matplotlib figure (embedded as PNG in the report) and free it."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(fig)
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
