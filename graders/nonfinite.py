"""Naming the cause of a non-finite output (nan/inf where the reference is finite).

A non-finite loss or softmax has several causes that need different cures: exp()
overflowing without a max shift (``overflow``), a probability that underflowed to 0
before ``log`` although the max was shifted out (``log-underflow``), one max for the
whole array instead of one per slice (``global-max-shift``). Each leaves its own
pattern: inf/inf is nan, -log(0) is +inf, 0/0 is nan only in the small slices.

So the cause is the evidence: the exercise's buggy references that are themselves
non-finite on this case and reproduce the submission's output exactly (nan where it
has nan, the same infinities, the same finite values within tolerance). Only when
none does is the check's generic ``nonfinite_diagnosis`` reported, as before.
"""
from __future__ import annotations

import numpy as np

from dlgrade.graders.compare import allclose, tolerance_for
from dlgrade.graders.context import Context, select
from dlgrade.graders.spec import CheckSpec


def explain(check: CheckSpec, ctx: Context, case: str, got: np.ndarray, path: tuple = ()) -> tuple[str, ...]:
    """The diagnosis ids for a non-finite ``got`` (the output at ``path``) on ``case``."""
    found = [d for d in ctx.exercise.mistake_fns() if _reproduces(ctx, d, case, got, path)]
    if found:
        return tuple(found)
    generic = check.opt("nonfinite_diagnosis")
    return (generic,) if generic else ()


def _reproduces(ctx: Context, diag_id: str, case: str, got: np.ndarray, path: tuple) -> bool:
    g = np.asarray(got, dtype=np.float64)
    rtol, atol = tolerance_for(np.asarray(got).dtype.name)
    for variant in range(len(ctx.mistake_variants(diag_id))):
        bug = select(ctx.mistake(diag_id, case, variant), path)
        if bug is None:
            continue
        try:
            b = np.asarray(bug, dtype=np.float64)
        except (TypeError, ValueError):
            continue
        if b.shape != g.shape or np.all(np.isfinite(b)):
            continue  # only a mistake that goes non-finite here can explain a non-finite output
        if allclose(g, b, rtol, atol):
            return True
    return False
