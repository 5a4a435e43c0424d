"""Trusted two-layer network loss and gradients, and the classic mistakes.

The reference writes only the forward pass, on :mod:`dlgrade.reference.autodiff`; its
gradients are derived mechanically from it. Each buggy reference in
:data:`MISTAKES` reproduces one mistake students make, also derived: a loss
summed instead of averaged, a ReLU whose backward rule forgets the mask, a
bias gradient taken per example and then reduced the wrong way, a weight
gradient transposed, every gradient negated. They return ``(loss, grads)``
like the reference; the gradients check compares students' gradients with them.
"""
from __future__ import annotations

import hashlib

import numpy as np

from dlgrade.reference.autodiff import (
    Var, broadcast_to, grad, logsumexp, matmul, mean, relu, take_along_axis, total,
)

PARAMS = ("W1", "b1", "W2", "b2")


def _loss(X, y, W1, b1, W2, b2, reduce=mean, mask_gradient: bool = True):
    """The forward pass: mean softmax cross-entropy of ``relu(X W1 + b1) W2 + b2``."""
    z1 = matmul(X, W1) + b1
    h = relu(z1, mask_gradient=mask_gradient)
    s = matmul(h, W2) + b2
    y = np.asarray(y).astype(np.int64).reshape(-1, 1)
    # -log softmax(s)[y] = logsumexp(s) - s[y]: finite for any finite scores
    return reduce(logsumexp(s, axis=1) - take_along_axis(s, y, axis=1))


def _params(W1, b1, W2, b2) -> dict[str, Var]:
    return {"W1": Var(W1), "b1": Var(b1), "W2": Var(W2), "b2": Var(b2)}


_LAST: dict = {}


def _digest(arrays) -> tuple:
    return tuple((a.shape, a.dtype.str, hashlib.blake2b(np.ascontiguousarray(a).view(np.uint8), digest_size=16)
                  .digest()) for a in map(np.asarray, arrays))


def _remember(kind: str, fn):
    """Keep the last result per kind, keyed by the inputs' content: the grader asks for
    the truth and for several mistakes derived from it on the same large inputs, and
    hashing them is far cheaper than differentiating again. Results are read-only."""
    def cached(*args):
        key = _digest(args)
        hit = _LAST.get(kind)
        if hit is None or hit[0] != key:
            loss, grads = fn(*args)
            for g in grads.values():
                g.setflags(write=False)
            hit = _LAST[kind] = (key, (loss, grads))
        loss, grads = hit[1]
        return loss, dict(grads)

    return cached


def _true_grads(X, y, W1, b1, W2, b2):
    p = _params(W1, b1, W2, b2)
    loss = _loss(X, y, *p.values())
    return float(loss.value), dict(zip(PARAMS, grad(loss, list(p.values()))))


_true_grads_cached = _remember("truth", _true_grads)


def two_layer_backprop(X, y, W1, b1, W2, b2):
    """``(loss, grads)`` for the two-layer network; grads keyed ``W1, b1, W2, b2``."""
    return _true_grads_cached(X, y, W1, b1, W2, b2)


def relu_inputs(X, y, W1, b1, W2, b2) -> list[np.ndarray]:
    """Where the loss has kinks: the ReLU's inputs (the loss is not smooth where one is 0).

    The finite-difference check steps only where none of these changes sign.
    """
    return [np.asarray(X, dtype=np.float64) @ W1 + b1]


# --------------------------------------------------------------------------- mistakes


def summed_loss(X, y, W1, b1, W2, b2):
    """``missing-batch-mean``: the loss (and so every gradient) summed over the batch."""
    p = _params(W1, b1, W2, b2)
    loss = _loss(X, y, *p.values(), reduce=total)
    return float(loss.value), dict(zip(PARAMS, grad(loss, list(p.values()))))


def no_relu_mask(X, y, W1, b1, W2, b2):
    """``missing-relu-mask``: the gradient passes back through the ReLU everywhere."""
    p = _params(W1, b1, W2, b2)
    loss = _loss(X, y, *p.values(), mask_gradient=False)
    return float(loss.value), dict(zip(PARAMS, grad(loss, list(p.values()))))


def _per_example_bias(X, y, W1, b1, W2, b2):
    """The loss, the weight gradients, and the bias gradients per example (before the batch sum)."""
    p = _params(W1, b1, W2, b2)
    n = np.shape(X)[0]
    tiled1 = broadcast_to(p["b1"], (n, np.shape(b1)[0]))
    tiled2 = broadcast_to(p["b2"], (n, np.shape(b2)[0]))
    loss = _loss(X, y, p["W1"], tiled1, p["W2"], tiled2)
    gW1, gW2, d1, d2 = grad(loss, [p["W1"], p["W2"], tiled1, tiled2])
    return float(loss.value), {"W1": gW1, "W2": gW2, "b1": d1, "b2": d2}


_per_example_bias_grads = _remember("per-example-bias", _per_example_bias)


def _bias_variant(reduce):
    def buggy(X, y, W1, b1, W2, b2):
        loss, g = _per_example_bias_grads(X, y, W1, b1, W2, b2)
        return loss, {"W1": g["W1"], "b1": reduce(g["b1"]), "W2": g["W2"], "b2": reduce(g["b2"])}

    return buggy


# The ways students reduce (or fail to reduce) the per-example bias gradient,
# whose rows already carry the 1/N of the mean: kept per example (N, H); the
# first example only; averaged (1/N once more); summed over the wrong axis
# (one number per example); summed over everything (a scalar).
bias_kept_per_example = _bias_variant(lambda d: d)
bias_first_row = _bias_variant(lambda d: d[0])
bias_mean_not_sum = _bias_variant(lambda d: d.mean(axis=0))
bias_summed_wrong_axis = _bias_variant(lambda d: d.sum(axis=1))
bias_summed_everything = _bias_variant(lambda d: np.asarray(d.sum()))


def _transform(fn, name: str):
    def buggy(X, y, W1, b1, W2, b2):
        loss, g = two_layer_backprop(X, y, W1, b1, W2, b2)
        return loss, {k: (fn(v) if k == name or name == "*" else v) for k, v in g.items()}

    return buggy


def log_of_softmax(X, y, W1, b1, W2, b2):
    """``log-underflow``: the loss as -log(softmax(s)[y]), max shifted out: a class far below
    the best gets probability 0 and the loss is inf; the gradients (p - onehot) stay right."""
    loss, grads = two_layer_backprop(X, y, W1, b1, W2, b2)
    s = np.maximum(np.asarray(X, dtype=np.float64) @ W1 + b1, 0) @ W2 + b2
    e = np.exp(s - s.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        return float(-np.mean(np.log(p[np.arange(len(p)), np.asarray(y, dtype=np.int64)]))), grads


transposed_W1 = _transform(np.transpose, "W1")
transposed_W2 = _transform(np.transpose, "W2")
negated = _transform(np.negative, "*")

MISTAKES = {
    "missing-batch-mean": summed_loss,
    "transposed": (transposed_W1, transposed_W2),
    "missing-relu-mask": no_relu_mask,
    "bias-not-summed": (bias_kept_per_example, bias_first_row, bias_mean_not_sum,
                        bias_summed_wrong_axis, bias_summed_everything),
    "sign-flipped": negated,
    "log-underflow": log_of_softmax,
}
