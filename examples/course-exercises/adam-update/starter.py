import numpy as np


def adam_update(w, grad, m, v, t, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
    """One Adam step; returns (w, m, v)."""
    raise NotImplementedError
