"""GitHub Actions: workflow-command syntax and escaping, per-step limits, the job summary."""
import json
import re

import pytest
from click.testing import CliRunner

from dlgrade.graders.cli import main
from dlgrade.graders.results import CheckResult, ExerciseResult, Report, StudentReport
from dlgrade.reports.github import (
    Annotation, annotations, escape_data, escape_property, fenced, inert, json_inert, md_escape, publish,
    step_summary, within_limits, workflow_commands,
)

from conftest import CI_EXERCISE, CI_SCENARIOS, FIXTURES, ROOT

# ::error file=F,line=L,title=T::message — properties hold no raw ':' or ',' (they are escaped)
COMMAND = re.compile(r"^::(?P<level>error|warning|notice)(?: (?P<props>[^:\r\n]*))?::(?P<data>[^\r\n]*)$")
PROPERTY = re.compile(r"^(file|line|endLine|col|endColumn|title)=[^,]*$")


def unescape_property(s: str) -> str:
    """As GitHub's runner unescapes a property value."""
    for esc, ch in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        s = s.replace(esc, ch)
    return s


def unescape_data(s: str) -> str:
    for esc, ch in (("%0D", "\r"), ("%0A", "\n"), ("%25", "%")):
        s = s.replace(esc, ch)
    return s


def parse(line: str) -> dict:
    """One workflow command, parsed the way the runner does; fails on bad syntax."""
    m = COMMAND.match(line)
    assert m, line
    props = {}
    for prop in (m["props"] or "").split(",") if m["props"] else []:
        assert PROPERTY.match(prop), prop
        key, value = prop.split("=", 1)
        props[key] = unescape_property(value)
    if "line" in props:
        assert props["line"].isdigit() and "file" in props
    return {"level": m["level"], **props, "message": unescape_data(m["data"])}


def commands(report) -> list[dict]:
    return [parse(line) for line in workflow_commands(StudentReport.of(report), workspace=str(ROOT))]


def test_escaping_follows_the_runner_rules():
    assert escape_data("100% done\r\nnext: a, b") == "100%25 done%0D%0Anext: a, b"
    assert escape_property("dir/a:b,c%\n.py") == "dir/a%3Ab%2Cc%25%0A.py"


@pytest.mark.parametrize("text", ["plain", "50% of 2:3, 4", "%0A literal", "a\nb\r\nc", "%%%,::,,", "é – ✓"])
def test_annotation_round_trips_through_the_runner(text):
    got = parse(Annotation("error", text, file=f"sub,dir/{text}.py", line=7, title=text).command())
    assert (got["message"], got["title"], got["file"], got["line"]) == (text, text, f"sub,dir/{text}.py", "7")


@pytest.mark.parametrize("scenario", list(CI_SCENARIOS))
def test_every_scenario_prints_well_formed_commands(ci_reports, scenario):
    for line in workflow_commands(StudentReport.of(ci_reports[scenario])):
        parse(line)


def test_passing_submission_has_no_annotations(ci_reports):
    assert commands(ci_reports["passing"]) == []




def test_load_errors_point_at_the_student_line(ci_reports):
    (a,) = commands(ci_reports["syntax-error"])
    assert a == {"level": "error", "file": "tests/fixtures/softmax/softmax_syntax_error.py", "line": "3",
                 "title": f"{CI_EXERCISE} could not be graded (0/10)",
                 "message": "SyntaxError on line 3: expected ':'\n    def softmax(z, axis=-1)"}
    (a,) = commands(ci_reports["import-error"])
    assert (a["file"], a["line"]) == ("tests/fixtures/ci/softmax_import_error.py", "3")
    assert a["message"].splitlines()[-1] == '  line 3, in <module>: WEIGHTS = np.load("weights_from_my_laptop.npy")'


def test_exception_in_a_call_points_at_the_traceback_frame(ci_reports):
    anns = commands(ci_reports["raises"])
    assert len(anns) == 6 and {a["level"] for a in anns} == {"error"}
    # the hidden check (3rd) shows no line; no-mutation (6th) records none
    assert [a.get("line") for a in anns] == ["5", "5", None, "5", "5", None]
    assert anns[0]["title"] == f"{CI_EXERCISE}: values on random logits (0/3)"
    assert anns[0]["message"] == ("softmax(z) raised ValueError: not done yet (line 5) on random logits, "
                                  "shape (16, 10) (case 'random')")


def test_notebook_error_names_the_cell_not_a_json_line(ci_reports):
    (a,) = commands(ci_reports["notebook-error"])
    assert "line" not in a and a["file"] == "tests/fixtures/ci/softmax_notebook_error.ipynb"
    assert "cell 3, line 2" in a["message"]


@pytest.mark.parametrize("scenario, title", [
    ("timeout", f"{CI_EXERCISE} timed out (0/10)"),
    ("missing", f"{CI_EXERCISE} not found in the submission (0/10)"),
])
def test_timeout_and_missing_are_errors_without_a_line(ci_reports, scenario, title):
    (a,) = commands(ci_reports[scenario])
    assert a["level"] == "error" and "line" not in a and a["title"] == title
    assert a["message"] == ci_reports[scenario].results[0].message


def test_failed_checks_carry_diagnosis_and_hidden_ones_only_a_verdict(ci_reports):
    anns = {a["title"]: a for a in commands(ci_reports["failing"])}
    assert set(anns) == {f"{CI_EXERCISE}: large and very negative logits (0/2)",
                         f"{CI_EXERCISE}: float32 stays float32 (0/1)"}
    hidden = anns[f"{CI_EXERCISE}: large and very negative logits (0/2)"]
    assert hidden["message"] == "hidden check failed" and "line" not in hidden
    shown = anns[f"{CI_EXERCISE}: float32 stays float32 (0/1)"]["message"].splitlines()
    assert shown[1].startswith("Diagnosis [overflow] Overflow on large inputs. exp() of a large number")


def _result(n_failed=0, n_skipped=0, diagnoses=(), message="wrong", submission="/ws/hw/s.py") -> StudentReport:
    checks = tuple(CheckResult(f"check {i}", False, 0.0, 1.0, message) for i in range(n_failed)) + tuple(
        CheckResult(f"gpu {i}", False, 0.0, 0.0, "skipped: no GPU", status="skipped") for i in range(n_skipped))
    r = ExerciseResult(student="s", exercise="ex", status="graded", checks=checks, diagnoses=tuple(diagnoses),
                       max_score=float(n_failed), submission=submission, title="An exercise")
    return StudentReport.of(Report(student="s", results=(r,)))


def test_paths_are_relative_to_the_workspace_and_diagnoses_alone_are_notices():
    (a,) = [parse(line) for line in workflow_commands(_result(diagnoses=("wrong-axis",)), workspace="/ws")]
    assert a["level"] == "notice" and a["file"] == "hw/s.py"
    assert a["title"] == "ex: Normalised along the wrong axis"
    assert a["message"].startswith("Diagnosis [wrong-axis] Normalised along the wrong axis. ")


def test_skipped_checks_are_warnings():
    (a,) = [parse(line) for line in workflow_commands(_result(n_skipped=1))]
    assert (a["level"], a["title"], a["message"]) == ("warning", "ex: gpu 0 (skipped)", "skipped: no GPU")


def test_per_step_limits_collapse_the_rest_into_one_line():
    lines = workflow_commands(_result(n_failed=25, n_skipped=12, diagnoses=("overflow",)))
    anns = [parse(line) for line in lines]
    by_level = {lvl: [a for a in anns if a["level"] == lvl] for lvl in ("error", "warning", "notice")}
    assert [len(v) for v in by_level.values()] == [10, 10, 1]
    assert [a["title"] for a in by_level["error"][:9]] == [f"ex: check {i} (0/1)" for i in range(9)]
    last = by_level["error"][-1]
    assert last["title"] == "dlgrade: 16 more errors"
    assert last["message"].startswith("16 more not shown as annotations (GitHub shows 10 per step; "
                                      "see the job summary): ex: check 9 (0/1); ex: check 10 (0/1)")
    assert by_level["warning"][-1]["title"] == "dlgrade: 3 more warnings"
    assert within_limits(annotations(_result(n_failed=10))) == annotations(_result(n_failed=10))


def test_step_summary_is_a_markdown_table_with_escaped_messages(ci_reports):
    text = step_summary(_result(n_failed=1, message="a | b <script>*x*</script>\nnext"), min_score=1)
    assert "| ❌ | check 0 | 0 / 1 | a \\| b &lt;script&gt;\\*x\\*&lt;/script&gt;<br>next |" in text
    assert "Score 0 is **below** the required 1." in text
    summary = step_summary(StudentReport.of(ci_reports["failing"]))
    assert summary.startswith("## dlgrade: softmax\\_naive\\_overflow — 7 / 10\n")
    assert "| ❌ | large and very negative logits (hidden) | 0 / 2 | hidden check failed |" in summary
    assert "- **overflow** — Overflow on large inputs: exp() of a large number" in summary
    assert "💥 **timed out**: " + md_escape(ci_reports["timeout"].results[0].message) in step_summary(
        StudentReport.of(ci_reports["timeout"]))


def test_publish_only_on_github_actions(tmp_path):
    lines = []
    report = _result(n_failed=1)
    assert publish(report, lines.append, env={}) is False and lines == []
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    assert publish(report, lines.append, env=env) is True
    publish(report, lines.append, env=env)
    assert len(lines) == 2 and all(line.startswith("::error ") for line in lines)
    assert summary.read_text().count("## dlgrade: s — 0 / 1") == 2  # appended, never overwritten
    lines.clear()
    publish(report, lines.append, env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path)})
    assert parse(lines[-1])["message"].startswith("could not write the job summary: ")


def test_check_prints_annotations_and_writes_the_summary_on_github(tmp_path):
    summary = tmp_path / "summary.md"
    bad = str(FIXTURES / "softmax/softmax_syntax_error.py")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_WORKSPACE": str(ROOT)}
    r = CliRunner().invoke(main, ["check", bad], env=env)
    assert r.exit_code == 0
    assert "::error file=tests/fixtures/softmax/softmax_syntax_error.py,line=3," in r.stdout
    assert "💥 **could not be graded**: SyntaxError on line 3: expected ':'" in summary.read_text()
    r = CliRunner().invoke(main, ["check", bad, "--json"], env=env)
    assert json.loads(r.stdout)["status"] == "error"  # stdout stays pure JSON
    assert "::error file=tests/fixtures/softmax/softmax_syntax_error.py,line=3," in r.stderr
    r = CliRunner().invoke(main, ["check", bad], env={"GITHUB_ACTIONS": None})
    assert "::error" not in r.output


def test_example_classroom_workflow_installs_cpu_torch_then_dlgrade_then_grades():
    yaml = pytest.importorskip("yaml")
    wf = yaml.safe_load((ROOT / "examples" / "github-classroom.yml").read_text())
    assert set(wf["on"]) >= {"push", "workflow_dispatch"}
    steps = wf["jobs"]["run-autograding-tests"]["steps"]
    runs = [s.get("run", "") + s.get("with", {}).get("command", "") for s in steps]
    torch_at = next(i for i, r in enumerate(runs) if '--index-url "$DLGRADE_TORCH_INDEX"' in r)
    dlgrade_at = next(i for i, r in enumerate(runs) if 'pip install "$DLGRADE"' in r)
    env = wf["jobs"]["run-autograding-tests"]["env"]
    assert env["DLGRADE_TORCH_INDEX"] == "https://download.pytorch.org/whl/cpu"
    grade_at = next(i for i, r in enumerate(runs) if r.startswith("dlgrade check "))
    assert torch_at < dlgrade_at < grade_at
    assert "--min-score 10" in runs[grade_at] and "--junit junit-stable-softmax.xml" in runs[grade_at]
    assert wf["jobs"]["run-autograding-tests"]["env"]["TORCH"] == "torch==2.13.0"
    # the grade command itself parses as a dlgrade command line
    from dlgrade.graders.cli import check as check_cmd
    ctx = check_cmd.make_context("check", runs[grade_at].split()[2:])
    assert ctx.params["min_score"] == 10 and ctx.params["exercise_ids"] == ("stable-softmax",)


# --------------------------------------------------------------------------- student text is never a command
# A model of how GitHub's runner reads a step's output (actions/runner:
# Runner.Common/ActionCommand.cs TryParseV2 and TryParse, Runner.Worker/
# ActionCommandManager.cs): lines end at LF, CR or CRLF; ``::name ...::data``
# after leading white space, or ``##[name ...]data`` anywhere in the line;
# names compare without case; ``stop-commands`` ignores every command until
# ``::<token>::`` (or ``##[<token>]``).

RUNNER_COMMANDS = {"error", "warning", "notice", "debug", "add-mask", "set-output", "set-env", "save-state",
                   "add-path", "group", "endgroup", "echo", "add-matcher", "remove-matcher", "stop-commands"}


def _parse_runner_line(line: str, registered: set[str]):
    text = line.lstrip()
    if text.startswith("::"):
        end = text.find("::", 2)
        if end >= 0:
            name = text[2:end].split(" ", 1)[0].lower()
            if name in registered:
                return name, text[end + 2:], line
    start = line.find("##[")
    if start >= 0:
        end = line.find("]", start)
        if end >= 0:
            name = line[start + 3:end].split(" ", 1)[0].lower()
            if name in registered:
                return name, line[end + 1:], line
    return None


def runner_executes(output: str) -> list[str]:
    """The lines GitHub's runner would run as workflow commands, in order."""
    ran, token = [], None
    for line in re.split(r"\r\n|\r|\n", output):
        cmd = _parse_runner_line(line, RUNNER_COMMANDS | ({token.lower()} if token else set()))
        if cmd is None:
            continue
        name, data, raw = cmd
        if token is not None:
            if name == token.lower():
                token = None
            continue
        if name == "stop-commands":
            token = data
            continue
        ran.append(raw)
    assert token is None, "dlgrade left workflow commands stopped"
    return ran


def test_the_runner_model_sees_what_github_sees():
    assert runner_executes("x\n  ::error::a\rb ##[add-mask]c\r\n::nope::d") == ["  ::error::a", "b ##[add-mask]c"]
    assert runner_executes("::stop-commands::T1\n::error::hidden\n::t1::\n::warning::w") == ["::warning::w"]


@pytest.mark.parametrize("text", [
    "::error::x", "  \t::add-mask::y", "\u00a0\u2003::set-output name=a::b", "\u200b::error::zero width",
    "a\r::warning::cr", "a\r\n::warning::crlf", "prefix ##[add-mask]legacy", "##[stop-commands]t", "#", "",
])
def test_inert_text_runs_no_command_and_a_fence_closes(text):
    assert runner_executes(inert(text)) == []
    assert runner_executes("\n".join(fenced(text + "\n::error::more"))) == []
    assert json.loads(json_inert(json.dumps({"m": text}))) == {"m": text}
    assert runner_executes(json_inert(json.dumps({"m": text}, indent=2))) == []


def _own_annotations(executed: list[str], exercise: str) -> None:
    assert executed, "dlgrade's own annotations must still run"
    for line in executed:
        a = parse(line)
        assert a["level"] == "error" and a["title"].startswith(f"{exercise}"), line
        assert "pwned" not in a.get("file", "") + a["title"]


@pytest.mark.parametrize("as_json", [False, True], ids=["terminal", "json"])
def test_printed_and_raised_workflow_commands_never_run_on_github(tmp_path, as_json):
    import subprocess
    import sys

    summary = tmp_path / "summary.md"
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("GITHUB_")}
    env.update({"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_WORKSPACE": str(ROOT),
                "PYTHONPATH": str(ROOT)})
    args = ["check", str(FIXTURES / "hostile/workflow_commands.py"), "--junit", str(tmp_path / "j.xml")]
    proc = subprocess.run([sys.executable, "-m", "dlgrade", *args, *(["--json"] if as_json else [])],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    # what the student printed and raised is still shown to them...
    shown = json.loads(proc.stdout)["output"] if as_json else proc.stdout
    assert "printed error" in shown and "after a bare CR" in shown
    if not as_json:
        assert "from the exception" in proc.stdout and proc.stdout.startswith("::stop-commands::")
    # ...but the runner runs dlgrade's annotations only, from stdout and stderr alike
    _own_annotations(runner_executes(proc.stdout) + runner_executes(proc.stderr), "stable-softmax")


def test_grade_on_github_prints_no_student_id_as_a_command(tmp_path):
    import shutil
    import subprocess
    import sys

    cls = tmp_path / "class"
    for sid in ["::error::pwned", "##[add-mask]x", "plain"]:
        (cls / sid).mkdir(parents=True)
        shutil.copyfile(FIXTURES / "softmax/correct_shift_max.py", cls / sid / "softmax.py")
    (cls / "::warning::ignored.csv").write_text("not a submission")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("GITHUB_")}
    env.update({"GITHUB_ACTIONS": "true", "PYTHONPATH": str(ROOT)})
    proc = subprocess.run([sys.executable, "-m", "dlgrade", "grade", str(cls), "--out", str(tmp_path / "out"),
                           "--jobs", "1"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert runner_executes(proc.stdout) == [] and runner_executes(proc.stderr) == []
    # mid-line "::" is no command; "##[" anywhere is, so it is escaped
    assert "] ::error::pwned  10 / 10" in proc.stderr and "] ##\\x5badd-mask]x  10 / 10" in proc.stderr
    assert "ignored (not a submission): ::warning::ignored.csv" in proc.stderr
