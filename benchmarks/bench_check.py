"""`dlgrade check` wall time per exercise, as a student meets it (a fresh process).

Each exercise is checked on a correct example submission N times in a fresh
`python -m dlgrade check` process (interpreter start, imports, sandbox start,
grading, report); we report the median and the spread. A numpy-only exercise
must not pay for importing torch.

    python benchmarks/bench_check.py [--runs 7]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "stable-softmax": "examples/class/ada/softmax.py",
    "sigmoid-bce-grad": "examples/class/ada/sigmoid_bce_grad.tex",
    "two-layer-backprop": "examples/class/ada/backprop.py",
    "label-smoothing": "examples/class/ada/label_smoothing.py",
}


def time_check(exercise: str, path: str) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "dlgrade", "check", path, "--exercise", exercise, "--json"],
                       cwd=ROOT, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{exercise}: dlgrade check failed: {r.stderr.strip()[-300:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    from dlgrade.graders.sandbox import sandbox_status
    from dlgrade.graders.spec import catalogue

    known = catalogue()
    print(f"isolation: {'sandbox' if sandbox_status()[0] else 'basic'}; runs per exercise: {args.runs}")
    print("| exercise | median (s) | min (s) | max (s) |")
    print("|---|---|---|---|")
    for ex, path in CASES.items():
        if ex not in known:
            continue
        time_check(ex, path)  # warm the page cache
        times = [time_check(ex, path) for _ in range(args.runs)]
        print(f"| {ex} | {statistics.median(times):.2f} | {min(times):.2f} | {max(times):.2f} |")


if __name__ == "__main__":
    main()
