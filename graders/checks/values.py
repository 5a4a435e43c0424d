"""``kind = "values"``: the submission's output against the reference, case by case.

Structure before values, stopping at the first failure with a precise message:
a call that raised → the returned type → shape → dtype (when the spec asks)
→ non-finite values → values within a dtype-aware tolerance. For a ``torch``
exercise the result must be a tensor (a Python float or a numpy value fails
with a message that says so), and its dtype is the tensor's own.

Options: ``output`` (a path into the returned value, e.g. ``[1, "W1"]``),
``label`` (how messages name the output, default ``entry(...)``), ``rtol``,
``atol``, ``dtype = "same"`` (the float dtype of the input must be kept),
``nonfinite_diagnosis`` (a diagnosis id for non-finite output where the
reference is finite, e.g. ``overflow``, reported when no buggy reference of the
exercise reproduces that output: see :mod:`dlgrade.graders.nonfinite`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dlgrade.graders import nonfinite
from dlgrade.graders.checks.common import (
    call_diagnoses, call_failure_message, case_label, expected_type_word, label_of, result, returned_type_word,
)
from dlgrade.graders.compare import compare, fmt_index, fmt_num, tolerance_for
from dlgrade.graders.context import Context, leaf_array, select
from dlgrade.graders.job import Call
from dlgrade.graders.decoding import Leaf
from dlgrade.graders.checks.protocol import Compared, OutputPath
from dlgrade.graders.spec import CheckSpec


@dataclass(frozen=True)
class Options:
    output: OutputPath = field(default=(), metadata={"help": "where the compared value is in the returned one"})
    rtol: float | None = field(default=None, metadata={"help": "relative tolerance (default: by dtype)"})
    atol: float | None = field(default=None, metadata={"help": "absolute tolerance (default: by dtype)"})
    dtype: str = field(default="", metadata={"help": "\"same\": the input's float dtype must be kept"})
    nonfinite_diagnosis: str = field(default="", metadata={
        "help": "the diagnosis for non-finite output where the reference is finite"})


def validate(check: CheckSpec, exercise) -> str | None:
    if check.settings is not None and check.settings.dtype not in ("", "same"):
        return f'option dtype must be "same" (got "{check.settings.dtype}")'
    return None


def compared(check: CheckSpec, ctx: Context) -> list[Compared]:
    path = tuple(check.opt("output", ()))
    return [Compared(f"values:{case}", path) for case in check.cases]


def plan(check: CheckSpec, ctx: Context) -> list[Call]:
    # the call returns the whole value; selection happens here, so other checks can share it
    return [Call(id=f"values:{case}", case=case, compare=True) for case in check.cases]


def _input_float_dtype(ctx: Context, case: str) -> str | None:
    for a in ctx.cases[case].args:
        if a.is_array and a.value.dtype.kind == "f":
            return a.value.dtype.name
    return None


def evaluate_case(check: CheckSpec, ctx: Context, case: str, got_tree, path: tuple):
    """Returns ``(ok, message, details, diagnoses)`` for one case."""
    label = label_of(check, ctx)
    where = case_label(ctx, case)
    got = select(got_tree, path)
    expected = select(ctx.reference(case), path)
    exp = np.asarray(expected)
    if not isinstance(got, Leaf):
        return False, (f"{label} returned {returned_type_word(got)} on {where}; "
                       f"expected {expected_type_word(ctx, exp)}"), {"case": case}, ()
    g = got.array
    if ctx.exercise.framework == "numpy" and got.torch is not None:
        return False, f"{label} returned a torch tensor on {where}; expected a numpy array", {"case": case}, ()
    if ctx.exercise.framework == "torch" and got.torch is None:
        return False, (f"{label} returned {not_a_tensor_word(got)} on {where}; "
                       f"expected {expected_type_word(ctx, exp)}"), {"case": case}, ()
    if g.shape != exp.shape:
        hint = " — is it transposed?" if g.ndim == 2 and g.shape == exp.shape[::-1] else ""
        return False, (f"{label} has shape {tuple(g.shape)} on {where}; expected {tuple(exp.shape)}{hint}"), {
            "case": case, "shape": list(g.shape), "expected_shape": list(exp.shape)}, ()
    in_dtype = _input_float_dtype(ctx, case)
    got_dtype = got.torch.dtype if got.torch is not None else g.dtype.name  # float16 travels as float32
    if check.opt("dtype") == "same" and in_dtype and got_dtype != in_dtype:
        return False, (f"{label} returned {got_dtype} for {in_dtype} input on {where}; "
                       f"expected {in_dtype}"), {"case": case, "dtype": got_dtype, "expected_dtype": in_dtype}, ()
    rtol, atol = tolerance_for(in_dtype or g.dtype.name, check.opt("rtol"), check.opt("atol"))
    with np.errstate(invalid="ignore"):
        bad_nonfinite = ~np.isfinite(g.astype(float)) & np.isfinite(exp.astype(float))
    if bad_nonfinite.any():
        first = tuple(int(i) for i in np.argwhere(bad_nonfinite)[0]) if g.ndim else ()
        n = int(bad_nonfinite.sum())
        diag = nonfinite.explain(check, ctx, case, g, path)
        at = f"first at {fmt_index(first)}: {fmt_num(g[first])}" if g.ndim else f"got {fmt_num(g)}"
        return False, (f"{label} returned {n} non-finite value{'s' if n != 1 else ''} on {where} "
                       f"({at}); expected finite values"), {
            "case": case, "nonfinite": n, "first_index": list(first)}, diag
    mm = compare(g, exp, rtol, atol)
    details = {"case": case, **mm.as_details()}
    if not mm.ok:
        return False, f"{label} is wrong on {where}: {mm.summary()}", details, ()
    return True, "", details, ()


def not_a_tensor_word(got: Leaf) -> str:
    """How to name a number that is not a tensor: a Python float, a numpy array..."""
    if got.python:
        return f"a Python {got.python}"
    return "a numpy scalar" if got.array.ndim == 0 else "a numpy array"


def evaluate(check: CheckSpec, ctx: Context):
    path = tuple(check.opt("output", ()))
    per_case = []
    worst_abs = 0.0
    for case in check.cases:
        res = ctx.call(f"values:{case}")
        if res.status != "ok":
            return result(check, False, call_failure_message(check, ctx, case, res),
                          {"case": case, "cases": per_case, "error": res.error}, diagnoses=call_diagnoses(res))
        ok, message, details, diags = evaluate_case(check, ctx, case, res.output, path)
        per_case.append(details)
        if not ok:
            return result(check, False, message, {**details, "cases": per_case}, diagnoses=diags)
        worst_abs = max(worst_abs, float(details.get("max_abs", 0.0)) if isinstance(details.get("max_abs"), float) else 0.0)
    n = len(check.cases)
    label = label_of(check, ctx)
    msg = (f"{label} matches the reference on {n} input{'s' if n != 1 else ''} "
           f"(max abs error {fmt_num(worst_abs)})")
    return result(check, True, msg, {"cases": per_case, "max_abs": worst_abs})


def leaf(res, path):
    return leaf_array(select(res.output, path)) if res.status == "ok" else None
