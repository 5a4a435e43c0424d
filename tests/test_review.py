"""graders/review.py and `dlgrade review`: what needs a person, and their decisions as overrides."""
from __future__ import annotations

import csv
import io
import json
import re

import pytest
from click.testing import CliRunner

from conftest import FIXTURES
from dlgrade.graders import review
from dlgrade.graders.cli import main
from dlgrade.graders.overrides import OverrideError, make
from dlgrade.graders.results import CheckResult, ExerciseResult, Report


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def res(student, status="graded", checks=(), message="", error=None, exercise="ex") -> ExerciseResult:
    return ExerciseResult(student=student, exercise=exercise, status=status, max_score=10, checks=tuple(checks),
                          message=message, error=error or {})


UNDECIDED = [CheckResult("parses", True, 2, 2, "parsed"),
             CheckResult("equivalent", False, 0, 8, "could not decide; flagged for review", {"needs_review": True})]


def test_the_kinds_of_item_and_what_accepting_gives():
    assert review.kind_of(res("a", checks=UNDECIDED)) == (
        "undetermined", "the symbolic answer could not be decided automatically: could not decide; flagged for "
                        "review", 10)
    assert review.kind_of(res("a", "timeout", message="took longer than 1 s")) == (
        "timeout", "the code ran out of time: took longer than 1 s", None)
    assert review.kind_of(res("a", "error", message="SyntaxError on line 3")) == (
        "error", "the code could not be graded: SyntaxError on line 3", None)
    assert review.kind_of(res("a", "error", message="boom", error={"kind": "grader"}))[1] == (
        "dlgrade itself failed on this exercise: boom")
    assert review.kind_of(res("a", checks=[CheckResult("v", True, 10, 10, "ok")])) is None
    assert review.kind_of(res("a", "missing")) is None


def test_the_queue_puts_open_items_first_and_tracks_decisions_and_changed_submissions():
    reports = [Report("a", (res("a", checks=UNDECIDED),)), Report("b", (res("b", "timeout"),)),
               Report("c", (res("c", checks=[CheckResult("v", True, 4, 10, "ok")]),))]
    decided = make(res("a", checks=UNDECIDED), 10, decision="accepted", fingerprint="old")
    by_hand = make(res("c", checks=[CheckResult("v", True, 4, 10, "ok")]), 6, "regraded by hand", fingerprint="fp-c")
    items = review.queue(reports, {decided.key: decided, by_hand.key: by_hand}, {"a": "new", "c": "fp-c"})
    assert [(i.student, i.kind, i.state, i.changed, i.is_open) for i in items] == [
        ("a", "undetermined", "accepted", True, True),  # decided on an older submission: open again
        ("b", "timeout", "open", False, True),
        ("c", "override", "overridden", False, False)]
    assert review.counts(items) == {"open": 1, "accepted": 1, "rejected": 0, "overridden": 1, "changed": 1}


def test_decisions_write_overrides():
    item = review.queue([Report("a", (res("a", checks=UNDECIDED),))], {})[0]
    o = review.decide(item, res("a", checks=UNDECIDED), accept=True)
    assert (o.points, o.decision, o.note) == (10, "accepted", "accepted in review (undetermined)")
    o = review.decide(item, res("a", checks=UNDECIDED), accept=False)
    assert (o.points, o.decision, o.note) == (2, "rejected", "rejected in review (undetermined): automatic score kept")
    t = review.queue([Report("b", (res("b", "timeout"),))], {})[0]
    with pytest.raises(OverrideError) as exc:
        review.decide(t, res("b", "timeout"), accept=True)
    assert str(exc.value) == ("b ex: a timeout has no points to accept by default; give them with --points (0..10)")
    assert review.decide(t, res("b", "timeout"), accept=True, points=3).points == 3
    with pytest.raises(OverrideError) as exc:
        review.decide(t, res("b", "timeout"), accept=False, points=3)
    assert str(exc.value) == "--points goes with --accept (a rejection keeps the automatic score)"


# --------------------------------------------------------------------------- end to end


@pytest.fixture
def queue_class(make_class, tmp_path, short_limit_exercises):
    """A class whose grading leaves one of each kind of item: an undecided symbolic answer
    (an exercise with no time to decide), a timeout and a syntax error."""
    subs = make_class({"ada/softmax.py": "softmax/correct_shift_max.py",
                       "ben/softmax.py": "batch/infinite_loop.py",
                       "cy/softmax.py": "softmax/softmax_syntax_error.py"})
    (subs / "ada" / "sigmoid_bce_grad.txt").write_text("sigmoid(z) - y + log(2*sigmoid(z)) - log(2) - log(sigmoid(z))\n")
    (subs / "ben" / "sigmoid_bce_grad.txt").write_text("sigmoid(z) - y\n")
    (subs / "cy" / "sigmoid_bce_grad.txt").write_text("sigmoid(z) - y\n")
    dirs = [short_limit_exercises, FIXTURES / "symbolic" / "exercises"]
    out = tmp_path / "out"
    args = ["grade", subs, "--out", out, "--jobs", "2", "-e", "stable-softmax", "-e", "sigmoid-bce-grad-no-time"]
    for d in dirs:
        args += ["--exercises-dir", d]
    r = run(*args)
    assert r.exit_code == 0, r.output
    return subs, out, args


def _score(out, student, exercise) -> float:
    return next(r["score"] for r in json.loads((out / "results.json").read_text())
                if r["student"] == student and r["exercise"] == exercise)


def _totals(out) -> dict[str, str]:
    return {r["student"]: r["total"] for r in csv.DictReader(io.StringIO((out / "grades.csv").read_text()))}


@pytest.mark.slow
def test_the_review_flow_end_to_end(queue_class):
    subs, out, grade_args = queue_class
    before = _totals(out)
    assert before["ada"] == "12"  # softmax 10 + parses 2; the undecided check gives nothing yet
    r = run("review", out, "--json")
    items = json.loads(r.output)
    kinds = {(i["student"], i["exercise"]): (i["kind"], i["state"]) for i in items}
    assert kinds[("ada", "sigmoid-bce-grad-no-time")] == ("undetermined", "open")
    assert kinds[("ben", "stable-softmax")] == ("timeout", "open")
    assert kinds[("cy", "stable-softmax")] == ("error", "open")
    r = run("review", out)
    lines = r.output.splitlines()
    assert lines[0] == f"review queue of {out}: {len(items)} open, 0 accepted, 0 rejected, 0 overridden"
    assert re.match(r"STATE +KIND +STUDENT +EXERCISE +SCORE +ACCEPT GIVES +WHAT$", lines[1])
    assert any(re.match(r"open +undetermined +ada +sigmoid-bce-grad-no-time +2/10 +10 +the symbolic answer", ln)
               for ln in lines)

    r = run("review", out, "ada", "sigmoid-bce-grad-no-time", "--accept")
    assert r.exit_code == 0 and r.output == (
        f"accepted: ada sigmoid-bce-grad-no-time 10 (automatic 2); kept in {out / 'overrides.toml'}\n")
    r = run("review", out, "ben", "stable-softmax", "--accept")
    assert r.exit_code == 2 and r.output == ("Error: ben stable-softmax: a timeout has no points to accept by "
                                             "default; give them with --points (0..10)\n")
    assert run("review", out, "ben", "stable-softmax", "--accept", "--points", "4",
               "--note", "Loops forever only on the hidden case").exit_code == 0
    assert run("review", out, "cy", "stable-softmax", "--reject").exit_code == 0
    assert _totals(out)["ada"] == "20" and _score(out, "ben", "stable-softmax") == 4
    assert _totals(out)["cy"] == before["cy"]
    r = run("review", out, "--open")
    assert r.output.splitlines()[0].startswith(f"review queue of {out}: {len(items) - 3} open, 2 accepted, 1 rejected")
    assert "Loops forever only on the hidden case" in (out / "students" / "ben.html").read_text()
    index = (out / "index.html").read_text()
    assert 'id="review"' in index and "accepted in review" in index

    # the decisions survive a full regrade
    r = run(*grade_args, "--force")
    assert r.exit_code == 0, r.output
    assert _totals(out)["ada"] == "20" and _score(out, "ben", "stable-softmax") == 4

    # ada changes her answer: her decision is flagged for another look
    (subs / "ada" / "sigmoid_bce_grad.txt").write_text("sigmoid(z)\n")
    assert run(*grade_args).exit_code == 0
    ada = next(i for i in json.loads(run("review", out, "--json").output)
               if i["student"] == "ada" and i["exercise"] == "sigmoid-bce-grad-no-time")
    assert ada["changed"] is True and ada["state"] == "accepted"
    assert "changed since their override" in run("review", out).output.splitlines()[0]


@pytest.mark.slow
def test_review_usage_errors(queue_class, tmp_path):
    _, out, _ = queue_class
    for args, message in [
        (("ada",), "to decide an item give STUDENT EXERCISE and --accept or --reject"),
        (("ada", "stable-softmax"), "to decide an item give STUDENT EXERCISE and --accept or --reject"),
        (("--accept",), "--accept, --reject, --points and --note need STUDENT EXERCISE"),
        (("ada", "stable-softmax", "--accept"), "ada stable-softmax: not in the review queue (nothing for a person to "
                                                "decide)"),
        (("zed", "stable-softmax", "--reject"), f"{out}: no student 'zed' (the ids are those of grades.csv)"),
    ]:
        r = run("review", out, *args)
        assert r.exit_code == 2 and r.output == f"Error: {message}\n", (args, r.output)
