"""A class's grades as files: ``results.json`` and ``grades.csv``.

Both are renderings of the students' :class:`~graders.results.Report` records
and are deterministic: the same reports give the same bytes, whatever order
they were graded in. Nothing here that varies between two gradings of the same
submissions (durations) is written.
"""
from __future__ import annotations

import csv
import io
import json

from graders.results import Report

# Fields of an ExerciseResult dict that differ between two gradings of the same code.
VOLATILE_FIELDS = ("duration_s",)


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
    w.writerow(["student", *exercise_ids, "total", "max_total"])
    for report in sorted(reports, key=lambda r: r.student):
        by_id = {r.exercise: r for r in report.results}
        scores = [by_id[e].score if e in by_id else 0.0 for e in exercise_ids]
        max_total = sum(by_id[e].max_score for e in exercise_ids if e in by_id)
        w.writerow([report.student, *(fmt_points(s) for s in scores), fmt_points(sum(scores)),
                    fmt_points(max_total)])
    return buf.getvalue()
