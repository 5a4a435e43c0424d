"""Diagnoses that name the cause (issue #16): a non-finite output is put down to the
mistake that reproduces it, several mistakes are reported when the evidence shows each,
and code that names a CUDA device on a machine without one is ``device-mismatch``."""
import numpy as np
import pytest

from dlgrade.graders.diagnose import describe
from dlgrade.reference.softmax import MISTAKES, softmax, softmax_global_max

SOFTMAX = "stable-softmax"
ROWS_APART = "rows whose scales differ by thousands, like [[1000, 999], [0, -1]] (case 'rows-apart')"
COLUMNS_APART = "columns 1400 apart (about +700 and -700), along axis 0 (case 'columns-apart')"


def by_name(r):
    return {c.name: c for c in r.checks}


def test_the_buggy_global_max_reference_gets_a_nan_row_where_the_truth_is_finite():
    z = np.array([[1000.0, 999.0], [0.0, -1.0]])
    bug = softmax_global_max(z)
    assert np.isfinite(bug[0]).all() and np.isnan(bug[1]).all()
    assert np.allclose(softmax(z)[1], [0.731058578630074, 0.268941421369926])
    assert MISTAKES["global-max-shift"] is softmax_global_max


def test_global_max_shift_is_diagnosed_not_overflow(grade):
    r = grade(SOFTMAX, "softmax/softmax_global_max_shift.py")
    assert r.diagnoses == ("global-max-shift",)
    c = by_name(r)
    assert c["large and very negative logits"].message == (
        f"softmax(z) returned 4 non-finite values on {ROWS_APART} (first at (1, 0): nan); expected finite values")
    assert c["large and very negative logits"].diagnoses == ("global-max-shift",)
    assert c["the axis argument"].message == (
        f"softmax(z, axis) returned 6 non-finite values on {COLUMNS_APART} (first at (0, 1): nan); "
        "expected finite values")
    assert r.score == 6


def test_global_max_shift_hint_says_per_slice():
    d = describe("global-max-shift")
    assert d.title == "One max for the whole array, not one per slice"
    assert d.hint == (
        "You subtract the maximum of the whole array, so a row (or slice) far below the largest "
        "value becomes exp(−1000) = 0 everywhere and 0/0 = nan. Each slice is its own softmax: "
        "subtract each slice's own maximum, `z - z.max(axis=axis, keepdims=True)`.")


def test_naive_softmax_on_axis_0_gets_overflow_and_wrong_axis(grade):
    """The axis evidence is judged where the output is finite: nan on large logits no longer hides it."""
    r = grade(SOFTMAX, "softmax/softmax_naive_axis0.py")
    assert r.diagnoses == ("overflow", "wrong-axis")


@pytest.mark.parametrize("name", ["softmax_naive_overflow.py", "softmax_wrong_axis.py", "correct_shift_max.py",
                                  "correct_logsumexp.py", "correct_loops.py", "correct_scipy_style.py"])
def test_the_new_probes_leave_other_softmax_diagnoses_as_they_were(grade, name):
    expected = {"softmax_naive_overflow.py": ("overflow",), "softmax_wrong_axis.py": ("wrong-axis",)}
    assert grade(SOFTMAX, f"softmax/{name}").diagnoses == expected.get(name, ())


def test_slices_apart_probes_pass_for_code_that_never_shifts():
    """Along axes 0 and 1 the slices stay within exp's range: only a wrong shift fails there."""
    from dlgrade.graders.inputs import make_cases
    from dlgrade.graders.spec import get_exercise
    from dlgrade.reference.softmax import naive_softmax

    ex = get_exercise(SOFTMAX)
    cases = make_cases(ex, "anyone", ["columns-apart", "slices-apart", "rows-apart"])
    for name, case in cases.items():
        (z,), kw = case.arrays()
        truth = softmax(z, **kw)
        assert np.isfinite(truth).all()
        assert not np.isfinite(softmax_global_max(z, **kw)).all(), name
        assert np.isfinite(naive_softmax(z, **kw)).all() == (name != "rows-apart"), name


def test_log_underflow_hint_names_log_softmax_not_the_max_shift():
    d = describe("log-underflow")
    assert d.title == "A probability underflowed to 0 before the log"
    assert d.hint == (
        "Your loss is infinite although every score is finite: the softmax probability of a class "
        "far below the best one is smaller than the smallest float, rounds to 0, and log(0) = -inf. "
        "Subtracting the maximum does not help here (it is what makes the best class 1 and the others "
        "0). Compute the log-probabilities directly with log-softmax, log p = s − max − "
        "log Σ exp(s − max) (log-sum-exp), and never take the log of a probability.")
    assert "subtract the maximum along the axis" not in d.hint


@pytest.mark.parametrize("exercise,fixture,cause", [
    ("two-layer-backprop", "backprop/unstable_log_probs.py", "log-underflow"),
    ("two-layer-backprop", "backprop/naive_overflow.py", "overflow"),
    ("label-smoothing", "label_smoothing/ls_log_of_softmax.py", "log-underflow"),
    ("label-smoothing", "label_smoothing/ls_naive_exp.py", "overflow"),
])
def test_each_non_finite_loss_gets_one_cause(grade, exercise, fixture, cause):
    r = grade(exercise, fixture)
    assert r.diagnoses == (cause,)
    assert all(cause in c.diagnoses for c in r.checks if c.status == "failed" and c.diagnoses)


@pytest.mark.parametrize("fixture", ["label_smoothing/clamp_log_probs_textbook.py",
                                     "label_smoothing/log_softmax_plus_eps.py"])
def test_a_finite_but_wrong_loss_on_large_logits_is_no_log_underflow(grade, fixture):
    """A clamped log is finite: an infinite buggy value is matched only by the same infinity."""
    r = grade("label-smoothing", fixture)
    assert r.diagnoses == ()
    assert by_name(r)["loss on random logits"].passed


def test_an_infinite_expected_value_is_not_matched_by_a_finite_one():
    from dlgrade.graders.compare import allclose, compare

    assert not allclose(np.array(14.0), np.array(np.inf), 1e-6, 1e-9)
    assert allclose(np.array([np.inf, 1.0]), np.array([np.inf, 1.0]), 1e-6, 1e-9)
    assert compare(np.array([1.0, 2.0]), np.array([1.0, -np.inf]), 1e-6, 1e-9).mismatched == 1


# --------------------------------------------------------------------------- device errors

CUDA_ADVICE = ("asks for a CUDA device, but the input is on the CPU here; "
               "use the input's device (logits.device) instead of .cuda() or device=\"cuda\"")
NAMES_CUDA = [("gpu/hardcodes_cuda.py", 5), ("label_smoothing/ls_device_cuda_string.py", 10),
              ("label_smoothing/ls_cuda_in_module.py", 12)]


@pytest.mark.parametrize("fixture,line", NAMES_CUDA)
def test_code_that_names_cuda_is_device_mismatch_on_every_machine(grade, fixture, line):
    """The checks run without a GPU everywhere (the main job never sees one)."""
    r = grade("label-smoothing", fixture)
    assert r.score == 0 and r.diagnoses == ("device-mismatch",)
    c = by_name(r)
    assert c["loss on random logits"].message.endswith(f"(case 'random'): line {line} {CUDA_ADVICE}")
    assert c["runs on any device (probe)"].diagnoses == ("device-mismatch",)
    assert c["gradient w.r.t. logits (autograd)"].diagnoses == ("device-mismatch",)


@pytest.mark.parametrize("fixture,line", NAMES_CUDA)
def test_the_cpu_only_message_is_pinned(grade, fixture, line):
    import torch

    if torch.version.cuda is not None:
        pytest.skip("a CUDA build words the error its own way (No CUDA GPUs are available)")
    c = by_name(grade("label-smoothing", fixture))["loss on random logits"]
    assert c.message == (
        f"label_smoothing_ce(...) raised AssertionError: Torch not compiled with CUDA enabled (line {line}) "
        f"on random logits (16 x 10), epsilon = 0.1 (case 'random'): line {line} {CUDA_ADVICE}")


@pytest.mark.parametrize("message", ["Torch not compiled with CUDA enabled",
                                     "Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU",
                                     "CUDA driver initialization failed, you might not have a CUDA gpu.",
                                     "No CUDA GPUs are available"])
def test_cpu_only_cuda_errors_are_recognised(message):
    from dlgrade.graders.device_errors import advice, names_missing_device

    assert names_missing_device({"type": "RuntimeError", "message": message, "line": 3})
    assert advice({"cell": 2, "cell_line": 4, "line": 9}, "z").startswith(": cell 2, line 4 asks for a CUDA device")
    assert not names_missing_device({"type": "RuntimeError", "message": "expected all tensors on the same device"})
    assert not names_missing_device({"kind": "timeout", "message": message})


def test_device_mismatch_hint_covers_a_hard_coded_device():
    d = describe("device-mismatch")
    assert d.title == "Not on the input's device"
    assert "`.cuda()`" in d.hint and "device=logits.device" in d.hint


def test_a_colab_notebook_with_a_hard_coded_device_names_its_cell(grade):
    r = grade("label-smoothing", "notebooks/colab_label_smoothing_cuda.ipynb")
    assert r.diagnoses == ("device-mismatch",)
    assert by_name(r)["loss on random logits"].message.endswith(f"(case 'random'): cell 4, line 3 {CUDA_ADVICE}")


def test_softmax_cross_entropy_gradient_with_one_max_for_the_batch(grade):
    r = grade("softmax-ce-grad", "pack/softmax-ce-grad/global_max_shift.py")
    assert r.diagnoses == ("global-max-shift",) and r.score == 7
    assert by_name(r)["large logits stay finite"].message == (
        "softmax_ce_grad(z, y) returned 3 non-finite values on large logits like [20, 134, 854] (case 'large') "
        "(first at (3, 0): nan); expected finite values")
    assert grade("softmax-ce-grad", "pack/softmax-ce-grad/naive_overflow.py").diagnoses == ("overflow",)


def test_the_batch_wide_shift_of_the_gradient_reference():
    from dlgrade.reference.losses import SOFTMAX_CE_MISTAKES, ce_global_max_shift, softmax_ce_grad

    z, y = np.array([[1000.0, 999.0], [0.0, -1.0]]), np.array([0, 1])
    assert np.isnan(ce_global_max_shift(z, y)[1]).all()
    np.testing.assert_allclose(ce_global_max_shift(z, y)[0], softmax_ce_grad(z, y)[0], rtol=1e-12)
    assert SOFTMAX_CE_MISTAKES["global-max-shift"] is ce_global_max_shift
