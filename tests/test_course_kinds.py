"""A course's own check kind (examples/course-exercises/log-softmax/kinds.py) and its own
words for a built-in diagnosis, graded end to end as `dlgrade check` grades them (issue #12)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from dlgrade.graders.cli import main
from dlgrade.graders.diagnose import BUILTIN_DIAGNOSES, describe
from dlgrade.graders.spec import SpecError, get_exercise, load_exercise

ROOT = Path(__file__).parent.parent
COURSE = ROOT / "examples" / "course-exercises"
FIXTURES = ROOT / "tests" / "fixtures" / "course" / "log-softmax"
OVERFLOW_TITLE = "log(softmax) overflows"


def check_json(name: str, *extra) -> dict:
    r = CliRunner().invoke(main, ["check", str(FIXTURES / name), "--exercises-dir", str(COURSE), "--json", *extra])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_the_course_kind_is_registered_for_its_exercise_only():
    ex = get_exercise("log-softmax", (str(COURSE),))
    assert "shift-invariance" in ex.kinds
    assert ex.checks[2].settings.shift == 500.0 and ex.checks[2].settings.rtol == 1e-6
    assert "shift-invariance" not in get_exercise("leaky-relu-grad", (str(COURSE),)).kinds
    assert "shift-invariance" not in get_exercise("stable-softmax").kinds


def test_a_correct_answer_gets_every_point_of_the_course_check():
    d = check_json("correct.py")
    assert (d["score"], d["max_score"], d["diagnoses"]) == (4.0, 4.0, [])
    assert d["checks"][2] == {**d["checks"][2], "kind": "shift-invariance", "passed": True,
                              "message": "log_softmax(...) is unchanged when 500 is added to every logit"}


def test_the_course_check_fails_an_answer_the_values_checks_pass():
    d = check_json("not_shift_invariant.py")
    assert d["score"] == 3.0
    (failed,) = [c for c in d["checks"] if not c["passed"]]
    assert failed["name"] == "adding a constant to every logit changes nothing"
    assert failed["message"].startswith(
        "log_softmax(...) changes when 500 is added to every logit on random logits, shape (6, 5) (case 'random'): "
        "30 / 30 elements (100%) differ; worst at ")


def test_a_course_diagnosis_and_a_reworded_builtin_one():
    d = check_json("softmax_not_logged.py")
    assert d["diagnoses"] == ["softmax-not-logged"]
    assert d["explanations"]["softmax-not-logged"]["title"] == "Softmax, not its log"
    d = check_json("naive_overflow.py")
    assert d["diagnoses"] == ["overflow"] and d["score"] == 3.0
    assert d["explanations"]["overflow"]["title"] == OVERFLOW_TITLE
    # the built-in text is untouched for every other exercise
    assert describe("overflow") == BUILTIN_DIAGNOSES["overflow"] and describe("overflow").title != OVERFLOW_TITLE


def test_the_student_reads_the_exercise_s_own_title_and_hint(tmp_path):
    r = CliRunner().invoke(main, ["check", str(FIXTURES / "naive_overflow.py"), "--exercises-dir", str(COURSE),
                                  "--html", str(tmp_path / "r.html")])
    assert r.exit_code == 0
    assert f"[overflow] {OVERFLOW_TITLE}" in r.output
    assert "Use z - logsumexp(z)" in r.output and BUILTIN_DIAGNOSES["overflow"].hint not in r.output
    html = (tmp_path / "r.html").read_text()
    assert OVERFLOW_TITLE in html and BUILTIN_DIAGNOSES["overflow"].title not in html


def test_an_unknown_id_never_reads_no_such_diagnosis():
    assert describe("made-up-id").title == "Made up id"


def _course_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "course"
    shutil.copytree(COURSE / "log-softmax", dest / "log-softmax", ignore=shutil.ignore_patterns("__pycache__"))
    return dest / "log-softmax"


@pytest.mark.parametrize("edit, message", [
    (("shift = 500.0", "shfit = 500.0"),
     "check 'adding a constant to every logit changes nothing': unknown option 'shfit'; did you mean 'shift'? "
     "(known: rtol, shift)"),
    (("shift = 500.0", 'shift = "500"'),
     "check 'adding a constant to every logit changes nothing': option shift must be a number (got \"500\")"),
    (("shift = 500.0", "shift = 0"),  # the kind's Options.validate
     "check 'adding a constant to every logit changes nothing': option 'shift' must not be 0 (the check would "
     "compare a result with itself)"),
    (('kind = "shift-invariance"', 'kind = "shift-invariant"'),
     "check 'adding a constant to every logit changes nothing': unknown check kind 'shift-invariant'; did you mean "
     "'shift-invariance'? (known: finite-difference, gradients, no-mutation, sequences, shift-invariance, statistical, training, values)"),
    (('shift-invariance = "kinds.py:ShiftInvariance"', 'shift-invariance = "kinds.py:ShiftInvarience"'),
     "[kinds] shift-invariance: kinds.py has no 'ShiftInvarience'"),
    (('shift-invariance = "kinds.py:ShiftInvariance"', 'shift-invariance = "kind.py:ShiftInvariance"'),
     "[kinds] shift-invariance: reference file {folder}/kind.py does not exist"),
])
def test_a_typo_about_a_course_kind_is_one_line(tmp_path, edit, message):
    folder = _course_copy(tmp_path)
    spec = folder / "spec.toml"
    spec.write_text(spec.read_text().replace(*edit))
    with pytest.raises(SpecError) as err:
        load_exercise(folder)
    assert str(err.value) == f"{spec}: {message.format(folder=folder.resolve())}"


def test_a_course_kind_that_breaks_the_contract_is_refused(tmp_path):
    folder = _course_copy(tmp_path)
    (folder / "kinds.py").write_text("class ShiftInvariance:\n    name = 'shift-invariance'\n\n"
                                     "    def plan(self, check, ctx):\n        return []\n")
    with pytest.raises(SpecError) as err:
        load_exercise(folder)
    assert str(err.value) == (f"{folder / 'spec.toml'}: [kinds] shift-invariance: kinds.py:ShiftInvariance lacks "
                              "evaluate (see dlgrade.graders.checks.protocol.CheckKind)")


def test_a_course_kind_that_raises_is_the_course_s_spec_error_naming_its_line(tmp_path):
    """A bug in the course's kinds.py is exit 2 naming the spec, the check, the kind and the
    line of kinds.py, from check, grade and test-exercise alike: never "a bug in dlgrade"."""
    folder = _course_copy(tmp_path)
    kinds = folder / "kinds.py"
    text = kinds.read_text()
    assert "        label = label_of(check, ctx)\n" in text
    kinds.write_text(text.replace("        label = label_of(check, ctx)\n",
                                  "        label = label_of(check, ctx)\n        check.settings.tolerance\n", 1))
    line = next(n for n, t in enumerate(kinds.read_text().splitlines(), 1) if "settings.tolerance" in t)
    message = (f"Error: {folder / 'spec.toml'}: check 'adding a constant to every logit changes nothing': kind "
               f"'shift-invariance': evaluate raised AttributeError: 'Options' object has no attribute "
               f"'tolerance' (kinds.py, line {line})")
    answer = FIXTURES / "correct.py"
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(answer, subs / "ada.py")
    runs = {"check": ["check", str(answer), "--exercises-dir", str(folder.parent), "-e", "log-softmax"],
            "grade": ["grade", str(subs), "--out", str(tmp_path / "out"), "--jobs", "1",
                      "--exercises-dir", str(folder.parent), "-e", "log-softmax"],
            "test-exercise": ["test-exercise", str(folder), "--seeds", "1"]}
    for name, args in runs.items():
        r = CliRunner().invoke(main, args)
        assert (name, r.exit_code) == (name, 2), r.output
        assert r.output.strip().splitlines()[-1] == message, name
        assert "Traceback" not in r.output and "bug in dlgrade" not in r.output
