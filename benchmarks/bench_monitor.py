"""Alert accuracy of ``mlinvestigate monitor`` over seeds: false alarms on a no-drift log, detection
delay on planted causes, and what a run costs.

    python benchmarks/bench_monitor.py [--seeds 10] [--rows 12000] [--days 60] [--engines pandas,duckdb]

For each seed the project's scenarios are made at ``--rows`` rows a side and their production log is
stretched in time to ``--days`` days (every row keeps its values and its time of day; its day is
where its place in the four weeks falls in the longer span, so a no-drift log stays no-drift and a
growing drift grows over the days; ``expected.daily_volume`` follows). Then ``mlinvestigate monitor`` runs on daily windows:

- ``control`` (nothing wrong): every alert and every warning is a false alarm, counted per rule;
- ``drift``: the rules expected to fire (``feature_psi`` on amount and distance_km, ``domain_auc``)
  and the first window each fired in;
- ``health``: ``missing_rate`` on distance_km, ``error_rate``, ``latency_p95``.

The section "Monitoring alerts" of docs/accuracy.md is written between its markers (the rest of the
page is ``bench_accuracy.py``'s). Timings are recorded, never asserted in tests.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

BEGIN, END = "<!-- monitoring: begin (benchmarks/bench_monitor.py) -->", "<!-- monitoring: end -->"
EXPECTED = {"control": set(),
            "drift": {("feature_psi", "amount"), ("feature_psi", "distance_km"), ("domain_auc", "all features")},
            "health": {("missing_rate", "distance_km"), ("error_rate", "failed requests"), ("latency_p95", "latency")}}


def stretched(name: str, folder: Path, *, rows: int, seed: int, days: int, engine: str) -> Path:
    """The scenario's incident with its production log spread over ``days`` days."""
    from mlinvestigate import scenarios
    from mlinvestigate.scenarios import world

    spec = scenarios.make(name, folder, rows=rows, seed=seed)
    data = yaml.safe_load(spec.read_text())
    prod_path = folder / data["production"]
    prod = pd.read_parquet(prod_path)
    factor = days / world.DAYS
    start = world.PROD_START
    # each row moves to the day its place in the 4 weeks maps to, at its own time of day: the hour
    # feature still matches the clock, and a drift that grows over the weeks grows over the days
    ts = prod["event_time"]
    # a random point within the row's own day picks the new day, so no hour lands on a day of its own
    within = np.random.default_rng(seed).random(len(prod))
    day = (((ts - start).dt.days + within) * factor).astype(int).clip(0, days - 1)
    prod["event_time"] = (start + pd.to_timedelta(day, unit="D") + (ts - ts.dt.floor("D"))).astype("datetime64[ms]")
    prod.to_parquet(prod_path, index=False)
    data["engine"] = engine
    if data.get("expected", {}).get("daily_volume"):
        data["expected"]["daily_volume"] = round(data["expected"]["daily_volume"] / factor, 1)
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    return spec


def run(names, seeds, *, rows: int, days: int, engine: str) -> list[dict]:
    from mlinvestigate import monitoring

    out = []
    for seed in seeds:
        for name in names:
            with tempfile.TemporaryDirectory() as tmp:
                spec = stretched(name, Path(tmp) / name, rows=rows, seed=seed, days=days, engine=engine)
                t = time.perf_counter()
                result = monitoring.monitor(spec, out=Path(tmp) / "out", page=False)
                first = time.perf_counter() - t
                t = time.perf_counter()
                monitoring.monitor(spec, out=Path(tmp) / "out", page=False)
                again = time.perf_counter() - t
                state = monitoring.load(result.folder)
                windows = len(state.windows)
            found = {(a["rule"], a["subject"]): a for a in result.alerts}
            firsts = {}
            for (rule, subject), a in found.items():
                firsts.setdefault((rule, subject), a["first_window"])
            out.append({"scenario": name, "seed": seed, "engine": engine, "windows": windows,
                        "alerts": sorted((a["rule"], a["subject"], a["severity"]) for a in result.alerts),
                        "first": firsts, "seconds": first, "rerun": again})
            print(f"{engine} {name} seed {seed}: {len(result.alerts)} alert(s), {first:.1f} s "
                  f"(re-run {again:.1f} s)", file=sys.stderr)
    return out


def markdown(rows: list[dict], *, command: str, rows_per_side: int, days: int) -> str:
    lines = [BEGIN, "## Monitoring alerts", "",
             f"Produced by `{command}`: each scenario made at {rows_per_side:,} rows a side, its production log "
             f"stretched to {days} days (≈{rows_per_side / days:,.0f} rows a day), monitored on daily windows with the "
             "default rules (2 of the last 3 windows must cross a bar). *False alarms* are every alert or warning "
             "on `control`; *expected* are the rules that must fire on the planted cause; *first* is the first "
             "day an expected alert fired (day 0 is the first window).", ""]
    for engine in sorted({r["engine"] for r in rows}):
        part = [r for r in rows if r["engine"] == engine]
        seeds = sorted({r["seed"] for r in part})
        lines += [f"**Engine {engine}**, seeds {seeds[0]}–{seeds[-1]}:", "",
                  "| scenario | runs | windows | false alarms (rule: count) | expected found | first day (median, max) "
                  "| other alerts | first run s (median) | re-run s |",
                  "| --- | ---: | ---: | --- | --- | --- | --- | ---: | ---: |"]
        for name in EXPECTED:
            runs = [r for r in part if r["scenario"] == name]
            if not runs:
                continue
            expected = EXPECTED[name]
            false = Counter(a[0] for r in runs for a in r["alerts"]) if name == "control" else Counter()
            hit = sum(all(k in r["first"] for k in expected) for r in runs)
            days_to = []
            for r in runs:
                start = pd.Timestamp("2026-10-12")
                days_to += [(pd.Timestamp(r["first"][k]) - start).days for k in expected if k in r["first"]]
            others = Counter(a[0] for r in runs for a in r["alerts"] if (a[0], a[1]) not in expected) \
                if name != "control" else Counter()
            first = f"{pd.Series(days_to).median():.0f}, {max(days_to)}" if days_to else "–"
            fmt = lambda c: ", ".join(f"{k}: {v}" for k, v in sorted(c.items())) or "none"  # noqa: E731
            lines.append(f"| {name} | {len(runs)} | {runs[0]['windows']} | "
                         f"{fmt(false) if name == 'control' else '–'} | "
                         f"{f'{hit} of {len(runs)}' if expected else '–'} | {first if expected else '–'} | "
                         f"{fmt(others) if name != 'control' else '–'} | "
                         f"{pd.Series([r['seconds'] for r in runs]).median():.1f} | "
                         f"{pd.Series([r['rerun'] for r in runs]).median():.1f} |")
        lines.append("")
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section.rstrip("\n") + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--rows", type=int, default=12_000, help="rows a side (default 12,000)")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--scenarios", default="control,drift,health")
    parser.add_argument("--engines", default="pandas")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "accuracy.md"))
    args = parser.parse_args(argv)
    names = [n for n in args.scenarios.split(",") if n]
    rows = []
    for engine in args.engines.split(","):
        rows += run(names, range(args.seeds), rows=args.rows, days=args.days, engine=engine)
    command = (f"python benchmarks/bench_monitor.py --seeds {args.seeds} --rows {args.rows} --days {args.days} "
               f"--engines {args.engines}")
    section = markdown(rows, command=command, rows_per_side=args.rows, days=args.days)
    write_section(Path(args.out), section)
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
