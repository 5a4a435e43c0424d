"""Keeps warm workers for one grading session (one per set of preloaded modules)."""
from __future__ import annotations

import ast
import importlib.util
import os
from functools import lru_cache

from dlgrade.graders.sandbox import JobOutcome, Worker, choose_isolation, gpu_limits

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

# Heavy modules worth having warm: a submission that imports one of them (a
# notebook holding a torch exercise next to a numpy one, say) runs in a zygote
# that already did, instead of paying the import (seconds) in every job.
WARM_IMPORTS = ("torch", "sympy")
# Submodules loaded lazily that every job touches (the worker seeds numpy.random
# before each job): imported once in the zygote, not once per forked child.
WARM_SUBMODULES = {"numpy": ("numpy.random",)}


def warm_preload(preload: tuple[str, ...], files: dict[str, bytes], forbidden=()) -> tuple[str, ...]:
    """``preload`` plus the WARM_IMPORTS the shipped ``.py`` files import (read with ast, never run).

    A module the exercise forbids (``[rules] forbid_imports``) is warm only when the
    files import it at module level anyway (another exercise's cell): otherwise it
    must not be in the process at all, where the student's code could find it.
    """
    found: set[str] = set()
    top: set[str] = set()
    for name, data in files.items():
        if name.endswith(".py"):
            found.update(_heavy_imports(data))
            if forbidden:
                top.update(_heavy_imports(data, module_level=True))
    barred = {m for m in WARM_IMPORTS if any(f.split(".")[0] == m for f in forbidden)} - top
    return tuple(preload) + tuple(m for m in WARM_IMPORTS if m in found and m not in preload and m not in barred)


@lru_cache(maxsize=256)
def _heavy_imports(source: bytes, module_level: bool = False) -> frozenset[str]:
    # cached: every exercise of a student ships the same files
    if not any(m.encode() in source for m in WARM_IMPORTS):
        return frozenset()
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return frozenset()
    found = set()
    for node in _statements(tree.body, into_defs=not module_level):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return frozenset(found & set(WARM_IMPORTS))


def _statements(nodes, into_defs: bool = True):
    """Every statement, nested ones included (imports are statements: expressions are skipped);
    without ``into_defs``, not those inside functions and classes (what runs at import)."""
    for node in nodes:
        yield node
        if not into_defs and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(node, name, None)
            if isinstance(children, list):
                yield from _statements(children, into_defs)


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
        self._launched: dict[tuple, Worker] = {}  # started by prestart, not yet ready

    def prestart(self, exercises, files=None) -> None:
        """Launch the workers these exercises need now, without waiting for them.

        A worker's start (an interpreter importing torch or sympy inside the
        sandbox) then overlaps with the grader's own imports and reference
        work; ``worker_for`` waits for the launched worker to be ready. Launched
        from this thread on purpose: bwrap dies with the thread that started it.
        ``files`` (exercise id -> shipped files) picks the zygote ``run`` will use.
        """
        secrets: dict[tuple, list[str]] = {}
        for ex in exercises:
            preload = tuple(ex.preload)
            if ex.framework != "symbolic":  # the symbolic evaluator's worker is exactly ex.preload
                preload = warm_preload(preload, (files or {}).get(ex.id, {}), ex.rules.forbid_imports)
            secrets.setdefault(preload, []).extend(secret_paths(ex))
        for preload, hidden in secrets.items():
            key = (preload, False)
            if key in self.workers or key in self._launched:
                continue
            w = Worker(self.isolation, preload=zygote_preload(preload), gpu=False, hide=self.hide + tuple(hidden))
            try:
                w.launch()
            except BaseException:
                w.close()
                continue  # worker_for will try again and raise for real
            self._launched[key] = w

    def _start(self, preload, gpu) -> Worker:
        key = (preload, gpu)
        w = self._launched.pop(key, None)
        try:
            if w is None:
                w = Worker(self.isolation, preload=zygote_preload(preload), gpu=gpu, hide=self.hide)
                w.start()
            else:
                w.await_ready()
        except BaseException:
            w.close()  # no leftover scratch directory
            raise
        self.workers[key] = w
        return w

    def worker_for(self, preload: tuple[str, ...], gpu: bool = False) -> Worker:
        key = (tuple(preload), gpu)
        w = self.workers.get(key)
        if w is None:
            w = self._start(tuple(preload), gpu)
        return w

    def run(self, exercise, plan: dict, files: dict[str, bytes], gpu: bool = False) -> JobOutcome:
        """Run a plan; ``gpu=True`` uses a worker that sees the GPU's device nodes.

        A submission that imports torch or sympy goes to a zygote that already did.
        """
        limits = gpu_limits(exercise.limits) if gpu else exercise.limits
        w = self.worker_for(warm_preload(exercise.preload, files, exercise.rules.forbid_imports), gpu)
        w.ensure_hidden(secret_paths(exercise))
        return w.run(plan, files, limits)

    def close(self) -> None:
        for w in self._launched.values():
            w.close()
        self._launched.clear()
        for w in self.workers.values():
            w.close()
        self.workers.clear()

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
