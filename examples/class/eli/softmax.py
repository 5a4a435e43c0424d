import numpy as np


def softmax(z, axis=-1):
    raise NotImplementedError("I'll finish this tomorrow")
