import numpy as np


def hinge_loss(scores, y):
    """(loss, grad): the mean over the batch of max(0, 1 - y * scores) and its
    subgradient with respect to scores (0 where the margin y * scores >= 1, the kink
    included). scores: (N,) floats; y: (N,) labels in {-1, 1}. numpy only.
    """
    raise NotImplementedError("write hinge_loss")
