"""Investigate logs larger than memory: N reference + N production rows × 50 features.

    python benchmarks/bench_scale.py --rows 5000000 [--engine duckdb|pandas|spark] [--keep DIR] [--checks drift,health]

Generates the incident as parquet partitioned by day (``date=YYYY-MM-DD/part-K.parquet``), in chunks
of 250,000 rows, so the generator never holds a side in memory: 40 numeric features (normal,
heavy-tailed, integer counts with ties) and 10 categorical ones (12 levels); in production 5 numeric
and 1 categorical feature drift. Then, in this process, loads the incident with ``--engine``
(``duckdb`` by default: row counts, the seeded sample, the full-data aggregates, with the load's
own progress bar per phase) and runs every investigation on it, recording wall time, CPU time,
peak memory (the process's resident high-water mark, reset at each phase through
/proc/self/clear_refs) and the machine's load average per phase. Prints a Markdown table for
docs/performance.md. CPU time is this process's (Spark's executors run in a JVM beside it).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

CHUNK = 250_000
NUMERIC, CATEGORICAL = 40, 10
DRIFTED_NUMERIC, DRIFTED_CATEGORICAL = 5, 1
DAYS = 14


def _rss_mb(field: str = "VmRSS") -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field)) / 1024


def _reset_peak() -> None:
    """Reset the process's high-water mark (VmHWM) so each phase reports its own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


class Phase:
    """Wall time, CPU time and peak resident memory of a block, with a progress line."""

    def __init__(self, name: str, log: list):
        self.name, self.log = name, log

    def __enter__(self):
        self.peak = _rss_mb()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        _reset_peak()
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        print(f"▶ {self.name} …", flush=True)
        self.thread.start()
        return self

    def _watch(self):
        dots = 0
        while not self.stop.wait(0.05):
            self.peak = max(self.peak, _rss_mb())
            dots += 1
            if dots % 100 == 0:  # every 5 s
                print(f"  {self.name}: {time.perf_counter() - self.t0:.0f} s, {self.peak:.0f} MB", flush=True)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        wall, cpu = time.perf_counter() - self.t0, time.process_time() - self.c0
        self.peak = max(self.peak, _rss_mb(), _rss_mb("VmHWM"))
        self.log.append({"phase": self.name, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                         "peak_rss_mb": round(self.peak), "load_avg": round(os.getloadavg()[0], 1)})
        print(f"✔ {self.name}: {wall:.1f} s wall, {cpu:.1f} s CPU, peak {self.peak:.0f} MB", flush=True)


def _chunk(rng: np.random.Generator, n: int, production: bool, day: int) -> pa.Table:
    cols = {}
    shift = production * (day + 1) / DAYS  # drift grows over the two weeks
    for i in range(NUMERIC):
        drifted = production and i < DRIFTED_NUMERIC
        if i % 3 == 0:
            x = rng.normal(1.0 * shift if drifted else 0.0, 1.0, n)
        elif i % 3 == 1:
            x = rng.lognormal(3.0 + (0.8 * shift if drifted else 0.0), 1.0, n)
        else:
            x = rng.poisson(3.0 + (3.0 * shift if drifted else 0.0), n).astype(np.float64)
        x[rng.random(n) < 0.01] = np.nan
        cols[f"x{i:02d}"] = x
    levels = np.array([f"level_{k}" for k in range(12)])
    base = np.linspace(2, 1, 12)
    for j in range(CATEGORICAL):
        p = base.copy()
        if production and j < DRIFTED_CATEGORICAL:
            p[-1] += 6 * shift
        cols[f"c{j}"] = levels[rng.choice(12, n, p=p / p.sum())]
    signal = sum(np.nan_to_num(cols[f"x{i:02d}"]) for i in (0, 6, 9, 12)) / 2
    y = (signal + rng.normal(0, 1, n) > 1.5).astype(np.int8)
    score = 1 / (1 + np.exp(-(signal - 1.5) * 1.6))
    cols["label"] = y
    cols["score"] = score
    cols["prediction"] = (score > 0.5).astype(np.int8)
    start = np.datetime64("2026-11-01") + np.timedelta64(day, "D")
    # microseconds, as most pipelines write them (Spark cannot read nanosecond parquet timestamps)
    cols["event_time"] = (start + (rng.random(n) * 86_400e9).astype("timedelta64[ns]")).astype("datetime64[us]")
    return pa.table(cols)


def generate(folder: Path, rows: int, seed: int = 0) -> Path:
    """Write both sides as day-partitioned parquet, chunk by chunk; returns incident.yaml."""
    rng = np.random.default_rng(seed)
    for side in ("reference", "production"):
        done, k = 0, 0
        while done < rows:
            n = min(CHUNK, rows - done)
            day = int(DAYS * done / rows)
            part = folder / side / f"date=2026-11-{day + 1:02d}"
            part.mkdir(parents=True, exist_ok=True)
            pq.write_table(_chunk(rng, n, side == "production", day), part / f"part-{k:04d}.parquet")
            done, k = done + n, k + 1
    features = [f"x{i:02d}" for i in range(NUMERIC)] + [f"c{j}" for j in range(CATEGORICAL)]
    spec = {"name": "scale", "task": "classification", "engine": "duckdb",
            "reference": "reference", "production": "production",
            "columns": {"target": "label", "prediction": "prediction", "score": "score",
                        "positive_label": 1, "timestamp": "event_time", "features": features}}
    path = folder / "incident.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows per side")
    parser.add_argument("--keep", type=Path, help="folder to write the incident to (reused if present)")
    parser.add_argument("--checks", default="", help="comma-separated check ids (default: all)")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    parser.add_argument("--engine", default="duckdb", choices=("duckdb", "pandas", "spark"))
    args = parser.parse_args()

    from mlinvestigate import checks, load_incident
    from mlinvestigate.spec import load_spec

    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    log: list[dict] = []
    spec_path = folder / "incident.yaml"
    if not spec_path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        with Phase(f"generate {args.rows:,} + {args.rows:,} rows as partitioned parquet", log):
            generate(folder, args.rows)
    size = sum(f.stat().st_size for f in folder.rglob("*.parquet")) / 2**30
    print(f"{folder}: {size:.2f} GB of parquet, engine {args.engine}", flush=True)

    spec = load_spec(spec_path).model_copy(update={"engine": args.engine})
    with Phase(f"load ({args.engine})", log):
        incident = load_incident(spec, progress=lambda msg: print(msg, flush=True))
    timings = getattr(incident.aggregates, "timings", {}) or {}
    log[-1]["note"] = ("; ".join(f"{k} {v:.1f} s" for k, v in timings.items()) + "; " if timings else "") + (
        f"in memory {len(incident.reference):,} + {len(incident.production):,} rows")
    ids = [c for c in args.checks.split(",") if c] or checks.ids()
    verdicts = {}
    for cid in ids:
        with Phase(f"check {cid}", log):
            try:
                result = checks.run(cid, incident)
                verdicts[cid] = (result.finding.verdict, result.finding.culprits[:6])
            except Exception as exc:  # noqa: BLE001 - a benchmark records failures and goes on
                verdicts[cid] = ("error", [str(exc)[:80]])
        log[-1]["verdict"] = f"{verdicts[cid][0]} {', '.join(map(str, verdicts[cid][1]))}".strip()

    print("\n| phase | wall s | CPU s | peak RSS (MB) | load avg | result |\n| --- | ---: | ---: | ---: | ---: | --- |")
    for row in log:
        print(f"| {row['phase']} | {row['wall_s']} | {row['cpu_s']} | {row['peak_rss_mb']} | {row['load_avg']} | "
              f"{row.get('verdict', row.get('note', ''))} |")
    total = sum(r["wall_s"] for r in log if not r["phase"].startswith("generate"))
    peak = max(r["peak_rss_mb"] for r in log if not r["phase"].startswith("generate"))
    print(f"\ninvestigation (load + checks): {total:.0f} s wall, peak {peak} MB")
    if args.json:
        args.json.write_text(json.dumps({"rows": args.rows, "gb": size, "engine": args.engine, "phases": log,
                                         "total_s": total, "peak_mb": peak}, indent=1))


if __name__ == "__main__":
    main()
