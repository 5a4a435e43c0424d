"""Conditions that keep an exercise's ordinary cases well conditioned for every seed.

A spec names one per case (``condition = "dlgrade.reference.conditioning:two_layer_scores"``);
inputs it refuses are drawn again (see :mod:`dlgrade.graders.inputs`). The point is
fairness: correct code that guards a logarithm the textbook way
(``np.clip(p, 1e-7, 1)``, ``-log(p + 1e-12)``, ``-log(p + 1e-9)``) must score the
same as log-sum-exp code for every student id, so no softmax probability of an
ordinary case may come near the guards. Extreme values belong in the cases named
for them, which are ``shared`` by every student.
"""
from __future__ import annotations

import numpy as np

# Every class keeps at least this share of the uniform probability 1/C, so with C
# classes no probability is below MIN_SHARE / C (2.5e-3 for four classes, 1e-5 for a
# thousand): an epsilon of 1e-9 inside a log then moves a loss by < 1e-6 of itself.
MIN_SHARE = 1e-2


def softmax_floor(scores, axis: int = -1) -> float:
    """The smallest softmax probability of ``scores`` along ``axis``, times the class count."""
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return 1.0
    logp = s - s.max(axis=axis, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(axis=axis, keepdims=True))
    return float(np.exp(logp.min()) * s.shape[axis])


def logits(z, *rest, **kwargs) -> bool:
    """The first argument is a batch of logits (N, C): no class far below 1/C."""
    return np.all(np.isfinite(z)) and softmax_floor(z, axis=1) >= MIN_SHARE


def two_layer_scores(X, y, W1, b1, W2, b2, *rest, **kwargs) -> bool:
    """The scores ``relu(X W1 + b1) W2 + b2`` of a two-layer network: no class far below 1/C,
    and no ReLU input within 1e-3 of its kink (where one-sided derivatives differ)."""
    z1 = np.asarray(X, dtype=np.float64) @ W1 + b1
    scores = np.maximum(z1, 0) @ W2 + b2
    return bool(np.abs(z1).min() > 1e-3) and logits(scores)


# A mistake must be visible on a case for every student or for none: its output either
# coincides with the truth (within a tenth of the tolerance: the mistake cannot show
# there, e.g. ε spread over C − 1 classes when ε = 0) or differs by at least ten times
# the tolerance (the evidence rule's margin). Draws in between, where a cancellation
# hides the mistake from one student and not from another, are drawn again.
APART = 10.0
RTOL = {"float64": 1e-6, "float32": 1e-4}


def decisive(truth: float, buggy: list[float], dtype: str) -> bool:
    """Whether every buggy value is clearly equal to ``truth`` or clearly apart from it."""
    rtol = RTOL.get(dtype, 1e-6)
    for b in buggy:
        rel = abs(b - truth) / max(abs(truth), 1e-300)
        if not np.isfinite(b) or rel >= APART * rtol:
            continue
        if rel > rtol / APART:
            return False
    return True


def label_smoothing_case(logits_, target, epsilon, *rest, **kwargs) -> bool:
    """Well-conditioned logits on which every label-smoothing mistake shows, or none does."""
    if not logits(logits_):
        return False
    import torch

    from dlgrade.reference.label_smoothing import MISTAKES, label_smoothing_ce

    z = torch.from_numpy(np.ascontiguousarray(logits_))
    t = torch.from_numpy(np.ascontiguousarray(target))
    with torch.no_grad():
        truth = float(label_smoothing_ce(z, t, epsilon))
        buggy = [float(fn(z, t, epsilon)) for fn in MISTAKES.values()]
    return decisive(truth, buggy, np.asarray(logits_).dtype.name)
