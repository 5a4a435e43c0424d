"""A class's grades as files: ``results.json`` and ``grades.csv``.

Both are records of the students' :class:`~dlgrade.graders.results.Report` data,
written by the library itself (pages are the front end's: :mod:`dlgrade.graders.pages`),
and deterministic: the same reports give the same bytes, whatever order they
were graded in. Nothing here that varies between two gradings of the same
submissions (durations) is written.

``grades.csv`` opens safely in a spreadsheet (CONTRACT §3, OWASP's CSV
injection advice): a text cell that starts with ``=``, ``+``, ``-``, ``@``,
a tab, a carriage return (or a line feed, a NUL, their full-width forms, or
any of these after leading spaces) is prefixed with ``'``, so a student id
such as ``=HYPERLINK(...)`` is text, never a formula. Numbers are left as they are.
"""
from __future__ import annotations

import csv
import io
import json
import re

from dlgrade.graders.results import Report

# Fields of an ExerciseResult dict that differ between two gradings of the same code.
VOLATILE_FIELDS = ("duration_s",)
# What makes a spreadsheet read a cell as a formula (or hide what follows).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\0", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def csv_cell(value) -> str:
    """A value as a ``grades.csv`` cell that a spreadsheet shows as it is: a number stays a
    number; text that a spreadsheet would evaluate gets a leading ``'``."""
    text = str(value)
    if _NUMBER.fullmatch(text):
        return text
    if text.startswith(FORMULA_START) or text.lstrip(" ").startswith(FORMULA_START):
        return "'" + text
    return text


def fmt_points(x: float) -> str:
    """Points as a spreadsheet reads them: ``7.5``, ``10``, ``0.3333``."""
    text = f"{round(float(x), 4):.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def results_json(reports: list[Report]) -> str:
    """Every student's every exercise as one JSON array (CONTRACT §3), sorted by
    (student, exercise), without durations."""
    rows = []
    for report in reports:
        for r in report.results:
            d = r.to_dict()
            for key in VOLATILE_FIELDS:
                d.pop(key, None)
            rows.append(d)
    rows.sort(key=lambda d: (d["student"], d["exercise"]))
    return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"


def grades_csv(reports: list[Report], exercise_ids: list[str]) -> str:
    """One row per student (sorted by id), one score column per exercise, the
    total and the most it could be. An exercise a student did not submit scores 0.
    """
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([csv_cell(c) for c in ["student", *exercise_ids, "total", "max_total"]])
    for report in sorted(reports, key=lambda r: r.student):
        by_id = {r.exercise: r for r in report.results}
        scores = [by_id[e].score if e in by_id else 0.0 for e in exercise_ids]
        max_total = sum(by_id[e].max_score for e in exercise_ids if e in by_id)
        w.writerow([csv_cell(c) for c in [report.student, *(fmt_points(s) for s in scores),
                                          fmt_points(sum(scores)), fmt_points(max_total)]])
    return buf.getvalue()
