"""``kind = "gradients"``: the submission's analytic gradients against the reference's.

The entry returns ``(loss, grads)`` with ``grads`` a dict of one array per
parameter. Structure first, stopping at the first failure with a precise
message: the call returned → a pair → ``grads`` is a dict with every key →
each value is a numpy array → of its parameter's shape (a transposed shape
says so) → finite → within ``tolerance`` of the reference in cs231n's relative
error, parameter by parameter (see :func:`dlgrade.graders.gradcheck.rel_error`).

Diagnoses come from buggy references compared parameter by parameter (see
:func:`diagnose_params`). The parameters are declared once per exercise::

    [gradient]
    params = { W1 = 2, b1 = 3, W2 = 4, b2 = 5 }   # grads key -> argument index
    loss = [0]                                    # where the loss is in the output
    grads = [1]                                   # where the dict of gradients is

Options: ``tolerance`` (default 1e-6), ``nonfinite_diagnosis`` (e.g. ``overflow``),
``label``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dlgrade.graders import diagnose, gradcheck, nonfinite
from dlgrade.graders.checks.common import (
    call_diagnoses, call_failure_message, case_label, label_of, result, returned_type_word,
)
from dlgrade.graders.compare import fmt_index, fmt_num
from dlgrade.graders.context import Context, select
from dlgrade.graders.job import Call
from dlgrade.graders.errors import GraderError
from dlgrade.graders.decoding import Leaf
from dlgrade.graders.checks.protocol import Compared, OptionError, OutputPath, Table, read_options
from dlgrade.graders.spec import CheckSpec


@dataclass(frozen=True)
class Options:
    tolerance: float = field(default=1e-6, metadata={"help": "the largest relative error accepted"})
    nonfinite_diagnosis: str = field(default="", metadata={
        "help": "the diagnosis for non-finite gradients where the reference is finite"})
    params: Table | None = field(default=None, metadata={
        "help": "grads key -> argument index (default: the exercise's [gradient] params)"})
    loss: OutputPath | None = field(default=None, metadata={"help": "where the loss is in the output ([0])"})
    grads: OutputPath | None = field(default=None, metadata={"help": "where the dict of gradients is ([1])"})


@dataclass(frozen=True)
class GradientTable:
    """The exercise's ``[gradient]`` table: what the gradient checks differentiate."""

    params: Table | None = field(default=None, metadata={"help": "grads key -> argument index"})
    loss: OutputPath = field(default=(0,), metadata={"help": "where the loss is in the output"})
    grads: OutputPath = field(default=(1,), metadata={"help": "where the dict of gradients is"})


def validate(check: CheckSpec, exercise) -> str | None:
    """The merged ``[gradient]`` table and options name parameters that are arguments of every case."""
    gradient = exercise.raw.get("gradient", {})
    if not isinstance(gradient, dict):
        return "[gradient] must be a table"
    try:
        read_options(GradientTable, gradient, "[gradient] key")
    except OptionError as exc:
        return str(exc)
    table = {**exercise.raw.get("gradient", {}), **{k: v for k, v in check.options.items() if k in GRAD_KEYS}}
    params = table.get("params")
    if not isinstance(params, dict) or not params:
        return "needs [gradient] params = { W1 = 2, ... } (grads key -> argument index)"
    for key, index in params.items():
        if isinstance(index, bool) or not isinstance(index, int):
            return f"[gradient] params.{key} must be an argument index, a whole number (got {index!r})"
        for case in check.cases:
            n = len(exercise.cases[case].get("args", []))
            if not 0 <= index < n:
                return (f"[gradient] params.{key} = {index} is not an argument of case {case!r} "
                        f"(it has {n} argument{'s' if n != 1 else ''})")
    return None


GRAD_KEYS = ("params", "loss", "grads")


def compared(check: CheckSpec, ctx: Context) -> list[Compared]:
    """The loss, case by case. The gradients are matched against the buggy references by
    this kind itself, parameter by parameter (:func:`diagnose_params`), with a stricter
    rule: the mistakes named must together explain every wrong parameter."""
    spec = gradient_spec(check, ctx)
    return [Compared(call_id(case), spec.loss) for case in check.cases]

DEFAULT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class GradientSpec:
    """Which arguments are parameters, and where loss and gradients are in the output."""

    params: dict  # grads key -> argument index
    loss: tuple
    grads: tuple


def gradient_spec(check: CheckSpec, ctx: Context) -> GradientSpec:
    """The ``[gradient]`` table of the exercise, overridden by the check's own options."""
    table = {**ctx.exercise.raw.get("gradient", {}), **{k: v for k, v in check.options.items() if k in GRAD_KEYS}}
    params = table.get("params")
    if not check.cases:
        raise GraderError(f"{ctx.exercise.id}: check {check.name!r} lists no cases")
    if not isinstance(params, dict) or not params:
        raise GraderError(f"{ctx.exercise.id}: check {check.name!r} needs [gradient] params "
                          "(grads key -> argument index)")
    return GradientSpec(params={str(k): int(v) for k, v in params.items()},
                        loss=tuple(table.get("loss", (0,))), grads=tuple(table.get("grads", (1,))))


def mistake_paths(check: CheckSpec, ctx: Context) -> list[tuple[str, tuple]]:
    """(case, path) of each parameter's gradient: where :func:`diagnose_params` tells mistakes apart."""
    spec = gradient_spec(check, ctx)
    return [(case, (*spec.grads, key)) for case in check.cases for key in spec.params]


def reference_problem(check: CheckSpec, ctx: Context) -> str | None:
    """What the reference returns does not fit the ``[gradient]`` table (one line), or None."""
    spec = gradient_spec(check, ctx)
    for case in check.cases:
        grads = select(ctx.reference(case), spec.grads)
        shown = "[" + ", ".join(str(k) if isinstance(k, int) else f'"{k}"' for k in spec.grads) + "]"
        if not isinstance(grads, dict):
            return (f"[gradient] grads = {shown} does not lead to a dict of gradients in what the reference "
                    f"returns on case {case!r}")
        missing = [k for k in spec.params if k not in grads]
        if missing:
            return (f"[gradient] params names {missing[0]!r}, but the reference's gradients on case {case!r} "
                    f"have keys {', '.join(repr(k) for k in grads)}")
    return None


def call_id(case: str) -> str:
    """The one unperturbed call per case that both gradient checks read."""
    return f"gradients:{case}"


def plan(check: CheckSpec, ctx: Context) -> list[Call]:
    gradient_spec(check, ctx)  # fail early, as a grader error, on a malformed spec
    return [Call(id=call_id(case), case=case) for case in check.cases]


# --------------------------------------------------------------------------- structure


def _keys(keys) -> str:
    keys = list(keys)
    shown = ", ".join(repr(k) for k in keys[:8])
    return shown + (f" and {len(keys) - 8} more" if len(keys) > 8 else "")


def _shape(shape) -> str:
    return fmt_index(tuple(shape))


@dataclass(frozen=True)
class Structure:
    """The gradients a call returned, or the first structural problem with them."""

    problem: str = ""  # one line for the student; empty when the structure is sound
    grads: dict | None = None  # key -> float64 array of the right shape
    loss: Leaf | None = None
    details: dict | None = None


def _shape_hint(got: tuple, expected: tuple) -> str:
    if len(got) == 2 and got == expected[::-1] and got != expected:
        return " — is it transposed?"
    if len(got) == len(expected) + 1 and got[1:] == expected:
        return " — is it summed over the batch?" if got[0] != 1 else " — it has an extra axis of length 1"
    return ""


def structure(check: CheckSpec, ctx: Context, case: str, output, spec: GradientSpec) -> Structure:
    """Check the returned value's structure; stop at the first problem."""
    label = label_of(check, ctx)
    where = case_label(ctx, case)
    ref = select(ctx.reference(case), spec.grads)
    names = list(spec.params)
    expected_keys = _keys(names)
    if not isinstance(output, tuple) or len(output) < 2:
        return Structure(f"{label} returned {returned_type_word(output)} on {where}; "
                         "expected a tuple (loss, grads)")
    grads = select(output, spec.grads)
    if not isinstance(grads, dict):
        return Structure(f"grads is {returned_type_word(grads)} on {where}; "
                         f"expected a dict with keys {expected_keys}")
    missing = [n for n in names if n not in grads]
    if missing:
        return Structure(f"grads has keys {_keys(grads) or 'none'} on {where}; expected keys {expected_keys}",
                         details={"keys": list(grads)[:20], "missing": missing})
    arrays = {}
    for n in names:
        v = grads[n]
        if not isinstance(v, Leaf):
            return Structure(f"grads[{n!r}] is {returned_type_word(v)} on {where}; "
                             f"expected an array of shape {_shape(np.shape(ref[n]))}")
        if v.torch is not None:
            return Structure(f"grads[{n!r}] is a torch tensor on {where}; expected a numpy array")
    for n in names:
        got, exp = tuple(grads[n].array.shape), tuple(np.shape(ref[n]))
        if got != exp:
            return Structure(f"grads[{n!r}] has shape {_shape(got)} on {where}; expected "
                             f"{_shape(exp)}{_shape_hint(got, exp)}")
        arrays[n] = grads[n].array.astype(np.float64)
    loss = select(output, spec.loss)
    return Structure(grads=arrays, loss=loss if isinstance(loss, Leaf) else None)


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class ParamError:
    """How one parameter's gradient compares with the reference on one case."""

    name: str
    shape: tuple
    got_shape: tuple
    rel_error: float | None
    tolerance: float
    passed: bool
    nonfinite: int = 0
    first_nonfinite: tuple = ()
    first_nonfinite_value: float = 0.0
    worst_index: tuple = ()
    worst_got: float = 0.0
    worst_expected: float = 0.0
    heatmap: dict | None = None

    def as_details(self) -> dict:
        d = {"name": self.name, "shape": list(self.shape), "got_shape": list(self.got_shape),
             "rel_error": None if self.rel_error is None else gradcheck.json_float(self.rel_error),
             "tolerance": self.tolerance, "passed": self.passed}
        if not self.passed:
            d["worst_index"] = list(self.worst_index)
            d["worst_got"] = gradcheck.json_float(self.worst_got)
            d["worst_expected"] = gradcheck.json_float(self.worst_expected)
            if self.nonfinite:
                d["nonfinite"] = self.nonfinite
        if self.heatmap is not None:
            d["heatmap"] = self.heatmap
        return d


def param_error(name: str, got: np.ndarray, expected, tolerance: float) -> ParamError:
    """Compare one gradient (already of the right shape) with the reference's."""
    e = np.asarray(expected, dtype=np.float64)
    g = np.asarray(got, dtype=np.float64)
    rel = gradcheck.elementwise_rel_error(g, e)
    worst = np.unravel_index(int(np.argmax(rel)), rel.shape) if rel.size else ()
    worst = tuple(int(i) for i in worst)
    bad_nonfinite = ~np.isfinite(g) & np.isfinite(e)
    r = float(rel.max()) if rel.size else 0.0
    passed = r <= tolerance and not bad_nonfinite.any()
    first = tuple(int(i) for i in np.argwhere(bad_nonfinite)[0]) if bad_nonfinite.any() and g.ndim else ()
    first_value = float(g[first]) if bad_nonfinite.any() else 0.0
    return ParamError(
        name=name, shape=e.shape, got_shape=g.shape, rel_error=r, tolerance=tolerance, passed=passed,
        nonfinite=int(bad_nonfinite.sum()), first_nonfinite=first,
        first_nonfinite_value=first_value, worst_index=worst,
        worst_got=float(g[worst]) if g.size else 0.0, worst_expected=float(e[worst]) if e.size else 0.0,
        heatmap=None if passed else gradcheck.heatmap(np.where(np.isfinite(g), g - e, np.inf)))


def value_message(p: ParamError, where: str, others: list[str]) -> str:
    """The one line for a parameter whose gradient is non-finite or wrong."""
    if p.nonfinite:
        return (f"grads[{p.name!r}] has {p.nonfinite} non-finite value{'s' if p.nonfinite != 1 else ''} "
                f"on {where} (first at {fmt_index(p.first_nonfinite)}: {fmt_num(p.first_nonfinite_value)}); "
                "expected finite values")
    also = f" (also wrong: {', '.join(others)})" if others else ""
    return (f"grads[{p.name!r}] is wrong on {where}: relative error {fmt_num(p.rel_error)} "
            f"(tolerance {fmt_num(p.tolerance)}); worst at {fmt_index(p.worst_index)}: "
            f"got {fmt_num(p.worst_got)}, expected {fmt_num(p.worst_expected)}{also}")


def _unchecked(spec: GradientSpec, ctx: Context, case: str, tolerance: float, grads=None) -> dict:
    """Details for a case whose gradients could not be compared (what shapes came back, if any)."""
    ref = select(ctx.reference(case), spec.grads)
    params = []
    for n in spec.params:
        v = grads.get(n) if isinstance(grads, dict) else None
        params.append({"name": n, "shape": list(np.shape(ref[n])),
                       "got_shape": list(v.array.shape) if isinstance(v, Leaf) else None,
                       "rel_error": None, "tolerance": tolerance, "passed": False})
    return {"case": case, "params": params}


def _check_case(check: CheckSpec, ctx: Context, spec: GradientSpec, case: str, tolerance: float):
    """``(errors, None)`` when every gradient is right on this case, else
    ``(errors, (message, details, diagnoses))`` for the first problem."""
    res = ctx.call(call_id(case))
    if res.status != "ok":
        return [], (call_failure_message(check, ctx, case, res),
                    {**_unchecked(spec, ctx, case, tolerance), "error": res.error}, call_diagnoses(res))
    st = structure(check, ctx, case, res.output, spec)
    if st.problem:
        grads = select(res.output, spec.grads) if isinstance(res.output, tuple) else None
        return [], (st.problem, {**_unchecked(spec, ctx, case, tolerance, grads), **(st.details or {})}, ())
    ref = select(ctx.reference(case), spec.grads)
    errors = [param_error(n, st.grads[n], ref[n], tolerance) for n in spec.params]
    bad = [p for p in errors if not p.passed]
    if not bad:
        return errors, None
    first = next((p for p in bad if p.nonfinite), bad[0])
    others = [p.name for p in bad if p is not first]
    diags = nonfinite.explain(check, ctx, case, st.grads[first.name], (*spec.grads, first.name)) \
        if first.nonfinite else ()
    return errors, (value_message(first, case_label(ctx, case), others),
                    {"case": case, "params": [p.as_details() for p in errors]}, diags)


def evaluate(check: CheckSpec, ctx: Context):
    spec = gradient_spec(check, ctx)
    tolerance = float(check.opt("tolerance", DEFAULT_TOLERANCE))
    worst = {n: 0.0 for n in spec.params}
    for case in check.cases:
        errors, failure = _check_case(check, ctx, spec, case, tolerance)
        if failure:
            message, details, diags = failure
            found = diagnose_params(check, ctx, spec, tolerance)
            if found:
                details["diagnosed"] = found
            return result(check, False, message, details, diagnoses=tuple(dict.fromkeys([*diags, *found])))
        for p in errors:
            worst[p.name] = max(worst[p.name], p.rel_error)
    n = len(check.cases)
    shapes = {k: list(np.shape(v)) for k, v in select(ctx.reference(check.cases[0]), spec.grads).items()}
    msg = (f"all {len(spec.params)} gradients match the reference on {n} input{'s' if n != 1 else ''} "
           f"(max relative error {fmt_num(max(worst.values(), default=0.0))})")
    return result(check, True, msg, {"params": [
        {"name": k, "shape": shapes[k], "got_shape": shapes[k], "rel_error": gradcheck.json_float(v),
         "tolerance": tolerance, "passed": True} for k, v in worst.items()], "cases": list(check.cases)})


# --------------------------------------------------------------------------- diagnoses


def _student_arrays(check: CheckSpec, ctx: Context, spec: GradientSpec) -> dict:
    """case -> {key: array or None} for every case whose output holds a grads dict."""
    found = {}
    for case in check.cases:
        res = ctx.call(call_id(case))
        grads = select(res.output, spec.grads) if res.status == "ok" else None
        if not isinstance(grads, dict):
            continue
        found[case] = {n: (grads[n].array if isinstance(grads.get(n), Leaf) and grads[n].torch is None else None)
                       for n in spec.params}
    return found


def diagnose_params(check: CheckSpec, ctx: Context, spec: GradientSpec, tolerance: float) -> dict:
    """Diagnosis id -> the parameters whose gradient shows that mistake.

    The evidence rule, parameter by parameter: a buggy reference explains a
    parameter when, on every case where its gradient for that parameter differs
    from the truth (and there is one), the student's matches it. Diagnoses are
    reported only when together they explain every parameter that is wrong, so
    a submission with an unexplained error gets none (no guessing from a part).
    """
    student = _student_arrays(check, ctx, spec)
    if not student:
        return {}

    def truth(case, n):
        return select(ctx.reference(case), (*spec.grads, n))

    # a parameter right on every case can be no evidence of a mistake: skip it
    wrong = [n for n in spec.params
             if not all(a[n] is not None and gradcheck.close(a[n], truth(c, n), tolerance) for c, a in student.items())]
    explained: dict[str, list[str]] = {}
    for diag_id in ctx.exercise.mistake_fns():
        for variant in range(len(ctx.mistake_variants(diag_id))):
            for n in wrong:
                pairs = []
                for case, arrays in student.items():
                    bug = ctx.mistake(diag_id, case, variant)
                    bug = select(bug, (*spec.grads, n)) if bug is not None else None
                    if bug is None:
                        continue
                    differs = not gradcheck.close(bug, truth(case, n), 10 * tolerance)
                    got = arrays[n]
                    pairs.append((got is not None and gradcheck.close(got, bug, tolerance), differs))
                if diagnose.evidence_matches(pairs) and n not in explained.setdefault(diag_id, []):
                    explained[diag_id].append(n)
    explained = {d: ns for d, ns in explained.items() if ns}
    if any(not any(n in ns for ns in explained.values()) for n in wrong):
        return {}
    return explained
