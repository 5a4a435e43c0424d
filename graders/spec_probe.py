"""A loaded spec checked against what its reference returns, before anyone is graded.

:func:`dlgrade.graders.spec.load_exercise` checks what the spec file says on its
own (keys, kinds, options, types, case names). What needs the reference runs
here, in the trusted grader, on the spec's cases seeded for one fixed probe
student:

* the reference and the buggy references can be imported and called;
* every mistake id and ``nonfinite_diagnosis`` names a diagnosis students can
  read: a built-in one or a ``[diagnoses.ID]`` table of the exercise;
* every value a check compares (``output = [1, "W1"]``, a gradient key) is an
  array in what the reference returns.

Each problem is a SpecError: one line naming the file, the check and the key.
What is legal but suspicious comes back as warnings: a mistake that no case
tells apart from the reference can never be diagnosed.

:func:`verified` caches the outcome per spec file (its path, size and
modification time), so a batch probes each exercise once.
"""
from __future__ import annotations

import numpy as np

from dlgrade.graders.compare import allclose, tolerance_for
from dlgrade.graders.spec import Exercise, SpecError

PROBE_STUDENT = "dlgrade-spec-probe"
_VERIFIED: dict[tuple, tuple[str, ...]] = {}


def _where(ex: Exercise) -> str:
    return str(ex.folder / "spec.toml")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _path_text(path: tuple) -> str:
    return "[" + ", ".join(f'"{k}"' if isinstance(k, str) else str(k) for k in path) + "]"


def _shape_of(value) -> str:
    """How a message names what the reference returned at some path."""
    if value is None:
        return "nothing there"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    if isinstance(value, dict):
        return "a dict with keys " + ", ".join(repr(k) for k in list(value)[:8])
    return f"a {type(value).__name__}"


def _numeric(value) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind in "biuf"


def known_diagnosis(ex: Exercise, diag_id: str) -> bool:
    from dlgrade.graders.diagnose import BUILTIN_DIAGNOSES

    return diag_id in BUILTIN_DIAGNOSES or diag_id in ex.raw.get("diagnoses", {})


def _resolved(ex: Exercise, what: str, fn):
    try:
        return fn()
    except SpecError as exc:
        text = str(exc)
        raise SpecError(text if text.startswith(_where(ex)) else f"{_where(ex)}: {what}: {text}") from None
    except Exception as exc:  # the course's module failed to import
        target = ex.reference if what == "reference" else ex.mistakes
        raise SpecError(f"{_where(ex)}: {what}: importing {target!r} raised {_one_line(exc)}") from None


def _check_diagnoses(ex: Exercise, mistakes: dict) -> None:
    where = _where(ex)
    for diag_id, fns in mistakes.items():
        variants = list(fns) if isinstance(fns, (list, tuple)) else [fns]
        if not isinstance(diag_id, str) or not variants or not all(callable(f) for f in variants):
            raise SpecError(f"{where}: mistakes: {diag_id!r} must map to a function (or a list of functions)")
        if not known_diagnosis(ex, diag_id):
            raise SpecError(f"{where}: mistakes: {diag_id!r} is not one of dlgrade's diagnoses and has no "
                            f"[diagnoses.{diag_id}] table (a title and a hint for students)")
    for c in ex.checks:
        diag = c.opt("nonfinite_diagnosis")
        if diag and not known_diagnosis(ex, diag):
            raise SpecError(f"{where}: check {c.name!r}: nonfinite_diagnosis = {diag!r} is not one of dlgrade's "
                            f"diagnoses and has no [diagnoses.{diag}] table")


def probe_exercise(ex: Exercise) -> tuple[str, ...]:
    """Check ``ex`` against its reference; returns warnings, raises SpecError."""
    from dlgrade.graders.engine import Context, check_module, compared_values, select
    from dlgrade.graders.inputs import make_cases

    where = _where(ex)
    ref_fn = _resolved(ex, "reference", ex.reference_fn)  # first, so a broken reference.py is named as such
    if not callable(ref_fn):
        raise SpecError(f"{where}: reference {ex.reference!r} is not a function")
    mistakes = _resolved(ex, "mistakes", ex.mistake_fns)
    _check_diagnoses(ex, mistakes)
    if ex.framework == "symbolic":
        return _symbolic_probe(ex)
    names = sorted({n for c in ex.checks for n in c.cases})
    try:
        cases = make_cases(ex, PROBE_STUDENT, names)
    except SpecError as exc:  # a case no draw can satisfy, say: its own words
        raise SpecError(f"{where}: {exc}") from None
    except Exception as exc:  # a malformed generator: a KeyError, a bad dim name...
        raise SpecError(f"{where}: [cases] cannot be built: {_one_line(exc)}") from None
    ctx = Context(ex, PROBE_STUDENT, cases)
    # a kind whose cases are not the entry's arguments (optimiser trajectories, a generator
    # built in the sandbox, a trainer's data) checks its cases itself (its validate hook)
    direct = sorted({n for c in ex.checks if getattr(check_module(c.kind, ex), "cases_are_arguments", True)
                     for n in c.cases})
    for case in direct:
        try:
            ctx.reference(case)
        except Exception as exc:
            raise SpecError(f"{where}: the reference raised {_one_line(exc)} on case {case!r}") from None
    observed = []  # (check, call, path) of every value a check compares
    for check in ex.checks:
        kind = check_module(check.kind, ex)
        try:
            planned = list(kind.plan(check, ctx))
            compared = compared_values(check, kind, ctx, planned)
        except SpecError:
            raise
        except Exception as exc:
            raise SpecError(f"{where}: check {check.name!r}: {_one_line(exc)}") from None
        calls = {c.id: c for c in planned}
        for obs in compared:
            call = calls.get(obs.call)
            if call is None:
                continue
            path = (*call.select, *obs.path)
            value = select(ctx.reference(call.case), path)
            if not _numeric(value):
                raise SpecError(
                    f"{where}: check {check.name!r}: output = {_path_text(path)} does not fit what the reference "
                    f"returns: on case {call.case!r} it leads to {_shape_of(value)}, not an array "
                    f"(the reference returns {_shape_of(ctx.reference(call.case))})")
            observed.append((call.case, path))
        extra = getattr(kind, "mistake_paths", None)  # values a kind matches mistakes on by itself
        if extra is not None:
            problem = getattr(kind, "reference_problem", None)
            text = problem(check, ctx) if problem else None
            if text:
                raise SpecError(f"{where}: check {check.name!r}: {text}")
            observed += list(extra(check, ctx))
    if len(direct) < len(names):  # such a kind tells its mistakes apart on its own inputs
        return ()
    _mistakes_run(ctx, mistakes, direct)
    return tuple(_indistinguishable(ctx, mistakes, list(dict.fromkeys(observed))))


def _mistakes_run(ctx, mistakes: dict, cases: list[str]) -> None:
    """A buggy reference may fail on some inputs, but one that raises on every case can
    never be matched: a SpecError naming it and what it raised."""
    for diag_id in mistakes:
        variants = len(ctx.mistake_variants(diag_id))
        for variant in range(variants):
            errors = [ctx.mistake_error(diag_id, case, variant) for case in cases]  # cached for the warnings
            if cases and all(errors):
                which = f" (variant {variant + 1})" if variants > 1 else ""
                raise SpecError(f"{_where(ctx.exercise)}: mistakes: {diag_id!r}{which} raises on every "
                                f"case ({', '.join(cases)}), so it can never be diagnosed: "
                                f"{_one_line(errors[0])}")


def _names(names) -> str:
    names = sorted(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _symbolic_probe(ex: Exercise) -> tuple[str, ...]:
    """A symbolic reference and its buggy references are expressions in the declared
    variables (the evaluator knows no other symbol); a declared variable the reference
    never uses is a warning."""
    from dlgrade.graders.symbolic_grade import SymbolicSpecError, tree_symbols, trusted_trees

    where = _where(ex)
    try:
        ref, mistakes = trusted_trees(ex)
    except SymbolicSpecError as exc:
        raise SpecError(f"{where}: {exc}") from None
    variables = list(ex.symbolic.get("variables", ["z", "y"]))
    aliases = ex.symbolic.get("aliases", {})
    declared = f"variables: {', '.join(sorted(variables))}"
    used = tree_symbols(ref)
    for what, tree in [("the reference", ref)] + [(f"mistake {d!r}", t) for d, ts in mistakes.items() for t in ts]:
        extra = sorted(tree_symbols(tree) - set(variables))
        if extra:
            notes = [declared] + [f"{a} is an alias, for answers only: the reference writes {aliases[a]}"
                                  for a in extra if a in aliases]
            verb = "which is" if len(extra) == 1 else "which are"
            raise SpecError(f"{where}: [symbolic] variables: {what} uses {_names(extra)}, {verb} not declared "
                            f"({'; '.join(notes)})")
    unused = sorted(set(variables) - used)
    if not unused:
        return ()
    one = len(unused) == 1
    return (f"{where}: [symbolic] variables: {_names(unused)} {'is' if one else 'are'} declared but the reference "
            f"never uses {'it' if one else 'them'} (an answer can be right only if "
            f"{'it cancels' if one else 'they cancel'} out)",)


def _indistinguishable(ctx, mistakes: dict, observed: list) -> list[str]:
    """Warnings for mistakes no compared value tells apart from the reference."""
    from dlgrade.graders.engine import select

    warnings = []
    for diag_id in mistakes:
        told = False
        for variant in range(len(ctx.mistake_variants(diag_id))):
            for case, path in observed:
                bug = ctx.mistake(diag_id, case, variant)
                if bug is None:  # it raised on this case: no evidence either way
                    continue
                ref = select(ctx.reference(case), path)
                got = select(bug, path)
                try:
                    got_a, ref_a = np.asarray(got, dtype=float), np.asarray(ref, dtype=float)
                except (TypeError, ValueError):
                    told = True  # it returns something else entirely: any check tells it
                    break
                rtol, atol = tolerance_for(ref_a.dtype.name)
                if got_a.shape != ref_a.shape or not allclose(got_a, ref_a, rtol * 10, atol * 10):
                    told = True
                    break
            if told:
                break
        if not told:
            warnings.append(f"{_where(ctx.exercise)}: mistake {diag_id!r}: no case tells it apart from the "
                            "reference, so it can never be diagnosed (add a case on which it differs)")
    return warnings


def verified(ex: Exercise) -> tuple[str, ...]:
    """:func:`probe_exercise`, once per version of the spec file."""
    spec = ex.folder / "spec.toml"
    try:
        st = spec.stat()
        key = (str(spec.resolve()), ex.id, st.st_size, st.st_mtime_ns)
    except OSError:
        key = (str(spec), ex.id, 0, 0)
    if key not in _VERIFIED:
        _VERIFIED[key] = probe_exercise(ex)
    return _VERIFIED[key]
