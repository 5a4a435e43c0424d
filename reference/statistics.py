"""The exact distributions behind statistical checks: acceptance bands and the
probability that a correct submission falls outside them.

A randomised function (dropout, an initialiser, a trainer) cannot be compared
with a reference value by value; a check measures a statistic of its output
(the fraction of dropped units, a sample variance, a held-out accuracy) and
accepts it inside a band. The band is chosen so that a *correct* function fails
with probability at most ``alpha`` (dlgrade uses ``alpha = 1e-6`` per check):

* counts (dropped units, correct predictions): binomial, exact tails summed from
  the probability mass function (in log space, then from the small end);
* a sample variance of normal draws: ``(n - 1)·S²/σ² ~ χ²(n - 1)``, exact tails
  via the regularised incomplete gamma function;
* a sample mean of normal draws: ``N(μ, σ²/n)``.

Bands are cached (a check asks for the same ones for every student). Every
function returns plain floats and ints; mpmath (a SymPy dependency) does
the incomplete gamma and erfc at 30 significant digits, so a probability of 1e-9
is computed as accurately as one of 0.5.
"""
from __future__ import annotations

import math
from functools import lru_cache

import mpmath
import numpy as np

mpmath.mp.dps = 30

ALPHA = 1e-6  # the false-failure probability allowed per check


# --------------------------------------------------------------------------- binomial


@lru_cache(maxsize=64)
def _binomial_pmf(n: int, p: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pmf of Binomial(n, p) and its tails from the left and from the right, summed
    in float64 from the small end (relative error about n·1e-16 even far in the tails)."""
    k = np.arange(n + 1)
    lg = np.array([math.lgamma(i + 1.0) for i in range(n + 1)])
    with np.errstate(divide="ignore"):
        logpmf = lg[n] - lg - lg[::-1] + k * math.log(p) + (n - k) * math.log1p(-p) \
            if 0.0 < p < 1.0 else np.where(k == (n if p >= 1.0 else 0), 0.0, -np.inf)
    pmf = np.exp(logpmf)
    return pmf, np.cumsum(pmf), np.cumsum(pmf[::-1])[::-1]


def binomial_cdf(n: int, p: float, k: int) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return float(min(1.0, _binomial_pmf(int(n), float(p))[1][k]))


def binomial_sf(n: int, p: float, k: int) -> float:
    """P(X > k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 1.0
    if k >= n:
        return 0.0
    return float(min(1.0, _binomial_pmf(int(n), float(p))[2][k + 1]))


def binomial_outside(n: int, p: float, lo: int, hi: int) -> float:
    """P(X < lo or X > hi) for X ~ Binomial(n, p)."""
    return binomial_cdf(n, p, lo - 1) + binomial_sf(n, p, hi)


def _search(pred, lo: int, hi: int) -> int:
    """The smallest integer k in [lo, hi] with pred(k) true (pred monotone false -> true)."""
    while lo < hi:
        mid = (lo + hi) // 2
        if pred(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


@lru_cache(maxsize=256)
def binomial_band(n: int, p: float, alpha: float = ALPHA) -> tuple[int, int]:
    """The narrowest ``[lo, hi]`` of counts with ``P(X < lo) <= alpha/2`` and
    ``P(X > hi) <= alpha/2`` for X ~ Binomial(n, p): a count outside it has
    probability at most ``alpha`` under ``p``."""
    half = alpha / 2
    # the largest lo with P(X <= lo - 1) <= half
    lo = _search(lambda k: binomial_cdf(n, p, k) > half, 0, n)
    hi = _search(lambda k: binomial_sf(n, p, k) <= half, 0, n)
    return lo, hi


@lru_cache(maxsize=256)
def binomial_lower_bound(n: int, p: float, alpha: float = ALPHA) -> int:
    """The largest ``k`` with ``P(X < k) <= alpha``: a one-sided bar (e.g. held-out
    accuracy) that a function whose true rate is ``p`` fails with probability <= alpha."""
    return _search(lambda k: binomial_cdf(n, p, k) > alpha, 0, n)


# --------------------------------------------------------------------------- chi-square


def chi2_cdf(df: int, x: float) -> float:
    """P(Q <= x) for Q ~ χ²(df)."""
    if x <= 0:
        return 0.0
    return float(mpmath.gammainc(mpmath.mpf(df) / 2, 0, mpmath.mpf(x) / 2, regularized=True))


def chi2_sf(df: int, x: float) -> float:
    """P(Q > x) for Q ~ χ²(df)."""
    if x <= 0:
        return 1.0
    return float(mpmath.gammainc(mpmath.mpf(df) / 2, mpmath.mpf(x) / 2, mpmath.inf, regularized=True))


def _quantile(f, target: float, lo: float, hi: float) -> float:
    """x with f(x) = target for an increasing f, by bisection to 1e-12 relative."""
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return 0.5 * (lo + hi)


@lru_cache(maxsize=256)
def chi2_band(df: int, alpha: float = ALPHA) -> tuple[float, float]:
    """``(lo, hi)`` with ``P(Q < lo) = P(Q > hi) = alpha/2`` for Q ~ χ²(df)."""
    half = alpha / 2
    top = df + 50.0 * math.sqrt(2.0 * df) + 100.0
    lo = _quantile(lambda x: chi2_cdf(df, x), half, 0.0, float(df))
    hi = _quantile(lambda x: -chi2_sf(df, x), -half, float(df), top)
    return lo, hi


def variance_band(n: int, variance: float, alpha: float = ALPHA) -> tuple[float, float]:
    """Band for the sample variance (ddof = 1) of ``n`` independent ``N(μ, variance)`` draws:
    outside it with probability ``alpha``."""
    lo, hi = chi2_band(n - 1, alpha)
    return variance * lo / (n - 1), variance * hi / (n - 1)


def variance_outside(n: int, variance: float, lo: float, hi: float) -> float:
    """P(sample variance < lo or > hi) for ``n`` draws of ``N(μ, variance)``."""
    df = n - 1
    return chi2_cdf(df, lo * df / variance) + chi2_sf(df, hi * df / variance)


# --------------------------------------------------------------------------- normal


def normal_two_sided(z: float) -> float:
    """P(|Z| > z) for a standard normal Z."""
    return float(mpmath.erfc(mpmath.mpf(z) / mpmath.sqrt(2)))


@lru_cache(maxsize=256)
def normal_quantile(alpha: float = ALPHA) -> float:
    """z with P(|Z| > z) = alpha."""
    return _quantile(lambda z: -normal_two_sided(z), -alpha, 0.0, 40.0)


def mean_band(n: int, variance: float, alpha: float = ALPHA) -> float:
    """Half-width of the band around the true mean for the mean of ``n`` independent
    draws of variance ``variance`` that are normal: ``z·sqrt(variance/n)``."""
    return normal_quantile(alpha) * math.sqrt(variance / n)


# --------------------------------------------------------------------------- shape of a normal sample


@lru_cache(maxsize=256)
def normal_fraction_band(n_scale: int, n_count: int, alpha: float = ALPHA) -> tuple[float, float, int, int]:
    """A scale-free test that a zero-mean sample is normal: estimate the scale ``s`` (the
    sample standard deviation, ddof = 1) from ``n_scale`` draws, then count how many of
    ``n_count`` *other* draws have ``|w| < s``. For ``N(0, σ²)`` draws that fraction is
    ``erf(s/(σ√2))``, about 0.683 (a uniform sample of the same variance gives 0.577).

    Returns ``(ratio_lo, ratio_hi, count_lo, count_hi)``: with probability at least
    ``1 - alpha/2`` the ratio ``s/σ`` lies in ``[ratio_lo, ratio_hi]``, and then the count
    lies in ``[count_lo, count_hi]`` with probability at least ``1 - alpha/2`` (each
    tail ``alpha/4`` at the worst ratio). A normal sample falls outside the count band
    with probability at most ``alpha``, whatever its σ.
    """
    vlo, vhi = variance_band(n_scale, 1.0, alpha / 2)
    ratio_lo, ratio_hi = math.sqrt(vlo), math.sqrt(vhi)
    q_lo, q_hi = math.erf(ratio_lo / math.sqrt(2)), math.erf(ratio_hi / math.sqrt(2))
    count_lo = _search(lambda k: binomial_cdf(n_count, q_lo, k) > alpha / 4, 0, n_count)
    count_hi = _search(lambda k: binomial_sf(n_count, q_hi, k) <= alpha / 4, 0, n_count)
    return ratio_lo, ratio_hi, count_lo, count_hi
