"""Benchmark: grading two-layer-backprop at D = H = 1000 (about a million parameters).

Grades a correct and a wrong submission through the real engine and the
sandboxed worker, on an exercise built here from the shipped one with larger
dimensions (the shipped exercise stays small and quick), and reports:

* the wall time of one grading (median of several runs, warm worker),
* how many times the student's function was called,
* what naive finite differences (two calls per parameter) would cost,
  estimated from the measured time per call,
* with ``--kink-trials K``: how often the correct submission passes the
  finite-difference check for K students with and without the ReLU kink guard.

Usage: ``python benchmarks/bench_backprop.py [--runs 5] [--n 64 --d 1000 --h 1000 --c 10] [--kink-trials 10]``
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dlgrade.graders import engine  # noqa: E402
from dlgrade.graders.inputs import make_cases  # noqa: E402
from dlgrade.graders.runner import Runner  # noqa: E402
from dlgrade.graders.spec import CheckSpec, get_exercise  # noqa: E402
from dlgrade.graders.submission import Submission  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "backprop"
SUBMISSIONS = {"correct": FIXTURES / "correct_vectorised.py", "wrong (no ReLU mask)": FIXTURES / "missing_relu_mask.py"}


def big_exercise(n: int, d: int, h: int, c: int):
    """The shipped exercise with one large case (Xavier-scaled weights) and its three kinds of check."""
    ex = get_exercise("two-layer-backprop")
    case = {"description": f"a large network (N={n}, D={d}, H={h}, C={c})", "args": [
        {"normal": ["N", "D"]},
        {"randint": ["N"], "high": "C", "cover": True},
        {"normal": ["D", "H"], "scale": d ** -0.5},
        {"normal": ["H"], "scale": 0.1},
        {"normal": ["H", "C"], "scale": h ** -0.5},
        {"normal": ["C"], "scale": 0.1},
    ]}
    fd = next(k for k in ex.checks if k.kind == "finite-difference")
    checks = (
        CheckSpec("loss value", "values", 2, cases=("big",), options={"output": [0], "label": "the loss"}),
        CheckSpec("gradients match the reference", "gradients", 4, cases=("big",)),
        CheckSpec("gradients of your own loss", "finite-difference", 2, cases=("big",), options=dict(fd.options)),
    )
    return replace(ex, dims={"N": n, "D": d, "H": h, "C": c}, cases={"big": case}, checks=checks)


def timed_calls(ex, source, runner, student="bench"):
    """Run the plan once through the engine's pieces; returns (wall seconds, {call id: seconds})."""
    names = sorted({nm for k in ex.checks for nm in k.cases})
    ctx = engine.Context(ex, student, make_cases(ex, student, names))
    for k in ex.checks:
        for call in engine.check_module(k.kind).plan(k, ctx):
            ctx.planned.setdefault(call.id, call)
    plan = engine.build_plan(ctx, source.main_name, 0)
    t0 = time.perf_counter()
    outcome = runner.run(ex, plan, source.files)
    wall = time.perf_counter() - t0
    try:
        engine.collect_calls(ctx, outcome)
    finally:
        outcome.cleanup()
    return wall, {cid: res.seconds for cid, res in ctx.calls.items()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--d", type=int, default=1000)
    ap.add_argument("--h", type=int, default=1000)
    ap.add_argument("--c", type=int, default=10)
    ap.add_argument("--kink-trials", type=int, default=0)
    a = ap.parse_args(argv)
    ex = big_exercise(a.n, a.d, a.h, a.c)
    n_params = a.d * a.h + a.h + a.h * a.c + a.c
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"two-layer-backprop at N={a.n}, D={a.d}, H={a.h}, C={a.c}: {n_params:,} parameters")
    with Runner() as runner:
        print(f"isolation: {runner.isolation}")
        for label, path in SUBMISSIONS.items():
            source = Submission(path).source_for(ex.entry)
            engine.grade(ex, source, "bench", runner)  # warm-up (worker start, imports)
            walls, result = [], None
            for _ in range(a.runs):
                t0 = time.perf_counter()
                result = engine.grade(ex, source, "bench", runner)
                walls.append(time.perf_counter() - t0)
            per_call_runs, amortised_runs = [], []
            for _ in range(a.runs):
                job_wall, calls = timed_calls(ex, source, runner)
                fd_calls = [s for cid, s in calls.items() if cid.startswith("fd:")]
                per_call_runs.append(statistics.median(fd_calls))
                amortised_runs.append(job_wall / len(calls))
            per_call, amortised = statistics.median(per_call_runs), statistics.median(amortised_runs)
            naive = 2 * n_params * amortised
            print(f"\n{label}: {path.name}")
            print(f"  score {result.score:g} / {result.max_score:g}, diagnoses {list(result.diagnoses)}")
            for k in result.checks:
                print(f"    {'PASS' if k.passed else 'FAIL'} {k.name}: {k.message}")
            print(f"  grading wall time: median {statistics.median(walls):.2f} s "
                  f"(min {min(walls):.2f}, max {max(walls):.2f}, {a.runs} runs)")
            print(f"  student-function calls: {len(calls)} ({len(fd_calls)} finite-difference)")
            print(f"  one call: {per_call * 1000:.1f} ms in the function, {amortised * 1000:.1f} ms amortised "
                  f"over the job (arguments loaded, results written); medians of {a.runs} jobs")
            print(f"  naive finite differences: 2 x {n_params:,} = {2 * n_params:,} calls "
                  f"~ {naive:,.0f} s ({naive / 3600:.1f} h) at {amortised * 1000:.1f} ms per call; "
                  f"{naive / statistics.median(walls):,.0f}x the whole grading")
        if a.kink_trials:
            kink_trials(ex, runner, a.kink_trials)


def kink_trials(ex, runner, k: int) -> None:
    """The correct submission's finite-difference verdict for k students, with and without the guard."""
    source = Submission(SUBMISSIONS["correct"]).source_for(ex.entry)
    fd = next(c for c in ex.checks if c.kind == "finite-difference")
    unguarded = replace(ex, checks=(replace(fd, options={o: v for o, v in fd.options.items() if o != "kinks"}),))
    guarded = replace(ex, checks=(fd,))
    print(f"\nkink guard, correct submission, {k} students:")
    for label, variant in (("with the guard", guarded), ("without the guard", unguarded)):
        passed = sum(engine.grade(variant, source, f"student-{i}", runner).checks[0].passed for i in range(k))
        print(f"  {label}: finite-difference check passed for {passed} / {k}")


if __name__ == "__main__":
    main()
