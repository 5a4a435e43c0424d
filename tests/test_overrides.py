"""graders/overrides.py and `dlgrade override`: a person's score, kept across every regrade."""
from __future__ import annotations

import csv
import fcntl
import io
import json
import os

import pytest
from click.testing import CliRunner

from dlgrade.graders import overrides
from dlgrade.graders.cli import main
from dlgrade.graders.overrides import Override, OverrideError
from dlgrade.graders.results import CheckResult, ExerciseResult, Report


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def result(student="bob", exercise="stable-softmax", points=1.0) -> ExerciseResult:
    return ExerciseResult(student=student, exercise=exercise, status="graded", max_score=10,
                          checks=(CheckResult("values", False, points, 10, "m"),))


def test_overrides_round_trip_through_the_file_whatever_the_note(tmp_path):
    notes = ['plain', 'quotes " and \\ backslash', "two\nlines\tand a tab", "Zoë — ünïcødé ✓", "ctrl \x01 char",
             "]] [[override]] student = \"x\""]
    found = {}
    for n, note in enumerate(notes):
        o = Override(f"s{n}", "stable-softmax", points=n + 0.5, note=note, by="jdoe", at="2024-05-02T14:03:11Z",
                     automatic_score=1.25, fingerprint="ab" * 32, decision="accepted" if n % 2 else "")
        found[o.key] = o
    overrides.save(tmp_path, found)
    assert overrides.load(tmp_path) == found
    text = (tmp_path / "overrides.toml").read_text(encoding="utf-8")
    assert text.startswith("# dlgrade manual overrides")


def test_an_absent_file_is_no_override(tmp_path):
    assert overrides.load(tmp_path) == {}


BASE = '[[override]]\nstudent = "bob"\nexercise = "stable-softmax"\n'


@pytest.mark.parametrize("text, message", [
    (BASE + "pionts = 7\n", "override #1: unknown key 'pionts' (expected student, exercise, points, note, by, at, "
                            "automatic_score, fingerprint, decision)"),
    (BASE, "override #1: missing key 'points'"),
    (BASE + "points = -1\n", "override #1: 'points' must not be negative"),
    (BASE + 'points = "7"\n', "override #1: 'points' must be a number"),
    (BASE + "points = nan\n", "override #1: 'points' must be a number"),
    (BASE + "points = 7\nnote = 3\n", "override #1: 'note' must be a string"),
    (BASE + 'points = 7\ndecision = "maybe"\n', "override #1: 'decision' must be one of 'accepted', 'rejected'"),
    (BASE + "points = 7\n" + BASE + "points = 8\n",
     "override #2: a second override for student 'bob', exercise 'stable-softmax'"),
    ('[settings]\nx = 1\n', "unknown table 'settings' (overrides are [[override]] tables)"),
    ("override = 3\n", "'override' must be an array of tables ([[override]])"),
])
def test_a_malformed_overrides_file_is_one_line_naming_the_override_and_key(tmp_path, text, message):
    (tmp_path / "overrides.toml").write_text(text)
    with pytest.raises(OverrideError) as exc:
        overrides.load(tmp_path)
    assert str(exc.value) == f"{tmp_path / 'overrides.toml'}: {message}"


def test_invalid_toml_names_the_file(tmp_path):
    (tmp_path / "overrides.toml").write_text("[[override]\nstudent = ")
    with pytest.raises(OverrideError) as exc:
        overrides.load(tmp_path)
    assert str(exc.value).startswith(f"{tmp_path / 'overrides.toml'}: not valid TOML (")


def test_make_checks_the_points_against_the_exercise():
    o = overrides.make(result(points=1), 7, "why")
    assert (o.points, o.automatic_score, o.note) == (7.0, 1.0, "why") and o.at.endswith("Z")
    for bad in (-1, 10.5, 70):
        with pytest.raises(OverrideError) as exc:
            overrides.make(result(), bad)
        assert str(exc.value) == f"--points {bad:g} is outside 0..10 (the most stable-softmax is worth)"


def test_an_override_sets_the_score_and_keeps_the_automatic_one_beside_it():
    r = result(points=1)
    o = overrides.make(r, 7, "looked at it")
    rep = overrides.apply(Report("bob", (r, result(exercise="relu", points=2))), {o.key: o})
    overridden, other = rep.results
    assert (overridden.score, overridden.automatic_score, other.score) == (7.0, 1.0, 2.0)
    assert rep.score == 9.0
    d = overridden.to_dict()
    assert (d["score"], d["automatic_score"]) == (7.0, 1.0)
    assert d["override"] == {"points": 7.0, "note": "looked at it", "by": o.by, "at": o.at}
    assert ExerciseResult.from_dict(d) == overridden
    assert "override" not in other.to_dict() and "automatic_score" not in other.to_dict()


# --------------------------------------------------------------------------- the command, end to end


@pytest.fixture
def graded(make_class, tmp_path):
    subs = make_class({"alice/hw.py": "softmax/correct_shift_max.py", "bob.py": "softmax/softmax_wrong_axis.py"})
    out = tmp_path / "out"
    r = run("grade", subs, "--out", out, "--jobs", "1", "--export", "csv")
    assert r.exit_code == 0, r.output
    return subs, out


def _grades(out) -> dict[str, str]:
    return {row["student"]: row["total"] for row in csv.DictReader(io.StringIO((out / "grades.csv").read_text()))}


def _result(out, student, exercise="stable-softmax") -> dict:
    return next(r for r in json.loads((out / "results.json").read_text())
                if r["student"] == student and r["exercise"] == exercise)


@pytest.mark.slow
def test_an_override_survives_force_and_a_hand_edit_of_the_file(graded):
    subs, out = graded
    assert _grades(out) == {"alice": "10", "bob": "1"}
    r = run("override", out, "bob", "stable-softmax", "--points", "7", "--note", "Axis bug only in a comment's example.")
    assert r.exit_code == 0, r.output
    assert r.output == f"override: bob stable-softmax 7 (automatic 1); kept in {out / 'overrides.toml'}\n"
    assert _grades(out) == {"alice": "10", "bob": "7"}
    row = _result(out, "bob")
    assert (row["score"], row["automatic_score"], row["override"]["note"]) == (7, 1, "Axis bug only in a comment's example.")
    assert json.loads((out / "students" / "bob.json").read_text())["score"] == 1  # the automatic record
    page = (out / "students" / "bob.html").read_text()
    assert "Score set by your instructor: 7 / 10" in page and "Axis bug only in a comment&#39;s example." in page
    index = (out / "index.html").read_text()
    assert 'id="overrides"' in index and "Axis bug only in a comment&#39;s example." in index
    assert next(csv.DictReader(io.StringIO((out / "grades-export.csv").read_text())))  # rewritten
    assert "bob,,,,1," not in (out / "grades-export.csv").read_text()

    r = run("grade", subs, "--out", out, "--jobs", "1", "--force")
    assert r.exit_code == 0 and "2 graded" in r.output
    assert _grades(out) == {"alice": "10", "bob": "7"} and _result(out, "bob")["automatic_score"] == 1

    text = (out / "overrides.toml").read_text().replace("points = 7", "points = 8")
    (out / "overrides.toml").write_text(text)
    r = run("grade", subs, "--out", out, "--jobs", "1")
    assert r.exit_code == 0 and "0 graded, 2 unchanged" in r.output
    assert _grades(out) == {"alice": "10", "bob": "8"}
    assert "Score set by your instructor: 8 / 10" in (out / "students" / "bob.html").read_text()

    r = run("override", out, "bob", "stable-softmax", "--remove")
    assert r.output == "override removed: bob stable-softmax (the automatic score stands)\n"
    assert _grades(out) == {"alice": "10", "bob": "1"} and "override" not in _result(out, "bob")
    assert "Score set by your instructor" not in (out / "students" / "bob.html").read_text()


@pytest.mark.slow
def test_override_usage_errors_are_one_line(graded, tmp_path):
    subs, out = graded
    cases = [
        (("bob", "stable-softmax", "--points", "70"), "--points 70 is outside 0..10 (the most stable-softmax is worth)"),
        (("mallory", "stable-softmax", "--points", "1"), f"{out}: no student 'mallory' (the ids are those of grades.csv)"),
        (("../alice", "stable-softmax", "--points", "1"), f"{out}: no student '../alice' (the ids are those of grades.csv)"),
        (("bob", "relu", "--points", "1"), f"{out}: student 'bob' has no result for exercise 'relu' (graded: stable-softmax)"),
        (("bob", "stable-softmax"), "give the score with --points (or --remove to undo an override)"),
        (("bob", "stable-softmax", "--remove"), f"{out}: no override for student 'bob', exercise 'stable-softmax'"),
    ]
    for args, message in cases:
        r = run("override", out, *args)
        assert r.exit_code == 2 and r.output == f"Error: {message}\n", (args, r.output)
    r = run("override", tmp_path / "elsewhere", "bob", "stable-softmax", "--points", "1")
    assert r.output == (f"Error: {tmp_path / 'elsewhere'}: not a dlgrade output folder (no manifest.json; "
                        "grade a class into it first)\n")
    fd = os.open(out / ".dlgrade-lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a grading run is writing there
    try:
        r = run("override", out, "bob", "stable-softmax", "--points", "1")
        assert r.output == f"Error: {out}: another dlgrade grade is writing to this folder\n"
    finally:
        os.close(fd)
    (out / "overrides.toml").write_text("[[override]]\nstudent = 'bob'\n")
    before = (out / "students" / "bob.json").read_bytes()
    r = run("grade", subs, "--out", out, "--force")
    assert r.exit_code == 2
    assert r.output == (f"Error: {out / 'overrides.toml'}: override #1: missing key 'exercise'\n")
    assert (out / "students" / "bob.json").read_bytes() == before  # nobody graded
