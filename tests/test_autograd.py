"""The ``autograd`` check: backward() works and the gradient matches torch autograd's reference."""
import re
from types import SimpleNamespace

import pytest

from dlgrade.graders.checks.autograd import arg_names

EX = "label-smoothing"
CHECK = "gradient w.r.t. logits (autograd)"
RANDOM = "random logits (16 x 10), epsilon = 0.1 (case 'random')"


@pytest.fixture(autouse=True)
def no_gpu(gpu_device):
    gpu_device("none")


def autograd_check(r):
    return next(c for c in r.checks if c.kind == "autograd")


def test_correct_gradient_passes(grade):
    c = autograd_check(grade(EX, "label_smoothing/correct_scatter.py"))
    assert c.passed and c.score == 2
    assert [g["name"] for d in c.details["cases"] for g in d["grads"]] == ["logits"] * 3
    assert all(g["mismatched"] == 0 for d in c.details["cases"] for g in d["grads"])


def test_wrong_gradient_is_located(grade):
    r = grade(EX, "label_smoothing/ls_sign_flipped.py")
    c = autograd_check(r)
    assert re.fullmatch(re.escape(f"the gradient of label_smoothing_ce(...) w.r.t. logits is wrong on {RANDOM}: "
                                  "160 / 160 elements (100%) differ; worst at (") + r".*", c.message)
    assert c.diagnoses == ()  # the values check's evidence names the mistake, not this check
    assert c.details["grads"][0]["mismatched"] == 160


def test_detached_result_is_not_differentiable(grade):
    r = grade(EX, "label_smoothing/ls_detached.py")
    c = autograd_check(r)
    assert c.message == (f"label_smoothing_ce(...) returned a tensor with no autograd history on {RANDOM} "
                         "(no grad_fn: was it detached, or rebuilt from numpy or Python numbers?)")
    assert c.diagnoses == ("not-differentiable",)
    assert r.diagnoses == ("not-differentiable",)
    assert r.score == 8


def test_numpy_round_trip_is_not_differentiable(grade):
    r = grade(EX, "label_smoothing/ls_numpy_roundtrip.py")
    c = autograd_check(r)
    assert c.message.startswith("label_smoothing_ce(...) returned a tensor with no autograd history on ")
    assert r.diagnoses == ("not-differentiable", "device-mismatch")
    assert r.score == 7  # its values are right; autograd and the device probe fail


def test_rebuilt_leaf_leaves_the_gradient_empty(grade):
    c = autograd_check(grade(EX, "label_smoothing/ls_rebuilt_leaf.py"))
    assert c.message == (f"backward() through label_smoothing_ce(...) left logits.grad empty on {RANDOM}: "
                         "the result is not connected to logits (was it rebuilt with torch.tensor(...)?)")
    assert c.diagnoses == ("not-differentiable",)


def test_numpy_of_a_tensor_requiring_grad_names_the_line(grade):
    r = grade(EX, "label_smoothing/ls_numpy_requires_grad.py")
    c = autograd_check(r)
    assert c.message == (
        "label_smoothing_ce(...) raised RuntimeError: Can't call numpy() on Tensor that requires grad. "
        f"Use tensor.detach().numpy() instead. (line 6) on {RANDOM}")
    assert c.details["line"] == 6
    assert c.diagnoses == ("not-differentiable",)


def test_in_place_change_of_a_leaf_names_the_line(grade):
    r = grade(EX, "label_smoothing/ls_inplace_on_leaf.py")
    c = autograd_check(r)
    assert c.message == ("label_smoothing_ce(...) raised RuntimeError: a leaf Variable that requires grad is "
                         f"being used in an in-place operation. (line 7) on {RANDOM}")
    assert c.diagnoses == ("not-differentiable",)
    assert r.score == 0


def test_in_place_change_of_a_saved_tensor_breaks_backward(grade):
    r = grade(EX, "label_smoothing/ls_inplace_on_log_softmax.py")
    c = autograd_check(r)
    assert c.message.startswith(
        "backward() through label_smoothing_ce(...) raised RuntimeError: one of the variables needed for gradient "
        "computation has been modified by an inplace operation: [torch.DoubleTensor [16, 10]], which is output 0 "
        "of LogSoftmax, is at version 1; expected version 0 instead.")
    assert c.message.endswith(f" on {RANDOM}")
    assert c.diagnoses == ("not-differentiable",)
    assert r.score == 8  # its values are right


def test_an_ordinary_exception_is_no_evidence(grade):
    c = autograd_check(grade(EX, "label_smoothing/ls_starter_not_implemented.py"))
    assert c.diagnoses == ()
    assert c.message == f"label_smoothing_ce(...) raised NotImplementedError: write label_smoothing_ce (line 12) on {RANDOM}"


@pytest.mark.parametrize("signature,names", [
    ("label_smoothing_ce(logits, target, epsilon) -> torch.Tensor", ["logits", "target", "epsilon"]),
    ("f(x: Tensor, w=None)", ["x", "w"]),
    ("", []),
])
def test_argument_names_come_from_the_signature(signature, names):
    ctx = SimpleNamespace(exercise=SimpleNamespace(signature=signature))
    assert arg_names(ctx) == names
