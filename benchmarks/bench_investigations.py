"""Time every investigation at the working size: 1M reference + 1M production rows, 50 features.

    python benchmarks/bench_investigations.py [--rows 1000000] [--checks drift,skew] [--keep DIR]

Writes a synthetic incident (40 numeric + 10 categorical features, binary target with score,
timestamps, ids, versions, latency, status, label sources, segments and an offline-recomputed
feature file), then runs each check in its own process (so peak memory is per check), reading the
run's columnar cache as the batch runner does, and finally the whole `mlinvestigate run`. Prints a
Markdown table for docs/performance.md. Timings are measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

# Peak memory is the process's own high-water mark (VmHWM): ru_maxrss would carry over the
# parent's peak through fork and exec.
PEAK = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) / 1024"
CHECK = r"""
import json, sys, time
from mlinvestigate import load_incident, checks
t0 = time.perf_counter()
inc = load_incident(sys.argv[1], cache=sys.argv[2])
t1 = time.perf_counter()
res = checks.get(sys.argv[3]).run(inc)
t2 = time.perf_counter()
print(json.dumps({"load_s": t1 - t0, "check_s": t2 - t1, "verdict": res.finding.verdict,
                  "peak_rss_mb": PEAK}))
""".replace("PEAK", PEAK)
LOAD = r"""
import json, sys, time
from pathlib import Path
from mlinvestigate import load_incident
t0 = time.perf_counter()
inc = load_incident(sys.argv[1])
inc.save_cache(Path(sys.argv[2]))
print(json.dumps({"seconds": time.perf_counter() - t0, "peak_rss_mb": PEAK}))
""".replace("PEAK", PEAK)
CLI = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
code = subprocess.call([sys.executable, "-m", "mlinvestigate", *sys.argv[1:]], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
print(json.dumps({"seconds": time.perf_counter() - t0, "exit": code,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def make_incident(folder: Path, rows: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)

    def side(n, start, shift, day0):
        cols = {f"num_{i:02d}": rng.normal(shift if i < 3 else 0.0, 1.0, n).astype("float64") for i in range(40)}
        cats = {f"cat_{i}": rng.choice([f"v{j}" for j in range(12)], n) for i in range(10)}
        df = pd.DataFrame({**cols, **cats})
        logit = df["num_00"] + 0.5 * df["num_01"] - 2.0
        y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
        score = 1 / (1 + np.exp(-(logit + rng.normal(0, 0.3, n))))
        df["request_id"] = np.arange(start, start + n)
        df["event_time"] = pd.Timestamp(day0) + pd.to_timedelta(rng.integers(0, 28 * 86400, n), "s")
        df["is_fraud"], df["pred_proba"] = y, score
        df["pred"] = (score > 0.5).astype(int)
        df["model_version"] = "2.0"
        df["latency_ms"] = rng.lognormal(3, 0.3, n)
        df["status"] = np.where(rng.random(n) < 0.002, "error", "ok")
        df["label_source"] = rng.choice(["analyst", "vendor"], n, p=[0.8, 0.2])
        return df

    ref, prod = side(rows, 0, 0.0, "2026-09-01"), side(rows, 10 * rows, 0.3, "2026-10-12")
    ref.to_parquet(folder / "reference.parquet")
    prod.to_parquet(folder / "production.parquet")
    prod[["request_id"] + [f"num_{i:02d}" for i in range(40)]].to_parquet(folder / "offline.parquet")
    spec = {"name": "bench", "reference": "reference.parquet", "production": "production.parquet",
            "columns": {"target": "is_fraud", "prediction": "pred", "score": "pred_proba", "positive_label": 1,
                        "timestamp": "event_time", "id": "request_id", "model_version": "model_version",
                        "latency_ms": "latency_ms", "status": "status", "label_source": "label_source",
                        "segments": ["cat_0", "cat_1"],
                        "features": [f"num_{i:02d}" for i in range(40)] + [f"cat_{i}" for i in range(10)]},
            "serving": {"offline": "offline.parquet"}, "model": {"version": "2.0"},
            "expected": {"daily_volume": rows / 28, "latency_p95_ms": 50}}
    (folder / "incident.yaml").write_text(yaml.safe_dump(spec))
    return folder / "incident.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--checks", default=None)
    ap.add_argument("--keep", type=Path, default=None, help="write the incident here and keep it")
    ap.add_argument("--no-cli", action="store_true", help="skip the whole `mlinvestigate run`")
    args = ap.parse_args()
    from mlinvestigate.runner import available_checks

    base = args.keep or Path(tempfile.mkdtemp(prefix="mli-bench-"))
    t = time.perf_counter()
    spec = make_incident(base / "incident", args.rows)
    print(f"generated {args.rows:,} + {args.rows:,} rows in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    cache = base / "cache"
    r = _json(subprocess.run([sys.executable, "-c", LOAD, str(spec), str(cache)], capture_output=True, text=True))
    print("| step | seconds | peak memory of the process (MB) | verdict |\n| --- | ---: | ---: | --- |")
    print(f"| load + type both files, write the cache (once per run) | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} | |")
    for check in (args.checks.split(",") if args.checks else available_checks()):
        proc = subprocess.run([sys.executable, "-c", CHECK, str(spec), str(cache), check],
                              capture_output=True, text=True)
        if proc.returncode:
            print(f"| {check} | failed | | {proc.stderr.strip().splitlines()[-1][:80]} |")
            continue
        r = _json(proc)
        print(f"| {check} (reading the cache: {r['load_s']:.1f} s) | {r['check_s']:.1f} | {r['peak_rss_mb']:.0f} | "
              f"{r['verdict']} |")
    if not args.no_cli:
        cmd = ["run", str(spec), "--out", str(base / "reports")] + (["--checks", args.checks] if args.checks else [])
        r = _json(subprocess.run([sys.executable, "-c", CLI, *cmd], capture_output=True, text=True))
        print(f"| `mlinvestigate run` end to end, --jobs 2 (exit {r['exit']}) | {r['seconds']:.1f} | "
              f"{r['peak_rss_mb']:.0f} (largest process) | |")
        report = next((base / "reports").glob("*/findings.json"), None)
        if report is not None:
            _phases(json.loads(report.read_text()))


def _phases(doc: dict) -> None:
    """Where the end-to-end run's time went, from the timings the runner records in findings.json."""
    t = doc.get("timings", {})
    print("\n| phase of the run | seconds |\n| --- | ---: |")
    print(f"| load and type both files | {t.get('load', 0):.1f} |")
    print(f"| write the columnar cache the kernels read | {t.get('cache', 0):.1f} |")
    for check, p in t.get("pages", {}).items():
        print(f"| {check}: kernel executes the notebook / nbconvert renders the page | "
              f"{p.get('execute', 0):.1f} / {p.get('render', 0):.1f} |")
    print(f"| every check page, two kernels side by side (wall) | {t.get('checks_wall', 0):.1f} |")
    s = t.get("summary", {})
    print(f"| summary page: execute / render | {s.get('execute', 0):.1f} / {s.get('render', 0):.1f} |")


def _json(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
