import numpy as np


def two_layer_backprop_l2(X, y, W1, b1, W2, b2, reg):
    """Loss and gradients of a two-layer ReLU network with a softmax cross-entropy loss
    plus reg * (||W1||^2 + ||W2||^2) (squared entries summed; biases not penalised).

    X (N, D), y (N,) int labels in [0, C), W1 (D, H), b1 (H,), W2 (H, C), b2 (C,).
    Returns (loss, grads) with grads a dict of arrays "W1", "b1", "W2", "b2", each the
    shape of its parameter. numpy only.
    """
    raise NotImplementedError("write the forward and backward pass")
