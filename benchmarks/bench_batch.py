"""Benchmark `dlgrade grade`: a generated class graded with the sandbox on.

Generates a class (default 200 students) answering the four core exercises of
CONTRACT §1 (sigmoid-bce-grad, stable-softmax, two-layer-backprop,
label-smoothing) in the forms students hand in (one .py file, a notebook, a
folder with one file per exercise and the derivation in a .txt) and of mixed
quality (correct in several styles, the classic mistakes, crashing, and a few
hanging), then measures:

* the wall time to grade the whole class, each round from a cold pool (workers
  started, every student graded with --force), median over the rounds;
* gradings per second (one grading = one student x one exercise);
* a fresh-interpreter-per-grading baseline in the same run: one
  `python -m dlgrade check STUDENT --exercise ID --json` process per grading,
  sandbox on, as many at once as the batch has jobs, on a sample of the class
  (hanging submissions left out of the sample, which favours the baseline);
* the grader process's RSS at the 100th and the 1000th grading (the class is
  graded again until 1000 gradings are reached);
* a re-run with nothing changed (everything skipped).

Exercises of the four that this checkout lacks are left out: found-mode
grading only grades exercises in the catalogue. Hanging submissions would each
hold a grading thread for the exercise's full time limit (10 s), so the
benchmark grades with a copy of the exercise folders whose ``time_limit`` is
``--hang-limit`` seconds (default 2) passed as ``--exercises-dir``; nothing
else in them changes.

    python benchmarks/bench_batch.py                  # 200 students, jobs = CPUs
    python benchmarks/bench_batch.py --students 50 --rounds 1 --keep /tmp/class
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dlgrade.graders import sandbox  # noqa: E402
from dlgrade.graders.batch import Progress, grade_class  # noqa: E402
from dlgrade.reports.class_pages import HTML_PAGES  # noqa: E402
from dlgrade.graders.sandbox import sandbox_status, scratch_root  # noqa: E402
from dlgrade.graders.spec import catalogue  # noqa: E402

CORE = ("sigmoid-bce-grad", "stable-softmax", "two-layer-backprop", "label-smoothing")

# --------------------------------------------------------------------------- submissions
# Each exercise: variant name -> (quality, code). quality is correct|wrong|crash|hang.

SOFTMAX = {
    "shift-max": ("correct", '''
def softmax(z, axis=-1):
    z = np.asarray(z)
    shifted = z - np.max(z, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)
'''),
    "logsumexp": ("correct", '''
def softmax(z, axis=-1):
    m = np.max(z, axis=axis, keepdims=True)
    lse = m + np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))
    return np.exp(z - lse)
'''),
    "naive-overflow": ("wrong", '''
def softmax(z, axis=-1):
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)
'''),
    "wrong-axis": ("wrong", '''
def softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)
'''),
    "mutates-input": ("wrong", '''
def softmax(z, axis=-1):
    z -= np.max(z, axis=axis, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=axis, keepdims=True)
    return z
'''),
    "raises": ("crash", '''
def softmax(z, axis=-1):
    raise NotImplementedError("TODO: finish before the deadline")
'''),
    "hangs": ("hang", '''
def softmax(z, axis=-1):
    steps = 0
    while True:  # "converging" forever
        steps += 1
'''),
}

BACKPROP_CORRECT = '''
def two_layer_backprop(X, y, W1, b1, W2, b2):
    N = X.shape[0]
    a = X @ W1 + b1
    h = np.maximum(a, 0)
    s = h @ W2 + b2
    s = s - s.max(axis=1, keepdims=True)
    logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    loss = -logp[np.arange(N), y].mean()
    p = np.exp(logp)
    ds = p.copy()
    ds[np.arange(N), y] -= 1
    ds /= N
    dW2 = h.T @ ds
    db2 = ds.sum(axis=0)
    dh = ds @ W2.T
    da = dh * (a > 0)
    dW1 = X.T @ da
    db1 = da.sum(axis=0)
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
'''


def _backprop(*edits: tuple[str, str]) -> str:
    code = BACKPROP_CORRECT
    for old, new in edits:
        assert old in code, old
        code = code.replace(old, new)
    return code


BACKPROP = {
    "vectorized": ("correct", BACKPROP_CORRECT),
    "one-hot": ("correct", _backprop(("    ds = p.copy()\n    ds[np.arange(N), y] -= 1\n",
                                      "    onehot = np.eye(p.shape[1])[y]\n    ds = p - onehot\n"))),
    "missing-batch-mean": ("wrong", _backprop(("    ds /= N\n", ""))),
    "missing-relu-mask": ("wrong", _backprop(("da = dh * (a > 0)", "da = dh"))),
    "transposed": ("wrong", _backprop(("dW1 = X.T @ da", "dW1 = (X.T @ da).T"))),
    "bias-not-summed": ("wrong", _backprop(("db2 = ds.sum(axis=0)", "db2 = ds"))),
    "sign-flipped": ("wrong", _backprop(("ds[np.arange(N), y] -= 1", "ds[np.arange(N), y] -= 1\n    ds = -ds"))),
    "raises": ("crash", _backprop(("    dW2 = h.T @ ds\n", "    dW2 = h.T @ dscores\n"))),
    "hangs": ("hang", _backprop(("    N = X.shape[0]\n", "    N = X.shape[0]\n    while N > 0:\n        N = N + 1\n"))),
}

LABEL_SMOOTHING = {
    "log-softmax": ("correct", '''
def label_smoothing_ce(logits, target, epsilon):
    C = logits.shape[-1]
    logp = torch.log_softmax(logits, dim=-1)
    q = torch.full_like(logp, epsilon / C)
    q.scatter_(1, target.unsqueeze(1), 1 - epsilon + epsilon / C)
    return -(q * logp).sum(dim=-1).mean()
'''),
    "functional": ("correct", '''
def label_smoothing_ce(logits, target, epsilon):
    return torch.nn.functional.cross_entropy(logits, target, label_smoothing=epsilon)
'''),
    "over-c-minus-1": ("wrong", '''
def label_smoothing_ce(logits, target, epsilon):
    C = logits.shape[-1]
    logp = torch.log_softmax(logits, dim=-1)
    q = torch.full_like(logp, epsilon / (C - 1))
    q.scatter_(1, target.unsqueeze(1), 1 - epsilon)
    return -(q * logp).sum(dim=-1).mean()
'''),
    "not-applied": ("wrong", '''
def label_smoothing_ce(logits, target, epsilon):
    return torch.nn.functional.cross_entropy(logits, target)
'''),
    "not-differentiable": ("wrong", '''
def label_smoothing_ce(logits, target, epsilon):
    z = logits.detach().cpu().numpy()
    t = target.cpu().numpy()
    C = z.shape[-1]
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    q = np.full_like(logp, epsilon / C)
    q[np.arange(len(t)), t] += 1 - epsilon
    return torch.tensor(-(q * logp).sum(axis=1).mean())
'''),
    "raises": ("crash", '''
def label_smoothing_ce(logits, target, epsilon):
    q = torch.nn.functional.one_hot(target)
    return -(q * torch.log_softmax(logits)).sum()
'''),
    "hangs": ("hang", '''
def label_smoothing_ce(logits, target, epsilon):
    while True:
        logits = logits + 0
'''),
}

SIGMOID_BCE = {
    "sympy": ("correct", "sigmoid(z) - y"),
    "latex-sigma": ("correct", r"\sigma(z) - y"),
    "explicit": ("correct", "1/(1+exp(-z)) - y"),
    "latex-frac": ("correct", r"\frac{1}{1+e^{-z}} - y"),
    "sign-flipped": ("wrong", "y - sigmoid(z)"),
    "sigmoid-derivative-only": ("wrong", "sigmoid(z)*(1 - sigmoid(z))"),
    "missing-chain-rule": ("wrong", "-(y/sigmoid(z) - (1 - y)/(1 - sigmoid(z)))"),
    "mse-gradient": ("wrong", "(sigmoid(z) - y)*sigmoid(z)*(1 - sigmoid(z))"),
    "unbalanced": ("crash", "sigmoid(z - y"),
}

EXERCISE_VARIANTS = {"stable-softmax": SOFTMAX, "two-layer-backprop": BACKPROP,
                     "label-smoothing": LABEL_SMOOTHING, "sigmoid-bce-grad": SIGMOID_BCE}
QUALITY_WEIGHTS = {"correct": 0.55, "wrong": 0.35, "crash": 0.10}


def _pick(rng: random.Random, variants: dict, quality: str) -> str:
    names = [n for n, (q, _) in variants.items() if q == quality]
    return rng.choice(names)


def plan_class(n_students: int, hangs: int, seed: int) -> list[dict]:
    """Per student: its form and, per exercise, the variant it submits."""
    rng = random.Random(seed)
    students = []
    for i in range(n_students):
        form = rng.choices(["py", "ipynb", "split"], weights=[0.6, 0.2, 0.2])[0]
        picks = {}
        for ex, variants in EXERCISE_VARIANTS.items():
            quality = rng.choices(list(QUALITY_WEIGHTS), weights=list(QUALITY_WEIGHTS.values()))[0]
            picks[ex] = _pick(rng, variants, quality)
        students.append({"id": f"student{i:04d}", "form": form, "picks": picks})
    hangable = [ex for ex, v in EXERCISE_VARIANTS.items() if "hangs" in v]
    for k, idx in enumerate(rng.sample(range(n_students), min(hangs, n_students))):
        students[idx]["picks"][hangable[k % len(hangable)]] = "hangs"
    return students


HEADER = "import numpy as np\nimport torch\n"


def write_student(root: Path, st: dict) -> None:
    picks = st["picks"]
    code = {ex: EXERCISE_VARIANTS[ex][picks[ex]][1].strip() + "\n" for ex in EXERCISE_VARIANTS}
    expr = code.pop("sigmoid-bce-grad").strip()
    folder = root / st["id"]
    folder.mkdir(parents=True)
    if st["form"] == "py":
        parts = [HEADER, f"sigmoid_bce_grad = r\"{expr}\"\n", *code.values()]
        (folder / "hw1.py").write_text("\n\n".join(parts))
    elif st["form"] == "ipynb":
        cells = [_cell("markdown", "# Homework 1\nName: " + st["id"]),
                 _cell("code", "%matplotlib inline\n" + HEADER),
                 _cell("markdown", "## 1. The derivative"),
                 _cell("code", f"sigmoid_bce_grad = r\"{expr}\""),
                 *[_cell("code", c) for c in code.values()],
                 _cell("code", "!nvidia-smi\nprint(\"done\")")]
        nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
              "nbformat": 4, "nbformat_minor": 5}
        (folder / "hw1.ipynb").write_text(json.dumps(nb, indent=1))
    else:
        (folder / "sigmoid_bce_grad.txt").write_text(f"$${expr}$$\n")
        (folder / "softmax.py").write_text("import numpy as np\n\n\n" + code["stable-softmax"])
        (folder / "backprop.py").write_text("import numpy as np\n\n\n" + code["two-layer-backprop"])
        (folder / "label_smoothing.py").write_text("import numpy as np\nimport torch\n\n\n"
                                                   + code["label-smoothing"])


def _cell(kind: str, source: str) -> dict:
    cell = {"cell_type": kind, "metadata": {}, "source": source.splitlines(keepends=True)}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def short_limit_copy(exercises, dest: Path, seconds: float) -> Path:
    """Copies of the exercise folders with ``time_limit = seconds`` (an --exercises-dir)."""
    for ex in exercises:
        folder = dest / ex.folder.name
        shutil.copytree(ex.folder, folder, ignore=shutil.ignore_patterns("__pycache__"))
        spec = folder / "spec.toml"
        text = spec.read_text()
        line = f"time_limit = {seconds:g}"
        if re.search(r"(?m)^time_limit\s*=", text):
            text = re.sub(r"(?m)^time_limit\s*=.*$", line, text)
        else:
            text = f"{line}\n{text}"
        spec.write_text(text)
    return dest


# --------------------------------------------------------------------------- measuring


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class RssProbe(Progress):
    """Counts gradings across rounds and notes the grader's RSS at given counts."""

    def __init__(self, marks=(100, 1000)):
        self.count = 0
        self.pending = sorted(marks)
        self.seen: dict[int, tuple[int, float]] = {}

    def advance(self, report):
        self.count += len(report.results)
        while self.pending and self.count >= self.pending[0]:
            self.seen[self.pending.pop(0)] = (self.count, rss_mb())


class CpuMeter:
    """CPU seconds of the grader process, of the sandboxed jobs (as each zygote
    measured its forked child) and of zygote start-ups, while active."""

    def __init__(self):
        self.jobs_cpu = 0.0
        self.jobs = 0
        self.starts = 0
        self.start_wall = 0.0
        run, start = sandbox.Worker.run, sandbox.Worker.start
        meter = self

        def counted_run(worker, plan, files, limits):
            outcome = run(worker, plan, files, limits)
            meter.jobs += 1
            meter.jobs_cpu += float(outcome.reply.get("cpu_s", 0.0) or 0.0)
            return outcome

        def counted_start(worker):
            t0 = time.perf_counter()
            start(worker)
            meter.starts += 1
            meter.start_wall += time.perf_counter() - t0

        sandbox.Worker.run, sandbox.Worker.start = counted_run, counted_start

    @staticmethod
    def grader_cpu() -> float:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime


def baseline(sample: list[tuple[Path, str]], exercises_dir: Path, jobs: int) -> tuple[float, list[dict]]:
    """Wall time of one fresh `python -m dlgrade check` per grading, ``jobs`` at once."""
    def one(item):
        path, ex_id = item
        cmd = [sys.executable, "-m", "dlgrade", "check", str(path), "--exercise", ex_id, "--json",
               "--exercises-dir", str(exercises_dir)]
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
        try:
            return json.loads(r.stdout)
        except ValueError:
            return {"status": f"exit {r.returncode}", "score": None, "stderr": r.stderr[-300:]}

    t0 = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        results = list(pool.map(one, sample))
    return time.perf_counter() - t0, results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rounds", type=int, default=3, help="timed gradings of the whole class (median)")
    ap.add_argument("--hangs", type=int, default=4, help="hanging gradings in the class")
    ap.add_argument("--hang-limit", type=float, default=2.0, help="time limit (s) of the benchmark's exercise copies")
    ap.add_argument("--baseline", type=int, default=12, help="gradings in the fresh-interpreter sample")
    ap.add_argument("--rss-at", type=int, default=1000, help="keep grading until this many gradings")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, help="write the class and the output here instead of a temp dir")
    ap.add_argument("--scratch", help="TMPDIR for the workers' job folders (e.g. /dev/shm, a tmpfs); "
                                      "the class and the output stay where they are")
    args = ap.parse_args()

    ok, why = sandbox_status()
    if not ok:
        sys.exit(f"the benchmark grades with the sandbox on, and it is unavailable here: {why}")
    present = [catalogue()[e] for e in CORE if e in catalogue()]
    missing = [e for e in CORE if e not in catalogue()]
    work = args.keep or Path(tempfile.mkdtemp(prefix="dlgrade-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    subs, out = work / "class", work / "out"
    shutil.rmtree(subs, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(work / "exercises", ignore_errors=True)
    ex_dir = short_limit_copy(present, work / "exercises", args.hang_limit)
    if args.scratch:  # after the work folder exists: only the workers' scratch moves
        os.environ["DLGRADE_SCRATCH"] = args.scratch
    plan = plan_class(args.students, args.hangs, args.seed)
    for st in plan:
        write_student(subs, st)
    ids = [ex.id for ex in present]
    mix: dict[str, int] = {}
    for st in plan:
        for ex in ids:
            q = EXERCISE_VARIANTS[ex][st["picks"][ex]][0]
            mix[q] = mix.get(q, 0) + 1
    forms = {f: sum(st["form"] == f for st in plan) for f in ("py", "ipynb", "split")}

    load_before = os.getloadavg()
    probe = RssProbe(marks=(100, args.rss_at))
    meter = CpuMeter()
    walls, summaries = [], []
    rounds = 0
    cpu0 = meter.grader_cpu()
    while rounds < args.rounds or probe.count < args.rss_at:
        t0 = time.perf_counter()
        s = grade_class(subs, out, jobs=args.jobs, exercises_dirs=[str(ex_dir)], force=rounds > 0,
                        progress=probe, pages=HTML_PAGES)  # the pages `dlgrade grade` writes
        walls.append(time.perf_counter() - t0)
        summaries.append(s)
        rounds += 1
        print(f"round {rounds}: {s.gradings} gradings in {walls[-1]:.2f} s", file=sys.stderr)
    grader_cpu = meter.grader_cpu() - cpu0
    load_after = os.getloadavg()
    t0 = time.perf_counter()
    resumed = grade_class(subs, out, jobs=args.jobs, exercises_dirs=[str(ex_dir)], pages=HTML_PAGES)
    resume_s = time.perf_counter() - t0
    assert resumed.graded == [] and len(resumed.unchanged) == args.students

    per_round = summaries[0].gradings
    wall = statistics.median(walls)
    rate = per_round / wall

    by_key = {(r["student"], r["exercise"]): r for r in json.loads((out / "results.json").read_text())}
    pairs = [(st, ex) for st in plan for ex in ids if st["picks"][ex] != "hangs"]
    step = max(1, len(pairs) // max(1, args.baseline))
    sample = pairs[::step][: args.baseline]
    base_wall, base_results = baseline([(subs / st["id"], ex) for st, ex in sample], ex_dir, args.jobs)
    base_rate = len(sample) / base_wall
    agree = sum(1 for (st, ex), b in zip(sample, base_results)
                if b.get("score") == by_key[(st["id"], ex)]["score"])
    statuses: dict[str, int] = {}
    for r in by_key.values():
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    rss = {m: probe.seen.get(m) for m in (100, args.rss_at)}
    lines = [
        f"Machine: {os.cpu_count()} CPUs ({cpu}), Python {sys.version.split()[0]}; "
        f"1-min load average {load_before[0]:.2f} before and {load_after[0]:.2f} after the timed rounds "
        "(anything above ~0 is other work sharing the CPUs).",
        f"Exercises graded: {', '.join(ids)}" + (f" (not in this checkout: {', '.join(missing)})" if missing else ""),
        f"Class: {args.students} students ({forms['py']} .py, {forms['ipynb']} notebooks, "
        f"{forms['split']} folders of one file per exercise); per round {per_round} gradings: "
        + ", ".join(f"{v} {k}" for k, v in sorted(mix.items()))
        + f"; results: " + ", ".join(f"{v} {k}" for k, v in sorted(statuses.items())) + ".",
        f"Sandbox on (bubblewrap); --jobs {args.jobs}; hanging submissions limited to {args.hang_limit:g} s; "
        f"workers' job folders in {scratch_root() or tempfile.gettempdir()}.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| whole class, median of {len(walls)} cold-pool rounds | {wall:.1f} s "
        f"(rounds: {', '.join(f'{w:.1f}' for w in walls)}) |",
        f"| throughput | {rate:.1f} gradings/s |",
        f"| baseline: fresh `python -m dlgrade check` per grading ({len(sample)} sampled, {args.jobs} at once) "
        f"| {base_rate:.2f} gradings/s ({base_wall / len(sample) * args.jobs:.2f} s per grading); "
        f"{agree}/{len(sample)} scores equal to the batch's |",
        f"| speed-up over the baseline | {rate / base_rate:.1f}x |",
        f"| CPU per grading, over all rounds: grader process / sandboxed job | "
        f"{grader_cpu / probe.count * 1000:.0f} ms / {meter.jobs_cpu / max(1, meter.jobs) * 1000:.0f} ms "
        f"(+ {meter.starts} zygote start-ups, {meter.start_wall / max(1, meter.starts):.1f} s each) |",
        f"| re-run with nothing changed ({args.students} skipped) | {resume_s:.2f} s |",
        f"| grader RSS at grading 100 / {args.rss_at} | "
        + (f"{rss[100][1]:.0f} MB / {rss[args.rss_at][1]:.0f} MB" if all(rss.values()) else "n/a")
        + f" (after {probe.count} gradings: {rss_mb():.0f} MB) |",
    ]
    print("\n".join(lines))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
