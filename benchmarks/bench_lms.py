"""Benchmark the LMS intake and the similarity flag on a large class (no grading).

Builds a Canvas "Download Submissions" zip of N students (default 400) the way
Canvas names its files (tests/lms_downloads.py), each handing in a softmax and a
backprop file of their own (random names, spacing, comments and statement
order around a few shared solution shapes) plus a PDF, with 1 % of the class
copying another student. Measures, median over the rounds:

* reading the zip (``layouts.read``) and writing one folder per student
  (``layouts.materialize``);
* fingerprinting every student's Python and comparing all pairs
  (``similarity.compare``), and how many of the planted copies were found.

    python benchmarks/bench_lms.py                 # 400 students, 3 rounds
    python benchmarks/bench_lms.py --students 1000 --rounds 1
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from dlgrade.graders import layouts, similarity  # noqa: E402

SHAPES = [
    """import numpy as np

def softmax({z}, axis=-1):
    {m} = np.max({z}, axis=axis, keepdims=True)
    {e} = np.exp({z} - {m})
    return {e} / np.sum({e}, axis=axis, keepdims=True)
""",
    """import numpy as np

def softmax({z}, axis=-1):
    {z} = np.asarray({z})
    {m} = {z}.max(axis=axis, keepdims=True)
    {e} = np.exp({z} - {m})
    {s} = {e}.sum(axis=axis, keepdims=True)
    return {e} / {s}
""",
]
BACKPROP = """import numpy as np

def two_layer_backprop(X, y, W1, b1, W2, b2):
    {n} = X.shape[0]
    {h} = np.maximum(0, X @ W1 + b1)
    {s} = {h} @ W2 + b2
    {s} = {s} - {s}.max(axis=1, keepdims=True)
    {p} = np.exp({s})
    {p} /= {p}.sum(axis=1, keepdims=True)
    loss = -np.log({p}[np.arange({n}), y]).mean()
    {d} = {p}.copy()
    {d}[np.arange({n}), y] -= 1
    {d} /= {n}
    dW2 = {h}.T @ {d}
    db2 = {d}.sum(axis=0)
    {dh} = {d} @ W2.T
    {dh}[{h} <= 0] = 0
    dW1 = X.T @ {dh}
    db1 = {dh}.sum(axis=0)
    return loss, {{"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}}
"""


def _names(rng: random.Random) -> dict[str, str]:
    pool = ["a", "b", "x", "t", "tmp", "val", "out", "res", "acc", "q", "k", "u", "w", "arr", "mat", "buf"]
    picks = rng.sample(pool, 8)
    return dict(zip(["z", "m", "e", "s", "n", "h", "p", "d"], picks)) | {"dh": rng.choice(["g", "grad", "dz"])}


def student_code(rng: random.Random, i: int) -> dict[str, str]:
    n = _names(rng)
    soft = rng.choice(SHAPES).format(**n)
    # everyone's own extras: helpers whose structure is their own (the calls and operators
    # survive normalisation), so that apart from the shared shapes no two students are alike
    calls = ["np.abs", "np.sqrt", "np.exp", "np.log1p", "np.tanh", "np.clip", "np.mean", "np.sum", "np.max",
             "np.where", "np.maximum", "np.square"]
    ops = ["+", "-", "*", "/", "@", "**"]
    helpers = []
    for k in range(rng.randrange(2, 4)):
        body = [f"    v = {rng.choice(calls)}(v) {rng.choice(ops)} {rng.choice(calls)}(v)"
                for _ in range(rng.randrange(4, 9))]
        helpers.append(f"def helper_{i}_{k}(v):\n" + "\n".join(body) + "\n    return v\n")
    extra = "\n".join(helpers)
    back = BACKPROP.format(**n)
    if rng.random() < 0.5:
        back = back.replace("    loss = ", f"    # computing the loss, attempt {rng.randrange(9)}\n    loss = ")
    return {"softmax.py": soft + "\n" + extra, "backprop.py": back}


def build(dest: Path, students: int, seed: int = 0) -> tuple[Path, set[tuple[str, str]]]:
    import lms_downloads as L

    rng = random.Random(seed)
    people = [L.DemoStudent(f"First{i}", f"Last{i}", 10000 + i, 0, "", "", "", "A") for i in range(students)]
    codes = [student_code(rng, i) for i in range(students)]
    copies = set()
    for i in rng.sample(range(students), max(1, students // 100)):
        j = rng.randrange(students)
        if i != j:
            codes[i] = {k: v.replace("    ", "  ") for k, v in codes[j].items()}
            copies.add(tuple(sorted((str(10000 + i), str(10000 + j)))))
    files, aid = [], 1
    for s, code in zip(people, codes):
        for name, text in list(code.items()) + [("report.pdf", "%PDF-1.4 " + "x" * 2000)]:
            aid += 1
            files.append((L.canvas_filename(s, aid, name), text.encode()))
    path = dest / "submissions.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files:
            z.writestr(name, data)
    return path, copies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        zip_path, copies = build(tmp, args.students)
        intake_s, sim_s, found = [], [], set()
        for r in range(args.rounds):
            t0 = time.perf_counter()
            intake = layouts.read(zip_path)
            dest = layouts.materialize(intake, tmp / "out" / "submissions")
            intake_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            subs = [similarity.fingerprint(p.name, similarity.student_sources(p)) for p in sorted(dest.iterdir())]
            pairs = similarity.compare(subs)
            sim_s.append(time.perf_counter() - t0)
            found = {tuple(sorted((p.a, p.b))) for p in pairs}
        print(f"students: {args.students}; zip: {zip_path.stat().st_size // 1024} KiB, "
              f"{len(intake.students)} read, {len(intake.skipped)} files skipped")
        print(f"read + materialize: median {statistics.median(intake_s):.2f} s over {args.rounds} rounds")
        print(f"similarity (fingerprint + compare): median {statistics.median(sim_s):.2f} s; "
              f"planted copies found: {len(found & copies)} / {len(copies)}; other pairs: {len(found - copies)}")


if __name__ == "__main__":
    main()
