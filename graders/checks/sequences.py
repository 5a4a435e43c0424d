"""``kind = "sequences"``: a stateful step (an optimiser) graded over several calls.

A case gives the starting parameters ``w0`` (its first argument) and the gradients
of every step stacked along a first axis (its second argument, shape ``(K, *w0.shape)``);
its kwargs (hyper-parameters) go to every call. The harness, in the sandbox:
``w = w0`` and the state arrays start at zero; step ``k = 1..K`` calls
``entry(w, g_k, *state[, k], **kwargs)`` with fresh copies, the worker copies every
array the step returned at once (a step may update its arguments in place, as
PyTorch's optimisers do, as long as it returns the new values), and step ``k + 1``
is fed those: the student's own returned state, never the reference's. The plan
chains them with ``{"prev": call, "item": i}`` arguments, plain data the worker
resolves to the arrays it kept.

Only ``w`` is graded, as the displacements ``w_k - w0``: from zero state with a
constant learning rate the two momentum conventions (``v = βv + g; w -= ηv`` and
``v = βv - ηg; w += v``) give the same ``w`` at every step, though their state
differs. Buggy references run through the same harness here (fed their own state);
the evidence rule over the exercise's sequence cases names the mistake.

Options (:class:`Options`): ``state`` (how many state arrays follow the gradient),
``step_number`` (pass ``k``, counted from 1, after the state), ``returns`` (how
messages name the returned tuple, e.g. ``"(w, v)"``), ``rtol``, ``atol``, ``label``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from dlgrade.graders.checks.protocol import settings_of
from dlgrade.graders.checks.common import case_label, error_text, label_of, result, returned_type_word
from dlgrade.graders.compare import compare, fmt_index, fmt_num
from dlgrade.graders.context import Context
from dlgrade.graders.errors import GraderError
from dlgrade.graders.job import Call, _safe
from dlgrade.graders.decoding import Leaf
from dlgrade.graders.spec import CheckSpec

KIND = "sequences"


# its cases are not the entry's arguments: the spec probe leaves them to check_cases
cases_are_arguments = False

@dataclass(frozen=True)
class Options:
    state: int = 1
    step_number: bool = False
    returns: str = ""
    rtol: float = 1e-6
    atol: float = 1e-12
    label: str = ""

    def validate(self) -> str:
        if self.state < 0:
            return f"option 'state' must be 0 or more (got {self.state})"
        if self.rtol < 0 or self.atol < 0:
            return "options 'rtol' and 'atol' must not be negative"
        names = self.names()
        if self.returns and len(names) != 1 + self.state:
            return (f"option 'returns' must name {1 + self.state} values, like \"(w, v)\" "
                    f"(got {self.returns!r})")
        return ""

    def names(self) -> list[str]:
        found = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", self.returns)
        return found or ["w", *(f"state{i + 1}" for i in range(self.state))]

    def tuple_word(self) -> str:
        return self.returns or "(" + ", ".join(self.names()) + ")"


def _literal_shape(arg) -> list | None:
    if isinstance(arg, dict):
        for key in ("normal", "uniform"):
            if isinstance(arg.get(key), list):
                return arg[key]
        if "value" in arg:
            return list(np.shape(arg["value"]))
    return None


def check_cases(opts: Options, cases: dict[str, dict], folder) -> str:
    """Whether each case is ``args = [w0, gradients of shape (steps, *w0.shape)]`` (checked
    when the spec loads, where the shapes are written out)."""
    for name, case in cases.items():
        args = case.get("args", [])
        shapes = [_literal_shape(a) for a in args[:2]]
        if len(args) < 2 or None in shapes:
            return f"case {name!r} must have args = [w0, gradients of shape (steps, *w0.shape)]"
        w, g = shapes
        if all(isinstance(d, int) for d in w + g) and (len(g) != len(w) + 1 or g[1:] != w or g[0] < 1):
            return (f"case {name!r}: the gradients must have shape (steps, *w0.shape) = (steps, "
                    f"{', '.join(map(str, w))}), got {tuple(g)}")
    return ""


def call_id(case: str, step: int) -> str:
    return f"seq:{case}:{step}"


def steps_of(ctx: Context, case: str) -> tuple[np.ndarray, np.ndarray]:
    """``(w0, grads)`` of a case, or GraderError if the spec's case does not fit the kind."""
    args = ctx.cases[case].args
    if len(args) < 2 or not (args[0].is_array and args[1].is_array) or \
            args[1].value.shape[1:] != args[0].value.shape or args[1].value.shape[0] < 1:
        raise GraderError(f"{ctx.exercise.id}: a sequences case needs args = [w0, gradients of shape "
                          f"(steps, *w0.shape)] (case {case!r})")
    return args[0].value, args[1].value


# --------------------------------------------------------------------------- plan


def plan(check: CheckSpec, ctx: Context) -> list[Call]:
    opts = settings_of(check, Options)
    calls = []
    for case in check.cases:
        w0, grads = steps_of(ctx, case)
        stem = _safe(f"seq_{case}")
        w0_name, zeros_name = f"{stem}_w0.npy", f"{stem}_zeros.npy"
        for k in range(1, grads.shape[0] + 1):
            g_name = f"{stem}_g{k}.npy"
            arrays = {g_name: np.array(grads[k - 1])}
            if k == 1:
                arrays.update({w0_name: w0, zeros_name: np.zeros_like(w0)})
                args = [{"npy": w0_name}, {"npy": g_name}, *[{"npy": zeros_name}] * opts.state]
            else:
                prev = call_id(case, k - 1)
                args = [{"prev": prev, "item": 0}, {"npy": g_name},
                        *[{"prev": prev, "item": 1 + j} for j in range(opts.state)]]
            if opts.step_number:
                args.append({"json": k})
            calls.append(Call(id=call_id(case, k), case=case, args=args, arrays=arrays, keep=True))
    return calls


# --------------------------------------------------------------------------- the trusted harness


def trajectory(fn, w0: np.ndarray, grads: np.ndarray, kwargs: dict, opts: Options) -> list[np.ndarray] | None:
    """The displacements ``w_k - w0`` of a trusted step (a reference or a buggy one) fed its
    own returned state, as the sandbox's harness feeds the student's; None if it fails."""
    w, state, out = np.array(w0, dtype=np.float64), [np.zeros_like(w0) for _ in range(opts.state)], []
    for k in range(1, grads.shape[0] + 1):
        extra = (k,) if opts.step_number else ()
        try:
            with np.errstate(all="ignore"):
                ret = fn(w.copy(), np.array(grads[k - 1]), *[s.copy() for s in state], *extra, **kwargs)
            arrays = [np.array(r, dtype=np.float64) for r in ret]
        except Exception:  # a buggy reference may fail where the truth does not
            return None
        if len(arrays) != 1 + opts.state:
            return None
        w, *state = arrays
        out.append(w - w0)
    return out


def _kwargs(ctx: Context, case: str) -> dict:
    return ctx.cases[case].arrays()[1]


def _reference(ctx: Context, case: str, opts: Options, fn=None, key="truth"):
    cache = ctx.__dict__.setdefault("_sequences_cache", {})
    if (key, case) not in cache:
        w0, grads = steps_of(ctx, case)
        cache[(key, case)] = trajectory(fn or ctx.exercise.reference_fn(), w0, grads, _kwargs(ctx, case), opts)
    return cache[(key, case)]


# --------------------------------------------------------------------------- evaluation


@dataclass
class _Student:
    """What the student's steps did on one case: the displacements up to the first failure."""

    displacements: list
    failure: str = ""
    details: dict | None = None
    step: int = 0


def _student(check: CheckSpec, ctx: Context, case: str, opts: Options) -> _Student:
    label = label_of(check, ctx)
    where = case_label(ctx, case)
    w0, grads = steps_of(ctx, case)
    names = opts.names()
    out = []
    for k in range(1, grads.shape[0] + 1):
        res = ctx.call(call_id(case, k))
        details = {"case": case, "step": k}
        if res.status == "exception":
            return _Student(out, f"{label} raised {error_text(res.error)} at step {k} on {where}",
                            {**details, "error": res.error}, k)
        if res.status == "memory":
            return _Student(out, (f"{label} ran out of memory at step {k} on {where} "
                                  f"(the limit is {ctx.exercise.limits.memory_mb} MB)"), details, k)
        if res.status == "exit":
            return _Student(out, f"{label} called sys.exit({res.code!r}) at step {k} on {where}", details, k)
        if res.status != "ok":
            return _Student(out, f"{label} did not run at step {k} on {where}", details, k)
        got = res.output
        expected = (f"expected a tuple {opts.tuple_word()} of arrays of shape {tuple(w0.shape)}")
        if not isinstance(got, (tuple, list)) or len(got) != len(names):
            return _Student(out, f"{label} returned {returned_type_word(got)} at step {k} on {where}; {expected}",
                            details, k)
        for name, item in zip(names, got):
            if not isinstance(item, Leaf) or item.torch is not None:
                what = "a torch tensor" if isinstance(item, Leaf) else returned_type_word(item)
                return _Student(out, (f"{label} returned {what} as {name} at step {k} on {where}; "
                                      f"{expected}"), details, k)
            if item.array.shape != w0.shape:
                return _Student(out, (f"{label} returned {name} of shape {tuple(item.array.shape)} at step {k} "
                                      f"on {where}; expected {tuple(w0.shape)}"),
                                {**details, "shape": list(item.array.shape)}, k)
        w = np.asarray(got[0].array, dtype=np.float64)
        out.append(w - w0)
    return _Student(out)


def _close(a: list | None, b: list | None, rtol: float, atol: float) -> bool:
    if a is None or b is None or len(a) != len(b):
        return False
    return all(x.shape == y.shape and np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=True) for x, y in zip(a, b))


def evaluate(check: CheckSpec, ctx: Context):
    opts = settings_of(check, Options)
    label = label_of(check, ctx)
    w_name = opts.names()[0]
    per_case, worst_abs, steps = [], 0.0, set()
    for case in check.cases:
        where = case_label(ctx, case)
        st = _student(check, ctx, case, opts)
        ref = _reference(ctx, case, opts)
        if ref is None:
            raise GraderError(f"{ctx.exercise.id}: the reference failed on sequences case {case!r}")
        diags = _diagnoses_here(check, ctx)
        for k, (d, e) in enumerate(zip(st.displacements, ref), start=1):
            with np.errstate(invalid="ignore"):
                bad = ~np.isfinite(d) & np.isfinite(e)
            if bad.any():
                n = int(bad.sum())
                first = tuple(int(i) for i in np.argwhere(bad)[0]) if d.ndim else ()
                return result(check, False, (
                    f"{w_name} after step {k} has {n} non-finite value{'s' if n != 1 else ''} on {where} "
                    f"(first at {fmt_index(first)}: {fmt_num(d[first])}); expected finite values"),
                    {"case": case, "step": k, "nonfinite": n, "cases": per_case}, diagnoses=diags)
            mm = compare(d, e, opts.rtol, opts.atol)
            if not mm.ok:
                return result(check, False, f"{w_name} after step {k} is wrong on {where}: {mm.summary()}",
                              {"case": case, "step": k, **mm.as_details(), "cases": per_case}, diagnoses=diags)
            worst_abs = max(worst_abs, float(mm.max_abs))
        if st.failure:
            return result(check, False, st.failure, {**(st.details or {}), "cases": per_case})
        per_case.append({"case": case, "steps": len(ref)})
        steps.add(len(ref))
    n = len(check.cases)
    k_word = f"{min(steps)}" if len(steps) == 1 else f"{min(steps)}–{max(steps)}"
    return result(check, True, (f"{w_name} follows the reference over {k_word} step{'s' if max(steps) != 1 else ''} "
                                f"on {n} input{'s' if n != 1 else ''} (max abs error {fmt_num(worst_abs)})"),
                  {"cases": per_case, "max_abs": worst_abs})


# --------------------------------------------------------------------------- diagnoses


def _sequence_checks(ctx: Context) -> list[tuple[CheckSpec, Options]]:
    return [(c, settings_of(c, Options)) for c in ctx.exercise.checks if c.kind == KIND]


def exercise_diagnoses(ctx: Context) -> dict[str, set[str]]:
    """Diagnosis id -> the cases where its buggy reference differs from the truth, for every
    mistake the student's trajectories reproduce by the evidence rule: over all the
    exercise's sequence cases, the student matches one variant wherever it differs from
    the truth (by more than 10 × the tolerance), and it differs somewhere."""
    cache = ctx.__dict__.setdefault("_sequences_cache", {})
    if "diagnoses" in cache:
        return cache["diagnoses"]
    cases: dict[str, tuple[CheckSpec, Options]] = {}
    for c, o in _sequence_checks(ctx):
        for case in c.cases:
            cases.setdefault(case, (c, o))
    students = {case: _student(c, ctx, case, o) for case, (c, o) in cases.items()}
    found: dict[str, set[str]] = {}
    for diag in ctx.exercise.mistake_fns():
        for v, fn in enumerate(ctx.mistake_variants(diag)):
            differs, matches = set(), True
            for case, (c, o) in cases.items():
                truth = _reference(ctx, case, o)
                bug = _reference(ctx, case, o, fn, key=(diag, v))
                if bug is not None and _close(bug, truth, 10 * o.rtol, 10 * o.atol):
                    continue
                differs.add(case)
                st = students[case]
                matches = matches and not st.failure and _close(st.displacements, bug, o.rtol, o.atol)
            if differs and matches:
                found[diag] = differs
                break
    cache["diagnoses"] = found
    return found


def _diagnoses_here(check: CheckSpec, ctx: Context) -> tuple[str, ...]:
    """The exercise's sequence diagnoses that show on this check's cases."""
    return tuple(d for d, where in exercise_diagnoses(ctx).items() if where & set(check.cases))
