import numpy as np


def batchnorm_grad(dout, x, gamma, eps=1e-5):
    """Returns (dx, dgamma, dbeta) for out = gamma * xhat + beta."""
    raise NotImplementedError
