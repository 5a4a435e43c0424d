"""Running a job's plan in the grader's own process, against a trusted function.

``dlgrade test-exercise`` grades an exercise's reference, its buggy references
and perturbed references through the real grading path
(:func:`dlgrade.graders.engine.grade`). Those functions are dlgrade's (or a
course's) trusted code: they are not files a student submits, and the sandbox
hides them from the worker. :class:`TrustedRunner` takes the worker's place
for them: it executes the plan's calls with the worker's own code
(:func:`dlgrade.graders.sandboxed_worker.run_calls`: the same argument building, chained
arguments, generators, seeding, argument watching, output encoding and backward pass) in a private job
directory, and hands back a :class:`~dlgrade.graders.sandbox.JobOutcome` the
engine reads exactly as it reads a sandboxed one.

Never give it a student's code: nothing here is isolated.
"""
from __future__ import annotations

import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from dlgrade.graders import sandboxed_worker as worker
from dlgrade.graders.decoding import read_journal
from dlgrade.graders.sandbox import JobOutcome

ISOLATION = "trusted (in-process)"
FILE_NAME = "trusted_reference.py"  # the name the plan and results give the trusted function


class TrustedRunner:
    """A runner (the interface of :class:`dlgrade.graders.runner.Runner`) whose every
    job calls ``fn`` in this process.

    The process state a call may touch is restored after each job: the working
    directory (the worker's encoder writes its ``.npy`` files there) and the
    ``random``, numpy and torch random generators (the worker seeds them per call).
    """

    def __init__(self, fn: Callable):
        self.fn = fn
        self.warnings: list[str] = []
        self.isolation = ISOLATION

    def run(self, exercise, plan: dict, files: dict[str, bytes], gpu: bool = False) -> JobOutcome:
        """Run ``plan``'s calls on ``fn``; ``files`` are not used (nothing is loaded)."""
        job_dir = Path(tempfile.mkdtemp(prefix="dlgrade-trusted-"))
        for name, arr in plan.pop("_arrays", {}).items():
            np.save(job_dir / name, np.asarray(arr), allow_pickle=False)
        here = os.getcwd()
        saved = _random_state()
        os.chdir(job_dir)
        try:
            journal = worker._Journal("journal.jsonl")
            try:
                inputs = worker._load_inputs(plan)
                worker._seed(plan.get("seed", 0))
                journal.write({"step": "load", "status": "ok", "seconds": 0.0})
                journal.write({"step": "entry", "status": "ok"})
                with np.errstate(all="ignore"):
                    worker.run_calls(self.fn, plan, str(job_dir), inputs, journal.write)
            finally:
                journal.f.close()
        finally:
            os.chdir(here)
            _restore_random_state(saved)
        reply = {"status": "exited", "code": 0, "output": {"head": "", "tail": "", "dropped_bytes": 0}}
        return JobOutcome(reply=reply, job_dir=job_dir, isolation=ISOLATION, journal=read_journal(job_dir))

    def close(self) -> None:
        """Nothing to close (no worker was started)."""

    def __enter__(self) -> "TrustedRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _random_state():
    torch = sys.modules.get("torch")
    return (random.getstate(), np.random.get_state(),
            torch.random.get_rng_state() if torch is not None else None)


def _restore_random_state(saved) -> None:
    py, npy, th = saved
    random.setstate(py)
    np.random.set_state(npy)
    torch = sys.modules.get("torch")
    if torch is not None and th is not None:
        torch.random.set_rng_state(th)
