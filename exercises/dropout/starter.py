import numpy as np


def dropout(x, p, train, rng):
    """Inverted dropout. In training, each element is zeroed with probability p and the
    survivors are divided by (1 - p); at evaluation (train False) x is returned unchanged.
    rng is a numpy Generator: draw every random number from it. Does not modify x.
    """
    raise NotImplementedError("write dropout")
