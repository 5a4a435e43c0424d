"""``import dlgrade`` is the library behind the command (contract §4): checking a saved
submission and grading a folder from a script give what the command gives."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import dlgrade
from dlgrade.graders.spec import UnknownExercise

ROOT = Path(__file__).resolve().parent.parent
WRONG = ROOT / "tests" / "fixtures" / "softmax" / "softmax_naive_overflow.py"


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "dlgrade", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_check_file_is_dlgrade_check_json(tmp_path):
    report = dlgrade.check_file(WRONG, "stable-softmax")
    cli = json.loads(_cli("check", str(WRONG), "--exercise", "stable-softmax", "--json", cwd=tmp_path).stdout)
    (mine,) = report.to_dict()["results"]  # one exercise; --json prints that one result
    assert (mine["score"], mine["diagnoses"], mine["student"]) == (cli["score"], cli["diagnoses"], cli["student"])
    assert [c["passed"] for c in mine["checks"]] == [c["passed"] for c in cli["checks"]]
    assert report.score == cli["score"] < report.max_score


def test_check_file_raises_a_user_error_for_an_unknown_exercise():
    with pytest.raises(UnknownExercise):
        dlgrade.check_file(WRONG, "no-such-exercise")


@pytest.mark.slow
def test_grade_writes_what_dlgrade_grade_writes(tmp_path):
    summary = dlgrade.grade(ROOT / "examples" / "class", tmp_path / "lib", jobs=1)
    assert sorted(summary.batch.graded) == sorted(summary.batch.students) and summary.batch.students
    r = _cli("grade", str(ROOT / "examples" / "class"), "--out", str(tmp_path / "cli"), "--jobs", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "lib" / "grades.csv").read_bytes() == (tmp_path / "cli" / "grades.csv").read_bytes()
    assert (tmp_path / "lib" / "index.html").is_file()


def test_importing_dlgrade_stays_light():
    code = ("import sys, dlgrade; heavy = [m for m in ('numpy', 'torch', 'sympy', 'dlgrade.graders.api') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == "[]"
