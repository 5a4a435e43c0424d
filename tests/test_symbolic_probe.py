"""A symbolic exercise's [symbolic] variables checked against its reference when the spec is
probed (graders/spec_probe.py), before anyone is graded (trial #23): a reference or buggy
reference using a symbol that is not declared is one line, exit 2; a declared variable the
reference never uses is a warning. And the evaluator's own failure is one readable line."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from dlgrade.graders import symbolic_grade
from dlgrade.graders.cli import main
from dlgrade.graders.errors import GraderError
from dlgrade.graders.sandbox import worker_error_line
from dlgrade.graders.spec import SpecError, load_exercise
from dlgrade.graders.spec_probe import probe_exercise

ROOT = Path(__file__).parent.parent

REFERENCE = '''import sympy as sp

z = sp.Symbol("z", real=True)
y = sp.Symbol("y", real=True)
a = sp.Symbol("a", real=True)


def derivative():
    return sp.diff(sp.Rational(1, 2) * (sp.tanh(z) - y) ** 2, z)


def unsquared():
    return ((a - y) * (1 - a)).subs(a, sp.tanh(z))


def unsquared_in_a():  # the alias kept: the evaluator knows no `a`
    return (a - y) * (1 - a)


def not_an_expression():
    return 3


def raises():
    raise RuntimeError("no  derivative\\n today")


MISTAKES = {"tanh-derivative-unsquared": unsquared}
'''

SPEC = '''id = "tanh-grad-sym"
title = "Gradient of a tanh unit under the squared error"
framework = "symbolic"
entry = "tanh_grad"
reference = "reference.py:derivative"
mistakes = "reference.py:MISTAKES"
time_limit = 10

[symbolic]
variables = ["z", "y"]
name = "dL/dz"
aliases = { a = "tanh(z)" }

[diagnoses.tanh-derivative-unsquared]
title = "1 - tanh(z), not 1 - tanh(z)^2"
hint = "d/dz tanh(z) = 1 - tanh(z)^2."

[[checks]]
name = "parses"
kind = "symbolic-parse"
points = 1

[[checks]]
name = "equivalent to dL/dz"
kind = "symbolic-equivalence"
points = 4
'''

TYPO = ('variables = ["z", "y"]', 'variables = ["z", "yy"]')  # trial #23


def write(tmp_path: Path, spec: str = SPEC, reference: str = REFERENCE) -> Path:
    folder = tmp_path / "course" / "tanh-grad-sym"
    folder.mkdir(parents=True)
    (folder / "spec.toml").write_text(spec, encoding="utf-8")
    (folder / "reference.py").write_text(reference, encoding="utf-8")
    return folder


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _answers(tmp_path: Path) -> Path:
    subs = tmp_path / "subs"
    for name, text in (("alice", "(a - y)*(1 - a^2)"), ("carol", "1 - tanh(z)**2")):
        (subs / name).mkdir(parents=True)
        (subs / name / "hw.py").write_text(f'tanh_grad = "{text}"\n', encoding="utf-8")
    return subs


PROBED = [
    (TYPO, "[symbolic] variables: the reference uses y, which is not declared (variables: yy, z)"),
    (('variables = ["z", "y"]', 'variables = ["z"]'),
     "[symbolic] variables: the reference uses y, which is not declared (variables: z)"),
    (('variables = ["z", "y"]\nname = "dL/dz"\naliases = { a = "tanh(z)" }', 'variables = ["w"]'),
     "[symbolic] variables: the reference uses y and z, which are not declared (variables: w)"),
    (('"reference.py:MISTAKES"', '"reference.py:IN_A"'),
     "[symbolic] variables: mistake 'tanh-derivative-unsquared' uses a, which is not declared (variables: y, z; "
     "a is an alias, for answers only: the reference writes tanh(z))"),
    (('"reference.py:derivative"', '"reference.py:not_an_expression"'),
     "the reference returns an int, not a SymPy expression"),
    (('"reference.py:derivative"', '"reference.py:raises"'),
     "the reference raised RuntimeError: no derivative today"),
    (('"reference.py:derivative"', '"reference.py:sine"'),
     "the reference returns sin(z), which the symbolic evaluator cannot take: cannot ship sin in a reference "
     "expression"),
]


@pytest.mark.parametrize("swap, message", PROBED, ids=[m[:50] for _, m in PROBED])
def test_a_reference_that_does_not_fit_the_variables_is_one_line(tmp_path, swap, message):
    reference = REFERENCE + ('\nIN_A = {"tanh-derivative-unsquared": unsquared_in_a}\n'
                             '\ndef sine():\n    return sp.sin(z)\n')
    folder = write(tmp_path, SPEC.replace(*swap), reference)
    ex = load_exercise(folder)  # the spec alone is fine: only the reference tells
    with pytest.raises(SpecError) as err:
        probe_exercise(ex)
    assert str(err.value) == f"{folder / 'spec.toml'}: {message}"


def test_a_declared_variable_the_reference_never_uses_is_a_warning(tmp_path):
    folder = write(tmp_path, SPEC.replace('variables = ["z", "y"]', 'variables = ["z", "y", "w"]'))
    assert probe_exercise(load_exercise(folder)) == (
        f"{folder / 'spec.toml'}: [symbolic] variables: w is declared but the reference never uses it "
        "(an answer can be right only if it cancels out)",)
    folder = write(tmp_path / "two", SPEC.replace('variables = ["z", "y"]', 'variables = ["z", "y", "w", "v"]'))
    assert probe_exercise(load_exercise(folder)) == (
        f"{folder / 'spec.toml'}: [symbolic] variables: v and w are declared but the reference never uses them "
        "(an answer can be right only if they cancel out)",)


def test_the_right_variables_pass_the_probe_and_a_correct_answer_gets_full_marks(tmp_path):
    folder = write(tmp_path)
    assert probe_exercise(load_exercise(folder)) == ()
    subs = _answers(tmp_path)
    r = _run("check", subs / "alice" / "hw.py", "--exercise", "tanh-grad-sym", "--exercises-dir", folder.parent)
    assert r.exit_code == 0, r.output + r.stderr
    assert "Total: 5 / 5" in r.output
    r = _run("grade", subs, "--exercise", "tanh-grad-sym", "--out", tmp_path / "out", "--jobs", "1",
             "--exercises-dir", folder.parent)
    assert r.exit_code == 0, r.output + r.stderr
    assert "alice  5 / 5" in r.output


@pytest.mark.parametrize("command", ["show", "check", "grade", "test-exercise"])
def test_trial_23_undeclared_variable_stops_every_command_with_one_line(tmp_path, command):
    folder = write(tmp_path, SPEC.replace(*TYPO))
    subs = _answers(tmp_path)
    course = ["--exercises-dir", folder.parent]
    args = {"show": ["show", "tanh-grad-sym", *course],
            "check": ["check", subs / "alice" / "hw.py", "--exercise", "tanh-grad-sym", *course],
            "grade": ["grade", subs, "--exercise", "tanh-grad-sym", "--out", tmp_path / "out", *course],
            "test-exercise": ["test-exercise", folder]}[command]
    r = _run(*args)
    assert r.exit_code == 2, r.output + r.stderr
    assert r.stderr.strip().splitlines() == [
        f"Error: {folder / 'spec.toml'}: [symbolic] variables: the reference uses y, which is not declared "
        "(variables: yy, z)"]
    assert not (tmp_path / "out" / "grades.csv").exists()


def test_show_prints_the_unused_variable_warning(tmp_path):
    folder = write(tmp_path, SPEC.replace('variables = ["z", "y"]', 'variables = ["z", "y", "w"]'))
    (folder / "statement.md").write_text("# tanh + squared error\n")
    r = _run("show", "tanh-grad-sym", "--exercises-dir", folder.parent)
    assert r.exit_code == 0, r.output + r.stderr
    assert r.stderr.splitlines() == [
        f"warning: {folder / 'spec.toml'}: [symbolic] variables: w is declared but the reference never uses it "
        "(an answer can be right only if it cancels out)"]


# --------------------------------------------------------------------------- the evaluator's failure


def _line_of(source: Path, code: str) -> int:
    return next(i for i, line in enumerate(source.read_text().splitlines(), 1) if line.strip() == code)


def test_an_evaluator_failure_is_one_readable_line_not_a_dict(tmp_path, runner):
    """What trial #23 printed before the probe caught it: the evaluator's KeyError for a
    reference symbol it was not given, as a raw ``{'type': ..., 'frames': [...]}``."""
    ex = load_exercise(write(tmp_path, SPEC.replace(*TYPO)))  # the probe is not run here
    payload = symbolic_grade.payload_for(ex, "1 - tanh(z)**2", seed=1)
    with pytest.raises(GraderError) as err:
        symbolic_grade.run_evaluator(runner, payload, ex)
    line = _line_of(ROOT / "graders" / "symbolic.py", "return env[expr]")
    assert str(err.value) == (f"the symbolic evaluator failed: KeyError: y "
                              f"(dlgrade_symbolic.py, line {line}, in numeric_value)")


def test_grade_prints_an_evaluator_failure_as_one_line(tmp_path, monkeypatch):
    from dlgrade.graders import spec_probe

    folder = write(tmp_path, SPEC.replace(*TYPO))
    monkeypatch.setattr(spec_probe, "probe_exercise", lambda ex: ())  # as before the probe knew
    subs = _answers(tmp_path)
    r = _run("grade", subs, "--exercise", "tanh-grad-sym", "--out", tmp_path / "out", "--jobs", "1",
             "--exercises-dir", folder.parent)
    assert r.exit_code == 3, r.output + r.stderr
    [error] = [x for x in r.stderr.splitlines() if x.startswith("Error:")]
    line = _line_of(ROOT / "graders" / "symbolic.py", "return env[expr]")
    assert error.startswith("Error: dlgrade itself failed while grading carol (tanh-grad-sym): the symbolic "
                            f"evaluator failed: KeyError: y (dlgrade_symbolic.py, line {line}, in numeric_value); ")
    assert not re.search(r"[{}]", error)


@pytest.mark.parametrize("error, line", [
    ({"type": "KeyError", "message": "'y'", "line": 663, "line_file": "dlgrade_symbolic.py",
      "frames": [{"line": 880, "function": "evaluate", "code": "x", "file": "dlgrade_symbolic.py"},
                 {"line": 663, "function": "numeric_value", "code": "return env[expr]",
                  "file": "dlgrade_symbolic.py"}]},
     "KeyError: 'y' (dlgrade_symbolic.py, line 663, in numeric_value)"),
    ({"type": "SyntaxError", "message": "invalid syntax", "line": 3, "line_file": "a.py", "frames": []},
     "SyntaxError: invalid syntax (a.py, line 3)"),
    ({"type": "ValueError", "message": "two\n  lines"}, "ValueError: two lines"),
    ({"type": "MemoryError", "message": ""}, "MemoryError"),
    ({}, "no details"),
    (None, "no details"),
    ("status 'exit'", "status 'exit'"),
])
def test_a_worker_error_record_is_one_line(error, line):
    assert worker_error_line(error) == line
