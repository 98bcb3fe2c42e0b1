"""Run a command and report, for every process of its tree, CPU seconds and peak memory.

    python benchmarks/proc_tree.py mlinvestigate run /tmp/b1m/incident.yaml --out /tmp/r1m

``mlinvestigate run`` is one process plus its kernels; ``/usr/bin/time`` reports only the largest
of them. This polls ``/proc`` every 0.3 s (Linux) and prints each process's user and system CPU
seconds, its peak resident memory (sampled, so a peak shorter than 0.3 s can be missed), when it
started and ended, and the largest sum of resident memory over the tree at one moment.
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


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    started = time.time()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: dict[int, dict] = {}
    together = 0.0
    while proc.poll() is None:
        now = 0.0
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
            entry = seen.setdefault(pid, {"command": command, "peak": 0.0, "start": time.time() - started})
            entry.update(user=int(fields[11]) / TICK, system=int(fields[12]) / TICK, end=time.time() - started,
                         peak=max(entry["peak"], rss))
        together = max(together, now)
        time.sleep(0.3)
    print(f"wall {time.time() - started:.1f} s, exit {proc.returncode}, largest sum of resident memory "
          f"{together:.0f} MB (memory-mapped files shared by processes count once per process)")
    print("| user s | system s | peak MB | from–to s | process |\n| ---: | ---: | ---: | --- | --- |")
    for entry in seen.values():
        if entry.get("user", 0) + entry.get("system", 0) >= 0.3:
            print(f"| {entry['user']:.1f} | {entry['system']:.1f} | {entry['peak']:.0f} | "
                  f"{entry['start']:.1f}–{entry['end']:.1f} | `{entry['command'].strip()}` |")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
