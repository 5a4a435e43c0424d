"""Grade a class on a SLURM cluster's nodes with dask-jobqueue.

Run it on the login node, from the environment where dlgrade is installed
(the same venv must be visible on the compute nodes, e.g. on a shared home):

    python slurm.py submissions/ --out graded/ --jobs 10            # 10 SLURM jobs of 4 workers
    python slurm.py submissions/ --out graded/ --job-script-only    # print the job script, submit nothing

Each SLURM job starts `dask worker ... --preload dlgrade.cluster` processes
that connect back to the scheduler this script runs; the grading is exactly
`dlgrade grade --cluster`'s. Edit QUEUE, the sizes and PROLOGUE for your site.
"""
from __future__ import annotations

import argparse
import sys

from dask_jobqueue import SLURMCluster

from dlgrade.graders.batch import grade_class
from dlgrade.graders.distributed import DaskExecutor

QUEUE = "cpu"              # the partition (sbatch -p)
CORES, PROCESSES = 16, 4   # per job: 4 worker processes of 4 threads, each thread grading one student
MEMORY = "32GB"            # per job (each sandboxed job is limited by its exercise's memory_mb)
WALLTIME = "01:00:00"
PROLOGUE = ["source $HOME/dlgrade-venv/bin/activate"]  # what makes `python -m dlgrade` work on a node


def make_cluster() -> SLURMCluster:
    return SLURMCluster(
        queue=QUEUE, cores=CORES, processes=PROCESSES, memory=MEMORY, walltime=WALLTIME,
        job_name="dlgrade", job_script_prologue=PROLOGUE,
        worker_extra_args=["--preload", "dlgrade.cluster"],  # dlgrade's warm sandboxed pool on each worker
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("submissions")
    ap.add_argument("--out", required=True)
    ap.add_argument("--jobs", type=int, default=4, help="SLURM jobs to start")
    ap.add_argument("--job-script-only", action="store_true", help="print the job script and exit")
    args = ap.parse_args()
    with make_cluster() as cluster:
        if args.job_script_only:
            print(cluster.job_script())
            return
        cluster.scale(jobs=args.jobs)
        summary = grade_class(args.submissions, args.out, executor=DaskExecutor(cluster.scheduler_address))
    print(f"{len(summary.students)} students ({len(summary.graded)} graded, {len(summary.unchanged)} unchanged): "
          f"{args.out}/grades.csv", file=sys.stderr)


if __name__ == "__main__":
    main()
