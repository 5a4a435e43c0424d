"""graders/compare.py: the numbers first, then the numpy-style summary."""
import numpy as np
import pytest

from dlgrade.graders.compare import allclose, compare, fmt_index, fmt_num, tolerance_for


def test_identical_arrays_match():
    a = np.arange(6.0).reshape(2, 3)
    m = compare(a, a.copy(), 1e-6, 1e-9)
    assert m.ok and m.mismatched == 0 and m.total == 6 and m.max_abs == 0


def test_mismatch_report_names_the_worst_element():
    expected = np.array([[0.1, 0.2], [0.3, 0.4]])
    got = expected.copy()
    got[1, 0] = 0.35
    got[0, 1] = 0.2001
    m = compare(got, expected, rtol=1e-6, atol=1e-9)
    assert not m.ok
    assert m.mismatched == 2 and m.total == 4
    assert m.worst_index == (1, 0)
    assert m.summary() == (
        "2 / 4 elements (50%) differ; worst at (1, 0): got 0.35, expected 0.3 "
        "(max abs error 0.05, max rel error 0.166667; allowed 1e-09 + 1e-06·|expected|)")
    assert [e[0] for e in m.examples] == [(0, 1), (1, 0)]


def test_nan_and_inf_must_coincide():
    e = np.array([0.0, np.inf, np.nan, 1.0])
    assert compare(e.copy(), e, 1e-6, 1e-9).ok
    g = np.array([0.0, np.inf, np.nan, np.nan])
    m = compare(g, e, 1e-6, 1e-9)
    assert not m.ok and m.mismatched == 1 and m.nonfinite_unexpected == 1
    assert m.worst_index == (3,)


def test_shape_mismatch_is_refused_not_broadcast():
    with pytest.raises(ValueError):
        compare(np.zeros((2, 3)), np.zeros((3, 2)), 1e-6, 1e-9)
    assert allclose(np.zeros((2, 3)), np.zeros((3, 2)), 1e-6, 1e-9) is False


def test_dtype_aware_tolerances():
    assert tolerance_for("float32") == (1e-4, 1e-6)
    assert tolerance_for("float64") == (1e-6, 1e-9)
    assert tolerance_for("float32", rtol=0.5) == (0.5, 1e-6)
    x = np.linspace(0.1, 1, 10)
    noisy = (x.astype(np.float32) * (1 + 1e-6)).astype(np.float32)
    assert not compare(noisy, x, *tolerance_for("float64")).ok
    assert compare(noisy, x, *tolerance_for("float32")).ok


def test_number_and_index_formatting():
    assert fmt_num(0.35) == "0.35"
    assert fmt_num(2.03e-313) == "2.03e-313"
    assert fmt_num(float("nan")) == "nan" and fmt_num(float("-inf")) == "-inf"
    assert fmt_num(123456789.0) == "1.23e+08"
    assert fmt_index((3,)) == "(3,)" and fmt_index((1, 2)) == "(1, 2)" and fmt_index(()) == "()"


def test_details_are_json_ready():
    import json

    m = compare(np.array([np.nan, 1.0]), np.array([1.0, 1.0]), 1e-6, 1e-9)
    d = m.as_details()
    json.dumps(d, allow_nan=False)
    assert d["worst_got"] == "nan"
