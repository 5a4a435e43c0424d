"""Trusted sigmoid + binary cross-entropy: the loss, its derivative by SymPy, and the
classic mistakes, each derived the same way (never typed in as an answer string).

Every function returns a SymPy expression in the real symbols ``z`` (the logit)
and ``y`` (the label); :mod:`dlgrade.graders.symbolic_grade` ships them to the bounded
evaluator as plain data (:func:`dlgrade.graders.symbolic.to_tree`).
"""
from __future__ import annotations

import sympy as sp

from dlgrade.graders.symbolic import sigmoid, symbol

z, y = symbol("z"), symbol("y")
p = sp.Symbol("p", positive=True)  # the predicted probability σ(z)


def loss_in_p():
    """L(p) = -(y log p + (1 - y) log(1 - p))."""
    return -(y * sp.log(p) + (1 - y) * sp.log(1 - p))


def loss():
    """L(z) with p = σ(z)."""
    return loss_in_p().subs(p, sigmoid(z))


def derivative():
    """dL/dz, by differentiating the loss (σ' = σ(1 - σ) is σ's own derivative rule)."""
    return sp.diff(loss(), z)


def sign_flipped():
    """The derivative with its sign flipped (``sign-flipped``)."""
    return -derivative()


def derivative_wrt_p():
    """dL/dp written in z: the chain rule's dp/dz factor left out (``missing-chain-rule``)."""
    return sp.diff(loss_in_p(), p).subs(p, sigmoid(z))


def sigmoid_derivative():
    """dσ/dz alone (``sigmoid-derivative-only``)."""
    return sp.diff(sigmoid(z), z)


def mse_half_derivative():
    """d/dz of ½(σ(z) - y)², the sigmoid + squared-error answer (``mse-gradient``)."""
    return sp.diff((sigmoid(z) - y) ** 2 / 2, z)


def mse_derivative():
    """d/dz of (σ(z) - y)², the same without the ½ (``mse-gradient``)."""
    return sp.diff((sigmoid(z) - y) ** 2, z)


MISTAKES = {
    "sign-flipped": sign_flipped,
    "missing-chain-rule": derivative_wrt_p,
    "sigmoid-derivative-only": sigmoid_derivative,
    "mse-gradient": (mse_half_derivative, mse_derivative),
}
