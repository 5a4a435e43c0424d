"""What `[rules] forbid_imports` costs a grading: the same exercise with and without it.

For each numpy exercise that forbids imports, a correct submission is graded
in one warm runner, alternating the exercise as shipped (source scan in the
grader, import guard in the worker) and the same exercise without rules. The
first rounds warm up; we report the medians of the rest and their ratio (the
figure to read on a noisy machine), and the 1-minute load average.

    python benchmarks/bench_rules.py [--rounds 24]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CASES = {  # a Python-loop submission: every call of the entry runs many Python frames
    "stable-softmax": "tests/fixtures/softmax/correct_loops.py",
    "two-layer-backprop": "tests/fixtures/backprop/correct_loops.py",
}
WARMUP = 4


def main() -> None:
    from dlgrade.graders.api import grade_one
    from dlgrade.graders.runner import Runner
    from dlgrade.graders.spec import Rules, get_exercise
    from dlgrade.graders.submission import Submission

    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=24)
    args = ap.parse_args()
    print("| exercise | with rules (ms) | without (ms) | ratio |\n|---|---|---|---|")
    with Runner() as runner:
        for ex_id, path in CASES.items():
            ruled = get_exercise(ex_id)
            assert ruled.rules.forbid_imports, ex_id
            plain = dataclasses.replace(ruled, rules=Rules())
            times: dict[str, list[float]] = {"rules": [], "none": []}
            for i in range(args.rounds):
                order = [("rules", ruled), ("none", plain)]
                for name, ex in order if i % 2 else order[::-1]:
                    t0 = time.perf_counter()
                    r = grade_one(ex, Submission(ROOT / path), runner)
                    times[name].append(time.perf_counter() - t0)
                    if r.score != r.max_score:
                        raise SystemExit(f"{ex_id} ({name}): scored {r.score} of {r.max_score}")
            med = {k: statistics.median(v[WARMUP:]) for k, v in times.items()}
            print(f"| {ex_id} | {med['rules'] * 1000:.1f} | {med['none'] * 1000:.1f} | "
                  f"{med['rules'] / med['none']:.2f} |")
        print(f"\nisolation: {runner.isolation}; 1-minute load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
