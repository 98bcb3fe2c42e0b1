"""A progress bar per phase of an engine's load (row counts, samples, each group of aggregates).

Bars are drawn by tqdm on stderr, only when stderr is a terminal or when the caller passed a
progress callback (the command line does); otherwise (tests, notebooks, scripts that redirect
stderr) nothing is written. Each phase's wall time is kept (:attr:`Phases.timings`) either way.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Phases:
    """``with phases.phase("sample", total=2, unit="side") as bar: … bar.update()``."""

    def __init__(self, callback: Callable[[str], None] | None = None):
        isatty = getattr(sys.stderr, "isatty", None)
        self.bars = callback is not None or bool(isatty and isatty())
        self.timings: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str, total: int, unit: str = "query") -> Iterator:
        from tqdm import tqdm

        t0 = time.perf_counter()
        bar = tqdm(total=total, desc=f"mlinvestigate: {name}", unit=unit, file=sys.stderr,
                   disable=not self.bars, leave=True, dynamic_ncols=True, mininterval=0.5)
        try:
            yield bar
        finally:
            bar.close()
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0
