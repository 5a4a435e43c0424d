import numpy as np


def train_xor(X, y, rng):
    """Train h = tanh(X @ W1 + b1), s = h @ W2 + b2, class = argmax(s) on XOR data and
    return {"W1": (2, H), "b1": (H,), "W2": (H, 2), "b2": (2,)}.

    X: (N, 2) points in [-1, 1]^2; y: (N,) labels, 1 where the coordinates have
    opposite signs. rng: a numpy Generator for the initialisation. numpy only.
    """
    raise NotImplementedError("write train_xor")
