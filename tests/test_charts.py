"""reports/charts.py: chart geometry follows the numbers it is given."""
import math

import pytest

from dlgrade.reports import charts


def test_as_float_reads_json_non_finite_strings_and_rejects_the_rest():
    assert charts.as_float(2) == 2.0
    assert math.isinf(charts.as_float("inf")) and charts.as_float("-inf") < 0
    assert math.isnan(charts.as_float("nan"))
    assert charts.as_float("12") is None
    assert charts.as_float(True) is None
    assert charts.as_float(None) is None


def test_gradient_bars_are_log_scaled_and_marked_with_their_tolerance():
    ch = charts.gradient_chart([
        {"name": "W1", "shape": [3, 4], "rel_error": 1e-2, "tolerance": 1e-7, "passed": False},
        {"name": "b1", "shape": [4], "rel_error": 1e-10, "tolerance": 1e-7, "passed": True},
        {"name": "W2", "shape": [4, 2], "rel_error": "inf", "tolerance": 1e-7, "passed": False},
        {"name": "b2", "shape": [2], "rel_error": 0.0, "tolerance": 1e-7, "passed": True},
    ])
    w1, b1, w2, b2 = ch.rows
    # domain: one decade below the smallest value (1e-11) up to 1e-2
    decade = ch.plot_w / 9
    assert w1.width == pytest.approx(9 * decade, abs=0.01)
    assert b1.width == pytest.approx(1 * decade, abs=0.01)
    assert w1.tol_x == b1.tol_x == pytest.approx(ch.plot_x + 4 * decade, abs=0.01)
    assert (w2.nonfinite, w2.width, w2.value) == (True, ch.plot_w, "inf")
    assert (b2.width, b2.value) == (0.0, "0")
    assert (w1.value, w1.tolerance, w1.shape, w1.passed) == ("0.01", "1e-07", "(3, 4)", False)
    assert b1.shape == "(4,)"
    # every other decade is labelled (9 decades, at most 7 labels), ending at the top one
    assert [t.label for t in ch.ticks] == ["1e-10", "1e-08", "1e-06", "0.0001", "0.01"]
    assert all(ch.plot_x <= t.x <= ch.plot_x + ch.plot_w for t in ch.ticks)
    assert (ch.common_tol.x, ch.common_tol.label) == (w1.tol_x, "1e-07")


def test_gradient_chart_labels_no_common_tolerance_when_they_differ():
    ch = charts.gradient_chart([{"name": "a", "rel_error": 1e-3, "tolerance": 1e-5},
                                {"name": "b", "rel_error": 1e-3, "tolerance": 1e-6}])
    assert ch.common_tol is None and ch.rows[0].tol_x > ch.rows[1].tol_x


def test_gradient_chart_without_errors_is_none():
    assert charts.gradient_chart([{"name": "W", "shape": [2]}]) is None


def test_heatmap_darkest_cell_is_the_largest_error_and_is_outlined():
    hm = charts.heatmap({"rows": 2, "cols": 3, "values": [[0.0, 0.5, 1.0], [0.25, "nan", 0.0]],
                         "max": 1.0, "note": "max |error| per block"})
    cells = {(c.row, c.col): c for c in hm.cells}
    assert cells[(0, 2)].color == charts.HEAT_STOPS[-1]
    assert cells[(0, 0)].color == charts.HEAT_STOPS[0]
    assert cells[(0, 1)].color == charts.HEAT_STOPS[2]
    assert cells[(1, 1)].color == charts.HEAT_NONFINITE and cells[(1, 1)].value == "nan"
    assert [k for k, c in cells.items() if c.hottest] == [(1, 1)]  # a non-finite error outranks all
    assert (hm.rows, hm.cols, hm.max, hm.note) == (2, 3, "1", "max |error| per block")
    assert hm.width == 3 * hm.cell and hm.cell == charts.HEAT_MAX_CELL


def test_heatmap_rejects_a_ragged_grid():
    assert charts.heatmap({"rows": 2, "cols": 2, "values": [[1.0, 2.0], [1.0]], "max": 2.0}) is None
    assert charts.heatmap({"values": "x"}) is None


def test_histogram_bins_in_points_when_every_maximum_is_the_same():
    h = charts.histogram([(0.0, 10.0), (3.5, 10.0), (10.0, 10.0), (9.99, 10.0), (4.0, 10.0)])
    assert h.unit == "points" and h.total == 5
    assert [b.count for b in h.bars] == [1, 0, 0, 1, 1, 0, 0, 0, 0, 2]
    assert h.bars[3].label == "3–4" and h.bars[-1].label == "9–10"
    tallest = max(h.bars, key=lambda b: b.height)
    assert tallest.count == 2 and tallest.height == charts.HIST_PLOT_H


def test_histogram_uses_percent_when_maxima_differ():
    h = charts.histogram([(5.0, 10.0), (4.0, 5.0)])
    assert h.unit == "%"
    assert [b.count for b in h.bars][5] == 1 and [b.count for b in h.bars][8] == 1
