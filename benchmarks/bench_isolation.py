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

from dlgrade.graders.api import grade_one  # noqa: E402
from dlgrade.graders.runner import Runner  # noqa: E402
from dlgrade.graders.sandbox import Worker, sandbox_status  # noqa: E402
from dlgrade.graders.spec import get_exercise  # noqa: E402
from dlgrade.graders.submission import Submission  # noqa: E402

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


class Timed:
    """Wraps a runner to time its ``run`` (the job's round trip) apart from the grading."""

    def __init__(self, runner):
        self.runner, self.isolation, self.warnings, self.last = runner, runner.isolation, [], 0.0

    def run(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self.runner.run(*args, **kwargs)
        finally:
            self.last = time.perf_counter() - t0


def time_gradings(runners: dict, n: int) -> tuple[dict, dict]:
    """Round-robin over the modes (so that background load hits them alike);
    per mode, the whole grading's times and the job round trips' times."""
    ex = get_exercise("stable-softmax")
    sub = Submission(SUBMISSION)
    timed = {mode: Timed(r) for mode, r in runners.items()}
    for t in timed.values():
        grade_one(ex, sub, t)  # warm-up: starts the worker, fills caches
    total = {mode: [] for mode in runners}
    job = {mode: [] for mode in runners}
    for _ in range(n):
        for mode, t in timed.items():
            t0 = time.perf_counter()
            r = grade_one(ex, sub, t)
            total[mode].append(time.perf_counter() - t0)
            job[mode].append(t.last)
            assert r.score == r.max_score, r
    return total, job


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
    runners = {mode: Runner(isolation=mode) for mode in modes}
    runners["fresh"] = FreshProcessRunner()
    try:
        total, job = time_gradings(runners, args.n)
    finally:
        for r in runners.values():
            r.close()
    grading = {mode: statistics.median(v) for mode, v in total.items()}
    round_trip = {mode: statistics.median(v) for mode, v in job.items()}
    starts = {mode: statistics.median(time_starts(mode, args.starts)) for mode in modes}
    figures = {"machine": machine(), "load_average": os.getloadavg()[0], "gradings_per_mode": args.n,
               "median_grading_s": grading, "median_job_round_trip_s": round_trip,
               "median_worker_start_s": starts}
    if "sandbox" in grading:
        figures["sandbox_over_basic"] = grading["sandbox"] / grading["basic"]
        figures["fresh_over_sandbox"] = grading["fresh"] / grading["sandbox"]
    figures["fresh_over_basic"] = grading["fresh"] / grading["basic"]
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"machine: {figures['machine']}")
    print(f"load average during the run: {figures['load_average']:.2f}")
    print(f"median over {args.n} gradings of stable-softmax (12 calls), modes interleaved:")
    print(f"  {'mode':<8} {'grading':>10} {'job round trip':>16}")
    for mode, t in grading.items():
        print(f"  {mode:<8} {t * 1000:7.1f} ms {round_trip[mode] * 1000:13.1f} ms")
    for key in ("sandbox_over_basic", "fresh_over_sandbox", "fresh_over_basic"):
        if key in figures:
            print(f"  {key.replace('_', ' ')}: {figures[key]:.2f}x")
    print(f"median worker start-up over {args.starts} starts:")
    for mode, t in starts.items():
        print(f"  {mode:<8} {t * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
