"""``kind = "device-probe"``: device-portable code, checked on any machine, GPU or not.

Each case runs on the CPU and with its tensor arguments on PyTorch's *meta*
device, which has shapes and dtypes but no data, and enforces devices exactly
as a GPU does: a one-hot made on the CPU with ``torch.zeros(N, C)``, an
``eye(C)[target]`` lookup, a ``.numpy()`` of the input all raise there as they
would next to a CUDA tensor, while a CPU scalar or CPU indices stay allowed.
The worker's device tracker names the student's line that made the stray
tensor.

Evidence only: the check fails with ``device-mismatch`` when the meta run
raised one of torch's device errors, returned a tensor on another device, or
lost its gradients; code the meta device cannot follow because it needs data
(``.item()``, ``.cpu()``, ``F.one_hot`` without ``num_classes``) passes, as
nothing shows a device problem. A function that fails on the CPU fails here
too (with the same message), so a stub earns nothing.

This check runs identically on every machine, so it may carry points; the
real GPU check (``kind = "gpu"``) then adds what only real hardware shows.
"""
from __future__ import annotations

from dataclasses import dataclass

from dlgrade.graders.checks.common import error_text, label_of, result
from dlgrade.graders.checks.gpu import device_calls, examine, failure_details, finding_message
from dlgrade.graders.devices import Accelerator
from dlgrade.graders.context import Context
from dlgrade.graders.job import Call
from dlgrade.graders.spec import CheckSpec



@dataclass(frozen=True)
class Options:
    """No options of its own (``label`` is a key every check has)."""

META = Accelerator("meta")
ON = "the meta device (a stand-in for a GPU)"


def plan(check: CheckSpec, ctx: Context) -> list[Call]:
    return device_calls("probe", check.cases, META.device)


def evaluate(check: CheckSpec, ctx: Context):
    from dlgrade.graders.checks.autograd import arg_names

    label = label_of(check, ctx)
    stopped = None
    for case in check.cases:
        f = examine(ctx, case, "probe", META, arg_names(ctx))
        if not f.ok:
            return result(check, False, finding_message(check, ctx, case, f, ON, "probe"),
                          failure_details(f, case, META), diagnoses=f.diagnoses)
        if f.inconclusive and stopped is None:
            stopped = f.error
    n = len(check.cases)
    inputs = f"{n} input{'s' if n != 1 else ''}"
    if stopped is not None:
        return result(check, True, f"no device problem found in {label}: on {ON} it stopped at "
                                   f"{error_text(stopped)}, and code that needs the data is only checked on a real GPU",
                      {"device": "meta", "inconclusive": True, "error": stopped, "line": stopped.get("line")})
    return result(check, True, f"{label} keeps its tensors on the input's device "
                               f"({inputs} run on the meta device, a stand-in for a GPU)",
                  {"device": "meta", "inconclusive": False, "line": None})
