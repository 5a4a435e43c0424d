"""Benchmark `dlgrade grade --cluster`: Dask against the local pool, in one run.

* The 200-student class of benchmarks/bench_batch.py (same generator, same
  seed, hanging submissions limited to 2 s) graded with ``--jobs 2`` and with
  ``--cluster local:2`` (a LocalCluster of two one-thread worker processes
  running the dlgrade preload), alternately, ``--rounds`` times each, every
  round from a cold pool (--force; the cluster is started for each round, as
  the command does). The cluster's start-up is timed on its own too.
* The overhead per task on many tiny submissions: ``--tiny`` students whose
  file defines no entry (a ``missing`` result: nothing runs in a sandbox), so
  what is timed is dlgrade's task (read, ship, schedule, reply, commit) and
  Dask's; and Dask's own floor: as many no-op tasks through the same client.
* From those, a worked estimate of the workers that grade 100,000 submissions
  of this class's mix in 10 minutes.

    python benchmarks/bench_cluster.py                 # 200 students, 2 rounds
    python benchmarks/bench_cluster.py --students 50 --rounds 1
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_batch import CORE, plan_class, short_limit_copy, write_student  # noqa: E402

from dlgrade.graders.batch import grade_class  # noqa: E402
from dlgrade.graders.distributed import DaskExecutor  # noqa: E402
from dlgrade.graders.sandbox import sandbox_status  # noqa: E402
from dlgrade.graders.spec import catalogue  # noqa: E402

TARGET_SUBMISSIONS, TARGET_SECONDS = 100_000, 600.0


def _noop(i: int) -> int:
    return i


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2, help="--jobs N against --cluster local:N")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--hangs", type=int, default=4)
    ap.add_argument("--hang-limit", type=float, default=2.0)
    ap.add_argument("--tiny", type=int, default=1000, help="tiny submissions for the per-task overhead")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    ok, why = sandbox_status()
    if not ok:
        sys.exit(f"the benchmark grades with the sandbox on, and it is unavailable here: {why}")
    present = [catalogue()[e] for e in CORE if e in catalogue()]
    work = Path(tempfile.mkdtemp(prefix="dlgrade-bench-cluster-"))
    subs, ex_dir = work / "class", short_limit_copy(present, work / "exercises", args.hang_limit)
    for st in plan_class(args.students, args.hangs, args.seed):
        write_student(subs, st)
    n = args.workers
    load0 = os.getloadavg()

    local_walls, cluster_walls, starts, gradings = [], [], [], 0
    for r in range(args.rounds):
        w, s = timed(lambda: grade_class(subs, work / "local", jobs=n, exercises_dirs=[str(ex_dir)], force=True))
        local_walls.append(w)
        gradings = s.gradings

        def on_cluster():
            ex = DaskExecutor(f"local:{n}")
            starts.append(timed(ex.connect)[0])
            return grade_class(subs, work / "cluster", exercises_dirs=[str(ex_dir)], force=True, executor=ex)

        w, s = timed(on_cluster)
        cluster_walls.append(w)
        print(f"round {r + 1}: --jobs {n} {local_walls[-1]:.1f} s, --cluster local:{n} {w:.1f} s "
              f"(start {starts[-1]:.1f} s, per worker {sorted(s.workers.values())})", file=sys.stderr)
    same = all((work / "local" / f).read_bytes() == (work / "cluster" / f).read_bytes()
               for f in ("grades.csv", "results.json"))

    # tiny submissions: a file with no entry, graded as "missing" without a sandbox job
    tiny = work / "tiny"
    tiny.mkdir()
    for i in range(args.tiny):
        (tiny / f"t{i:05d}.py").write_text(f"x = {i}\n")
    ex = DaskExecutor(f"local:{n}")
    ex.connect()
    t_tiny, s_tiny = timed(lambda: grade_class(tiny, work / "tiny-out", exercise_ids=["stable-softmax"],
                                               executor=ex))
    t_tiny_local, _ = timed(lambda: grade_class(tiny, work / "tiny-local", jobs=n, exercise_ids=["stable-softmax"]))
    ex2 = DaskExecutor(f"local:{n}")
    client = ex2.connect()
    def noop_tasks():
        return client.gather(client.map(_noop, range(args.tiny), pure=False))

    t_noop, _ = timed(noop_tasks)
    ex2.close()
    load1 = os.getloadavg()

    lw, cw, st = statistics.median(local_walls), statistics.median(cluster_walls), statistics.median(starts)
    per_task = t_tiny / args.tiny
    per_noop = t_noop / args.tiny
    # worker-thread seconds per submission of the class's mix, cluster start-up excluded
    per_sub = (cw - st) * n / args.students
    need = TARGET_SUBMISSIONS * per_sub / TARGET_SECONDS
    sched_rate = 1.0 / per_task  # tasks/s through client, scheduler and workers: a floor for the first two
    print(f"""
## Grading on Dask (`benchmarks/bench_cluster.py --rounds {args.rounds}`)

Class: {args.students} students of benchmarks/bench_batch.py (seed {args.seed}), {gradings} gradings per round
({', '.join(e.id for e in present)}); sandbox on; hanging submissions limited to {args.hang_limit:g} s.
Both modes alternate, {args.rounds} round(s) each, cold pool every round; the machine is shared (2 cores;
load average {load0[0]:.1f} before, {load1[0]:.1f} after).

| measure | value |
|---|---|
| `--jobs {n}`, whole class, median | {lw:.1f} s (rounds: {', '.join(f'{x:.1f}' for x in local_walls)}) |
| `--cluster local:{n}`, whole class, median (start-up included) | {cw:.1f} s (rounds: {', '.join(f'{x:.1f}' for x in cluster_walls)}) |
| of which the LocalCluster's start-up | {st:.1f} s |
| ratio cluster / local (target <= 1.15) | {cw / lw:.2f}x ({(cw - st) / lw:.2f}x without the start-up) |
| grades.csv and results.json byte-identical to the local run | {'yes' if same else 'NO'} |
| {args.tiny} tiny submissions on the cluster (no sandbox job) | {t_tiny:.2f} s: {per_task * 1000:.2f} ms per task ({t_tiny_local:.2f} s with `--jobs {n}`) |
| {args.tiny} no-op Dask tasks, same cluster size | {t_noop:.2f} s: {per_noop * 1000:.2f} ms per task |

Worked estimate for {TARGET_SUBMISSIONS:,} submissions in {TARGET_SECONDS / 60:g} minutes: a submission of
this mix costs {per_sub:.2f} worker-thread-seconds on this machine's cores ((cluster time - start-up) x {n}
threads / {args.students}), so {TARGET_SUBMISSIONS:,} x {per_sub:.2f} s / {TARGET_SECONDS:g} s = {need:.0f} worker
threads (one core each): about {math.ceil(need / 16)} 16-core machines, {math.ceil(need / 32)} 32-core
ones; plus headroom for stragglers. The client and scheduler handle {TARGET_SUBMISSIONS / TARGET_SECONDS:.0f}
tasks/s at that rate; here, with {n} workers, they sustained {sched_rate:.0f} tasks/s
({per_task * 1000:.2f} ms per tiny task, of which Dask itself {per_noop * 1000:.2f} ms), so the
scheduler is not the limit.""")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
