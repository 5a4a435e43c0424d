"""How long a symbolic answer takes to decide (sigmoid-bce-grad).

* cold: a fresh `python -m dlgrade check answer.txt --exercise sigmoid-bce-grad`
  (interpreter start, imports, SymPy worker start in the sandbox, the SymPy
  import and reference derivation overlapping it, the judgement, the report);
* warm: one more answer graded with a warm runner (fork a job, load the
  evaluator, parse, decide, render), per kind of answer;
* worker start: a fresh SymPy worker (numpy + sympy preloaded);
* in-process: the evaluator's own work, without any process around it.

    python benchmarks/bench_symbolic.py [--runs 7]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ANSWERS = {
    "correct, Python style (simplify)": "1/(1+exp(-z)) - y",
    "correct, LaTeX (simplify)": r"\frac{e^z}{1+e^z} - y",
    "sign flipped (numeric + diagnosis)": "y - sigmoid(z)",
    "MSE gradient (numeric + diagnosis)": "(sigmoid(z) - y)*sigmoid(z)*(1 - sigmoid(z))",
    "parse error (unknown symbol)": "x - y",
    "Piecewise (exact, case by case)": "Piecewise((p - 1, Eq(y, 1)), (p, True))",
}
COMPUTED = "import sympy as sp\nz, y = sp.symbols('z y')\nsigmoid_bce_grad = str(1/(1+sp.exp(-z)) - y)\n"


def med(xs) -> str:
    return f"{statistics.median(xs) * 1000:.0f} ms (min {min(xs) * 1000:.0f}, max {max(xs) * 1000:.0f})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    runs = ap.parse_args().runs
    from dlgrade.graders.api import grade_one
    from dlgrade.graders.runner import Runner
    from dlgrade.graders.sandbox import Worker
    from dlgrade.graders.spec import get_exercise
    from dlgrade.graders.submission import Submission
    from dlgrade.graders import symbolic, symbolic_grade

    tmp = Path(tempfile.mkdtemp(prefix="bench-symbolic-"))
    files = {}
    for i, (label, text) in enumerate(ANSWERS.items()):
        files[label] = tmp / f"answer{i}.{'tex' if chr(92) in text else 'txt'}"
        files[label].write_text(text + "\n")
    files["computed .py string (student file run first)"] = tmp / "computed.py"
    files["computed .py string (student file run first)"].write_text(COMPUTED)

    def cold_check(path: Path, exercise: str) -> list[float]:
        times = []
        for _ in range(runs + 1):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "dlgrade", "check", str(path), "--exercise", exercise,
                            "--json"], cwd=ROOT, check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        return times[1:]  # the first run warms the page cache

    cold = cold_check(files["correct, Python style (simplify)"], "sigmoid-bce-grad")
    baseline = cold_check(ROOT / "tests" / "fixtures" / "softmax" / "correct_shift_max.py", "stable-softmax")

    ex = get_exercise("sigmoid-bce-grad")
    runner = Runner()
    import os

    print(f"isolation: {runner.isolation}; runs: {runs}; {os.cpu_count()} CPUs; "
          f"load average before: {os.getloadavg()[0]:.1f}")
    print()
    print("| what | median |")
    print("|---|---|")
    print(f"| cold `dlgrade check` of one correct .txt answer | {med(cold)} |")
    print(f"| (baseline, same conditions: cold `dlgrade check` of stable-softmax) | {med(baseline)} |")
    starts = []
    for _ in range(3):
        w = Worker(runner.isolation, preload=symbolic_grade.PRELOAD)
        t0 = time.perf_counter()
        w.start()
        starts.append(time.perf_counter() - t0)
        w.close()
    print(f"| SymPy worker start (numpy + sympy preloaded) | {med(starts)} |")
    try:
        for label, path in files.items():
            sub = Submission(path)
            grade_one(ex, sub, runner, direct_text=path.suffix != ".py")  # warm-up
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                r = grade_one(ex, sub, runner, direct_text=path.suffix != ".py")
                times.append(time.perf_counter() - t0)
            print(f"| warm: {label} -> {r.score:g}/10 {list(r.diagnoses) or ''} | {med(times)} |")
    finally:
        runner.close()
    payload = symbolic_grade.payload_for(ex, ANSWERS["correct, Python style (simplify)"], 1)
    with Runner() as fresh:
        jobs = []
        for _ in range(runs + 1):
            t0 = time.perf_counter()
            symbolic_grade.run_evaluator(fresh, payload, ex)
            jobs.append(time.perf_counter() - t0)
    print(f"| warm: the evaluator job alone (fork, load, decide), correct answer | {med(jobs[1:])} |")
    symbolic.evaluate(payload)
    inproc = []
    for _ in range(runs):
        t0 = time.perf_counter()
        json.loads(symbolic.evaluate(payload))
        inproc.append(time.perf_counter() - t0)
    print(f"| in-process evaluate() of a correct answer | {med(inproc)} |")


if __name__ == "__main__":
    main()
