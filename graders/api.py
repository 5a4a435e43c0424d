"""The library behind the CLI: grade a submission without any command line.

>>> from dlgrade.graders.api import check
>>> report = check("my_softmax.py")            # doctest: +SKIP
>>> report.score, report.max_score             # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dlgrade.graders import engine
from dlgrade.graders.results import ExerciseResult, Report
from dlgrade.graders.runner import Runner
from dlgrade.graders.spec import Exercise, catalogue, get_exercise
from dlgrade.graders.submission import LoadFailure, Refusal, Submission, SubmissionError
from dlgrade.graders.errors import UserError


class NothingToGrade(UserError):
    """No exercise entry was found in the submission and none was named."""


def exercises_for(sub: Submission, exercise_ids=(), exercises_dirs=()) -> list[Exercise]:
    """The exercises to grade: those named, else every one whose entry the submission
    defines, or may define in a file that could not be read (which is then graded as
    an error). Raises UnknownExercise, SpecError or NothingToGrade."""
    if exercise_ids:
        return [get_exercise(e, exercises_dirs) for e in exercise_ids]
    found = sub.entries() | sub.guessed_entries()
    chosen = [ex for ex in catalogue(exercises_dirs).values() if ex.entry in found]
    if not chosen:
        entries = ", ".join(sorted(e.entry for e in catalogue(exercises_dirs).values()))
        refused = sub.refusals()
        head = f"{refused[0].message}; and " if refused else f"{sub.path}: "
        raise NothingToGrade(f"{head}no exercise entry found (looked for {entries}); "
                             "name one with --exercise")
    return chosen


def refused_result(ex: Exercise, student: str, refusal: Refusal) -> ExerciseResult:
    """The graded ``error`` for an exercise whose files could not be read (CONTRACT §4)."""
    return ExerciseResult(student=student, exercise=ex.id, title=ex.title, status="error",
                          max_score=ex.max_score, message=refusal.message, submission=refusal.file,
                          error={"kind": "submission", "reason": refusal.kind, "file": refusal.file})


def grade_one(ex: Exercise, sub: Submission, runner: Runner, direct_text: bool = False) -> ExerciseResult:
    """Grade one exercise of a submission.

    A missing entry is a ``missing`` result; a file that could not be read (a
    symbolic link, a file over a limit, a malformed notebook) an ``error`` result.
    """
    try:
        source = sub.source_for(ex.entry, direct_text=direct_text)
    except LoadFailure as exc:
        return refused_result(ex, sub.student, exc.refusal)
    if source is None:
        return ExerciseResult(student=sub.student, exercise=ex.id, title=ex.title, status="missing",
                              max_score=ex.max_score, message=f"no {ex.entry!r} found in {sub.path.name}",
                              submission=str(sub.path))
    result = engine.grade(ex, source, sub.student, runner)
    if source.notes:  # how the notebook was run: the cell magics dlgrade did not run
        result = replace(result, extra={**result.extra, "notebook": {"notes": list(source.notes)}})
    return result


def check(path, exercise_ids=(), exercises_dirs=(), student: str | None = None,
          runner: Runner | None = None, require_sandbox: bool = False, display_root=None) -> Report:
    """Grade every (or every named) exercise in one submission.

    Raises SubmissionError (no such path, not a submission), UnknownExercise,
    SpecError, NothingToGrade, SandboxRequired. Anything in the submission itself
    is in the report: a file that cannot be read (a symbolic link, a malformed or
    oversized notebook) is an ``error`` result, like a crash or a syntax error.
    ``display_root``: name the submission's files relative to this folder in the
    report (a notebook a kernel wrote to a temporary folder is ``hw1.ipynb``).
    """
    sub = Submission(Path(path), student=student, display_root=Path(display_root) if display_root else None)
    exercises = exercises_for(sub, exercise_ids, exercises_dirs)
    direct = bool(exercise_ids) and len(exercises) == 1 and sub.is_file
    own = runner is None
    runner = runner or Runner(require_sandbox=require_sandbox)
    shipped = {}
    for ex in exercises:
        try:
            source = sub.source_for(ex.entry, direct_text=direct)
        except LoadFailure:
            source = None
        if source is not None:
            shipped[ex.id] = source.files
    runner.prestart(exercises, shipped)
    try:
        results = tuple(grade_one(ex, sub, runner, direct_text=direct) for ex in exercises)
    finally:
        if own:
            runner.close()
    return Report(student=sub.student, results=results, warnings=tuple(runner.warnings))


__all__ = ["check", "grade_one", "exercises_for", "refused_result", "NothingToGrade", "SubmissionError"]
