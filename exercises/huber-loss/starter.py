import numpy as np


def huber_loss(pred, target, delta=1.0):
    """(loss, grad): the mean over every element of the Huber loss of r = pred - target
    (1/2 r^2 where |r| <= delta, delta * (|r| - delta/2) beyond), and its gradient
    with respect to pred (same shape as pred). numpy only.
    """
    raise NotImplementedError("write huber_loss")
