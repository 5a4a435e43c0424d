"""Trusted batch normalisation (forward and backward) and standardisation, and the
classic mistakes of each.

* ``batchnorm-forward``: :func:`batchnorm_forward`, training mode, statistics over
  the batch (axis 0), the population variance; :data:`BATCHNORM_FORWARD_MISTAKES`.
  Cross-checked against ``torch.nn.functional.batch_norm(training=True)``.
* ``batchnorm-backward``: :func:`batchnorm_backward`, the closed form of the
  gradient through the batch statistics; :data:`BATCHNORM_BACKWARD_MISTAKES`.
  Cross-checked against torch autograd through the forward pass.
* ``standardise``: :func:`standardise`, the training set's mean and population
  standard deviation applied to both sets; :data:`STANDARDISE_MISTAKES`.
  Cross-checked against a per-column computation with Python's ``statistics``.

The cross-checks live in ``tests/test_pack_references.py``; this module imports
only numpy. :data:`MISTAKES` maps each exercise id to its dict.
"""
from __future__ import annotations

import numpy as np


def _f64(*arrays):
    return [np.asarray(a, dtype=np.float64) for a in arrays]


# --------------------------------------------------------------------------- forward


def _normalise(x, eps, axis=0, ddof=0, eps_outside=False):
    mu = x.mean(axis=axis, keepdims=True)
    var = x.var(axis=axis, ddof=ddof, keepdims=True)
    if eps_outside:
        return (x - mu) / (np.sqrt(var) + eps)
    return (x - mu) / np.sqrt(var + eps)


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """``gamma·(x - μ)/sqrt(σ² + eps) + beta`` with μ, σ² the mean and (population)
    variance of each feature over the batch. ``x`` (N, D), ``gamma``, ``beta`` (D,)."""
    x, gamma, beta = _f64(x, gamma, beta)
    return gamma * _normalise(x, eps) + beta


def bn_unbiased_variance(x, gamma, beta, eps=1e-5):
    """``unbiased-variance``: the sample variance (ddof = 1, divides by N - 1)."""
    x, gamma, beta = _f64(x, gamma, beta)
    return gamma * _normalise(x, eps, ddof=1) + beta


def bn_per_example(x, gamma, beta, eps=1e-5):
    """``wrong-axis``: statistics over each example's features (axis 1), as layer norm does."""
    x, gamma, beta = _f64(x, gamma, beta)
    return gamma * _normalise(x, eps, axis=1) + beta


def bn_whole_batch(x, gamma, beta, eps=1e-5):
    """``wrong-axis``: one mean and variance for the whole array."""
    x, gamma, beta = _f64(x, gamma, beta)
    return gamma * _normalise(x, eps, axis=None) + beta


def bn_eps_outside_sqrt(x, gamma, beta, eps=1e-5):
    """``eps-outside-sqrt``: ``(x - μ)/(σ + eps)``."""
    x, gamma, beta = _f64(x, gamma, beta)
    return gamma * _normalise(x, eps, eps_outside=True) + beta


BATCHNORM_FORWARD_MISTAKES = {
    "unbiased-variance": bn_unbiased_variance,
    "wrong-axis": (bn_per_example, bn_whole_batch),
    "eps-outside-sqrt": bn_eps_outside_sqrt,
}

# --------------------------------------------------------------------------- backward


def _stats(x, eps):
    mu = x.mean(axis=0)
    inv_std = 1.0 / np.sqrt(x.var(axis=0) + eps)
    return (x - mu) * inv_std, inv_std


def batchnorm_backward(dout, x, gamma, eps=1e-5):
    """``(dx, dgamma, dbeta)`` for ``out = batchnorm_forward(x, gamma, beta, eps)`` given
    ``dout = dL/dout`` (N, D).

    With ``x̂ = (x - μ)/sqrt(σ² + eps)``: ``dbeta = Σₙ dout``, ``dgamma = Σₙ dout·x̂``,
    and, because μ and σ² depend on every example,
    ``dx = gamma/sqrt(σ² + eps) · (dout - mean(dout) - x̂·mean(dout·x̂))`` (means over
    the batch).
    """
    dout, x, gamma = _f64(dout, x, gamma)
    xhat, inv_std = _stats(x, eps)
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dx = gamma * inv_std * (dout - dout.mean(axis=0) - xhat * (dout * xhat).mean(axis=0))
    return dx, dgamma, dbeta


def bnb_stats_constant(dout, x, gamma, eps=1e-5):
    """``batch-stats-constant``: μ and σ² treated as constants, ``dx = dout·gamma/σ``."""
    dout, x, gamma = _f64(dout, x, gamma)
    _, dgamma, dbeta = batchnorm_backward(dout, x, gamma, eps)
    _, inv_std = _stats(x, eps)
    return dout * gamma * inv_std, dgamma, dbeta


def bnb_mean_path_only(dout, x, gamma, eps=1e-5):
    """``variance-path-missing``: the gradient through μ kept, the one through σ² left out."""
    dout, x, gamma = _f64(dout, x, gamma)
    _, dgamma, dbeta = batchnorm_backward(dout, x, gamma, eps)
    _, inv_std = _stats(x, eps)
    return gamma * inv_std * (dout - dout.mean(axis=0)), dgamma, dbeta


def bnb_dbeta_per_example(dout, x, gamma, eps=1e-5):
    """``dbeta-not-summed``: ``dbeta = dout``, one row per example (N, D)."""
    dx, dgamma, _ = batchnorm_backward(dout, x, gamma, eps)
    return dx, dgamma, np.asarray(dout, dtype=np.float64).copy()


def bnb_dbeta_mean(dout, x, gamma, eps=1e-5):
    """``dbeta-not-summed``: averaged over the batch instead of summed."""
    dx, dgamma, _ = batchnorm_backward(dout, x, gamma, eps)
    return dx, dgamma, np.asarray(dout, dtype=np.float64).mean(axis=0)


def bnb_params_per_example(dout, x, gamma, eps=1e-5):
    """``dbeta-not-summed``: neither parameter gradient summed (dgamma and dbeta per example)."""
    dout, x, gamma = _f64(dout, x, gamma)
    dx, _, _ = batchnorm_backward(dout, x, gamma, eps)
    xhat, _ = _stats(x, eps)
    return dx, dout * xhat, dout.copy()


BATCHNORM_BACKWARD_MISTAKES = {
    "batch-stats-constant": bnb_stats_constant,
    "variance-path-missing": bnb_mean_path_only,
    "dbeta-not-summed": (bnb_dbeta_per_example, bnb_dbeta_mean, bnb_params_per_example),
}

# --------------------------------------------------------------------------- standardise


def _scale(X, mu, sd):
    return (X - mu) / sd


def standardise(X_train, X_test):
    """``(Z_train, Z_test)``: both sets minus the training set's mean, divided by its
    (population) standard deviation, feature by feature (axis 0)."""
    X_train, X_test = _f64(X_train, X_test)
    mu, sd = X_train.mean(axis=0), X_train.std(axis=0)
    return _scale(X_train, mu, sd), _scale(X_test, mu, sd)


def std_test_own_statistics(X_train, X_test):
    """``test-statistics-leak``: the test set standardised with its own mean and std."""
    X_train, X_test = _f64(X_train, X_test)
    return (_scale(X_train, X_train.mean(axis=0), X_train.std(axis=0)),
            _scale(X_test, X_test.mean(axis=0), X_test.std(axis=0)))


def std_pooled_statistics(X_train, X_test):
    """``test-statistics-leak``: statistics of train and test together, applied to both."""
    X_train, X_test = _f64(X_train, X_test)
    both = np.concatenate([X_train, X_test])
    mu, sd = both.mean(axis=0), both.std(axis=0)
    return _scale(X_train, mu, sd), _scale(X_test, mu, sd)


def std_per_row(X_train, X_test):
    """``per-row``: each example standardised over its own features (axis 1)."""
    X_train, X_test = _f64(X_train, X_test)
    return tuple(_scale(X, X.mean(axis=1, keepdims=True), X.std(axis=1, keepdims=True))
                 for X in (X_train, X_test))


def std_sample_std(X_train, X_test):
    """``sample-std``: the sample standard deviation (ddof = 1) of the training set."""
    X_train, X_test = _f64(X_train, X_test)
    mu, sd = X_train.mean(axis=0), X_train.std(axis=0, ddof=1)
    return _scale(X_train, mu, sd), _scale(X_test, mu, sd)


STANDARDISE_MISTAKES = {
    "test-statistics-leak": (std_test_own_statistics, std_pooled_statistics),
    "per-row": std_per_row,
    "sample-std": std_sample_std,
}

MISTAKES = {
    "batchnorm-forward": BATCHNORM_FORWARD_MISTAKES,
    "batchnorm-backward": BATCHNORM_BACKWARD_MISTAKES,
    "standardise": STANDARDISE_MISTAKES,
}
