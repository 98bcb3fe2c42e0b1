"""Segment drill-down: pick a segment column and value, see its metric over time against the rest
of production, and break it down by a second column."""

from __future__ import annotations

import numpy as np

from ..checks.segments import WEEK, drill_down, metric_over_time
from ..display import esc, figure_png, table_html

NONE = "(none)"


class SegmentExplorer:
    """Three dropdowns (``column``, ``value``, ``drill``), a one-line ``readout`` and an ``output``
    holding the figure and the drill-down table.

    Built from an incident and the segments check's result; drive it from Python with
    ``explorer.column.value = "device"`` or ``explorer.value.value = "BR"``, then read
    ``explorer.readout.value`` and ``explorer.output.outputs``.
    """

    def __init__(self, incident, result):
        import ipywidgets as w

        self.incident, self.result = incident, result
        self.table = result.to_df("segments")
        codes = result.data.get("codes", {})
        self.columns = [c for c in codes if c != WEEK]
        self._drill_options = list(codes)
        self._quiet = False
        self.column = w.Dropdown(options=self.columns, description="segment")
        self.value = w.Dropdown(options=[], description="value")
        self.drill = w.Dropdown(options=[NONE], description="drill into")
        self.readout = w.HTML()
        self.output = w.Output()
        self.widget = w.VBox([w.HBox([self.column, self.value, self.drill]), self.readout, self.output])
        self.column.observe(lambda change: self._column_changed(), names="value")
        self.value.observe(lambda change: self.update(), names="value")
        self.drill.observe(lambda change: self.update(), names="value")
        if self.columns:
            self._column_changed()
        else:
            self.readout.value = "<p>No segment columns to explore (columns.segments is empty).</p>"

    def values(self, column: str) -> list[str]:
        """The column's values, flagged first, then worst gap to the rest first."""
        t = self.table[self.table["column"] == column]
        t = t.sort_values(["flagged", "gap"], ascending=[False, False], na_position="last")
        return [str(v) for v in t["value"]]

    def _column_changed(self) -> None:
        self._quiet = True
        try:
            column = self.column.value
            self.value.options = self.values(column)
            self.value.value = self.value.options[0] if self.value.options else None
            self.drill.options = [NONE] + [c for c in self._drill_options if c != column]
            self.drill.value = NONE
        finally:
            self._quiet = False
        self.update()

    def update(self) -> None:
        """Redraw the readout, the figure and the drill-down table for the current selection."""
        if self._quiet or self.value.value is None:
            return
        from IPython.display import HTML, Image

        column, value, other = self.column.value, self.value.value, self.drill.value
        row = self.table[(self.table["column"] == column) & (self.table["value"] == value)].iloc[0]
        metric = self.result.data["metric"]
        fmt = "{:.3f}" if self.result.data["higher_is_better"] else "{:.4g}"
        ref = fmt.format(row["reference_metric"]) if np.isfinite(row["reference_metric"]) else "–"
        self.readout.value = (f"<p><b>{esc(column)}={esc(value)}</b>: {esc(metric)} "
                              f"{esc(fmt.format(row['metric']))} in production on {int(row['labelled_rows']):,} "
                              f"labelled rows (rest of production {esc(fmt.format(row['rest_metric']))}, this "
                              f"segment in reference {esc(ref)}); {row['production_share']:.1%} of production "
                              f"traffic{' — flagged' if row['flagged'] else ''}.</p>")
        frame = metric_over_time(self.incident, self.result, column, value)
        outputs = [Image(data=_png(frame, self.result, column, value), format="png")]
        if other != NONE:
            drilled = drill_down(self.incident, self.result, column, value, other)
            outputs.append(HTML(f"<p>{esc(column)}={esc(value)} broken down by {esc(other)}:</p>"
                                + table_html(drilled)))
        self.output.outputs = ()
        for item in outputs:
            self.output.append_display_data(item)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def _png(frame, result, column: str, value: str) -> bytes:
    import matplotlib.pyplot as plt

    from ..plots.segments import metric_over_time as draw

    fig = draw(frame, result, column, value)
    try:
        return figure_png(fig, dpi=90)
    finally:
        plt.close(fig)
