"""Percentiles with bootstrap confidence intervals."""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

__all__ = ["MIN_N_FOR_CI", "QUANTILES", "bootstrap_ci", "order_statistic_ranks", "percentiles"]

QUANTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0}  # the one quantile set of every report
MIN_N_FOR_CI = 20  # below this a percentile CI is too wide to mean anything
# Resampling costs n_boot * n floats; past this many values the order-statistic CI is exact enough and cheap.
BOOTSTRAP_MAX_N = 5000


def percentiles(values: Sequence[float] | np.ndarray, qs: dict[str, float] = QUANTILES) -> dict[str, float | None]:
    """Linear-interpolated percentiles; None for every key when there are no values."""
    if len(values) == 0:
        return {k: None for k in qs}
    arr = np.asarray(values, dtype=float)
    got = np.percentile(arr, list(qs.values()))
    return {k: float(v) for k, v in zip(qs, got, strict=True)}


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    qs: dict[str, float] = QUANTILES,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float] | None]:
    """95% CI of each percentile; None where n is too small for it.

    Percentile bootstrap up to BOOTSTRAP_MAX_N values, the binomial
    order-statistic interval beyond (no resampling, so memory stays flat).

    A p99 needs enough samples above it to resample: we require at least
    MIN_N_FOR_CI values and, for high quantiles, at least 5 beyond the quantile.
    """
    n = len(values)
    out: dict[str, tuple[float, float] | None] = {}
    if n < MIN_N_FOR_CI:
        return {k: None for k in qs}
    arr = np.asarray(values, dtype=float)
    alpha = (1 - level) / 2
    big = n > BOOTSTRAP_MAX_N
    if big:
        arr = np.sort(arr)
    else:
        samples = arr[np.random.default_rng(seed).integers(0, n, size=(n_boot, n))]
    for k, q in qs.items():
        if n * (1 - q / 100) < 5 and q > 50:
            out[k] = None
        elif big:
            out[k] = _order_statistic_ci(arr, q / 100, level)
        else:
            stat = np.percentile(samples, q, axis=1)
            lo, hi = np.quantile(stat, [alpha, 1 - alpha])
            out[k] = (float(lo), float(hi))
    return out


def order_statistic_ranks(n: int, p: float, level: float = 0.95) -> tuple[int, int]:
    """The 0-based ranks bounding a distribution-free CI of the p-quantile of n values: where a binomial(n, p)
    count falls, by its normal approximation (tight once n*p*(1-p) is large; callers withhold the CI below
    MIN_N_FOR_CI, and a high quantile with fewer than 5 values beyond it)."""
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    half = z * math.sqrt(n * p * (1 - p))
    lo, hi = math.floor(n * p - half), math.ceil(n * p + half)
    return max(lo - 1, 0), min(hi, n - 1)


def _order_statistic_ci(sorted_arr: np.ndarray, p: float, level: float) -> tuple[float, float]:
    lo, hi = order_statistic_ranks(len(sorted_arr), p, level)
    return float(sorted_arr[lo]), float(sorted_arr[hi])
