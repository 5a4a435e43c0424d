"""Trusted losses and their gradients — softmax cross-entropy, Huber, hinge — and the
classic mistakes, one buggy reference each (or a tuple of variants).

Three exercises, three dicts of mistakes:

* ``softmax-ce-grad``: :func:`softmax_ce_grad`, d(mean cross-entropy)/dz, derived
  mechanically from the forward pass by :mod:`dlgrade.reference.autodiff`; mistakes in
  :data:`SOFTMAX_CE_MISTAKES`.
* ``huber-loss``: :func:`huber_loss`, ``(loss, grad)``; mistakes in :data:`HUBER_MISTAKES`.
* ``hinge-loss``: :func:`hinge_loss`, ``(loss, grad)``; mistakes in :data:`HINGE_MISTAKES`.

The closed forms of Huber and hinge are cross-checked against torch autograd
(``F.huber_loss``, ``F.relu``) in ``tests/test_pack_references.py``; this module
never imports torch. Arrays are batch first and losses are means (over the
batch for the cross-entropy and the hinge, over every element for Huber).
:data:`MISTAKES` maps each exercise id to its dict.
"""
from __future__ import annotations

import numpy as np

from dlgrade.reference.autodiff import Var, grad, logsumexp, mean, take_along_axis, total
from dlgrade.reference.softmax import softmax

# --------------------------------------------------------------------------- softmax + cross-entropy


def _labels(y) -> np.ndarray:
    return np.asarray(y).astype(np.int64).reshape(-1, 1)


def _ce_grad(z, y, reduce=mean, target_term: bool = True) -> np.ndarray:
    """d/dz of ``reduce(logsumexp(z) - z[y])``: -log softmax(z)[y] per example.

    ``target_term=False`` drops ``- z[y]`` from the loss before differentiating:
    what is left is the gradient without the one-hot subtracted, derived, not typed in.
    """
    zv = Var(np.asarray(z, dtype=np.float64))
    per_example = logsumexp(zv, axis=1)
    if target_term:
        per_example = per_example - take_along_axis(zv, _labels(y), axis=1)
    return grad(reduce(per_example), [zv])[0]


def softmax_ce_grad(z, y):
    """d(mean over the batch of the softmax cross-entropy)/dz, shape (N, C).

    ``z`` (N, C) logits, ``y`` (N,) integer labels in [0, C). Equal to
    ``(softmax(z) - onehot(y)) / N``, finite for any finite logits.
    """
    return _ce_grad(z, y)


def _onehot(y, shape) -> np.ndarray:
    out = np.zeros(shape)
    out[np.arange(shape[0]), np.asarray(y).astype(np.int64)] = 1.0
    return out


def ce_summed(z, y):
    """``missing-batch-mean``: the gradient of the summed loss, ``softmax(z) - onehot(y)``."""
    return _ce_grad(z, y, reduce=total)


def ce_onehot_not_subtracted(z, y):
    """``onehot-not-subtracted``: ``softmax(z) / N``, the true class's ``- 1`` left out."""
    return _ce_grad(z, y, target_term=False)


def ce_softmax_over_batch(z, y):
    """``wrong-axis``: the softmax taken over the batch (axis 0) instead of the classes."""
    z = np.asarray(z, dtype=np.float64)
    return (softmax(z, axis=0) - _onehot(y, z.shape)) / z.shape[0]


def ce_softmax_over_everything(z, y):
    """``wrong-axis``: one softmax over the whole array instead of one per example."""
    z = np.asarray(z, dtype=np.float64)
    return (softmax(z.reshape(-1)).reshape(z.shape) - _onehot(y, z.shape)) / z.shape[0]


def ce_sign_flipped(z, y):
    """``sign-flipped``: ``(onehot(y) - softmax(z)) / N``."""
    return -softmax_ce_grad(z, y)


def ce_naive_softmax(z, y):
    """``overflow``: exp(z) with no shift, inf/inf = nan for large logits."""
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(all="ignore"):
        e = np.exp(z)
        return (e / e.sum(axis=1, keepdims=True) - _onehot(y, z.shape)) / z.shape[0]


def ce_global_max_shift(z, y):
    """``global-max-shift``: one max for the whole batch, so a row far below it is 0/0 = nan."""
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(all="ignore"):
        e = np.exp(z - z.max())
        return (e / e.sum(axis=1, keepdims=True) - _onehot(y, z.shape)) / z.shape[0]


SOFTMAX_CE_MISTAKES = {
    "missing-batch-mean": ce_summed,
    "onehot-not-subtracted": ce_onehot_not_subtracted,
    "wrong-axis": (ce_softmax_over_batch, ce_softmax_over_everything),
    "sign-flipped": ce_sign_flipped,
    "overflow": ce_naive_softmax,
    "global-max-shift": ce_global_max_shift,
}

# --------------------------------------------------------------------------- Huber


def _residual(pred, target) -> np.ndarray:
    return np.asarray(pred, dtype=np.float64) - np.asarray(target, dtype=np.float64)


def huber_loss(pred, target, delta=1.0):
    """``(loss, grad)``: the mean Huber loss over every element and its gradient w.r.t. ``pred``.

    Per element, with ``r = pred - target``: ``½ r²`` where ``|r| <= delta``,
    ``delta·(|r| - ½ delta)`` beyond (PyTorch's ``F.huber_loss``). The gradient,
    ``r`` or ``delta·sign(r)`` divided by the number of elements, has ``pred``'s
    shape; both branches agree at ``|r| = delta``, so no convention is needed there.
    """
    r = _residual(pred, target)
    a = np.abs(r)
    quad = a <= delta
    loss = np.where(quad, 0.5 * r * r, delta * (a - 0.5 * delta))
    g = np.where(quad, r, delta * np.sign(r)) / r.size
    return float(loss.mean()), g


def huber_linear_without_delta(pred, target, delta=1.0):
    """``missing-delta``: the linear branch written ``|r| - ½δ`` (slope 1, not δ)."""
    r = _residual(pred, target)
    a = np.abs(r)
    quad = a <= delta
    loss = np.where(quad, 0.5 * r * r, a - 0.5 * delta)
    return float(loss.mean()), np.where(quad, r, np.sign(r)) / r.size


def huber_offset_without_delta(pred, target, delta=1.0):
    """``missing-delta``: the linear branch written ``δ·|r| - ½δ`` (the offset ½δ², one δ short)."""
    r = _residual(pred, target)
    a = np.abs(r)
    quad = a <= delta
    loss = np.where(quad, 0.5 * r * r, delta * a - 0.5 * delta)
    return float(loss.mean()), huber_loss(pred, target, delta)[1]


def huber_gradient_without_delta(pred, target, delta=1.0):
    """``missing-delta``: the right loss, but the linear branch's gradient is ``sign(r)``, not ``δ·sign(r)``."""
    r = _residual(pred, target)
    quad = np.abs(r) <= delta
    return huber_loss(pred, target, delta)[0], np.where(quad, r, np.sign(r)) / r.size


def huber_mae(pred, target, delta=1.0):
    """``mae-instead``: the mean absolute error ``|r|`` and its gradient ``sign(r)``."""
    r = _residual(pred, target)
    return float(np.abs(r).mean()), np.sign(r) / r.size


def huber_mse(pred, target, delta=1.0):
    """``mse-instead``: ``½ r²`` everywhere, no linear branch."""
    r = _residual(pred, target)
    return float((0.5 * r * r).mean()), r / r.size


def huber_summed(pred, target, delta=1.0):
    """``sum-not-mean``: the loss summed over the elements (and the gradient not divided)."""
    loss, g = huber_loss(pred, target, delta)
    n = _residual(pred, target).size
    return loss * n, g * n


def huber_sign_flipped(pred, target, delta=1.0):
    """``sign-flipped``: the gradient w.r.t. ``target`` (``-grad``) with the right loss."""
    loss, g = huber_loss(pred, target, delta)
    return loss, -g


HUBER_MISTAKES = {
    "missing-delta": (huber_linear_without_delta, huber_offset_without_delta, huber_gradient_without_delta),
    "mae-instead": huber_mae,
    "mse-instead": huber_mse,
    "sum-not-mean": huber_summed,
    "sign-flipped": huber_sign_flipped,
}

# --------------------------------------------------------------------------- hinge


def _margins(scores, y) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return s, y


def hinge_loss(scores, y):
    """``(loss, grad)``: the mean over the batch of ``max(0, 1 - y·s)`` and its gradient w.r.t. ``scores``.

    ``scores`` (N,) real, ``y`` (N,) in {-1, 1}. The gradient is ``-y / N`` where
    the margin ``y·s`` is below 1 and 0 elsewhere, at the kink ``y·s = 1`` included
    (the subgradient 0, as ``relu``'s backward takes it).
    """
    s, y = _margins(scores, y)
    m = y * s
    loss = np.maximum(0.0, 1.0 - m).mean()
    return float(loss), np.where(m < 1.0, -y, 0.0) / s.size


def hinge_margin_plus(scores, y):
    """``margin-sign``: ``max(0, 1 + y·s)``, the margin's sign flipped."""
    s, y = _margins(scores, y)
    m = y * s
    return float(np.maximum(0.0, 1.0 + m).mean()), np.where(1.0 + m > 0.0, y, 0.0) / s.size


def hinge_margin_minus_one(scores, y):
    """``margin-sign``: ``max(0, y·s - 1)``, both signs of ``1 - y·s`` flipped."""
    s, y = _margins(scores, y)
    m = y * s
    return float(np.maximum(0.0, m - 1.0).mean()), np.where(m - 1.0 > 0.0, y, 0.0) / s.size


def hinge_summed(scores, y):
    """``missing-batch-mean``: the loss summed over the batch."""
    loss, g = hinge_loss(scores, y)
    n = np.size(scores)
    return loss * n, g * n


def hinge_sign_flipped(scores, y):
    """``sign-flipped``: the gradient ``+y / N`` where the margin is violated."""
    loss, g = hinge_loss(scores, y)
    return loss, -g


HINGE_MISTAKES = {
    "margin-sign": (hinge_margin_plus, hinge_margin_minus_one),
    "missing-batch-mean": hinge_summed,
    "sign-flipped": hinge_sign_flipped,
}

MISTAKES = {
    "softmax-ce-grad": SOFTMAX_CE_MISTAKES,
    "huber-loss": HUBER_MISTAKES,
    "hinge-loss": HINGE_MISTAKES,
}
