"""Trusted sigmoid + squared error: the loss ``L = ½(σ(z) - y)²``, its derivative by SymPy,
and the classic mistakes, each derived the same way (never typed in as an answer string).

The course poses it next to sigmoid + binary cross-entropy
(:mod:`dlgrade.reference.sigmoid_bce`): there ``dL/dz = σ(z) - y``; here the sigmoid's own
derivative stays, ``dL/dz = (σ(z) - y)·σ(z)(1 - σ(z))``. Every function returns a
SymPy expression in the real symbols ``z`` (the logit) and ``y`` (the label).
"""
from __future__ import annotations

import sympy as sp

from dlgrade.graders.symbolic import sigmoid, symbol
from dlgrade.reference import sigmoid_bce

z, y = symbol("z"), symbol("y")
p = sp.Symbol("p", positive=True)  # the predicted probability σ(z)


def loss_in_p():
    """L(p) = ½(p - y)²."""
    return (p - y) ** 2 / 2


def loss():
    """L(z) with p = σ(z)."""
    return loss_in_p().subs(p, sigmoid(z))


def derivative():
    """dL/dz, by differentiating the loss (σ' = σ(1 - σ) is σ's own derivative rule)."""
    return sp.diff(loss(), z)


def bce_gradient():
    """σ(z) - y: the sigmoid + cross-entropy answer (``bce-gradient``), derived from that loss.

    It is also dL/dp here, the chain rule's dp/dz left out: the same expression.
    """
    return sigmoid_bce.derivative()


def missing_half():
    """d/dz of (σ(z) - y)², the ½ dropped: twice the derivative (``missing-half``)."""
    return sp.diff(2 * loss(), z)


def sign_flipped():
    """The derivative with its sign flipped (``sign-flipped``)."""
    return -derivative()


def sigmoid_derivative():
    """dσ/dz alone, the (σ(z) - y) factor left out (``sigmoid-derivative-only``)."""
    return sp.diff(sigmoid(z), z)


MISTAKES = {
    "bce-gradient": bce_gradient,
    "missing-half": missing_half,
    "sign-flipped": sign_flipped,
    "sigmoid-derivative-only": sigmoid_derivative,
}
