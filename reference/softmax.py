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


def softmax_axis0(z, axis=-1):
    """Ignores ``axis`` and always normalises along axis 0 (a ``wrong-axis`` mistake)."""
    return softmax(z, axis=0)


def softmax_last_axis(z, axis=-1):
    """Ignores ``axis`` and always normalises along the last axis (``wrong-axis``)."""
    return softmax(z, axis=-1)


def softmax_whole_array(z, axis=-1):
    """Normalises over the whole array instead of each slice (``wrong-axis``)."""
    z = np.asarray(z)
    e = np.exp(z - z.max())
    return e / e.sum()


def softmax_global_max(z, axis=-1):
    """Shifts by the max of the whole array, not of each slice (``global-max-shift``):
    a slice far below the largest value becomes 0/0 = nan."""
    z = np.asarray(z)
    with np.errstate(all="ignore"):
        e = np.exp(z - np.max(z))
        return e / np.sum(e, axis=axis, keepdims=True)


MISTAKES = {
    "overflow": naive_softmax,
    "wrong-axis": (softmax_axis0, softmax_last_axis, softmax_whole_array),
    "global-max-shift": softmax_global_max,
}
