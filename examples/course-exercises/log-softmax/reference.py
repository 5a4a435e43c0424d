import numpy as np


def log_softmax(z):
    z = np.asarray(z, dtype=float)
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def naive(z):
    e = np.exp(np.asarray(z, dtype=float))
    return np.log(e / e.sum(axis=-1, keepdims=True))


def softmax_only(z):
    return np.exp(log_softmax(z))


MISTAKES = {"overflow": naive, "softmax-not-logged": softmax_only}
