"""Seeded test inputs built from a spec's declarative ``[cases]``.

An argument is described by one generator key:

``{normal = [16, "C"], scale = 3.0}``, ``{uniform = [4, 5], low = -1, high = 1}``,
``{randint = ["N"], high = "C"}``, ``{value = [[20.0, 134.0, 854.0]]}`` (``{value = {lr = 0.1}}``:
a literal table, handed over as a dict),
with optional ``dtype`` (default float64, int64 for ``randint``), ``torch = true``
(sent as a tensor; ``requires_grad = true`` to take its gradient) and
``where`` placing a special value: ``{where = [[0, 1]], set = -inf}``.
``{rng = true}`` is a numpy Generator (``np.random.default_rng(seed)``) of a seed drawn
here, built in the student's process (and by the grader for its references): a
generator never crosses the sandbox boundary.
Shapes may use the spec's ``[dims]`` names. Plain values (``axis = 0``) are
passed through as they are; a table is always a generator, and what each may say is
checked when the spec loads (:mod:`dlgrade.graders.case_specs`).

Seeds derive from the exercise, the student and the case name, so a regrade
gives the same inputs, and two students get different ones. Fairness (a score
depends on the code, never on the student id) asks every such case to be well
conditioned for every seed, which these options make explicit:

- ``bound = B`` on a ``normal`` argument: a truncated normal, every value within
  ``loc ± B`` (values drawn outside are drawn again), so no student gets a
  four-sigma outlier that another does not.
- a list ``scale`` broadcasts against the shape (``scale = [[0.01], [100.0]]``:
  rows at different scales).
- ``condition = "module:function"`` on a case: a predicate over the case's
  arguments (plain arrays); inputs it refuses are drawn again from the next
  seed of the same student, so e.g. every softmax probability of a network's
  scores stays far from 0 (see :mod:`dlgrade.reference.conditioning`).
- ``shared = true`` on a case: one seed for every student (the exercise and case
  name only). Cases named for extreme values (large logits, ...) use it, so the
  extremes are the same for everyone.
"""
from __future__ import annotations

import copy as copy_module
import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dlgrade.graders.case_specs import CASE_KEYS, GENERATORS, case_problem  # noqa: F401 (checked at load)
from dlgrade.graders.spec import SpecError
from dlgrade.graders.threads import one_torch_thread

CONDITION_ATTEMPTS = 64  # redraws a condition may ask for before the spec is called broken
_REDRAW_ROUNDS = 200  # truncation: redraw rounds before the last few outliers are clipped


class CaseError(SpecError):
    """A case's inputs cannot be built as the spec describes: the spec's problem (exit 2),
    never the student's."""


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed from any printable parts (never Python's salted hash)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass
class Arg:
    """One generated argument: its value and how to hand it to the student."""

    value: Any
    torch: bool = False
    requires_grad: bool = False
    dtype: str = ""
    rng: int | None = None  # ``{rng = true}``: a numpy Generator of this seed, built where the call runs

    def generator(self) -> np.random.Generator:
        """A fresh generator of this argument's seed (the grader's own, for a reference)."""
        return np.random.default_rng(self.rng)

    @property
    def is_array(self) -> bool:
        return isinstance(self.value, np.ndarray)


@dataclass
class Case:
    name: str
    args: list[Arg]
    kwargs: dict[str, Arg]
    seed: int
    meta: dict[str, Any] = field(default_factory=dict)

    def arrays(self) -> tuple[list, dict]:
        """Fresh copies of the plain values (for calling a reference)."""
        copy = lambda a: a.generator() if a.rng is not None else (  # noqa: E731
            np.array(a.value, copy=True) if a.is_array else copy_module.deepcopy(a.value))
        return [copy(a) for a in self.args], {k: copy(v) for k, v in self.kwargs.items()}


def _dim(x, dims: dict[str, int]) -> int:
    if isinstance(x, str):
        if x not in dims:
            raise KeyError(f"unknown dimension {x!r}")
        return int(dims[x])
    return int(x)


def make_arg(spec: Any, rng: np.random.Generator, dims: dict[str, int]) -> Arg:
    if isinstance(spec, dict) and spec.get("rng") is True and len(spec) == 1:
        return Arg(value=None, rng=int(rng.integers(0, 2**63 - 1)))
    if not isinstance(spec, dict) or not any(k in spec for k in GENERATORS):
        return Arg(value=spec)
    if isinstance(spec.get("value"), dict):  # {value = {lr = 0.1}}: a literal table
        return Arg(value=dict(spec["value"]))
    if "normal" in spec:
        shape = tuple(_dim(d, dims) for d in spec["normal"])
        # a list scale broadcasts against the shape: [[0.01], [100.0]] gives rows at two scales
        scale = np.broadcast_to(np.asarray(spec.get("scale", 1.0), dtype=float), shape)
        val = rng.normal(spec.get("loc", 0.0), scale, size=shape)
        if "bound" in spec:
            val = _truncate(val, rng, float(spec.get("loc", 0.0)), scale, float(spec["bound"]))
    elif "uniform" in spec:
        shape = tuple(_dim(d, dims) for d in spec["uniform"])
        val = rng.uniform(spec.get("low", 0.0), spec.get("high", 1.0), size=shape)
    elif "randint" in spec:
        shape = tuple(_dim(d, dims) for d in spec["randint"])
        val = rng.integers(_dim(spec.get("low", 0), dims), _dim(spec["high"], dims), size=shape)
        if spec.get("cover", False) and val.size >= _dim(spec["high"], dims):
            # make sure every class appears at least once (bugs hide in absent classes)
            val.flat[: _dim(spec["high"], dims)] = np.arange(_dim(spec["high"], dims))
            rng.shuffle(val.reshape(-1))
    else:
        val = np.array(spec["value"], dtype=float if "dtype" not in spec else None)
    default = "int64" if "randint" in spec else "float64"
    dtype = spec.get("dtype", default)
    val = np.asarray(val).astype(dtype)
    if "where" in spec:
        for idx in spec["where"]:
            val[tuple(idx)] = spec["set"]
    return Arg(value=val, torch=bool(spec.get("torch", False)),
               requires_grad=bool(spec.get("requires_grad", False)), dtype=dtype)


def _truncate(val: np.ndarray, rng: np.random.Generator, loc: float, scale, bound: float) -> np.ndarray:
    """A normal draw truncated to ``loc ± bound``: outliers are drawn again (same generator)."""
    scale = np.broadcast_to(np.asarray(scale, dtype=float), np.shape(val))
    for _ in range(_REDRAW_ROUNDS):
        out = np.abs(val - loc) > bound
        if not out.any():
            return val
        val[out] = rng.normal(loc, scale[out])
    return np.clip(val, loc - bound, loc + bound)  # only for a bound far below the scale


def make_case(name: str, spec: dict, dims: dict[str, int], seed: int) -> Case:
    rng = np.random.default_rng(seed)
    case_dims = {**dims, **spec.get("dims", {})}
    args = [_made(name, f"argument {i + 1}", a, rng, case_dims) for i, a in enumerate(spec.get("args", []))]
    kwargs = {k: _made(name, f"keyword argument {k!r}", v, rng, case_dims)
              for k, v in spec.get("kwargs", {}).items()}
    meta = {k: v for k, v in spec.items() if k not in ("args", "kwargs", "dims")}
    return Case(name=name, args=args, kwargs=kwargs, seed=seed, meta=meta)


def _made(case: str, label: str, spec: Any, rng: np.random.Generator, dims: dict[str, int]) -> Arg:
    """One argument, or CaseError naming the case and the argument: what the checks made when
    the spec loaded could not see (``set = inf`` in an integer array, say)."""
    try:
        return make_arg(spec, rng, dims)
    except (ArithmeticError, IndexError, KeyError, TypeError, ValueError) as exc:
        why = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise CaseError(f"case {case!r}: {label} cannot be built: {why}") from None


def case_seed(exercise, student: str, name: str, attempt: int = 0) -> int:
    """The seed of one case: per student, or the same for all with ``shared = true``;
    ``attempt`` > 0 when a ``condition`` refused the earlier draws."""
    spec = exercise.cases[name]
    who = "*shared*" if spec.get("shared", False) else student
    parts = (exercise.id, exercise.seed, who, name) + ((attempt,) if attempt else ())
    return derive_seed(*parts)


def build_case(exercise, student: str, name: str, condition=None) -> Case:
    """One case for this student; redrawn until ``condition(*args, **kwargs)`` holds.

    Raises CaseError when no draw satisfies the condition (the spec asks for too much)."""
    spec = exercise.cases[name]
    for attempt in range(CONDITION_ATTEMPTS if condition is not None else 1):
        case = make_case(name, spec, exercise.dims, case_seed(exercise, student, name, attempt))
        if condition is None:
            return case
        args, kwargs = case.arrays()
        with np.errstate(all="ignore"), one_torch_thread():
            if condition(*args, **kwargs):
                return case
    raise CaseError(f"{exercise.id}: case {name!r}: no inputs satisfied its condition "
                    f"{spec['condition']!r} in {CONDITION_ATTEMPTS} draws")


def make_cases(exercise, student: str, names) -> dict[str, Case]:
    """The named cases of an exercise, seeded for this student (see the module docstring)."""
    conditions = getattr(exercise, "case_conditions", lambda: {})()
    return {n: build_case(exercise, student, n, conditions.get(n)) for n in names}
