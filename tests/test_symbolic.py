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

from graders import symbolic_grade
from graders.api import grade_one
from graders.sandbox import Limits
from graders.spec import get_exercise
from graders.submission import Submission

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
    "correct_latex_not_raw.py",
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
                                   f"must be an expression in z and y only (write sigmoid(z) for {name})")


def test_an_unknown_symbol_is_named(runner):
    r = _grade(FIXTURES / "unknown_symbol_p.txt", runner)
    parses, equal = r.checks
    assert parses.message == ("could not read the expression: unknown symbol 'p': the answer must be an "
                              "expression in z and y only (write sigmoid(z) for p)")
    assert equal.message == NOT_CHECKED
    assert r.score == 0 and r.diagnoses == ()
    assert r.extra["symbolic"]["method"] is None
    assert r.extra["symbolic"]["reference_latex"] == r"\sigma\left(z\right) - y"


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
     "'eval' is not a known function (known: sigmoid, σ, exp, log, ln, sqrt, tanh, sinh, cosh, abs)"),
    ("exec('import os')",
     "'exec' is not a known function (known: sigmoid, σ, exp, log, ln, sqrt, tanh, sinh, cosh, abs)"),
    ("getattr(z, 'x')",
     "'getattr' is not a known function (known: sigmoid, σ, exp, log, ln, sqrt, tanh, sinh, cosh, abs)"),
    ("open('{target}', 'w').write('x')", "attribute access ('.write') is not allowed"),
    ("sigmoid(z).func", "attribute access ('.func') is not allowed"),
    ("Symbol('z')", "'Symbol' is not a known function (known: sigmoid, σ, exp, log, ln, sqrt, tanh, sinh, "
                    "cosh, abs)"),
    ("sympify('z')", "'sympify' is not a known function (known: sigmoid, σ, exp, log, ln, sqrt, tanh, "
                     "sinh, cosh, abs)"),
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
    proc = subprocess.run([sys.executable, "-m", "graders", "check", str(FIXTURES / "sign_flipped.txt"),
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
    proc = subprocess.run([sys.executable, "-m", "graders", "list"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert re.search(r"^sigmoid-bce-grad +symbolic +sigmoid_bce_grad ", proc.stdout, re.M)
    starter = tmp_path / "starter.py"
    starter.write_text((ROOT / "exercises" / "sigmoid-bce-grad" / "starter.py").read_text())
    r = _grade(starter, runner)
    assert r.checks[0].message == "could not read the expression: the expression is empty"
