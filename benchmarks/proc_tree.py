"""Run a command and report, for every process of its tree, CPU seconds and peak memory.

    python benchmarks/proc_tree.py mlinvestigate run /tmp/b1m/incident.yaml --out /tmp/r1m

``mlinvestigate run`` is one process plus its kernels; ``/usr/bin/time`` reports only the largest
of them. This polls ``/proc`` every 0.3 s (Linux) and prints each process's user and system CPU
seconds, its peak resident memory (sampled, so a peak shorter than 0.3 s can be missed), when it
started and ended, and the largest sum of memory over the tree at one moment, twice: resident
memory (a memory-mapped file read by three processes counts three times) and proportional set
size (``Pss`` of /proc/PID/smaps_rollup: a page shared by k processes counts 1/k in each, so the
sum is the memory the run holds).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree(pid: int) -> list[int]:
    out = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                for child in fh.read().split():
                    out += _tree(int(child))
    except OSError:
        pass
    return out


def _pss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            return next((int(line.split()[1]) for line in fh if line.startswith("Pss:")), 0) / 1024
    except OSError:
        return 0.0


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    started = time.time()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: dict[int, dict] = {}
    together = together_pss = 0.0
    at_peak: dict[int, float] = {}
    while proc.poll() is None:
        now = now_pss = 0.0
        shares: dict[int, float] = {}
        for pid in _tree(proc.pid):
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{pid}/cmdline") as fh:
                    command = fh.read().replace("\0", " ")[:80]
            except OSError:
                continue
            rss = int(fields[21]) * PAGE / 2**20
            now += rss
            shares[pid] = _pss_mb(pid)
            now_pss += shares[pid]
            entry = seen.setdefault(pid, {"command": command, "peak": 0.0, "start": time.time() - started})
            entry.update(user=int(fields[11]) / TICK, system=int(fields[12]) / TICK, end=time.time() - started,
                         peak=max(entry["peak"], rss))
        if now_pss > together_pss:
            at_peak = {pid: (mb, time.time() - started) for pid, mb in shares.items()}
        together, together_pss = max(together, now), max(together_pss, now_pss)
        time.sleep(0.3)
    print(f"wall {time.time() - started:.1f} s, exit {proc.returncode}, largest sum of resident memory "
          f"{together:.0f} MB (memory-mapped files shared by processes count once per process); largest sum "
          f"of proportional set size {together_pss:.0f} MB (shared pages split between their processes)")
    print("| user s | system s | peak MB | Pss at the largest sum (MB, at s) | from–to s | process |\n"
          "| ---: | ---: | ---: | ---: | --- | --- |")
    for pid, entry in seen.items():
        if entry.get("user", 0) + entry.get("system", 0) >= 0.3:
            mb, t = at_peak.get(pid, (0.0, 0.0))
            print(f"| {entry['user']:.1f} | {entry['system']:.1f} | {entry['peak']:.0f} | {mb:.0f} at {t:.1f} | "
                  f"{entry['start']:.1f}–{entry['end']:.1f} | `{entry['command'].strip()}` |")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
