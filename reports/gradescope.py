"""Gradescope's autograder ``results.json``, rendered from a dlgrade StudentReport.

Format: Gradescope's "Autograder Specifications" (results.json: ``score``,
``execution_time``, ``output``, ``stdout_visibility``, ``extra_data`` and
``tests`` with ``name``, ``number``, ``score``, ``max_score``, ``status``
``passed``/``failed``, ``output``, ``tags``, ``visibility``).

- every check is a test named ``<exercise>: <check>``, numbered ``1.1, 1.2, ...``;
- a hidden check is a test with visibility ``after_published``, and even then
  shows only its name and verdict (it renders a StudentReport only);
- a skipped check is worth 0 of 0 points and has no status (Gradescope has
  none for "skipped"), its name ending in ``(skipped)``;
- an exercise that was not graded (error, timeout, missing) is one failed test,
  ``<exercise>: the submission could be graded``, worth 0 of the exercise's
  points, whose output says what went wrong;
- the top-level ``output`` is the per-exercise summary with diagnoses and hints.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dlgrade.graders.diagnose import describe
from dlgrade.graders.results import StudentReport, StudentResult, student_view_only
from dlgrade.reports.plaintext import (
    NOT_GRADED_CASE, STATUS_HEADLINE, check_text, cut_middle, failure_text, pts,
)

VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
HIDDEN_CHECK_VISIBILITY = "after_published"
OUTPUT_LIMIT = 4000


def _tests(index: int, result: StudentResult) -> list[dict[str, Any]]:
    if result.status != "graded":
        text = failure_text(result)
        if result.output.strip():
            text += "\n\nYour code printed:\n" + cut_middle(result.output.strip(), OUTPUT_LIMIT)
        return [{"name": f"{result.exercise}: {NOT_GRADED_CASE}", "number": f"{index}.1",
                 "score": 0.0, "max_score": float(result.max_score), "status": "failed",
                 "output": text, "tags": [result.exercise], "visibility": "visible"}]
    tests = []
    for j, c in enumerate(result.checks, start=1):
        test: dict[str, Any] = {
            "name": f"{result.exercise}: {c.name}", "number": f"{index}.{j}",
            "score": float(c.score), "max_score": float(c.max_score),
            "output": c.message if c.status == "passed" else check_text(c),
            "tags": [result.exercise] + ([c.kind] if c.kind else []),
            "visibility": HIDDEN_CHECK_VISIBILITY if c.hidden else "visible",
        }
        if c.status in ("passed", "failed"):
            test["status"] = c.status
        else:
            test["name"] += f" ({c.status})"
        tests.append(test)
    return tests


def _summary(report: StudentReport) -> str:
    lines = [f"dlgrade: {pts(report.score)} / {pts(report.max_score)} points"]
    for r in report.results:
        lines.append("")
        lines.append(f"{r.exercise} ({r.title}): {pts(r.score)} / {pts(r.max_score)}" if r.title
                     else f"{r.exercise}: {pts(r.score)} / {pts(r.max_score)}")
        if r.status != "graded":
            lines.append(f"  {STATUS_HEADLINE[r.status]}: {r.message}")
        for d in r.diagnoses:
            info = describe(d, r)
            lines.append(f"  diagnosis [{d}] {info.title}")
            if info.hint:
                lines.append(f"    {info.hint}")
    return "\n".join(lines)


def gradescope_results(report: StudentReport, stdout_visibility: str = "hidden") -> dict[str, Any]:
    """The results.json object for ``report``.

    ``stdout_visibility`` is when students see run_autograder's stdout (one of
    :data:`VISIBILITIES`); by default only instructors do. Raises TypeError for
    anything but a StudentReport: every part of this file can reach the student.
    """
    report = student_view_only(report, "Gradescope's results.json")
    if stdout_visibility not in VISIBILITIES:
        raise ValueError(f"stdout_visibility must be one of {', '.join(VISIBILITIES)}")
    tests = []
    for i, r in enumerate(report.results, start=1):
        tests += _tests(i, r)
    return {
        "score": float(report.score),
        "execution_time": round(sum(r.duration_s for r in report.results), 3),
        "output": _summary(report),
        "stdout_visibility": stdout_visibility,
        "extra_data": {"dlgrade": {
            "student": report.student,
            "max_score": float(report.max_score),
            "exercises": [{"exercise": r.exercise, "status": r.status, "score": float(r.score),
                           "max_score": float(r.max_score), "diagnoses": list(r.diagnoses)}
                          for r in report.results],
        }},
        "tests": tests,
    }


def write_gradescope(report: StudentReport, path, stdout_visibility: str = "hidden") -> Path:
    """Write Gradescope's results.json for ``report`` to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = gradescope_results(report, stdout_visibility=stdout_visibility)
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path
