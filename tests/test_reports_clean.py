"""Reports hold what a reader needs and nothing else: no Python warnings, tracebacks or the
machine's paths on any page of any scenario's report (a failing check shows its error on its own
page only, and no scenario's check fails)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlinvestigate import scenarios

NOISE = re.compile(r"(RuntimeWarning|UserWarning|FutureWarning|DeprecationWarning|Traceback \(most recent"
                   r"|site-packages|/tmp/|/root/|/home/)")


@pytest.mark.e2e
@pytest.mark.parametrize("name", scenarios.NAMES)
def test_pages_carry_no_noise(investigated, name):
    doc = investigated(name)
    folder = Path(doc["_folder"])
    for page in sorted(folder.glob("*.html")):
        text = page.read_text(encoding="utf-8")
        found = sorted(set(NOISE.findall(text)))
        assert not found, f"{page.name}: {found}"
