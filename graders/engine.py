"""Grading one exercise of one submission: orchestration only.

1. Every check's kind (dlgrade.graders.checks.protocol) plans the calls it
   needs (:class:`~dlgrade.graders.job.Call`).
2. All calls run in one job in a fresh child of a warm worker (sandboxed);
   the job's wire format is dlgrade.graders.job.
3. Back in the grader, each check evaluates the decoded outputs against the
   reference computed here (dlgrade.graders.context) and returns a CheckResult.
4. Buggy references are matched on every value a check compares, to name the
   mistake (:func:`match_mistakes`, the evidence rule of dlgrade.graders.diagnose).

Failures of the student (syntax error, exception, timeout, crash) become a
result with a status; failures of dlgrade raise :class:`GraderError`.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from dlgrade.graders import diagnose
from dlgrade.graders.context import Context, leaf_array, select, to_plain, to_torch  # noqa: F401  (re-exported)
from dlgrade.graders.errors import GraderError  # noqa: F401  (re-exported: checks import it from here)
from dlgrade.graders.inputs import make_cases
from dlgrade.graders.job import (  # noqa: F401  (re-exported: the engine's names before the wire format moved)
    SIGNAL_NAMES, Call, CallResult, build_plan, collect_calls, error_text, format_output, outcome_status,
    signal_text,
)
from dlgrade.graders.results import ExerciseResult
from dlgrade.graders.sandbox import SandboxError
from dlgrade.graders.spec import CheckSpec, Exercise

if TYPE_CHECKING:  # pragma: no cover
    from dlgrade.graders.submission import SubmissionSource

def check_module(kind: str, exercise: Exercise | None = None):
    """The check kind named ``kind`` (see dlgrade.graders.checks.protocol): an exercise's
    own registry when given (a course's kinds included), else dlgrade's built-ins."""
    from dlgrade.graders.checks.registry import BUILTIN

    registry = exercise.kinds if exercise is not None and exercise.kinds is not None else BUILTIN
    try:
        return registry.get(kind)
    except KeyError:  # a loaded spec names only known kinds: this is dlgrade's bug
        raise GraderError(f"unknown check kind {kind!r}") from None


def compared_values(check: CheckSpec, kind, ctx: Context, planned) -> list:
    """What ``check`` compares with the reference (its kind says), as Compared records;
    a kind that does not say: its calls marked ``compare``, whole."""
    from dlgrade.graders.checks.protocol import Compared

    found = kind.compared(check, ctx) if hasattr(kind, "compared") else None
    if found is None:
        found = [Compared(c.id) for c in planned if c.compare]
    return list(found)


# --------------------------------------------------------------------------- mistakes


def match_mistakes(ctx: Context, calls=None) -> list[str]:
    """Diagnosis ids whose buggy reference the submission reproduces (evidence rule),
    judged on every value a check compares (``ctx.compared``: a tuple element, a dict
    key, a gradient...) of the calls in ``calls`` (ids; default: all of them)."""
    found = []
    observed = [o for o in ctx.compared if calls is None or o.call in calls]
    for diag_id in ctx.exercise.mistake_fns():
        for variant in range(len(ctx.mistake_variants(diag_id))):
            if diagnose.evidence_matches(_evidence(ctx, observed, diag_id, variant)):
                found.append(diag_id)
                break
    return found


def hidden_only(ctx: Context, checks, diags: list[str], shown_calls: set[str]) -> tuple[str, ...]:
    """Of ``diags``, those no visible check reported and whose evidence lies only in
    hidden checks' inputs: the student's view leaves them out."""
    if not any(c.hidden for c in checks):
        return ()
    on_visible = {d for c in checks if not c.hidden for d in c.diagnoses}
    candidates = [d for d in diags if d not in on_visible]
    if not candidates:
        return ()
    shown = set(match_mistakes(ctx, shown_calls))
    return tuple(d for d in candidates if d not in shown)


def _evidence(ctx: Context, observed, diag_id: str, variant: int) -> list[tuple[bool, bool]]:
    """(student matches the buggy reference, buggy differs from the truth) per compared value."""
    pairs = []
    for obs in observed:
        call = ctx.planned.get(obs.call)
        if call is None:
            continue
        res = ctx.call(call.id)
        g = leaf_array(select(res.output, obs.path)) if res.status == "ok" else None  # the worker applied select
        if g is None:
            continue
        path = (*call.select, *obs.path)
        ref = select(ctx.reference(call.case), path)
        bug = select(ctx.mistake(diag_id, call.case, variant), path)
        if bug is None or ref is None:
            continue
        try:
            bug_a, ref_a = np.asarray(bug, dtype=float), np.asarray(ref, dtype=float)
        except (TypeError, ValueError):
            continue
        rtol, atol = _tol_for(ctx, g)
        differs = not _close(bug_a, ref_a, rtol * 10, atol * 10)
        matches = _close(g, bug_a, rtol, atol)
        if not matches and _nonfinite_where_finite(g, ref_a):
            continue  # another mistake (overflow, ...) made this output nan: no evidence either way
        pairs.append((matches, differs))
    return pairs


def _nonfinite_where_finite(got: np.ndarray, ref: np.ndarray) -> bool:
    try:
        with np.errstate(invalid="ignore"):
            return got.shape == ref.shape and bool((~np.isfinite(got.astype(float)) & np.isfinite(ref)).any())
    except (TypeError, ValueError):
        return False


def _tol_for(ctx: Context, g: np.ndarray) -> tuple[float, float]:
    from dlgrade.graders.compare import tolerance_for

    return tolerance_for(g.dtype.name)


def _close(a, b, rtol, atol) -> bool:
    from dlgrade.graders.compare import allclose

    return allclose(a, b, rtol, atol)


# --------------------------------------------------------------------------- grading


def grade(ex: Exercise, source: "SubmissionSource", student: str, runner) -> ExerciseResult:
    """Grade one exercise. ``source`` holds the files to ship (see dlgrade.graders.submission).

    Raises SpecError when the spec does not fit its reference (before anything runs),
    GraderError when dlgrade itself fails."""
    from dataclasses import replace

    from dlgrade.graders.spec_probe import verified

    verified(ex)  # a spec that does not fit its reference: one line, before anyone is graded
    r = _grade(ex, source, student, runner)
    words = ex.explanations(r.diagnoses)  # this exercise's own titles and hints, carried with the result
    return replace(r, explanations=words) if words else r


def _grade(ex: Exercise, source: "SubmissionSource", student: str, runner) -> ExerciseResult:
    t0 = time.perf_counter()
    if ex.framework == "symbolic":
        from dlgrade.graders.symbolic_grade import grade_symbolic

        return grade_symbolic(ex, source, student, runner)
    if ex.gpu.get("required"):  # no GPU here: a clear error before anything runs, never a zero
        from dlgrade.graders.devices import require_gpu

        require_gpu(ex)
    sites = []
    if ex.rules.forbid_imports:  # a forbidden import the source shows: decided before anything runs
        from dlgrade.graders import rules

        sites = rules.import_sites(source.files, source.main_name, ex.entry, ex.rules)
        broken = rules.violations(sites, files=source.files)
        if broken:
            return rules.rules_result(ex, source, broken, dict(
                student=student, exercise=ex.id, title=ex.title, max_score=ex.max_score,
                submission=source.display_name, duration_s=time.perf_counter() - t0))
    case_names = sorted({n for c in ex.checks for n in c.cases})
    ctx = Context(ex, student, make_cases(ex, student, case_names))
    modules = {c.kind: check_module(c.kind, ex) for c in ex.checks}
    shown_calls: set[str] = set()  # calls a visible check asked for: evidence a student may see
    for check in ex.checks:
        planned = list(modules[check.kind].plan(check, ctx))
        for call in planned:
            ctx.planned.setdefault(call.id, call)
            if not check.hidden:
                shown_calls.add(call.id)
        for obs in compared_values(check, modules[check.kind], ctx, planned):
            if obs not in ctx.compared:
                ctx.compared.append(obs)
    seed = ctx.cases[case_names[0]].seed if case_names else 0
    planned_ids = [cid for cid, c in ctx.planned.items() if not c.accelerator]
    plan = build_plan(ctx, source.main_name, seed, planned_ids)
    try:
        outcome = runner.run(ex, plan, source.files)
    except SandboxError as exc:
        raise GraderError(str(exc)) from exc
    outcome.reply["_planned"] = planned_ids
    outcome.reply["_cases"] = {cid: call.case for cid, call in ctx.planned.items()}
    try:
        base = dict(student=student, exercise=ex.id, title=ex.title, max_score=ex.max_score,
                    output=format_output(outcome.reply.get("output", {})), isolation=outcome.isolation,
                    submission=source.display_name)
        if ex.rules.forbid_imports:  # what the worker saw imported
            from dlgrade.graders import rules

            broken = rules.violations(sites, outcome.journal, source.files)
            if broken:
                return rules.rules_result(ex, source, broken, {**base, "duration_s": time.perf_counter() - t0})
        failed = outcome_status(ex, outcome, source)
        if failed:
            status, message, error = failed
            error = {**error, "file": source.display_name}
            source.map_error(error)
            return ExerciseResult(status=status, message=message, error=error,
                                  duration_s=time.perf_counter() - t0, **base)
        collect_calls(ctx, outcome, source)
        accelerated = [cid for cid, c in ctx.planned.items() if c.accelerator]
        if accelerated:
            run_accelerator_job(ctx, source, seed, accelerated, runner)
        checks = [modules[c.kind].evaluate(c, ctx) for c in ex.checks]
        diags = []
        for c in checks:
            diags += [d for d in c.diagnoses if d not in diags]
        for d in match_mistakes(ctx):
            if d not in diags:
                diags.append(d)
        return ExerciseResult(status="graded", checks=tuple(checks), diagnoses=tuple(diags),
                              hidden_diagnoses=hidden_only(ctx, checks, diags, shown_calls),
                              duration_s=time.perf_counter() - t0, extra=ctx.extra, **base)
    finally:
        outcome.cleanup()


def run_accelerator_job(ctx: Context, source, seed: int, ids: list[str], runner) -> None:
    """Run GPU checks' calls in a job of their own, on a worker that sees the GPU.

    The main job never sees a GPU (see dlgrade.graders.sandbox), so every other check
    scores the same on any machine. If this job fails as a whole (a crash or a
    hang on the GPU), only the calls it had not finished are missing, and
    ``ctx.extra["gpu_job"]`` says why: the GPU checks fail, nothing else changes.
    """
    from dataclasses import replace

    from dlgrade.graders.sandbox import gpu_limits

    ex = ctx.exercise
    cuda = any(ctx.planned[i].device.startswith("cuda") for i in ids)
    plan = build_plan(ctx, source.main_name, seed, ids)
    try:
        outcome = runner.run(ex, plan, source.files, gpu=True) if cuda else runner.run(ex, plan, source.files)
    except SandboxError as exc:
        raise GraderError(str(exc)) from exc
    outcome.reply["_planned"] = list(ids)
    try:
        failed = outcome_status(replace(ex, limits=gpu_limits(ex.limits)) if cuda else ex, outcome)
        if failed:
            status, message, error = failed
            ctx.extra["gpu_job"] = {"status": status, "message": message, "error": error}
        collect_calls(ctx, outcome, source)  # what finished before a failure still counts
    finally:
        outcome.cleanup()
