"""JUnit XML: valid against the Jenkins/Surefire schema, one testcase per check, verdicts from the model."""
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from dlgrade.graders.cli import main
from dlgrade.graders.results import CheckResult, ExerciseResult, Report, StudentReport
from dlgrade.reports.junit import junit_xml, write_junit

from conftest import CI_EXERCISE, CI_SCENARIOS, FIXTURES

SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).parent / "schemas" / "junit.xsd")))


def parse(report: Report) -> etree._Element:
    root = etree.fromstring(junit_xml(StudentReport.of(report)))
    SCHEMA.assertValid(root)
    return root


def props(suite) -> dict:
    return {p.get("name"): p.get("value") for p in suite.find("properties")}


@pytest.mark.parametrize("scenario", list(CI_SCENARIOS))
def test_every_scenario_is_valid_junit_with_one_suite_per_exercise(ci_reports, scenario):
    report = ci_reports[scenario]
    root = parse(report)
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [r.exercise for r in report.results]
    r = report.results[0]
    assert props(suites[0])["score"] == f"{r.score:g}"
    assert props(suites[0])["max_score"] == "10"
    assert props(suites[0])["status"] == r.status


def test_passing_submission_has_a_testcase_per_check_and_no_failure(ci_reports):
    report = ci_reports["passing"]
    suite = parse(report).find("testsuite")
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        (CI_EXERCISE, c.name) for c in report.results[0].checks]
    assert all(len(c) == 0 for c in cases)
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("6", "0", "0", "0")
    p = props(suite)
    assert p["check[values on random logits].score"] == "3"
    assert p["check[values on random logits].max_score"] == "3"


def test_failure_carries_the_student_message_points_and_diagnosis(ci_reports):
    report = ci_reports["failing"]
    suite = parse(report).find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("6", "2")
    case = suite.find("testcase[@name='float32 stays float32']")
    failure = case.find("failure")
    check = next(c for c in report.results[0].checks if c.name == "float32 stays float32")
    assert failure.get("message") == check.message == (
        "softmax(z) returned 3 non-finite values on large float32 logits (case 'float32-large') "
        "(first at (0, 0): nan); expected finite values")
    assert failure.get("type") == "overflow"
    assert failure.text.splitlines()[1:3] == ["points: 0 / 1", "diagnoses: overflow"]
    assert "  nonfinite: 3" in failure.text.splitlines()
    assert props(suite)["diagnoses"] == "overflow"


def test_hidden_check_shows_only_its_name_and_verdict(ci_reports):
    report = ci_reports["failing"]
    xml = junit_xml(StudentReport.of(report)).decode()
    case = parse(report).find("testsuite/testcase[@name='large and very negative logits']")
    failure = case.find("failure")
    assert failure.get("message") == "hidden check failed"
    assert failure.get("type") == "hidden"
    assert failure.text == "hidden check failed\npoints: 0 / 2"
    assert "854" not in xml  # the hidden case's input ("large logits like [20, 134, 854]")


@pytest.mark.parametrize("scenario, status, message", [
    ("syntax-error", "error", "SyntaxError on line 3: expected ':'"),
    ("import-error", "error", "loading the submission raised FileNotFoundError: [Errno 2] No such file "
                              "or directory: 'weights_from_my_laptop.npy' (line 3)"),
    ("timeout", "timeout", None),
    ("missing", "missing", "no 'softmax' found in no_softmax_here.py"),
])
def test_exercise_not_graded_is_one_testcase_with_an_error(ci_reports, scenario, status, message):
    report = ci_reports[scenario]
    r = report.results[0]
    root = parse(report)
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("1", "0", "1")
    assert root.get("errors") == "1"
    (case,) = suite.findall("testcase")
    assert case.get("name") == "the submission could be graded"
    error = case.find("error")
    assert error.get("type") == status == r.status
    assert error.get("message") == r.message
    if message:
        assert r.message == message
    assert error.text.endswith("points: 0 / 10")


def test_timeout_names_the_limit(ci_reports):
    error = parse(ci_reports["timeout"]).find("testsuite/testcase/error")
    assert error.get("message").startswith(("the submission exceeded the 2 s time limit", "the submission exceeded the 2 s CPU time limit"))


def test_syntax_error_body_shows_the_offending_line(ci_reports):
    error = parse(ci_reports["syntax-error"]).find("testsuite/testcase/error")
    assert error.text.splitlines()[:2] == ["SyntaxError on line 3: expected ':'", "    def softmax(z, axis=-1)"]


def _synthetic(**kw) -> Report:
    checks = (
        CheckResult("ok", True, 1.0, 1.0, "fine"),
        CheckResult("gpu", False, 0.0, 0.0, "skipped: no CUDA device here", status="skipped"),
        CheckResult("bad\x07 bell", False, 0.0, 2.0, "got \x00\x1b[31mred\x1b[0m & <tag>", details={"n": 1}),
    )
    r = ExerciseResult(student="s", exercise="ex-1", status="graded", checks=checks, max_score=3.0,
                       output=kw.get("output", "printed \x0b stuff"), submission="s.py", duration_s=1.5)
    return Report(student="s", results=(r,))


def test_skipped_checks_and_control_characters():
    root = parse(_synthetic())
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    assert suite.find("testcase[@name='gpu']/skipped").get("message") == "skipped: no CUDA device here"
    failure = suite.find("testcase[@name='bad bell']/failure")
    assert failure.get("message") == "got [31mred[0m & <tag>"
    assert suite.find("system-out").text == "printed  stuff"
    assert suite.get("time") == "1.500"


def test_long_output_is_cut_in_the_middle():
    root = parse(_synthetic(output="a" * 30_000 + "END"))
    text = root.find("testsuite/system-out").text
    assert len(text) <= 20_000 and text.endswith("END") and "characters cut" in text


def test_write_junit_and_the_cli_option(tmp_path, ci_exercises_dir):
    path = write_junit(StudentReport.of(_synthetic()), tmp_path / "sub" / "report.xml")
    SCHEMA.assertValid(etree.parse(str(path)))
    out = tmp_path / "cli.xml"
    r = CliRunner().invoke(main, ["check", str(FIXTURES / "softmax/correct_shift_max.py"), "--junit", str(out)],
                           env={"GITHUB_ACTIONS": None})
    assert r.exit_code == 0, r.output
    doc = etree.parse(str(out))
    SCHEMA.assertValid(doc)
    assert doc.getroot().get("tests") == "6" and doc.getroot().get("failures") == "0"


def test_several_exercises_are_several_suites_with_summed_totals():
    graded = _synthetic().results[0]
    crashed = ExerciseResult(student="s", exercise="ex-2", status="timeout", max_score=5.0,
                             message="timed out after 10 s (the time limit is 10 s)", duration_s=10.0)
    root = parse(Report(student="s", results=(graded, crashed)))
    assert [s.get("name") for s in root.findall("testsuite")] == ["ex-1", "ex-2"]
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("time")) == ("4", "1", "1", "11.500")


def test_characters_xml_forbids_are_dropped_and_every_output_still_written(tmp_path):
    """A student prints and raises C0 controls, lone surrogates, U+FFFE/U+FFFF and markup."""
    import json

    files = {k: tmp_path / f"out.{k}" for k in ("xml", "html", "json")}
    r = CliRunner().invoke(main, ["check", str(FIXTURES / "hostile/xml_forbidden_chars.py"), "--json",
                                  "--junit", str(files["xml"]), "--html", str(files["html"]),
                                  "--gradescope", str(files["json"])], env={"GITHUB_ACTIONS": None})
    assert r.exit_code == 0, r.output
    doc = etree.parse(str(files["xml"]), etree.XMLParser(recover=False))  # strict: fails on any bad character
    SCHEMA.assertValid(doc)
    failure = doc.find(".//testcase[@name='values on random logits']/failure")
    assert failure.get("message") == ("softmax(z) raised ValueError: nul\\x00 surrogate\\ud800 low\\udfff "
                                      "fffe\\ufffe bell\\x07 ]]> </failure> &amp; <x/> (line 7) on random logits, "
                                      "shape (16, 10) (case 'random')")
    out = doc.find("testsuite/system-out").text
    assert out == "nul\\x00 bell\\x07 vt\\x0b ff\\x0c esc\\x1b del\\x7f fffe\\ufffe ffff\\uffff\n"
    raw = files["xml"].read_bytes().decode("utf-8")  # valid UTF-8 throughout
    assert not any(ch in raw for ch in "\x00\x07\x0b\x0c\x1b\ufffe\uffff")
    json.loads(files["json"].read_text(encoding="utf-8"))
    files["html"].read_text(encoding="utf-8")
    assert json.loads(r.stdout)["status"] == "graded"


def test_junit_drops_what_xml_cannot_carry_from_any_text():
    bad = "a\x00b\x08c\ud83dd\udfffe\ufffef\uffffg"
    c = CheckResult(bad, False, 0.0, 1.0, bad, {"note": bad}, diagnoses=())
    r = ExerciseResult(student=bad, exercise=bad, status="graded", checks=(c,), max_score=1.0, output=bad,
                       submission=bad, title=bad)
    root = parse(Report(student=bad, results=(r,)))
    assert root.get("name") == "dlgrade: abcdefg"
    assert root.find("testsuite/testcase/failure").get("message") == "abcdefg"
    assert root.find("testsuite/system-out").text == "abcdefg"
