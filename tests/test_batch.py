"""Batch grading (graders/batch.py and `dlgrade grade`): layout, outputs, resuming,
determinism, and one bad submission never stopping the class."""
from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from dlgrade.graders import batch, engine
from dlgrade.graders.batch import BatchError, Interrupted, Progress, find_students, grade_class
from dlgrade.graders.cli import main
from dlgrade.graders.spec import catalogue

from conftest import FIXTURES, ROOT

COURSE = FIXTURES / "batch" / "exercises"  # holds "relu", a course's own exercise


def _csv(out: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO((out / "grades.csv").read_text())))


def bob_fp(out: Path) -> str:
    return json.loads((out / "students" / "bob.json").read_text())["batch"]["fingerprint"]


def _mtimes(out: Path) -> dict[str, int]:
    return {p.stem: p.stat().st_mtime_ns for p in (out / "students").glob("*.json")}


# --------------------------------------------------------------------------- layout


def test_find_students_one_folder_or_file_each_hidden_and_junk_ignored(tmp_path):
    root = tmp_path / "subs"
    for d in ("alice", "bob", ".git", "__MACOSX", "out"):
        (root / d).mkdir(parents=True)
    for f in ("carol.py", "dan.ipynb", "erin.txt", ".hidden.py", "roster.csv"):
        (root / f).write_text("")
    students, ignored = find_students(root, exclude=root / "out")
    assert [(s.id, s.path.name) for s in students] == [
        ("alice", "alice"), ("bob", "bob"), ("carol", "carol.py"), ("dan", "dan.ipynb"), ("erin", "erin.txt")]
    assert ignored == ["roster.csv"]


def test_two_entries_for_one_student_are_an_error_result_for_that_student(make_class, tmp_path):
    root = make_class({"bob/hw.py": "softmax/correct_shift_max.py", "bob.py": "softmax/correct_loops.py",
                       "carol.py": "softmax/correct_loops.py"})
    summary = grade_class(root, tmp_path / "out", jobs=1)
    assert sorted(summary.graded) == ["bob", "carol"]
    bob = json.loads((tmp_path / "out" / "students" / "bob.json").read_text())["results"][0]
    assert bob["status"] == "error"
    assert bob["message"] == ("more than one submission for student 'bob' (bob, bob.py); "
                              "keep one and grade again")
    assert [r["total"] for r in _csv(tmp_path / "out")] == ["0", "10"]


def test_no_entry_in_any_submission_is_a_usage_error(make_class, tmp_path):
    root = make_class({"alice/": None})
    with pytest.raises(BatchError) as exc:
        grade_class(root, tmp_path / "out")
    entries = ", ".join(sorted(ex.entry for ex in catalogue().values()))
    assert str(exc.value) == (f"{root}: no submission defines an exercise entry (looked for {entries}); "
                              "name one with --exercise")


def test_missing_or_empty_submissions_folder_is_a_usage_error(tmp_path):
    with pytest.raises(BatchError, match=r"^.*nope: no such folder$"):
        grade_class(tmp_path / "nope", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BatchError) as exc:
        grade_class(tmp_path / "empty", tmp_path / "out")
    assert str(exc.value) == f"{tmp_path / 'empty'}: no submissions (expected one sub-folder or file per student)"


# --------------------------------------------------------------------------- outputs


@pytest.fixture
def small_class(make_class):
    return make_class({
        "alice/hw.py": "batch/softmax_and_relu.py",       # both exercises, correct
        "bob.py": "softmax/softmax_wrong_axis.py",        # softmax only, wrong axis
        "carol/": None,                                   # nothing at all
        "dan.py": "softmax/softmax_raises.py",            # softmax raises
    })


def test_outputs_of_a_class(small_class, tmp_path):
    out = tmp_path / "out"
    summary = grade_class(small_class, out, jobs=2, exercises_dirs=[str(COURSE)])
    assert summary.exercises == ["stable-softmax", "relu"]
    assert sorted(summary.graded) == ["alice", "bob", "carol", "dan"]
    assert summary.gradings == 8 and not summary.pending and not summary.interrupted
    assert (out / "grades.csv").read_text() == (
        "student,stable-softmax,relu,total,max_total\n"
        "alice,10,2,12,12\n"
        "bob,1,0,1,12\n"
        "carol,0,0,0,12\n"
        "dan,0,0,0,12\n")
    rows = json.loads((out / "results.json").read_text())
    assert [(r["student"], r["exercise"], r["status"]) for r in rows] == [
        ("alice", "relu", "graded"), ("alice", "stable-softmax", "graded"),
        ("bob", "relu", "missing"), ("bob", "stable-softmax", "graded"),
        ("carol", "relu", "missing"), ("carol", "stable-softmax", "missing"),
        ("dan", "relu", "missing"), ("dan", "stable-softmax", "graded")]
    for r in rows:  # CONTRACT §3 fields; durations only in the per-student files
        assert {"student", "exercise", "status", "score", "max_score", "checks", "diagnoses"} <= set(r)
        assert "duration_s" not in r
    assert rows[3]["diagnoses"] == ["wrong-axis"]
    assert rows[3]["submission"] == "bob.py" and rows[1]["submission"] == "alice/hw.py"
    assert rows[2]["message"] == "no 'relu' found in bob.py"
    alice = json.loads((out / "students" / "alice.json").read_text())
    assert alice["student"] == "alice" and alice["score"] == 12 and alice["max_score"] == 12
    assert [r["exercise"] for r in alice["results"]] == ["stable-softmax", "relu"]
    assert all("duration_s" in r for r in alice["results"])
    assert alice["batch"]["exercises"] == ["stable-softmax", "relu"]
    assert len(alice["batch"]["fingerprint"]) == 64
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is True
    assert manifest["students"]["bob"]["state"] == "graded"
    assert manifest["students"]["bob"] == {"state": "graded", "fingerprint": bob_fp(out),
                                           "score": 1.0, "max_score": 12.0}


def test_named_exercise_only_grades_that_one(small_class, tmp_path):
    out = tmp_path / "out"
    grade_class(small_class, out, jobs=1, exercise_ids=["relu"], exercises_dirs=[str(COURSE)])
    assert (out / "grades.csv").read_text() == (
        "student,relu,total,max_total\nalice,2,2,2\nbob,0,0,2\ncarol,0,0,2\ndan,0,0,2\n")


def test_determinism_across_jobs_and_regrades(small_class, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    grade_class(small_class, a, jobs=1, exercises_dirs=[str(COURSE)])
    grade_class(small_class, b, jobs=2, exercises_dirs=[str(COURSE)])
    for name in ("grades.csv", "results.json", "manifest.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    before = {n: (a / n).read_bytes() for n in ("grades.csv", "results.json")}
    summary = grade_class(small_class, a, jobs=2, exercises_dirs=[str(COURSE)], force=True)
    assert len(summary.graded) == 4
    assert {n: (a / n).read_bytes() for n in before} == before


# --------------------------------------------------------------------------- resuming


def test_rerun_skips_unchanged_regrades_changed_and_force_regrades_all(small_class, tmp_path):
    out = tmp_path / "out"
    grade_class(small_class, out, jobs=2)
    first = _mtimes(out)
    again = grade_class(small_class, out, jobs=2)
    assert again.graded == [] and again.unchanged == ["alice", "bob", "carol", "dan"]
    assert _mtimes(out) == first
    (small_class / "bob.py").write_bytes((FIXTURES / "softmax" / "correct_loops.py").read_bytes())
    changed = grade_class(small_class, out, jobs=2)
    assert changed.graded == ["bob"]
    assert [r["total"] for r in _csv(out)] == ["10", "10", "0", "0"]
    assert {k: v for k, v in _mtimes(out).items() if k != "bob"} == {k: v for k, v in first.items() if k != "bob"}
    forced = grade_class(small_class, out, jobs=2, force=True)
    assert sorted(forced.graded) == ["alice", "bob", "carol", "dan"] and forced.unchanged == []


def test_a_changed_exercise_spec_regrades_everyone(make_class, tmp_path):
    from conftest import copy_exercise

    root = make_class({"alice.py": "softmax/correct_shift_max.py", "bob.py": "softmax/correct_loops.py"})
    course = copy_exercise("stable-softmax", tmp_path / "course", time_limit=10)
    out = tmp_path / "out"
    grade_class(root, out, jobs=1, exercises_dirs=[str(course)])
    assert grade_class(root, out, jobs=1, exercises_dirs=[str(course)]).graded == []
    spec = course / "stable-softmax" / "spec.toml"
    spec.write_text(spec.read_text().replace("time_limit = 10", "time_limit = 9"))
    assert sorted(grade_class(root, out, jobs=1, exercises_dirs=[str(course)]).graded) == ["alice", "bob"]


class _CtrlCAfter(Progress):
    """Simulates Ctrl-C once ``n`` students are done."""

    def __init__(self, n):
        self.n, self.done = n, 0

    def advance(self, report):
        self.done += 1
        if self.done == self.n:
            raise KeyboardInterrupt


def test_ctrl_c_leaves_a_consistent_folder_and_the_next_run_finishes_the_rest(make_class, tmp_path):
    root = make_class({f"s{i}.py": "softmax/correct_shift_max.py" for i in range(6)})
    out = tmp_path / "out"
    with pytest.raises(Interrupted) as exc:
        grade_class(root, out, jobs=1, progress=_CtrlCAfter(2))
    s = exc.value.summary
    assert len(s.graded) == 2 and len(s.pending) == 4 and s.interrupted
    assert len(_csv(out)) == 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is False
    assert sorted(k for k, v in manifest["students"].items() if v["state"] == "pending") == s.pending
    done_before = _mtimes(out)
    rest = grade_class(root, out, jobs=2)
    assert sorted(rest.graded) == s.pending
    assert sorted(rest.unchanged) == sorted(s.graded)
    assert {k: _mtimes(out)[k] for k in done_before} == done_before
    assert len(_csv(out)) == 6 and json.loads((out / "manifest.json").read_text())["complete"] is True


@pytest.mark.slow
def test_resume_after_kill_loses_nothing_and_regrades_nothing(make_class, tmp_path):
    n = 8
    root = make_class({f"s{i}.py": "batch/slow_import_softmax.py" for i in range(n)})
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "dlgrade", "grade", str(root), "--out", str(out), "--jobs", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while len(list((out / "students").glob("*.json"))) < 3:
            assert proc.poll() is None, "the batch ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = _mtimes(out)
    assert 3 <= len(done) < n
    for sid in done:  # every file there is complete
        assert json.loads((out / "students" / f"{sid}.json").read_text())["score"] == 10
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"({n - len(done)} graded, {len(done)} unchanged)" in r.stdout
    assert {k: _mtimes(out)[k] for k in done} == done
    assert [row["total"] for row in _csv(out)] == ["10"] * n
    assert not list(out.rglob(".*.tmp"))


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_on_the_command_writes_the_grades_so_far(make_class, tmp_path, sig):
    n = 8
    root = make_class({f"s{i}.py": "batch/slow_import_softmax.py" for i in range(n)})
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "dlgrade", "grade", str(root), "--out", str(out), "--jobs", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list((out / "students").glob("*.json"))) < 2:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    done = len(_csv(out))
    assert 2 <= done < n
    assert err.splitlines()[-1] == (f"interrupted: {done} of {n} students graded; "
                                    f"run the same command again to grade the other {n - done}")
    assert json.loads((out / "manifest.json").read_text())["complete"] is False


# --------------------------------------------------------------------------- bad submissions


@pytest.mark.slow
def test_crashing_hanging_and_unreadable_submissions_do_not_stop_the_batch(make_class, short_limit_exercises,
                                                                           tmp_path):
    root = make_class({"hangs.py": "batch/infinite_loop.py", "crashes.py": "batch/softmax_segfaults.py",
                       "broken/hw.ipynb": "batch/malformed_notebook.ipynb", "good.py": "softmax/correct_loops.py"})
    out = tmp_path / "out"
    summary = grade_class(root, out, jobs=2, exercise_ids=["stable-softmax"],
                          exercises_dirs=[str(short_limit_exercises)])
    assert sorted(summary.graded) == ["broken", "crashes", "good", "hangs"]
    rows = {r["student"]: r for r in json.loads((out / "results.json").read_text())}
    assert rows["good"]["score"] == 10
    # the wording of each outcome is pinned in the engine's and the submission module's tests
    assert rows["hangs"]["status"] == "timeout" and "softmax" in rows["hangs"]["message"]
    assert rows["crashes"]["status"] == "error" and "SIGSEGV" in rows["crashes"]["message"]
    assert rows["broken"]["status"] == "error"
    assert rows["broken"]["message"].startswith("broken/hw.ipynb: malformed notebook")
    assert [r["total"] for r in _csv(out)] == ["0", "0", "10", "0"]


def test_a_grader_failure_stops_the_batch_keeps_what_was_graded_and_writes_no_grade(small_class, tmp_path,
                                                                                    monkeypatch):
    real = engine.grade

    def flaky(ex, source, student, runner):
        if student == "bob":
            raise engine.GraderError("boom")
        return real(ex, source, student, runner)

    monkeypatch.setattr(engine, "grade", flaky)
    out = tmp_path / "out"
    with pytest.raises(batch.GradingFailed) as info:
        grade_class(small_class, out, jobs=1)
    failed = info.value
    assert (failed.student, failed.exercise, str(failed.error)) == ("bob", "stable-softmax", "boom")
    assert str(failed) == (
        "dlgrade itself failed while grading bob (stable-softmax): boom; the batch stopped with 1 of 4 "
        f"students graded (kept in {out}), no grade written for bob or the 2 others not graded yet; "
        "fix this and run the same command again to grade them")
    assert failed.summary.graded == ["alice"] and failed.summary.pending == ["bob", "carol", "dan"]
    assert sorted(p.name for p in (out / "students").glob("*.json")) == ["alice.json"]
    assert [r["student"] for r in _csv(out)] == ["alice"]
    assert {r["student"] for r in json.loads((out / "results.json").read_text())} == {"alice"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is False and manifest["students"]["bob"] == {"state": "pending"}
    monkeypatch.setattr(engine, "grade", real)
    again = grade_class(small_class, out, jobs=2)
    assert again.unchanged == ["alice"] and sorted(again.graded) == ["bob", "carol", "dan"]
    assert [r["total"] for r in _csv(out)] == ["10", "1", "0", "0"]


def test_an_internal_error_stops_the_batch_too(small_class, tmp_path, monkeypatch):
    def buggy(ex, source, student, runner):
        raise KeyError("W1")

    monkeypatch.setattr(engine, "grade", buggy)
    with pytest.raises(batch.GradingFailed) as info:
        grade_class(small_class, tmp_path / "out", jobs=2)
    assert "dlgrade itself failed while grading " in str(info.value)
    assert " (stable-softmax): KeyError: 'W1'; the batch stopped with 0 of 4 students graded" in str(info.value)
    assert list((tmp_path / "out" / "students").glob("*.json")) == []
    assert _csv(tmp_path / "out") == []


# --------------------------------------------------------------------------- the pages seam, lock


class FakePages:
    """dlgrade.graders.pages.Pages that records its calls and writes one line per page."""

    def __init__(self, calls: list):
        self.calls = calls

    def student_page(self, report, path):
        self.calls.append(("student", report.student))
        Path(path).write_text(f"<p>{report.student} {report.score:g}</p>")

    def class_summary(self, reports, out_dir, extras):
        self.calls.append(("class", [r.student for r in reports]))
        (Path(out_dir) / "index.html").write_text(" ".join(r.student for r in reports))

    def similarity_pages(self, folder, pairs, submissions, names, page_name):
        self.calls.append(("similarity", len(pairs)))


def test_pages_are_written_through_the_pages_handed_in(small_class, tmp_path):
    calls: list = []
    out = tmp_path / "out"
    grade_class(small_class, out, jobs=2, pages=FakePages(calls))
    assert sorted(c[1] for c in calls if c[0] == "student") == ["alice", "bob", "carol", "dan"]
    assert calls[-1] == ("class", ["alice", "bob", "carol", "dan"])
    assert (out / "students" / "alice.html").read_text() == "<p>alice 10</p>"
    assert (out / "index.html").read_text() == "alice bob carol dan"
    (out / "students" / "bob.html").unlink()  # e.g. killed between the JSON and the HTML
    calls.clear()
    grade_class(small_class, out, jobs=2, pages=FakePages(calls))
    assert calls == [("student", "bob"), ("class", ["alice", "bob", "carol", "dan"])]


def test_no_pages_means_records_only(small_class, tmp_path):
    out = tmp_path / "out"
    grade_class(small_class, out, jobs=1)  # the library's default: pages=None
    assert not list(out.rglob("*.html"))
    assert (out / "grades.csv").exists() and (out / "results.json").exists()


def test_pages_without_the_three_methods_are_refused(small_class, tmp_path):
    with pytest.raises(TypeError, match=r"pages= needs similarity_pages\(\)"):
        grade_class(small_class, tmp_path / "out", pages=types.SimpleNamespace(student_page=print,
                                                                                class_summary=print))
    assert not (tmp_path / "out").exists()


def test_a_second_run_on_the_same_output_folder_is_refused(small_class, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out / ".dlgrade-lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(BatchError) as exc:
            grade_class(small_class, out)
        assert str(exc.value) == f"{out}: another dlgrade grade is writing to this folder"
    finally:
        os.close(fd)


def test_atomic_write_keeps_the_old_content_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "grades.csv"
    target.write_text("old\n")

    def crash(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        batch.atomic_write(target, b"new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["grades.csv"]


# --------------------------------------------------------------------------- the command


def test_grade_command_logs_plain_lines_when_not_on_a_terminal(small_class, tmp_path):
    res = CliRunner().invoke(main, ["grade", str(small_class), "--out", str(tmp_path / "out"), "-j", "1"])
    assert res.exit_code == 0, res.output
    lines = res.stderr.splitlines()
    assert lines[0].startswith("grading 4 students on stable-softmax with 1 job (isolation: ")
    assert lines[1:] == ["[1/4] alice  10 / 10", "[2/4] bob  1 / 10", "[3/4] carol  0 / 10",
                         "[4/4] dan  0 / 10"]
    assert res.stdout.startswith("4 students in ")
    assert res.stdout.rstrip().endswith(f"(4 graded, 0 unchanged): {tmp_path / 'out' / 'grades.csv'}")


@pytest.mark.parametrize("args, message", [
    (["grade", "{tmp}/nope", "--out", "{tmp}/out"], "Error: {tmp}/nope: no such folder"),
    (["grade", "{subs}", "--out", "{tmp}/out", "-e", "nope"],
     "Error: unknown exercise 'nope'; known: {known}"),
])
def test_grade_usage_errors_exit_2_with_one_line(small_class, tmp_path, args, message):
    args = [a.format(tmp=tmp_path, subs=small_class) for a in args]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2
    assert res.output.splitlines()[-1] == message.format(tmp=tmp_path, known=", ".join(sorted(catalogue())))
    assert "Traceback" not in res.output


def test_grade_help_ends_with_an_example():
    res = CliRunner().invoke(main, ["grade", "--help"])
    assert res.exit_code == 0
    assert "dlgrade grade submissions/ --out grades/ --jobs 4" in res.output


def test_grade_command_says_when_dlgrade_itself_failed_in_one_line_exit_3(small_class, tmp_path, monkeypatch):
    from dlgrade.graders.sandbox import SandboxError

    def broken(ex, source, student, runner):
        try:
            raise SandboxError("the sandbox worker did not start: bwrap: oops", sandbox=True)
        except SandboxError as exc:
            raise engine.GraderError(str(exc)) from exc

    monkeypatch.setattr(engine, "grade", broken)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["grade", str(small_class), "--out", str(out), "-j", "1"])
    assert res.exit_code == 3
    assert res.stdout == ""
    assert res.stderr.splitlines()[-1] == (
        "Error: dlgrade itself failed while grading alice (stable-softmax): the sandbox worker did not start: "
        "bwrap: oops; run `dlgrade doctor` to see why; the batch stopped with 0 of 4 students graded "
        f"(kept in {out}), no grade written for alice or the 3 others not graded yet; fix this and run the "
        "same command again to grade them")
    assert "Traceback" not in res.output
    assert list((out / "students").glob("*")) == []


def test_a_spec_error_found_while_grading_stays_a_usage_error(small_class, tmp_path, monkeypatch):
    from dlgrade.graders.spec import SpecError

    def typo(ex, source, student, runner):
        raise SpecError("course/relu/spec.toml: [checks.values] tolerance: expected a number, got 'tight'")

    monkeypatch.setattr(engine, "grade", typo)
    res = CliRunner().invoke(main, ["grade", str(small_class), "--out", str(tmp_path / "out"), "-j", "1"])
    assert res.exit_code == 2
    assert res.stderr.splitlines()[-1] == ("Error: course/relu/spec.toml: [checks.values] tolerance: expected a "
                                          "number, got 'tight'")


def test_a_failing_html_report_is_a_warning_and_the_grades_are_written(small_class, tmp_path):
    class Broken(FakePages):
        def student_page(self, report, path):
            if report.student == "bob":
                raise RuntimeError("template error")
            Path(path).write_text(report.student)

    out = tmp_path / "out"
    summary = grade_class(small_class, out, jobs=2, pages=Broken([]))
    assert summary.warnings[-1:] == ["bob: HTML report not written (RuntimeError: template error)"]
    assert not (out / "students" / "bob.html").exists() and (out / "students" / "alice.html").exists()
    assert len(_csv(out)) == 4
