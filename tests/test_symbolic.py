"""sigmoid-bce-grad end to end: every equivalent form gets full marks in every container,
each classic mistake its diagnosis, hostile and pathological input a bounded, clear result."""
import re
import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from dlgrade.graders import symbolic_grade
from dlgrade.graders.api import grade_one
from dlgrade.graders.sandbox import Limits
from dlgrade.graders.spec import get_exercise
from dlgrade.graders.submission import Submission

IN_A_CONDITION = "a condition, as in Piecewise((a, z > 0), (b, True)), where(z > 0, a, b) or a if z > 0 else b"
KNOWN = ("(known: sigmoid, σ, sigma, expit, logistic, exp, log, ln, log1p, expm1, softplus, sqrt, tanh, sinh, "
         "cosh, abs, sign, pow, max, min, Heaviside, Piecewise, where)")
FIXTURES = Path(__file__).parent / "fixtures" / "symbolic"
COURSE = FIXTURES / "exercises"
ROOT = Path(__file__).parent.parent

EXACT = "equal to dL/dz for every real z and y in {0, 1} (shown by simplification)"
NOT_CHECKED = "not checked: the expression could not be read"

EQUIVALENT_FORMS = [
    "sigmoid(z) - y",
    "1/(1+exp(-z)) - y",
    "σ(z) - y",
    r"\sigma(z) - y",
    r"\frac{1}{1+e^{-z}} - y",
    r"$\frac{e^z}{1+e^z} - y$",
    "-(y - sigmoid(z))",
    "(1-y)*sigmoid(z) - y*(1-sigmoid(z))",
    "(1 + tanh(z/2))/2 - y",
    "exp(z)/(exp(z)+1) - y",
    "y*(sigmoid(z)-1) + (1-y)*sigmoid(z)",
    # and more, in the ways students write them
    "1/(1+e^(-z)) - y",
    "0.5*(1 + tanh(0.5*z)) - y",
    "1 - y - 1/(1 + exp(z))",
    "(exp(z) - y*(1 + exp(z)))/(1 + exp(z))",
    "exp(-log(1 + exp(-z))) - y",
    "-y*(1-σ(z)) + (1-y)σ(z)",
    "σ(z) − y",
    "np.exp(z)/(1 + np.exp(z)) - y",
    "torch.sigmoid(z) - y",
    "sigmoid(z) - y**2",
    "dL/dz = sigmoid(z) - y",
    r"\frac{1}{1+\exp(-z)}-y",
    r"\frac{1}{1+\exp\left(-z\right)} - y",
    r"\frac{1}{1+\mathrm{e}^{-z}} - y",
    r"\operatorname{sigmoid}(z) - y",
    r"\sigma(z)(1-y) - y(1-\sigma(z))",
    r"\frac{1}{2}\left(1 + \tanh\frac{z}{2}\right) - y",
    r"\frac{\partial L}{\partial z} = \sigma(z) - y",
    r"-\left(y - \sigma\left(z\right)\right)",
    r"\frac{e^{z} - y\left(1 + e^{z}\right)}{1 + e^{z}}",
    r"$$\frac{1}{1+e^{-z}} - y$$",
    "\\begin{equation}\n  \\frac{\\partial L}{\\partial z} = \\sigma(z) - y \\\\\n\\end{equation}",
    "# my answer\nsigmoid(z) - y   # = dL/dz",
    "Sigmoid(z) - y",
]


def _grade(path: Path, runner, exercise="sigmoid-bce-grad", student="student-1", dirs=()):
    ex = get_exercise(exercise, dirs)
    sub = Submission(path, student=student)
    return grade_one(ex, sub, runner, direct_text=path.suffix in (".txt", ".tex"))


def _write(tmp_path: Path, text: str, name: str = "sigmoid_bce_grad") -> Path:
    suffix = ".tex" if "\\" in text or "{" in text else ".txt"
    path = tmp_path / f"{name}{suffix}"
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _assert_full_marks(r):
    assert r.status == "graded", r.message
    assert r.score == r.max_score == 10, [c.message for c in r.checks]
    assert r.diagnoses == ()
    assert [c.name for c in r.checks] == ["parses", "equivalent to dL/dz"]
    assert r.extra["symbolic"]["needs_review"] is False


@pytest.mark.parametrize("text", EQUIVALENT_FORMS)
def test_every_equivalent_form_gets_full_marks(tmp_path, runner, text):
    r = _grade(_write(tmp_path, text), runner)
    _assert_full_marks(r)
    assert r.checks[1].message == EXACT
    assert r.extra["symbolic"]["method"] == "simplify"


@pytest.mark.parametrize("name", [
    "correct_sigmoid.txt", "correct_frac.tex", "correct_dollars.tex", "correct_display_math.tex",
    "correct_sigma_string.py", "correct_python_string.py", "correct_notebook.ipynb",
    "correct_computed.py", "correct_fstring.py", "correct_notebook_computed.ipynb",
    "correct_latex_not_raw.py", "correct_alias_p.txt",
])
def test_every_container_gets_full_marks(runner, name):
    _assert_full_marks(_grade(FIXTURES / name, runner))


def test_correct_answer_messages_and_extra(runner):
    r = _grade(FIXTURES / "correct_frac.tex", runner)
    parses, equal = r.checks
    assert parses.message == "parsed as 1/(1 + exp(-z)) - y"
    assert parses.details == {"syntax": "latex", "parsed": "1/(1 + exp(-z)) - y"}
    assert equal.message == EXACT
    sym = r.extra["symbolic"]
    assert set(sym) == {"student_text", "student_latex", "student_mathml", "reference_latex",
                        "reference_mathml", "method", "counterexample", "needs_review"}
    assert sym["student_text"] == "\\frac{1}{1+e^{-z}} - y\n"
    assert sym["student_latex"] == r"\frac{1}{1 + e^{- z}} - y"
    assert sym["reference_latex"] == r"\sigma\left(z\right) - y"
    assert sym["method"] == "simplify" and sym["counterexample"] is None
    for key in ("student_mathml", "reference_mathml"):
        assert ET.fromstring(sym[key]).tag == "{http://www.w3.org/1998/Math/MathML}math"
    json.dumps(r.to_dict())  # the whole result is plain JSON


def test_a_python_string_is_read_without_running_the_file(runner):
    # the file imports a module that does not exist and prints: run, it would fail and show output
    r = _grade(FIXTURES / "correct_python_string.py", runner)
    _assert_full_marks(r)
    assert r.output == ""
    computed = _grade(FIXTURES / "correct_computed.py", runner)
    assert computed.output == "computing the answer\n"  # this one had to run (in the sandbox)


# --------------------------------------------------------------------------- mistakes


@pytest.mark.parametrize("name, diagnosis, message", [
    ("sign_flipped.txt", "sign-flipped",
     "not equal to dL/dz: at z = 0, y = 0 your expression gives -0.5, but dL/dz is 0.5"),
    ("missing_chain_rule.tex", "missing-chain-rule",
     "not equal to dL/dz: at z = 0, y = 0 your expression gives 2, but dL/dz is 0.5"),
    ("missing_chain_rule_unsimplified.py", "missing-chain-rule",
     "not equal to dL/dz: at z = 0, y = 0 your expression gives 2, but dL/dz is 0.5"),
    ("sigmoid_derivative_only.tex", "sigmoid-derivative-only",
     "not equal to dL/dz: at z = 0, y = 0 your expression gives 0.25, but dL/dz is 0.5"),
    ("mse_gradient_half.txt", "mse-gradient",
     "not equal to dL/dz: at z = 0, y = 0 your expression gives 0.125, but dL/dz is 0.5"),
    ("mse_gradient_no_half.py", "mse-gradient",
     "not equal to dL/dz: at z = 0, y = 0 your expression gives 0.25, but dL/dz is 0.5"),
])
def test_each_classic_mistake_is_diagnosed(runner, name, diagnosis, message):
    r = _grade(FIXTURES / name, runner)
    assert r.status == "graded"
    assert r.diagnoses == (diagnosis,)
    parses, equal = r.checks
    assert parses.passed and not equal.passed
    assert equal.message == message
    assert equal.diagnoses == (diagnosis,)
    assert r.score == 2
    sym = r.extra["symbolic"]
    assert sym["method"] == "numeric" and sym["needs_review"] is False
    assert sym["counterexample"]["point"] == {"z": 0, "y": 0}


@pytest.mark.parametrize("text, diagnosis", [
    ("-(sigmoid(z) - y)", "sign-flipped"),
    (r"\frac{y - 1}{1 + e^{-z}} + y\left(1 - \frac{1}{1+e^{-z}}\right)", "sign-flipped"),
    ("(σ(z) - y)/(σ(z) - σ(z)^2)", "missing-chain-rule"),
    ("-y/sigmoid(z) + (1 - y)/(1 - sigmoid(z))", "missing-chain-rule"),
    ("exp(-z)/(1 + exp(-z))^2", "sigmoid-derivative-only"),
    (r"\sigma(z)\left(1-\sigma(z)\right)", "sigmoid-derivative-only"),
    ("(sigmoid(z) - y)*exp(-z)/(1 + exp(-z))**2", "mse-gradient"),
    ("2(σ(z) - y)σ(z)(1 - σ(z))", "mse-gradient"),
])
def test_mistakes_are_diagnosed_whatever_their_form(tmp_path, runner, text, diagnosis):
    r = _grade(_write(tmp_path, text), runner)
    assert r.diagnoses == (diagnosis,)
    assert r.score == 2


@pytest.mark.parametrize("text", ["sigmoid(z)", "sigmoid(z) - 2*y", "1 - y", "sigmoid(-z) - y",
                                  "σ(z) - y + 1e-9"])
def test_other_wrong_answers_fail_without_a_guessed_diagnosis(tmp_path, runner, text):
    r = _grade(_write(tmp_path, text), runner)
    assert r.checks[0].passed and not r.checks[1].passed
    assert r.diagnoses == ()
    assert r.extra["symbolic"]["counterexample"] is not None


def test_counterexample_message_shows_enough_digits(tmp_path, runner):
    r = _grade(_write(tmp_path, "sigmoid(z) - y + 1e-9"), runner)
    assert r.checks[1].message == ("not equal to dL/dz: at z = 0, y = 0 your expression gives "
                                   "0.500000001, but dL/dz is 0.5")


def test_no_label_counterexample_is_the_first_distinguishing_point(runner):
    r = _grade(FIXTURES / "wrong_no_label.txt", runner)
    assert r.checks[1].message == ("not equal to dL/dz: at z = 0, y = 1 your expression gives 0.5, "
                                   "but dL/dz is -0.5")
    assert r.extra["symbolic"]["counterexample"] == {"point": {"z": 0, "y": 1}, "student": 0.5,
                                                     "expected": -0.5}


@pytest.mark.parametrize("text, name", [("y_hat - y", "y_hat"), (r"\hat{y} - y", "ŷ"), ("a - y", "a")])
def test_the_prediction_written_as_a_symbol_gets_a_hint(tmp_path, runner, text, name):
    r = _grade(_write(tmp_path, text), runner)
    assert r.checks[0].message == (f"could not read the expression: unknown symbol '{name}': the answer "
                                   f"must be an expression in z and y only (p may stand for sigmoid(z); "
                                   f"write sigmoid(z) for {name})")


def test_an_unknown_symbol_is_named_with_the_allowed_ones(runner):
    r = _grade(FIXTURES / "unknown_symbol_x.txt", runner)
    parses, equal = r.checks
    assert parses.message == ("could not read the expression: unknown symbol 'x': the answer must be an "
                              "expression in z and y only (p may stand for sigmoid(z))")
    assert equal.message == NOT_CHECKED
    assert r.score == 0 and r.diagnoses == ()
    assert r.extra["symbolic"]["method"] is None
    assert r.extra["symbolic"]["reference_latex"] == r"\sigma\left(z\right) - y"


# --------------------------------------------------------------------------- the statement's names, cases


@pytest.mark.parametrize("text", [
    "p - y", "-(y - p)", "p*(1 - y) - y*(1 - p)", "p(1-y) - y(1-p)", r"\frac{e^z}{1+e^z} - y + p - p",
    r"p - y", r"\mathrm{p} - y", "(1-y)p - y(1-p)",
])
def test_the_statements_own_names_count_as_written(tmp_path, runner, text):
    r = _grade(_write(tmp_path, text), runner)
    _assert_full_marks(r)
    assert r.checks[1].message == EXACT


def test_an_alias_is_shown_as_written_and_named_in_the_parse_message(runner):
    r = _grade(FIXTURES / "correct_alias_p.txt", runner)
    _assert_full_marks(r)
    parses = r.checks[0]
    assert parses.message == "parsed as p - y, with p = sigmoid(z)"
    assert parses.details == {"syntax": "python", "parsed": "p - y", "aliases": {"p": "sigmoid(z)"}}
    assert r.extra["symbolic"]["student_latex"] == "p - y"


@pytest.mark.parametrize("text", [
    "Piecewise((sigmoid(z) - 1, Eq(y, 1)), (sigmoid(z), True))",
    "Piecewise((sigmoid(z), Eq(y, 0)), (sigmoid(z) - 1, True))",
    "Piecewise((sigmoid(z) - 1, y > 0.5), (sigmoid(z), y < 0.5))",
    "Piecewise((p - 1, Eq(y, 1)), (p, Ne(y, 1)))",
    "sympy.Piecewise((sigmoid(z) - 1, And(y >= 1, True)), (sigmoid(z), Or(y < 1, False)))",
    "p - 1 if y == 1 else p",
    "sigmoid(z) - 1 if y == 1 else sigmoid(z) if y == 0 else 7",
    "np.where(y == 1, p - 1, p)",
    "torch.where(y > 0, sigmoid(z) - 1, sigmoid(z))",
    "sigmoid(z) - Heaviside(y - 1/2)",
    "sigmoid(z) - heaviside(y - 0.5, 0)",
    "sigmoid(z) - max(y, 0)",
    "sigmoid(z) - Min(y, 1)",
    "Piecewise((sigmoid(z) - y, z > 0), (1/(1 + exp(-z)) - y, True))",
    "Piecewise((1 - y - 1/(1 + exp(z)), z >= 3), (sigmoid(z) - y, True))",
    "sigmoid(z) - y + Heaviside(z) - Heaviside(z)",
    "sigmoid(z) - y + max(z, 0) - max(0, z)",
    "sigmoid(z) - y + 0*Heaviside(z - 5)",
    "Piecewise((sigmoid(z) - y, not (z < 0)), (sigmoid(z) - y, True))",
])
def test_cases_equal_to_the_derivative_get_full_marks(tmp_path, runner, text):
    r = _grade(_write(tmp_path, text), runner)
    _assert_full_marks(r)


@pytest.mark.parametrize("name", ["correct_piecewise_sympy.py", "correct_heaviside.txt",
                                  "correct_where_notebook_style.py", "correct_minus_grouping.txt"])
def test_case_fixtures_get_full_marks(runner, name):
    _assert_full_marks(_grade(FIXTURES / name, runner))


def test_kinked_but_equal_answers_are_proved_or_decided_at_every_case(tmp_path, runner):
    r = _grade(_write(tmp_path, "sigmoid(abs(z))*sign(z) + Heaviside(-z) - y"), runner)
    _assert_full_marks(r)
    assert r.checks[1].message == EXACT  # case by case
    r = _grade(_write(tmp_path, "max(sigmoid(z), 0.5) + min(sigmoid(z), 0.5) - 0.5 - y"), runner)
    _assert_full_marks(r)  # its boundary σ(z) = 1/2 is found by bisection and sampled on both sides
    assert r.checks[1].message == ("equal to dL/dz at all 70 test points (z from -300 to 300, y in {0, 1}); "
                                   "simplification could not confirm it within its time limit")


@pytest.mark.parametrize("text, message", [
    ("sigmoid(z) - y + 1 if 4.1 < z < 4.2 else sigmoid(z) - y",
     "not equal to dL/dz: at z = 4.101, y = 0 your expression gives 1.98371, but dL/dz is 0.983714"),
    ("sigmoid(z) - y + Heaviside(z - 5) - Heaviside(z - 5.5)",
     "not equal to dL/dz: at z = 5.001, y = 0 your expression gives 1.99331, but dL/dz is 0.993314"),
    ("sigmoid(z) - y + max(0, 1 - (z - 5)**2)",
     "not equal to dL/dz: at z = 4.001, y = 0 your expression gives 0.98403, but dL/dz is 0.982031"),
    ("Piecewise((sigmoid(z) - 1, Eq(y, 1)))",
     "not equal to dL/dz: at z = 0, y = 0 your expression gives undefined (no case of Piecewise applies), "
     "but dL/dz is 0.5"),
])
def test_a_mistake_in_one_narrow_case_is_found_for_every_student(tmp_path, runner, text, message):
    """The boundaries of each case are sampled on both sides, the same points for every
    student: a case no fixed point falls in is not left to the random points' luck."""
    path = _write(tmp_path, text)
    for student in [f"student-{i}" for i in range(20)]:
        r = _grade(path, runner, student=student)
        assert r.score == 2 and r.diagnoses == (), student
        assert r.checks[1].message == message, student


@pytest.mark.parametrize("name, diagnosis, message", [
    ("piecewise_sign_flipped.py", ("sign-flipped",),
     "not equal to dL/dz: at z = 0, y = 0 your expression gives -0.5, but dL/dz is 0.5"),
    ("piecewise_one_branch_wrong.txt", (),
     "not equal to dL/dz: at z = 0, y = 0 your expression gives -0.5, but dL/dz is 0.5"),
])
def test_mistakes_written_in_cases_are_diagnosed_by_the_evidence(runner, name, diagnosis, message):
    r = _grade(FIXTURES / name, runner)
    assert r.status == "graded" and r.score == 2
    assert r.diagnoses == diagnosis
    assert r.checks[1].message == message


@pytest.mark.parametrize("text, reason", [
    ("sigmoid(z) - y*(z > 0)", f"comparisons are only allowed in {IN_A_CONDITION}"),
    ("sigmoid(z) - Eq(y, 1)", f"Eq(...) is only allowed as {IN_A_CONDITION}"),
    ("Piecewise((sigmoid(z), y))", "'y' is not a condition: write a comparison such as y == 1 or z > 0"),
    ("Piecewise(sigmoid(z), True)", "each case of Piecewise is a pair (value, condition), like (z, z > 0)"),
    ("Piecewise((sigmoid(z), y is 1), (0, True))", "'is' and 'in' are not allowed"),
    ("np.where(y == 1, z)", "np.where takes 3 arguments (condition, value if true, value if false), not 2"),
    ("Heaviside(z, 1, 2)", "Heaviside takes 1 or 2 arguments, not 3"),
    ("Piecewise((__import__('os'), True))", "names with double underscores ('__import__') are not allowed"),
])
def test_cases_written_wrongly_are_refused_with_a_reason(tmp_path, runner, text, reason):
    r = _grade(_write(tmp_path, text), runner)
    assert r.score == 0
    assert r.checks[0].message == f"could not read the expression: {reason}"


# --------------------------------------------------------------------------- not a string


@pytest.mark.parametrize("name, message", [
    ("not_a_string.py", 'sigmoid_bce_grad is a number, not a string: write the expression in quotes, '
                        'e.g. sigmoid_bce_grad = "sigmoid(z) - y"'),
    ("function_not_string.py", 'sigmoid_bce_grad is a function, not a string: write the expression in '
                               'quotes, e.g. sigmoid_bce_grad = "sigmoid(z) - y"'),
    ("computed_raises.py", "loading the submission raised IndexError: list index out of range (line 2)"),
])
def test_an_answer_that_is_not_a_string_is_an_error_result(runner, name, message):
    r = _grade(FIXTURES / name, runner)
    assert r.status == "error"
    assert r.message == message
    assert r.score == 0


# --------------------------------------------------------------------------- hostile input


INJECTIONS = [
    ("__import__('os').system('touch {target}')",
     "names with double underscores ('__import__') are not allowed"),
    ("(lambda: __import__('os').system('touch {target}'))()",
     "names with double underscores ('__import__') are not allowed"),
    ("(lambda: open('{target}', 'w'))()", "lambda is not allowed"),
    ("z.__class__", "names with double underscores ('__class__') are not allowed"),
    ("().__class__.__bases__[0].__subclasses__()",
     "names with double underscores ('__subclasses__') are not allowed"),
    ('eval("open(\'{target}\', \'w\')")',
     f"'eval' is not a known function {KNOWN}"),
    ("exec('import os')",
     f"'exec' is not a known function {KNOWN}"),
    ("getattr(z, 'x')",
     f"'getattr' is not a known function {KNOWN}"),
    ("open('{target}', 'w').write('x')", "attribute access ('.write') is not allowed"),
    ("sigmoid(z).func", "attribute access ('.func') is not allowed"),
    ("Symbol('z')", f"'Symbol' is not a known function {KNOWN}"),
    ("sympify('z')", f"'sympify' is not a known function {KNOWN}"),
    ("z[0]", "indexing with [...] is not allowed"),
    ("f'{{z}}'", "unexpected character \"'\" at position 2"),  # braces: read as LaTeX
]


@pytest.mark.parametrize("template, reason", INJECTIONS)
def test_code_injection_is_refused_with_no_effect(tmp_path, runner, template, reason):
    target = tmp_path / "pwned"
    r = _grade(_write(tmp_path, template.format(target=target), name="attack"), runner)
    assert r.status == "graded" and r.score == 0
    assert r.checks[0].message == f"could not read the expression: {reason}"
    assert r.checks[1].message == NOT_CHECKED
    assert not target.exists()


def test_injection_fixtures_have_no_effect(runner):
    for name, target in [("injection_import.txt", "/tmp/dlgrade-pwned-symbolic"),
                         ("injection_in_string.py", "/tmp/dlgrade-pwned-symbolic-py")]:
        Path(target).unlink(missing_ok=True)
        r = _grade(FIXTURES / name, runner)
        assert r.checks[0].message == ("could not read the expression: names with double underscores "
                                       "('__import__') are not allowed")
        assert r.score == 0
        assert not Path(target).exists()


# --------------------------------------------------------------------------- pathological input


def test_pathological_expressions_are_bounded_and_the_next_grading_works(tmp_path, runner):
    cases = {
        "exp(exp(exp(exp(exp(exp(z))))))": (
            2, "not equal to dL/dz: at z = -3.7, y = 0 your expression gives 6.747891e+4882660, but "
               "dL/dz is 0.024127"),
        "z**(10**100)": (
            0, "could not read the expression: a constant exponent is too large (1e+100; the limit is 1000)"),
        "+".join(["z"] * 10_000): (
            0, "could not read the expression: the expression is too long (19999 characters; the limit "
               "is 2000)"),
        "(" * 100 + "z" + ")" * 100: (
            0, "could not read the expression: the expression is nested too deeply (more than 60 levels)"),
        "9**9**9**9": (
            0, "could not read the expression: a constant exponent is too large (3.87e+08; the limit "
               "is 1000)"),
    }
    for text, (score, message) in cases.items():
        t0 = time.perf_counter()
        r = _grade(_write(tmp_path, text, name="patho"), runner)
        assert time.perf_counter() - t0 < 10
        assert r.status == "graded" and r.score == score
        failed = next(c for c in r.checks if not c.passed)
        assert failed.message == message
    _assert_full_marks(_grade(FIXTURES / "correct_sigmoid.txt", runner))


def test_ill_conditioned_correct_answer_is_decided_numerically(tmp_path, runner):
    """Simplification gets no time (a course's tight budget); numeric evaluation, rechecked
    at more digits where 40 cancel badly, still finds the answer equal everywhere."""
    text = "sigmoid(z) - y + (z+1)**300*(z-1)**300 - (z**2-1)**300"
    r = _grade(_write(tmp_path, text), runner, exercise="sigmoid-bce-grad-tight", dirs=(str(COURSE),))
    assert r.score == 10 and r.diagnoses == ()
    assert r.checks[1].message == (
        "equal to dL/dz at all 66 test points (z from -300 to 300, y in {0, 1}); simplification could "
        "not confirm it within its time limit")
    assert r.extra["symbolic"]["method"] == "numeric"


def test_undecided_answer_is_flagged_for_review_with_no_points(tmp_path, runner):
    text = "sigmoid(z) - y + log(2*sigmoid(z)) - log(2) - log(sigmoid(z))"
    r = _grade(_write(tmp_path, text), runner, exercise="sigmoid-bce-grad-no-time", dirs=(str(COURSE),))
    assert r.status == "graded"
    parses, equal = r.checks
    assert parses.passed and not equal.passed and equal.score == 0
    assert equal.message == ("could not decide whether this equals dL/dz (numeric evaluation did not "
                             "finish in time); flagged for review")
    assert equal.details["needs_review"] is True
    sym = r.extra["symbolic"]
    assert sym["needs_review"] is True and sym["method"] == "undetermined"
    assert r.diagnoses == ()
    # with the real budgets the same answer is simply correct
    _assert_full_marks(_grade(_write(tmp_path, text), runner))


@pytest.mark.slow
def test_an_evaluation_past_the_wall_clock_limit_is_killed_and_flagged(tmp_path, runner, monkeypatch):
    """The evaluator's own budgets normally stop it in time; if they did not (here they are
    switched off), the job's wall-clock limit kills it and the answer is flagged for review."""
    ex = get_exercise("sigmoid-bce-grad")
    ex = replace(ex, limits=Limits(wall_s=2, cpu_s=2))
    original = symbolic_grade.payload_for

    def no_budgets(ex_, text, seed):
        p = original(ex_, text, seed)
        return {**p, "total_s": 600, "quick_s": 600, "simplify_s": 600, "numeric_s": 600}

    monkeypatch.setattr(symbolic_grade, "payload_for", no_budgets)
    text = "(z+1)**1000*(z-1)**1000 - (z**2-1)**1000 + sigmoid(z) - y"  # cancel() takes minutes
    t0 = time.perf_counter()
    r = grade_one(ex, Submission(_write(tmp_path, text)), runner, direct_text=True)
    assert time.perf_counter() - t0 < 15
    assert r.status == "graded" and r.score == 0
    assert [c.message for c in r.checks] == [
        "not decided (it took longer than 2 s); flagged for review",
        "could not decide whether this equals dL/dz (it took longer than 2 s); flagged for review"]
    assert r.extra["symbolic"]["needs_review"] is True
    monkeypatch.undo()
    _assert_full_marks(_grade(FIXTURES / "correct_sigmoid.txt", runner))


# --------------------------------------------------------------------------- the rest


def test_regrade_is_deterministic(runner):
    a = _grade(FIXTURES / "mse_gradient_half.txt", runner, student="alice")
    b = _grade(FIXTURES / "mse_gradient_half.txt", runner, student="alice")
    assert a.checks == b.checks and a.extra == b.extra


def test_basic_isolation_grades_the_same(basic_runner):
    r = _grade(FIXTURES / "correct_computed.py", basic_runner)
    _assert_full_marks(r)
    assert r.isolation == "basic"
    assert _grade(FIXTURES / "sign_flipped.txt", basic_runner).diagnoses == ("sign-flipped",)


def test_cli_json_follows_the_contract():
    proc = subprocess.run([sys.executable, "-m", "dlgrade", "check", str(FIXTURES / "sign_flipped.txt"),
                           "--exercise", "sigmoid-bce-grad", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["exercise"], out["status"], out["score"], out["max_score"]) == (
        "sigmoid-bce-grad", "graded", 2.0, 10.0)
    assert out["diagnoses"] == ["sign-flipped"]
    assert [c["name"] for c in out["checks"]] == ["parses", "equivalent to dL/dz"]
    assert out["extra"]["symbolic"]["counterexample"]["point"] == {"z": 0, "y": 0}


def test_the_exercise_is_listed_and_its_starter_grades_as_empty(tmp_path, runner):
    proc = subprocess.run([sys.executable, "-m", "dlgrade", "list"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert re.search(r"^sigmoid-bce-grad +symbolic +sigmoid_bce_grad ", proc.stdout, re.M)
    starter = tmp_path / "starter.py"
    starter.write_text((ROOT / "exercises" / "sigmoid-bce-grad" / "starter.py").read_text())
    r = _grade(starter, runner)
    assert r.checks[0].message == "could not read the expression: the expression is empty"
