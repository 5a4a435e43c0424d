"""Keeps warm workers for one grading session (one per set of preloaded modules)."""
from __future__ import annotations

import ast
from functools import lru_cache

from graders.sandbox import JobOutcome, Worker, choose_isolation

# Heavy modules worth having warm: a submission that imports one of them (a
# notebook holding a torch exercise next to a numpy one, say) runs in a zygote
# that already did, instead of paying the import (seconds) in every job.
WARM_IMPORTS = ("torch", "sympy")
# Submodules loaded lazily that every job touches (the worker seeds numpy.random
# before each job): imported once in the zygote, not once per forked child.
WARM_SUBMODULES = {"numpy": ("numpy.random",)}


def warm_preload(preload: tuple[str, ...], files: dict[str, bytes]) -> tuple[str, ...]:
    """``preload`` plus the WARM_IMPORTS the shipped ``.py`` files import (read with ast, never run)."""
    found: set[str] = set()
    for name, data in files.items():
        if name.endswith(".py"):
            found.update(_heavy_imports(data))
    return tuple(preload) + tuple(m for m in WARM_IMPORTS if m in found and m not in preload)


@lru_cache(maxsize=256)
def _heavy_imports(source: bytes) -> frozenset[str]:
    # cached: every exercise of a student ships the same files
    if not any(m.encode() in source for m in WARM_IMPORTS):
        return frozenset()
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return frozenset()
    found = set()
    for node in _statements(tree.body):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return frozenset(found & set(WARM_IMPORTS))


def _statements(nodes):
    """Every statement, nested ones included (imports are statements: expressions are skipped)."""
    for node in nodes:
        yield node
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(node, name, None)
            if isinstance(children, list):
                yield from _statements(children)


def zygote_preload(preload: tuple[str, ...]) -> tuple[str, ...]:
    """What a zygote for ``preload`` imports: those modules and their WARM_SUBMODULES."""
    out: list[str] = []
    for m in preload:
        out += [x for x in (m, *WARM_SUBMODULES.get(m, ())) if x not in out]
    return tuple(out)


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
            w = Worker(self.isolation, preload=zygote_preload(preload), gpu=gpu)
            w.start()
            self.workers[key] = w
        return w

    def run(self, exercise, plan: dict, files: dict[str, bytes], gpu: bool = False) -> JobOutcome:
        return self.worker_for(warm_preload(exercise.preload, files), gpu).run(plan, files, exercise.limits)

    def close(self) -> None:
        for w in self.workers.values():
            w.close()
        self.workers.clear()

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
