"""Trusted Xavier (Glorot) initialisation as the course defines it, ``N(0, 1/n_in)``, and
the classic mistakes.

An initialisation is random, so it is graded on properties of what it returns —
shape, mean, variance, the shape of the distribution, the generator used (see
``exercises/xavier-init/checks.md`` and :mod:`dlgrade.reference.statistics`). Every
normal initialiser here is built from its standard deviation, :data:`STD` (the
truth and each mistake), so the variance a check expects under a mistake is the
one its buggy reference draws from; the tests confirm each sampler's moments.

:data:`MISTAKES` maps the exercise id to its dict.
"""
from __future__ import annotations

import math

import numpy as np

# standard deviation of each initialiser, a function of (n_in, n_out)
STD = {
    "truth": lambda n_in, n_out: math.sqrt(1.0 / n_in),
    "std-as-variance": lambda n_in, n_out: 1.0 / n_in,          # 1/n_in passed as the std
    "fan-out-used": lambda n_in, n_out: math.sqrt(1.0 / n_out),
    "fan-average-used": lambda n_in, n_out: math.sqrt(2.0 / (n_in + n_out)),  # Glorot's original
}


def _normal(std_of):
    def init(n_in, n_out, rng):
        return rng.standard_normal((int(n_in), int(n_out))) * std_of(n_in, n_out)

    return init


def xavier_init(n_in, n_out, rng):
    """An ``(n_in, n_out)`` weight matrix with independent ``N(0, 1/n_in)`` entries drawn
    from ``rng`` (a numpy Generator): ``rng.standard_normal((n_in, n_out)) / sqrt(n_in)``."""
    return _normal(STD["truth"])(n_in, n_out, rng)


def constant_zeros(n_in, n_out, rng):
    """``constant-init``: every weight 0 (every hidden unit stays the same)."""
    return np.zeros((int(n_in), int(n_out)))


def constant_scale(n_in, n_out, rng):
    """``constant-init``: every weight the same non-zero value, ``1/sqrt(n_in)``."""
    return np.full((int(n_in), int(n_out)), STD["truth"](n_in, n_out))


def uniform_same_variance(n_in, n_out, rng):
    """``uniform-not-normal``: ``U(-sqrt(3/n_in), sqrt(3/n_in))``, the right variance but not normal."""
    a = math.sqrt(3.0 / n_in)
    return rng.uniform(-a, a, size=(int(n_in), int(n_out)))


def global_rng(n_in, n_out, rng):
    """``ignores-rng``: numpy's global generator instead of ``rng``."""
    return np.random.randn(int(n_in), int(n_out)) * STD["truth"](n_in, n_out)


XAVIER_MISTAKES = {
    "constant-init": (constant_zeros, constant_scale),
    "std-as-variance": _normal(STD["std-as-variance"]),
    "fan-out-used": _normal(STD["fan-out-used"]),
    "fan-average-used": _normal(STD["fan-average-used"]),
    "uniform-not-normal": uniform_same_variance,
    "ignores-rng": global_rng,
}

MISTAKES = {"xavier-init": XAVIER_MISTAKES}
