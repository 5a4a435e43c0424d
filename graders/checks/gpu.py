"""``kind = "gpu"``: the submission on a GPU, where the grading machine has one.

Without one (see :mod:`dlgrade.graders.devices`) the check is reported ``skipped: no
GPU``, worth 0 of 0, so the score is the same on every machine. A spec makes
GPU checks count with ``[gpu] required = true``; grading such an exercise
without a GPU is then an error (:class:`dlgrade.graders.devices.GpuUnavailable`),
never a zero.

Each case runs twice in the same job, on the CPU and with its tensor
arguments on the accelerator, both with ``backward()``. On the accelerator the
submission must, structure before values:

1. run wherever it runs on the CPU: an exception there is ``device-mismatch``,
   with the student's line that made the stray tensor when the worker's device
   tracker saw it (and the line of the failing operation from the traceback);
2. return a tensor on the input's device (``device-mismatch`` otherwise, with
   the line that made the returned tensor);
3. agree with its own CPU result within the input dtype's tolerance (the CPU
   result, not the reference: correctness is the other checks' business);
4. let autograd run there whenever it runs on the CPU, with gradients that
   agree with the CPU's.

Options: ``half = ["float16", "bfloat16"]`` also runs ``half_cases`` (default:
all the check's cases) with float arguments in those dtypes: the result must be
finite wherever the submission's own full-precision CPU result is (``overflow``
otherwise: a ``1e-12`` that rounds to 0, an ``exp`` past 65504) and within that
dtype's tolerance of it (``half_rtol``/``half_atol`` override). As for the
other comparisons, correctness itself is left to the other checks.

On a simulated ``meta`` accelerator (no values) only devices are checked, and
an exception counts as evidence only when it is a device error.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dlgrade.graders.checks.common import call_failure_message, case_label, error_text, label_of, result, skipped
from dlgrade.graders.compare import Mismatch, compare, fmt_index, fmt_num, tolerance_for
from dlgrade.graders.device_errors import names_missing_device
from dlgrade.graders.devices import Accelerator, accelerator
from dlgrade.graders.context import Context
from dlgrade.graders.job import Call, CallResult
from dlgrade.graders.decoding import Leaf, Opaque
from dlgrade.graders.checks.protocol import Names
from dlgrade.graders.spec import CheckSpec

META_TENSOR = Opaque("tensor on the meta device")
# Half precision is probed for stability, not precision: (rtol, atol) against the
# submission's own full-precision result, loose enough for any correct formula
# (a Python loop summing in bfloat16 included), tight enough for a blow-up.
HALF_TOLERANCES = {"float16": (5e-2, 1e-2), "bfloat16": (1e-1, 5e-2)}
HALF_DTYPES = ("float16", "bfloat16")
NO_GPU = "skipped: no GPU"


@dataclass(frozen=True)
class Options:
    half: Names = field(default=(), metadata={"help": "also run in these dtypes: float16, bfloat16"})
    half_cases: Names | None = field(default=None, metadata={"help": "the cases run in half precision"})
    half_rtol: float | None = field(default=None, metadata={"help": "relative tolerance in half precision"})
    half_atol: float | None = field(default=None, metadata={"help": "absolute tolerance in half precision"})
# What torch says when tensors of two devices meet (or a device tensor meets numpy).
DEVICE_ERRORS = (
    "Expected all tensors to be on the same device",
    "is not on the expected device",
    "indices should be either on cpu or on the same device",
    "device type tensor to numpy",
    "Expected object of device type",
)


# --------------------------------------------------------------------------- planning


def accelerator_for(ctx: Context) -> Accelerator | None:
    """The accelerator for this grading, decided once (plan and evaluate must agree)."""
    if "_gpu_accelerator" not in ctx.__dict__:
        ctx.__dict__["_gpu_accelerator"] = accelerator()
    return ctx.__dict__["_gpu_accelerator"]


def device_calls(prefix: str, cases, device: str, accelerator: bool = False) -> list[Call]:
    """Each case on the CPU and on ``device``, both with backward().

    ``accelerator=True`` sends the device runs to the GPU job (engine.run_accelerator_job).
    """
    calls = []
    for case in cases:
        calls.append(Call(id=f"{prefix}-cpu:{case}", case=case, backward=True))
        calls.append(Call(id=f"{prefix}:{case}", case=case, device=device, backward=True,
                          accelerator=accelerator))
    return calls


def half_cases(check: CheckSpec) -> tuple[str, ...]:
    return tuple(check.opt("half_cases", check.cases))


def plan(check: CheckSpec, ctx: Context) -> list[Call]:
    acc = accelerator_for(ctx)
    if acc is None:
        return []
    calls = device_calls("gpu", check.cases, acc.device, accelerator=True)
    for dtype in check.opt("half", ()):
        calls += [Call(id=f"gpu-{dtype}:{case}", case=case, device=acc.device, dtype=dtype, accelerator=True)
                  for case in half_cases(check)]
    return calls


# --------------------------------------------------------------------------- findings


@dataclass(frozen=True)
class Finding:
    """What one case showed on a device, before any wording.

    ``problem`` is "" (fine), ``cpu-failed``, ``not-run``, ``raised``, ``failed``,
    ``not-a-tensor``, ``wrong-device``, ``values``, ``backward``,
    ``no-graph``, ``grad-missing`` or ``grad-values``; ``inconclusive`` is set
    when a data-less device could not follow the code (no evidence either way).
    """

    problem: str = ""
    error: dict = field(default_factory=dict)
    stray: dict | None = None  # {"line", "code", "device"} of the tensor off the device
    got: object = None
    mismatch: Mismatch | None = None
    arg: str = ""
    backward_checked: bool = False
    inconclusive: bool = False

    @property
    def ok(self) -> bool:
        return not self.problem

    @property
    def line(self) -> int | None:
        if self.stray and self.stray.get("line"):
            return int(self.stray["line"])
        return self.error.get("line")

    @property
    def diagnoses(self) -> tuple[str, ...]:
        if self.problem == "cpu-failed" and names_missing_device(self.error):
            return ("device-mismatch",)  # a hard-coded .cuda() on a machine without CUDA
        return ("device-mismatch",) if self.problem in DEVICE_PROBLEMS else ()


DEVICE_PROBLEMS = ("raised", "wrong-device", "backward", "no-graph", "grad-missing")


def is_device_error(err: dict, device_type: str) -> bool:
    """Evidence that two devices met: torch's own wording, naming the device."""
    msg = str(err.get("message", ""))
    return any(p in msg for p in DEVICE_ERRORS) and device_type in msg


def tensor_device(value) -> str | None:
    """The device a returned value lives on, or None if it is not a tensor."""
    if isinstance(value, Opaque) and value == META_TENSOR:
        return "meta"
    if isinstance(value, Leaf) and value.torch is not None:
        return value.torch.device
    return None


def _same_device(got: str, want: str) -> bool:
    return got.split(":")[0] == want.split(":")[0]


def _input_dtype(ctx: Context, case: str) -> str:
    for a in ctx.cases[case].args:
        if a.is_array and a.value.dtype.kind == "f":
            return a.value.dtype.name
    return "float64"


def examine(ctx: Context, case: str, prefix: str, acc: Accelerator, names=None) -> Finding:
    """Compare the CPU run and the device run of one case (see the module docstring)."""
    cpu, dev = ctx.call(f"{prefix}-cpu:{case}"), ctx.call(f"{prefix}:{case}")
    if cpu.status != "ok":
        return Finding("cpu-failed", error=cpu.error)
    if dev.status == "not-run":  # the GPU job as a whole crashed or hung
        return Finding("not-run", error=ctx.extra.get("gpu_job", {}))
    if dev.status == "exception":
        if not acc.has_data and not is_device_error(dev.error, acc.device.split(":")[0]):
            return Finding(inconclusive=True, error=dev.error)
        return Finding("raised", error=dev.error, stray=dev.error.get("stray"))
    if dev.status != "ok":
        return Finding("failed", error=dev.error)
    got_device = tensor_device(dev.output)
    if got_device is None:
        return Finding("not-a-tensor", got=dev.output)
    if not _same_device(got_device, acc.device):
        return Finding("wrong-device", got=got_device, stray=dev.origin)
    rtol, atol = tolerance_for(_input_dtype(ctx, case))
    mismatch = None
    if acc.has_data and isinstance(cpu.output, Leaf) and isinstance(dev.output, Leaf):
        mismatch = _compare(dev.output.array, cpu.output.array, rtol, atol)
        if not mismatch.ok:
            return Finding("values", mismatch=mismatch)
    if cpu.backward.get("status") != "ok":
        return Finding(mismatch=mismatch)  # autograd fails on the CPU too: the autograd check says so
    return _examine_backward(ctx, case, cpu, dev, acc, mismatch, rtol, atol, names or [])


def _examine_backward(ctx, case, cpu: CallResult, dev: CallResult, acc: Accelerator, mismatch,
                      rtol, atol, names) -> Finding:
    status = dev.backward.get("status")
    if status == "no-graph":
        return Finding("no-graph", mismatch=mismatch)
    if status != "ok":
        err = dev.backward.get("error") or {}
        if not acc.has_data and not is_device_error(err, acc.device.split(":")[0]):
            return Finding(inconclusive=True, error=err, mismatch=mismatch)
        return Finding("backward", error=err, stray=err.get("stray"), mismatch=mismatch)
    cpu_grads, dev_grads = cpu.backward.get("grads", []), dev.backward.get("grads", [])
    for i, cg in enumerate(cpu_grads):
        if not isinstance(cg, Leaf):
            continue
        name = names[i] if i < len(names) else f"argument #{i + 1}"
        dg = dev_grads[i] if i < len(dev_grads) else None
        if tensor_device(dg) is None:
            return Finding("grad-missing", arg=name, mismatch=mismatch)
        if acc.has_data and isinstance(dg, Leaf):
            mm = _compare(dg.array, cg.array, rtol, atol)
            if not mm.ok:
                return Finding("grad-values", arg=name, mismatch=mm)
    return Finding(mismatch=mismatch, backward_checked=True)


def _compare(got: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> Mismatch:
    if got.shape != expected.shape:  # a shape that changes with the device: every element differs
        n = max(int(expected.size), 1)
        return Mismatch(False, n, n, float("inf"), float("inf"), (), float("nan"), float("nan"), rtol, atol)
    return compare(got, expected, rtol, atol)


# --------------------------------------------------------------------------- wording


def stray_note(stray: dict | None, returned: bool = False) -> str:
    """``; the tensor on cpu was made on line 7: q = torch.zeros(N, C)`` (empty when unknown)."""
    if not stray or not stray.get("line"):
        return ""
    what = "it" if returned else f"the tensor on {stray.get('device', 'the CPU')}"
    code = f": {stray['code']}" if stray.get("code") else ""
    return f"; {what} was made on line {stray['line']}{code}"


def finding_message(check: CheckSpec, ctx: Context, case: str, f: Finding, on: str, prefix: str) -> str:
    """One line for a failed finding; ``on`` names the device (``cuda:0``, ``cpu (simulated GPU)``)."""
    label = label_of(check, ctx)
    where = case_label(ctx, case)
    p = f.problem
    if p == "cpu-failed":
        return call_failure_message(check, ctx, case, ctx.call(f"{prefix}-cpu:{case}"))
    if p == "raised":
        return f"{label} raised {error_text(f.error)} with its inputs on {on}, on {where}{stray_note(f.stray)}"
    if p == "not-run":
        why = f.error.get("message") or "it did not run"
        return f"{label} did not complete with its inputs on {on}, on {where}: {why}"
    if p == "failed":
        return f"{call_failure_message(check, ctx, case, ctx.call(f'{prefix}:{case}'))} with its inputs on {on}"
    if p == "not-a-tensor":
        from dlgrade.graders.checks.common import returned_type_word
        from dlgrade.graders.checks.values import not_a_tensor_word

        word = not_a_tensor_word(f.got) if isinstance(f.got, Leaf) else returned_type_word(f.got)
        return f"{label} returned {word} with its inputs on {on}, on {where}; expected a tensor on that device"
    if p == "wrong-device":
        return (f"{label} returned a tensor on {f.got} for inputs on {on}, on {where}"
                f"{stray_note(f.stray, returned=True)}")
    if p == "values":
        return f"{label} gives different results on {on} and on the CPU, on {where}: {f.mismatch.summary()}"
    if p == "no-graph":
        return (f"{label} returned a tensor with no autograd history with its inputs on {on}, on {where} "
                "(it has one on the CPU)")
    if p == "backward":
        return f"backward() through {label} raised {error_text(f.error)} on {on}, on {where}{stray_note(f.stray)}"
    if p == "grad-missing":
        return f"backward() through {label} left {f.arg}.grad empty on {on}, on {where}"
    if p == "grad-values":
        return f"the gradient w.r.t. {f.arg} differs between {on} and the CPU, on {where}: {f.mismatch.summary()}"
    raise ValueError(f"unknown finding {p!r}")


def failure_details(f: Finding, case: str, acc: Accelerator) -> dict:
    return {"device": acc.device, "simulated": acc.simulated, "case": case,
            "cpu_vs_gpu": f.mismatch.as_details() if f.mismatch else {}, "line": f.line,
            "stray": f.stray, "error": f.error, "problem": f.problem}


# --------------------------------------------------------------------------- half precision


def examine_half(check: CheckSpec, ctx: Context, case: str, dtype: str, acc: Accelerator):
    """``(message, diagnoses, details)`` of a failed half-precision run, or None when fine."""
    label = label_of(check, ctx)
    where = case_label(ctx, case)
    on = acc.describe()
    res = ctx.call(f"gpu-{dtype}:{case}")
    details = {"device": acc.device, "simulated": acc.simulated, "case": case, "dtype": dtype,
               "cpu_vs_gpu": {}, "line": res.error.get("line") if res.error else None}
    if res.status == "exception":
        if not acc.has_data:
            return None
        return (f"{label} raised {error_text(res.error)} on {dtype} inputs on {on}, on {where}", (),
                {**details, "error": res.error})
    if res.status == "not-run":
        why = ctx.extra.get("gpu_job", {}).get("message") or "it did not run"
        return f"{label} did not complete on {dtype} inputs on {on}, on {where}: {why}", (), details
    if res.status != "ok":
        return f"{call_failure_message(check, ctx, case, res)} on {dtype} inputs on {on}", (), details
    if not acc.has_data:
        return None
    got = res.output
    if not isinstance(got, Leaf):
        from dlgrade.graders.checks.common import returned_type_word

        return (f"{label} returned {returned_type_word(got)} on {dtype} inputs on {on}, on {where}; "
                "expected a tensor"), (), details
    cpu = ctx.call(f"gpu-cpu:{case}")
    if not isinstance(cpu.output, Leaf):  # nothing to compare with: the CPU run already fails elsewhere
        return None
    g, exp = got.array.astype(np.float64), cpu.output.array.astype(np.float64)
    if g.shape != exp.shape:
        return (f"{label} has shape {tuple(g.shape)} on {dtype} inputs on {on}, on {where}; "
                f"expected {tuple(exp.shape)} as in full precision"), (), details
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(g) & np.isfinite(exp)
    if bad.any():
        n = int(bad.sum())
        first = tuple(int(i) for i in np.argwhere(bad)[0]) if g.ndim else ()
        return (f"{label} returned {n} non-finite value{'s' if n != 1 else ''} on {dtype} inputs on {on}, "
                f"on {where} ({f'first at {fmt_index(first)}: {fmt_num(g[first])}' if g.ndim else f'got {fmt_num(g)}'}); "
                "expected finite values as in full precision"), ("overflow",), {**details, "nonfinite": n}
    rtol, atol = HALF_TOLERANCES[dtype]
    rtol, atol = float(check.opt("half_rtol", rtol)), float(check.opt("half_atol", atol))
    mm = compare(g, exp, rtol, atol)
    if not mm.ok:
        return (f"{label} loses precision on {dtype} inputs on {on}, on {where}: {mm.summary()}", (),
                {**details, "cpu_vs_gpu": mm.as_details()})
    return None


# --------------------------------------------------------------------------- the check


def evaluate(check: CheckSpec, ctx: Context):
    acc = accelerator_for(ctx)
    if acc is None:
        return skipped(check, NO_GPU, {"device": None, "cpu_vs_gpu": {}, "line": None})
    from dlgrade.graders.checks.autograd import arg_names

    on = acc.describe()
    worst, backward_checked, per_case = 0.0, False, []
    for case in check.cases:
        f = examine(ctx, case, "gpu", acc, arg_names(ctx))
        if not f.ok:
            return result(check, False, finding_message(check, ctx, case, f, on, "gpu"),
                          failure_details(f, case, acc), diagnoses=f.diagnoses)
        per_case.append({"case": case, "cpu_vs_gpu": f.mismatch.as_details() if f.mismatch else {}})
        if f.mismatch is not None:
            worst = max(worst, f.mismatch.max_abs)
        backward_checked |= f.backward_checked
    half = tuple(check.opt("half", ()))
    for dtype in half:
        for case in half_cases(check):
            failed = examine_half(check, ctx, case, dtype, acc)
            if failed:
                message, diags, details = failed
                return result(check, False, message, details, diagnoses=diags)
    parts = ["results on the input's device"]
    if acc.has_data:
        parts.append(f"same values as on the CPU (max abs difference {fmt_num(worst)})")
    if backward_checked:
        parts.append("gradients flow")
    if half and acc.has_data:
        parts.append(f"stable in {' and '.join(half)}")
    n = len(check.cases)
    return result(check, True, f"{label_of(check, ctx)} runs on {on}: {', '.join(parts)} "
                               f"({n} input{'s' if n != 1 else ''})",
                  {"device": acc.device, "simulated": acc.simulated, "cpu_vs_gpu": per_case[-1]["cpu_vs_gpu"]
                   if per_case else {}, "line": None, "cases": per_case})
