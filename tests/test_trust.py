"""The trust boundary, end to end, as a hostile repository meets it.

Each case builds the submission a student with a GitHub Classroom repository can
make (symbolic links are kept by git), runs the real command line in a fresh
process with every output requested (``--json``, ``--html``, ``--junit``,
``--gradescope``, and GitHub's annotations and step summary), pins the graded
outcome, and proves that nothing leaked: a random token held by the file a link
points at is in no file dlgrade wrote and not on its stdout or stderr.

The same for ``dlgrade grade`` (every file of the output folder), for a
diagnosis that only a hidden check finds (absent from every rendering a student
reads, present in the instructor's JSON), and for formula-like student ids.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT

HOSTILE = FIXTURES / "hostile"
CORRECT = FIXTURES / "softmax" / "correct_shift_max.py"
TOKEN = f"dlgrade-leak-{uuid.uuid4().hex}"  # fresh for every test session


def secret_module(path: Path) -> Path:
    """A private file of the grading machine: valid Python that would print, raise and
    return the token if anything ever read or ran it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'SECRET = "{TOKEN}"\nprint("SECRET:", SECRET)\n\n\n'
                    "def softmax(z, axis=-1):\n    raise ValueError(SECRET)\n")
    return path


def dlgrade(*args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m dlgrade ARGS`` in a fresh process, as CI runs it."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}  # CI may be GitHub itself
    full.update({"PYTHONPATH": str(ROOT), **(env or {})})
    return subprocess.run([sys.executable, "-m", "dlgrade", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=300)


def assert_nothing_leaked(proc: subprocess.CompletedProcess, *written: Path) -> None:
    """The token is on neither stream and in no file under ``written``."""
    assert TOKEN not in proc.stdout and TOKEN not in proc.stderr
    files = [p for w in written for p in ([w] if w.is_file() else sorted(w.rglob("*"))) if p.is_file()]
    assert files
    for p in files:
        assert TOKEN.encode() not in p.read_bytes(), p


def check_everything(tmp_path: Path, submission: str, *extra: str, cwd: Path):
    """``dlgrade check`` with every output, on GitHub Actions. Returns (proc, json, outputs folder)."""
    out = tmp_path / "outputs"
    out.mkdir(exist_ok=True)
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(out / "summary.md"),
           "GITHUB_WORKSPACE": str(cwd)}
    proc = dlgrade("check", submission, *extra, "--json", "--html", str(out / "report.html"),
                   "--junit", str(out / "junit.xml"), "--gradescope", str(out / "gradescope.json"),
                   cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr
    for name in ("report.html", "junit.xml", "gradescope.json", "summary.md"):
        assert (out / name).stat().st_size > 0, name
    return proc, json.loads(proc.stdout), out


def refused(result: dict, message: str, reason: str = "symlink") -> None:
    assert (result["status"], result["score"], result["max_score"]) == ("error", 0, 10)
    assert result["message"] == message
    assert result["error"]["kind"] == "submission" and result["error"]["reason"] == reason
    assert result["checks"] == [] and result["output"] == ""


@pytest.fixture
def repo(tmp_path):
    """A student's repository folder (the working directory, as on a CI runner) and a
    secret file of the grading machine outside it."""
    root = tmp_path / "repo"
    root.mkdir()
    return root, secret_module(tmp_path / "machine" / "private_token.py")


# --------------------------------------------------------------------------- dlgrade check


@pytest.mark.parametrize("named", [True, False], ids=["--exercise", "found-by-name"])
def test_a_linked_file_to_a_secret_is_a_graded_error_and_leaks_nothing(tmp_path, repo, named):
    root, secret = repo
    (root / "hw").mkdir()
    (root / "hw" / "softmax.py").symlink_to(secret)
    proc, r, out = check_everything(tmp_path, "hw", *(["-e", "stable-softmax"] if named else []), cwd=root)
    refused(r, "hw/softmax.py is a symbolic link; submit the file itself")
    assert "hw/softmax.py is a symbolic link; submit the file itself" in (out / "report.html").read_text()
    assert "::error file=hw/softmax.py,title=stable-softmax could not be graded (0/10)::hw/softmax.py is a " \
           "symbolic link; submit the file itself" in proc.stderr  # --json: annotations on stderr
    assert_nothing_leaked(proc, out)


def test_a_link_to_the_installed_reference_scores_nothing(tmp_path, repo):
    from dlgrade.reference import softmax as reference_softmax

    root, _ = repo
    (root / "softmax.py").symlink_to(reference_softmax.__file__)
    proc, r, out = check_everything(tmp_path, "softmax.py", "-e", "stable-softmax", cwd=root)
    refused(r, "softmax.py is a symbolic link; submit the file itself")
    data = json.loads((out / "gradescope.json").read_text())
    assert data["score"] == 0 and [t["status"] for t in data["tests"]] == ["failed"]
    reference_code = Path(reference_softmax.__file__).read_text().splitlines()[1]
    assert reference_code and reference_code not in proc.stdout + (out / "report.html").read_text()


@pytest.mark.parametrize("given", ["linked", "linked/softmax.py"])
def test_a_linked_submission_folder_is_refused(tmp_path, repo, given):
    root, secret = repo
    private = secret.parent / "answers"
    private.mkdir()
    shutil.copyfile(secret, private / "softmax.py")
    (root / "linked").symlink_to(private, target_is_directory=True)
    proc, r, out = check_everything(tmp_path, given, "-e", "stable-softmax", cwd=root)
    refused(r, "linked is a symbolic link; submit the folder itself")
    assert_nothing_leaked(proc, out)


def test_a_linked_helper_module_the_student_prints_is_refused(tmp_path, repo):
    root, secret = repo
    (root / "hw").mkdir()
    shutil.copyfile(HOSTILE / "prints_its_helper.py", root / "hw" / "softmax.py")
    (root / "hw" / "helper.py").symlink_to(secret)
    proc, r, out = check_everything(tmp_path, "hw", cwd=root)
    refused(r, "hw/helper.py is a symbolic link; submit the file itself")
    assert_nothing_leaked(proc, out)


def test_a_dangling_link_is_refused_not_a_missing_path(tmp_path, repo):
    root, _ = repo
    (root / "softmax.py").symlink_to(tmp_path / "nowhere.py")
    proc, r, out = check_everything(tmp_path, "softmax.py", cwd=root)
    refused(r, "softmax.py is a symbolic link; submit the file itself")


def test_load_failures_write_every_output_and_exit_0_or_1_under_min_score(tmp_path, repo):
    root, _ = repo
    (root / "hw1.ipynb").write_text('{"cells": [{"cell_type": "code", "source": "def softmax(z, axis=-1):\\n')
    proc, r, out = check_everything(tmp_path, "hw1.ipynb", cwd=root)  # the entry is found in the raw text
    refused(r, r["message"], reason="malformed-notebook")
    assert r["message"].startswith("hw1.ipynb: malformed notebook (not valid JSON: ")
    junit = (out / "junit.xml").read_text()
    assert 'errors="1"' in junit and "malformed notebook" in junit
    below = dlgrade("check", "hw1.ipynb", "--min-score", "1", "--junit", str(out / "j2.xml"), cwd=root)
    assert below.returncode == 1 and (out / "j2.xml").exists()
    assert "Traceback" not in below.stdout + below.stderr


def test_a_4mb_colab_notebook_is_graded(tmp_path, repo):
    from test_submission import colab_notebook

    root, _ = repo
    (root / "hw1.ipynb").write_bytes(colab_notebook(CORRECT.read_text(), 3 * 2**20))
    assert (root / "hw1.ipynb").stat().st_size > 4 * 2**20
    proc = dlgrade("check", "hw1.ipynb", "--json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert (r["status"], r["score"]) == ("graded", 10)


# --------------------------------------------------------------------------- dlgrade grade


def test_grade_refuses_linked_students_and_files_and_leaks_nothing(tmp_path, repo):
    from dlgrade.reference import softmax as reference_softmax

    _, secret = repo
    cls = tmp_path / "class"
    (cls / "alice").mkdir(parents=True)
    shutil.copyfile(CORRECT, cls / "alice" / "softmax.py")
    (cls / "bob").mkdir()
    (cls / "bob" / "softmax.py").symlink_to(secret)
    private = secret.parent / "carol-real"
    private.mkdir()
    shutil.copyfile(secret, private / "softmax.py")
    (cls / "carol").symlink_to(private, target_is_directory=True)
    (cls / "dave.py").symlink_to(secret)
    (cls / "erin").mkdir()
    shutil.copyfile(HOSTILE / "prints_its_helper.py", cls / "erin" / "softmax.py")
    (cls / "erin" / "helper.py").symlink_to(secret)
    (cls / "frank").mkdir()
    (cls / "frank" / "softmax.py").symlink_to(reference_softmax.__file__)
    out = tmp_path / "graded"
    proc = dlgrade("grade", str(cls), "--out", str(out), "--jobs", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {r["student"]: r for r in json.loads((out / "results.json").read_text())}
    assert {s: (r["status"], r["score"], r["message"]) for s, r in rows.items()} == {
        "alice": ("graded", 10, ""),
        "bob": ("error", 0, "bob/softmax.py is a symbolic link; submit the file itself"),
        "carol": ("error", 0, "carol is a symbolic link; submit the folder itself"),
        "dave": ("error", 0, "dave.py is a symbolic link; submit the file itself"),
        "erin": ("error", 0, "erin/helper.py is a symbolic link; submit the file itself"),
        "frank": ("error", 0, "frank/softmax.py is a symbolic link; submit the file itself"),
    }
    grades = {row["student"]: row["total"] for row in csv.DictReader((out / "grades.csv").open())}
    assert grades == {"alice": "10", "bob": "0", "carol": "0", "dave": "0", "erin": "0", "frank": "0"}
    assert {p.name for p in (out / "students").iterdir()} >= {f"{s}.html" for s in rows} | {f"{s}.json" for s in rows}
    assert_nothing_leaked(proc, out)
    again = dlgrade("grade", str(cls), "--out", str(out), cwd=tmp_path)  # refusals are results: not regraded
    assert "(0 graded, 6 unchanged)" in again.stdout


def test_formula_like_student_ids_are_text_in_grades_csv(tmp_path):
    cls = tmp_path / "class"
    ids = ['=HYPERLINK("evil.example","click")', "+1+cmd", "@SUM(1+1)", "-2+3", "\tTAB", " =1+1", "-7", "plain"]
    for sid in ids:
        (cls / sid).mkdir(parents=True)
        shutil.copyfile(CORRECT, cls / sid / "softmax.py")
    out = tmp_path / "graded"
    proc = dlgrade("grade", str(cls), "--out", str(out), "--jobs", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with (out / "grades.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    cells = {row[0] for row in rows[1:]}
    assert cells == {"'=HYPERLINK(\"evil.example\",\"click\")", "'+1+cmd", "'@SUM(1+1)", "'-2+3", "'\tTAB",
                     "' =1+1", "-7", "plain"}
    for row in rows:
        for cell in row:
            assert not cell.lstrip(" ").startswith(("=", "+", "@", "\t", "\r")) or cell.startswith("'")
            assert not cell.startswith("-") or cell.lstrip("-").replace(".", "", 1).isdigit()
    assert all(row[1:] == ["10", "10", "10"] for row in rows[1:])
    assert {r["student"] for r in json.loads((out / "results.json").read_text())} == set(ids)  # ids as they are


# --------------------------------------------------------------------------- hidden checks


@pytest.fixture(scope="module")
def hidden_axis_exercises(tmp_path_factory):
    """stable-softmax with its "the axis argument" check hidden."""
    dest = tmp_path_factory.mktemp("hidden-axis")
    shutil.copytree(ROOT / "exercises" / "stable-softmax", dest / "stable-softmax",
                    ignore=shutil.ignore_patterns("__pycache__"))
    spec = dest / "stable-softmax" / "spec.toml"
    text = spec.read_text()
    assert 'name = "the axis argument"\n' in text
    spec.write_text(text.replace('name = "the axis argument"\n', 'name = "the axis argument"\nhidden = true\n'))
    return dest


def test_a_diagnosis_only_a_hidden_check_finds_reaches_no_student_rendering(tmp_path, hidden_axis_exercises):
    from dlgrade.graders.diagnose import describe

    root = tmp_path / "repo"
    root.mkdir()
    shutil.copyfile(HOSTILE / "softmax_ignores_axis.py", root / "softmax.py")
    proc, r, out = check_everything(tmp_path, "softmax.py", "--exercises-dir", str(hidden_axis_exercises),
                                    cwd=root)
    # the instructor's record keeps it
    assert r["score"] == 8 and "wrong-axis" in r["diagnoses"] and r["hidden_diagnoses"] == ["wrong-axis"]
    hint = describe("wrong-axis")
    student_side = {"annotations": proc.stderr}  # with --json, they go to stderr
    for name in ("report.html", "junit.xml", "gradescope.json", "summary.md"):
        student_side[name] = (out / name).read_text()
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(out / "summary2.md")}
    terminal = dlgrade("check", "softmax.py", "--exercises-dir", str(hidden_axis_exercises), cwd=root, env=env)
    student_side["terminal"] = terminal.stdout + terminal.stderr
    student_side["summary2.md"] = (out / "summary2.md").read_text()
    for name, text in student_side.items():
        assert "wrong-axis" not in text, name
        assert hint.title not in text and hint.hint[:40] not in text, name
    for name in ("report.html", "junit.xml", "gradescope.json", "summary.md", "terminal"):
        assert "the axis argument" in student_side[name], name  # the hidden check itself, by name


def _full_record():
    from dlgrade.graders.results import CheckResult, ExerciseResult, Report

    hidden = CheckResult("hidden case", False, 0.0, 2.0, "secret input [1e9] gave nan", {"input": [1e9]},
                         hidden=True, diagnoses=("overflow",))
    shown = CheckResult("shown case", True, 3.0, 3.0, "fine")
    r = ExerciseResult("s", "stable-softmax", "graded", checks=(hidden, shown), diagnoses=("overflow",),
                       max_score=5.0, submission="softmax.py")
    return Report("s", (r,))


@pytest.mark.parametrize("render", [
    "dlgrade.reports.terminal:render_report", "dlgrade.reports.html:render_student_report", "dlgrade.reports.junit:junit_xml",
    "dlgrade.reports.gradescope:gradescope_results", "dlgrade.reports.github:annotations", "dlgrade.reports.github:step_summary",
    "dlgrade.reports.github:workflow_commands", "dlgrade.reports.report_files:write_all",
])
def test_every_student_renderer_refuses_the_full_record(render):
    import importlib

    from dlgrade.graders.results import StudentReport

    module, name = render.split(":")
    fn = getattr(importlib.import_module(module), name)
    report = _full_record()
    with pytest.raises(TypeError, match="renders what a student may see: pass StudentReport.of"):
        fn(report)
    from dlgrade.graders.diagnose import describe

    out = fn(StudentReport.of(report))  # the student's view renders, without the hidden check's data
    text = out.decode() if isinstance(out, bytes) else json.dumps(out) if isinstance(out, dict) else repr(out)
    for secret in ("secret input", "1e9", "1e+09", "[overflow]", describe("overflow").title):
        assert secret not in text, secret
    from dlgrade.reports.github import publish

    with pytest.raises(TypeError):
        publish(report, print, env={})


def test_the_student_view_type_cannot_hold_hidden_data():
    import dataclasses

    from dlgrade.graders.results import StudentReport

    view = StudentReport.of(_full_record())
    (r,) = view.results
    assert [(c.name, c.message, c.details, c.diagnoses) for c in r.checks] == [
        ("hidden case", "hidden check failed", {}, ()), ("shown case", "fine", {}, ())]
    assert r.diagnoses == () and (r.score, view.score, view.max_score) == (3.0, 3.0, 5.0)
    leaking = dataclasses.replace(r.checks[0], details={"input": [1e9]})
    with pytest.raises(ValueError, match="a student view cannot hold hidden check details \\(hidden case\\)"):
        dataclasses.replace(r, checks=(leaking,))
    with pytest.raises(TypeError):
        StudentReport("s", (_full_record().results[0],))
