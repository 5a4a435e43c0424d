"""Keeps warm workers for one grading session (one per set of preloaded modules)."""
from __future__ import annotations

from graders.sandbox import JobOutcome, Worker, choose_isolation, gpu_limits


class Runner:
    """Runs plans for exercises, starting a warm worker per module set on first use.

    ``isolation`` is chosen once: ``"sandbox"`` when bubblewrap works, else
    ``"basic"`` with a warning in ``warnings`` (or SandboxRequired when the
    sandbox is required).
    """

    def __init__(self, require_sandbox: bool = False, isolation: str | None = None, gpu: bool = False):
        if isolation is None:
            isolation, self.warnings = choose_isolation(require_sandbox)
        else:
            self.warnings = []
        self.isolation = isolation
        self.gpu = gpu
        self.workers: dict[tuple, Worker] = {}

    def worker_for(self, preload: tuple[str, ...], gpu: bool = False) -> Worker:
        key = (preload, gpu)
        w = self.workers.get(key)
        if w is None:
            w = Worker(self.isolation, preload=preload, gpu=gpu)
            w.start()
            self.workers[key] = w
        return w

    def run(self, exercise, plan: dict, files: dict[str, bytes], gpu: bool = False) -> JobOutcome:
        """Run a plan; ``gpu=True`` uses a worker that sees the GPU's device nodes."""
        limits = gpu_limits(exercise.limits) if gpu else exercise.limits
        return self.worker_for(exercise.preload, gpu).run(plan, files, limits)

    def close(self) -> None:
        for w in self.workers.values():
            w.close()
        self.workers.clear()

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
