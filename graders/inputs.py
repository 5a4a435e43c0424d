"""Seeded test inputs built from a spec's declarative ``[cases]``.

An argument is described by one generator key:

``{normal = [16, "C"], scale = 3.0}``, ``{uniform = [4, 5], low = -1, high = 1}``,
``{randint = ["N"], high = "C"}``, ``{value = [[20.0, 134.0, 854.0]]}``,
with optional ``dtype`` (default float64, int64 for ``randint``), ``torch = true``
(sent as a tensor; ``requires_grad = true`` to take its gradient) and
``where`` placing a special value: ``{where = [[0, 1]], set = -inf}``.
``{rng = true}`` is a numpy Generator (``np.random.default_rng(seed)``) of a seed drawn
here, built in the student's process (and by the grader for its references): a
generator never crosses the sandbox boundary.
Shapes may use the spec's ``[dims]`` names. Plain values (``axis = 0``) are
passed through as they are.

Seeds derive from the exercise, the student and the case name, so a regrade
gives the same inputs, and two students get different ones.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

GENERATORS = ("normal", "uniform", "randint", "value")


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
            np.array(a.value, copy=True) if a.is_array else a.value)
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
    if "normal" in spec:
        shape = tuple(_dim(d, dims) for d in spec["normal"])
        val = rng.normal(spec.get("loc", 0.0), spec.get("scale", 1.0), size=shape)
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


def make_case(name: str, spec: dict, dims: dict[str, int], seed: int) -> Case:
    rng = np.random.default_rng(seed)
    case_dims = {**dims, **spec.get("dims", {})}
    args = [make_arg(a, rng, case_dims) for a in spec.get("args", [])]
    kwargs = {k: make_arg(v, rng, case_dims) for k, v in spec.get("kwargs", {}).items()}
    meta = {k: v for k, v in spec.items() if k not in ("args", "kwargs", "dims")}
    return Case(name=name, args=args, kwargs=kwargs, seed=seed, meta=meta)


def make_cases(exercise, student: str, names) -> dict[str, Case]:
    """The named cases of an exercise, seeded for this student."""
    return {
        n: make_case(n, exercise.cases[n], exercise.dims, derive_seed(exercise.id, exercise.seed, student, n))
        for n in names
    }
