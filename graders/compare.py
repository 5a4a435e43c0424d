"""Comparing a student's array with the expected one, numpy.testing-style.

:func:`compare` computes a frozen :class:`Mismatch` first (counts, worst index,
max abs/rel error, the tolerance used, a few example mismatches); messages are
formatted from it afterwards, so the terminal, JSON and HTML all show the same
numbers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

# (rtol, atol) by dtype: loose enough for any correct formula (logsumexp vs.
# division, loops vs. vectorised), tight enough to catch every real mistake.
TOLERANCES = {
    "float64": (1e-6, 1e-9),
    "float32": (1e-4, 1e-6),
    "float16": (1e-2, 1e-3),
    "bfloat16": (1.6e-2, 1e-2),
}
MAX_EXAMPLES = 5


def tolerance_for(dtype_name: str, rtol=None, atol=None) -> tuple[float, float]:
    d_rtol, d_atol = TOLERANCES.get(dtype_name, TOLERANCES["float64"])
    return (d_rtol if rtol is None else float(rtol)), (d_atol if atol is None else float(atol))


def fmt_num(x: float) -> str:
    """A number as a student reads it: short, exact enough, inf/nan spelled out."""
    x = float(x)
    if np.isnan(x):
        return "nan"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    if 1e-4 <= abs(x) < 1e5:
        return f"{x:.6g}"
    return f"{x:.3g}"


def fmt_index(idx: tuple) -> str:
    return "(" + ", ".join(str(int(i)) for i in idx) + ("," if len(idx) == 1 else "") + ")" if idx else "()"


@dataclass(frozen=True)
class Mismatch:
    """How far ``got`` is from ``expected``; ``ok`` says whether within tolerance."""

    ok: bool
    total: int
    mismatched: int
    max_abs: float
    max_rel: float
    worst_index: tuple
    worst_got: float
    worst_expected: float
    rtol: float
    atol: float
    nonfinite_unexpected: int = 0
    examples: tuple = field(default_factory=tuple)  # ((index, got, expected), ...)

    @property
    def percent(self) -> float:
        return 100.0 * self.mismatched / self.total if self.total else 0.0

    def as_details(self) -> dict:
        d = asdict(self)
        d["worst_index"] = list(self.worst_index)
        d["examples"] = [{"index": list(i), "got": g, "expected": e} for i, g, e in self.examples]
        for k in ("max_abs", "max_rel", "worst_got", "worst_expected"):
            d[k] = _json_float(d[k])
        for ex in d["examples"]:
            ex["got"], ex["expected"] = _json_float(ex["got"]), _json_float(ex["expected"])
        return d

    def summary(self) -> str:
        """``12 / 160 elements (7.5%) differ; worst at (3, 7): got 0.21, expected 0.35 (...)``"""
        return (
            f"{self.mismatched} / {self.total} elements ({self.percent:.3g}%) differ; "
            f"worst at {fmt_index(self.worst_index)}: got {fmt_num(self.worst_got)}, "
            f"expected {fmt_num(self.worst_expected)} (max abs error {fmt_num(self.max_abs)}, "
            f"max rel error {fmt_num(self.max_rel)}; allowed {fmt_num(self.atol)} + "
            f"{fmt_num(self.rtol)}·|expected|)"
        )


def _json_float(x):
    x = float(x)
    if np.isnan(x):
        return "nan"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def compare(got: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> Mismatch:
    """Element-wise ``|got - expected| <= atol + rtol * |expected|``; NaN/inf must coincide.

    Shapes must already match (check shape first and say so separately).
    """
    g = np.asarray(got, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if g.shape != e.shape:
        raise ValueError(f"shapes differ: {g.shape} vs {e.shape}")
    total = int(e.size)
    if total == 0:
        return Mismatch(True, 0, 0, 0.0, 0.0, (), 0.0, 0.0, rtol, atol)
    with np.errstate(all="ignore"):
        both_nan = np.isnan(g) & np.isnan(e)
        same_inf = np.isinf(g) & np.isinf(e) & (np.sign(g) == np.sign(e))
        special = both_nan | same_inf
        diff = np.abs(g - e)
        # an infinite expected value is matched only by the same infinity (rtol·inf would allow anything)
        bad = ~special & (~np.isfinite(e) | ~(diff <= atol + rtol * np.abs(e)))
        diff = np.where(special, 0.0, diff)
        diff = np.where(np.isnan(diff), np.inf, diff)
        rel = np.where(np.abs(e) > 0, diff / np.abs(e), np.where(diff > 0, np.inf, 0.0))
    mismatched = int(bad.sum())
    nonfinite_unexpected = int((~np.isfinite(g) & np.isfinite(e)).sum())
    if mismatched:
        score = np.where(bad, diff - (atol + rtol * np.abs(np.where(np.isfinite(e), e, 0.0))), -np.inf)
        flat = int(np.argmax(score))
    else:
        flat = int(np.argmax(diff))
    worst = np.unravel_index(flat, e.shape) if e.ndim else ()
    examples = []
    if mismatched:
        for pos in np.argwhere(bad)[:MAX_EXAMPLES]:
            idx = tuple(int(i) for i in pos)
            examples.append((idx, float(g[idx]), float(e[idx])))
    return Mismatch(
        ok=mismatched == 0, total=total, mismatched=mismatched,
        max_abs=float(diff.max()), max_rel=float(rel.max()),
        worst_index=tuple(int(i) for i in worst), worst_got=float(g[worst]),
        worst_expected=float(e[worst]), rtol=rtol, atol=atol,
        nonfinite_unexpected=nonfinite_unexpected, examples=tuple(examples),
    )


def allclose(got, expected, rtol: float, atol: float) -> bool:
    """Same rule as :func:`compare`, as a bare verdict (shape mismatch is False)."""
    try:
        g = np.asarray(got, dtype=np.float64)
        e = np.asarray(expected, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    if g.shape != e.shape:
        return False
    return compare(g, e, rtol, atol).ok
