"""Benchmark: what grading the torch exercise costs, and what the GPU path adds.

Reports, for ``label-smoothing`` and a correct submission:

* ``dlgrade check`` from a cold start (a fresh process: interpreter, torch
  import in the grader and in the worker, one grading), median of ``--runs``;
* one grading with a warm worker (what each student costs in a batch), median
  of ``--runs``, three ways: no GPU (the GPU check skipped), a simulated
  accelerator on the CPU (``DLGRADE_GPU_DEVICE=cpu``: the GPU job runs as a
  second job, as on a GPU machine), and the meta device
  (``DLGRADE_GPU_DEVICE=meta``);
* the device probe's own cost: its call on the meta device against the same
  call on the CPU, as the worker timed them (the meta device's first-use
  import is paid once when the worker starts, not per student).

Usage: ``python benchmarks/bench_label_smoothing.py [--runs 5]``
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dlgrade.graders import engine  # noqa: E402
from dlgrade.graders.api import grade_one  # noqa: E402
from dlgrade.graders.runner import Runner  # noqa: E402
from dlgrade.graders.spec import get_exercise  # noqa: E402
from dlgrade.graders.submission import Submission  # noqa: E402

SUBMISSION = ROOT / "tests" / "fixtures" / "label_smoothing" / "correct_one_hot.py"


def cold_check(runs: int) -> list[float]:
    times = []
    env = {**os.environ, "DLGRADE_GPU_DEVICE": "none"}
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dlgrade", "check", str(SUBMISSION), "--json"], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return times


CALL_SECONDS: dict[str, list[float]] = {}
_collect = engine.collect_calls


def _timed_collect(ctx, outcome):
    _collect(ctx, outcome)
    for cid, res in ctx.calls.items():
        CALL_SECONDS.setdefault(cid, []).append(res.seconds)


engine.collect_calls = _timed_collect


def warm_grades(runs: int, device: str) -> tuple[list[float], str]:
    """Wall time of each grading with a warm worker, and the isolation used."""
    os.environ["DLGRADE_GPU_DEVICE"] = device
    ex = get_exercise("label-smoothing")
    times = []
    with Runner() as runner:
        grade_one(ex, Submission(SUBMISSION, student="warm-up"), runner)
        for i in range(runs):
            t0 = time.perf_counter()
            r = grade_one(ex, Submission(SUBMISSION, student=f"s{i}"), runner)
            times.append(time.perf_counter() - t0)
            assert r.score == r.max_score, [c.message for c in r.checks]
        isolation = runner.isolation
    return times, isolation


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    cold = cold_check(args.runs)
    print(f"dlgrade check (cold, one process per run): median {statistics.median(cold):.2f} s "
          f"(min {min(cold):.2f}, max {max(cold):.2f})")
    for device, what in (("none", "no GPU (GPU check skipped)"),
                         ("cpu", "simulated GPU on the CPU (a second job)"),
                         ("meta", "simulated GPU on the meta device (a second job)")):
        times, isolation = warm_grades(args.runs, device)
        print(f"warm grading, {what}: median {statistics.median(times):.3f} s "
              f"(min {min(times):.3f}, max {max(times):.3f}; isolation {isolation})")
    meta, cpu = CALL_SECONDS["probe:random"], CALL_SECONDS["probe-cpu:random"]
    print(f"device probe call: median {statistics.median(meta) * 1e3:.2f} ms on the meta device "
          f"(device tracker on) vs {statistics.median(cpu) * 1e3:.2f} ms on the CPU, "
          f"over {len(meta)} gradings")


if __name__ == "__main__":
    main()
