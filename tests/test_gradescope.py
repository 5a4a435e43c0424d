"""Gradescope results.json: the documented fields only, scores and visibility from the model."""
import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from dlgrade.graders.cli import main
from dlgrade.graders.results import CheckResult, ExerciseResult, Report, StudentReport
from dlgrade.reports.gradescope import gradescope_results, write_gradescope

from conftest import CI_EXERCISE, CI_SCENARIOS, FIXTURES

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "gradescope_results.schema.json").read_text())


def results(report: Report) -> dict:
    data = gradescope_results(StudentReport.of(report))
    jsonschema.validate(data, SCHEMA)
    json.dumps(data, allow_nan=False)
    return data


@pytest.mark.parametrize("scenario", list(CI_SCENARIOS))
def test_every_scenario_matches_the_documented_format(ci_reports, scenario):
    report = ci_reports[scenario]
    data = results(report)
    assert data["score"] == report.score
    assert sum(t["max_score"] for t in data["tests"]) == report.max_score == 10
    assert sum(t["score"] for t in data["tests"]) == report.score
    assert data["stdout_visibility"] == "hidden"
    assert data["execution_time"] >= 0


def test_a_test_per_check_named_and_numbered(ci_reports):
    report = ci_reports["failing"]
    tests = results(report)["tests"]
    r = report.results[0]
    assert [t["name"] for t in tests] == [f"{CI_EXERCISE}: {c.name}" for c in r.checks]
    assert [t["number"] for t in tests] == ["1.1", "1.2", "1.3", "1.4", "1.5", "1.6"]
    assert [t["status"] for t in tests] == [c.status for c in r.checks]
    assert [t["score"] for t in tests] == [c.score for c in r.checks]
    passed = tests[0]
    assert passed["output"] == r.checks[0].message
    assert passed["visibility"] == "visible" and passed["tags"] == [CI_EXERCISE, "values"]
    f32 = next(t for t in tests if t["name"].endswith("float32 stays float32"))
    assert f32["output"].splitlines()[:3] == [
        "softmax(z) returned 3 non-finite values on large float32 logits (case 'float32-large') "
        "(first at (0, 0): nan); expected finite values",
        "points: 0 / 1",
        "diagnoses: overflow"]


def test_hidden_check_is_after_published_and_reveals_nothing(ci_reports):
    data = results(ci_reports["failing"])
    hidden = next(t for t in data["tests"] if t["name"].endswith("large and very negative logits"))
    assert hidden["visibility"] == "after_published"
    assert hidden["status"] == "failed" and hidden["score"] == 0 and hidden["max_score"] == 2
    assert hidden["output"] == "hidden check failed\npoints: 0 / 2"
    assert "854" not in json.dumps(data)


def test_top_level_output_summarises_with_diagnosis_hints(ci_reports):
    out = results(ci_reports["failing"])["output"].splitlines()
    assert out[0] == "dlgrade: 7 / 10 points"
    assert out[2] == f"{CI_EXERCISE} (Numerically stable softmax): 7 / 10"
    assert out[3] == "  diagnosis [overflow] Overflow on large inputs"
    assert out[4].startswith("    exp() of a large number overflows to inf")


@pytest.mark.parametrize("scenario", ["syntax-error", "import-error", "notebook-error", "timeout", "missing"])
def test_exercise_not_graded_is_one_failed_test_worth_its_points(ci_reports, scenario):
    r = ci_reports[scenario].results[0]
    data = results(ci_reports[scenario])
    (test,) = data["tests"]
    assert test["name"] == f"{CI_EXERCISE}: the submission could be graded"
    assert (test["status"], test["score"], test["max_score"]) == ("failed", 0.0, 10.0)
    assert test["output"].splitlines()[0] == r.message
    assert data["score"] == 0
    assert data["extra_data"]["dlgrade"]["exercises"][0]["status"] == r.status


def test_notebook_error_names_the_cell(ci_reports):
    (test,) = results(ci_reports["notebook-error"])["tests"]
    lines = test["output"].splitlines()
    assert lines[0] == "loading the submission raised ZeroDivisionError: float division by zero (cell 3, line 2)"
    assert lines[1].endswith("softmax_notebook_error.ipynb, cell 3, line 2")
    assert lines[2] == "  line 4, in <module>: scale = scale / 0"


def test_skipped_check_has_no_status_and_no_points():
    checks = (CheckResult("runs on the GPU", False, 0.0, 0.0, "skipped: no CUDA device here", status="skipped"),)
    r = ExerciseResult(student="s", exercise="ex", status="graded", checks=checks, max_score=0.0)
    (test,) = results(Report(student="s", results=(r,)))["tests"]
    assert test["name"] == "ex: runs on the GPU (skipped)"
    assert "status" not in test and test["score"] == test["max_score"] == 0


def test_student_output_of_a_crash_is_shown(tmp_path):
    r = ExerciseResult(student="s", exercise="ex", status="error", max_score=4.0, message="it broke",
                       output="debug: x = 3\n")
    (test,) = results(Report(student="s", results=(r,)))["tests"]
    assert test["output"] == "it broke\n\nYour code printed:\ndebug: x = 3"


def test_stdout_visibility_is_checked(tmp_path):
    report = StudentReport.of(Report(student="s", results=()))
    assert gradescope_results(report, stdout_visibility="visible")["stdout_visibility"] == "visible"
    with pytest.raises(ValueError):
        gradescope_results(report, stdout_visibility="sometimes")


def test_write_gradescope_and_the_cli_option(tmp_path):
    r = ExerciseResult(student="s", exercise="ex", status="missing", max_score=4.0, message="no 'f' found")
    path = write_gradescope(StudentReport.of(Report(student="s", results=(r,))), tmp_path / "results" / "results.json")
    jsonschema.validate(json.loads(path.read_text()), SCHEMA)
    out = tmp_path / "gs.json"
    res = CliRunner().invoke(main, ["check", str(FIXTURES / "softmax/softmax_mutates_input.py"),
                                    "--gradescope", str(out)], env={"GITHUB_ACTIONS": None})
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    jsonschema.validate(data, SCHEMA)
    assert data["score"] == 9
    assert [t["status"] for t in data["tests"]].count("failed") == 1


def test_several_exercises_are_numbered_by_exercise_and_summed():
    ok = ExerciseResult(student="s", exercise="a", status="graded", max_score=3.0,
                        checks=(CheckResult("c1", True, 1.0, 1.0, "fine"), CheckResult("c2", False, 0.0, 2.0, "no")))
    gone = ExerciseResult(student="s", exercise="b", status="missing", max_score=5.0, message="no 'f' found")
    data = results(Report(student="s", results=(ok, gone)))
    assert [(t["number"], t["name"]) for t in data["tests"]] == [
        ("1.1", "a: c1"), ("1.2", "a: c2"), ("2.1", "b: the submission could be graded")]
    assert data["score"] == 1 and sum(t["max_score"] for t in data["tests"]) == 8
    assert data["output"].splitlines()[:5] == ["dlgrade: 1 / 8 points", "", "a: 1 / 3", "", "b: 0 / 5"]
    assert data["output"].splitlines()[5] == "  not found in the submission: no 'f' found"
