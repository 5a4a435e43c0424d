"""graders/lms_exports.py: Canvas's gradebook CSV, Moodle's grading worksheet and a plain CSV,
read back the way each LMS reads them (tests/lms_downloads.py)."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pytest

import lms_downloads as L
from dlgrade.graders.results import CheckResult, ExerciseResult, Report
from dlgrade.graders.roster import parse_roster
from dlgrade.graders.lms_exports import canvas_warnings, grade_rows, render, safe_cell

EX = ["softmax", "backprop"]


def report(student, softmax, backprop, name="", override=None) -> Report:
    def res(ex, pts):
        return ExerciseResult(student=student, exercise=ex, status="graded", max_score=10,
                              checks=(CheckResult("c", pts == 10, pts, 10, "m"),),
                              override=override if ex == "softmax" and override else {})
    return Report(student, (res("softmax", softmax), res("backprop", backprop)), name=name)


REPORTS = [report("1001", 10, 10), report("1002", 5, 2.5), report("1003", 0, 7, override={"points": 9})]


@pytest.mark.parametrize("value, cell", [
    ("=1+1", "'=1+1"), ("+cmd", "'+cmd"), ("-x", "'-x"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
    ("\rx", "'\rx"), ("-3", "-3"), ("+2.5", "+2.5"), ("1e-3", "1e-3"), ("Ada", "Ada"), ("", ""), (None, ""),
    ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
])
def test_safe_cell(value, cell):
    assert safe_cell(value) == cell


def test_canvas_export_read_back_as_canvas_reads_it():
    roster = parse_roster(L.canvas_gradebook_csv())
    rows = grade_rows(REPORTS, EX, roster)
    text = render("canvas", rows, EX, points_possible=50, assignment="Homework 1 (4567)")
    back = L.read_canvas_import(text)
    assert back["assignments"] == [{"index": 5, "title": "Homework 1", "id": "4567"}]
    assert back["points_possible"] == {"Homework 1": "50"}
    grades = {sid: s["grades"]["Homework 1"] for sid, s in back["students"].items()}
    assert grades == {"1001": "50", "1002": "18.75", "1003": "40", "1004": "", "1005": "", "1006": "", "1007": ""}
    assert back["students"]["1003"]["name"] == "O'Brien-Smith, Zoë"
    assert back["students"]["1001"]["sis_user_id"] == "S1001" and back["students"]["1001"]["section"] == "A"
    assert text.splitlines()[:2] == ["Student,ID,SIS User ID,SIS Login ID,Section,Homework 1 (4567)",
                                     "    Points Possible,,,,,50"]


def test_canvas_export_unscaled_and_its_warnings():
    rows = grade_rows([report("ada", 10, 5)], EX)
    back = L.read_canvas_import(render("canvas", rows, EX))
    assert back["points_possible"] == {"dlgrade": "20"} and back["students"]["ada"]["grades"] == {"dlgrade": "15"}
    assert canvas_warnings(rows, "") == [
        "canvas export: the column 'dlgrade' names no Canvas assignment id, so Canvas matches it by title or "
        "creates a new assignment; name it with --assignment 'Homework 1 (12345)' (the header of Canvas's own "
        "gradebook export)",
        "canvas export: 1 student id(s) are not Canvas user ids (ada): Canvas will match those rows by SIS id "
        "or name"]
    assert canvas_warnings(grade_rows(REPORTS, EX), "HW (1)") == []


def test_moodle_worksheet_read_back_as_moodle_reads_it():
    roster = parse_roster(L.moodle_worksheet())
    reports = [report("2001", 10, 10, name="Ada Lovelace"), report("2003", 0, 7)]
    when = datetime(2024, 5, 2, 14, 3, 11, tzinfo=timezone.utc)
    text = render("moodle", grade_rows(reports, EX, roster), EX, points_possible=100, when=when)
    back = L.read_moodle_import(text)
    assert back["2001"] == {"grade": 100.0, "modified": when, "max": 100.0}
    assert back["2003"]["grade"] == 35.0
    assert back["2002"] is None  # submitted nothing: an empty grade, which Moodle skips
    header = next(csv.reader(io.StringIO(text)))
    assert header == ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                      "Grade can be changed", "Last modified (submission)", "Last modified (grade)"]


def test_plain_csv_with_names_overrides_and_non_submitters():
    roster = parse_roster("id,name,email\n1001,=cmd|' /C calc'!A0,a@x\n1002,José,\n1009,Nobody,n@x\n")
    intake = {"students": {"1002": {"late": True}}}
    text = render("csv", grade_rows(REPORTS, EX, roster, intake), EX, points_possible=100)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["student"] for r in rows] == ["1001", "1002", "1003", "1009"]
    assert rows[0]["name"] == "'=cmd|' /C calc'!A0"  # a formula from the roster stays text
    assert rows[1] == {"student": "1002", "name": "José", "email": "", "section": "", "softmax": "5",
                       "backprop": "2.5", "total": "7.5", "max_total": "20", "points": "37.5",
                       "points_possible": "100", "submitted": "yes", "late": "yes", "overridden": ""}
    assert rows[2]["softmax"] == "9" and rows[2]["overridden"] == "softmax" and rows[2]["total"] == "16"
    assert rows[3]["submitted"] == "no" and rows[3]["total"] == "" and rows[3]["softmax"] == ""


def test_every_cell_of_every_export_is_spreadsheet_safe():
    roster = parse_roster("id,name,email,section\n1001,@evil,=x@y,+A\n1002,-2,\t,\r\n")
    for fmt in ("canvas", "moodle", "csv"):
        text = render(fmt, grade_rows(REPORTS, EX, roster), EX, assignment="=HW (1)")
        for row in csv.reader(io.StringIO(text)):
            for cell in row:
                if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
                    float(cell)  # only numbers may start so
