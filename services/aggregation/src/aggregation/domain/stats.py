"""Small statistics the detectors need, in pure Python (no SciPy at run time). Pure."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["median", "nb_upper_tail", "normal_sf", "nps_score_and_variance", "trimmed_mean", "two_proportion_z"]


def median(values: Sequence[float]) -> float:
    """The median; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def trimmed_mean(values: Sequence[float], trim: int) -> float:
    """The mean after dropping the ``trim`` largest and ``trim`` smallest values (robust to past spikes)."""
    ordered = sorted(values)
    if len(ordered) > 2 * trim:
        ordered = ordered[trim:len(ordered) - trim]
    return sum(ordered) / len(ordered) if ordered else 0.0


def nb_upper_tail(observed: int, mean: float, size: float) -> float:
    """P(X ≥ ``observed``) for a negative binomial with ``mean`` and dispersion ``size`` (variance mean + mean²/size).

    ``size`` = inf is the Poisson limit. Computed as 1 - P(X ≤ observed - 1) by summing the pmf in log
    space, which is exact enough for the counts a bucket holds (a few thousand at most).
    """
    if observed <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    poisson = math.isinf(size)
    if not poisson:
        p = size / (size + mean)
        log_p, log_q = math.log(p), math.log1p(-p)
    cdf = 0.0
    for k in range(observed):
        if poisson:
            log_pmf = -mean + k * math.log(mean) - math.lgamma(k + 1)
        else:
            log_pmf = (math.lgamma(k + size) - math.lgamma(size) - math.lgamma(k + 1) + size * log_p + k * log_q)
        cdf += math.exp(log_pmf)
    return max(0.0, 1.0 - cdf) if cdf < 1 - 1e-12 else _tail_sum(observed, mean, size)


def _tail_sum(observed: int, mean: float, size: float) -> float:
    """The upper tail summed directly (for tails too small for 1 - cdf), up to where terms vanish."""
    total, k = 0.0, observed
    while True:
        if math.isinf(size):
            log_pmf = -mean + k * math.log(mean) - math.lgamma(k + 1)
        else:
            p = size / (size + mean)
            log_pmf = (math.lgamma(k + size) - math.lgamma(size) - math.lgamma(k + 1) + size * math.log(p)
                       + k * math.log1p(-p))
        term = math.exp(log_pmf)
        total += term
        if term < total * 1e-12 or k > observed + 100_000:
            return total
        k += 1


def normal_sf(z: float) -> float:
    """P(Z ≥ z) for a standard normal."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def two_proportion_z(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float:
    """z of (share a - share b) under a pooled two-proportion test; 0.0 when either side is empty."""
    if n_a == 0 or n_b == 0:
        return 0.0
    pooled = (hits_a + hits_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    return 0.0 if se == 0 else (hits_a / n_a - hits_b / n_b) / se


def nps_score_and_variance(promoters: int, detractors: int, responses: int) -> tuple[float, float]:
    """NPS on -100..100 and the variance of that estimate (multinomial), for a two-window z test."""
    if responses == 0:
        return 0.0, 0.0
    p, d = promoters / responses, detractors / responses
    score = p - d
    variance = (p + d - score * score) / responses
    return 100 * score, 100 * 100 * variance
