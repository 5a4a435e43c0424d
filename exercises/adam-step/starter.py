import numpy as np


def adam_step(w, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """One Adam step (t counts from 1): returns (w, m, v), the new parameters and the
    new (uncorrected) first and second moments.

    m = beta1*m + (1-beta1)*g; v = beta2*v + (1-beta2)*g**2;
    w = w - lr * m_hat / (sqrt(v_hat) + eps), m_hat = m/(1-beta1**t), v_hat = v/(1-beta2**t).
    """
    raise NotImplementedError("write adam_step")
