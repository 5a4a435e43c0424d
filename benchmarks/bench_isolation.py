"""What isolation costs per grading: sandbox (warm) vs basic (warm) vs a fresh process.

Grades a correct ``stable-softmax`` submission (12 calls) N times in each mode
and reports medians, the ratios between them, and how long a worker takes to
start in each mode. "fresh" starts a plain subprocess for every grading
(interpreter start, numpy import, one job, exit), which is what a grader
without warm workers pays.

    python benchmarks/bench_isolation.py            # 30 gradings per mode
    python benchmarks/bench_isolation.py -n 10 --json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from graders.api import grade_one  # noqa: E402
from graders.runner import Runner  # noqa: E402
from graders.sandbox import Worker, sandbox_status  # noqa: E402
from graders.spec import get_exercise  # noqa: E402
from graders.submission import Submission  # noqa: E402

SUBMISSION = ROOT / "tests" / "fixtures" / "softmax" / "correct_shift_max.py"


class FreshProcessRunner:
    """A Runner that starts (and stops) a plain worker process for every grading."""

    isolation = "basic"
    warnings: list = []

    def __init__(self):
        self.previous = None

    def run(self, exercise, plan, files, gpu=False):
        self.close()  # the previous grading has read its files by now
        w = self.previous = Worker("basic", preload=exercise.preload)
        w.start()
        outcome = w.run(plan, files, exercise.limits)
        w._stop()
        return outcome

    def close(self):
        if self.previous is not None:
            self.previous.close()
            self.previous = None


def time_gradings(runner, n: int) -> list[float]:
    ex = get_exercise("stable-softmax")
    sub = Submission(SUBMISSION)
    grade_one(ex, sub, runner)  # warm-up: starts the worker, fills caches
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = grade_one(ex, sub, runner)
        times.append(time.perf_counter() - t0)
        assert r.score == r.max_score, r
    return times


def time_starts(isolation: str, n: int) -> list[float]:
    times = []
    for _ in range(n):
        w = Worker(isolation, preload=("numpy",))
        t0 = time.perf_counter()
        w.start()
        times.append(time.perf_counter() - t0)
        w.close()
    return times


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f" {int(f.readline().split()[1]) / 2**20:.0f} GB RAM,"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{cpu}, {os.cpu_count()} cores,{mem} Linux {platform.release()}, Python {platform.python_version()}, "
            f"{'root' if os.geteuid() == 0 else 'non-root'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=30, help="gradings per mode (default 30)")
    ap.add_argument("--starts", type=int, default=10, help="worker starts per mode (default 10)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()

    modes = ["sandbox", "basic"] if sandbox_status()[0] else ["basic"]
    grading, starts = {}, {}
    for mode in modes:
        with Runner(isolation=mode) as runner:
            grading[mode] = statistics.median(time_gradings(runner, args.n))
        starts[mode] = statistics.median(time_starts(mode, args.starts))
    fresh = FreshProcessRunner()
    grading["fresh"] = statistics.median(time_gradings(fresh, args.n))
    fresh.close()
    figures = {"machine": machine(), "gradings_per_mode": args.n, "median_grading_s": grading,
               "median_worker_start_s": starts}
    if "sandbox" in grading:
        figures["sandbox_over_basic"] = grading["sandbox"] / grading["basic"]
        figures["fresh_over_sandbox"] = grading["fresh"] / grading["sandbox"]
    figures["fresh_over_basic"] = grading["fresh"] / grading["basic"]
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"machine: {figures['machine']}")
    print(f"median per grading over {args.n} gradings of stable-softmax (12 calls):")
    for mode, t in grading.items():
        print(f"  {mode:<8} {t * 1000:8.1f} ms")
    for key in ("sandbox_over_basic", "fresh_over_sandbox", "fresh_over_basic"):
        if key in figures:
            print(f"  {key.replace('_', ' ')}: {figures[key]:.2f}x")
    print(f"median worker start-up over {args.starts} starts:")
    for mode, t in starts.items():
        print(f"  {mode:<8} {t * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
