"""Trusted regularisation: an L2-regularised two-layer network, inverted dropout, and
the classic mistakes of each.

* ``l2-backprop``: :func:`two_layer_backprop_l2`. The forward pass (the core
  two-layer ReLU network's mean softmax cross-entropy plus
  ``reg·(‖W1‖² + ‖W2‖²)``) is written on :mod:`dlgrade.reference.autodiff` and every
  gradient derived from it; each mistake in :data:`L2_MISTAKES` is derived the
  same way from a forward pass that makes it (the biases penalised too, ``W²``
  differentiated as ``W``, the penalty kept out of the loss or out of the
  gradient, the ReLU's mask dropped).
* ``dropout``: :func:`dropout`, inverted dropout drawing from the caller's
  generator; :data:`DROPOUT_MISTAKES`. A dropout's output is random, so it is
  graded on properties (the rate and scale of dropped units, the identity at
  evaluation, the generator used; see ``exercises/dropout/checks.md``) and the
  buggy references say what each mistake's output looks like under the same
  generator.

:data:`MISTAKES` maps each exercise id to its dict.
"""
from __future__ import annotations

import numpy as np

from dlgrade.reference.autodiff import Var, grad, logsumexp, matmul, mean, mul, relu, take_along_axis, total

PARAMS = ("W1", "b1", "W2", "b2")

# --------------------------------------------------------------------------- L2


def _data_loss(X, y, p: dict, mask_gradient: bool = True) -> Var:
    """Mean softmax cross-entropy of ``relu(X W1 + b1) W2 + b2`` (log-sum-exp: finite)."""
    h = relu(matmul(X, p["W1"]) + p["b1"], mask_gradient=mask_gradient)
    s = matmul(h, p["W2"]) + p["b2"]
    labels = np.asarray(y).astype(np.int64).reshape(-1, 1)
    return mean(logsumexp(s, axis=1) - take_along_axis(s, labels, axis=1))


def _square(v: Var, through: bool = True) -> Var:
    """‖v‖² — or, with ``through=False``, ``Σ v·const(v)``: the same value, whose
    derivative is ``v`` instead of ``2v`` (the factor 2 forgotten)."""
    return total(mul(v, v if through else Var(v.value, requires_grad=False)))


def _l2(X, y, W1, b1, W2, b2, reg, *, penalised=("W1", "W2"), loss_reg=1.0, grad_reg=1.0,
        through: bool = True, mask_gradient: bool = True):
    """``(loss, grads)`` from a forward pass with the penalty on ``penalised``.

    ``loss_reg`` / ``grad_reg`` scale the penalty in the reported loss and in the
    differentiated loss separately: 1 and 1 is the truth; a 0 keeps the penalty out
    of one of them (the penalty is a sum, so its share of the gradient is that of
    the differentiated loss alone).
    """
    p = {"W1": Var(W1), "b1": Var(b1), "W2": Var(W2), "b2": Var(b2)}
    data = _data_loss(X, y, p, mask_gradient=mask_gradient)
    penalty = None
    for name in penalised:
        term = _square(p[name], through)
        penalty = term if penalty is None else penalty + term
    reg = float(reg)
    differentiated = data + mul(penalty, reg * grad_reg) if grad_reg else data
    grads = dict(zip(PARAMS, grad(differentiated, [p[k] for k in PARAMS])))
    loss = float(data.value) + loss_reg * reg * float(penalty.value)
    return loss, grads


def two_layer_backprop_l2(X, y, W1, b1, W2, b2, reg):
    """``(loss, grads)`` for the two-layer ReLU network of ``two-layer-backprop`` plus
    ``reg·(‖W1‖² + ‖W2‖²)`` (squared Frobenius norms; biases are not penalised).

    ``grads`` holds ``W1, b1, W2, b2``, each with its parameter's shape: the data
    gradients plus ``2·reg·W`` for the two weights.
    """
    return _l2(X, y, W1, b1, W2, b2, reg)


def l2_biases_penalised(X, y, W1, b1, W2, b2, reg):
    """``biases-regularised``: ``reg·(‖W1‖² + ‖b1‖² + ‖W2‖² + ‖b2‖²)``."""
    return _l2(X, y, W1, b1, W2, b2, reg, penalised=PARAMS)


def l2_derivative_without_2(X, y, W1, b1, W2, b2, reg):
    """``missing-factor-2``: the right loss, but ``reg·W`` in the gradient instead of ``2·reg·W``."""
    return _l2(X, y, W1, b1, W2, b2, reg, through=False)


def l2_half_penalty(X, y, W1, b1, W2, b2, reg):
    """``missing-factor-2``: cs231n's ``½·reg·‖W‖²`` in the loss, so ``reg·W`` in the gradient."""
    return _l2(X, y, W1, b1, W2, b2, 0.5 * float(reg))


def l2_not_in_loss(X, y, W1, b1, W2, b2, reg):
    """``reg-not-in-loss``: the gradients include the penalty, the loss returned does not."""
    return _l2(X, y, W1, b1, W2, b2, reg, loss_reg=0.0)


def l2_not_in_gradient(X, y, W1, b1, W2, b2, reg):
    """``reg-not-in-gradient``: the loss includes the penalty, the gradients do not."""
    return _l2(X, y, W1, b1, W2, b2, reg, grad_reg=0.0)


def l2_no_relu_mask(X, y, W1, b1, W2, b2, reg):
    """``missing-relu-mask``: the gradient passes back through the ReLU everywhere."""
    return _l2(X, y, W1, b1, W2, b2, reg, mask_gradient=False)


def relu_inputs(X, y, W1, b1, W2, b2, reg) -> list[np.ndarray]:
    """Where the loss has kinks: the ReLU's inputs (see the finite-difference check's ``kinks``)."""
    return [np.asarray(X, dtype=np.float64) @ W1 + b1]


L2_MISTAKES = {
    "biases-regularised": l2_biases_penalised,
    "missing-factor-2": (l2_derivative_without_2, l2_half_penalty),
    "reg-not-in-loss": l2_not_in_loss,
    "reg-not-in-gradient": l2_not_in_gradient,
    "missing-relu-mask": l2_no_relu_mask,
}

# --------------------------------------------------------------------------- dropout


def _keep_mask(x: np.ndarray, keep: float, rng: np.random.Generator) -> np.ndarray:
    """Each element kept with probability ``keep``: one uniform draw per element."""
    return rng.random(x.shape) < keep


def dropout(x, p, train, rng):
    """Inverted dropout: in training, each element is zeroed with probability ``p`` and the
    survivors are scaled by ``1/(1 - p)`` (so the expected output is ``x``); at evaluation
    (``train`` false) ``x`` is returned unchanged. Draws only from ``rng``, a numpy Generator.
    """
    x = np.asarray(x, dtype=np.float64)
    if not train or p == 0:
        return x.copy()
    return np.where(_keep_mask(x, 1.0 - p, rng), x / (1.0 - p), 0.0)


def dropout_not_inverted(x, p, train, rng):
    """``not-inverted``: units dropped with probability ``p`` but the survivors not scaled."""
    x = np.asarray(x, dtype=np.float64)
    if not train:
        return x.copy()
    return np.where(_keep_mask(x, 1.0 - p, rng), x, 0.0)


def dropout_keep_with_p(x, p, train, rng):
    """``keep-drop-swapped``: ``p`` taken as the keep probability (survivors scaled by 1/p)."""
    x = np.asarray(x, dtype=np.float64)
    if not train:
        return x.copy()
    return np.where(_keep_mask(x, p, rng), x / p, 0.0)


def dropout_keep_with_p_scaled_right(x, p, train, rng):
    """``keep-drop-swapped``: kept with probability ``p``, scaled by ``1/(1 - p)``."""
    x = np.asarray(x, dtype=np.float64)
    if not train:
        return x.copy()
    return np.where(_keep_mask(x, p, rng), x / (1.0 - p), 0.0)


def dropout_at_eval(x, p, train, rng):
    """``dropout-at-eval``: the training behaviour whatever ``train`` says."""
    return dropout(x, p, True, rng)


def dropout_scaled_by_p(x, p, train, rng):
    """``scale-by-p``: survivors multiplied by ``p`` (the old test-time scaling, misplaced)."""
    x = np.asarray(x, dtype=np.float64)
    if not train:
        return x.copy()
    return np.where(_keep_mask(x, 1.0 - p, rng), x * p, 0.0)


def dropout_divided_by_p(x, p, train, rng):
    """``scale-by-p``: survivors divided by the drop probability ``p`` instead of ``1 - p``."""
    x = np.asarray(x, dtype=np.float64)
    if not train:
        return x.copy()
    return np.where(_keep_mask(x, 1.0 - p, rng), x / p, 0.0)


def dropout_global_rng(x, p, train, rng):
    """``ignores-rng``: numpy's global generator (``np.random.rand``) instead of ``rng``."""
    x = np.asarray(x, dtype=np.float64)
    if not train:
        return x.copy()
    return np.where(np.random.rand(*x.shape) < 1.0 - p, x / (1.0 - p), 0.0)


DROPOUT_MISTAKES = {
    "not-inverted": dropout_not_inverted,
    "keep-drop-swapped": (dropout_keep_with_p, dropout_keep_with_p_scaled_right),
    "dropout-at-eval": dropout_at_eval,
    "scale-by-p": (dropout_scaled_by_p, dropout_divided_by_p),
    "ignores-rng": dropout_global_rng,
}

MISTAKES = {
    "l2-backprop": L2_MISTAKES,
    "dropout": DROPOUT_MISTAKES,
}
