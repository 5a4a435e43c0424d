"""``kind = "autograd"``: the result can be differentiated, and its gradient is right.

For each case the worker calls the submission with the ``requires_grad``
arguments as leaves, calls ``.backward()`` on the result (its sum if it is not
a scalar) and ships each leaf's ``.grad``. Here, in the grader, the reference
is differentiated the same way by torch autograd and the gradients compared
with a dtype-aware tolerance.

Structure before values: a call that raised → a result that is not a tensor →
a tensor with no autograd history → ``backward()`` failing → a missing
gradient → its shape → its values. Every failure before the values is the
``not-differentiable`` diagnosis (a call that raised only when autograd's own
error says so, e.g. ``.numpy()`` on a tensor that requires grad, or an
in-place change of a leaf).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from dlgrade.graders.checks.common import (
    call_diagnoses, call_failure_message, case_label, error_text, label_of, result, returned_type_word,
)
from dlgrade.graders.compare import compare, fmt_num, tolerance_for
from dlgrade.graders.context import Context, to_torch
from dlgrade.graders.job import Call
from dlgrade.graders.decoding import Leaf
from dlgrade.graders.spec import CheckSpec
from dlgrade.graders.threads import one_torch_thread


@dataclass(frozen=True)
class Options:
    rtol: float | None = field(default=None, metadata={"help": "relative tolerance of the gradients"})
    atol: float | None = field(default=None, metadata={"help": "absolute tolerance of the gradients"})

# Errors torch raises when autograd is cut or broken in the forward pass itself.
AUTOGRAD_ERRORS = (
    "Can't call numpy() on Tensor that requires grad",
    "a leaf Variable that requires grad is being used in an in-place operation",
    "does not require grad and does not have a grad_fn",
)


def plan(check: CheckSpec, ctx: Context) -> list[Call]:
    return [Call(id=f"autograd:{case}", case=case, backward=True) for case in check.cases]


def arg_names(ctx: Context) -> list[str]:
    """Parameter names from the spec's signature (``f(logits, target, epsilon) -> ...``)."""
    m = re.match(r"\s*\w+\s*\(([^)]*)\)", ctx.exercise.signature or "")
    if not m:
        return []
    return [p.split("=")[0].split(":")[0].strip() for p in m.group(1).split(",") if p.strip()]


def arg_word(ctx: Context, i: int) -> str:
    names = arg_names(ctx)
    return names[i] if i < len(names) and names[i] else f"argument #{i + 1}"


def reference_grads(ctx: Context, case: str) -> list:
    """The reference's gradient w.r.t. each ``requires_grad`` argument (None for the others).

    Computed here by torch autograd, once per case (cached on the context).
    """
    cache = ctx.__dict__.setdefault("_autograd_reference", {})
    if case not in cache:
        import torch

        c = ctx.cases[case]
        args, kwargs = c.arrays()
        targs = [to_torch(a, spec) for a, spec in zip(args, c.args)]
        tkwargs = {k: to_torch(v, c.kwargs[k]) for k, v in kwargs.items()}
        with one_torch_thread():
            out = ctx.exercise.reference_fn()(*targs, **tkwargs)
            (out if out.numel() == 1 else out.sum()).backward()
        cache[case] = [t.grad.detach().double().numpy()
                       if isinstance(t, torch.Tensor) and t.grad is not None else None for t in targs]
    return cache[case]


def _autograd_error(err: dict) -> bool:
    return any(marker in str(err.get("message", "")) for marker in AUTOGRAD_ERRORS)


def evaluate_case(check: CheckSpec, ctx: Context, case: str):
    """``(ok, message, details, diagnoses, max_abs)`` for one case."""
    label = label_of(check, ctx)
    where = case_label(ctx, case)
    res = ctx.call(f"autograd:{case}")
    details: dict = {"case": case}
    if res.status != "ok":
        diag = ("not-differentiable",) if res.status == "exception" and _autograd_error(res.error) \
            else call_diagnoses(res)
        details.update(error=res.error, line=res.error.get("line"))
        return False, call_failure_message(check, ctx, case, res), details, diag, 0.0
    out = res.output
    if not isinstance(out, Leaf):
        return False, f"{label} returned {returned_type_word(out)} on {where}; expected a tensor", details, (), 0.0
    if out.torch is None:
        from dlgrade.graders.checks.values import not_a_tensor_word

        return False, (f"{label} returned {not_a_tensor_word(out)} on {where}, not a tensor: "
                       "autograd cannot differentiate it"), details, ("not-differentiable",), 0.0
    bw = res.backward
    status = bw.get("status")
    if status == "no-graph":
        return False, (f"{label} returned a tensor with no autograd history on {where} "
                       "(no grad_fn: was it detached, or rebuilt from numpy or Python numbers?)"), \
            details, ("not-differentiable",), 0.0
    if status != "ok":
        err = bw.get("error") or {}
        details.update(error=err, line=err.get("line"))
        return False, f"backward() through {label} raised {error_text(err)} on {where}", \
            details, ("not-differentiable",), 0.0
    expected = reference_grads(ctx, case)
    grads = bw.get("grads", [])
    worst = 0.0
    per_arg = []
    for i, exp in enumerate(expected):
        if exp is None:
            continue
        name = arg_word(ctx, i)
        got = grads[i] if i < len(grads) else None
        if not isinstance(got, Leaf):
            return False, (f"backward() through {label} left {name}.grad empty on {where}: the result "
                           f"is not connected to {name} (was it rebuilt with torch.tensor(...)?)"), \
                details, ("not-differentiable",), 0.0
        g = got.array
        if g.shape != exp.shape:
            return False, (f"the gradient w.r.t. {name} has shape {tuple(g.shape)} on {where}; "
                           f"expected {tuple(exp.shape)}"), details, (), 0.0
        rtol, atol = tolerance_for(ctx.cases[case].args[i].value.dtype.name, check.opt("rtol"), check.opt("atol"))
        # A gradient is judged at its own scale: its small elements carry the rounding of the
        # large ones (a correct loss computed in float32 from float64 logits is off by ~1e-8
        # everywhere), so an absolute error up to rtol x the largest |element| is allowed. Left
        # at the dtype's atol, whether such code passed depended on the student's seed.
        if exp.size and np.isfinite(exp).all():
            atol = max(atol, rtol * float(np.abs(exp).max()))
        mm = compare(g, exp, rtol, atol)
        per_arg.append({"name": name, **mm.as_details()})
        details["grads"] = per_arg
        if not mm.ok:
            return False, f"the gradient of {label} w.r.t. {name} is wrong on {where}: {mm.summary()}", \
                details, (), 0.0
        worst = max(worst, mm.max_abs)
    return True, "", details, (), worst


def evaluate(check: CheckSpec, ctx: Context):
    per_case = []
    worst = 0.0
    for case in check.cases:
        ok, message, details, diags, max_abs = evaluate_case(check, ctx, case)
        per_case.append(details)
        if not ok:
            return result(check, False, message, {**details, "cases": per_case}, diagnoses=diags)
        worst = max(worst, max_abs)
    names = sorted({g["name"] for d in per_case for g in d.get("grads", [])})
    n = len(check.cases)
    return result(check, True,
                  f"the gradient of {label_of(check, ctx)} w.r.t. {', '.join(names) or 'its inputs'} matches "
                  f"autograd's reference on {n} input{'s' if n != 1 else ''} (max abs error {fmt_num(worst)})",
                  {"cases": per_case, "max_abs": worst})
