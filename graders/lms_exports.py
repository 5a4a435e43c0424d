"""Grades in an LMS's import format: Canvas's gradebook CSV, Moodle's grading worksheet, a plain CSV.

Each is a record of the class's reports (overrides already laid on them) and
of the roster: data files an LMS reads back, written by the library itself (pages
are the front end's: :mod:`dlgrade.graders.pages`). Nothing here decides a grade.
The points a course chose (``points_possible``) scale each student's total: ``total / max_total * P``.

- ``canvas``: what Canvas's gradebook import reads (``GradebookImporter``): a
  header ``Student, ID, SIS User ID, SIS Login ID, Section, <assignment>``,
  then a ``Points Possible`` row, then one row per student. Canvas matches a
  row by the numeric ``ID`` (the user id of the submissions download), else by
  SIS ids, else by name; the assignment column by the ``(id)`` at the end of
  its header (``Homework 1 (4567)``), else by its title, else it creates one.
- ``moodle``: the assignment's offline grading worksheet (``assignfeedback_offline``):
  ``Identifier`` (``Participant <id>``), ``Grade`` and ``Last modified (grade)``
  are what Moodle reads back; a grade above the assignment's maximum grade is
  skipped by Moodle, so ``points_possible`` should be that maximum.
- ``csv``: one row per student: id, name, e-mail, section, each exercise, the
  total, the maximum, the scaled points, late, overridden exercises.

A student on the roster who submitted nothing gets a row with an empty grade
(an LMS leaves an empty cell unchanged). Every cell is safe to open in a
spreadsheet (CONTRACT §3): text starting with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return gets a leading ``'`` unless it is a number.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from dlgrade.graders.results import Report
from dlgrade.graders.class_files import fmt_points

EXPORT_FORMATS = ("canvas", "moodle", "csv")
DEFAULT_FILES = {"canvas": "canvas-grades.csv", "moodle": "moodle-grades.csv", "csv": "grades-export.csv"}
CANVAS_DEFAULT_ASSIGNMENT = "dlgrade"
CANVAS_POINTS_POSSIBLE = "    Points Possible"  # as Canvas's own export writes it
MOODLE_PARTICIPANT = "Participant "
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")
_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """A CSV cell a spreadsheet shows as text (CONTRACT §3): a ``'`` before text that
    starts with ``=``, ``+``, ``-``, ``@``, tab or CR, unless the text is a number."""
    text = "" if value is None else str(value)
    if text.startswith(_DANGEROUS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


@dataclass
class GradeRow:
    """One student's line in an export."""

    student: str
    name: str = ""
    email: str = ""
    section: str = ""
    sis_id: str = ""
    login: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    total: float | None = None  # None: nothing submitted
    max_total: float = 0.0
    late: bool = False
    overridden: tuple[str, ...] = ()


def grade_rows(reports: list[Report], exercise_ids: list[str], roster=None, intake: dict | None = None,
               max_total: float | None = None) -> list[GradeRow]:
    """A row per graded student and per roster student who submitted nothing, sorted by id."""
    intake_students = (intake or {}).get("students") or {}
    class_max = max_total if max_total is not None else _class_max(reports, exercise_ids)
    rows: dict[str, GradeRow] = {}
    for rep in reports:
        by_id = {r.exercise: r for r in rep.results}
        scores = {e: by_id[e].score if e in by_id else 0.0 for e in exercise_ids}
        rows[rep.student] = GradeRow(
            student=rep.student, name=rep.name, scores=scores, total=sum(scores.values()), max_total=class_max,
            late=bool((intake_students.get(rep.student) or {}).get("late")),
            overridden=tuple(e for e in exercise_ids if e in by_id and by_id[e].override))
    people = roster.people if roster is not None else {}
    for sid, p in people.items():
        row = rows.setdefault(sid, GradeRow(student=sid, max_total=class_max))
        row.name = p.name or row.name
        row.email, row.section, row.sis_id, row.login = p.email, p.section, p.sis_id, p.login
    for sid, row in rows.items():
        meta = intake_students.get(sid) or {}
        row.name = row.name or str(meta.get("name") or "")
        row.email = row.email or str(meta.get("email") or "")
    return [rows[k] for k in sorted(rows)]


def _class_max(reports: list[Report], exercise_ids: list[str]) -> float:
    best: dict[str, float] = {}
    for rep in reports:
        for r in rep.results:
            best[r.exercise] = max(best.get(r.exercise, 0.0), r.max_score)
    return sum(best.get(e, 0.0) for e in exercise_ids)


def scaled(row: GradeRow, points_possible: float | None) -> float | None:
    """The row's total on the course's scale (None when the student submitted nothing)."""
    if row.total is None:
        return None
    if points_possible is None:
        return row.total
    return row.total / row.max_total * points_possible if row.max_total else 0.0


def _points(x: float | None) -> str:
    return "" if x is None else fmt_points(x)


def _writer(buf: io.StringIO):
    return csv.writer(buf, lineterminator="\r\n")


def canvas_csv(rows: list[GradeRow], points_possible: float | None = None,
               assignment: str = CANVAS_DEFAULT_ASSIGNMENT) -> str:
    """Canvas's gradebook import CSV (see the module doc)."""
    buf = io.StringIO()
    w = _writer(buf)
    possible = points_possible if points_possible is not None else (rows[0].max_total if rows else 0.0)
    w.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", safe_cell(assignment)])
    w.writerow([CANVAS_POINTS_POSSIBLE, "", "", "", "", fmt_points(possible)])
    for row in sorted(rows, key=lambda r: (_sortable(r.name).lower(), r.student)):
        w.writerow([safe_cell(_sortable(row.name)), safe_cell(row.student), safe_cell(row.sis_id),
                    safe_cell(row.login), safe_cell(row.section), _points(scaled(row, points_possible))])
    return buf.getvalue()


def _sortable(name: str) -> str:
    """``Ada Lovelace`` -> ``Lovelace, Ada`` (Canvas's sortable name); one word stays as it is."""
    name = " ".join(name.split())
    if not name or "," in name or " " not in name:
        return name
    first, _, last = name.rpartition(" ")
    return f"{last}, {first}"


def moodle_csv(rows: list[GradeRow], points_possible: float | None = None, when: datetime | None = None) -> str:
    """Moodle's offline grading worksheet (see the module doc)."""
    when = when or datetime.now(timezone.utc)
    stamp = when.replace(microsecond=0).isoformat()
    buf = io.StringIO()
    w = _writer(buf)
    w.writerow(["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                "Grade can be changed", "Last modified (submission)", "Last modified (grade)"])
    for row in rows:
        possible = points_possible if points_possible is not None else row.max_total
        graded = row.total is not None
        w.writerow([MOODLE_PARTICIPANT + row.student, safe_cell(row.name), safe_cell(row.email),
                    "Submitted for grading - Graded" if graded else "No submission",
                    _points(scaled(row, points_possible)), fmt_points(possible), "Yes", "",
                    stamp if graded else ""])
    return buf.getvalue()


def plain_csv(rows: list[GradeRow], exercise_ids: list[str], points_possible: float | None = None) -> str:
    """The plain CSV export (see the module doc)."""
    buf = io.StringIO()
    w = _writer(buf)
    w.writerow(["student", "name", "email", "section", *exercise_ids, "total", "max_total", "points",
                "points_possible", "submitted", "late", "overridden"])
    for row in rows:
        possible = points_possible if points_possible is not None else row.max_total
        w.writerow([safe_cell(row.student), safe_cell(row.name), safe_cell(row.email), safe_cell(row.section),
                    *(_points(row.scores.get(e)) if row.total is not None else "" for e in exercise_ids),
                    _points(row.total), fmt_points(row.max_total), _points(scaled(row, points_possible)),
                    fmt_points(possible), "yes" if row.total is not None else "no", "yes" if row.late else "",
                    " ".join(row.overridden)])
    return buf.getvalue()


def render(fmt: str, rows: list[GradeRow], exercise_ids: list[str], points_possible: float | None = None,
           assignment: str = "", when: datetime | None = None) -> str:
    """One export's text. Raises ValueError for an unknown format."""
    if fmt == "canvas":
        return canvas_csv(rows, points_possible, assignment or CANVAS_DEFAULT_ASSIGNMENT)
    if fmt == "moodle":
        return moodle_csv(rows, points_possible, when)
    if fmt == "csv":
        return plain_csv(rows, exercise_ids, points_possible)
    raise ValueError(f"unknown export format {fmt!r} (one of {', '.join(EXPORT_FORMATS)})")


def canvas_warnings(rows: list[GradeRow], assignment: str) -> list[str]:
    """What a person should know before importing a Canvas export."""
    out = []
    if not re.search(r"\(\d+\)\s*$", assignment or ""):
        out.append(f"canvas export: the column {assignment or CANVAS_DEFAULT_ASSIGNMENT!r} names no Canvas "
                   "assignment id, so Canvas matches it by title or creates a new assignment; name it with "
                   "--assignment 'Homework 1 (12345)' (the header of Canvas's own gradebook export)")
    odd = [r.student for r in rows if not r.student.isdigit()]
    if odd:
        out.append(f"canvas export: {len(odd)} student id(s) are not Canvas user ids ({', '.join(odd[:3])}"
                   f"{', ...' if len(odd) > 3 else ''}): Canvas will match those rows by SIS id or name")
    return out


__all__ = ["EXPORT_FORMATS", "DEFAULT_FILES", "GradeRow", "grade_rows", "render", "canvas_csv", "moodle_csv",
           "plain_csv", "safe_cell", "scaled", "canvas_warnings"]
