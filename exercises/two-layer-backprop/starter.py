import numpy as np


def two_layer_backprop(X, y, W1, b1, W2, b2):
    """Loss and gradients of a two-layer ReLU network with a softmax cross-entropy loss.

    X (N, D), y (N,) int labels in [0, C), W1 (D, H), b1 (H,), W2 (H, C), b2 (C,).
    Forward: h = relu(X @ W1 + b1); s = h @ W2 + b2; loss = mean over the batch
    of -log softmax(s)[y]. Returns (loss, grads) with grads a dict of arrays
    "W1", "b1", "W2", "b2", each the shape of its parameter. numpy only.
    """
    raise NotImplementedError("write the forward and backward pass")
