"""Batch normalisation backward (per feature, over the batch) and three classic slips."""
import numpy as np


def _normalised(x, eps):
    mu = x.mean(axis=0)
    inv_std = 1.0 / np.sqrt(x.var(axis=0) + eps)
    return (x - mu) * inv_std, inv_std


def batchnorm_grad(dout, x, gamma, eps=1e-5):
    xhat, inv_std = _normalised(x, eps)
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dx = gamma * inv_std * (dout - dout.mean(axis=0) - xhat * (dout * xhat).mean(axis=0))
    return dx, dgamma, dbeta


def statistics_constant(dout, x, gamma, eps=1e-5):
    _, dgamma, dbeta = batchnorm_grad(dout, x, gamma, eps)
    _, inv_std = _normalised(x, eps)
    return dout * gamma * inv_std, dgamma, dbeta


def dgamma_without_xhat(dout, x, gamma, eps=1e-5):
    dx, _, dbeta = batchnorm_grad(dout, x, gamma, eps)
    return dx, dout.sum(axis=0), dbeta


def without_eps(dout, x, gamma, eps=1e-5):
    return batchnorm_grad(dout, x, gamma, 0.0)


MISTAKES = {
    "batch-statistics-constant": statistics_constant,
    "dgamma-missing-xhat": dgamma_without_xhat,
    "eps-left-out": without_eps,
}
