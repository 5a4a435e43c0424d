"""graders/gradcheck.py: relative errors, heatmaps, centred differences, kink guard."""
import json

import numpy as np
import pytest

from dlgrade.graders import gradcheck


def test_rel_error_is_cs231n_and_scale_free():
    e = np.array([1.0, -2.0, 4.0])
    assert gradcheck.rel_error(e, e) == 0.0
    assert gradcheck.rel_error(-e, e) == 1.0
    assert gradcheck.rel_error(3 * e, e) == pytest.approx(0.5)
    assert gradcheck.rel_error(3e-9 * e, 1e-9 * e) == pytest.approx(0.5)  # same at any scale


def test_noise_in_near_zero_entries_does_not_count():
    expected = np.array([0.5, 0.0, 1e-17])
    got = np.array([0.5, 3e-17, 0.0])  # cancellation noise where the truth is ~0
    assert gradcheck.rel_error(got, expected) < 1e-8
    assert gradcheck.rel_error(np.array([0.5, 1e-3, 0.0]), expected) > 0.99  # a real error does


def test_non_finite_entries_are_infinitely_wrong_unless_identical():
    e = np.array([1.0, 2.0])
    assert gradcheck.rel_error(np.array([1.0, np.nan]), e) == np.inf
    assert gradcheck.rel_error(np.array([1.0, np.inf]), np.array([1.0, np.inf])) == 0.0


def test_close_needs_the_same_shape():
    assert gradcheck.close(np.eye(2), np.eye(2), 1e-6)
    assert not gradcheck.close(np.ones((2, 3)), np.ones((3, 2)), 1e-6)
    assert not gradcheck.close(np.ones(3), np.ones(3) * (1 + 1e-3), 1e-6)


def test_heatmap_pools_block_maxima_to_at_most_32_by_32():
    err = np.zeros((100, 70))
    err[99, 0] = -5.0
    err[0, 69] = 2.0
    hm = gradcheck.heatmap(err)
    assert (hm["rows"], hm["cols"]) == (32, 32)
    assert len(hm["values"]) == 32 and all(len(r) == 32 for r in hm["values"])
    assert hm["values"][31][0] == 5.0 and hm["values"][0][31] == 2.0 and hm["max"] == 5.0
    assert sum(v for r in hm["values"] for v in r) == 7.0
    assert hm["note"] == "max |error| per block"


def test_heatmap_of_small_matrices_vectors_and_nan():
    assert gradcheck.heatmap(np.array([[1.0, -2.0], [0.0, 3.0]]))["values"] == [[1.0, 2.0], [0.0, 3.0]]
    hm = gradcheck.heatmap(np.array([0.0, np.nan, 1.0]))
    assert (hm["rows"], hm["cols"]) == (1, 3)
    assert hm["values"] == [[0.0, "inf", 1.0]] and hm["max"] == "inf"
    json.dumps(hm, allow_nan=False)
    assert gradcheck.heatmap(np.arange(1000.0))["cols"] == 32


def test_centred_difference_within_tolerance_and_noise():
    ok = gradcheck.compare_derivative(2.0, 1.0 + 2e-6, 1.0 - 2e-6, 1e-6, 1e-4)
    assert ok.passed and ok.numeric == pytest.approx(2.0) and ok.rel_error < 1e-9
    bad = gradcheck.compare_derivative(2.2, 1.0 + 2e-6, 1.0 - 2e-6, 1e-6, 1e-4)
    assert not bad.passed and bad.rel_error == pytest.approx(0.2 / 4.2, rel=1e-6)
    # a derivative that is truly 0: rounding in the loss values cannot fail it
    flat = gradcheck.compare_derivative(0.0, 2.3 + 4e-16, 2.3, 1e-6, 1e-4)
    assert flat.passed and flat.rel_error == 1.0
    assert not gradcheck.compare_derivative(0.0, float("nan"), 1.0, 1e-6, 1e-4).passed


def _relu_inputs(X, W, b):
    return [X @ W + b]


def test_kink_guard_rejects_steps_that_cross_a_relu_kink():
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    W = np.array([[1e-7, 1.0], [1.0, 1.0]])  # z[0, 0] = 1e-7: a kink 1e-7 away
    b = np.zeros(2)
    guard = gradcheck.KinkGuard(_relu_inputs, [X, W, b])
    assert not guard.smooth(1, np.full((2, 2), 1e-6))
    assert not guard.smooth(1, np.full((2, 2), -1e-6))  # the minus side crosses too
    assert guard.smooth(1, np.full((2, 2), 1e-8))
    assert not guard.smooth(2, np.array([-1e-6, 0.0]))
    assert guard.smooth(0, np.zeros((2, 2)))


def test_kink_guard_skips_arguments_the_kinks_do_not_depend_on():
    calls = []

    def kinks(x, w):
        calls.append(1)
        return [x * 2.0]

    guard = gradcheck.KinkGuard(kinks, [np.array([1.0, -1.0]), np.array([3.0])])
    for _ in range(5):
        assert guard.smooth(1, np.array([1e6]))
    assert len(calls) == 2  # the base, and one probe to learn that w does not matter
    assert gradcheck.KinkGuard(None, [1]).smooth(0, 1.0)


def test_close_on_large_arrays_agrees_with_the_full_comparison():
    rng = np.random.default_rng(0)
    e = rng.normal(size=(300, 400))
    assert gradcheck.close(e * (1 + 1e-9), e, 1e-6)
    one_off = e.copy()
    one_off[123, 45] += 1.0  # outside any sample: the full comparison still sees it
    assert not gradcheck.close(one_off, e, 1e-6)
    assert not gradcheck.close(-e, e, 1e-6)
    tiny = e.copy()
    tiny[0, 0] = 1e-20  # scale taken from the whole arrays, not the sample
    assert gradcheck.close(tiny + 1e-25, tiny, 1e-6)
