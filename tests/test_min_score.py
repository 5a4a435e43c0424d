"""`dlgrade check --min-score`: exit codes per CONTRACT §4 (0 graded, 1 below --min-score, 2 usage)."""
import subprocess
import sys

import pytest
from click.testing import CliRunner

from dlgrade.graders.cli import main

from conftest import CI_EXERCISE, FIXTURES, ROOT


def check(*args, exercises_dir=None):
    extra = ["--exercise", CI_EXERCISE, "--exercises-dir", str(exercises_dir)] if exercises_dir else []
    return CliRunner().invoke(main, ["check", *map(str, args), *extra], env={"GITHUB_ACTIONS": None})


@pytest.mark.parametrize("fixture, min_score, code", [
    ("softmax/correct_shift_max.py", 10, 0),     # exactly the minimum passes
    ("softmax/softmax_naive_overflow.py", 7, 0),
    ("softmax/softmax_naive_overflow.py", 7.5, 1),
    ("softmax/softmax_syntax_error.py", None, 0),  # a crash is a graded result
    ("softmax/softmax_syntax_error.py", 0, 0),
    ("softmax/softmax_syntax_error.py", 0.5, 1),
])
def test_exit_code_follows_the_score(fixture, min_score, code):
    args = [FIXTURES / fixture] + (["--min-score", min_score] if min_score is not None else [])
    r = check(*args)
    assert r.exit_code == code, r.output
    below = f"below --min-score {min_score:g}" in r.stderr if min_score is not None else False
    assert below == (code == 1)


def test_message_names_score_and_minimum():
    r = check(FIXTURES / "softmax/softmax_naive_overflow.py", "--min-score", 8)
    assert r.exit_code == 1
    assert r.stderr.splitlines()[-1] == "score 7 is below --min-score 8"


@pytest.mark.slow
def test_timeout_and_missing_are_graded_not_usage_errors(ci_exercises_dir):
    r = check(FIXTURES / "ci/softmax_infinite_loop.py", exercises_dir=ci_exercises_dir)
    assert r.exit_code == 0 and "TIMEOUT" in r.stdout
    r = check(FIXTURES / "ci/no_softmax_here.py", "--min-score", 1, exercises_dir=ci_exercises_dir)
    assert r.exit_code == 1 and "MISSING" in r.stdout


def test_usage_errors_exit_2_even_with_min_score():
    r = subprocess.run([sys.executable, "-m", "dlgrade", "check", "nope.py", "--min-score", "5"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == "Error: nope.py: no such file or folder"
