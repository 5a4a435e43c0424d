"""two-layer-backprop end to end: the gradients and finite-difference checks, diagnoses, messages.

Correct solutions in different styles get full marks and no diagnosis; each
classic mistake gets its diagnosis id; what a student reads is pinned.
"""
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dlgrade.graders import engine
from dlgrade.graders.inputs import make_cases
from dlgrade.graders.decoding import Leaf
from dlgrade.graders.spec import CheckSpec, get_exercise
from dlgrade.graders.submission import Submission

FIXTURES = Path(__file__).parent / "fixtures"

EX = "two-layer-backprop"
RANDOM = "a random batch (N=8, D=5, H=7, C=4) (case 'random')"
LARGE = "large scores (rows from below 1 to the thousands) (case 'large')"

CORRECT = ["correct_vectorised.py", "correct_loops.py", "correct_logsumexp.py", "correct_onehot.py",
           "correct_layers.py", "correct_notebook.ipynb"]


def by_name(result):
    return {c.name: c for c in result.checks}


@pytest.mark.parametrize("name", CORRECT)
def test_correct_styles_get_full_marks_and_no_diagnosis(grade, name):
    r = grade(EX, f"backprop/{name}")
    assert r.status == "graded", r.message
    assert [c.name for c in r.checks if not c.passed] == []
    assert r.score == r.max_score == 10
    assert r.diagnoses == ()
    json.dumps(r.to_dict(), allow_nan=False)


def test_passing_messages(grade):
    checks = by_name(grade(EX, "backprop/correct_vectorised.py"))
    assert checks["gradients match the reference"].message.startswith(
        "all 4 gradients match the reference on 2 inputs (max relative error ")
    assert checks["gradients of your own loss"].message.startswith(
        "your gradients agree with finite differences of your own loss on 1 input "
        "(8 random directions, 12 sampled elements; max relative error ")
    d = checks["gradients match the reference"].details
    assert [(p["name"], p["shape"], p["passed"]) for p in d["params"]] == [
        ("W1", [5, 7], True), ("b1", [7], True), ("W2", [7, 4], True), ("b2", [4], True)]
    assert all(p["rel_error"] < 1e-12 and "heatmap" not in p for p in d["params"])
    fd = checks["gradients of your own loss"].details
    assert len(fd["directions"]) == 8 and len(fd["samples"]) == 12 and fd["tolerance"] == 1e-4
    assert all(s["passed"] and s["rel_error"] < 1e-6 for s in fd["directions"] + fd["samples"])


# --------------------------------------------------------------------------- classic mistakes


def test_missing_batch_mean(grade):
    r = grade(EX, "backprop/missing_batch_mean.py")
    assert r.diagnoses == ("missing-batch-mean",)
    c = by_name(r)
    assert c["loss value"].passed
    assert c["gradients match the reference"].message == (
        f"grads['W1'] is wrong on {RANDOM}: relative error 0.777778 (tolerance 1e-06); worst at (3, 2): "
        "got 0.0281716, expected 0.00352144 (also wrong: b1, W2, b2)")
    assert c["gradients of your own loss"].message == (
        f"grads['W1'] disagrees with finite differences of your own loss on {RANDOM}: along a random direction, "
        "analytic -7.0145 vs numeric -0.876812 (relative error 0.777778; tolerance 0.0001); "
        "e.g. at W1[0, 2]: analytic -2.04871, numeric -0.256089")
    assert r.score == 3


def test_summed_loss_is_consistent_but_missing_the_batch_mean(grade):
    r = grade(EX, "backprop/summed_loss.py")
    assert r.diagnoses == ("missing-batch-mean",)
    c = by_name(r)
    assert c["gradients of your own loss"].passed  # its gradients are those of its own loss
    assert not c["loss value"].passed and not c["gradients match the reference"].passed


def test_transposed_weight_gradient_by_shape(grade):
    r = grade(EX, "backprop/transposed_dW1.py")
    assert r.diagnoses == ("transposed",)
    c = by_name(r)
    assert c["gradients match the reference"].message == (
        f"grads['W1'] has shape (7, 5) on {RANDOM}; expected (5, 7) — is it transposed?")
    assert c["gradients of your own loss"].message == c["gradients match the reference"].message
    d = c["gradients match the reference"].details
    assert d["params"][0]["got_shape"] == [7, 5] and d["params"][0]["rel_error"] is None
    assert d["diagnosed"] == {"transposed": ["W1"]}
    r2 = grade(EX, "backprop/transposed_dW2.py")
    assert r2.diagnoses == ("transposed",)
    assert by_name(r2)["gradients match the reference"].message == (
        f"grads['W2'] has shape (4, 7) on {RANDOM}; expected (7, 4) — is it transposed?")


def test_transposed_gradient_of_the_right_shape_on_a_square_network(grade_exercise):
    """D == H == C: the transposed gradient has the right shape and the wrong values."""
    ex = get_exercise(EX)
    square_only = replace(ex, checks=(
        CheckSpec("gradients", "gradients", 4, cases=("square",)),
        CheckSpec("finite differences", "finite-difference", 2, cases=("square",),
                  options={"kinks": "dlgrade.reference.two_layer:relu_inputs"})))
    for fixture, param in (("transposed_dW1.py", "W1"), ("transposed_dW2.py", "W2")):
        r = grade_exercise(square_only, f"backprop/{fixture}")
        grads, fd = r.checks
        assert r.diagnoses == ("transposed",)
        assert grads.message.startswith(f"grads['{param}'] is wrong on a square network (N=5, D=H=C=6) "
                                        "(case 'square'): relative error ")
        failed = [p for p in grads.details["params"] if not p["passed"]]
        assert [p["name"] for p in failed] == [param]
        assert failed[0]["shape"] == failed[0]["got_shape"] == [6, 6]
        hm = failed[0]["heatmap"]
        assert (hm["rows"], hm["cols"]) == (6, 6) and hm["max"] > 0
        assert not fd.passed and fd.message.startswith(f"grads['{param}'] disagrees with finite differences")
    assert grade_exercise(square_only, "backprop/correct_vectorised.py").diagnoses == ()


def test_missing_relu_mask(grade):
    r = grade(EX, "backprop/missing_relu_mask.py")
    assert r.diagnoses == ("missing-relu-mask",)
    c = by_name(r)["gradients match the reference"]
    assert c.message == (f"grads['W1'] is wrong on {RANDOM}: relative error 1 (tolerance 1e-06); worst at (0, 5): "
                         "got 0.1023, expected -0.0417989 (also wrong: b1)")
    assert c.details["diagnosed"] == {"missing-relu-mask": ["W1", "b1"]}
    params = {p["name"]: p for p in c.details["params"]}
    assert not params["W1"]["passed"] and not params["b1"]["passed"]
    assert params["W2"]["passed"] and params["b2"]["passed"]
    assert params["W1"]["heatmap"]["rows"] == 5 and params["W1"]["heatmap"]["cols"] == 7
    assert params["b1"]["heatmap"]["rows"] == 1 and "heatmap" not in params["W2"]
    assert by_name(r)["gradients of your own loss"].message == (
        f"grads['W1'] disagrees with finite differences of your own loss on {RANDOM}: along a random direction, "
        "analytic -1.03955 vs numeric -0.876812 (relative error 0.0849185; tolerance 0.0001); "
        "e.g. at W1[3, 2]: analytic -0.0655231, numeric 0.00352144")


def test_bias_not_summed_over_the_batch(grade):
    r = grade(EX, "backprop/bias_not_summed.py")
    assert r.diagnoses == ("bias-not-summed",)
    assert by_name(r)["gradients match the reference"].message == (
        f"grads['b1'] has shape (8, 7) on {RANDOM}; expected (7,) — is it summed over the batch?")


def test_bias_averaged_instead_of_summed(grade):
    r = grade(EX, "backprop/bias_mean_not_sum.py")
    assert r.diagnoses == ("bias-not-summed",)
    assert by_name(r)["gradients match the reference"].message == (
        f"grads['b1'] is wrong on {RANDOM}: relative error 0.777778 (tolerance 1e-06); worst at (3,): "
        "got 0.000736776, expected 0.00589421 (also wrong: b2)")


def test_sign_flipped(grade):
    r = grade(EX, "backprop/sign_flipped.py")
    assert r.diagnoses == ("sign-flipped",)
    c = by_name(r)
    assert c["gradients match the reference"].message == (
        f"grads['W1'] is wrong on {RANDOM}: relative error 1 (tolerance 1e-06); worst at (0, 0): "
        "got 0.0223533, expected -0.0223533 (also wrong: b1, W2, b2)")
    assert c["gradients of your own loss"].message == (
        f"grads['W1'] disagrees with finite differences of your own loss on {RANDOM}: along a random direction, "
        "analytic 0.876812 vs numeric -0.876812 (relative error 1; tolerance 0.0001); "
        "e.g. at W1[0, 2]: analytic 0.256089, numeric -0.256089")


def test_two_mistakes_that_explain_every_wrong_gradient_are_both_reported(grade):
    r = grade(EX, "backprop/no_relu_mask_and_bias_not_summed.py")
    assert set(r.diagnoses) == {"missing-relu-mask", "bias-not-summed"}
    assert by_name(r)["gradients match the reference"].message == (
        f"grads['b2'] has shape (8, 4) on {RANDOM}; expected (4,) — is it summed over the batch?")


def test_an_unexplained_error_means_no_diagnosis_at_all(grade):
    """W1 and b1 match the missing-mask mistake, but dW2 is wrong in a way no mistake explains."""
    r = grade(EX, "backprop/no_relu_mask_and_unexplained_error.py")
    assert r.diagnoses == ()
    assert by_name(r)["gradients match the reference"].message.endswith("(also wrong: b1, W2)")


@pytest.mark.parametrize("name", ["unstable_log_probs.py", "log_of_softmax_class.py"])
def test_a_loss_whose_probability_underflowed_is_log_underflow_not_overflow(grade, name):
    """Both subtract the max already: "subtract the max" (overflow) would be the wrong hint."""
    r = grade(EX, f"backprop/{name}")
    assert r.diagnoses == ("log-underflow",)
    assert by_name(r)["loss on large scores"].message == (
        f"the loss returned 1 non-finite value on {LARGE} (got inf); expected finite values")
    assert [c.name for c in r.checks if not c.passed] == ["loss on large scores"]
    assert r.score == 9


def test_naive_softmax_overflows_in_loss_and_gradients(grade):
    r = grade(EX, "backprop/naive_overflow.py")
    assert r.diagnoses == ("overflow",)
    c = by_name(r)
    assert c["gradients on large scores"].message == (
        f"grads['W1'] has 35 non-finite values on {LARGE} (first at (0, 0): nan); expected finite values")
    assert c["gradients on large scores"].details["params"][0]["heatmap"]["max"] == "inf"
    assert r.score == 8


# --------------------------------------------------------------------------- structure


def test_wrong_dict_keys(grade):
    r = grade(EX, "backprop/wrong_keys.py")
    assert r.diagnoses == ()
    c = by_name(r)["gradients match the reference"]
    assert c.message == (f"grads has keys 'dW1', 'db1', 'dW2', 'db2' on {RANDOM}; "
                         "expected keys 'W1', 'b1', 'W2', 'b2'")
    assert c.details["missing"] == ["W1", "b1", "W2", "b2"]
    assert r.score == 3  # the loss is right


def test_grads_returned_as_a_tuple(grade):
    r = grade(EX, "backprop/grads_tuple.py")
    assert r.diagnoses == ()
    for name in ("gradients match the reference", "gradients of your own loss"):
        assert by_name(r)[name].message == (
            f"grads is a tuple of 4 on {RANDOM}; expected a dict with keys 'W1', 'b1', 'W2', 'b2'")


def test_bias_with_an_extra_axis(grade):
    r = grade(EX, "backprop/bias_keepdims.py")
    assert r.diagnoses == ()
    assert by_name(r)["gradients match the reference"].message == (
        f"grads['b1'] has shape (1, 7) on {RANDOM}; expected (7,) — it has an extra axis of length 1")


def test_loss_returned_per_example(grade):
    r = grade(EX, "backprop/loss_per_example.py")
    c = by_name(r)
    assert c["loss value"].message == f"the loss has shape (8,) on {RANDOM}; expected ()"
    assert c["gradients of your own loss"].message == (
        f"the loss is an array of shape (8,) on {RANDOM}; finite differences need a single number")
    assert c["gradients match the reference"].passed
    assert r.diagnoses == () and r.score == 5


def test_loss_inconsistent_with_its_gradients_fails_finite_differences(grade):
    r = grade(EX, "backprop/loss_inconsistent_with_grads.py")
    c = by_name(r)
    assert c["gradients match the reference"].passed
    assert c["gradients of your own loss"].message == (
        f"grads['W1'] disagrees with finite differences of your own loss on {RANDOM}: along a random direction, "
        "analytic -0.876812 vs numeric -7.0145 (relative error 0.777778; tolerance 0.0001); "
        "e.g. at W1[3, 2]: analytic 0.00352144, numeric 0.0281716")


def test_exception_inside_the_function(grade):
    r = grade(EX, "backprop/raises.py")
    assert r.status == "graded" and r.score == 0 and r.diagnoses == ()
    c = by_name(r)
    error = "raised NotImplementedError: backward pass not finished (line 7)"
    assert c["gradients match the reference"].message == f"two_layer_backprop(...) {error} on {RANDOM}"
    assert c["gradients of your own loss"].message == f"two_layer_backprop(...) {error} on {RANDOM}"
    assert c["loss value"].message == f"the loss {error} on {RANDOM}"


def test_regrade_is_deterministic_and_students_get_their_own_directions(grade):
    a = grade(EX, "backprop/missing_relu_mask.py", student="alice")
    b = grade(EX, "backprop/missing_relu_mask.py", student="alice")
    c = grade(EX, "backprop/missing_relu_mask.py", student="bob")
    assert a.checks == b.checks
    assert a.checks[-1].details["directions"] != c.checks[-1].details["directions"]


# --------------------------------------------------------------------------- the plan


def _planned(ex, student="student-1"):
    names = sorted({n for c in ex.checks for n in c.cases})
    ctx = engine.Context(ex, student, make_cases(ex, student, names))
    for check in ex.checks:
        for call in engine.check_module(check.kind).plan(check, ctx):
            ctx.planned.setdefault(call.id, call)
    return ctx


def _fd_only(ex, **dims):
    fd = next(c for c in ex.checks if c.kind == "finite-difference")
    # other sizes than the spec's: its conditioning (tuned to its sizes) would refuse every draw
    cases = {n: {k: v for k, v in c.items() if k != "condition"} for n, c in ex.cases.items()} if dims else ex.cases
    return replace(ex, dims={**ex.dims, **dims}, checks=(fd,), cases=cases)


def test_finite_difference_cost_does_not_grow_with_the_parameters():
    ex = get_exercise(EX)
    small = _planned(_fd_only(ex))
    big = _planned(_fd_only(ex, D=300, H=400))  # 120k weights in W1
    assert len(small.planned) == len(big.planned) == 1 + 2 * (2 + 3) * 4
    perturbed = [c for c in big.planned.values() if c.perturb]
    assert len(perturbed) == 40 and all(c.select == (0,) for c in perturbed)
    shipped = {name for c in big.planned.values() for name in c.arrays}
    assert len(shipped) == 8  # one direction array per (parameter, direction), shared by the ± calls


def test_directions_come_from_their_own_generator():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    ctx = _planned(_fd_only(get_exercise(EX)))
    assert np.array_equal(np.random.get_state()[1], before)
    plus = ctx.planned["fd:random:W1:dir0:+"]
    minus = ctx.planned["fd:random:W1:dir0:-"]
    assert plus.perturb == {2: {"add": {"npy": "fdv_random_W1_0.npy", "scale": 1e-6}}}
    assert minus.perturb == {2: {"add": {"npy": "fdv_random_W1_0.npy", "scale": -1e-6}}}
    assert plus.arrays["fdv_random_W1_0.npy"].shape == (5, 7) and minus.arrays == {}
    at = ctx.planned["fd:random:b2:at0:+"].perturb[5]["add_at"]
    assert at["delta"] == 1e-6 and len(at["index"]) == 1


def test_first_sample_is_the_largest_reference_gradient():
    ex = _fd_only(get_exercise(EX))
    ctx = _planned(ex)
    _, grads = ctx.reference("random")
    for name, arg in (("W1", 2), ("b1", 3), ("W2", 4), ("b2", 5)):
        idx = tuple(ctx.planned[f"fd:random:{name}:at0:+"].perturb[arg]["add_at"]["index"])
        assert idx == np.unravel_index(np.argmax(np.abs(grads[name])), grads[name].shape)


def _near_kink(ex):
    """One ReLU input 2e-7 from its kink: an unguarded step of 1e-6 would cross it."""
    case = {"description": "a unit at its kink", "args": [
        {"value": [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]}, {"value": [0, 1, 1], "dtype": "int64"},
        {"value": [[2e-7, 1.0], [-1.0, 0.5]]}, {"value": [0.0, 0.1]},
        {"value": [[1.0, -1.0], [0.5, 2.0]]}, {"value": [0.0, 0.0]}]}
    fd = next(c for c in ex.checks if c.kind == "finite-difference")
    return replace(ex, cases={"kink": case}, checks=(replace(fd, cases=("kink",)),))


def test_samples_and_directions_avoid_relu_kinks():
    """Every planned step keeps each ReLU input on its side of 0."""
    from dlgrade.reference.two_layer import relu_inputs

    ctx = _planned(_near_kink(get_exercise(EX)))
    args, _ = ctx.cases["kink"].arrays()
    assert relu_inputs(*args)[0][0, 0] == pytest.approx(2e-7)
    base = np.sign(relu_inputs(*args)[0])
    shipped = {name: arr for call in ctx.planned.values() for name, arr in call.arrays.items()}
    for call in ctx.planned.values():
        for arg, p in call.perturb.items():
            moved = list(args)
            if "add" in p:
                moved[arg] = args[arg] + p["add"]["scale"] * shipped[p["add"]["npy"]]
            else:
                moved[arg] = args[arg].copy()
                moved[arg][tuple(p["add_at"]["index"])] += p["add_at"]["delta"]
            assert np.array_equal(np.sign(relu_inputs(*moved)[0]), base)


def test_perturbed_calls_send_back_only_the_loss(runner):
    ex = _fd_only(get_exercise(EX))
    ctx = _planned(ex)
    source = Submission(FIXTURES / "backprop/correct_vectorised.py").source_for(ex.entry)
    outcome = runner.run(ex, engine.build_plan(ctx, source.main_name, 0), source.files)
    try:
        engine.collect_calls(ctx, outcome)
    finally:
        outcome.cleanup()
    res = ctx.calls["fd:random:W1:dir0:+"]
    assert res.status == "ok" and isinstance(res.output, Leaf) and res.output.array.shape == ()
    assert isinstance(ctx.calls["gradients:random"].output, tuple)
    lp = float(res.output.array)
    lm = float(ctx.calls["fd:random:W1:dir0:-"].output.array)
    assert lp != lm  # the worker applied the perturbation


def test_a_correct_gradient_next_to_a_kink_passes(grade_exercise):
    r = grade_exercise(_near_kink(get_exercise(EX)), "backprop/correct_vectorised.py")
    assert r.checks[0].passed, r.checks[0].message
    steps = {d["step"] for d in r.checks[0].details["directions"] + r.checks[0].details["samples"]}
    assert min(steps) < 1e-6  # the step shrank where no kink-free direction was found at 1e-6


def test_finite_differences_need_a_finite_loss(grade_exercise):
    ex = get_exercise(EX)
    fd = next(c for c in ex.checks if c.kind == "finite-difference")
    on_large = replace(ex, checks=(replace(fd, cases=("large",)),))
    r = grade_exercise(on_large, "backprop/naive_overflow.py")
    assert r.checks[0].message == f"the loss is nan on {LARGE}; finite differences need a finite loss"
    assert grade_exercise(on_large, "backprop/correct_onehot.py").checks[0].passed


def test_grading_never_imports_torch_in_the_grader():
    """A numpy-only exercise must not pay for torch (reference, checks and all)."""
    import subprocess
    import sys

    code = ("import sys; from dlgrade.graders.api import check; "
            "r = check('tests/fixtures/backprop/missing_relu_mask.py', exercise_ids=['two-layer-backprop']); "
            "print(r.results[0].diagnoses, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(Path(__file__).parent.parent))
    assert out.stdout.strip() == "('missing-relu-mask',) False"


def test_a_gradient_check_without_params_or_cases_is_a_grader_error(grade_exercise):
    ex = get_exercise(EX)
    no_params = replace(ex, raw={k: v for k, v in ex.raw.items() if k != "gradient"},
                        checks=(CheckSpec("g", "gradients", 1, cases=("random",)),))
    with pytest.raises(engine.GraderError, match="check 'g' needs \\[gradient\\] params"):
        grade_exercise(no_params, "backprop/correct_vectorised.py")
    with pytest.raises(engine.GraderError, match="check 'g' lists no cases"):
        grade_exercise(replace(ex, checks=(CheckSpec("g", "gradients", 1),)), "backprop/correct_vectorised.py")
