"""Time the drift investigation at the working size: 1M reference + 1M production rows, 50 features.

    python benchmarks/bench_drift.py [--rows 1000000] [--keep DIR]

Writes a synthetic incident (40 numeric + 10 categorical features, 5 numeric and 1 categorical
drifted, binary target with score, timestamps over 4 weeks) to parquet with a minimal
incident.yaml, then measures, each in a fresh process:

1. the univariate drift statistics alone (every feature, score and prediction);
2. the whole check (statistics, domain classifier, time view);
3. the drift notebook executed by papermill and rendered to HTML, as the runner does it;
4. ``mlinvestigate run SPEC --checks drift`` end to end (loading and typing both files, the
   columnar cache, the notebook pages, findings.json and index.html).

Prints a Markdown table for docs/performance.md. Peak memory is the largest resident set of the
process (and, for 3 and 4, of any process it waited for: the kernel, the runner's workers).
Timings are recorded in the docs, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

NUMERIC, CATEGORICAL = 40, 10

STATS = r"""
import json, resource, sys, time
from mlinvestigate import load_incident
from mlinvestigate.checks import drift
inc = load_incident(sys.argv[1], cache=sys.argv[2])
rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
th = drift._thresholds(inc)
t, c = time.perf_counter(), time.process_time()
stats = drift.univariate(inc.reference, inc.production, dict(inc.feature_types),
                         min_share=th["min_category_share"])
outputs = drift.univariate(inc.reference, inc.production, drift.output_kinds(inc),
                           min_share=th["min_category_share"])
stats_s, stats_cpu = time.perf_counter() - t, time.process_time() - c
rss_stats = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t, c = time.perf_counter(), time.process_time()
res = drift.run(inc)
check_s, check_cpu = time.perf_counter() - t, time.process_time() - c
print(json.dumps({"stats_s": stats_s, "check_s": check_s, "stats_cpu": stats_cpu, "check_cpu": check_cpu,
                  "rss_loaded_mb": rss_loaded,
                  "rss_stats_mb": rss_stats,
                  "rss_check_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "verdict": res.finding.verdict, "culprits": res.finding.culprits,
                  "domain_auc": res.finding.evidence["domain_classifier"].get("auc")}))
"""

NOTEBOOK = r"""
import json, resource, sys, time
from pathlib import Path
import papermill as pm
from mlinvestigate.resources import notebooks
from mlinvestigate.runner import render_html

NOTEBOOKS = notebooks()
spec, cache, folder = sys.argv[1], sys.argv[2], Path(sys.argv[3])
folder.mkdir(parents=True, exist_ok=True)
t = time.perf_counter()
pm.execute_notebook(str(NOTEBOOKS / "drift.ipynb"), str(folder / "drift.ipynb"), kernel_name="python3",
                    parameters={"spec": spec, "out": str(folder), "data": cache, "interactive": False},
                    progress_bar=False, cwd=str(Path(spec).parent))
executed = time.perf_counter() - t
render_html(folder / "drift.ipynb", folder / "drift.html", {"title": "bench", "pages": []})
finding = json.loads((folder / "findings" / "drift.json").read_text())
kids, me = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": time.perf_counter() - t, "executed_s": executed, "verdict": finding["verdict"],
                  "cpu": kids.ru_utime + kids.ru_stime + me.ru_utime + me.ru_stime,
                  "rss_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_kernel_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""

RUN = r"""
import json, resource, subprocess, sys, time
t = time.perf_counter()
proc = subprocess.run([sys.executable, "-m", "mlinvestigate", "run", sys.argv[1], "--checks", "drift",
                       "--out", sys.argv[2]], capture_output=True, text=True)
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": time.perf_counter() - t, "exit": proc.returncode,
                  "cpu": kids.ru_utime + kids.ru_stime,
                  "rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def make_incident(folder: Path, rows: int, seed: int = 0) -> Path:
    """Write reference.parquet, production.parquet and incident.yaml; return the spec path."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    levels = [f"v{j:02d}" for j in range(12)]

    def side(start: str, drifted: bool) -> pd.DataFrame:
        cols = {}
        for i in range(NUMERIC):
            shift = 0.5 if drifted and i < 5 else 0.0
            if i % 4 == 3:  # heavy-tailed, like amounts
                cols[f"num_{i:02d}"] = np.round(np.exp(rng.normal(3 + shift, 1.0, rows)), 2)
            elif i % 4 == 2:  # counts with many ties
                cols[f"num_{i:02d}"] = rng.poisson(3 + 2 * shift, rows).astype("float64")
            else:
                cols[f"num_{i:02d}"] = rng.normal(shift, 1.0, rows)
        share = np.full(12, 1 / 12)
        for i in range(CATEGORICAL):
            p = share if not (drifted and i == 0) else np.r_[0.3, np.full(11, 0.7 / 11)]
            cols[f"cat_{i}"] = pd.Categorical.from_codes(rng.choice(12, rows, p=p), categories=levels)
        df = pd.DataFrame(cols)
        logit = df["num_00"].to_numpy() + 0.5 * df["num_01"].to_numpy() - 2.0
        df["is_fraud"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
        df["pred_proba"] = 1 / (1 + np.exp(-(logit + rng.normal(0, 0.3, rows))))
        df["pred"] = (df["pred_proba"] > 0.5).astype(np.int64)
        df["event_time"] = pd.Timestamp(start) + pd.to_timedelta(np.sort(rng.integers(0, 28 * 86400, rows)), "s")
        return df

    side("2026-09-01", False).to_parquet(folder / "reference.parquet")
    side("2026-10-12", True).to_parquet(folder / "production.parquet")
    spec = {"name": "bench-drift", "reference": "reference.parquet", "production": "production.parquet",
            "columns": {"target": "is_fraud", "prediction": "pred", "score": "pred_proba",
                        "timestamp": "event_time"}}
    (folder / "incident.yaml").write_text(yaml.safe_dump(spec))
    return folder / "incident.yaml"


def _json_run(code: str, *args) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--keep", type=Path, default=None, help="write the incident here and keep it")
    args = ap.parse_args()
    from mlinvestigate import load_incident

    base = args.keep or Path(tempfile.mkdtemp(prefix="mli-bench-drift-"))
    spec = base / "incident" / "incident.yaml"
    if not spec.exists():
        t = time.perf_counter()
        make_incident(spec.parent, args.rows)
        print(f"generated {args.rows:,} + {args.rows:,} rows in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    cache = base / "cache"
    load_before = os.getloadavg()[0]
    t = time.perf_counter()
    load_incident(spec).save_cache(cache)
    prep_s = time.perf_counter() - t

    s = _json_run(STATS, spec, cache)
    nb = _json_run(NOTEBOOK, spec, cache, base / "notebook")
    run = _json_run(RUN, spec, base / "reports")

    print(f"machine: {os.cpu_count()} cores, load average {load_before:.1f} before and "
          f"{os.getloadavg()[0]:.1f} after (other processes share the cores)\n")
    print("| step | wall s | CPU s | peak RSS (MB) | result |\n| --- | ---: | ---: | ---: | --- |")
    print(f"| load + type both files, write the cache (the runner does this once) | {prep_s:.1f} | | | |")
    print(f"| univariate drift statistics, 50 features + score + prediction | {s['stats_s']:.1f} | "
          f"{s['stats_cpu']:.1f} | {s['rss_stats_mb']:.0f} ({s['rss_loaded_mb']:.0f} with the data alone) | |")
    print(f"| whole check: statistics, domain classifier, time view | {s['check_s']:.1f} | {s['check_cpu']:.1f} | "
          f"{s['rss_check_mb']:.0f} | {s['verdict']}, AUC {s['domain_auc']:.3f}, {len(s['culprits'])} culprits |")
    print(f"| drift notebook: papermill run ({nb['executed_s']:.1f} s) + HTML render | {nb['seconds']:.1f} | "
          f"{nb['cpu']:.1f} | {nb['rss_kernel_mb']:.0f} (kernel) | {nb['verdict']} |")
    print(f"| `mlinvestigate run SPEC --checks drift` end to end (exit {run['exit']}) | {run['seconds']:.1f} | "
          f"{run['cpu']:.1f} | {run['rss_mb']:.0f} (largest process) | |")

if __name__ == "__main__":
    main()
