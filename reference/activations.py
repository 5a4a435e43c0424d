"""Trusted derivatives of five activations, and the classic mistakes.

:func:`activation_grads` returns, for every element of ``z``, the derivative of

* leaky ReLU ``max(z, αz)`` (slope ``α`` below 0),
* ELU ``z`` above 0, ``α(eᶻ - 1)`` below,
* ``tanh``,
* softplus ``ln(1 + eᶻ)``,
* swish ``z·σ(βz)``.

At the kink ``z = 0`` of leaky ReLU and ELU the derivative from the left is
taken (``α``), as PyTorch's autograd does. The formulas are cross-checked
against SymPy's ``diff`` of each activation and against torch autograd in
``tests/test_pack_references.py`` (this module imports neither).

Each buggy reference returns the whole dict with one entry wrong, so a
diagnosis is made on the entry it concerns and no other.
"""
from __future__ import annotations

import numpy as np

KEYS = ("leaky_relu", "elu", "tanh", "softplus", "swish")


def sigmoid(x) -> np.ndarray:
    """σ(x) = 1/(1 + e^{-x}), written through tanh so it never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


def activation_grads(z, alpha=0.1, beta=1.0):
    """Derivatives of leaky ReLU (slope ``alpha``), ELU (``alpha``), tanh, softplus and
    swish (``beta``) at every element of ``z``: a dict of arrays of z's shape."""
    z = np.asarray(z, dtype=np.float64)
    s = sigmoid(beta * z)
    return {
        "leaky_relu": np.where(z > 0, 1.0, alpha),
        "elu": np.where(z > 0, 1.0, alpha * np.exp(np.minimum(z, 0.0))),
        "tanh": 1.0 - np.tanh(z) ** 2,
        "softplus": sigmoid(z),
        "swish": s + beta * z * s * (1.0 - s),
    }


def _with(key: str, fn):
    """A buggy reference: the true dict with ``key`` replaced by ``fn(z, alpha, beta)``."""
    def buggy(z, alpha=0.1, beta=1.0):
        out = activation_grads(z, alpha, beta)
        out[key] = fn(np.asarray(z, dtype=np.float64), alpha, beta)
        return out

    buggy.__name__ = f"wrong_{key}"
    return buggy


# tanh' written 1 - tanh(z): the square forgotten
tanh_not_squared = _with("tanh", lambda z, a, b: 1.0 - np.tanh(z))
# the ELU's value below 0, α(eᶻ - 1), given as its derivative
elu_value_branch = _with("elu", lambda z, a, b: np.where(z > 0, 1.0, a * np.expm1(np.minimum(z, 0.0))))
# d/dz z·σ(βz) = σ(βz) + βz·σ'(βz): the product rule's second term left out
swish_first_term_only = _with("swish", lambda z, a, b: sigmoid(b * z))
# the product rule, but the inner derivative β of σ(βz) forgotten
swish_beta_missing = _with("swish", lambda z, a, b: sigmoid(b * z) * (1.0 + z * (1.0 - sigmoid(b * z))))
# softplus(z) = ln(1 + eᶻ) itself, not its derivative σ(z)
softplus_value = _with("softplus", lambda z, a, b: np.logaddexp(0.0, z))
# the plain ReLU's derivative: slope 0 below zero instead of α
relu_slope_only = _with("leaky_relu", lambda z, a, b: np.where(z > 0, 1.0, 0.0))

MISTAKES = {
    "tanh-not-squared": tanh_not_squared,
    "elu-branch": elu_value_branch,
    "swish-product-rule": swish_first_term_only,
    "swish-beta-missing": swish_beta_missing,
    "softplus-value": softplus_value,
    "relu-slope-only": relu_slope_only,
}
