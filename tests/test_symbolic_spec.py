"""The [symbolic] table of a spec (graders/spec.py): aliases and the rest checked when the
spec loads, so a course author's typo is one line naming the file and the key."""
import subprocess
import sys
from pathlib import Path

import pytest

from dlgrade.graders.spec import SpecError, load_exercise

ROOT = Path(__file__).parent.parent
FIX = ROOT / "tests" / "fixtures"
BASE = '''id = "course-bce"
title = "sigmoid + BCE, a course's copy"
framework = "symbolic"
entry = "sigmoid_bce_grad"
reference = "dlgrade.reference.sigmoid_bce:derivative"
mistakes = "dlgrade.reference.sigmoid_bce:MISTAKES"

[symbolic]
variables = ["z", "y"]
discrete = {{ y = [0, 1] }}
{extra}

[[checks]]
name = "parses"
kind = "symbolic-parse"
points = 2

[[checks]]
name = "equivalent"
kind = "symbolic-equivalence"
points = 8
'''


def write_spec(folder: Path, extra: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.toml").write_text(BASE.format(extra=extra), encoding="utf-8")
    return folder


def test_the_core_exercise_declares_p_as_an_alias():
    ex = load_exercise(ROOT / "exercises" / "sigmoid-bce-grad")
    assert ex.symbolic["aliases"] == {"p": "sigmoid(z)"}
    assert "p" not in ex.symbolic["hints"]


@pytest.mark.parametrize("extra, problem", [
    ('aliases = { p = "sigmod(z)" }',
     "aliases.p: 'sigmod(z)' cannot be read: 'sigmod' is not a known function; did you mean 'sigmoid'? (known: "
     "sigmoid, σ, sigma, expit, logistic, exp, log, ln, log1p, expm1, softplus, sqrt, tanh, sinh, cosh, abs, sign, "
     "pow, max, min, Heaviside, Piecewise, where)"),
    ('aliases = { a = "tahn(z)" }',  # trial #24
     "aliases.a: 'tahn(z)' cannot be read: 'tahn' is not a known function; did you mean 'tanh'? (known: "
     "sigmoid, σ, sigma, expit, logistic, exp, log, ln, log1p, expm1, softplus, sqrt, tanh, sinh, cosh, abs, sign, "
     "pow, max, min, Heaviside, Piecewise, where)"),
    ('aliases = { p = "sigmoid(x)" }',
     "aliases.p: 'sigmoid(x)' cannot be read: unknown symbol 'x': the answer must be an expression in z and "
     "y only"),
    ('aliases = { p = "sigmoid(z" }', "aliases.p: 'sigmoid(z' cannot be read: a bracket is never closed"),
    ('aliases = { z = "sigmoid(z)" }', "aliases.z: 'z' is already a variable"),
    ('aliases = { exp = "sigmoid(z)" }',
     "aliases.exp: 'exp' already means something in an answer (a function or a constant)"),
    ('aliases = { e = "sigmoid(z)" }', "aliases.e: 'e' already means something in an answer (a function or a "
                                       "constant)"),
    ('aliases = { "p q" = "sigmoid(z)" }', "aliases.p q: 'p q' is not a name an answer can use"),
    ('aliases = { p = 1 }', 'aliases must be a table of name = "expression"'),
    ('alias = { p = "sigmoid(z)" }',
     "unknown key 'alias'; did you mean 'aliases'? (known: aliases, discrete, hints, name, numeric_s, simplify_s, "
     "variables)"),
    ('nmae = "dL/dz"',  # trial #25
     "unknown key 'nmae'; did you mean 'name'? (known: aliases, discrete, hints, name, numeric_s, simplify_s, "
     "variables)"),
    ('varaibles = ["z", "y"]',
     "unknown key 'varaibles'; did you mean 'variables'? (known: aliases, discrete, hints, name, numeric_s, "
     "simplify_s, variables)"),
    ('timeout = 3', "unknown key 'timeout' (known: aliases, discrete, hints, name, numeric_s, simplify_s, variables)"),
    ('simplify_s = 0', "simplify_s must be a positive number of seconds"),
    ('discrete = { t = [0, 1] }', None),  # a duplicate key: TOML itself refuses it
])
def test_a_broken_symbolic_table_is_one_error_naming_file_and_key(tmp_path, extra, problem):
    folder = write_spec(tmp_path / "ex", extra)
    with pytest.raises(SpecError) as info:
        load_exercise(folder)
    message = str(info.value)
    assert "\n" not in message
    if problem is None:
        assert message.startswith(f"{folder / 'spec.toml'}: ")
    else:
        assert message == f"{folder / 'spec.toml'}: [symbolic] {problem}"


def test_an_alias_also_in_hints_is_accepted_in_answers(tmp_path, runner):
    """A spec written before aliases were read kept p in hints; the alias wins."""
    from dlgrade.graders.api import grade_one
    from dlgrade.graders.spec import get_exercise
    from dlgrade.graders.submission import Submission

    course = tmp_path / "course"
    write_spec(course / "bce", 'aliases = { p = "sigmoid(z)" }\nhints = { p = "sigmoid(z)", a = "sigmoid(z)" }')
    ex = get_exercise("course-bce", (str(course),))
    answer = tmp_path / "a.txt"
    for text, score in [("p - y", 10), ("a - y", 0)]:
        answer.write_text(text + "\n")
        r = grade_one(ex, Submission(answer), runner, direct_text=True)
        assert r.score == score, [c.message for c in r.checks]
    assert r.checks[0].message == ("could not read the expression: unknown symbol 'a': the answer must be an "
                                   "expression in z and y only (p may stand for sigmoid(z); write sigmoid(z) "
                                   "for a)")


def test_variables_and_discrete_values_are_checked(tmp_path):
    spec = BASE.replace('variables = ["z", "y"]\ndiscrete = {{ y = [0, 1] }}\n', '')
    for extra, problem in [
        ('variables = ["z", "y"]\ndiscrete = { t = [0, 1] }', "discrete.t: 't' is not one of the variables (z, y)"),
        ('variables = ["z", "y"]\ndiscrete = { y = [] }', "discrete.y must be a list of numbers, like [0, 1]"),
        ('variables = ["z", "y"]\ndiscrete = { y = [true, false] }',
         "discrete.y must be a list of numbers, like [0, 1]"),
        ('variables = "z"', 'variables must be a list of names, like ["z", "y"]'),
        ('variables = ["z", "exp"]',
         "variables: 'exp' cannot be a variable (not a name, or a function or constant an answer may use)"),
    ]:
        (tmp_path / "spec.toml").write_text(spec.format(extra=extra), encoding="utf-8")
        with pytest.raises(SpecError) as info:
            load_exercise(tmp_path)
        assert str(info.value) == f"{tmp_path / 'spec.toml'}: [symbolic] {problem}"


def test_symbolic_table_only_for_symbolic_exercises(tmp_path):
    (tmp_path / "spec.toml").write_text(
        'id="x"\ntitle="t"\nframework="numpy"\nentry="f"\n[symbolic]\nvariables=["z"]\n'
        '[[checks]]\nkind="values"\npoints=1\n')
    with pytest.raises(SpecError, match=r'\[symbolic\] is only for framework = "symbolic"$'):
        load_exercise(tmp_path)


def test_a_course_alias_typo_is_a_usage_error_before_anyone_is_graded(tmp_path):
    course = tmp_path / "course"
    write_spec(course / "bce", 'aliases = { p = "sigmoid(z" }')
    r = subprocess.run([sys.executable, "-m", "dlgrade", "check", str(FIX / "symbolic/correct_sigmoid.txt"),
                        "--exercise", "course-bce", "--exercises-dir", str(course)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        f"Error: {course / 'bce' / 'spec.toml'}: [symbolic] aliases.p: 'sigmoid(z' cannot be read: a bracket "
        "is never closed")
    assert "Traceback" not in r.stderr


def test_a_course_alias_is_used_by_its_own_exercise(tmp_path, runner):
    from dlgrade.graders.api import grade_one
    from dlgrade.graders.spec import get_exercise
    from dlgrade.graders.submission import Submission

    course = tmp_path / "course"
    write_spec(course / "bce", 'aliases = { s = "1/(1 + exp(-z))", q = "1 - s" }\nname = "dL/dz"')
    with pytest.raises(SpecError, match=r"aliases\.q: '1 - s' cannot be read: unknown symbol 's'"):
        load_exercise(course / "bce")
    write_spec(course / "bce", 'aliases = { s = "1/(1 + exp(-z))", q = "1 - sigmoid(z)" }\nname = "dL/dz"')
    answer = tmp_path / "a.txt"
    answer.write_text("s*(1 - y) - y*q\n")
    ex = get_exercise("course-bce", (str(course),))
    r = grade_one(ex, Submission(answer), runner, direct_text=True)
    assert r.score == 10, [c.message for c in r.checks]
    assert r.checks[0].message == "parsed as s*(1 - y) - y*q, with s = 1/(1 + exp(-z)) and q = 1 - sigmoid(z)"
    answer.write_text("x - y\n")
    r = grade_one(ex, Submission(answer), runner, direct_text=True)
    assert r.checks[0].message == (
        "could not read the expression: unknown symbol 'x': the answer must be an expression in z and y only "
        "(s may stand for 1/(1 + exp(-z)) and q for 1 - sigmoid(z))")


def test_checking_aliases_when_specs_load_does_not_import_sympy():
    """The catalogue loads for every command (a softmax check too): reading the aliases
    must not cost SymPy's import."""
    code = ("import sys\nfrom dlgrade.graders.spec import catalogue\n"
            "assert catalogue()['sigmoid-bce-grad'].symbolic['aliases'] == {'p': 'sigmoid(z)'}\n"
            "from dlgrade.graders import symbolic_text as t\n"
            "assert t.read_aliases({'p': 'sigmoid(z)'}, ('z', 'y'))['p'][0] == 'call'\n"
            "print('sympy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.split() == ["False"], out.stderr
