"""Files the package reads at run time: the investigation notebooks and the report templates.

They ship inside the package (``mlinvestigate/notebooks``, ``mlinvestigate/templates``) and are
found with :mod:`importlib.resources`, so a wheel installed anywhere finds them; nothing is looked
up next to a source checkout.
"""

from __future__ import annotations

import atexit
from contextlib import ExitStack
from functools import cache
from importlib.resources import as_file, files
from pathlib import Path

_files = ExitStack()
atexit.register(_files.close)


@cache
def _folder(name: str) -> Path:
    # papermill and nbconvert want real paths; as_file extracts them only for a zipped install
    return _files.enter_context(as_file(files("mlinvestigate").joinpath(name)))


def notebooks() -> Path:
    """The folder of the investigation notebooks (``<check>.ipynb`` and ``summary.ipynb``)."""
    return _folder("notebooks")


def templates() -> Path:
    """The folder of the nbconvert report template and the ``incident.yaml`` template."""
    return _folder("templates")
