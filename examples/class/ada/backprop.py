import numpy as np


def two_layer_backprop(X, y, W1, b1, W2, b2):
    N = X.shape[0]
    z1 = X @ W1 + b1
    h = np.maximum(z1, 0)
    s = h @ W2 + b2
    s = s - s.max(axis=1, keepdims=True)
    log_p = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(N), y].mean()

    ds = np.exp(log_p)
    ds[np.arange(N), y] -= 1
    ds /= N
    grads = {"W2": h.T @ ds, "b2": ds.sum(axis=0)}
    dh = ds @ W2.T
    dz1 = dh * (z1 > 0)
    grads["W1"] = X.T @ dz1
    grads["b1"] = dz1.sum(axis=0)
    return loss, grads
