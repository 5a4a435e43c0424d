import numpy as np


def rmsprop_step(w, g, s, lr=1e-3, rho=0.9, eps=1e-8):
    """One RMSProp step: returns (w, s), the new parameters and running mean square.

    s = rho * s + (1 - rho) * g**2; w = w - lr * g / (sqrt(s) + eps).
    """
    raise NotImplementedError("write rmsprop_step")
