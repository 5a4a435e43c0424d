"""Sigmoid + squared error: the loss, its derivative by SymPy, and three classic slips,
each derived from the loss rather than typed in."""
import sympy as sp

z = sp.Symbol("z", real=True)
y = sp.Symbol("y", real=True)


def sigmoid(x):
    return 1 / (1 + sp.exp(-x))


def loss():
    return (sigmoid(z) - y) ** 2 / 2


def derivative():
    return sp.diff(loss(), z)


def without_sigmoid_factor():
    p = sp.Symbol("p", real=True)
    return sp.diff((p - y) ** 2 / 2, p).subs(p, sigmoid(z))


def twice():
    return sp.diff(2 * loss(), z)


def reversed_difference():
    return -derivative()


MISTAKES = {
    "sigmoid-factor-missing": without_sigmoid_factor,
    "factor-two": twice,
    "reversed-difference": reversed_difference,
}
