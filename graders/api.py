"""The library behind the CLI: grade a submission without any command line.

>>> from graders.api import check
>>> report = check("my_softmax.py")            # doctest: +SKIP
>>> report.score, report.max_score             # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from graders import engine
from graders.results import ExerciseResult, Report
from graders.runner import Runner
from graders.spec import Exercise, catalogue, get_exercise
from graders.submission import Submission, SubmissionError


class NothingToGrade(Exception):
    """No exercise entry was found in the submission and none was named."""


def exercises_for(sub: Submission, exercise_ids=(), exercises_dirs=()) -> list[Exercise]:
    """The exercises to grade: those named, else every one whose entry the submission defines."""
    if exercise_ids:
        return [get_exercise(e, exercises_dirs) for e in exercise_ids]
    found = sub.entries()
    chosen = [ex for ex in catalogue(exercises_dirs).values() if ex.entry in found]
    if not chosen:
        entries = ", ".join(sorted(e.entry for e in catalogue(exercises_dirs).values()))
        raise NothingToGrade(f"{sub.path}: no exercise entry found (looked for {entries}); "
                             "name one with --exercise")
    return chosen


def grade_one(ex: Exercise, sub: Submission, runner: Runner, direct_text: bool = False) -> ExerciseResult:
    """Grade one exercise of a submission; a missing entry is a ``missing`` result."""
    source = sub.source_for(ex.entry, direct_text=direct_text)
    if source is None:
        return ExerciseResult(student=sub.student, exercise=ex.id, title=ex.title, status="missing",
                              max_score=ex.max_score, message=f"no {ex.entry!r} found in {sub.path.name}",
                              submission=str(sub.path))
    result = engine.grade(ex, source, sub.student, runner)
    if source.notes:  # how the notebook was run: the cell magics dlgrade did not run
        result = replace(result, extra={**result.extra, "notebook": {"notes": list(source.notes)}})
    return result


def check(path, exercise_ids=(), exercises_dirs=(), student: str | None = None,
          runner: Runner | None = None, require_sandbox: bool = False) -> Report:
    """Grade every (or every named) exercise in one submission.

    Raises SubmissionError (unreadable path, malformed notebook), UnknownExercise,
    NothingToGrade, SandboxRequired; anything the student's code does is in the report.
    """
    sub = Submission(Path(path), student=student)
    exercises = exercises_for(sub, exercise_ids, exercises_dirs)
    direct = bool(exercise_ids) and len(exercises) == 1 and sub.path.is_file()
    for p in sub.files():  # fail early, as a usage error, on an unreadable notebook
        if p.suffix == ".ipynb":
            sub.python_of(p)
    own = runner is None
    runner = runner or Runner(require_sandbox=require_sandbox)
    sources = {ex.id: sub.source_for(ex.entry, direct_text=direct) for ex in exercises}
    runner.prestart(exercises, {i: s.files for i, s in sources.items() if s is not None})
    try:
        results = tuple(grade_one(ex, sub, runner, direct_text=direct) for ex in exercises)
    finally:
        if own:
            runner.close()
    return Report(student=sub.student, results=results, warnings=tuple(runner.warnings))


__all__ = ["check", "grade_one", "exercises_for", "NothingToGrade", "SubmissionError"]
