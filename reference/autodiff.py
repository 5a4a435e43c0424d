"""A tiny reverse-mode automatic differentiation over numpy.

Just enough to differentiate a small network's loss mechanically from its
forward pass, so dlgrade's reference gradients are *derived*, never typed in,
and a numpy-only exercise never pays for importing torch (the cross-check
against torch autograd lives in ``tests/test_autodiff.py``).

A :class:`Var` holds a float64 array and remembers how it was made; each
operation records a backward rule mapping the output's gradient to one thunk
per input (evaluated only for inputs that need a gradient: the data ``X`` of a
network never costs a matrix product). :func:`grad` walks the graph in reverse
topological order and accumulates.

>>> x = Var(np.array([1.0, -2.0]))
>>> grad(mean(relu(x)), [x])[0]
array([0.5, 0. ])
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


class Var:
    """A node of the computation graph: a value and how to send gradients back."""

    __slots__ = ("value", "parents", "backward", "requires_grad")

    def __init__(self, value, parents: Sequence["Var"] = (), backward: Callable | None = None,
                 requires_grad: bool = True):
        self.value = np.asarray(value, dtype=np.float64)
        self.parents = tuple(parents)
        # backward(g) -> one thunk per parent, each returning a gradient of that parent's shape
        self.backward = backward
        self.requires_grad = any(p.requires_grad for p in self.parents) if self.parents else requires_grad

    @property
    def shape(self) -> tuple:
        return self.value.shape

    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(other, self)

    def __sub__(self, other):
        return add(self, neg(_var(other)))

    def __neg__(self):
        return neg(self)

    def __matmul__(self, other):
        return matmul(self, other)

    def __mul__(self, other):
        return mul(self, other)

    def __rmul__(self, other):
        return mul(other, self)

    def __repr__(self) -> str:
        return f"Var(shape={self.shape})"


def _var(x) -> Var:
    """A Var as is; anything else becomes a constant (no gradient is computed for it)."""
    return x if isinstance(x, Var) else Var(x, requires_grad=False)


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``g`` over the axes that broadcasting added or stretched, back to ``shape``."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


# --------------------------------------------------------------------------- operations


def add(a, b) -> Var:
    """``a + b`` with numpy broadcasting (a bias added to every row, say)."""
    a, b = _var(a), _var(b)
    return Var(a.value + b.value, (a, b),
               lambda g: (lambda: unbroadcast(g, a.shape), lambda: unbroadcast(g, b.shape)))


def neg(a) -> Var:
    a = _var(a)
    return Var(-a.value, (a,), lambda g: (lambda: -g,))


def mul(a, b) -> Var:
    """Element-wise ``a * b`` with broadcasting."""
    a, b = _var(a), _var(b)
    return Var(a.value * b.value, (a, b),
               lambda g: (lambda: unbroadcast(g * b.value, a.shape), lambda: unbroadcast(g * a.value, b.shape)))


def matmul(a, b) -> Var:
    """``a @ b`` for 2-D arrays: the gradients are ``g @ bᵀ`` and ``aᵀ @ g``."""
    a, b = _var(a), _var(b)
    return Var(a.value @ b.value, (a, b), lambda g: (lambda: g @ b.value.T, lambda: a.value.T @ g))


def relu(a, mask_gradient: bool = True) -> Var:
    """``max(a, 0)``; the gradient flows only where ``a > 0``.

    ``mask_gradient=False`` keeps the forward pass but lets the gradient through
    everywhere: the ``missing-relu-mask`` mistake, derived rather than typed in.
    """
    a = _var(a)
    mask = a.value > 0
    if mask_gradient:
        return Var(np.where(mask, a.value, 0.0), (a,), lambda g: (lambda: g * mask,))
    return Var(np.where(mask, a.value, 0.0), (a,), lambda g: (lambda: g,))


def logsumexp(a, axis: int = -1) -> Var:
    """``log Σ exp(a)`` along ``axis`` (kept as a length-1 axis), shifted by the max
    so it never overflows; the gradient is the softmax along that axis."""
    a = _var(a)
    m = np.max(a.value, axis=axis, keepdims=True)
    e = np.exp(a.value - m)
    s = e.sum(axis=axis, keepdims=True)
    out = m + np.log(s)
    return Var(out, (a,), lambda g: (lambda: g * (e / s),))


def take_along_axis(a, indices: np.ndarray, axis: int = -1) -> Var:
    """``np.take_along_axis(a, indices, axis)``; the gradient is scattered back
    (added, so repeated indices accumulate)."""
    a = _var(a)
    idx = np.asarray(indices)

    def back(g):
        out = np.zeros_like(a.value)
        ax = axis % a.value.ndim
        grid = list(np.indices(idx.shape, sparse=True))
        grid[ax] = idx
        np.add.at(out, tuple(grid), g)
        return out

    return Var(np.take_along_axis(a.value, idx, axis), (a,), lambda g: (lambda: back(g),))



def total(a) -> Var:
    """The sum of every element (a scalar)."""
    a = _var(a)
    return Var(a.value.sum(), (a,), lambda g: (lambda: np.broadcast_to(g, a.shape).copy(),))


def mean(a) -> Var:
    """The mean of every element (a scalar)."""
    a = _var(a)
    n = a.value.size
    return Var(a.value.mean(), (a,), lambda g: (lambda: np.broadcast_to(g / n, a.shape).copy(),))


def broadcast_to(a, shape: tuple) -> Var:
    """``a`` repeated to ``shape`` (a bias tiled over a batch); gradients sum back."""
    a = _var(a)
    return Var(np.broadcast_to(a.value, shape).copy(), (a,), lambda g: (lambda: unbroadcast(g, a.shape),))


# --------------------------------------------------------------------------- backward


def _topological(root: Var) -> list[Var]:
    order, seen, stack = [], set(), [(root, False)]
    while stack:  # iterative: deep graphs must not hit the recursion limit
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p in node.parents if id(p) not in seen)
    return order


def grad(output: Var, wrt: Sequence[Var]) -> list[np.ndarray]:
    """d(output)/d(each of ``wrt``), each with its variable's shape.

    ``output`` must be a scalar. A variable the output does not depend on (or a
    constant) gets zeros. Raises ValueError for a non-scalar output.
    """
    if output.value.size != 1:
        raise ValueError(f"grad needs a scalar output, got shape {output.shape}")
    grads: dict[int, np.ndarray] = {id(output): np.ones_like(output.value)}
    for node in reversed(_topological(output)):
        g = grads.get(id(node))  # kept: an inner node may be asked for too
        if g is None or node.backward is None:
            continue
        for parent, thunk in zip(node.parents, node.backward(g)):
            if not parent.requires_grad:
                continue
            pg = np.asarray(thunk(), dtype=np.float64)
            if pg.shape != parent.shape:
                raise AssertionError(f"backward rule returned {pg.shape} for a {parent.shape} input")
            if id(parent) in grads:
                grads[id(parent)] = grads[id(parent)] + pg
            else:
                grads[id(parent)] = pg
    return [grads.get(id(v), np.zeros_like(v.value)) for v in wrt]
