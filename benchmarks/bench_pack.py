"""The course pack: `dlgrade check` of each pack exercise, and a class graded over the whole pack.

1. Each of the fifteen pack exercises is checked on one of its correct fixtures in a
   fresh `python -m dlgrade check` process (interpreter start, imports, sandbox start,
   grading, report), ``--runs`` times; median, min, max. The target: at most 1 s for
   every numpy exercise whose grading does not run the student's own training
   (`xor-training` trains a network in the sandbox: its time is the trainer's).
2. A class of ``--students`` folders, each holding one file per pack exercise (a correct
   or a wrong fixture, drawn with a fixed seed), graded with `grade_class` (sandbox on)
   from a cold pool; wall time, throughput, statuses and the score of every
   (fixture, exercise) pair compared with the first grading of that pair (they must
   agree under any student id, except where a fixture's score depends on its inputs).

    python benchmarks/bench_pack.py [--runs 5] [--students 40] [--jobs 2]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dlgrade.graders.batch import grade_class  # noqa: E402
from dlgrade.reports.class_pages import HTML_PAGES  # noqa: E402
from dlgrade.graders.sandbox import sandbox_status  # noqa: E402
from dlgrade.graders.spec import get_exercise  # noqa: E402

PACK = ROOT / "tests" / "fixtures" / "pack"
EXERCISES = ["sigmoid-mse-grad", "softmax-ce-grad", "activation-grads", "huber-loss", "hinge-loss",
             "momentum-step", "adam-step", "rmsprop-step", "dropout", "batchnorm-forward", "batchnorm-backward",
             "l2-backprop", "xavier-init", "standardise", "xor-training"]
TRAINS = {"xor-training"}  # its grading runs the student's training


def fixtures(ex: str) -> tuple[list[Path], list[Path]]:
    files = sorted(p for p in (PACK / ex).iterdir() if p.suffix in (".py", ".txt", ".tex"))
    return [p for p in files if p.name.startswith("correct_")], [p for p in files if not p.name.startswith("correct_")]


def time_check(ex: str, path: Path) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "dlgrade", "check", str(path), "--exercise", ex, "--json"],
                       cwd=ROOT, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{ex}: dlgrade check failed: {r.stderr.strip()[-300:]}")
    return dt


BASELINE = ("stable-softmax", ROOT / "examples" / "class" / "ada" / "softmax.py")  # bench_check.py's


def per_exercise(runs: int) -> list[str]:
    """Rounds of every exercise, the baseline first in each round (so load spikes hit all
    alike); medians, and each median's ratio to the baseline's from the same run."""
    todo = [BASELINE] + [(ex, fixtures(ex)[0][0]) for ex in EXERCISES]
    for ex, path in todo:
        time_check(ex, path)  # the page cache
    times: dict[str, list[float]] = {ex: [] for ex, _ in todo}
    for _ in range(runs):
        for ex, path in todo:
            times[ex].append(time_check(ex, path))
    base = statistics.median(times[BASELINE[0]])
    lines = [f"| exercise | framework | median (s) | min (s) | max (s) | ratio to {BASELINE[0]} |",
             "|---|---|---|---|---|---|"]
    slow = []
    for ex, _ in todo:
        med = statistics.median(times[ex])
        fw = get_exercise(ex).framework
        if fw == "numpy" and ex not in TRAINS and ex != BASELINE[0] and med > 1.0:
            slow.append(ex)
        lines.append(f"| {ex} | {fw} | {med:.2f} | {min(times[ex]):.2f} | {max(times[ex]):.2f} | {med / base:.2f} |")
    lines.append("")
    lines.append("numpy exercises over 1 s (median): " + (", ".join(slow) if slow else "none"))
    return lines


def write_class(root: Path, students: int, seed: int) -> dict[tuple[str, str], str]:
    """One folder per student, one file per exercise; returns (student, exercise) -> fixture name."""
    rng = random.Random(seed)
    picks = {}
    for i in range(students):
        sid = f"s{i:03d}"
        folder = root / sid
        folder.mkdir(parents=True)
        for ex in EXERCISES:
            good, bad = fixtures(ex)
            path = rng.choice(good) if rng.random() < 0.6 else rng.choice(bad)
            entry = get_exercise(ex).entry
            suffix = ".txt" if path.suffix in (".txt", ".tex") else ".py"
            (folder / f"{entry}{suffix}").write_text(path.read_text())
            picks[(sid, ex)] = path.name
    return picks


def class_benchmark(students: int, jobs: int, seed: int) -> list[str]:
    work = Path(tempfile.mkdtemp(prefix="dlgrade-bench-pack-"))
    try:
        subs, out = work / "class", work / "out"
        picks = write_class(subs, students, seed)
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        s = grade_class(subs, out, jobs=jobs, exercise_ids=EXERCISES, pages=HTML_PAGES)
        wall = time.perf_counter() - t0
        load_after = os.getloadavg()[0]
        results = json.loads((out / "results.json").read_text())
        statuses: dict[str, int] = {}
        seen: dict[tuple[str, str], set] = {}
        for r in results:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
            seen.setdefault((r["exercise"], picks[(r["student"], r["exercise"])]), set()).add(r["score"])
        full = sum(1 for r in results if picks[(r["student"], r["exercise"])].startswith("correct_")
                   and r["score"] == r["max_score"])
        n_correct = sum(1 for name in picks.values() if name.startswith("correct_"))
        varying = sorted(f"{ex}/{name}" for (ex, name), scores in seen.items() if len(scores) > 1)
        return [
            f"Class: {students} students, one folder each with one file per pack exercise "
            f"({len(EXERCISES)} exercises, {s.gradings} gradings: {n_correct} correct fixtures, "
            f"{s.gradings - n_correct} wrong ones, drawn with seed {seed}); sandbox on; --jobs {jobs}; "
            f"1-min load average {load_before:.2f} before, {load_after:.2f} after.",
            "",
            "| measure | value |",
            "|---|---|",
            f"| whole class, cold pool | {wall:.1f} s |",
            f"| throughput | {s.gradings / wall:.1f} gradings/s |",
            f"| statuses | {', '.join(f'{v} {k}' for k, v in sorted(statuses.items()))} |",
            f"| correct fixtures with full marks | {full} / {n_correct} |",
            f"| fixtures whose score differs between students | {', '.join(varying) if varying else 'none'} |",
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--students", type=int, default=40)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--skip-checks", action="store_true", help="only the class benchmark")
    ap.add_argument("--skip-class", action="store_true", help="only the per-exercise checks")
    args = ap.parse_args()
    ok, why = sandbox_status()
    if not ok:
        sys.exit(f"the benchmark grades with the sandbox on, and it is unavailable here: {why}")
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    print(f"Machine: {os.cpu_count()} CPUs ({cpu}), Python {sys.version.split()[0]}; "
          f"1-min load average {os.getloadavg()[0]:.2f} at the start.\n")
    if not args.skip_checks:
        print(f"`dlgrade check`, a fresh process, {args.runs} runs per exercise:\n")
        print("\n".join(per_exercise(args.runs)))
        print()
    if not args.skip_class:
        print("\n".join(class_benchmark(args.students, args.jobs, args.seed)))


if __name__ == "__main__":
    main()
