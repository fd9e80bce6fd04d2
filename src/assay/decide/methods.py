"""The decision methods on a matrix of values: normalisation, weighted sum, TOPSIS, Pareto dominance, flip points.

Pure numpy, no I/O. A matrix is (..., targets, criteria): the leading axes are resamples,
so one call scores every draw. `directions` holds +1 where more is better (max) and -1
where less is (min). Conventions, so that results can be checked by hand:

- minmax: (x - worst) / (best - worst) per criterion; a criterion on which all targets
  are equal scores 1 for each.
- vector: x / ‖x‖ for max criteria, 1 - x / ‖x‖ for min ones (pymcdm's convention).
- target: (x - bound) / (best - bound) where the criterion has a `must` bound on its worse
  side (the bound scores 0, the best target 1); minmax where it has none.
- TOPSIS (Hwang & Yoon): vector-normalised, weighted, closeness d⁻ / (d⁺ + d⁻) to the
  ideal and anti-ideal points.
- A weight's flip point: the weight at which the winner changes when the other weights
  are rescaled in proportion so that all still sum to 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Flip", "flip_points", "nondominated", "normalize", "topsis", "weighted"]


def normalize(x: np.ndarray, directions: np.ndarray, method: str, bounds: np.ndarray | None = None) -> np.ndarray:
    """Each criterion to [0, 1] with 1 best, over the targets axis (-2). `bounds`: per criterion, NaN where none."""
    x = np.asarray(x, dtype=np.float64)
    best = np.where(directions > 0, x.max(axis=-2), x.min(axis=-2))[..., None, :]
    worst = np.where(directions > 0, x.min(axis=-2), x.max(axis=-2))[..., None, :]
    if method == "vector":
        norm = np.sqrt((x * x).sum(axis=-2, keepdims=True))
        r = np.divide(x, norm, out=np.ones_like(x), where=norm > 0)
        return np.asarray(np.where(directions > 0, r, 1 - r))
    if method == "target" and bounds is not None:
        has = ~np.isnan(bounds)
        worst = np.where(has, np.broadcast_to(bounds, worst.shape), worst)
    elif method not in ("minmax", "target"):
        raise ValueError(f"unknown normalisation {method!r}")
    span = best - worst
    out = np.divide(x - worst, span, out=np.ones_like(x), where=span != 0)
    return np.asarray(out)


def weighted(n: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The weighted sum of normalised scores: (..., targets)."""
    return np.asarray((n * w).sum(axis=-1))


def topsis(x: np.ndarray, w: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """TOPSIS closeness of each target (..., targets), 1 at the ideal point and 0 at the anti-ideal."""
    v = normalize(x, directions, "vector") * w
    ideal, anti = v.max(axis=-2, keepdims=True), v.min(axis=-2, keepdims=True)
    d_plus = np.sqrt(((v - ideal) ** 2).sum(axis=-1))
    d_minus = np.sqrt(((v - anti) ** 2).sum(axis=-1))
    total = d_plus + d_minus
    return np.asarray(np.divide(d_minus, total, out=np.ones_like(total), where=total > 0))


def nondominated(x: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """True for each target no other target dominates (at least as good on all, better on one): (..., targets)."""
    y = x * directions  # bigger is better everywhere
    a, b = y[..., :, None, :], y[..., None, :, :]  # a: the dominated candidate, b: the dominator
    dominated_by = (b >= a).all(axis=-1) & (b > a).any(axis=-1)
    return np.asarray(~dominated_by.any(axis=-1))


@dataclass(frozen=True)
class Flip:
    """The range of one weight over which the winner stays the winner, and the nearest change that flips it."""

    weight: float
    stays_from: float
    stays_to: float
    flip_at: float | None
    new_winner: int | None  # index of the target that wins past the flip


def flip_points(n: np.ndarray, w: np.ndarray, winner: int) -> list[Flip]:
    """For each criterion i: score_t(x) = x·n_ti + (1 − x)·R_t with R_t the other weights' score rescaled
    to sum 1, a line in x; the winner's range is where its line stays on top. `w` sums to 1."""
    out = []
    t_count, c_count = n.shape
    for i in range(c_count):
        wi = float(w[i])
        rest = 1.0 - wi
        if rest <= 1e-12 or t_count < 2:
            out.append(Flip(wi, 0.0, 1.0, None, None))  # one criterion carries all the weight: nothing to rescale
            continue
        others = np.delete(np.arange(c_count), i)
        a = n[:, i]
        r = (n[:, others] * w[others]).sum(axis=1) / rest
        lo, hi = 0.0, 1.0
        lo_by: list[int] = []
        hi_by: list[int] = []
        for t in range(t_count):
            if t == winner:
                continue
            # d(x) = x·da + (1 − x)·dr, the winner's lead over t; it changes sign at x = dr / (dr − da)
            da, dr = a[winner] - a[t], r[winner] - r[t]
            denom = dr - da
            if abs(denom) < 1e-15:
                continue
            x = dr / denom
            if wi + 1e-12 < x <= 1:
                if x < hi - 1e-12:
                    hi, hi_by = x, [t]
                elif abs(x - hi) <= 1e-12 and hi_by:
                    hi_by.append(t)  # two overtake at once
            elif 0 <= x < wi - 1e-12:
                if x > lo + 1e-12:
                    lo, lo_by = x, [t]
                elif abs(x - lo) <= 1e-12 and lo_by:
                    lo_by.append(t)
        # past the crossing, the one that crossed with the steepest rise wins
        candidates = []
        if hi_by:
            candidates.append((hi - wi, hi, max(hi_by, key=lambda t: a[t] - r[t])))
        if lo_by:
            candidates.append((wi - lo, lo, max(lo_by, key=lambda t: r[t] - a[t])))
        if candidates:
            _, at, who = min(candidates)
            out.append(Flip(wi, lo, hi, float(at), int(who)))
        else:
            out.append(Flip(wi, lo, hi, None, None))
    return out
