"""``kind = "no-mutation"``: the submission must not modify its array arguments.

The arguments are sent back after the call and compared here, element by
element, with what was sent. A change is reported as ``mutates-input``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlgrade.graders.checks.common import call_failure_message, case_label, label_of, result
from dlgrade.graders.context import Context
from dlgrade.graders.job import Call
from dlgrade.graders.decoding import Leaf
from dlgrade.graders.spec import CheckSpec



@dataclass(frozen=True)
class Options:
    """No options of its own (``label`` is a key every check has)."""


def plan(check: CheckSpec, ctx: Context) -> list[Call]:
    return [Call(id=f"mutation:{case}", case=case, watch=True) for case in check.cases]


def evaluate(check: CheckSpec, ctx: Context):
    label = label_of(check, ctx)
    for case in check.cases:
        res = ctx.call(f"mutation:{case}")
        if res.status != "ok":
            return result(check, False, call_failure_message(check, ctx, case, res), {"case": case})
        args_after = list(res.args_after)
        for i, arg in enumerate(ctx.cases[case].args):
            if not arg.is_array:
                continue
            after = args_after[i] if i < len(args_after) else None
            if not isinstance(after, Leaf):
                # nothing to compare: no credit, but no evidence of a mutation either
                return result(check, False,
                              f"{label}: argument #{i + 1} could not be read back after the call on "
                              f"{case_label(ctx, case)}, so it could not be checked",
                              {"case": case, "argument": i, "unreadable": True})
            if after.array.shape != arg.value.shape:  # resized or reshaped in place
                changed, total = arg.value.size, arg.value.size
            else:
                same = (after.array == arg.value) | (np.isnan(after.array.astype(float)) & np.isnan(arg.value.astype(float)))
                changed, total = int((~same).sum()), int(arg.value.size)
            if changed:
                return result(check, False,
                              f"{label} modified its argument #{i + 1} on {case_label(ctx, case)}: "
                              f"{changed} / {total} elements changed",
                              {"case": case, "argument": i, "changed": changed, "total": total},
                              diagnoses=("mutates-input",))
    n = len(check.cases)
    return result(check, True, f"{label} leaves its arguments unchanged ({n} input{'s' if n != 1 else ''} checked)",
                  {"cases": list(check.cases)})
