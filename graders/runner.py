"""Keeps warm workers for one grading session (one per set of preloaded modules)."""
from __future__ import annotations

import importlib.util
import os

from graders.sandbox import JobOutcome, Worker, choose_isolation, gpu_limits

# packages a reference may live next to but that students need
_SHARED_PACKAGES = {"numpy", "torch", "sympy", "scipy"}


def secret_paths(exercise) -> list[str]:
    """Where an exercise's reference and buggy references live: its folder, and
    the package of a ``module:function`` reference (a course's own package)."""
    paths = [str(exercise.folder)]
    for target in (exercise.reference, exercise.mistakes):
        module = target.rsplit(":", 1)[0] if ":" in target else ""
        top = module.split(".")[0]
        if not module or module.endswith(".py") or top in _SHARED_PACKAGES:
            continue
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.submodule_search_locations:
            paths += list(spec.submodule_search_locations)
        elif spec is not None and spec.origin and os.path.isabs(spec.origin):
            paths.append(spec.origin)
    return paths


class Runner:
    """Runs plans for exercises, starting a warm worker per module set on first use.

    ``isolation`` is chosen once: ``"sandbox"`` when bubblewrap works, else
    ``"basic"`` with a warning in ``warnings`` (or SandboxRequired when the
    sandbox is required).
    """

    def __init__(self, require_sandbox: bool = False, isolation: str | None = None, gpu: bool = False,
                 hide=()):
        if isolation is None:
            isolation, self.warnings = choose_isolation(require_sandbox)
        else:
            self.warnings = []
        self.isolation = isolation
        self.gpu = gpu
        self.hide = tuple(hide)  # more paths the sandbox must not show (see Worker)
        self.workers: dict[tuple, Worker] = {}

    def worker_for(self, preload: tuple[str, ...], gpu: bool = False) -> Worker:
        key = (preload, gpu)
        w = self.workers.get(key)
        if w is None:
            w = Worker(self.isolation, preload=preload, gpu=gpu, hide=self.hide)
            try:
                w.start()
            except BaseException:
                w.close()  # no leftover scratch directory
                raise
            self.workers[key] = w
        return w

    def run(self, exercise, plan: dict, files: dict[str, bytes], gpu: bool = False) -> JobOutcome:
        """Run a plan; ``gpu=True`` uses a worker that sees the GPU's device nodes."""
        limits = gpu_limits(exercise.limits) if gpu else exercise.limits
        w = self.worker_for(exercise.preload, gpu)
        w.ensure_hidden(secret_paths(exercise))
        return w.run(plan, files, limits)

    def close(self) -> None:
        for w in self.workers.values():
            w.close()
        self.workers.clear()

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
