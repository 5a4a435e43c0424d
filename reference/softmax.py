"""Trusted softmax, and the classic mistakes as buggy references."""
from __future__ import annotations

import numpy as np


def softmax(z, axis=-1):
    """Softmax along ``axis`` via log-sum-exp; keeps z's float dtype; handles -inf."""
    z = np.asarray(z)
    m = np.max(z, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)  # an all -inf slice stays nan, like the definition
    e = np.exp(z - m)
    return (e / np.sum(e, axis=axis, keepdims=True)).astype(z.dtype, copy=False)


def naive_softmax(z, axis=-1):
    """No max shift: exp overflows for large logits (the ``overflow`` mistake)."""
    z = np.asarray(z)
    with np.errstate(all="ignore"):
        e = np.exp(z)
        return e / np.sum(e, axis=axis, keepdims=True)


def softmax_wrong_axis(z, axis=-1):
    """Normalises along the other axis of a matrix (the ``wrong-axis`` mistake)."""
    z = np.asarray(z)
    if z.ndim < 2:
        raise ValueError("no other axis")
    other = 0 if axis in (-1, z.ndim - 1) else -1
    return softmax(z, axis=other)


def softmax_no_keepdims_flat(z, axis=-1):
    """Normalises over the whole array instead of each slice (a ``wrong-axis`` variant)."""
    z = np.asarray(z)
    e = np.exp(z - z.max())
    return e / e.sum()


MISTAKES = {
    "overflow": naive_softmax,
    "wrong-axis": softmax_wrong_axis,
}
