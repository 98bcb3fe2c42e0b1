"""Time the README's first command as a new user runs it: `mlinvestigate demo` in an empty folder.

    python benchmarks/bench_demo.py [--repeat 3]

Each repetition runs the real command line in a fresh temporary folder and reports wall seconds,
CPU seconds of the command and everything it started (kernels included) and the exit code.
Prints a Markdown table for docs/performance.md. Timings are measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print("| run | wall s | CPU s | exit |\n| ---: | ---: | ---: | ---: |")
    for i in range(1, args.repeat + 1):
        with tempfile.TemporaryDirectory() as folder:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "mlinvestigate", "demo"], cwd=folder,
                                  capture_output=True, text=True)
            wall = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            print(f"| {i} | {wall:.1f} | {cpu:.1f} | {proc.returncode} |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
