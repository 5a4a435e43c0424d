"""``kind = "finite-difference"``: the submission's gradients against centred
finite differences of *its own* loss, in float64.

A submission whose gradients are not the derivative of the loss it returns
fails here whatever the reference says. Following gradcheck's fast mode,
random directions test every element at once and sampled elements say where:

* directions: for each parameter, a few random directions ``v`` (drawn here
  from a Generator of our own, seeded per student and case) compare ``vᵀg``
  with ``(L(θ + hv) - L(θ - hv)) / 2h``: two calls per direction, however many
  elements the parameter has;
* samples: a few elements per parameter (the one with the largest reference
  gradient and random others) compare ``g[i]`` with ``(L(θ + h eᵢ) - L(θ - h eᵢ)) / 2h``,
  which says where a gradient is wrong.

Every probe must agree within ``tolerance`` (plus the rounding noise of the
two loss values); the message names the first that does not, with the worst
sampled element of that parameter. The cost is ``1 + 2·(directions +
samples)·parameters`` calls, independent of their sizes: a million-element
network costs what a tiny one does. The perturbed calls send back only the
loss (``select``).

Where the loss has kinks (a ReLU), a step that crosses one would make a correct
gradient look wrong; an exercise names them with ``kinks = "module:function"``
(see :class:`dlgrade.graders.gradcheck.KinkGuard`) and probes are redrawn until no
sign changes within ``±h`` (shrinking ``h`` if needed).

Options: ``tolerance`` (default 1e-4), ``step`` (1e-6), ``directions`` (2),
``samples`` (3), ``kinks``; parameters as in the gradients check.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dlgrade.graders import gradcheck
from dlgrade.graders.checks.common import call_failure_message, case_label, result
from dlgrade.graders.checks.gradients import call_id, gradient_spec, structure
from dlgrade.graders.compare import fmt_index, fmt_num
from dlgrade.graders.context import Context, leaf_array, select
from dlgrade.graders.job import Call
from dlgrade.graders.inputs import derive_seed
from dlgrade.graders.checks.protocol import OutputPath, Table
from dlgrade.graders.spec import CheckSpec, _resolve

DEFAULT_TOLERANCE = 1e-4
DEFAULT_STEP = 1e-6
DEFAULT_DIRECTIONS = 2
DEFAULT_SAMPLES = 3
MAX_TRIES = 24  # probes drawn per slot before giving up on a kink-free one
SHRINK_EVERY = 6  # after this many kinked draws, the step shrinks tenfold


@dataclass(frozen=True)
class Probe:
    """One planned finite-difference probe; the plan's calls are its record."""

    case: str
    param: str
    arg: int
    kind: str  # "direction" | "element"
    k: int

    @property
    def stem(self) -> str:
        tag = "dir" if self.kind == "direction" else "at"
        return f"fd:{self.case}:{self.param}:{tag}{self.k}"

    def call(self, sign: str) -> str:
        return f"{self.stem}:{sign}"

    @property
    def array_name(self) -> str:
        safe = "".join(ch if ch.isalnum() else "_" for ch in f"{self.case}_{self.param}")[:40]
        return f"fdv_{safe}_{self.k}.npy"


@dataclass(frozen=True)
class Options:
    tolerance: float = field(default=DEFAULT_TOLERANCE, metadata={"help": "the largest disagreement accepted"})
    step: float = field(default=DEFAULT_STEP, metadata={"help": "the finite-difference step h"})
    directions: int = field(default=DEFAULT_DIRECTIONS, metadata={"help": "random directions per parameter"})
    samples: int = field(default=DEFAULT_SAMPLES, metadata={"help": "sampled elements per parameter"})
    kinks: str = field(default="", metadata={"help": "module:function naming the loss's kinks"})
    params: Table | None = field(default=None, metadata={
        "help": "grads key -> argument index (default: the exercise's [gradient] params)"})
    loss: OutputPath | None = field(default=None, metadata={"help": "where the loss is in the output ([0])"})
    grads: OutputPath | None = field(default=None, metadata={"help": "where the dict of gradients is ([1])"})


def validate(check: CheckSpec, exercise) -> str | None:
    from dlgrade.graders.checks.gradients import validate as gradients_validate

    return gradients_validate(check, exercise)


def _options(check: CheckSpec) -> tuple[float, float, int, int]:
    return (float(check.opt("tolerance", DEFAULT_TOLERANCE)), float(check.opt("step", DEFAULT_STEP)),
            int(check.opt("directions", DEFAULT_DIRECTIONS)), int(check.opt("samples", DEFAULT_SAMPLES)))


def probes(check: CheckSpec, ctx: Context, case: str) -> list[Probe]:
    _, _, n_dir, n_samples = _options(check)
    spec = gradient_spec(check, ctx)
    out = []
    for name, arg in spec.params.items():
        out += [Probe(case, name, arg, "direction", k) for k in range(n_dir)]
        size = int(np.size(ctx.cases[case].args[arg].value))
        out += [Probe(case, name, arg, "element", k) for k in range(min(n_samples, size))]
    return out


def plan(check: CheckSpec, ctx: Context) -> list[Call]:
    _, step, _, _ = _options(check)
    spec = gradient_spec(check, ctx)
    kinks = _resolve(check.opt("kinks"), ctx.exercise.folder) if check.opt("kinks") else None
    calls = []
    for case in check.cases:
        calls.append(Call(id=call_id(case), case=case))
        args, _ = ctx.cases[case].arrays()
        seed = derive_seed("finite-difference", ctx.exercise.id, ctx.exercise.seed, ctx.student, case)
        rng = np.random.default_rng(seed)  # our own: never the student's or numpy's global state
        ref = select(ctx.reference(case), spec.grads)
        guard = gradcheck.KinkGuard(kinks, args)
        chosen: dict[str, set] = {}
        for probe in probes(check, ctx, case):
            value = np.asarray(args[probe.arg], dtype=np.float64)
            if probe.kind == "direction":
                v, h = _draw(guard, probe.arg, step, lambda: rng.standard_normal(value.shape))
                plus = {"add": {"npy": probe.array_name, "scale": h}}
                minus = {"add": {"npy": probe.array_name, "scale": -h}}
                arrays = {probe.array_name: v}
            else:
                taken = chosen.setdefault(probe.param, set())
                first = int(np.argmax(np.abs(np.asarray(ref[probe.param])))) if not taken else None
                index, h = _draw_index(rng, guard, probe.arg, step, value.shape, taken, first)
                taken.add(index)
                plus = {"add_at": {"index": list(index), "delta": h}}
                minus = {"add_at": {"index": list(index), "delta": -h}}
                arrays = {}
            calls.append(Call(id=probe.call("+"), case=case, select=spec.loss, perturb={probe.arg: plus},
                              arrays=arrays))
            calls.append(Call(id=probe.call("-"), case=case, select=spec.loss, perturb={probe.arg: minus}))
    return calls


def _draw(guard, arg, step, make):
    """A random direction (and step) along which the loss stays smooth."""
    v, h = make(), step
    for attempt in range(MAX_TRIES):
        h = step / 10 ** (attempt // SHRINK_EVERY)
        if attempt:
            v = make()
        if guard.smooth(arg, h * v):
            break
    return v, h


def _draw_index(rng, guard, arg, step, shape, taken, first):
    """An element not sampled yet (``first`` if given) whose ±h step stays smooth."""
    size = int(np.prod(shape, dtype=np.int64))
    index, h = (), step
    for attempt in range(MAX_TRIES):
        flat = first if attempt == 0 and first is not None else int(rng.integers(size))
        index = tuple(int(i) for i in np.unravel_index(flat, shape))
        if index in taken:
            continue
        h = step / 10 ** (attempt // SHRINK_EVERY)
        delta = np.zeros(shape)
        delta[index] = h
        if guard.smooth(arg, delta):
            break
    return index, h


# --------------------------------------------------------------------------- evaluate


def _loss_value(res) -> float | None:
    a = leaf_array(res.output) if res.status == "ok" else None
    if a is None or a.size != 1 or a.dtype.kind not in "biuf":
        return None
    return float(a.reshape(()))


def _param_label(name: str, index: tuple) -> str:
    return f"{name}[{', '.join(str(i) for i in index)}]" if index else name


def evaluate(check: CheckSpec, ctx: Context):
    tolerance = _options(check)[0]
    spec = gradient_spec(check, ctx)
    directions, samples = [], []
    failure = None  # (message, probe details) — the first one in plan order
    for case in check.cases:
        where = case_label(ctx, case)
        base = ctx.call(call_id(case))
        if base.status != "ok":
            return _fail(check, call_failure_message(check, ctx, case, base), directions, samples, tolerance,
                         {"case": case, "error": base.error})
        st = structure(check, ctx, case, base.output, spec)
        if st.problem:
            return _fail(check, st.problem, directions, samples, tolerance, {"case": case})
        loss = st.loss.array if st.loss is not None else None
        if loss is None or loss.size != 1:
            what = f"an array of shape {fmt_index(loss.shape)}" if loss is not None else "not a number"
            return _fail(check, f"the loss is {what} on {where}; finite differences need a single number",
                         directions, samples, tolerance, {"case": case})
        if not np.isfinite(loss).all():
            return _fail(check, f"the loss is {fmt_num(loss.reshape(()))} on {where}; finite differences need "
                         "a finite loss", directions, samples, tolerance, {"case": case})
        for probe in probes(check, ctx, case):
            plus, minus = ctx.call(probe.call("+")), ctx.call(probe.call("-"))
            perturb = ctx.planned[probe.call("+")].perturb[probe.arg]
            for res in (plus, minus):
                if res.status != "ok":
                    msg = call_failure_message(check, ctx, case, res) + f" with {probe.param} perturbed"
                    return _fail(check, msg, directions, samples, tolerance, {"case": case, "error": res.error})
            lp, lm = _loss_value(plus), _loss_value(minus)
            if lp is None or lm is None:
                return _fail(check, f"the loss is not a single number with {probe.param} perturbed on {where}",
                             directions, samples, tolerance, {"case": case})
            g = st.grads[probe.param]
            if probe.kind == "direction":
                v = ctx.planned[probe.call("+")].arrays[probe.array_name]
                h = perturb["add"]["scale"]
                with np.errstate(all="ignore"):
                    analytic = float(np.sum(v * g))
                index = ()
            else:
                index = tuple(perturb["add_at"]["index"])
                h = perturb["add_at"]["delta"]
                analytic = float(g[index]) if index else float(g)
            c = gradcheck.compare_derivative(analytic, lp, lm, h, tolerance)
            rec = {"param": probe.param, "case": case, "analytic": gradcheck.json_float(c.analytic),
                   "numeric": gradcheck.json_float(c.numeric), "rel_error": gradcheck.json_float(c.rel_error),
                   "passed": c.passed, "step": h}
            if probe.kind == "direction":
                directions.append(rec)
            else:
                samples.append({**rec, "index": list(index)})
            if not np.isfinite(lp) or not np.isfinite(lm):
                bad = lp if not np.isfinite(lp) else lm
                failure = failure or (f"the loss is {fmt_num(bad)} with {probe.param} perturbed by "
                                      f"{fmt_num(h)} on {where}; finite differences need a finite loss", None)
            elif not c.passed:
                failure = failure or (None, (probe, c, where, index))
    if failure is None:
        worst = max([float(r["rel_error"]) for r in directions + samples], default=0.0)
        n = len(check.cases)
        msg = (f"your gradients agree with finite differences of your own loss on {n} input{'s' if n != 1 else ''} "
               f"({len(directions)} random directions, {len(samples)} sampled elements; "
               f"max relative error {fmt_num(worst)})")
        return result(check, True, msg, _details(directions, samples, tolerance))
    text, found = failure
    if text is None:
        text = _disagreement(*found, samples, tolerance)
    return _fail(check, text, directions, samples, tolerance)


def _disagreement(probe: Probe, c, where: str, index: tuple, samples: list, tolerance: float) -> str:
    head = f"grads[{probe.param!r}] disagrees with finite differences of your own loss on {where}: "
    if probe.kind == "direction":
        text = (head + f"along a random direction, analytic {fmt_num(c.analytic)} vs numeric "
                f"{fmt_num(c.numeric)} (relative error {fmt_num(c.rel_error)}; tolerance {fmt_num(tolerance)})")
        bad = [s for s in samples if s["param"] == probe.param and s["case"] == probe.case and not s["passed"]]
        if bad:
            s = max(bad, key=lambda s: float(s["rel_error"]))
            text += (f"; e.g. at {_param_label(probe.param, tuple(s['index']))}: analytic "
                     f"{fmt_num(s['analytic'])}, numeric {fmt_num(s['numeric'])}")
        return text
    return (head + f"at {_param_label(probe.param, index)}, analytic {fmt_num(c.analytic)} vs numeric "
            f"{fmt_num(c.numeric)} (relative error {fmt_num(c.rel_error)}; tolerance {fmt_num(tolerance)})")


def _details(directions, samples, tolerance, extra=None) -> dict:
    return {"directions": directions, "samples": samples, "tolerance": tolerance, **(extra or {})}


def _fail(check, message, directions, samples, tolerance, extra=None):
    return result(check, False, message, _details(directions, samples, tolerance, extra))
