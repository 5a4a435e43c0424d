"""Trusted label-smoothed cross-entropy, and the classic mistakes as buggy references.

The reference is PyTorch's own definition, ``F.cross_entropy(...,
label_smoothing=epsilon)``: with ``q = (1 - ε)·onehot(target) + ε/C``, the mean
over the batch of ``-Σ_c q_c·log_softmax(logits)_c``. :func:`label_smoothing_ce_explicit`
writes that formula out; the tests check the two agree.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def label_smoothing_ce(logits, target, epsilon):
    """Mean label-smoothed cross-entropy, exactly as PyTorch defines it."""
    return F.cross_entropy(logits, target, label_smoothing=float(epsilon))


def _smoothed_ce(logp, target, off: float, on: float):
    """Mean over the batch of −Σ q·logp, q = ``on`` at the target class, ``off`` elsewhere."""
    q = torch.full_like(logp, off)
    q.scatter_(1, target[:, None], on)
    return -(q * logp).sum(dim=1).mean()


def label_smoothing_ce_explicit(logits, target, epsilon):
    """The same loss from the formula: smoothed target times log-softmax."""
    c = logits.shape[1]
    return _smoothed_ce(F.log_softmax(logits, dim=1), target, epsilon / c, 1.0 - epsilon + epsilon / c)


def smoothing_over_c_minus_1(logits, target, epsilon):
    """ε spread over the C − 1 wrong classes only (``smoothing-over-c-minus-1``)."""
    c = logits.shape[1]
    return _smoothed_ce(F.log_softmax(logits, dim=1), target, epsilon / (c - 1), 1.0 - epsilon)


def plain_cross_entropy(logits, target, epsilon):
    """ε ignored: the plain cross-entropy (``smoothing-not-applied``)."""
    return F.cross_entropy(logits, target)


def summed_over_batch(logits, target, epsilon):
    """The sum over the batch instead of the mean (``missing-batch-mean``)."""
    return F.cross_entropy(logits, target, label_smoothing=float(epsilon), reduction="sum")


def sign_flipped(logits, target, epsilon):
    """Σ q·log p without the minus sign (``sign-flipped``)."""
    return -label_smoothing_ce(logits, target, epsilon)


def log_softmax_over_batch(logits, target, epsilon):
    """log-softmax taken over the batch axis (dim 0) instead of the classes (``wrong-axis``)."""
    c = logits.shape[1]
    return _smoothed_ce(F.log_softmax(logits, dim=0), target, epsilon / c, 1.0 - epsilon + epsilon / c)


def naive_log_softmax(logits, target, epsilon):
    """log(exp(z) / Σ exp(z)) with no shift: inf/nan for large logits (``overflow``)."""
    c = logits.shape[1]
    e = torch.exp(logits)
    logp = torch.log(e / e.sum(dim=1, keepdim=True))
    q = torch.full_like(logp, epsilon / c)
    q.scatter_(1, target[:, None], 1.0 - epsilon + epsilon / c)
    return -(q * logp).sum(dim=1).mean()


def log_of_softmax(logits, target, epsilon):
    """log(softmax(z)): softmax is stable, but a probability below the smallest float is 0 and
    its log -inf, so the loss is inf for large logits (``log-underflow``)."""
    c = logits.shape[1]
    logp = torch.log(torch.softmax(logits, dim=1))
    q = torch.full_like(logp, epsilon / c)
    q.scatter_(1, target[:, None], 1.0 - epsilon + epsilon / c)
    return -(q * logp).sum(dim=1).mean()


MISTAKES = {
    "smoothing-over-c-minus-1": smoothing_over_c_minus_1,
    "smoothing-not-applied": plain_cross_entropy,
    "missing-batch-mean": summed_over_batch,
    "sign-flipped": sign_flipped,
    "wrong-axis": log_softmax_over_batch,
    "overflow": naive_log_softmax,
    "log-underflow": log_of_softmax,
}
