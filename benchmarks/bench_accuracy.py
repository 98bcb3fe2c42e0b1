"""What the kit says on every scenario, against what was planted: writes docs/accuracy.md.

    python benchmarks/bench_accuracy.py [--rows 6000] [--tiny 300] [--scenarios drift,wide] [--seed 0]
                                        [--out docs/accuracy.md]

Each scenario (:data:`mlinvestigate.scenarios.NAMES`) is generated at ``--rows`` rows a side (fewer
where the catalog says so: ``scenarios.E2E_ROWS``) and again at ``--tiny`` rows, seeded; every
check runs in this process and :func:`mlinvestigate.diagnosis.rank` orders the detected ones, as
the summary page does. One table row per scenario and size says what the kit said (the cause it
ranks first, the top check's culprits), whether the planted cause was found (detected with its
culprits among the first five) and ranked first, whether a control stayed clear, which checks
failed, and the class shares the kit estimated for production against the generator's truth
(``truth.json``; within ±0.07 counts as right). A new failure class shows up as a row that is not
right. Numbers are recorded in the docs, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

RATE_TOLERANCE = 0.07   # estimated production class share within this of the truth counts as right
TOP_CULPRITS = 5        # planted culprits must be among the top check's first five


def investigate(spec: Path) -> tuple[dict, list[str], float]:
    """Every check on the incident (an exception is an ``error`` finding) and the ranking."""
    from mlinvestigate import checks, diagnosis, load_incident
    from mlinvestigate.findings import jsonable

    start = time.perf_counter()
    incident = load_incident(spec, trust_model=True)
    findings: dict[str, dict] = {}
    for cid in checks.CHECK_IDS:
        try:
            findings[cid] = jsonable(checks.get(cid).run(incident).finding.to_dict())
        except Exception as exc:  # noqa: BLE001 - a failing check is a result here
            findings[cid] = {"verdict": "error", "severity": "critical", "culprits": [],
                             "summary": f"{type(exc).__name__}: {exc}", "evidence": {},
                             "traceback": traceback.format_exc(limit=3)}
    return findings, diagnosis.rank(findings), time.perf_counter() - start


def estimated_rates(findings: dict) -> tuple[dict[str, float] | None, bool]:
    """Production class shares as the prior-shift check reports them, and whether they were
    estimated (labels missing or unrepresentative) rather than read from the labels."""
    ev = findings.get("prior_shift", {}).get("evidence") or {}
    if ev.get("production_class_rates"):
        return {str(k): float(v) for k, v in ev["production_class_rates"].items()}, bool(ev.get("estimated"))
    rate = ev.get("production_positive_rate")
    if rate is None:
        return None, False
    pos = str(ev.get("positive_label"))
    return {pos: float(rate)}, bool(ev.get("estimated"))


def rate_error(estimate: dict[str, float] | None, truth: dict[str, float] | None) -> float | None:
    if not estimate or not truth:
        return None
    return max(abs(v - truth.get(k, 0.0)) for k, v in estimate.items())


def judge(name: str, findings: dict, ranking: list[str], truth: dict | None) -> dict:
    from mlinvestigate.scenarios import EXPECTED

    expected = EXPECTED[name]
    planted = expected["check"]
    top = ranking[0] if ranking else None
    top_culprits = [str(c) for c in findings[top]["culprits"]][:TOP_CULPRITS] if top else []
    errors = sorted(c for c, f in findings.items() if f.get("verdict") == "error")
    row = {"scenario": name, "planted": planted or "nothing (control)", "said": top or "nothing wrong",
           "culprits": top_culprits, "errors": errors}
    if planted is None:
        row.update(found=None, first=None, clear=not ranking)
    else:
        f = findings[planted]
        named = [str(c) for c in f["culprits"]][:TOP_CULPRITS]
        row.update(found=f.get("verdict") == "detected" and all(c in named for c in expected["culprits"]),
                   first=top == planted, clear=None)
    estimate, estimated = estimated_rates(findings)
    true_rates = (truth or {}).get("production_class_rates")
    row.update(estimate=estimate, estimated=estimated, truth=true_rates,
               rate_error=rate_error(estimate, true_rates))
    ok_rate = row["rate_error"] is None or row["rate_error"] <= RATE_TOLERANCE
    ok_cause = row["clear"] if planted is None else (row["found"] and row["first"])
    row["right"] = bool(ok_cause and ok_rate and not errors)
    row["summary"] = findings[top]["summary"] if top else ""
    return row


def run(names: list[str], sizes: list[tuple[str, int | None]], seed: int) -> list[dict]:
    from mlinvestigate import scenarios

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            for label, size in sizes:
                n = scenarios.e2e_rows(name, size) if label == "full" else size
                folder = Path(tmp) / f"{name}-{n}"
                spec = scenarios.make(name, folder, rows=n, seed=seed)
                truth_file = folder / "truth.json"
                truth = json.loads(truth_file.read_text()) if truth_file.exists() else None
                findings, ranking, seconds = investigate(spec)
                row = judge(name, findings, ranking, truth)
                row.update(rows=n, seconds=seconds)
                rows.append(row)
                print(f"{name:24s} {n:>6,} rows  {'right' if row['right'] else 'WRONG':5s}  said {row['said']:12s} "
                      f"{seconds:5.1f} s", file=sys.stderr, flush=True)
    return rows


def _mark(value) -> str:
    return "–" if value is None else ("yes" if value else "**no**")


def _rates(row: dict) -> str:
    if row["estimate"] is None:
        return "–"
    keys = sorted(row["estimate"])
    name = (lambda k: f"{k} ") if len(keys) > 1 else (lambda k: "")
    est = ", ".join(f"{name(k)}{row['estimate'][k]:.3f}" for k in keys)
    true = ", ".join(f"{(row['truth'] or {}).get(k, float('nan')):.3f}" for k in keys) if row["truth"] else "?"
    err = row["rate_error"]
    flag = "" if err is None or err <= RATE_TOLERANCE else " **off**"
    how = "estimated" if row["estimated"] else "labels"
    return f"{est} ({how}) vs {true}{flag}"


def markdown(rows: list[dict], *, seed: int, command: str) -> str:
    right = sum(r["right"] for r in rows)
    lines = [
        "# Accuracy on the scenarios",
        "",
        "What the kit says on every synthetic scenario (`mlinvestigate scenarios list`), against what was",
        f"planted. Produced by `{command}` (seed {seed}); every check runs in process and the",
        "ranking is the summary page's (`mlinvestigate.diagnosis.rank`). Regenerate it after changing a",
        "check: a new failure class shows up as a row that is not right.",
        "",
        "- **said**: the cause ranked first (\"nothing wrong\" when no check detected anything);",
        f"  **culprits**: that check's first {TOP_CULPRITS}.",
        f"- **found**: the planted check detected, with every planted culprit among its first {TOP_CULPRITS};",
        "  **first**: ranked first; **clear**: a control with nothing detected.",
        "- **class shares**: production class shares as the prior-shift check reports them (estimated",
        "  without labels when production labels are missing or unrepresentative), against the",
        f"  generator's truth over every production row (`truth.json`); off by more than {RATE_TOLERANCE}",
        "  is marked.",
        "- **right**: found and first (or clear), shares within tolerance, no check failed.",
        "",
        f"**{right} of {len(rows)} right.**",
        "",
        "| scenario | rows | planted | said | culprits | found | first | clear | class shares (prod) "
        "| errors | right | s |",
        "| --- | ---: | --- | --- | --- | --- | --- | --- | --- | --- | --- | ---: |",
    ]
    for r in rows:
        culprits = ", ".join(f"`{c}`" for c in r["culprits"]) or "–"
        lines.append(f"| {r['scenario']} | {r['rows']:,} | {r['planted']} | {r['said']} | {culprits} | "
                     f"{_mark(r['found'])} | {_mark(r['first'])} | {_mark(r['clear'])} | {_rates(r)} | "
                     f"{', '.join(r['errors']) or '–'} | {'yes' if r['right'] else '**no**'} | {r['seconds']:.0f} |")
    wrong = [r for r in rows if not r["right"]]
    if wrong:
        lines += ["", "## Rows that are not right", ""]
        for r in wrong:
            lines.append(f"- **{r['scenario']}** ({r['rows']:,} rows): planted {r['planted']}; the kit said "
                         f"{r['said']}" + (f": “{r['summary']}”" if r["summary"] else "."))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from mlinvestigate import scenarios

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6000, help="rows a side (default 6,000)")
    parser.add_argument("--tiny", type=int, default=300, help="rows a side of the tiny run (0: none)")
    parser.add_argument("--scenarios", default="", help="comma-separated names (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "accuracy.md"))
    args = parser.parse_args(argv)
    names = [n for n in args.scenarios.split(",") if n] or list(scenarios.NAMES)
    sizes = [("full", args.rows)] + ([("tiny", args.tiny)] if args.tiny else [])
    rows = run(names, sizes, args.seed)
    command = "python benchmarks/bench_accuracy.py" + (f" --rows {args.rows}" if args.rows != 6000 else "") + (
        f" --tiny {args.tiny}" if args.tiny != 300 else "")
    out = Path(args.out)
    kept = ""  # the monitoring section bench_monitor.py writes between its markers stays
    if out.exists() and "<!-- monitoring: begin" in (text := out.read_text(encoding="utf-8")):
        kept = "\n" + text[text.index("<!-- monitoring: begin"):]
    out.write_text(markdown(rows, seed=args.seed, command=command) + kept, encoding="utf-8")
    print(f"wrote {args.out}: {sum(r['right'] for r in rows)} of {len(rows)} right", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
