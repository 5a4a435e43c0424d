"""label-smoothing: the reference, correct styles, each classic mistake and its diagnosis.

GPU checks are pinned to "no GPU" here (see tests/test_gpu.py for the rest), so
these results are the same on every machine.
"""
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlgrade.reference import label_smoothing as ref

EX = "label-smoothing"
CORRECT = [
    "correct_log_softmax_gather.py", "correct_logsumexp.py", "correct_one_hot.py", "correct_scatter.py",
    "correct_builtin.py", "correct_ce_plus_uniform.py", "correct_loop_max_shift.py",
    "correct_new_tensor_device.py", "correct_one_hot.ipynb", "ls_half_cast_to_float32.py",
    "correct_module_criterion.py", "correct_class_loop.py", "correct_where.py", "correct_tensor_epsilon.py",
    # made on the CPU but legal on a GPU: moved with .to(device), or used only as indices
    "correct_cpu_then_to_device.py", "correct_cpu_arange_index.py",
]
RANDOM = "random logits (16 x 10), epsilon = 0.1 (case 'random')"


@pytest.fixture(autouse=True)
def no_gpu(gpu_device):
    gpu_device("none")


def checks_by_name(r):
    return {c.name: c for c in r.checks}


# --------------------------------------------------------------------------- the reference


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5, 0.9, 0.999])
@pytest.mark.parametrize("n,c,scale", [(16, 10, 2.0), (1, 7, 2.0), (8, 1000, 2.0), (8, 6, 1000.0), (5, 2, 30.0)])
def test_explicit_formula_agrees_with_pytorch(dtype, eps, n, c, scale):
    g = torch.Generator().manual_seed(n * 1000 + c)
    logits = (torch.randn(n, c, generator=g, dtype=torch.float64) * scale).to(dtype)
    target = torch.randint(0, c, (n,), generator=g)
    a = ref.label_smoothing_ce(logits, target, eps)
    b = ref.label_smoothing_ce_explicit(logits, target, eps)
    assert torch.isfinite(a) and torch.isfinite(b)
    torch.testing.assert_close(a, b, rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=0)


def test_reference_gradient_agrees_with_the_explicit_formula():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 5, (6,), generator=g)
    (ga,) = torch.autograd.grad(ref.label_smoothing_ce(logits, target, 0.2), logits)
    (gb,) = torch.autograd.grad(ref.label_smoothing_ce_explicit(logits, target, 0.2), logits)
    torch.testing.assert_close(ga, gb)
    # the textbook gradient: (softmax - q) / N
    q = torch.full((6, 5), 0.2 / 5, dtype=torch.float64)
    q[torch.arange(6), target] += 0.8
    torch.testing.assert_close(ga, (F.softmax(logits, 1) - q).detach() / 6)


def test_reference_is_the_definition_on_a_hand_example():
    # C = 2, epsilon = 0.5: q = (0.75, 0.25) for target 0
    logits = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    assert ref.label_smoothing_ce(logits, torch.tensor([0]), 0.5).item() == pytest.approx(np.log(2))
    logits = torch.tensor([[2.0, 0.0]], dtype=torch.float64)
    logp = np.log(np.exp([2.0, 0.0]) / np.exp([2.0, 0.0]).sum())
    assert ref.label_smoothing_ce(logits, torch.tensor([0]), 0.5).item() == pytest.approx(
        -(0.75 * logp[0] + 0.25 * logp[1]))


@pytest.mark.parametrize("diag", sorted(ref.MISTAKES))
def test_each_buggy_reference_differs_from_the_truth(diag):
    g = torch.Generator().manual_seed(1)
    large = diag in ("overflow", "log-underflow")  # mistakes of stability show only on large logits
    logits = torch.randn(8, 6, generator=g, dtype=torch.float64) * (1000.0 if large else 2.0)
    target = torch.randint(0, 6, (8,), generator=g)
    bug = ref.MISTAKES[diag](logits, target, 0.3)
    truth = ref.label_smoothing_ce(logits, target, 0.3)
    assert not torch.allclose(bug, truth, rtol=1e-4, atol=0, equal_nan=False)


def test_smoothing_mistakes_coincide_with_the_truth_at_epsilon_zero():
    # so the eps-zero case never counts as evidence for them (the evidence rule)
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(8, 6, generator=g, dtype=torch.float64)
    target = torch.randint(0, 6, (8,), generator=g)
    truth = ref.label_smoothing_ce(logits, target, 0.0)
    for diag in ("smoothing-over-c-minus-1", "smoothing-not-applied"):
        torch.testing.assert_close(ref.MISTAKES[diag](logits, target, 0.0), truth)


# --------------------------------------------------------------------------- correct styles


@pytest.mark.parametrize("name", CORRECT)
def test_correct_styles_get_full_marks_and_no_diagnosis(grade, name):
    r = grade(EX, f"label_smoothing/{name}")
    assert r.status == "graded", r.message
    assert (r.score, r.max_score) == (10, 10), [c.message for c in r.checks if c.status == "failed"]
    assert r.diagnoses == ()
    gpu = r.checks[-1]
    assert (gpu.status, gpu.message, gpu.score, gpu.max_score) == ("skipped", "skipped: no GPU", 0, 0)


def test_correct_messages_are_pinned(grade):
    r = grade(EX, "label_smoothing/correct_one_hot.py")
    msgs = {c.name: c.message for c in r.checks}
    assert msgs["loss on random logits"].startswith(
        "label_smoothing_ce(...) matches the reference on 3 inputs (max abs error ")
    assert re.fullmatch(re.escape("the gradient of label_smoothing_ce(...) w.r.t. logits matches autograd's "
                                  "reference on 3 inputs (max abs error ") + r"[0-9.e-]+\)",
                        msgs["gradient w.r.t. logits (autograd)"])
    assert msgs["runs on any device (probe)"] == (
        "label_smoothing_ce(...) keeps its tensors on the input's device "
        "(1 input run on the meta device, a stand-in for a GPU)")


# --------------------------------------------------------------------------- mistakes


@pytest.mark.parametrize("name,diag,score", [
    ("ls_smoothing_over_c_minus_1.py", "smoothing-over-c-minus-1", 1),
    ("ls_smoothing_not_applied.py", "smoothing-not-applied", 1),
    ("ls_sum_over_batch.py", "missing-batch-mean", 1),
    ("ls_sign_flipped.py", "sign-flipped", 1),
    ("ls_log_softmax_dim0.py", "wrong-axis", 1),
])
def test_value_mistakes_get_their_diagnosis_and_only_it(grade, name, diag, score):
    r = grade(EX, f"label_smoothing/{name}")
    assert r.diagnoses == (diag,)
    assert r.score == score  # only the device probe passes: the code is portable, just wrong


def test_smoothing_over_c_minus_1_message(grade):
    c = grade(EX, "label_smoothing/ls_smoothing_over_c_minus_1.py").checks[0]
    assert re.fullmatch(re.escape(f"label_smoothing_ce(...) is wrong on {RANDOM}: 1 / 1 elements (100%) differ; "
                                  "worst at (): got ") + r".*" + re.escape("; allowed 1e-09 + 1e-06·|expected|)"),
                        c.message)
    assert c.details["mismatched"] == 1


def test_mean_over_classes_fails_without_a_guessed_diagnosis(grade):
    r = grade(EX, "label_smoothing/ls_mean_over_classes.py")
    assert r.score == 1
    assert r.diagnoses == ()  # off by a factor C: no mistake in the library shows that


@pytest.mark.parametrize("name,cause", [("ls_naive_exp.py", "overflow"), ("ls_log_of_softmax.py", "log-underflow"),
                                        ("ls_log_softmax_module.py", "log-underflow")])
def test_unstable_log_softmax_fails_on_large_logits_with_its_cause(grade, name, cause):
    """exp() without a shift overflows (nan); log(softmax) underflows (inf): two causes, two cures."""
    r = grade(EX, f"label_smoothing/{name}")
    assert r.diagnoses == (cause,)
    failed = {c.name for c in r.checks if c.status == "failed"}
    assert failed == {"large logits stay finite", "gradient w.r.t. logits (autograd)"}
    assert r.score == 6


def test_overflow_message_is_pinned(grade):
    c = checks_by_name(grade(EX, "label_smoothing/ls_naive_exp.py"))["large logits stay finite"]
    assert c.message == ("label_smoothing_ce(...) returned 1 non-finite value on large logits (about ±1000) "
                         "(case 'large') (got nan); expected finite values")


def test_a_python_float_is_not_a_tensor(grade):
    r = grade(EX, "label_smoothing/ls_returns_float.py")
    c = checks_by_name(r)
    assert c["loss on random logits"].message == (
        f"label_smoothing_ce(...) returned a Python float on {RANDOM}; expected a scalar tensor")
    assert c["gradient w.r.t. logits (autograd)"].message == (
        f"label_smoothing_ce(...) returned a Python float on {RANDOM}, not a tensor: "
        "autograd cannot differentiate it")
    assert r.diagnoses == ("not-differentiable",)


def test_a_numpy_result_is_not_a_tensor(grade):
    r = grade(EX, "label_smoothing/ls_returns_numpy.py")
    assert checks_by_name(r)["loss on random logits"].message == (
        f"label_smoothing_ce(...) returned a numpy scalar on {RANDOM}; expected a scalar tensor")
    assert r.score == 0
    assert r.diagnoses == ("not-differentiable", "device-mismatch")


def test_the_starter_earns_nothing(grade):
    r = grade(EX, "label_smoothing/ls_starter_not_implemented.py")
    assert r.status == "graded"
    assert r.score == 0
    assert r.diagnoses == ()
    assert checks_by_name(r)["runs on any device (probe)"].message == (
        f"label_smoothing_ce(...) raised NotImplementedError: write label_smoothing_ce (line 12) on {RANDOM}")


def test_regrade_is_deterministic_and_students_get_different_inputs(grade):
    a = grade(EX, "label_smoothing/ls_sum_over_batch.py", student="alice")
    b = grade(EX, "label_smoothing/ls_sum_over_batch.py", student="alice")
    c = grade(EX, "label_smoothing/ls_sum_over_batch.py", student="bob")
    assert a.checks == b.checks
    assert a.checks[0].message != c.checks[0].message
