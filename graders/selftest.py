"""The self-test of an exercise (``dlgrade test-exercise``): proof that it grades right.

Four properties, each a row of the table (a :class:`Row`):

1. **reference** — the trusted reference gets full marks, with no diagnosis,
   under many student ids (each id draws its own seeded inputs);
2. **mistake ID** — each buggy reference of the spec's ``mistakes`` (each
   variant, when an id lists several) loses points and is diagnosed with its id;
3. **check NAME can fail** — every check fails for at least one perturbed
   reference (every output shifted, each output leaf shifted in turn, every
   2-D output transposed, every output replaced by zeros, a returned dict's key
   dropped, the ``rng`` argument ignored, the first argument added to the output,
   the arguments modified in place; for
   torch, the result detached or combined with a tensor made on the CPU; for
   symbolic answers, an unreadable text and a shifted expression): a check no
   perturbation fails proves nothing;
4. **deterministic** — the same candidate graded twice under the same id gets
   the same score, checks, messages and diagnoses.

Everything is graded through the real grading path,
:func:`dlgrade.graders.engine.grade`. numpy and torch candidates are trusted
functions, run in this process by :class:`~dlgrade.graders.trusted_runner.TrustedRunner`
(the sandbox hides them from the worker); symbolic candidates are the
reference's and buggy references' expressions written out as text answers,
judged by the sandboxed SymPy evaluator as a student's would be.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from dlgrade.graders import engine
from dlgrade.graders.errors import GraderError, UserError
from dlgrade.graders.inputs import make_cases
from dlgrade.graders.results import ExerciseResult
from dlgrade.graders.sandbox import SandboxError
from dlgrade.graders.spec import Exercise
from dlgrade.graders.submission import SubmissionSource
from dlgrade.graders.threads import one_torch_thread
from dlgrade.graders.trusted_runner import FILE_NAME, TrustedRunner

SEEDS = 10  # student ids the reference is graded under
MISTAKE_SEEDS = 3  # student ids each buggy reference is graded under
STUDENT = "selftest-{:03d}"
SCALE, OFFSET = 1.25, 0.25  # a shifted output: x -> SCALE * x + OFFSET


@dataclass(frozen=True)
class Row:
    """One property of one exercise: what was tested, whether it held, and why."""

    exercise: str
    test: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class ExerciseTest:
    """The self-test of one exercise."""

    exercise: str
    rows: tuple[Row, ...]
    seconds: float

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)


@dataclass(frozen=True)
class Candidate:
    """Something to grade in a student's place: a trusted function, or an answer's text."""

    label: str
    fn: Callable | None = None
    text: str | None = None


class SelfTestError(UserError):
    """The exercise cannot be self-tested here (its reference or a buggy reference fails to build)."""


# --------------------------------------------------------------------------- running


def self_test(ex: Exercise, seeds: int = SEEDS, runner=None) -> ExerciseTest:
    """Self-test one exercise; ``runner`` (a :class:`~dlgrade.graders.runner.Runner`)
    judges symbolic answers (one is started and closed here when None).

    Raises GraderError when dlgrade itself fails (the sandbox would not start).
    """
    t0 = time.perf_counter()
    own = runner is None and ex.framework == "symbolic"
    if own:
        from dlgrade.graders.runner import Runner

        runner = Runner()
    if ex.framework == "torch":
        # loaded now, so that one_torch_thread applies: the trusted functions run here on
        # tiny tensors, where torch's thread pool costs far more than it saves (a small
        # cross-entropy: 24 ms on two threads of a busy 2-core machine, 0.24 ms on one)
        import torch  # noqa: F401
    try:
        with one_torch_thread():
            rows = _rows(ex, max(1, int(seeds)), runner)
    finally:
        if own:
            runner.close()
    return ExerciseTest(ex.id, tuple(rows), time.perf_counter() - t0)


def self_test_all(exercises, seeds: int = SEEDS, progress: Callable | None = None,
                  warnings: list | None = None) -> list[ExerciseTest]:
    """Self-test several exercises; ``progress(result)`` after each.

    Symbolic answers are judged by one shared runner (started only if one of the
    exercises is symbolic); its warnings (no sandbox here, say) are added to ``warnings``.
    """
    from contextlib import nullcontext

    from dlgrade.graders.runner import Runner

    exercises = list(exercises)
    symbolic = any(ex.framework == "symbolic" for ex in exercises)
    done = []
    with (Runner() if symbolic else nullcontext()) as runner:
        if warnings is not None and runner is not None:
            warnings.extend(runner.warnings)
        for ex in exercises:
            done.append(self_test(ex, seeds, runner))
            if progress is not None:
                progress(done[-1])
    return done


def _rows(ex: Exercise, seeds: int, runner) -> list[Row]:
    if ex.gpu.get("required"):
        from dlgrade.graders.devices import accelerator

        if accelerator() is None:
            return [Row(ex.id, "needs a GPU", False,
                        "[gpu] required = true and this machine has no CUDA GPU: not tested")]
    try:
        reference = _reference(ex)
        mistakes = _mistakes(ex)
    except SelfTestError as exc:
        return [Row(ex.id, "reference", False, str(exc))]
    ids = [STUDENT.format(i) for i in range(seeds)]
    try:
        rows = [_reference_row(ex, reference, ids, runner)]
        for diag_id, cand in mistakes:
            rows.append(_mistake_row(ex, diag_id, cand, ids[:MISTAKE_SEEDS], runner))
        rows += _can_fail_rows(ex, reference, ids[0], runner)
        rows.append(_determinism_row(ex, [reference] + [c for _, c in mistakes[:1]], ids[0], runner))
    except SelfTestError as exc:  # nothing can be graded without a working reference
        return [Row(ex.id, "reference", False, str(exc))]
    return rows


def _graded(ex: Exercise, cand: Candidate, student: str, runner) -> ExerciseResult:
    """:func:`grade_candidate`; SelfTestError when the reference (run here, to compare
    with) raises, or when the spec asks for what the grader cannot do (an unknown check
    kind, a gradients check without params). A failing sandbox is raised as it is."""
    try:
        return grade_candidate(ex, cand, student, runner)
    except (SandboxError, UserError):  # the sandbox, or a spec error (a course kind's bug): as it is
        raise
    except GraderError as exc:
        if isinstance(exc.__cause__, SandboxError):
            raise
        raise SelfTestError(f"grading {cand.label} as {student} failed: {exc}") from None
    except Exception as exc:
        raise SelfTestError(f"grading {cand.label} as {student} failed: the reference raised "
                            f"{_exc_line(exc)}") from None


def grade_candidate(ex: Exercise, cand: Candidate, student: str, runner=None) -> ExerciseResult:
    """Grade a trusted function (numpy, torch) or an answer's text (symbolic) as a
    student's submission, through :func:`dlgrade.graders.engine.grade`."""
    if cand.text is not None:
        name = f"{ex.entry}.txt"
        source = SubmissionSource(display_name=cand.label, main_name=name,
                                  files={name: cand.text.encode("utf-8")}, kind="text", text=cand.text)
        return engine.grade(ex, source, student, runner)
    source = SubmissionSource(display_name=cand.label, main_name=FILE_NAME,
                              files={FILE_NAME: b""}, kind="py")
    return engine.grade(ex, source, student, TrustedRunner(cand.fn))


def _reference(ex: Exercise) -> Candidate:
    try:
        fn = ex.reference_fn()
    except Exception as exc:
        raise SelfTestError(f"the reference {ex.reference!r} could not be loaded: {_exc_line(exc)}") from None
    if ex.framework == "symbolic":
        return Candidate("reference", text=_expression_text(fn, "the reference"))
    return Candidate("reference", fn=fn)


def _mistakes(ex: Exercise) -> list[tuple[str, Candidate]]:
    try:
        found = ex.mistake_fns()
    except Exception as exc:
        raise SelfTestError(f"the mistakes {ex.mistakes!r} could not be loaded: {_exc_line(exc)}") from None
    out = []
    for diag_id, fns in found.items():
        variants = list(fns) if isinstance(fns, (list, tuple)) else [fns]
        for i, fn in enumerate(variants):
            label = f"mistake {diag_id}" + (f" (variant {i + 1})" if len(variants) > 1 else "")
            if ex.framework == "symbolic":
                out.append((diag_id, Candidate(label, text=_expression_text(fn, label))))
            else:
                out.append((diag_id, Candidate(label, fn=fn)))
    return out


def _expression_text(fn: Callable, what: str) -> str:
    """A symbolic reference's expression, written as an answer (SymPy's own text form)."""
    try:
        return str(fn())
    except Exception as exc:
        raise SelfTestError(f"{what} could not be built: {_exc_line(exc)}") from None


def _exc_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}".rstrip(": ")


def exercises_to_test(target: str | None, every: bool, dirs=(),
                      warnings: list | None = None) -> list[Exercise]:
    """The exercises :func:`_exercises_named` picks, each probed against its reference
    (dlgrade.graders.spec_probe): a spec that cannot grade is a SpecError before any test;
    what is legal but suspicious is added to ``warnings``."""
    from dlgrade.graders.spec_probe import verified

    chosen = _exercises_named(target, every, dirs)
    for ex in chosen:
        found = verified(ex)
        if warnings is not None:
            warnings.extend(f"warning: {w}" for w in found)
    return chosen


def _exercises_named(target: str | None, every: bool, dirs=()) -> list[Exercise]:
    """What ``dlgrade test-exercise`` tests: the exercise ``target`` names (an id, or a
    folder holding a ``spec.toml``), or with ``every`` all those in the ``dirs`` folders
    (every exercise of the catalogue when no folder is named).

    Raises UnknownExercise for an unknown id, SpecError for a folder without a spec or
    a broken spec, ValueError when neither or both of ``target`` and ``every`` are given.
    """
    from pathlib import Path

    from dlgrade.graders.spec import SpecError, catalogue, get_exercise, load_exercise

    if bool(target) == bool(every):
        raise ValueError("name one exercise (an id or a folder) or give --all")
    if every:
        if not dirs:
            return list(catalogue().values())
        for d in dirs:
            if not Path(d).is_dir():
                raise SpecError(f"exercises folder {d} does not exist")
        cat = catalogue(dirs)
        wanted = {Path(d).resolve() for d in dirs}
        return [ex for ex in cat.values() if ex.folder.resolve().parent in wanted]
    path = Path(target)
    if path.is_dir():
        if not (path / "spec.toml").is_file():
            raise SpecError(f"{target}: no spec.toml in this folder (an exercise folder holds spec.toml, "
                            "statement.md and starter.py)")
        return [load_exercise(path.resolve())]
    if "/" in target or "\\" in target or path.exists():
        raise SpecError(f"{target}: no such exercise folder")
    return [get_exercise(target, dirs)]


# --------------------------------------------------------------------------- the rows


def _reference_row(ex: Exercise, ref: Candidate, ids: list[str], runner) -> Row:
    test = "reference"
    for student in ids:
        r = _graded(ex, ref, student, runner)
        problem = _not_full_marks(r)
        if problem:
            return Row(ex.id, test, False, f"{student}: {problem}")
    return Row(ex.id, test, True, f"full marks ({ex.max_score:g}/{ex.max_score:g}) under {len(ids)} "
                                  f"student id{'s' if len(ids) != 1 else ''}, no diagnosis")


def _not_full_marks(r: ExerciseResult) -> str:
    if r.status != "graded":
        return f"{r.status}: {r.message}"
    failed = next((c for c in r.checks if not c.passed and c.status != "skipped"), None)
    if failed is not None:
        return f"{_score(r)}; check {failed.name!r} failed: {failed.message}"
    if r.score < r.max_score:
        return _score(r)
    if r.diagnoses:
        return f"full marks but diagnosed {', '.join(r.diagnoses)}"
    return ""


def _score(r: ExerciseResult) -> str:
    return f"{r.score:g}/{r.max_score:g}"


def _mistake_row(ex: Exercise, diag_id: str, cand: Candidate, ids: list[str], runner) -> Row:
    test = cand.label
    for student in ids:
        r = _graded(ex, cand, student, runner)
        if r.status != "graded":
            return Row(ex.id, test, False, f"{student}: {r.status}: {r.message}")
        diagnosed = ", ".join(r.diagnoses) or "none"
        if r.score >= r.max_score:
            return Row(ex.id, test, False, f"{student}: full marks ({_score(r)}): no check tells this mistake "
                                           "from the reference")
        if diag_id not in r.diagnoses:
            return Row(ex.id, test, False, f"{student}: {_score(r)} but not diagnosed {diag_id} "
                                           f"(diagnoses: {diagnosed})")
    return Row(ex.id, test, True, f"loses points and is diagnosed {diag_id} under {len(ids)} student "
                                  f"id{'s' if len(ids) != 1 else ''} (last: {_score(r)}, diagnoses: {diagnosed})")


def _can_fail_rows(ex: Exercise, ref: Candidate, student: str, runner) -> list[Row]:
    perturbed = [(label, _graded(ex, cand, student, runner))
                 for label, cand in _perturbations(ex, ref, student, runner)]
    rows = []
    for check in ex.checks:
        test = f"check {check.name!r} can fail"
        results = [(label, _check_named(r, check.name)) for label, r in perturbed]
        ran = [(label, c) for label, c in results if c is not None and c.status != "skipped"]
        if not ran and any(c is not None and c.status == "skipped" for _, c in results):
            rows.append(Row(ex.id, test, True, "skipped on this machine (it needs a GPU): not tested here"))
            continue
        caught = [label for label, c in ran if not c.passed]
        if caught:
            rows.append(Row(ex.id, test, True, f"fails for: {'; '.join(caught)}"))
        else:
            tried = "; ".join(label for label, _ in perturbed)
            rows.append(Row(ex.id, test, False, f"passes every perturbed reference ({tried})"))
    return rows


def _check_named(r: ExerciseResult, name: str):
    if r.status != "graded":
        return None
    return next((c for c in r.checks if c.name == name), None)


def _determinism_row(ex: Exercise, cands: list[Candidate], student: str, runner) -> Row:
    test = "deterministic"
    for cand in cands:
        first = _fingerprint(_graded(ex, cand, student, runner))
        second = _fingerprint(_graded(ex, cand, student, runner))
        if first != second:
            where = next(k for k in first if first[k] != second[k])
            return Row(ex.id, test, False, f"{cand.label} graded twice as {student}: {where} differs "
                                           f"({first[where]!r} then {second[where]!r})")
    names = " and ".join(c.label for c in cands)
    return Row(ex.id, test, True, f"{names}: the same result twice as {student}")


def _fingerprint(r: ExerciseResult) -> dict[str, Any]:
    return {"status": r.status, "score": r.score, "message": r.message, "diagnoses": r.diagnoses,
            "checks": tuple((c.name, c.passed, c.score, c.message) for c in r.checks)}


# --------------------------------------------------------------------------- perturbations


def _perturbations(ex: Exercise, ref: Candidate, student: str, runner=None) -> list[tuple[str, Candidate]]:
    """Wrong references, each one simple way of being wrong, none of them raising.

    Shifting every number catches a wrong value; the others catch what a shift cannot:
    a wrong shape (every 2-D output transposed, offered when one is not square), a
    constant output or a model that learnt nothing (every output replaced by zeros: an
    argmax of shifted scores is unchanged, of zeros it is one class), a missing entry
    (a returned dict's first key dropped, for each dict returned), an output that no longer
    ignores a shift of its input (the first argument added to every output of its shape,
    offered when one has it) and a function that ignores the generator it is given (each
    numpy Generator argument replaced by one seeded from numpy's global generator,
    offered when the reference is handed one). What the reference returns and is handed is seen by grading it once,
    recorded (:class:`_Recorder`), so that kinds which build their calls' arguments
    themselves (training) are perturbed as well as those whose cases hold them.
    """
    if ref.text is not None:
        return [("an unreadable answer", Candidate("unreadable", text=f"(({ref.text}")),
                ("the expression shifted", Candidate("shifted", text=f"({ref.text})*{SCALE} + {OFFSET}"))]
    fn = ref.fn
    seen = _Recorder(fn)
    _graded(ex, Candidate("reference", fn=seen), student, runner)
    value = _reference_output(ex, fn, student)
    if value is None:
        value = seen.first
    out = [("every output shifted", Candidate("shifted", fn=_shifted(fn, None)))]
    paths: list[tuple] = []
    if value is not None:
        _walk(value, (), paths)
    paths = paths or [()]
    if len(paths) > 1:
        out += [(f"output {_path_text(p)} shifted", Candidate(f"shifted {_path_text(p)}", fn=_shifted(fn, p)))
                for p in paths]
    if value is not None and _has_oblong(value):
        out.append(("every 2-D output transposed", Candidate("transposed", fn=_mapped(fn, _transpose))))
    out.append(("every output replaced by zeros", Candidate("zeros", fn=_mapped(fn, _zeros))))
    if seen.first_arg_shape is not None and _has_shape(seen.first, seen.first_arg_shape):
        out.append(("the first argument added to every output of its shape",
                    Candidate("plus first argument", fn=_plus_first_argument(fn))))
    for path, key in _dict_keys(value, ()) if value is not None else []:
        where = f"output {_path_text(path)}" if path else "output"
        out.append((f"{where} key {key!r} dropped", Candidate(f"dropped {key!r}", fn=_dropped(fn, path, key))))
    if seen.handed_generator:
        out.append(("the rng argument ignored (numpy's global generator used)",
                    Candidate("ignores rng", fn=_ignoring_rng(fn))))
    out.append(("arguments modified in place", Candidate("mutates", fn=_mutating(fn))))
    if ex.framework == "torch":
        out += [("result detached from autograd", Candidate("detached", fn=_detached(fn))),
                ("result combined with a tensor made on the CPU", Candidate("cpu tensor", fn=_cpu_made(fn)))]
    return out


class _Recorder:
    """A trusted function that notes the first value it returns and whether it was ever
    handed a numpy Generator, and is otherwise that function."""

    def __init__(self, fn: Callable):
        self.fn, self.first, self.handed_generator = fn, None, False
        self.first_arg_shape: tuple | None = None  # of the first call's first argument, an array

    def __call__(self, *args, **kwargs):
        if any(isinstance(a, np.random.Generator) for a in [*args, *kwargs.values()]):
            self.handed_generator = True
        out = self.fn(*args, **kwargs)
        if self.first is None:
            self.first = out
            self.first_arg_shape = _shape_of(args[0]) if args and _is_array(args[0]) else None
        return out


def _reference_output(ex: Exercise, fn: Callable, student: str) -> Any:
    """What the reference returns on the checks' first case in the grader's own process
    (None when the checks name no case, or the case's arguments are not the spec's)."""
    names = sorted({n for c in ex.checks for n in c.cases})
    if not names:
        return None
    ctx = engine.Context(ex, student, make_cases(ex, student, names[:1]))
    try:
        return ctx.reference(names[0])
    except Exception:
        return None


def _walk(value, path: tuple, paths: list) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _walk(v, path + (k,), paths)
    elif isinstance(value, (tuple, list)):
        for i, v in enumerate(value):
            _walk(v, path + (i,), paths)
    elif isinstance(value, (np.ndarray, np.generic, int, float)):
        paths.append(path)


def _path_text(path: tuple) -> str:
    return "[" + ", ".join(repr(p) for p in path) + "]" if path else "[]"


def _shift(value):
    torch = _torch()
    if torch is not None and isinstance(value, torch.Tensor):
        return value * SCALE + OFFSET if value.is_floating_point() else value + 1
    if isinstance(value, bool) or (isinstance(value, (np.ndarray, np.generic)) and value.dtype == bool):
        return np.logical_not(value)
    if isinstance(value, (np.ndarray, np.generic)):
        if value.dtype.kind == "f":
            return (value * SCALE + OFFSET).astype(value.dtype)
        return value + 1
    if isinstance(value, float):
        return value * SCALE + OFFSET
    if isinstance(value, int):
        return value + 1
    return value


def _map_at(value, path: tuple | None, f: Callable, whole: bool = False):
    """``value`` with ``f`` applied to the leaf at ``path`` (every leaf when None; with
    ``whole``, to the value at ``path`` itself, a container or not)."""
    if path is not None and path:
        head, rest = path[0], path[1:]
        if isinstance(value, dict) and head in value:
            return {**value, head: _map_at(value[head], rest, f, whole)}
        if isinstance(value, (tuple, list)) and isinstance(head, int) and head < len(value):
            items = list(value)
            items[head] = _map_at(items[head], rest, f, whole)
            return type(value)(items) if isinstance(value, tuple) else items
        return value
    if whole:
        return f(value)
    if isinstance(value, dict):
        return {k: _map_at(v, None, f) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        items = [_map_at(v, None, f) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    return f(value)


def _shifted(fn: Callable, path: tuple | None) -> Callable:
    def shifted(*args, **kwargs):
        return _map_at(fn(*args, **kwargs), path, _shift)
    return shifted


def _mapped(fn: Callable, f: Callable) -> Callable:
    def mapped(*args, **kwargs):
        return _map_at(fn(*args, **kwargs), None, f)
    return mapped


def _is_array(value) -> bool:
    torch = _torch()
    return isinstance(value, np.ndarray) or (torch is not None and isinstance(value, torch.Tensor))


def _has_shape(value, shape: tuple) -> bool:
    """Whether some array in ``value`` has this shape."""
    found: list[bool] = []
    _map_at(value, None, lambda v: found.append(_is_array(v) and _shape_of(v) == shape))
    return any(found)


def _plus_first_argument(fn: Callable) -> Callable:
    """``fn`` with its first argument (as it was handed) added to every output array of
    that shape: an output that no longer ignores a shift of the input, say."""
    def plus_first_argument(*args, **kwargs):
        first = args[0] if args and _is_array(args[0]) else None
        if first is not None:
            first = first.detach().clone() if not isinstance(first, np.ndarray) else np.array(first, copy=True)
        out = fn(*args, **kwargs)
        if first is None:
            return out

        def add(v):
            if not _is_array(v) or _shape_of(v) != _shape_of(first) or v.dtype == bool:
                return v
            if isinstance(v, np.ndarray):
                return (v + np.asarray(first)).astype(v.dtype)
            torch = _torch()
            return v + torch.as_tensor(first).to(dtype=v.dtype, device=v.device)
        return _map_at(out, None, add)
    return plus_first_argument


def _shape_of(value) -> tuple:
    torch = _torch()
    if isinstance(value, np.ndarray) or (torch is not None and isinstance(value, torch.Tensor)):
        return tuple(value.shape)
    return ()


def _has_oblong(value) -> bool:
    """Whether some array in ``value`` has two or more dimensions, the last two unequal."""
    found: list[bool] = []
    _map_at(value, None, lambda v: found.append(len(_shape_of(v)) >= 2 and _shape_of(v)[-1] != _shape_of(v)[-2]))
    return any(found)


def _transpose(value):
    if len(_shape_of(value)) < 2:
        return value
    if isinstance(value, np.ndarray):
        return np.ascontiguousarray(np.swapaxes(value, -1, -2))
    return value.transpose(-1, -2).contiguous()


def _zeros(value):
    torch = _torch()
    if torch is not None and isinstance(value, torch.Tensor):
        return torch.zeros_like(value)
    if isinstance(value, (np.ndarray, np.generic)):
        return np.zeros_like(value)
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return type(value)(0)
    return value


def _dict_keys(value, path: tuple) -> list[tuple[tuple, Any]]:
    """``(path, first key)`` of each dict in ``value`` (tuples and lists walked)."""
    if isinstance(value, dict):
        found = [(path, next(iter(value)))] if value else []
        for k, v in value.items():
            found += _dict_keys(v, path + (k,))
        return found
    if isinstance(value, (tuple, list)):
        return [f for i, v in enumerate(value) for f in _dict_keys(v, path + (i,))]
    return []


def _dropped(fn: Callable, path: tuple, key) -> Callable:
    def dropped(*args, **kwargs):
        out = fn(*args, **kwargs)
        return _map_at(out, path, lambda d: {k: v for k, v in d.items() if k != key}, whole=True)
    return dropped


def _ignoring_rng(fn: Callable) -> Callable:
    """``fn`` handed, for each numpy Generator argument, one seeded from numpy's global
    generator instead (the worker seeds that per call, so the result is reproducible)."""
    def swap(a):
        if isinstance(a, np.random.Generator):
            return np.random.default_rng(int(np.random.randint(0, 2**32, dtype=np.int64)))
        return a

    def ignoring_rng(*args, **kwargs):
        return fn(*[swap(a) for a in args], **{k: swap(v) for k, v in kwargs.items()})
    return ignoring_rng


def _mutating(fn: Callable) -> Callable:
    def mutating(*args, **kwargs):
        out = fn(*args, **kwargs)
        for a in [*args, *kwargs.values()]:
            _mutate(a)
        return out
    return mutating


def _mutate(a) -> None:
    torch = _torch()
    if torch is not None and isinstance(a, torch.Tensor):
        with torch.no_grad():
            a.logical_not_() if a.dtype == torch.bool else a.add_(1)
    elif isinstance(a, np.ndarray) and a.size and a.flags.writeable:
        if a.dtype == bool:
            np.logical_not(a, out=a)
        else:
            a += 1


def _detached(fn: Callable) -> Callable:
    def detached(*args, **kwargs):
        torch = _torch()
        return _map_at(fn(*args, **kwargs), None,
                       lambda v: v.detach() if torch is not None and isinstance(v, torch.Tensor) else v)
    return detached


def _cpu_made(fn: Callable) -> Callable:
    def cpu_made(*args, **kwargs):
        torch = _torch()

        def combine(v):
            if torch is None or not isinstance(v, torch.Tensor) or not v.is_floating_point():
                return v
            return v + torch.zeros(tuple(v.shape) or (1,), dtype=v.dtype)  # never a CPU scalar
        return _map_at(fn(*args, **kwargs), None, combine)
    return cpu_made


def _torch():
    import sys

    return sys.modules.get("torch")


# --------------------------------------------------------------------------- the table


@dataclass
class Table:
    """The rows of several exercises' self-tests, as text."""

    tests: list[ExerciseTest] = field(default_factory=list)

    @property
    def failed(self) -> list[Row]:
        return [r for t in self.tests for r in t.rows if not r.passed]

    def lines(self) -> list[str]:
        rows = [r for t in self.tests for r in t.rows]
        w_ex = max([len("exercise")] + [len(r.exercise) for r in rows])
        w_test = max([len("test")] + [len(r.test) for r in rows])
        out = [f"{'exercise':<{w_ex}}  {'test':<{w_test}}  result  detail"]
        for r in rows:
            out.append(f"{r.exercise:<{w_ex}}  {r.test:<{w_test}}  {'ok' if r.passed else 'FAIL':<6}  {r.detail}")
        return out

    def to_dict(self) -> dict:
        """``{"passed": bool, "exercises": [{"exercise", "passed", "seconds", "rows":
        [{"test", "passed", "detail"}]}]}``."""
        return {"passed": not self.failed, "exercises": [
            {"exercise": t.exercise, "passed": t.passed, "seconds": round(t.seconds, 3),
             "rows": [{"test": r.test, "passed": r.passed, "detail": r.detail} for r in t.rows]}
            for t in self.tests]}

    def summary(self) -> str:
        n_rows = sum(len(t.rows) for t in self.tests)
        bad = self.failed
        broken = sorted({r.exercise for r in bad})
        seconds = sum(t.seconds for t in self.tests)
        head = (f"{len(self.tests)} exercise{'s' if len(self.tests) != 1 else ''}, {n_rows} tests, "
                f"{len(bad)} failed")
        tail = f" (in {', '.join(broken)})" if broken else ""
        return f"{head}{tail}; {seconds:.1f} s"
