"""Numbers behind the gradient checks: relative errors, error heatmaps,
finite-difference probes and their tolerance.

Pure functions over numpy arrays; the checks in ``graders/checks/gradients.py``
and ``graders/checks/finite_difference.py`` turn them into results.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

# Elements smaller than this fraction of the largest one are judged on that
# scale: cancellation noise in a near-zero entry (1e-17 where the reference
# has 0) must not fail a correct gradient, as it would with a bare |g - e| / (|g| + |e|).
REL_FLOOR = 1e-8
HEATMAP_SIDE = 32
SAMPLE_ABOVE = 65536  # arrays larger than this are first compared on a sample (see close)
EPS = float(np.finfo(np.float64).eps)
# Rounding in the two loss evaluations of a centred difference, in units of eps·|L|
# (a loss summed over a batch loses a few ulps; this leaves a wide margin).
FD_NOISE_ULPS = 64.0


def _scale(g: np.ndarray, e: np.ndarray) -> float:
    """The largest finite magnitude on either side."""
    with np.errstate(all="ignore"):
        return max(float(np.abs(g[np.isfinite(g)]).max(initial=0.0)), float(np.abs(e[np.isfinite(e)]).max(initial=0.0)))


def elementwise_rel_error(got, expected, scale: float | None = None) -> np.ndarray:
    """cs231n's ``|g - e| / (|g| + |e|)`` per element, with a floor of
    ``REL_FLOOR`` × the largest magnitude so near-zero entries are not noise-driven.

    Non-finite entries get ``inf`` unless both sides hold the same value.
    Shapes must match. ``scale``: the largest magnitude, when the arrays are a
    sample of larger ones.
    """
    g = np.asarray(got, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if g.shape != e.shape:
        raise ValueError(f"shapes differ: {g.shape} vs {e.shape}")
    with np.errstate(all="ignore"):
        finite = np.isfinite(g) & np.isfinite(e)
        scale = _scale(g, e) if scale is None else scale
        floor = max(REL_FLOOR * scale, np.finfo(np.float64).tiny)
        rel = np.abs(g - e) / np.maximum(np.abs(g) + np.abs(e), floor)
    same = (g == e) | (np.isnan(g) & np.isnan(e))
    return np.where(finite, rel, np.where(same, 0.0, np.inf))


def rel_error(got, expected) -> float:
    """The largest :func:`elementwise_rel_error` (0 for empty arrays)."""
    r = elementwise_rel_error(got, expected)
    return float(r.max()) if r.size else 0.0


def close(got, expected, tolerance: float) -> bool:
    """Same shape and :func:`rel_error` within ``tolerance``."""
    try:
        g = np.asarray(got, dtype=np.float64)
        e = np.asarray(expected, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    if g.shape != e.shape:
        return False
    if np.array_equal(g, e):  # the common case when comparing references: one cheap pass
        return True
    if g.size > SAMPLE_ABOVE:
        # a strided sample, judged on the whole arrays' scale, can only under-estimate the
        # largest error: when it already exceeds the tolerance, the arrays are not close
        pick = np.linspace(0, g.size - 1, SAMPLE_ABOVE // 16).astype(np.int64)
        sample = elementwise_rel_error(g.reshape(-1)[pick], e.reshape(-1)[pick], _scale(g, e))
        if sample.max() > tolerance:
            return False
    return rel_error(g, e) <= tolerance


def json_float(x) -> float | str:
    """A float for JSON; non-finite values as the strings ``nan``, ``inf``, ``-inf``."""
    x = float(x)
    if np.isnan(x):
        return "nan"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def heatmap(err: np.ndarray, side: int = HEATMAP_SIDE) -> dict:
    """``|error|`` pooled to at most ``side`` × ``side`` blocks, keeping each block's max.

    A vector becomes one row; arrays of more than two axes are flattened after
    the first. NaN counts as ``inf`` (the worst).
    """
    a = np.abs(np.asarray(err, dtype=np.float64))
    a = np.where(np.isnan(a), np.inf, a)
    a = a.reshape(1, -1) if a.ndim <= 1 else a.reshape(a.shape[0], -1)
    rows, cols = min(a.shape[0], side), min(a.shape[1], side)
    if a.size == 0:
        return {"rows": 0, "cols": 0, "values": [], "max": 0.0, "note": "max |error| per block"}
    r_starts = (np.arange(rows) * a.shape[0]) // rows
    c_starts = (np.arange(cols) * a.shape[1]) // cols
    pooled = np.maximum.reduceat(np.maximum.reduceat(a, r_starts, axis=0), c_starts, axis=1)
    return {"rows": rows, "cols": cols, "values": [[json_float(v) for v in row] for row in pooled],
            "max": json_float(pooled.max()), "note": "max |error| per block"}


# --------------------------------------------------------------------------- finite differences


@dataclass(frozen=True)
class Comparison:
    """One finite-difference probe: the analytic and numeric derivative and the verdict."""

    analytic: float
    numeric: float
    rel_error: float
    passed: bool


def compare_derivative(analytic: float, loss_plus: float, loss_minus: float, step: float,
                       tolerance: float) -> Comparison:
    """Centred difference ``(L(θ+hv) - L(θ-hv)) / 2h`` against ``vᵀg``.

    Passes when ``|a - n| <= tolerance·(|a| + |n|) + noise``, where ``noise``
    bounds the rounding in the two loss values (``FD_NOISE_ULPS`` ulps of the
    larger, divided by 2h): a derivative that is truly 0 cannot fail on noise.
    """
    numeric = (loss_plus - loss_minus) / (2.0 * step)
    a, n = float(analytic), float(numeric)
    if not (np.isfinite(a) and np.isfinite(n)):
        return Comparison(a, n, float("inf"), False)
    diff = abs(a - n)
    rel = diff / max(abs(a) + abs(n), np.finfo(np.float64).tiny) if diff else 0.0
    noise = FD_NOISE_ULPS * EPS * max(abs(loss_plus), abs(loss_minus), 1.0) / (2.0 * step)
    return Comparison(a, n, rel, diff <= tolerance * (abs(a) + abs(n)) + noise)


class KinkGuard:
    """Tells whether a step keeps the loss on one smooth piece.

    ``kinks(*args)`` returns the arrays whose sign changes mark non-smooth
    points (a ReLU's inputs). They must be affine in any one argument (true of
    a first layer's pre-activations), so one evaluation decides a ``±delta``
    step: ``k(θ - δ) = 2·k(θ) - k(θ + δ)``. An argument the kinks do not depend
    on is found once and never costs an evaluation again. Without ``kinks``
    every step is smooth.
    """

    def __init__(self, kinks: Callable | None, args: Sequence):
        self.kinks = kinks
        self.args = list(args)
        self.base = [np.asarray(k, dtype=np.float64) for k in kinks(*self.args)] if kinks else []
        self._affects: dict[int, bool] = {}

    def _at(self, arg: int, delta) -> list[np.ndarray]:
        moved = list(self.args)
        moved[arg] = np.asarray(self.args[arg], dtype=np.float64) + delta
        return [np.asarray(k, dtype=np.float64) for k in self.kinks(*moved)]

    def affects(self, arg: int) -> bool:
        if arg not in self._affects:
            shape = np.shape(self.args[arg])
            probe = 1e-3 * np.linspace(1.0, 2.0, int(np.prod(shape, dtype=np.int64))).reshape(shape)
            self._affects[arg] = any(not np.array_equal(b, k) for b, k in zip(self.base, self._at(arg, probe)))
        return self._affects[arg]

    def smooth(self, arg: int, delta) -> bool:
        """Whether no kink lies within ``±delta`` of the current value of argument ``arg``."""
        if self.kinks is None or not self.affects(arg):
            return True
        for b, plus in zip(self.base, self._at(arg, delta)):
            sign = np.sign(b)
            if not (np.array_equal(sign, np.sign(plus)) and np.array_equal(sign, np.sign(2.0 * b - plus))):
                return False
        return True
