"""The investigation notebooks: committed without outputs, thin, with the shared parameters."""

from __future__ import annotations

import ast

import nbformat
import pytest

from mlinvestigate.checks import CHECK_IDS
from mlinvestigate.resources import notebooks as _notebooks

NOTEBOOKS = _notebooks()

PARAMETERS = {"spec", "out", "data", "trust_model", "interactive"}


def test_every_check_has_a_notebook():
    # plus the summary page and the monitoring trend page (`mlinvestigate monitor`)
    assert {p.stem for p in NOTEBOOKS.glob("*.ipynb")} == set(CHECK_IDS) | {"summary", "monitor"}


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_notebook_is_clean_and_thin(path):
    """No outputs, one tagged parameters cell with (at least) the runner's parameters, short code cells."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "commit notebooks without outputs"
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    names = {t.id for node in ast.parse(params[0].source).body for t in getattr(node, "targets", [])}
    assert PARAMETERS <= names, f"missing parameters: {PARAMETERS - names}"
    assert max(len(c.source.splitlines()) for c in code) <= 12, "logic belongs in the package"
    assert any(c.cell_type == "markdown" for c in nb.cells)
