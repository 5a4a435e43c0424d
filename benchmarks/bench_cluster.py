"""Benchmark `dlgrade grade --cluster`: Dask against the local pool, in one run.

* The 200-student class of benchmarks/bench_batch.py (same generator, same
  seed, hanging submissions limited to 2 s) graded with ``--jobs 2`` and with
  ``--cluster local:2`` (a LocalCluster of two one-thread worker processes
  running the dlgrade preload), alternately, ``--rounds`` times each, with
  --force: the local pool cold; the cluster started for the round (timed on
  its own), graded cold (as the command does), then graded again on the same
  workers (warm: what a long-lived cluster does for every class after the first).
* The overhead per task on many tiny submissions: ``--tiny`` students whose
  file defines no entry (a ``missing`` result: nothing runs in a sandbox), so
  what is timed is dlgrade's task (read, ship, schedule, reply, commit) and
  Dask's; and Dask's own floor: as many no-op tasks through the same client.
* From those, a worked estimate of the workers that grade 100,000 submissions
  of this class's mix in 10 minutes.

    python benchmarks/bench_cluster.py                 # 200 students, 1 round
    python benchmarks/bench_cluster.py --students 50 --rounds 1
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
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
    ap.add_argument("--rounds", type=int, default=1)
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

    local_walls, cold_walls, warm_walls, starts, spread = [], [], [], [], []
    warmup = work / "warmup"
    for st in plan_class(8, 0, args.seed + 1):
        write_student(warmup, st)

    def command(out: str, *how: str) -> float:
        # the command as an instructor types it, in a fresh process: imports, pool and all
        cmd = [sys.executable, "-m", "dlgrade", "grade", str(subs), "--out", str(work / out), "--force",
               "--exercises-dir", str(ex_dir), *how]
        t, r = timed(lambda: subprocess.run(cmd, capture_output=True, text=True, cwd=work))
        if r.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr[-2000:]}")
        return t

    for r in range(args.rounds):
        local_walls.append(command("local", "--jobs", str(n)))
        cold_walls.append(command("cluster", "--cluster", f"local:{n}"))
        # a long-lived cluster: started once, warmed by another class, then this one
        keep = DaskExecutor(f"local:{n}")
        starts.append(timed(keep.connect)[0])
        grade_class(warmup, work / "warmup-out", exercises_dirs=[str(ex_dir)], force=True,
                    executor=DaskExecutor(keep.address))
        w, s = timed(lambda: grade_class(subs, work / "warm", exercises_dirs=[str(ex_dir)], force=True,
                                         executor=DaskExecutor(keep.address)))
        warm_walls.append(w)
        spread.append(sorted(s.workers.values()))
        gradings = s.gradings
        print(f"round {r + 1}: --jobs {n} {local_walls[-1]:.1f} s, --cluster local:{n} {cold_walls[-1]:.1f} s, "
              f"warm cluster {w:.1f} s (start {starts[-1]:.1f} s; per worker {spread[-1]})", file=sys.stderr)
        if r < args.rounds - 1:
            keep.close()
    same = all((work / "local" / f).read_bytes() == (work / d / f).read_bytes()
               for f in ("grades.csv", "results.json") for d in ("cluster", "warm"))

    # tiny submissions: a file with no entry, graded as "missing" without a sandbox job
    tiny = work / "tiny"
    tiny.mkdir()
    for i in range(args.tiny):
        (tiny / f"t{i:05d}.py").write_text(f"x = {i}\n")
    # this process runs the client and (LocalCluster) the scheduler: its CPU per task is what
    # one client + scheduler core spends on each student
    cpu0 = time.process_time()
    t_tiny, s_tiny = timed(lambda: grade_class(tiny, work / "tiny-out", exercise_ids=["stable-softmax"],
                                               executor=DaskExecutor(keep.address)))
    cpu_per_task = (time.process_time() - cpu0) / args.tiny
    t_tiny_local, _ = timed(lambda: grade_class(tiny, work / "tiny-local", jobs=n, exercise_ids=["stable-softmax"]))
    client = keep.connect()

    def noop_tasks():
        return client.gather(client.map(_noop, range(args.tiny), pure=False))

    t_noop, _ = timed(noop_tasks)
    keep.close()
    load1 = os.getloadavg()

    lw, cw, st = statistics.median(local_walls), statistics.median(cold_walls), statistics.median(starts)
    ww = statistics.median(warm_walls)
    per_task = t_tiny / args.tiny
    per_noop = t_noop / args.tiny
    # worker-thread seconds per submission of the class's mix, on warm workers
    per_sub = ww * n / args.students
    need = TARGET_SUBMISSIONS * per_sub / TARGET_SECONDS
    sched_rate = 1.0 / per_task  # tasks/s through client, scheduler and workers on this one machine
    rate_needed = TARGET_SUBMISSIONS / TARGET_SECONDS
    headroom = 1.0 / cpu_per_task / rate_needed
    verdict = (f"{headroom:.1f}x what is needed: the client and scheduler are not the limit" if headroom >= 1.5 else
               f"only {headroom:.1f}x what is needed, so client and scheduler together, in one process, would be "
               f"the limit near {1 / cpu_per_task:.0f} students/s: give the scheduler its own machine (dask scheduler)")
    print(f"""
## Grading on Dask (`benchmarks/bench_cluster.py --rounds {args.rounds}`)

Class: {args.students} students of benchmarks/bench_batch.py (seed {args.seed}), {gradings} gradings per round
({', '.join(e.id for e in present)}); sandbox on; hanging submissions limited to {args.hang_limit:g} s.
Modes alternate, {args.rounds} round(s) each, every run with --force; the machine is shared (2 cores;
load average {load0[0]:.1f} before, {load1[0]:.1f} after).

| measure | value |
|---|---|
| `dlgrade grade --jobs {n}` (a fresh process), median | {lw:.1f} s (rounds: {', '.join(f'{x:.1f}' for x in local_walls)}) |
| `dlgrade grade --cluster local:{n}` (a fresh process, the cluster started and stopped in it), median | {cw:.1f} s (rounds: {', '.join(f'{x:.1f}' for x in cold_walls)}) |
| ratio (target <= 1.15) | {cw / lw:.2f}x |
| a LocalCluster's start-up (2 workers, preload) | {st:.1f} s |
| the class on a long-lived cluster (already started and warmed by another class), median | {ww:.1f} s (rounds: {', '.join(f'{x:.1f}' for x in warm_walls)}; students per worker {spread}): {ww / lw:.2f}x the local command |
| grades.csv and results.json byte-identical to the local run (both cluster runs) | {'yes' if same else 'NO'} |
| {args.tiny} tiny submissions on the cluster (no sandbox job) | {t_tiny:.2f} s: {per_task * 1000:.2f} ms per task ({t_tiny_local:.2f} s with `--jobs {n}`) |
| {args.tiny} no-op Dask tasks, same cluster size | {t_noop:.2f} s: {per_noop * 1000:.2f} ms per task |

Worked estimate for {TARGET_SUBMISSIONS:,} submissions in {TARGET_SECONDS / 60:g} minutes: a submission of
this mix costs {per_sub:.2f} worker-thread-seconds on this machine's cores (warm cluster time x {n}
threads / {args.students}), so {TARGET_SUBMISSIONS:,} x {per_sub:.2f} s / {TARGET_SECONDS:g} s = {need:.0f} worker
threads (one core each): about {math.ceil(need / 16)} 16-core machines or {math.ceil(need / 32)} 32-core
ones, plus headroom for stragglers. The client and the scheduler must then take
{rate_needed:.0f} tasks/s. The client with the scheduler in its process spent {cpu_per_task * 1000:.2f} ms of CPU
per tiny task (one core: {1 / cpu_per_task:.0f} tasks/s), {verdict}; end to end, this 2-core machine
running client, scheduler and both workers together passed {sched_rate:.0f} tasks/s
({per_task * 1000:.2f} ms per tiny task; Dask's own no-op tasks: {per_noop * 1000:.2f} ms).""")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
