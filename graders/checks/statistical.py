"""``kind = "statistical"``: properties of a randomised function (dropout, an initialiser).

The function gets a numpy Generator (an ``{rng = true}`` argument, built in the
sandbox from a seed the grader chose per student and case); its output arrays come
back and every statistic is computed here. Each check is one ``test`` over its cases;
a statistical one fails a correct function with probability at most ``alpha`` (the
check's, shared over its cases), from the exact distributions of
:mod:`dlgrade.reference.statistics`:

* ``support``: every element is 0 or ``x/(1 - p)`` (inverted dropout; ``x`` and ``p``
  the arguments ``x_arg`` and ``p_arg``), to ``rtol = 1e-9``; deterministic.
* ``rate``: the number of zeros lies in the exact binomial band of ``Binomial(n, p)``.
* ``identity``: the output is exactly the argument ``x_arg``.
* ``shape``: the output's shape is the arguments ``shape_args`` (``(n_in, n_out)``).
* ``not-constant``: not every entry equal.
* ``mean``: ``|mean|`` within ``z·sqrt(σ²/n)`` of 0, ``σ`` from ``std`` (below).
* ``variance``: the sample variance (ddof 1) in the exact χ² band of ``σ²``.
* ``normal``: scale-free: of the second half of the entries, the count within one
  sample standard deviation (of the first half) of 0 lies in the band of a normal sample.
* ``generator``: three calls: generators of one seed with numpy's global seed set to
  1, then 2, give identical outputs; no call changes numpy's global state; a generator
  of another seed gives another output (unless the output is constant: ``not-constant``
  says so). Deterministic.

``std`` names a trusted dict (``module:NAME``) of standard deviations as functions of
the case's plain arguments: ``"truth"`` the expected one, the others those of mistakes,
so a variance names the band it falls in. Diagnoses: the same features are measured on
every buggy reference (run here, with generators of the same seeds, numpy's global
state saved and restored around it); a mistake is named when the student has its value
on every feature where it differs from the truth, and of two named mistakes one whose
differing features are a strict subset of the other's is dropped. ``shape`` names
``transposed`` itself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dlgrade.graders.checks import bands
from dlgrade.graders.checks.protocol import settings_of
from dlgrade.graders.checks.common import call_failure_message, case_label, label_of, result, returned_type_word
from dlgrade.graders.compare import fmt_index, fmt_num
from dlgrade.graders.context import Context, to_plain
from dlgrade.graders.errors import GraderError
from dlgrade.graders.job import Call, _safe
from dlgrade.graders.inputs import derive_seed
from dlgrade.graders.decoding import Leaf
from dlgrade.graders.spec import CheckSpec, _resolve

KIND = "statistical"
TESTS = ("support", "rate", "identity", "shape", "not-constant", "mean", "variance", "normal", "generator")
GLOBAL_SEEDS = (1, 2, 1)  # numpy's global seed before the generator test's calls A, B, C


# its cases are not the entry's arguments: the spec probe leaves them to check_cases
cases_are_arguments = False

@dataclass(frozen=True)
class Options:
    test: str
    alpha: float = 1e-6
    x_arg: int = 0
    p_arg: int = 1
    shape_args: list = (0, 1)
    std: str = ""
    expected: str = ""  # how messages name the expected variance, e.g. "1/n_in"
    label: str = ""

    def validate(self) -> str:
        if self.test not in TESTS:
            return f"option 'test' must be one of {', '.join(TESTS)} (got {self.test!r})"
        if not 0 < self.alpha < 0.5:
            return f"option 'alpha' must be a probability below 0.5 (got {self.alpha!r})"
        if self.test in ("mean", "variance") and not self.std:
            return f"test {self.test!r} needs option 'std' (a trusted dict of standard deviations, module:NAME)"
        if not all(isinstance(i, int) for i in self.shape_args):
            return "option 'shape_args' must be a list of argument positions"
        return ""


def check_cases(opts: Options, cases: dict[str, dict], folder) -> str:
    """Whether each case has an ``{rng = true}`` argument and the arguments the test reads
    (checked when the spec loads); a ``std`` table must resolve."""
    for name, case in cases.items():
        args = case.get("args", [])
        if not any(isinstance(a, dict) and a.get("rng") is True for a in args):
            return f"case {name!r} needs an {{rng = true}} argument (the generator the function draws from)"
        used = [opts.x_arg, opts.p_arg] if opts.test in ("support", "rate") else (
            [opts.x_arg] if opts.test == "identity" else (
                list(opts.shape_args) if opts.test in ("shape", "mean", "variance", "normal") else []))
        if any(not 0 <= i < len(args) for i in used):
            return f"case {name!r} has {len(args)} arguments; test {opts.test!r} reads arguments {used}"
    if opts.std:
        try:
            table = _resolve(opts.std, folder)
        except Exception as exc:
            return f"option 'std': {exc}"
        if not isinstance(table, dict) or "truth" not in table:
            return "option 'std' must name a dict of standard deviations with a \"truth\" entry"
    return ""


# --------------------------------------------------------------------------- plan


def _rng_index(ctx: Context, case: str) -> int:
    for i, a in enumerate(ctx.cases[case].args):
        if a.rng is not None:
            return i
    raise GraderError(f"{ctx.exercise.id}: a statistical case needs an {{rng = true}} argument (case {case!r})")


def other_seed(seed: int) -> int:
    return derive_seed(seed, "other-seed")


def _gen_args(ctx: Context, case: str, seed: int) -> tuple[list, dict]:
    """The case's arguments as plan specs, its generator's seed replaced."""
    specs, arrays = [], {}
    for i, a in enumerate(ctx.cases[case].args):
        if a.rng is not None:
            specs.append({"rng": int(seed)})
        elif a.is_array:
            name = f"{_safe('stat_' + case)}_a{i}.npy"
            arrays[name] = a.value
            specs.append({"npy": name})
        else:
            specs.append({"json": a.value.item() if isinstance(a.value, np.generic) else a.value})
    return specs, arrays


def plan(check: CheckSpec, ctx: Context) -> list[Call]:
    opts = settings_of(check, Options)
    calls = []
    for case in check.cases:
        if opts.test != "generator":
            calls.append(Call(id=f"stat:{case}", case=case))
            continue
        seed = ctx.cases[case].args[_rng_index(ctx, case)].rng
        for tag, s, g in zip("abc", (seed, seed, other_seed(seed)), GLOBAL_SEEDS):
            args, arrays = _gen_args(ctx, case, s)
            calls.append(Call(id=f"stat-gen:{case}:{tag}", case=case, args=args, arrays=arrays,
                              global_seed=g, report_global=True))
    return calls


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Seen:
    """One test on one case: the feature the diagnoses compare, and for the student a
    failure message (empty when the test passes)."""

    feature: object
    message: str = ""
    details: dict | None = None


def _plain_args(ctx: Context, case: str) -> list:
    return [a.value for a in ctx.cases[case].args]


def _label(check: CheckSpec, ctx: Context, case: str) -> str:
    label = label_of(check, ctx)
    try:
        return label.format(*[a for a in _plain_args(ctx, case)])
    except (IndexError, KeyError, ValueError):
        return label


def _expected_shape(opts: Options, ctx: Context, case: str) -> tuple:
    args = _plain_args(ctx, case)
    if opts.test in ("support", "rate", "identity"):
        return tuple(np.shape(args[opts.x_arg]))
    return tuple(int(args[i]) for i in opts.shape_args)


def _stds(opts: Options, ctx: Context, case: str) -> dict[str, float]:
    table = _resolve(opts.std, ctx.exercise.folder)
    args = [a.value for a in ctx.cases[case].args if a.rng is None]
    return {name: float(fn(*args)) for name, fn in table.items()}


def measure(check: CheckSpec, opts: Options, ctx: Context, case: str, out, where: str = "",
            label: str = "") -> Seen:
    """The feature of one test on one output (``None`` for a value that is no array)."""
    n_alpha = opts.alpha / max(1, len(check.cases))
    expected_shape = _expected_shape(opts, ctx, case)
    if out is None:
        return Seen("not-an-array", f"{label} returned no array on {where}")
    out = np.asarray(out)
    if out.shape != expected_shape:
        transposed = len(expected_shape) == 2 and out.shape == expected_shape[::-1]
        hint = " — is it transposed?" if transposed else ""
        return Seen("transposed" if transposed else "other-shape",
                    f"{label} has shape {tuple(out.shape)} on {where}; expected {expected_shape}{hint}",
                    {"shape": list(out.shape), "expected_shape": list(expected_shape)})
    if opts.test == "shape":
        return Seen("ok")
    out = out.astype(np.float64)
    with np.errstate(all="ignore"):
        seen = _measure_values(check, opts, ctx, case, out, n_alpha, where, label)
    bad = ~np.isfinite(out)
    if seen.message and bad.any():  # the feature stays the test's own; the message names the cause
        first = tuple(int(i) for i in np.argwhere(bad)[0]) if out.ndim else ()
        k = int(bad.sum())
        return Seen(seen.feature, (f"{label} returned {k} non-finite value{'s' if k != 1 else ''} on {where} "
                                   f"(first at {fmt_index(first)}: {fmt_num(out[first])}); expected finite values"),
                    {"nonfinite": k})
    return seen


def _measure_values(check, opts, ctx, case, out, n_alpha, where, label) -> Seen:
    args = _plain_args(ctx, case)
    n = out.size
    if opts.test == "identity":
        x = np.asarray(args[opts.x_arg], dtype=np.float64)
        changed = int((out != x).sum())
        if changed == 0:
            return Seen(True)
        return Seen(False, f"{label} changed {changed} / {n} elements of x on {where}; it must return x unchanged",
                    {"changed": changed})
    if opts.test in ("support", "rate"):
        x = np.asarray(args[opts.x_arg], dtype=np.float64)
        p = float(args[opts.p_arg])
        if opts.test == "support":
            return _support(out, x, p, where, label)
        return _rate(out, p, n_alpha, where, label)
    flat = out.reshape(-1)
    if opts.test == "not-constant":
        if np.ptp(flat) > 0:
            return Seen(True)
        return Seen(False, (f"{label} returned a constant matrix (every entry {fmt_num(flat[0])}) on {where}; "
                            "the units of a layer would all stay identical"))
    if opts.test in ("mean", "variance"):
        stds = _stds(opts, ctx, case)
        truth = stds["truth"] ** 2
        if opts.test == "mean":
            band = bands.mean_band(n, truth, n_alpha)
            m = float(flat.mean())
            if abs(m) <= band:
                return Seen(True)
            return Seen(False, (f"{label} has mean {fmt_num(m)} (sample of {n} entries) on {where}; expected 0 "
                                f"(a correct initialiser's mean is within ±{fmt_num(band)} with probability "
                                f"1 - {n_alpha:g})"), {"mean": m, "band": band})
        var = float(flat.var(ddof=1))
        found = {name: bands.variance_band(n, s ** 2, n_alpha) for name, s in stds.items()}
        name = next((k for k, (lo, hi) in found.items() if lo <= var <= hi), "other")
        if name == "truth":
            return Seen(name)
        lo, hi = found["truth"]
        word = f"{opts.expected} = {fmt_num(truth)}" if opts.expected else fmt_num(truth)
        return Seen(name, (f"{label} has variance {fmt_num(var)} (sample of {n} entries) on {where}; expected "
                           f"{word} (a correct initialiser falls in [{fmt_num(lo)}, {fmt_num(hi)}] with "
                           f"probability 1 - {n_alpha:g})"), {"variance": var, "band": [lo, hi]})
    if opts.test == "normal":
        half = n // 2
        _, _, lo, hi = bands.normal_fraction_band(half, n - half, n_alpha)
        s = float(flat[:half].std(ddof=1)) if half > 1 else 0.0
        count = int((np.abs(flat[half:]) < s).sum())
        if s > 0 and lo <= count <= hi:
            return Seen(True)
        m = n - half
        return Seen(False, (f"{label} does not look normal on {where}: {count} / {m} entries within one standard "
                            f"deviation ({100 * count / m:.1f}%); a normal sample has {100 * lo / m:.1f}%–"
                            f"{100 * hi / m:.1f}% with probability 1 - {n_alpha:g}"), {"count": count, "band": [lo, hi]})
    raise GraderError(f"statistical test {opts.test!r} cannot measure a single output")


def _support(out, x, p, where, label) -> Seen:
    kept = out != 0
    ratios = {"inverse": 1 / (1 - p) if p < 1 else math.inf, "one": 1.0, "p": p,
              "inverse-p": 1 / p if p > 0 else math.inf}
    with np.errstate(all="ignore"):
        r = out[kept] / x[kept]
        feature = "none" if not kept.any() else next(
            (name for name, v in ratios.items() if np.allclose(r, v, rtol=1e-9, atol=0)), "other")
        if feature == "inverse" or (feature == "none" and p >= 1):
            return Seen("inverse")
        expected = x / (1 - p)
        bad = kept & ~np.isclose(out, expected, rtol=1e-9, atol=0)
    nbad = int(bad.sum())
    at = tuple(int(i) for i in np.argwhere(bad)[0]) if nbad else ()
    e_g = (f"; e.g. at {fmt_index(at)}: got {fmt_num(out[at])}, x/(1 - p) = {fmt_num(expected[at])}"
           if nbad else "")
    return Seen(feature, (f"{label} has {nbad} / {out.size} elements that are neither 0 nor x/(1 - p) "
                          f"with p = {p:g} on {where}{e_g}"), {"bad": nbad})


def _rate(out, p, alpha, where, label) -> Seen:
    binomial_band = bands.binomial_band
    n = out.size
    zeros = int((out == 0).sum())
    feature = "other"
    for name, q in (("p", p), ("1-p", 1 - p)):
        lo, hi = binomial_band(n, q, alpha)
        if lo <= zeros <= hi:
            feature = name
            break
    if feature == "p":
        return Seen(feature)
    lo, hi = binomial_band(n, p, alpha)
    return Seen(feature, (f"{label} dropped {zeros} / {n} units ({100 * zeros / n:.1f}%) with p = {p:g} on {where}; "
                          f"a correct dropout drops between {lo} and {hi} ({100 * lo / n:.1f}%–{100 * hi / n:.1f}%) "
                          f"with probability 1 - {alpha:g}"), {"zeros": zeros, "band": [lo, hi]})


def measure_generator(outs: list, changed: list, where: str, label: str) -> tuple[tuple, str]:
    """``((same seed same output, global state untouched, other seed other output), message)``."""
    a, b, c = outs
    if any(o is None for o in outs):
        return ("not-an-array",) * 3, f"{label} returned no array on {where}"
    same = a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))
    untouched = not any(changed)
    constant = a.size == 0 or bool(np.ptp(a.astype(np.float64)) == 0)
    other = constant or not (a.shape == c.shape and bool(np.array_equal(a, c, equal_nan=True)))
    feature = (same, untouched, other)
    if not same:
        return feature, (f"{label} gave different outputs for two generators of the same seed (numpy's global "
                         f"seed changed in between) on {where}: draw from rng, not np.random")
    if not untouched:
        return feature, f"{label} changed numpy's global random state on {where}: draw from rng, not np.random"
    if not other:
        return feature, (f"{label} gave the same output for generators of two different seeds on {where}: "
                         "draw from rng")
    return feature, ""


def _array_of(value):
    if isinstance(value, Leaf) and value.torch is None:
        return value.array
    return None


# --------------------------------------------------------------------------- the trusted side


def _trusted(fn, ctx: Context, case: str, seed: int | None = None, global_seed: int | None = None):
    """``(output array or None, numpy's global state changed)`` of a trusted function on a
    case (its generator of ``seed``), numpy's global state restored afterwards."""
    args, kwargs = ctx.cases[case].arrays()
    if seed is not None:
        i = _rng_index(ctx, case)
        args[i] = np.random.default_rng(seed)
    saved = np.random.get_state()
    try:
        if global_seed is not None:
            np.random.seed(global_seed)
        before = np.random.get_state()
        try:
            with np.errstate(all="ignore"):
                out = to_plain(fn(*args, **kwargs))
        except Exception:  # a buggy reference may fail where the truth does not
            return None, False
        after = np.random.get_state()
        changed = not (before[2] == after[2] and np.array_equal(before[1], after[1]))
    finally:
        np.random.set_state(saved)
    return (out if isinstance(out, np.ndarray) and out.dtype.kind in "biuf" else None), changed


def _features_of(ctx: Context, fn) -> dict:
    """Every statistical check's features for a trusted function."""
    found = {}
    for check in ctx.exercise.checks:
        if check.kind != KIND:
            continue
        opts = settings_of(check, Options)
        for case in check.cases:
            if opts.test == "generator":
                seed = ctx.cases[case].args[_rng_index(ctx, case)].rng
                runs = [_trusted(fn, ctx, case, s, g) for s, g in
                        zip((seed, seed, other_seed(seed)), GLOBAL_SEEDS)]
                feature, _ = measure_generator([r[0] for r in runs], [r[1] for r in runs], "", "")
                for j, f in enumerate(feature):
                    found[(check.name, case, j)] = f
            else:
                out, _ = _trusted(fn, ctx, case)
                found[(check.name, case)] = measure(check, opts, ctx, case, out).feature
    return found


def _student_seen(check: CheckSpec, opts: Options, ctx: Context, case: str) -> tuple[dict, Seen | None]:
    """The student's features of one check on one case, and the failure (None: passed;
    a Seen with a message)."""
    where, label = case_label(ctx, case), _label(check, ctx, case)
    if opts.test == "generator":
        results = [ctx.call(f"stat-gen:{case}:{t}") for t in "abc"]
        for res in results:
            if res.status != "ok":
                return {}, Seen("call", call_failure_message(check, ctx, case, res), {"error": res.error})
            if _array_of(res.output) is None:
                return {}, Seen("not-an-array", (f"{label} returned {returned_type_word(res.output)} on {where}; "
                                                 "expected an array"))
        feature, msg = measure_generator([_array_of(r.output) for r in results],
                                         [bool(r.global_changed) for r in results], where, label)
        return {(check.name, case, j): f for j, f in enumerate(feature)}, (Seen(feature, msg) if msg else None)
    res = ctx.call(f"stat:{case}")
    if res.status != "ok":
        return {}, Seen("call", call_failure_message(check, ctx, case, res), {"error": res.error})
    out = _array_of(res.output)
    seen = measure(check, opts, ctx, case, out, where, label)
    if out is None:
        seen = Seen(seen.feature, (f"{label} returned {returned_type_word(res.output)} on {where}; "
                                   f"expected an array of shape {_expected_shape(opts, ctx, case)}"))
    return {(check.name, case): seen.feature}, (seen if seen.message else None)


def exercise_diagnoses(ctx: Context) -> dict[str, set]:
    """Diagnosis id -> the names of the checks whose features show it (see the module doc)."""
    cache = ctx.__dict__.setdefault("_statistical_cache", {})
    if "diagnoses" in cache:
        return cache["diagnoses"]
    student = {}
    for check in ctx.exercise.checks:
        if check.kind == KIND:
            opts = settings_of(check, Options)
            for case in check.cases:
                student.update(_student_seen(check, opts, ctx, case)[0])
    truth = _features_of(ctx, ctx.exercise.reference_fn())
    matched = {}
    for diag in ctx.exercise.mistake_fns():
        sets = []
        for fn in ctx.mistake_variants(diag):
            bug = _features_of(ctx, fn)
            keys = frozenset(k for k in truth if bug.get(k) != truth[k])
            if keys and all(k in student and student[k] == bug.get(k) for k in keys):
                sets.append(keys)
        if sets:
            matched[diag] = max(sets, key=len)
    found = {d: {k[0] for k in keys} for d, keys in matched.items()
             if not any(keys < other for e, other in matched.items() if e != d)}
    cache["diagnoses"] = found
    return found


def evaluate(check: CheckSpec, ctx: Context):
    opts = settings_of(check, Options)
    per_case = []
    for case in check.cases:
        features, failure = _student_seen(check, opts, ctx, case)
        if failure is not None:
            diags = [d for d, names in exercise_diagnoses(ctx).items() if check.name in names]
            if opts.test == "shape" and failure.feature == "transposed":  # behavioural: seen, not matched
                diags.append("transposed")
            return result(check, False, failure.message,
                          {"case": case, **(failure.details or {}), "cases": per_case}, diagnoses=diags)
        per_case.append({"case": case})
    n = len(check.cases)
    label = label_of(check, ctx).split("(")[0]
    text = PASSED.get(opts.test, "passes")
    return result(check, True, f"{label}: {text} on {n} input{'s' if n != 1 else ''}", {"cases": per_case})


PASSED = {
    "support": "every element is 0 or x/(1 - p)",
    "rate": "the share of dropped units is within the band",
    "identity": "returns x unchanged",
    "shape": "the shape is right",
    "not-constant": "the entries differ",
    "mean": "the mean is within the band of 0",
    "variance": "the variance is within the band",
    "normal": "the entries look normal",
    "generator": "draws from the generator it is given",
}
