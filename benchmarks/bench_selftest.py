"""How long `dlgrade test-exercise --all` takes on dlgrade's own exercises.

Runs ``python -m dlgrade test-exercise --all`` in a fresh process (interpreter start,
imports, the SymPy worker for the symbolic exercises, every row of every exercise)
and reports its wall-clock time and, from its table, how many rows failed, next to
each exercise's own time in one in-process run of the same self-test. Also compares,
on label-smoothing, torch on one thread (what the self-test does) with torch's
default thread count.

    python benchmarks/bench_selftest.py [--runs 1]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    walls = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "dlgrade", "test-exercise", "--all"],
                           capture_output=True, text=True, cwd=ROOT)
        walls.append(time.perf_counter() - t0)
        print(f"test-exercise --all: exit {p.returncode}, {p.stdout.strip().splitlines()[-1]}")
    print(f"test-exercise --all, fresh process: median {statistics.median(walls):.1f} s over {len(walls)} run(s)")

    import torch

    from dlgrade.graders import selftest
    from dlgrade.graders.spec import catalogue, get_exercise

    for t in selftest.self_test_all(list(catalogue().values())):
        print(f"  {t.exercise:<20} {t.seconds:6.2f} s  {len(t.rows):3d} rows, "
              f"{sum(not r.passed for r in t.rows)} failed")

    ex = get_exercise("label-smoothing")
    single = selftest._single_torch_thread
    timings = {}
    for name, choose in (("one thread", single), ("default threads", lambda: torch.get_num_threads())):
        selftest._single_torch_thread = choose
        t0 = time.perf_counter()
        selftest.self_test(ex, seeds=3)
        timings[name] = time.perf_counter() - t0
    selftest._single_torch_thread = single
    print(f"label-smoothing --seeds 3, torch on one thread: {timings['one thread']:.1f} s; default "
          f"({torch.get_num_threads()} threads): {timings['default threads']:.1f} s; ratio "
          f"{timings['default threads'] / timings['one thread']:.1f}x")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
