"""Trusted optimiser steps — SGD with momentum, Adam, RMSProp — and the classic mistakes.

Each step takes the parameters, their gradient and the optimiser's state, and
returns the new parameters and state, as PyTorch's optimisers compute them
(``torch.optim.SGD(momentum=β)`` with no dampening, ``torch.optim.Adam``,
``torch.optim.RMSprop(alpha=ρ)``); ``tests/test_pack_references.py`` runs whole
trajectories of both side by side. The steps never modify their arguments; a
student's may (PyTorch's do), as long as it returns the new values.

Momentum has two conventions that give the same parameters from a zero velocity
with a constant learning rate: ``v = βv + g; w -= ηv`` (PyTorch's,
:func:`momentum_step`) and ``v = βv - ηg; w += v`` (:func:`momentum_step_lr_inside`,
whose velocity is ``-η`` times the first). An optimiser is therefore graded on the
trajectory of ``w`` over several steps, each fed the state the submission itself
returned (see ``exercises/momentum-step/checks.md``); the buggy references here
make each mistake in either convention where it has one.

:data:`MISTAKES` maps each exercise id to its dict.
"""
from __future__ import annotations

import numpy as np


def _f64(*arrays):
    return [np.asarray(a, dtype=np.float64) for a in arrays]


# --------------------------------------------------------------------------- momentum


def momentum_step(w, g, v, lr=0.01, beta=0.9):
    """``(w, v)`` after one step of SGD with momentum: ``v = βv + g``, ``w = w - lr·v``."""
    w, g, v = _f64(w, g, v)
    v = beta * v + g
    return w - lr * v, v


def momentum_step_lr_inside(w, g, v, lr=0.01, beta=0.9):
    """The other convention, just as right: ``v = βv - lr·g``, ``w = w + v``."""
    w, g, v = _f64(w, g, v)
    v = beta * v - lr * g
    return w + v, v


def momentum_not_decayed(w, g, v, lr=0.01, beta=0.9):
    """``velocity-not-decayed``: ``v = v + g`` (β ignored)."""
    w, g, v = _f64(w, g, v)
    v = v + g
    return w - lr * v, v


def momentum_not_decayed_lr_inside(w, g, v, lr=0.01, beta=0.9):
    """``velocity-not-decayed`` in the other convention: ``v = v - lr·g``."""
    w, g, v = _f64(w, g, v)
    v = v - lr * g
    return w + v, v


def momentum_lr_twice(w, g, v, lr=0.01, beta=0.9):
    """``lr-applied-twice``: ``v = βv + lr·g`` and then ``w = w - lr·v``."""
    w, g, v = _f64(w, g, v)
    v = beta * v + lr * g
    return w - lr * v, v


def momentum_lr_twice_lr_inside(w, g, v, lr=0.01, beta=0.9):
    """``lr-applied-twice`` in the other convention: ``v = βv - lr·g`` and ``w = w + lr·v``."""
    w, g, v = _f64(w, g, v)
    v = beta * v - lr * g
    return w + lr * v, v


def momentum_ascent(w, g, v, lr=0.01, beta=0.9):
    """``sign-flipped``: ``w = w + lr·v``, a step up the gradient."""
    w, g, v = _f64(w, g, v)
    v = beta * v + g
    return w + lr * v, v


def momentum_ema(w, g, v, lr=0.01, beta=0.9):
    """``ema-velocity``: ``v = βv + (1 - β)g``, the exponential-average form, not PyTorch's."""
    w, g, v = _f64(w, g, v)
    v = beta * v + (1.0 - beta) * g
    return w - lr * v, v


MOMENTUM_MISTAKES = {
    "velocity-not-decayed": (momentum_not_decayed, momentum_not_decayed_lr_inside),
    "lr-applied-twice": (momentum_lr_twice, momentum_lr_twice_lr_inside),
    "sign-flipped": momentum_ascent,
    "ema-velocity": momentum_ema,
}

# --------------------------------------------------------------------------- Adam


def _adam(w, g, m, v, t, lr, beta1, beta2, eps, correct1, correct2, eps_inside=False):
    w, g, m, v = _f64(w, g, m, v)
    m = beta1 * m + (1.0 - beta1) * g
    v = beta2 * v + (1.0 - beta2) * g * g
    with np.errstate(divide="ignore", invalid="ignore"):
        m_hat = m if correct1 is None else m / correct1
        v_hat = v if correct2 is None else v / correct2
        denom = np.sqrt(v_hat + eps) if eps_inside else np.sqrt(v_hat) + eps
        return w - lr * m_hat / denom, m, v


def adam_step(w, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """``(w, m, v)`` after Adam's step number ``t`` (from 1):
    ``m = β1·m + (1 - β1)·g``, ``v = β2·v + (1 - β2)·g²``,
    ``w = w - lr·m̂/(sqrt(v̂) + eps)`` with ``m̂ = m/(1 - β1ᵗ)``, ``v̂ = v/(1 - β2ᵗ)``."""
    return _adam(w, g, m, v, t, lr, beta1, beta2, eps, 1.0 - beta1 ** t, 1.0 - beta2 ** t)


def adam_no_bias_correction(w, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """``no-bias-correction``: ``m`` and ``v`` used as they are."""
    return _adam(w, g, m, v, t, lr, beta1, beta2, eps, None, None)


def adam_eps_inside_sqrt(w, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """``eps-inside-sqrt``: ``sqrt(v̂ + eps)`` in the denominator."""
    return _adam(w, g, m, v, t, lr, beta1, beta2, eps, 1.0 - beta1 ** t, 1.0 - beta2 ** t, eps_inside=True)


def adam_correction_t_plus_1(w, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """``bias-correction-off-by-one``: ``1 - βᵗ⁺¹`` (the step counted from 0 and incremented first)."""
    return _adam(w, g, m, v, t, lr, beta1, beta2, eps, 1.0 - beta1 ** (t + 1), 1.0 - beta2 ** (t + 1))


def adam_correction_t_minus_1(w, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """``bias-correction-off-by-one``: ``1 - βᵗ⁻¹`` (0 at the first step: the update is not finite)."""
    return _adam(w, g, m, v, t, lr, beta1, beta2, eps, 1.0 - beta1 ** (t - 1), 1.0 - beta2 ** (t - 1))


ADAM_MISTAKES = {
    "no-bias-correction": adam_no_bias_correction,
    "eps-inside-sqrt": adam_eps_inside_sqrt,
    "bias-correction-off-by-one": (adam_correction_t_plus_1, adam_correction_t_minus_1),
}

# --------------------------------------------------------------------------- RMSProp


def rmsprop_step(w, g, s, lr=1e-3, rho=0.9, eps=1e-8):
    """``(w, s)`` after one RMSProp step: ``s = ρ·s + (1 - ρ)·g²``, ``w = w - lr·g/(sqrt(s) + eps)``."""
    w, g, s = _f64(w, g, s)
    s = rho * s + (1.0 - rho) * g * g
    return w - lr * g / (np.sqrt(s) + eps), s


def rmsprop_no_sqrt(w, g, s, lr=1e-3, rho=0.9, eps=1e-8):
    """``no-sqrt``: ``w = w - lr·g/(s + eps)``, the mean square itself as the scale."""
    w, g, s = _f64(w, g, s)
    s = rho * s + (1.0 - rho) * g * g
    return w - lr * g / (s + eps), s


def rmsprop_rho_swapped(w, g, s, lr=1e-3, rho=0.9, eps=1e-8):
    """``rho-swapped``: ``s = (1 - ρ)·s + ρ·g²``, the new gradient weighted by ρ."""
    w, g, s = _f64(w, g, s)
    s = (1.0 - rho) * s + rho * g * g
    return w - lr * g / (np.sqrt(s) + eps), s


RMSPROP_MISTAKES = {
    "no-sqrt": rmsprop_no_sqrt,
    "rho-swapped": rmsprop_rho_swapped,
}

MISTAKES = {
    "momentum-step": MOMENTUM_MISTAKES,
    "adam-step": ADAM_MISTAKES,
    "rmsprop-step": RMSPROP_MISTAKES,
}


def trajectory(step, w0, grads, state0, kwargs=None, t0: int | None = None) -> list[np.ndarray]:
    """The parameters after each step of ``step`` fed ``grads`` one by one, each step given
    the state the previous one returned: ``[w1, w2, ...]``.

    ``state0`` is a tuple of the initial state arrays (``(v,)``, ``(m, v)``, ``(s,)``);
    ``t0`` (Adam) is the first step number, passed after the state and incremented.
    """
    kwargs = kwargs or {}
    w, state, out = np.asarray(w0, dtype=np.float64), tuple(state0), []
    for k, g in enumerate(grads):
        extra = (t0 + k,) if t0 is not None else ()
        w, *state = step(w, g, *state, *extra, **kwargs)
        out.append(np.asarray(w, dtype=np.float64))
    return out
