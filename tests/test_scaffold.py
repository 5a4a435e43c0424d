"""`dlgrade new`: every framework's scaffold passes `dlgrade test-exercise` as written,
and its correct and wrong submissions grade as they say."""
import json

import pytest
from click.testing import CliRunner

from dlgrade.graders.cli import main
from dlgrade.graders.scaffold import FILES
from dlgrade.graders.spec import load_exercise

DIAGNOSIS = {"numpy": "tanh-square-missing", "torch": "missing-batch-mean", "symbolic": "softplus-log-only"}


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.slow  # grades six submissions in fresh sandboxes
@pytest.mark.parametrize("framework", ["numpy", "torch", "symbolic"])
def test_new_then_test_exercise_round_trip(tmp_path, framework):
    course = tmp_path / "course"
    r = run("new", "my-grad", "--framework", framework, "--dir", str(course))
    assert r.exit_code == 0, r.output
    folder = course / "my-grad"
    assert r.output.splitlines() == [
        f"wrote {folder}/: spec.toml, statement.md, starter.py, reference.py, submissions/correct.py, "
        "submissions/wrong.py",
        f"test it:   dlgrade test-exercise {folder}",
        f"grade one: dlgrade check {folder}/submissions/wrong.py --exercises-dir {course}",
    ]
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == sorted(FILES)
    ex = load_exercise(folder)
    assert (ex.id, ex.framework, ex.entry) == ("my-grad", framework, "my_grad")
    spec = (folder / "spec.toml").read_text()
    assert spec.startswith("# A course exercise written by `dlgrade new`")
    assert f"dlgrade test-exercise {folder}" in spec

    r = run("test-exercise", str(folder), "--seeds", "2")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[-1].startswith("1 exercise, ") and " 0 failed; " in r.output.splitlines()[-1]
    assert f"mistake {DIAGNOSIS[framework]}" in r.output

    graded = {}
    for name in ("correct", "wrong"):
        r = run("check", str(folder / "submissions" / f"{name}.py"), "--exercises-dir", str(course), "--json")
        assert r.exit_code == 0, r.output
        graded[name] = json.loads(r.output)
    assert graded["correct"]["status"] == "graded"
    assert graded["correct"]["score"] == graded["correct"]["max_score"] and graded["correct"]["diagnoses"] == []
    assert graded["wrong"]["score"] < graded["wrong"]["max_score"]
    assert graded["wrong"]["diagnoses"] == [DIAGNOSIS[framework]]


def test_the_starter_is_what_init_writes_and_earns_nothing(tmp_path):
    course = tmp_path / "course"
    run("new", "tanh-grad", "--framework", "numpy", "--dir", str(course))
    dest = tmp_path / "mine.py"
    r = run("init", "tanh-grad", str(dest), "--exercises-dir", str(course))
    assert r.exit_code == 0, r.output
    assert dest.read_text() == (course / "tanh-grad" / "starter.py").read_text()


def test_a_course_diagnosis_shows_the_courses_own_hint(tmp_path):
    course = tmp_path / "course"
    run("new", "tanh-grad", "--framework", "numpy", "--dir", str(course))
    r = run("check", str(course / "tanh-grad" / "submissions" / "wrong.py"), "--exercises-dir", str(course))
    assert "The derivative of tanh is 1 - tanh(z)**2: square tanh before subtracting it from 1." in r.output


@pytest.mark.parametrize("args, message", [
    (["new", "My_Exercise", "--framework", "numpy"],
     "Error: 'My_Exercise' cannot be an exercise id: use lower-case letters and digits in words joined by "
     "hyphens, starting with a letter, like \"tanh-grad\""),
    (["new", "class", "--framework", "numpy"],
     "Error: 'class' cannot be an exercise id: its entry 'class' is a Python keyword"),
])
def test_bad_ids_are_exit_2(tmp_path, args, message):
    r = run(*args, "--dir", str(tmp_path))
    assert r.exit_code == 2
    assert r.output.strip() == message
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_never_overwritten(tmp_path):
    (tmp_path / "tanh-grad").mkdir()
    (tmp_path / "tanh-grad" / "spec.toml").write_text("mine")
    r = run("new", "tanh-grad", "--framework", "torch", "--dir", str(tmp_path))
    assert r.exit_code == 2
    assert r.output.strip() == f"Error: {tmp_path / 'tanh-grad'} already exists"
    assert (tmp_path / "tanh-grad" / "spec.toml").read_text() == "mine"


def test_an_unknown_framework_is_exit_2(tmp_path):
    r = run("new", "tanh-grad", "--framework", "jax", "--dir", str(tmp_path))
    assert r.exit_code == 2 and "'jax' is not one of 'numpy', 'torch', 'symbolic'" in r.output


def test_init_advises_a_command_that_works_for_a_course_exercise(tmp_path, monkeypatch):
    """The advice names --exercises-dir for a course exercise, and running it grades."""
    monkeypatch.chdir(tmp_path)
    run("new", "tanh-grad", "--framework", "numpy", "--dir", "my course")
    r = run("init", "tanh-grad", "answer.py", "--exercises-dir", "my course")
    assert r.exit_code == 0, r.output
    advice = r.output.strip().split("check it with: ", 1)[1]
    assert advice == "dlgrade check answer.py --exercises-dir 'my course'"
    import shlex

    argv = shlex.split(advice)
    assert argv[0] == "dlgrade"
    r = run(*argv[1:], "--json")
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    assert (result["exercise"], result["status"], result["score"]) == ("tanh-grad", "graded", 0.0)


def test_init_advice_for_a_course_exercise_found_through_the_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run("new", "tanh-grad", "--framework", "numpy", "--dir", "course")
    monkeypatch.setenv("DLGRADE_EXERCISES", str(tmp_path / "course"))
    r = run("init", "tanh-grad", "answer.py")
    assert r.output.strip() == (f"wrote answer.py; check it with: dlgrade check answer.py --exercises-dir "
                                f"{tmp_path / 'course'}")


def test_init_advice_for_a_builtin_exercise_is_unchanged(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = run("init", "stable-softmax", "s.py")
    assert r.output.strip() == "wrote s.py; check it with: dlgrade check s.py"


def test_new_says_when_it_shadows_a_builtin_exercise(tmp_path):
    r = run("new", "stable-softmax", "--framework", "numpy", "--dir", str(tmp_path))
    assert r.exit_code == 0
    assert r.output.splitlines()[1] == (f"note: stable-softmax is also one of dlgrade's own exercises; with "
                                        f"--exercises-dir {tmp_path} this folder's version replaces it")
