"""``kind = "training"``: the student's trainer runs in the sandbox; only the parameter
arrays it returns come back, and the grader evaluates them on held-out points it draws
itself, in its own process.

Per case, the grader draws the training set with the trusted ``data`` function
(``module:function`` taking ``(rng, n)`` and returning ``(X, y)``) from a seed of the
case (so per student), ships ``X`` and ``y`` and an ``{rng}`` argument (a Generator of
another seed, built in the sandbox) and calls ``entry(X, y, rng)`` once. The
held-out points come from a third seed and never leave this process.

Each check measures one thing (``measure``) of that call:

* ``parameters``: a dict with every key of ``params`` (a table of key = shape, a
  shape's entries numbers or names bound by their first use, e.g. ``H``), numeric,
  finite, of those shapes (``shape_hints`` adds a sentence per key);
* ``accuracy``: ``predict(params, X_held_out)`` (trusted, ``module:function``) equals
  the label on at least ``bar`` of the ``held_out`` points. A failure whose predictions
  one half-plane reproduces on at least ``line_agreement`` of the points is named
  ``linear_diagnosis`` (a straight boundary: the network behaves as a linear model);
  ``line`` is the trusted ``module:function`` that finds the best half-plane.

Options: :class:`Options`. The spec's ``time_limit`` bounds the whole training.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from dlgrade.graders.checks.protocol import settings_of
from dlgrade.graders.checks.common import call_failure_message, case_label, label_of, result, returned_type_word
from dlgrade.graders.compare import fmt_num
from dlgrade.graders.context import Context
from dlgrade.graders.job import Call, _safe
from dlgrade.graders.inputs import derive_seed
from dlgrade.graders.decoding import Leaf
from dlgrade.graders.spec import CheckSpec, _resolve

MEASURES = ("parameters", "accuracy")


# its cases are not the entry's arguments: the spec probe leaves them to check_cases
cases_are_arguments = False

@dataclass(frozen=True)
class Options:
    measure: str
    data: str
    params: dict
    predict: str = ""
    train_points: int = 1000
    held_out: int = 10000
    bar: float = 0.95
    shape_hints: dict = field(default_factory=dict)
    linear_diagnosis: str = ""
    line: str = ""  # trusted module:function (X, labels, angles) -> the best half-plane's agreement
    line_agreement: float = 0.98
    max_size: int = 1_000_000  # elements of one returned parameter
    label: str = ""

    def validate(self) -> str:
        if self.measure not in MEASURES:
            return f"option 'measure' must be one of {', '.join(MEASURES)} (got {self.measure!r})"
        if self.measure == "accuracy" and not self.predict:
            return "measure 'accuracy' needs option 'predict' (a trusted module:function)"
        if self.linear_diagnosis and not self.line:
            return "option 'linear_diagnosis' needs option 'line' (a trusted module:function)"
        if self.train_points < 1 or self.held_out < 1:
            return "options 'train_points' and 'held_out' must be positive"
        if not 0 < self.bar <= 1 or not 0 < self.line_agreement <= 1:
            return "options 'bar' and 'line_agreement' must be fractions in (0, 1]"
        for key, shape in self.params.items():
            if not isinstance(shape, list) or not all(
                    (isinstance(d, int) and not isinstance(d, bool) and d >= 1) or
                    (isinstance(d, str) and re.fullmatch(r"[A-Za-z_]\w*", d)) for d in shape):
                return f"option 'params': {key} must be a shape, a list of sizes and names like [2, \"H\"]"
        return ""


def check_cases(opts: Options, cases: dict[str, dict], folder) -> str:
    """The trusted functions the options name must resolve (checked when the spec loads)."""
    for key in ("data", "predict", "line"):
        target = getattr(opts, key)
        if target:
            try:
                if not callable(_resolve(target, folder)):
                    return f"option {key!r}: {target!r} is not a function"
            except Exception as exc:
                return f"option {key!r}: {exc}"
    return ""


def seeds(ctx: Context, case: str) -> dict[str, int]:
    base = ctx.cases[case].seed
    return {part: derive_seed(base, part) % 2**63 for part in ("train", "rng", "held-out")}


def training_set(opts: Options, ctx: Context, case: str):
    fn = _resolve(opts.data, ctx.exercise.folder)
    X, y = fn(np.random.default_rng(seeds(ctx, case)["train"]), opts.train_points)
    return np.asarray(X), np.asarray(y)


def held_out_set(opts: Options, ctx: Context, case: str):
    key = ("held-out", case, opts.data, opts.held_out)
    cache = ctx.__dict__.setdefault("_training_cache", {})
    if key not in cache:
        fn = _resolve(opts.data, ctx.exercise.folder)
        X, y = fn(np.random.default_rng(seeds(ctx, case)["held-out"]), opts.held_out)
        cache[key] = (np.asarray(X), np.asarray(y))
    return cache[key]


def call_id(case: str) -> str:
    return f"train:{case}"


def plan(check: CheckSpec, ctx: Context) -> list[Call]:
    opts = settings_of(check, Options)
    calls = []
    for case in check.cases:
        X, y = training_set(opts, ctx, case)
        stem = _safe(f"train_{case}")
        calls.append(Call(id=call_id(case), case=case,
                          args=[{"npy": f"{stem}_X.npy"}, {"npy": f"{stem}_y.npy"}, {"rng": seeds(ctx, case)["rng"]}],
                          arrays={f"{stem}_X.npy": X, f"{stem}_y.npy": y}))
    return calls


def _shape_word(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def parameters(check: CheckSpec, opts: Options, ctx: Context, case: str):
    """``(dict of float64 arrays, "")`` or ``(None, message)`` for what the trainer returned."""
    label = label_of(check, ctx)
    res = ctx.call(call_id(case))
    if res.status != "ok":
        return None, call_failure_message(check, ctx, case, res)
    got = res.output
    keys = ", ".join(opts.params)
    if not isinstance(got, dict):
        return None, f"{label} returned {returned_type_word(got)}; expected a dict with {keys}"
    bound: dict[str, int] = {}
    out = {}
    for key, shape in opts.params.items():
        if key not in got:
            return None, f"{label} returned no {key!r}; expected a dict with {keys}"
        leaf = got[key]
        if not isinstance(leaf, Leaf) or leaf.torch is not None:
            what = "a torch tensor" if isinstance(leaf, Leaf) else returned_type_word(leaf)
            return None, f"{label} returned {what} as {key}; expected a numpy array"
        arr = leaf.array
        expected = []
        for i, d in enumerate(shape):
            if isinstance(d, str):
                d = bound.setdefault(d, int(arr.shape[i]) if i < arr.ndim else -1)
            expected.append(d)
        if tuple(arr.shape) != tuple(expected) or min(expected, default=1) < 1:
            want = _shape_word([e if e >= 1 else s for e, s in zip(expected, shape)])
            hint = opts.shape_hints.get(key, "")
            return None, (f"{label} returned {key} of shape {_shape_word(arr.shape)}; expected {want}"
                          + (f": {hint}" if hint else ""))
        if arr.size > opts.max_size:
            return None, f"{label} returned {key} with {arr.size} elements; at most {opts.max_size} are graded"
        arr = arr.astype(np.float64)
        bad = int((~np.isfinite(arr)).sum())
        if bad:
            return None, (f"{label} returned {key} with {bad} non-finite value{'s' if bad != 1 else ''}; "
                          "expected finite values")
        out[key] = arr
    return out, ""


def evaluate(check: CheckSpec, ctx: Context):
    opts = settings_of(check, Options)
    label = label_of(check, ctx)
    per_case = []
    for case in check.cases:
        params, problem = parameters(check, opts, ctx, case)
        if params is None:
            return result(check, False, problem, {"case": case, "cases": per_case})
        if opts.measure == "parameters":
            per_case.append({"case": case, "shapes": {k: list(v.shape) for k, v in params.items()}})
            continue
        X, y = held_out_set(opts, ctx, case)
        predict = _resolve(opts.predict, ctx.exercise.folder)
        with np.errstate(all="ignore"):
            pred = np.asarray(predict(params, X))
        correct = int((pred == y).sum())
        n = int(y.size)
        need = int(np.ceil(opts.bar * n - 1e-9))
        details = {"case": case, "correct": correct, "held_out": n, "needed": need, "accuracy": correct / n}
        if correct < need:
            diags = ()
            if opts.linear_diagnosis:
                agreement = float(_resolve(opts.line, ctx.exercise.folder)(X, pred, 360))
                details["line_agreement"] = agreement
                if agreement >= opts.line_agreement:
                    diags = (opts.linear_diagnosis,)
            where = f" on {case_label(ctx, case)}" if len(check.cases) > 1 else ""
            return result(check, False, (f"{label}(X, y, rng) classifies {correct} / {n} held-out points correctly "
                                         f"({100 * correct / n:.1f}%){where}; at least "
                                         f"{fmt_num(100 * opts.bar)}% are needed"),
                          {**details, "cases": per_case}, diagnoses=diags)
        per_case.append(details)
    if opts.measure == "parameters":
        shapes = ", ".join(f"{k} {_shape_word(s)}" for k, s in per_case[0]["shapes"].items()) if per_case else ""
        return result(check, True, f"{label} returned {shapes}", {"cases": per_case})
    worst = min(per_case, key=lambda d: d["accuracy"])
    return result(check, True, (f"{label}(X, y, rng) classifies {worst['correct']} / {worst['held_out']} held-out "
                                f"points correctly ({100 * worst['accuracy']:.1f}%; at least "
                                f"{fmt_num(100 * opts.bar)}% needed)"), {"cases": per_case})
