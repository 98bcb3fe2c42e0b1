"""Review-routing slider: the share of traffic sent to human review vs accuracy on the rest."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..display import esc


class RoutingExplorer:
    """A slider over the routing curve; ``.readout`` (an HTML widget) states the trade-off.

    Drive it from Python with ``explorer.slider.value = 0.2``; ``explorer.readout.value`` and
    ``explorer.figure_output`` update.
    """

    def __init__(self, curve: pd.DataFrame, *, target: float | None = None):
        import ipywidgets as w

        self.curve = curve
        self.target = target
        self.slider = w.FloatSlider(value=0.2, min=0.0, max=0.95, step=0.05, readout_format=".0%",
                                    description="to review", continuous_update=False)
        self.readout = w.HTML()
        self.figure_output = w.Output()
        self.slider.observe(lambda change: self.update(), names="value")
        self.widget = w.VBox([self.slider, self.readout, self.figure_output])
        self.update()

    def point(self, routed: float) -> pd.Series:
        i = int(np.argmin(np.abs(self.curve["routed"].to_numpy() - routed)))
        return self.curve.iloc[i]

    def update(self) -> None:
        if not len(self.curve):
            self.readout.value = "<p>No score to route on: the incident has no score column.</p>"
            return
        p = self.point(self.slider.value)
        target = "" if self.target is None else f" (offline: {self.target:.1%})"
        self.readout.value = (f"<p>Route <b>{p['routed']:.0%}</b> of traffic (confidence below "
                              f"{esc(f'{p.confidence_cutoff:.3f}')}) to human review: the model keeps "
                              f"<b>{p['accuracy']:.1%}</b> accuracy on the other {p['coverage']:.0%}{target}.</p>")
        from IPython.display import display

        from ..plots.summary import routing_curve

        self.figure_output.clear_output(wait=True)
        with self.figure_output:
            import matplotlib.pyplot as plt

            fig = routing_curve(self.curve, target=self.target, routed=float(p["routed"]))
            display(fig)
            plt.close(fig)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
