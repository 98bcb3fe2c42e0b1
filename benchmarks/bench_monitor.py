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

With ``--timelines`` it runs the monitoring timelines instead (:mod:`mlinvestigate.scenarios.timeline`:
``steady``, ``drift-day30``, ``labels-delayed``, ``serving-empty-day40``, 60 days of ≈150 rows a day, a
cause with a dated onset), one log per seed, and reports per variant the alert precision (alerts about
the planted cause raised on or after its onset, over all alerts), the delay (first alert about the
cause minus the onset day), misses, false alarms before the onset, and for ``labels-delayed`` whether
every estimated window was replaced by its realised value once the labels landed. The table is
rewritten after every seed, so an interrupted run leaves what finished. ``--cost-rows 1000000``
measures one daily run on DuckDB: a window of that many rows appended to a log whose earlier days
are already in the history (wall seconds, peak memory of the run's process, the load average).

The section "Monitoring alerts" of docs/accuracy.md is written between its markers (the rest of the
page is ``bench_accuracy.py``'s); the timeline and cost results are blocks of their own inside it.
Timings are recorded, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
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


def _block(text: str, begin: str, end: str) -> str | None:
    if begin in text and end in text:
        return begin + text.split(begin, 1)[1].split(end, 1)[0] + end
    return None


def write_section(path: Path, section: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    kept = [b for b in (_block(text, *TIMELINE_MARKS), _block(text, *COST_MARKS)) if b]
    if kept:  # the timeline and cost blocks are other runs' results: carried over
        section = section.replace(END, "\n".join(kept) + "\n" + END)
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section.rstrip("\n") + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")


def write_block(path: Path, marks: tuple[str, str], block: str) -> None:
    """Replace the block between ``marks`` inside the monitoring section (added before its end)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN not in text or END not in text:
        text = text.rstrip("\n") + "\n\n" + BEGIN + "\n## Monitoring alerts\n\n" + END + "\n"
    body = f"{marks[0]}\n{block.strip()}\n{marks[1]}"
    old = _block(text, *marks)
    text = text.replace(old, body) if old else text.replace(END, body + "\n" + END)
    path.write_text(text, encoding="utf-8")


# --- monitoring timelines -----------------------------------------------------------------------
TIMELINE_MARKS = ("<!-- monitoring-timelines: begin -->", "<!-- monitoring-timelines: end -->")
COST_MARKS = ("<!-- monitoring-daily-cost: begin -->", "<!-- monitoring-daily-cost: end -->")


def run_timeline(variant: str, seed: int, tmp: Path) -> dict:
    """One seeded timeline monitored once (labels-delayed: again after the late labels land)."""
    from mlinvestigate import monitoring
    from mlinvestigate.scenarios import timeline

    spec = timeline.make(variant, tmp / variant, seed=seed)
    info = timeline.info(spec)
    start = pd.Timestamp(info["first_day"])
    t = time.perf_counter()
    result = monitoring.monitor(spec, out=tmp / "out", page=False)
    seconds = time.perf_counter() - t
    alerts = [{"rule": a["rule"], "subject": a["subject"], "severity": a["severity"],
               "first_day": (pd.Timestamp(a["first_window"]) - start).days} for a in result.alerts]
    row = {"variant": variant, "seed": seed, "onset": info["onset"], "cause": info["cause"],
           "expected": info["expected"], "alerts": alerts, "seconds": seconds}
    if variant == "labels-delayed":
        perf = monitoring.load(result.folder).performance()
        estimated = {str(pd.Timestamp(s).date()) for s in perf.loc[perf["estimated"].astype(bool), "window_start"]}
        timeline.land_labels(spec)
        after = monitoring.monitor(spec, out=tmp / "out", page=False)
        perf2 = monitoring.load(after.folder).performance()
        row.update(estimated=len(estimated), changed=len(after.changed),
                   replaced=bool(estimated) and not perf2["estimated"].any()
                   and len(perf2) == info["days"] and set(after.changed) == estimated,
                   alerts_after=len(after.alerts))
    return row


def timeline_markdown(rows: list[dict], *, command: str, seeds: int) -> str:
    from mlinvestigate.scenarios import timeline

    done = sorted({r["seed"] for r in rows})
    complete = [s for s in done if sum(r["seed"] == s for r in rows) == len(timeline.NAMES)]
    lines = ["### Monitoring timelines", "",
             f"Produced by `{command}`: each seed makes the four timelines of "
             "`mlinvestigate.scenarios.timeline` (60 daily windows, ≈150 production rows a day, 5,000 reference "
             "rows, default rules: 2 of the last 3 windows must cross a bar) and monitors them in one run. "
             "*About the cause*: feature PSI and missing rate on the planted features, the domain classifier, and "
             "the performance rules (the drift and the empty field lower accuracy); every other alert, and any "
             "alert before the onset, is false. *Precision*: alerts about the cause first firing on or after the "
             "onset, over all alerts. *Delay*: the first day an expected alert (drift: PSI on amount or "
             "distance_km; serving: missing rate on distance_km) fired minus the onset day; with the 2-of-3 rule "
             "the earliest possible is 1. *Miss*: no expected alert. Warnings count as alerts.", ""]
    if len(complete) < seeds:
        lines += [f"**{len(complete)} of the {seeds} seeds finished** (seeds {', '.join(map(str, complete)) or 'none'}"
                  "); the table covers those.", ""]
    lines += ["| timeline | seeds | alerts | precision | delay (median, max) days | misses | false alarms before "
              "onset | other false alarms | estimated windows replaced | monitor run s (median) |",
              "| --- | ---: | ---: | ---: | --- | ---: | ---: | --- | --- | ---: |"]
    for variant in timeline.NAMES:
        runs = [r for r in rows if r["variant"] == variant and r["seed"] in complete]
        if not runs:
            continue
        total = good = before = misses = 0
        delays, other = [], Counter()
        for r in runs:
            cause = {tuple(c) for c in r["cause"]}
            expected = {tuple(c) for c in r["expected"]}
            onset = r["onset"]
            for a in r["alerts"]:
                total += 1
                key = (a["rule"], a["subject"])
                if onset is not None and a["first_day"] < onset:
                    before += 1
                elif key in cause:
                    good += 1
                else:
                    other[a["rule"]] += 1
            if expected:
                firsts = [a["first_day"] for a in r["alerts"] if (a["rule"], a["subject"]) in expected
                          and a["first_day"] >= onset]
                if firsts:
                    delays.append(min(firsts) - onset)
                else:
                    misses += 1
        precision = f"{good / total:.2f}" if total else "– (no alert)"
        delay = f"{np.median(delays):.0f}, {max(delays)}" if delays else "–"
        fmt = ", ".join(f"{k}: {v}" for k, v in sorted(other.items())) or "none"
        replaced = "–"
        if variant == "labels-delayed":
            ok = sum(bool(r.get("replaced")) for r in runs)
            est = sorted({r.get("estimated") for r in runs})
            replaced = f"{ok} of {len(runs)} (estimated at first run: {', '.join(map(str, est))} windows)"
        lines.append(f"| {variant} | {len(runs)} | {total} | {precision} | {delay if r['expected'] else '–'} | "
                     f"{misses if r['expected'] else '–'} | {before if r['onset'] is not None else '–'} | {fmt} | "
                     f"{replaced} | {np.median([r['seconds'] for r in runs]):.1f} |")
    return "\n".join(lines) + "\n"


def run_timelines(seeds: int, *, out: Path, command: str, state: Path) -> list[dict]:
    from mlinvestigate.scenarios import timeline

    rows = json.loads(state.read_text()) if state.exists() else []
    for seed in range(seeds):
        for variant in timeline.NAMES:
            if any(r["seed"] == seed and r["variant"] == variant for r in rows):
                continue
            with tempfile.TemporaryDirectory() as tmp:
                row = run_timeline(variant, seed, Path(tmp))
            rows.append(row)
            state.write_text(json.dumps(rows))
            print(f"timeline {variant} seed {seed}: {len(row['alerts'])} alert(s), {row['seconds']:.1f} s",
                  file=sys.stderr)
        write_block(out, TIMELINE_MARKS, timeline_markdown(rows, command=command, seeds=seeds))
    return rows


_COST_CHILD = """
import json, resource, sys, time
from mlinvestigate import monitoring
t = time.perf_counter()
r = monitoring.monitor(sys.argv[1], out=sys.argv[2], page=False)
print(json.dumps({"seconds": time.perf_counter() - t, "computed": r.computed, "unchanged": r.unchanged,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def daily_cost(rows: int, *, history_days: int, folder: Path) -> dict:
    """A daily run on DuckDB: ``history_days`` days of ``rows`` rows already monitored, then a day of
    ``rows`` rows appended to the log (a new parquet file in its folder) and the monitor run again
    (in a fresh process: its wall time and peak resident memory)."""
    import yaml

    from mlinvestigate.scenarios import catalog, timeline
    from mlinvestigate.scenarios import world as W

    spec = timeline.make("steady", folder / "incident", seed=0, days=2, rows_per_day=100)
    data = yaml.safe_load(spec.read_text())
    model = __import__("joblib").load(spec.parent / "model.joblib")
    logs = spec.parent / "log"
    logs.mkdir()
    template = pd.read_parquet(spec.parent / "production.parquet")
    rng = np.random.default_rng(0)

    def day(i: int) -> pd.DataFrame:
        frame = W.draw(rng, rows, W.PROD_START)
        ts = frame["event_time"]
        frame["event_time"] = (W.PROD_START + pd.Timedelta(days=i) + (ts - ts.dt.floor("D"))).astype("datetime64[ms]")
        frame = catalog._labelled(rng, frame)
        frame.insert(0, "request_id", np.arange(i * rows, (i + 1) * rows, dtype=np.int64) + W.PROD_FIRST_ID)
        catalog._score(frame, model, W.FEATURES)
        catalog._serve(rng, frame)
        frame["model_version"] = W.VERSION
        frame["label_source"] = "analyst"
        frame["is_fraud"] = pd.array(frame["is_fraud"], dtype="Int64")
        frame["pred"] = pd.array(frame["pred"], dtype="Int64")
        return frame[list(template.columns)]

    for i in range(history_days):
        day(i).to_parquet(logs / f"day{i:02d}.parquet", index=False)
    data.update(production="log/*.parquet", engine="duckdb")
    data["expected"]["daily_volume"] = rows
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    out = folder / "out"
    child = [sys.executable, "-c", _COST_CHILD, str(spec), str(out)]
    first = json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
    day(history_days).to_parquet(logs / f"day{history_days:02d}.parquet", index=False)
    load_before = os.getloadavg()
    daily = json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
    load_after = os.getloadavg()
    return {"rows": rows, "history_days": history_days, "first": first, "daily": daily,
            "load": [round(x, 1) for x in (*load_before, *load_after)], "cpus": os.cpu_count()}


def cost_markdown(c: dict, *, command: str) -> str:
    d = c["daily"]
    return "\n".join([
        "### A daily run at 1M rows a day", "",
        f"Produced by `{command}`: a log of {c['history_days']} days of {c['rows']:,} rows "
        f"(`engine: duckdb`, one parquet file a day, monitored once: {c['first']['seconds']:.0f} s), then a day of "
        f"{c['rows']:,} rows appended and the monitor run again in a fresh process: **{d['seconds']:.0f} s wall, "
        f"peak resident memory {d['peak_mib']:,.0f} MiB** ({len(d['computed'])} window computed, "
        f"{d['unchanged']} unchanged; loading the spec and the reference, fingerprinting every window of the log "
        "and the alerts included; no page). The fingerprints read every row of the log on every run, so the "
        "daily cost grows with the log's length, the statistics only with the new window. "
        f"{c['cpus']} cores shared with other work; load average (1, 5, 15 min) {c['load'][0]}, {c['load'][1]}, "
        f"{c['load'][2]} before the daily run and {c['load'][3]}, {c['load'][4]}, {c['load'][5]} after.", ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--rows", type=int, default=12_000, help="rows a side (default 12,000)")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--scenarios", default="control,drift,health")
    parser.add_argument("--engines", default="pandas")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "accuracy.md"))
    parser.add_argument("--timelines", action="store_true",
                        help="run the monitoring timelines over --seeds instead of the stretched scenarios")
    parser.add_argument("--state", default="bench_monitor_timelines.json",
                        help="--timelines: finished runs are kept here and skipped when the run is resumed")
    parser.add_argument("--cost-rows", type=int, default=0,
                        help="measure one daily run on DuckDB with a window of this many rows (e.g. 1000000)")
    parser.add_argument("--cost-history-days", type=int, default=2)
    args = parser.parse_args(argv)
    if args.timelines or args.cost_rows:
        if args.timelines:
            command = f"python benchmarks/bench_monitor.py --timelines --seeds {args.seeds}"
            run_timelines(args.seeds, out=Path(args.out), command=command, state=Path(args.state))
        if args.cost_rows:
            with tempfile.TemporaryDirectory() as tmp:
                c = daily_cost(args.cost_rows, history_days=args.cost_history_days, folder=Path(tmp))
            print(json.dumps(c), file=sys.stderr)
            command = (f"python benchmarks/bench_monitor.py --cost-rows {args.cost_rows} "
                       f"--cost-history-days {args.cost_history_days}")
            write_block(Path(args.out), COST_MARKS, cost_markdown(c, command=command))
        return 0
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
