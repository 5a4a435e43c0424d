"""stable-softmax: correct styles get full marks, each classic mistake its diagnosis."""
import re

import pytest

CORRECT = ["correct_shift_max.py", "correct_logsumexp.py", "correct_loops.py", "correct_scipy_style.py"]


@pytest.mark.parametrize("name", CORRECT)
def test_correct_styles_get_full_marks_and_no_diagnosis(grade, name):
    r = grade("stable-softmax", f"softmax/{name}")
    assert r.status == "graded"
    assert r.score == r.max_score == 10
    assert r.diagnoses == ()


def test_naive_softmax_overflows(grade):
    r = grade("stable-softmax", "softmax/softmax_naive_overflow.py")
    assert "overflow" in r.diagnoses
    failed = {c.name: c for c in r.checks if not c.passed}
    assert set(failed) == {"large and very negative logits", "float32 stays float32"}
    assert re.fullmatch(
        re.escape("softmax(z) returned 4 non-finite values on large logits like [20, 134, 854] "
                  "(case 'large') (first at (0, 2): nan); expected finite values"),
        failed["large and very negative logits"].message)


def test_mutating_softmax_is_diagnosed(grade):
    r = grade("stable-softmax", "softmax/softmax_mutates_input.py")
    assert r.diagnoses == ("mutates-input",)
    c = next(c for c in r.checks if c.kind == "no-mutation")
    assert c.message == ("softmax(z) modified its argument #1 on random logits, shape (16, 10) "
                         "(case 'random'): 160 / 160 elements changed")
    assert r.score == 9


def test_wrong_axis_is_diagnosed(grade):
    r = grade("stable-softmax", "softmax/softmax_wrong_axis.py")
    assert "wrong-axis" in r.diagnoses
    assert "overflow" not in r.diagnoses
    c = r.checks[0]
    assert not c.passed
    assert c.message.startswith("softmax(z) is wrong on random logits, shape (16, 10) (case 'random'): ")
    assert c.details["mismatched"] > 0


def test_float64_for_float32_input_fails_dtype(grade):
    r = grade("stable-softmax", "softmax/softmax_returns_float64.py")
    c = next(c for c in r.checks if c.name == "float32 stays float32")
    assert c.message == ("softmax(z) returned float64 for float32 input on float32 logits "
                         "(case 'float32'); expected float32")
    assert r.score == 9
    assert r.diagnoses == ()


def test_syntax_error_is_an_error_result_with_line(grade):
    r = grade("stable-softmax", "softmax/softmax_syntax_error.py")
    assert r.status == "error"
    assert r.message == "SyntaxError on line 3: expected ':'"
    assert r.error["line"] == 3
    assert r.score == 0


def test_exception_in_call_fails_checks_with_student_line(grade):
    r = grade("stable-softmax", "softmax/softmax_raises.py")
    assert r.status == "graded"
    assert r.score == 0
    assert r.checks[0].message == ("softmax(z) raised ValueError: not done yet (line 5) on random logits, "
                                   "shape (16, 10) (case 'random')")


def test_regrade_is_deterministic(grade):
    a = grade("stable-softmax", "softmax/softmax_wrong_axis.py", student="alice")
    b = grade("stable-softmax", "softmax/softmax_wrong_axis.py", student="alice")
    assert a.checks == b.checks


def test_public_view_withholds_what_only_hidden_checks_found():
    from dlgrade.graders.results import CheckResult, ExerciseResult, StudentResult

    hidden = CheckResult("h", False, 0, 1, "secret input [1e9]", {"x": 1}, hidden=True, diagnoses=("overflow",))
    shown = CheckResult("v", False, 0, 1, "visible", diagnoses=("mutates-input",))
    r = ExerciseResult("s", "stable-softmax", "graded", checks=(hidden, shown),
                       diagnoses=("overflow", "mutates-input"), max_score=2)
    p = StudentResult.of(r)
    assert p.diagnoses == ("mutates-input",)
    assert p.checks[0].message == "hidden check failed" and p.checks[0].details == {}
    assert r.score == p.score == 0


def _mutation_ctx(args_after):
    from dlgrade.graders.engine import CallResult, Context
    from dlgrade.graders.inputs import make_cases
    from dlgrade.graders.spec import get_exercise

    ex = get_exercise("stable-softmax")
    check = next(c for c in ex.checks if c.kind == "no-mutation")
    ctx = Context(ex, "s", make_cases(ex, "s", check.cases))
    for case in check.cases:
        after = args_after(ctx.cases[case].args[0].value)
        ctx.calls[f"mutation:{case}"] = CallResult(status="ok", args_after=after)
    return check, ctx


def test_unreadable_argument_fails_without_a_mutation_diagnosis():
    from dlgrade.graders.checks import no_mutation
    from dlgrade.graders.decoding import Opaque

    for after in (lambda v: [Opaque("unreadable array")], lambda v: []):
        check, ctx = _mutation_ctx(after)
        r = no_mutation.evaluate(check, ctx)
        assert not r.passed and r.diagnoses == ()
        assert r.message == ("softmax(z): argument #1 could not be read back after the call on random "
                             "logits, shape (16, 10) (case 'random'), so it could not be checked")


def test_argument_resized_in_place_is_a_mutation():
    from dlgrade.graders.checks import no_mutation
    from dlgrade.graders.decoding import Leaf

    check, ctx = _mutation_ctx(lambda v: [Leaf(array=v.reshape(-1).copy())])
    r = no_mutation.evaluate(check, ctx)
    assert not r.passed and r.diagnoses == ("mutates-input",)
