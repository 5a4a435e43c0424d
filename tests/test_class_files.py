"""graders/class_files.py: grades.csv and results.json, deterministic to the byte."""
from __future__ import annotations

import json

import pytest

from dlgrade.graders.results import CheckResult, ExerciseResult, Report
from dlgrade.graders.class_files import fmt_points, grades_csv, results_json


@pytest.mark.parametrize("x, text", [(7.5, "7.5"), (10.0, "10"), (1 / 3, "0.3333"), (0.0, "0"),
                                     (-0.0, "0"), (2.00004, "2"), (12.25, "12.25")])
def test_points_read_as_a_spreadsheet_expects(x, text):
    assert fmt_points(x) == text


def _result(student, exercise, score, max_score=10.0, status="graded", duration=0.5):
    checks = (CheckResult("values", score == max_score, score, max_score, "msg"),) if status == "graded" else ()
    return ExerciseResult(student=student, exercise=exercise, status=status, checks=checks,
                          max_score=max_score, duration_s=duration)


def test_grades_csv_one_row_per_student_sorted_missing_exercises_score_zero():
    reports = [
        Report("zoe", (_result("zoe", "a", 2.5), _result("zoe", "b", 0, 5, status="timeout"))),
        Report("amy", (_result("amy", "a", 10), _result("amy", "b", 5, 5))),
        Report("bea", (_result("bea", "a", 1 / 3),)),
    ]
    assert grades_csv(reports, ["a", "b"]) == (
        "student,a,b,total,max_total\n"
        "amy,10,5,15,15\n"
        "bea,0.3333,0,0.3333,10\n"
        "zoe,2.5,0,2.5,15\n")


def test_student_ids_with_commas_are_quoted():
    assert grades_csv([Report("Doe, Jane", (_result("Doe, Jane", "a", 1),))], ["a"]).splitlines()[1] == \
        '"Doe, Jane",1,1,10'


def test_results_json_sorted_without_durations_whatever_the_input_order():
    a = [Report("bob", (_result("bob", "y", 1, duration=0.1), _result("bob", "x", 2, duration=0.2))),
         Report("amy", (_result("amy", "x", 3, duration=0.3),))]
    b = [Report("amy", (_result("amy", "x", 3, duration=9.0),)),
         Report("bob", (_result("bob", "x", 2, duration=9.0), _result("bob", "y", 1, duration=9.0)))]
    assert results_json(a) == results_json(b)
    rows = json.loads(results_json(a))
    assert [(r["student"], r["exercise"]) for r in rows] == [("amy", "x"), ("bob", "x"), ("bob", "y")]
    assert all("duration_s" not in r for r in rows)
    assert ExerciseResult.from_dict(rows[0]).score == 3
