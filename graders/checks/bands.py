"""Acceptance bands of the statistical kind, with the exact values the built-in specs need
precomputed (``graders/data/statistical_bands.json``).

The binomial, χ² and normal quantiles of :mod:`dlgrade.reference.statistics` are exact (mpmath at
30 digits) and take seconds to find by bisection; a student running ``dlgrade check``
meets them in a fresh process every time. The table holds every quantile the built-in
exercises ask for, keyed by degrees of freedom (or sample sizes) and ``alpha``;
anything else (a course's own exercise) is computed, then cached for the process.
``tests/test_statistical.py`` recomputes every entry and checks that the built-in specs
need nothing outside the table. Rewrite it with
``python -m dlgrade.graders.checks.bands``.
"""
from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

TABLE = Path(__file__).resolve().parent.parent / "data" / "statistical_bands.json"


def _key(*parts) -> str:
    return "|".join(repr(float(p)) if isinstance(p, float) else str(p) for p in parts)


@lru_cache(maxsize=1)
def table() -> dict:
    try:
        return json.loads(TABLE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


@lru_cache(maxsize=256)
def chi2_band(df: int, alpha: float) -> tuple[float, float]:
    found = table().get("chi2_band", {}).get(_key(df, alpha))
    if found:
        return tuple(found)
    from dlgrade.reference.statistics import chi2_band as exact

    return exact(df, alpha)


@lru_cache(maxsize=256)
def binomial_band(n: int, p: float, alpha: float) -> tuple[int, int]:
    found = table().get("binomial_band", {}).get(_key(n, p, alpha))
    if found:
        return int(found[0]), int(found[1])
    from dlgrade.reference.statistics import binomial_band as exact

    return exact(n, p, alpha)


@lru_cache(maxsize=256)
def normal_quantile(alpha: float) -> float:
    found = table().get("normal_quantile", {}).get(_key(alpha))
    if found is not None:
        return float(found)
    from dlgrade.reference.statistics import normal_quantile as exact

    return exact(alpha)


@lru_cache(maxsize=256)
def normal_fraction_band(n_scale: int, n_count: int, alpha: float) -> tuple[float, float, int, int]:
    found = table().get("normal_fraction_band", {}).get(_key(n_scale, n_count, alpha))
    if found:
        return (float(found[0]), float(found[1]), int(found[2]), int(found[3]))
    from dlgrade.reference.statistics import normal_fraction_band as exact

    return exact(n_scale, n_count, alpha)


def variance_band(n: int, variance: float, alpha: float) -> tuple[float, float]:
    """As :func:`dlgrade.reference.statistics.variance_band`."""
    lo, hi = chi2_band(n - 1, alpha)
    return variance * lo / (n - 1), variance * hi / (n - 1)


def mean_band(n: int, variance: float, alpha: float) -> float:
    """As :func:`dlgrade.reference.statistics.mean_band`."""
    return normal_quantile(alpha) * math.sqrt(variance / n)


def needed_by_builtin() -> dict:
    """Every quantile the built-in exercises' statistical checks ask for, computed exactly."""
    from dlgrade.graders.checks.protocol import settings_of
    from dlgrade.graders.checks.statistical import Options
    from dlgrade.graders.spec import BUILTIN_DIR, catalogue
    from dlgrade.reference import statistics as stats

    out: dict = {"binomial_band": {}, "chi2_band": {}, "normal_quantile": {}, "normal_fraction_band": {}}
    for ex in catalogue().values():
        if ex.folder.parent.resolve() != BUILTIN_DIR.resolve():
            continue
        for check in ex.checks:
            if check.kind != "statistical":
                continue
            opts = settings_of(check, Options)
            alpha = opts.alpha / max(1, len(check.cases))
            for case in check.cases:
                args = ex.cases[case].get("args", [])
                if opts.test == "rate":
                    x = args[opts.x_arg]
                    n = int(math.prod(x.get("normal") or x.get("uniform") or [len(x.get("value", []))]))
                    p = float(args[opts.p_arg])
                    for q in (p, 1 - p):  # the band of p and the swapped one (see statistical._rate)
                        out["binomial_band"][_key(n, q, alpha)] = list(stats.binomial_band(n, q, alpha))
                if opts.test in ("mean", "variance", "normal"):
                    n = int(math.prod(int(args[i]) for i in opts.shape_args))
                    if opts.test == "variance":
                        out["chi2_band"][_key(n - 1, alpha)] = list(stats.chi2_band(n - 1, alpha))
                    elif opts.test == "mean":
                        out["normal_quantile"][_key(alpha)] = stats.normal_quantile(alpha)
                    else:
                        half = n // 2
                        out["normal_fraction_band"][_key(half, n - half, alpha)] = list(
                            stats.normal_fraction_band(half, n - half, alpha))
    return out


if __name__ == "__main__":  # pragma: no cover
    TABLE.write_text(json.dumps(needed_by_builtin(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {TABLE}")
