"""Property: whatever small spec and tables a user brings, loading and every check either work or
stop with an InvestigationError that says why; no other exception escapes, and no input file is
touched. Hypothesis generates the inputs (column types, NaN, inf, empty strings, duplicated ids,
single rows, one class, unicode and spaces in names, mixed types in one column)."""

from __future__ import annotations

import hashlib
import string
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlinvestigate import checks, load_incident
from mlinvestigate.errors import InvestigationError

NAMES = ["amount", "prix €", "país", " spaced name ", "a b", "日付", "x1", "Count", "emoji 🙂", "tab\tname"]
COLUMN_KINDS = ["float", "int", "text", "bool", "mixed", "datetime", "empty", "identifier"]


@st.composite
def column(draw, kind: str, n: int):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "float":
        v = rng.normal(size=n)
        specials = draw(st.lists(st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -1e308]), max_size=3))
        for i, s in enumerate(specials[:n]):
            v[i] = s
        return v
    if kind == "int":
        return rng.integers(-5, 5, n)
    if kind == "text":
        return rng.choice(["a", "b", "", " ", "ü", "<b>x</b>", "None"], n).astype(object)
    if kind == "bool":
        return rng.random(n) < 0.5
    if kind == "mixed":
        return np.array([[1, "one", 2.5, None, True][i % 5] for i in range(n)], dtype=object)
    if kind == "datetime":
        return pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 10**6, n), "s")
    if kind == "identifier":
        return np.array([f"id-{rng.integers(10**9)}-{i}" for i in range(n)], dtype=object)
    return np.full(n, np.nan)


@st.composite
def labels(draw, n: int, task: str):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if task == "regression":
        y = rng.normal(size=n)
        return y, y + rng.normal(scale=0.1, size=n)
    classes = draw(st.sampled_from([[0, 1], [0, 1, 2], ["no", "yes"], [1], [True, False]]))
    y = np.array([classes[i % len(classes)] for i in rng.permutation(n)], dtype=object)
    pred = np.array([classes[i % len(classes)] for i in rng.permutation(n)], dtype=object)
    return y, pred


@st.composite
def incident(draw):
    task = draw(st.sampled_from(["classification", "classification", "regression"]))
    features = draw(st.lists(st.sampled_from(NAMES), min_size=0, max_size=4, unique=True))
    kinds = {f: draw(st.sampled_from(COLUMN_KINDS)) for f in features}
    use_id = draw(st.booleans())
    frames = {}
    for role in ("reference", "production"):
        n = draw(st.sampled_from([1, 2, 5, 30, 80]))
        y, pred = draw(labels(n, task))
        df = pd.DataFrame({"target": y, "pred": pred})
        for f in features:
            df[f] = draw(column(kinds[f], n))
        if use_id:
            ids = np.arange(n)
            if draw(st.booleans()):
                ids = ids // 2  # every id twice
            df["rid"] = ids
        if role == "production":
            if draw(st.booleans()):
                df["latency"] = np.where(np.arange(n) % 7 == 0, -5.0, 20.0)
            if draw(st.booleans()):
                df["status"] = np.array(["ok", "error", "", "TIMEOUT"], dtype=object)[np.arange(n) % 4]
            if draw(st.booleans()):
                df.loc[df.index[: n // 2], "target"] = None
        frames[role] = df
    columns = {"target": "target", "prediction": "pred"}
    if use_id:
        columns["id"] = "rid"
    if "latency" in frames["production"]:
        columns["latency_ms"] = "latency"
    if "status" in frames["production"]:
        columns["status"] = "status"
    if features and draw(st.booleans()):
        columns["features"] = features
    if task == "classification" and draw(st.booleans()):
        columns["positive_label"] = draw(st.sampled_from([1, "yes", True]))
    offline = draw(st.booleans()) and use_id
    fmt = draw(st.sampled_from(["parquet", "csv", "csv.gz"]))
    return {"task": task, "frames": frames, "columns": columns, "offline": offline, "fmt": fmt}


def write(folder: Path, case: dict) -> Path:
    names = {}
    frames = dict(case["frames"])
    if case["offline"]:
        prod = frames["production"]
        frames["offline"] = prod.drop(columns=[c for c in ("target", "pred", "latency", "status") if c in prod])
    for role, df in frames.items():
        name = f"{role}.{case['fmt']}"
        try:
            if case["fmt"] == "parquet":
                df.to_parquet(folder / name)
            else:
                df.to_csv(folder / name, index=False)
        except Exception:  # noqa: BLE001 - a column parquet cannot hold (mixed types) goes to CSV
            name = f"{role}.csv"
            df.to_csv(folder / name, index=False)
        names[role] = name
    spec = {"name": "prop", "task": case["task"], "reference": names["reference"],
            "production": names["production"], "columns": case["columns"]}
    if case["offline"]:
        spec["serving"] = {"offline": names["offline"]}
    (folder / "incident.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))
    return folder / "incident.yaml"


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(case=incident())
def test_any_input_works_or_fails_with_a_reason(tmp_path_factory, case):
    folder = tmp_path_factory.mktemp("prop")
    spec = write(folder, case)
    before = digests(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            inc = load_incident(spec)
        except InvestigationError as exc:
            assert str(exc).strip(), "an error without a message"
            assert digests(folder) == before
            return
        for cid in checks.CHECK_IDS:
            try:
                result = checks.get(cid).run(inc)
            except InvestigationError as exc:
                assert str(exc).strip(), f"{cid}: an error without a message"
                continue
            f = result.finding
            assert f.verdict in ("detected", "clear", "inconclusive", "skipped"), (cid, f.verdict)
            assert f.summary and "Traceback" not in f.summary
            assert not any(ch in f.summary for ch in string.whitespace.replace(" ", "")), (cid, f.summary)
    assert digests(folder) == before


@pytest.mark.e2e
@settings(max_examples=3, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(case=incident())
def test_the_command_line_exits_0_1_or_2_and_its_pages_are_self_contained(tmp_path_factory, case):
    """Through the real command line: exit 0, 1 or 2 only; exit 2 says why without a traceback;
    every page written is one complete, self-contained HTML document; no input file is touched."""
    from bs4 import BeautifulSoup

    from tests.conftest import run_cli

    folder = tmp_path_factory.mktemp("prop-cli")
    spec = write(folder, case)
    before = digests(folder)
    out = tmp_path_factory.mktemp("prop-out")
    proc = run_cli("run", spec, "--out", out, "--checks", "measurement,health,drift,prior_shift")
    assert proc.returncode in (0, 1, 2), proc.stderr[-2000:]
    if proc.returncode == 2:
        assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert proc.stderr.strip().splitlines()[-1].startswith("error: "), proc.stderr[-2000:]
        assert not any(out.iterdir()), "a refused run wrote a report"
    else:
        pages = list(out.glob("*/*.html"))
        assert any(p.name == "index.html" for p in pages)
        for page in pages:
            text = page.read_text(encoding="utf-8")
            soup = BeautifulSoup(text, "html.parser")
            assert soup.find("html") and soup.find("body"), page.name
            assert not soup.find("script", src=True) and not soup.find("link", href=True), page.name
            assert not any(tag.get("src", "").startswith(("http:", "https:", "//")) for tag in soup.find_all(src=True))
    assert digests(folder) == before
