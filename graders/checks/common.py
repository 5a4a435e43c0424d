"""Shared wording for checks: how an output, a case and a failed call are named.

The sentences here are part of the interface (tests pin them word for word).
"""
from __future__ import annotations

import numpy as np

from dlgrade.graders import device_errors
from dlgrade.graders.context import Context  # noqa: F401  (checks import them from here)
from dlgrade.graders.job import CallResult, error_text  # noqa: F401  (checks import them from here)
from dlgrade.graders.decoding import Leaf, Opaque
from dlgrade.graders.results import CheckResult
from dlgrade.graders.spec import CheckSpec


def result(check: CheckSpec, passed: bool, message: str, details: dict | None = None,
           diagnoses=(), score: float | None = None, status: str = "") -> CheckResult:
    """A CheckResult for a spec'd check: full points when passed, none otherwise."""
    if score is None:
        score = check.points if passed else 0.0
    return CheckResult(name=check.name, passed=passed, score=float(score), max_score=check.points,
                       message=message, details=details or {}, hidden=check.hidden,
                       kind=check.kind, diagnoses=tuple(d for d in diagnoses if d), status=status)


def skipped(check: CheckSpec, message: str, details: dict | None = None) -> CheckResult:
    """A check that did not run here (a GPU check without a GPU): worth nothing either way."""
    return CheckResult(name=check.name, passed=False, score=0.0, max_score=0.0, message=message,
                       details=details or {}, hidden=check.hidden, kind=check.kind, status="skipped")


def label_of(check: CheckSpec, ctx: Context) -> str:
    return check.opt("label") or f"{ctx.exercise.entry}(...)"


def case_label(ctx: Context, case: str) -> str:
    desc = ctx.cases[case].meta.get("description")
    return f"{desc} (case {case!r})" if desc else f"case {case!r}"


def returned_type_word(value) -> str:
    if value is None:
        return "None"
    if isinstance(value, Opaque):
        return f"a value of type {value.type}"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    if isinstance(value, dict):
        return "a dict"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Leaf):
        return "an array"
    return type(value).__name__


def expected_type_word(ctx: Context, expected: np.ndarray) -> str:
    if ctx.exercise.framework == "torch":
        return "a tensor" if expected.ndim else "a scalar tensor"
    return f"an array of shape {tuple(expected.shape)}" if expected.ndim else "a number"


def call_diagnoses(res: CallResult) -> tuple[str, ...]:
    """What a failed call shows by itself: ``device-mismatch`` for code that asked for a
    CUDA device this machine does not have (see dlgrade.graders.device_errors)."""
    if res.status == "exception" and device_errors.names_missing_device(res.error):
        return (device_errors.DIAGNOSIS,)
    return ()


def first_tensor_name(ctx: Context) -> str:
    """How the statement names the first tensor argument (``logits``), for advice."""
    import re

    m = re.match(r"\s*\w+\s*\(([^)]*)\)", ctx.exercise.signature or "")
    names = [p.split("=")[0].split(":")[0].strip() for p in m.group(1).split(",")] if m else []
    return names[0] if names and names[0] else "z"


def call_failure_message(check: CheckSpec, ctx: Context, case: str, res: CallResult) -> str:
    """One line for a call that did not return normally."""
    label = label_of(check, ctx)
    where = case_label(ctx, case)
    if res.status == "exception":
        msg = f"{label} raised {error_text(res.error)} on {where}"
        if device_errors.names_missing_device(res.error):
            msg += device_errors.advice(res.error, first_tensor_name(ctx))
        return msg
    if res.status == "memory":
        return f"{label} ran out of memory on {where} (the limit is {ctx.exercise.limits.memory_mb} MB)"
    if res.status == "exit":
        return f"{label} called sys.exit({res.code!r}) on {where}"
    return f"{label} did not run on {where}"
