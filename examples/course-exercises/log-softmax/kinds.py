"""This course's own check kind: a property of the answer, checked on the student's own outputs.

``kind = "shift-invariance"`` calls the student's function on a case and on the
same case with ``shift`` added to every element of the first argument; the two
results must agree (softmax and log-softmax depend only on differences of logits).
"""
from dataclasses import dataclass, field

import numpy as np

from dlgrade.graders.checks.common import call_failure_message, case_label, label_of, result
from dlgrade.graders.checks.protocol import Compared
from dlgrade.graders.compare import compare, tolerance_for
from dlgrade.graders.context import leaf_array
from dlgrade.graders.job import Call


class ShiftInvariance:
    """Adding a constant to every logit must not change the answer."""

    name = "shift-invariance"
    frameworks = ("numpy",)

    @dataclass(frozen=True)
    class Options:
        shift: float = field(default=100.0, metadata={"help": "the constant added to every logit"})
        rtol: float = field(default=1e-6, metadata={"help": "relative tolerance between the two results"})

        def validate(self) -> str:
            """The values together: a shift of 0 would compare a call with itself."""
            return "option 'shift' must not be 0 (the check would compare a result with itself)" if \
                self.shift == 0 else ""

    def plan(self, check, ctx):
        calls = []
        for case in check.cases:
            z = ctx.cases[case].args[0].value
            calls.append(Call(id=f"values:{case}", case=case))  # shared with a values check on the same case
            calls.append(Call(id=f"shifted:{case}", case=case, perturb={0: {"add": {"npy": "ones.npy",
                                                                               "scale": check.settings.shift}}},
                              arrays={"ones.npy": np.ones_like(z)}))
        return calls

    def evaluate(self, check, ctx):
        label = label_of(check, ctx)
        for case in check.cases:
            base, shifted = ctx.call(f"values:{case}"), ctx.call(f"shifted:{case}")
            for res in (base, shifted):
                if res.status != "ok":
                    return result(check, False, call_failure_message(check, ctx, case, res), {"case": case})
            a, b = leaf_array(base.output), leaf_array(shifted.output)
            if a is None or b is None or a.shape != b.shape:
                return result(check, False, f"{label} does not return arrays of one shape on {case_label(ctx, case)}",
                              {"case": case})
            _, atol = tolerance_for(a.dtype.name)
            mm = compare(b, a, check.settings.rtol, atol)
            if not mm.ok:
                return result(check, False, (f"{label} changes when {check.settings.shift:g} is added to every "
                                             f"logit on {case_label(ctx, case)}: {mm.summary()}"),
                              {"case": case, **mm.as_details()})
        return result(check, True, f"{label} is unchanged when {check.settings.shift:g} is added to every logit",
                      {"cases": list(check.cases)})

    def compared(self, check, ctx):
        return [Compared(f"values:{case}") for case in check.cases]
