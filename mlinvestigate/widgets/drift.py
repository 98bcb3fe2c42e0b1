"""Feature explorer for the drift page: pick a feature, see its distributions and statistics."""

from __future__ import annotations

import ipywidgets as widgets
import pandas as pd

from ..display import figure_png, table_html


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    try:
        return figure_png(fig, dpi=90)
    finally:
        plt.close(fig)


class FeatureExplorer(widgets.VBox):
    """A feature picker (``picker``, a Dropdown) above an ``output`` area that shows the chosen
    column's statistics, its PSI bins and the reference-vs-production plot.

    The output is rebuilt from the check's :class:`Result` on every change, so setting
    ``picker.value`` from Python (as the tests do) redraws it exactly as a click does.
    """

    def __init__(self, result):
        self.result = result
        features = list(result.to_df("features")["feature"])
        outputs = list(result.to_df("outputs")["output"]) if not result.to_df("outputs").empty else []
        options = [(f, f) for f in features] + [(f"{o} (model output)", o) for o in outputs]
        self.picker = widgets.Dropdown(options=options, value=options[0][1] if options else None,
                                       description="Feature", layout=widgets.Layout(width="28em"))
        self.output = widgets.Output()
        self.picker.observe(lambda change: self.draw(change["new"]), names="value")
        super().__init__([self.picker, self.output])
        if options:
            self.draw(self.picker.value)

    def draw(self, name: str) -> None:
        """Replace the output with ``name``'s statistics table, PSI bins and distribution plot."""
        from IPython.display import HTML, Image

        from ..plots.drift import distribution

        row = _stats_row(self.result, name)
        stats = {**self.result.data["stats"], **self.result.data.get("output_stats", {})}
        bins = stats[name].bins.rename(columns={"bin": "bin or category", "psi_term": "PSI contribution"})
        self.output.outputs = ()
        self.output.append_display_data(HTML(table_html(row)))
        self.output.append_display_data(HTML(table_html(bins, max_rows=40)))
        self.output.append_display_data(Image(data=_png(distribution(self.result, name)), format="png"))


def _stats_row(result, name: str) -> pd.DataFrame:
    for table, key in ((result.to_df("features"), "feature"), (result.to_df("outputs"), "output")):
        if not table.empty and (table[key] == name).any():
            return table[table[key] == name]
    raise KeyError(f"no drift statistics for {name!r}")


def feature_explorer(source) -> FeatureExplorer:
    """The explorer for a drift :class:`Result`, or for an incident (the check is run first,
    without the domain classifier, which the explorer does not show)."""
    from ..checks import drift
    from ..findings import Result

    result = source if isinstance(source, Result) else drift.run(source, domain=False)
    return FeatureExplorer(result)
