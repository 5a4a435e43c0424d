import numpy as np


def log_softmax(z):
    """log(softmax(z)) along the last axis, finite for large logits."""
    raise NotImplementedError
