import numpy as np


def batchnorm_backward(dout, x, gamma, eps=1e-5):
    """(dx, dgamma, dbeta) for out = gamma * (x - mu) / sqrt(var + eps) + beta, with mu and
    var the batch's mean and population variance over axis 0 (they depend on x too).
    dout, x: (N, D); gamma: (D,). Returns arrays of shapes (N, D), (D,), (D,). numpy only.
    """
    raise NotImplementedError("write batchnorm_backward")
