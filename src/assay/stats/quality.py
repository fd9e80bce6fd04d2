"""Scores with confidence intervals, paired comparisons between targets, and how many items a test needs.

- A pass rate gets a Wilson interval (good at small n and near 0 or 1, unlike the normal one).
- A continuous score (F1, ROUGE-L, similarity) gets a percentile bootstrap interval.
- Two targets on the same items are compared *paired*: exact McNemar on the items where they
  disagree (pass/fail), a paired bootstrap of the mean difference otherwise.
- Comparing every pair inflates false positives; Holm's step-down correction controls that.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

__all__ = [
    "Comparison",
    "compare_pair",
    "holm",
    "holm_adjusted",
    "items_needed",
    "mcnemar_exact",
    "mean_ci",
    "paired_bootstrap",
    "wilson",
]


def wilson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion; (0, 1) when there is nothing to go on."""
    if n <= 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At 0 or n successes the bound is exactly 0 or 1; rounding would leave 1e-17 outside the estimate.
    lo = 0.0 if successes <= 0 else max(0.0, centre - half)
    hi = 1.0 if successes >= n else min(1.0, centre + half)
    return (lo, hi)


def mean_ci(
    values: Sequence[float], level: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile-bootstrap interval of a mean (seeded, so a report is reproducible)."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return None
    if len(x) == 1 or np.all(x == x[0]):
        return (float(x[0]), float(x[0]))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    a = (1 - level) / 2
    return (float(np.quantile(means, a)), float(np.quantile(means, 1 - a)))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: b items only A passed, c only B passed (a binomial test at 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    # Exact in integers (no SciPy import, which costs ~0.8 s of every command's start-up): P(X <= min) at p = 1/2.
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))
    return min(1.0, 2 * tail / (1 << n))  # int / int: exact rounding even past float range


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], n_boot: int = 5000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, tuple[float, float]]:
    """Mean of a − b over the same items, a two-sided bootstrap p-value for 'no difference', and its CI.

    The p-value is the share of resampled mean differences on the other side of zero, doubled
    (the percentile method's test; with n_boot draws it cannot go below 1 / n_boot).
    """
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(d) == 0:
        return (0.0, 1.0, (0.0, 0.0))
    diff = float(d.mean())
    if np.all(d == d[0]):
        return (diff, 1.0 if diff == 0 else 0.0, (diff, diff))
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
    below, above = float(np.mean(means <= 0)), float(np.mean(means >= 0))
    p = min(1.0, 2 * min(below, above))
    p = max(p, 1 / n_boot)
    q = (1 - level) / 2
    return (diff, p, (float(np.quantile(means, q)), float(np.quantile(means, 1 - q))))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    out = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def items_needed(
    diff: float, base: float = 0.8, power: float = 0.8, alpha: float = 0.05, discordant: float | None = None
) -> int:
    """Items needed for a paired test to detect a pass-rate difference `diff` (e.g. 0.02 for 2 points).

    Connor's formula for McNemar's test: with ψ the share of items on which the two targets
    disagree, n = (z_{α/2}·√ψ + z_β·√(ψ − δ²))² / δ². Without a measured ψ, the targets are
    taken as independent: ψ = p₁(1 − p₂) + p₂(1 − p₁) with p₁ = base, p₂ = base − diff, which is
    the most pessimistic case; correlated models disagree less and need fewer items.
    """
    if not 0 < abs(diff) < 1:
        raise ValueError("diff must be a rate difference between 0 and 1, e.g. 0.02 for two points")
    p1, p2 = base, base - diff
    psi = discordant if discordant is not None else p1 * (1 - p2) + p2 * (1 - p1)
    if psi < diff * diff:
        raise ValueError(f"a disagreement rate of {psi:g} cannot produce a difference of {diff:g}")
    za, zb = NormalDist().inv_cdf(1 - alpha / 2), NormalDist().inv_cdf(power)
    n = (za * math.sqrt(psi) + zb * math.sqrt(psi - diff * diff)) ** 2 / (diff * diff)
    return math.ceil(n)


@dataclass(frozen=True)
class Comparison:
    """Target a against target b on the same items of one suite."""

    suite: str
    a: str
    b: str
    n: int  # items both scored
    diff: float  # score(a) − score(b)
    test: str  # "mcnemar_exact" | "paired_bootstrap"
    p_value: float
    p_holm: float = 1.0
    a_only: int = 0  # pass/fail: items only a passed
    b_only: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "suite": self.suite,
            "a": self.a,
            "b": self.b,
            "n": self.n,
            "diff": self.diff,
            "test": self.test,
            "p_value": self.p_value,
            "p_holm": self.p_holm,
            "a_only": self.a_only,
            "b_only": self.b_only,
        }


def compare_pair(
    group: str, a: str, b: str, xa: Mapping[str, float], xb: Mapping[str, float], graded: bool, min_n: int = 1
) -> Comparison | None:
    """Targets a and b on the items both have (item -> value; pass/fail as 1/0), or None under `min_n` items.

    Pass/fail: exact McNemar on the discordant items. Graded: a paired bootstrap of the mean difference.
    `diff` is mean(a) − mean(b) either way; `p_holm` is left for `holm_adjusted` over the family.
    """
    common = sorted(set(xa) & set(xb))
    if len(common) < max(1, min_n):
        return None
    va, vb = [xa[i] for i in common], [xb[i] for i in common]
    if graded:
        diff, p, _ = paired_bootstrap(va, vb)
        return Comparison(group, a, b, len(common), diff, "paired_bootstrap", p)
    a_only = sum(1 for x, y in zip(va, vb, strict=True) if x >= 1.0 > y)
    b_only = sum(1 for x, y in zip(va, vb, strict=True) if y >= 1.0 > x)
    diff = (sum(va) - sum(vb)) / len(common)
    return Comparison(
        group, a, b, len(common), diff, "mcnemar_exact", mcnemar_exact(a_only, b_only), 1.0, a_only, b_only
    )


def holm_adjusted(family: Sequence[Comparison]) -> list[Comparison]:
    """The comparisons with `p_holm` set by Holm's step-down correction over the whole family."""
    adjusted = holm([c.p_value for c in family])
    return [dataclasses.replace(c, p_holm=p) for c, p in zip(family, adjusted, strict=True)]


def classified_rate_ci(
    k: int, n: int, hits: tuple[int, int], rejections: tuple[int, int], level: float = 0.95, draws: int = 4000
) -> tuple[float, float]:
    """Interval of a true rate measured through an imperfect classifier, wider than Wilson's.

    `k` of `n` items were classified positive. The classifier's validation counts give its
    sensitivity (`hits` = (true positives, false negatives)) and specificity (`rejections` =
    (true negatives, false positives)). The observed rate q relates to the true rate p by
    q = p*Se + (1 - p)*(1 - Sp), so p = (q + Sp - 1) / (Se + Sp - 1) (Rogan and Gladen 1978).
    q, Se and Sp are drawn from their Jeffreys posteriors, p is computed and clipped to [0, 1],
    and the percentile interval of the draws is joined with Wilson's, so the interval is
    never narrower than the one that trusts the classifier (Lang and Reiczigel 2014 do the
    same with a frequentist correction). Seeded by the counts: the same data, the same interval.
    """
    lo_w, hi_w = wilson(k, n, level)
    if n <= 0:
        return lo_w, hi_w
    rng = np.random.default_rng([k, n, *hits, *rejections])
    q = rng.beta(k + 0.5, n - k + 0.5, draws)
    se = rng.beta(hits[0] + 0.5, hits[1] + 0.5, draws)
    sp = rng.beta(rejections[0] + 0.5, rejections[1] + 0.5, draws)
    youden = np.maximum(se + sp - 1, 1e-3)  # a classifier no better than chance says nothing
    p = np.clip((q + sp - 1) / youden, 0.0, 1.0)
    tail = (1 - level) / 2
    lo, hi = np.quantile(p, [tail, 1 - tail])
    return min(lo_w, float(lo)), max(hi_w, float(hi))


def kappa_ci(tp: int, fp: int, fn: int, tn: int, level: float = 0.95, draws: int = 4000) -> tuple[float, float]:
    """Interval of Cohen's kappa from a 2x2 confusion table: the percentiles of kappa over draws of the
    four cells' shares from their Dirichlet posterior (Jeffreys prior). Seeded by the counts."""
    rng = np.random.default_rng([tp, fp, fn, tn, 7])
    cells = rng.dirichlet(np.array([tp, fp, fn, tn], dtype=float) + 0.5, draws)
    a, b, c, d = cells.T
    observed = a + d
    expected = (a + b) * (a + c) + (c + d) * (b + d)
    k = (observed - expected) / np.maximum(1 - expected, 1e-12)
    tail = (1 - level) / 2
    lo, hi = np.quantile(k, [tail, 1 - tail])
    return float(lo), float(hi)
