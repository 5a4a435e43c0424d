"""Geometry for the reports' inline SVG charts, computed from result numbers.

Only coordinates, colours and the numbers to label come out of here; the SVG
markup itself is written in ``templates/macros.html.j2``. Every label is a
number taken from the result (formatted with :func:`dlgrade.graders.compare.fmt_num`)
or an axis tick (a power of ten, a bin edge).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from dlgrade.graders.compare import fmt_num

# Gradient bar chart (one row per parameter, log-scale relative error).
BAR_LABEL_W = 150
BAR_PLOT_W = 360
BAR_VALUE_W = 130
BAR_ROW_H = 28
BAR_H = 14
BAR_TOP = 20
BAR_AXIS_H = 30
MAX_TICK_LABELS = 7
LOWEST_DECADE = -20

# Heatmap of where a gradient's error sits (at most 32 x 32 blocks).
HEAT_MAX_W = 320
HEAT_MAX_H = 320
HEAT_MAX_CELL = 16
HEAT_MIN_CELL = 4
# ColorBrewer OrRd: light (small error) to dark (large error), readable in grey too.
HEAT_STOPS = ("#fff7ec", "#fdd49e", "#fc8d59", "#d7301f", "#7f0000")
HEAT_NONFINITE = "#000000"

# Class score histogram.
HIST_BINS = 10
HIST_PLOT_W = 520
HIST_PLOT_H = 160
HIST_TOP = 22
HIST_LEFT = 8
HIST_AXIS_H = 40


def as_float(x) -> float | None:
    """A number from a result (float, int, or the JSON strings "nan"/"inf"/"-inf"), else None."""
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, str) and x.strip().lower() in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity"):
        return float(x)
    return None


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class BarRow:
    name: str
    shape: str
    y: float
    width: float
    value: str
    passed: bool
    nonfinite: bool
    tol_x: float | None
    tolerance: str


@dataclass(frozen=True)
class BarChart:
    width: float
    height: float
    plot_x: float
    plot_w: float
    value_x: float
    axis_y: float
    bar_h: float
    row_h: float
    rows: tuple[BarRow, ...]
    ticks: tuple[Tick, ...]
    common_tol: Tick | None = None  # one label when every parameter has the same tolerance


def _shape_text(shape) -> str:
    if isinstance(shape, (list, tuple)) and all(isinstance(s, int) for s in shape):
        return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    return ""


def gradient_chart(params: list) -> BarChart | None:
    """Horizontal bars of each parameter's relative error on a log axis, with its tolerance.

    A zero error has no bar; a non-finite one fills the plot (and is labelled
    ``inf``/``nan``). Returns None when no parameter carries a ``rel_error``.
    """
    rows_in = [p for p in params if isinstance(p, dict) and "rel_error" in p]
    if not rows_in:
        return None
    positives = []
    for p in rows_in:
        for key in ("rel_error", "tolerance"):
            v = as_float(p.get(key))
            if v is not None and math.isfinite(v) and v > 0:
                positives.append(v)
    if positives:
        lo = max(math.floor(math.log10(min(positives))) - 1, LOWEST_DECADE)
        hi = max(math.ceil(math.log10(max(positives))), lo + 2)
    else:
        lo, hi = -12, 0
    plot_x, plot_w = BAR_LABEL_W, BAR_PLOT_W

    def x_of(v: float) -> float:
        t = (math.log10(v) - lo) / (hi - lo)
        return plot_x + plot_w * min(max(t, 0.0), 1.0)

    rows = []
    for i, p in enumerate(rows_in):
        y = BAR_TOP + i * BAR_ROW_H
        v = as_float(p.get("rel_error"))
        nonfinite = v is None or not math.isfinite(v)
        if nonfinite:
            width = plot_w
        elif v <= 0:
            width = 0.0
        else:
            width = x_of(v) - plot_x
        tol = as_float(p.get("tolerance"))
        tol_ok = tol is not None and math.isfinite(tol) and tol > 0
        rows.append(BarRow(
            name=str(p.get("name", f"#{i + 1}")), shape=_shape_text(p.get("shape")), y=y,
            width=round(width, 2), value=fmt_num(v) if v is not None else str(p.get("rel_error")),
            passed=bool(p.get("passed")), nonfinite=nonfinite,
            tol_x=round(x_of(tol), 2) if tol_ok else None,
            tolerance=fmt_num(tol) if tol is not None else "",
        ))
    step = max(1, math.ceil((hi - lo) / (MAX_TICK_LABELS - 1)))
    ticks = tuple(Tick(round(x_of(10.0 ** e), 2), fmt_num(10.0 ** e)) for e in range(hi, lo - 1, -step))
    axis_y = BAR_TOP + len(rows) * BAR_ROW_H
    tols = {(r.tol_x, r.tolerance) for r in rows}
    common = None
    if len(tols) == 1 and rows[0].tol_x is not None:
        common = Tick(rows[0].tol_x, rows[0].tolerance)
    return BarChart(
        width=BAR_LABEL_W + BAR_PLOT_W + BAR_VALUE_W, height=axis_y + BAR_AXIS_H,
        plot_x=plot_x, plot_w=plot_w, value_x=plot_x + plot_w + 8, axis_y=axis_y,
        bar_h=BAR_H, row_h=BAR_ROW_H, rows=tuple(rows), ticks=tuple(sorted(ticks, key=lambda t: t.x)),
        common_tol=common,
    )


@dataclass(frozen=True)
class HeatCell:
    x: int
    y: int
    row: int
    col: int
    color: str
    value: str
    hottest: bool


@dataclass(frozen=True)
class Heatmap:
    rows: int
    cols: int
    cell: int
    width: int
    height: int
    cells: tuple[HeatCell, ...]
    max: str
    note: str
    legend: tuple[str, ...]


def _mix(a: str, b: str, t: float) -> str:
    ca = [int(a[i:i + 2], 16) for i in (1, 3, 5)]
    cb = [int(b[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(ca, cb))


def heat_color(t: float) -> str:
    """The colour for a fraction ``t`` of the maximum (0 = lightest, 1 = darkest)."""
    t = min(max(t, 0.0), 1.0) * (len(HEAT_STOPS) - 1)
    i = min(int(t), len(HEAT_STOPS) - 2)
    return _mix(HEAT_STOPS[i], HEAT_STOPS[i + 1], t - i)


def heatmap(hm) -> Heatmap | None:
    """Cells of a gradient-error heatmap (``{"rows", "cols", "values", "max", "note"}``).

    The darkest cell is the largest error; the hottest one is outlined. Returns
    None for a heatmap whose values do not form the announced grid.
    """
    if not isinstance(hm, dict):
        return None
    values = hm.get("values")
    if not isinstance(values, list) or not values or not all(isinstance(r, list) for r in values):
        return None
    rows, cols = len(values), max(len(r) for r in values)
    if rows > 64 or cols > 64 or any(len(r) != cols for r in values):
        return None
    cell = max(HEAT_MIN_CELL, min(HEAT_MAX_CELL, HEAT_MAX_W // cols, HEAT_MAX_H // rows))
    nums = [[as_float(v) for v in r] for r in values]
    finite = [v for r in nums for v in r if v is not None and math.isfinite(v)]
    top = as_float(hm.get("max"))
    scale = top if top is not None and math.isfinite(top) and top > 0 else max(finite, default=0.0)
    hottest = None
    best = -math.inf
    for i, r in enumerate(nums):
        for j, v in enumerate(r):
            key = math.inf if v is None or not math.isfinite(v) else abs(v)
            if key > best:
                best, hottest = key, (i, j)
    cells = []
    for i, r in enumerate(nums):
        for j, v in enumerate(r):
            if v is None or not math.isfinite(v):
                color, text = HEAT_NONFINITE, (fmt_num(v) if v is not None else str(values[i][j]))
            else:
                color, text = heat_color(abs(v) / scale if scale > 0 else 0.0), fmt_num(v)
            cells.append(HeatCell(j * cell, i * cell, i, j, color, text, (i, j) == hottest))
    return Heatmap(rows=rows, cols=cols, cell=cell, width=cols * cell, height=rows * cell,
                   cells=tuple(cells), max=fmt_num(top) if top is not None else fmt_num(scale),
                   note=str(hm.get("note", "")), legend=tuple(heat_color(k / 4) for k in range(5)))


@dataclass(frozen=True)
class HistBar:
    x: float
    y: float
    width: float
    height: float
    count: int
    label: str
    low: str
    high: str


@dataclass(frozen=True)
class Histogram:
    width: float
    height: float
    axis_y: float
    bars: tuple[HistBar, ...]
    unit: str  # "points" or "%"
    total: int


def histogram(scores: list[tuple[float, float]]) -> Histogram:
    """Counts of students per score bin from ``(score, max_score)`` pairs.

    Bins are tenths of the maximum in points when every student has the same
    maximum, else tenths of 100 %. The last bin includes the maximum.
    """
    maxima = {round(m, 9) for _, m in scores}
    if len(maxima) <= 1 and maxima and next(iter(maxima)) > 0:
        top, unit = next(iter(maxima)), "points"
        values = [s for s, _ in scores]
    else:
        top, unit = 100.0, "%"
        values = [100.0 * s / m if m > 0 else 0.0 for s, m in scores]
    counts = [0] * HIST_BINS
    for v in values:
        k = int(math.floor(v / top * HIST_BINS)) if top > 0 else 0
        counts[min(max(k, 0), HIST_BINS - 1)] += 1
    peak = max(counts, default=0) or 1
    bw = HIST_PLOT_W / HIST_BINS
    bars = []
    for k, n in enumerate(counts):
        h = HIST_PLOT_H * n / peak
        low, high = fmt_num(top * k / HIST_BINS), fmt_num(top * (k + 1) / HIST_BINS)
        bars.append(HistBar(x=round(HIST_LEFT + k * bw, 2), y=round(HIST_TOP + HIST_PLOT_H - h, 2),
                            width=round(bw - 4, 2), height=round(h, 2), count=n,
                            label=f"{low}–{high}", low=low, high=high))
    return Histogram(width=HIST_LEFT + HIST_PLOT_W + 8, height=HIST_TOP + HIST_PLOT_H + HIST_AXIS_H,
                     axis_y=HIST_TOP + HIST_PLOT_H, bars=tuple(bars), unit=unit, total=len(values))
