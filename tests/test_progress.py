"""reports/progress.py: a bar on a terminal, plain lines otherwise."""
from __future__ import annotations

import io

from dlgrade.graders.results import CheckResult, ExerciseResult, Report
from dlgrade.reports.progress import BarProgress, LogProgress, progress_for, start_line, student_line


def _report(student, statuses):
    results = tuple(ExerciseResult(student=student, exercise=ex, status=st, max_score=10.0,
                                   checks=(CheckResult("c", True, 10.0, 10.0, "ok"),) if st == "graded" else ())
                    for ex, st in statuses)
    return Report(student, results)


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_student_line_names_what_did_not_grade_normally():
    r = _report("alice", [("stable-softmax", "graded"), ("two-layer-backprop", "timeout"),
                          ("label-smoothing", "error"), ("sigmoid-bce-grad", "missing")])
    assert student_line(r) == "alice  10 / 40  (two-layer-backprop timeout, label-smoothing error)"
    assert student_line(_report("bob", [("stable-softmax", "graded")])) == "bob  10 / 10"


def test_start_line_counts_and_skips():
    assert start_line(1, 0, ["a"], 1, "sandbox") == "grading 1 student on a with 1 job (isolation: sandbox)"
    assert start_line(3, 2, ["a", "b"], 2, "basic") == (
        "grading 3 students on a, b with 2 jobs (isolation: basic); "
        "2 unchanged, skipped (--force regrades them)")


def test_log_progress_writes_one_line_per_student():
    out = io.StringIO()
    p = LogProgress(out)
    p.start(12, 0, ["a"], 2, "sandbox")
    p.advance(_report("alice", [("a", "graded")]))
    p.finish()
    assert out.getvalue().splitlines()[1] == "[ 1/12] alice  10 / 10"


def test_a_terminal_gets_a_bar_with_position_and_eta():
    tty = _Tty()
    p = progress_for(tty)
    assert isinstance(p, BarProgress)
    assert isinstance(progress_for(io.StringIO()), LogProgress)
    p.start(2, 0, ["a"], 1, "sandbox")
    p.advance(_report("alice", [("a", "graded")]))
    p.advance(_report("bob", [("a", "graded")]))
    p.finish()
    text = tty.getvalue()
    assert "1/2" in text and "2/2" in text and "100%" in text and "alice" in text


def test_cluster_progress_names_the_worker_and_counts_per_worker():
    out = io.StringIO()
    p = LogProgress(out)
    p.start(3, 0, ["a"], 2, "sandbox")
    p.graded_on("tcp://10.0.0.7:4001", {"tcp://10.0.0.7:4001": 1})
    p.advance(_report("alice", [("a", "graded")]))
    p.advance(_report("bob", [("a", "graded")]))  # no worker named: graded on this machine
    assert out.getvalue().splitlines()[1:] == ["[1/3] alice  10 / 10  (on tcp://10.0.0.7:4001)", "[2/3] bob  10 / 10"]
    tty = _Tty()
    bar = BarProgress(tty)
    bar.start(3, 0, ["a"], 2, "sandbox")
    bar.graded_on("tcp://b:1", {"tcp://a:1": 2, "tcp://b:1": 1})
    bar.advance(_report("carol", [("a", "graded")]))
    bar.finish()
    assert "grading (2 workers: 2 1)" in tty.getvalue()
