"""A threshold slider and cost-ratio input: what the threshold does at the old and the new class balance."""

from __future__ import annotations

import pandas as pd

from ..display import table_html
from ..stats import prior as sp


def metrics_at(result, threshold: float, cost_ratio: float) -> pd.DataFrame:
    """Precision, recall, accuracy, share flagged positive and cost at ``threshold``, per class balance."""
    d = result.data
    tpr, fpr = sp.roc_points(d["ref_scores"], d["ref_positive"], [threshold])
    rows = []
    for name, rate in (("reference", d["reference_rate"]), ("production (estimated)" if d["estimated"]
                                                             else "production", d["production_rate"])):
        m = sp.operating_metrics(tpr, fpr, rate, cost_ratio=cost_ratio)
        rows.append({"class balance": f"{name}: {rate:.1%} positive", "precision": float(m["precision"][0]),
                     "recall": float(m["recall"][0]), "accuracy": float(m["accuracy"][0]),
                     "share flagged positive": float(m["positive_share"][0]),
                     "cost per row (FP units)": float(m["cost"][0])})
    return pd.DataFrame(rows)


class ThresholdExplorer:
    """Slide the threshold, type a cost ratio; the table shows the metrics under both class balances.

    Attributes
    ----------
    threshold : ipywidgets.FloatSlider
    cost_ratio : ipywidgets.BoundedFloatText
    output : ipywidgets.HTML
        The table for the current values (escaped).
    """

    def __init__(self, result):
        import ipywidgets as w

        if "ref_scores" not in result.data:
            raise ValueError("the threshold explorer needs a binary model with a score "
                             "(columns.score) in the reference data")
        self.result = result
        d = result.data
        self.threshold = w.FloatSlider(value=d["current_threshold"], min=0.0, max=1.0, step=0.005,
                                       description="threshold", readout_format=".3f", continuous_update=False)
        self.cost_ratio = w.BoundedFloatText(value=d["cost_ratio"], min=0.01, max=10_000, step=0.5,
                                             description="FN / FP cost")
        self.output = w.HTML()
        self.widget = w.VBox([w.HBox([self.threshold, self.cost_ratio]), self.output])
        self.threshold.observe(self._update, names="value")
        self.cost_ratio.observe(self._update, names="value")
        self._update()

    def table(self) -> pd.DataFrame:
        return metrics_at(self.result, self.threshold.value, self.cost_ratio.value)

    def _update(self, *_):
        self.output.value = table_html(self.table())

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
