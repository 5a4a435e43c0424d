import numpy as np


def momentum_step(w, g, v, lr=0.01, beta=0.9):
    """One step of SGD with momentum: returns (w, v), the new parameters and velocity.

    PyTorch's convention: v = beta * v + g; w = w - lr * v (or v = beta * v - lr * g;
    w = w + v). w, g, v: arrays of the same shape; v is zeros before the first step.
    """
    raise NotImplementedError("write momentum_step")
