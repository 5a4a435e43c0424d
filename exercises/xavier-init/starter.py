import numpy as np


def xavier_init(n_in, n_out, rng):
    """An (n_in, n_out) weight matrix with independent N(0, 1/n_in) entries (variance
    1/n_in), drawn from rng, a numpy Generator.
    """
    raise NotImplementedError("write xavier_init")
