import numpy as np


def activation_grads(z, alpha=0.1, beta=1.0):
    """Derivatives at every element of z, as a dict of arrays of z's shape:
    "leaky_relu" (slope alpha below 0), "elu" (alpha), "tanh", "softplus",
    "swish" (z * sigmoid(beta * z)). At z = 0 use the slope from the left (alpha).
    numpy only.
    """
    raise NotImplementedError("write activation_grads")
