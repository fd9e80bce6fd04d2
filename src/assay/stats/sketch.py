"""A mergeable quantile sketch with relative error (DDSketch, Masson et al., VLDB 2019).

Values land in logarithmic buckets: bucket i holds (gamma^(i-1), gamma^i] with
gamma = (1 + a) / (1 - a), so any quantile comes back within a relative error `a`
(1% by default) however many values went in. Memory grows with the *range* of
the values (a few hundred buckets from 1 ms to 1 hour), not their number, and two
sketches merge by adding counts: what a long soak or per-second buckets need.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["Sketch"]


class Sketch:
    __slots__ = ("_gamma_log", "_zeros", "count", "counts", "max", "min", "rel_error", "total")

    def __init__(self, rel_error: float = 0.01) -> None:
        if not 0 < rel_error < 1:
            raise ValueError("rel_error must be between 0 and 1")
        self.rel_error = rel_error
        self._gamma_log = math.log((1 + rel_error) / (1 - rel_error))
        self.counts: dict[int, int] = {}
        self._zeros = 0  # values <= 0 (a zero-length gap) have no logarithm
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, x: float) -> None:
        self.count += 1
        self.total += x
        self.min = min(self.min, x)
        self.max = max(self.max, x)
        if x <= 0:
            self._zeros += 1
            return
        i = math.ceil(math.log(x) / self._gamma_log)
        self.counts[i] = self.counts.get(i, 0) + 1

    def extend(self, xs: Iterable[float]) -> Sketch:
        for x in xs:
            self.add(x)
        return self

    def merge(self, other: Sketch) -> Sketch:
        if other.rel_error != self.rel_error:
            raise ValueError("sketches with different accuracies cannot merge")
        for i, c in other.counts.items():
            self.counts[i] = self.counts.get(i, 0) + c
        self._zeros += other._zeros
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        return self

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0-1), within `rel_error` of the true value; None when empty."""
        if self.count == 0:
            return None
        rank = q * (self.count - 1)
        if rank < self._zeros:
            return min(0.0, self.max) if self._zeros == self.count else 0.0
        seen = self._zeros
        for i in sorted(self.counts):
            seen += self.counts[i]
            if seen > rank:
                # The bucket's midpoint in relative terms: 2 gamma^i / (gamma + 1).
                gamma = math.exp(self._gamma_log)
                value = 2 * gamma**i / (gamma + 1)
                return min(max(value, self.min), self.max)
        return self.max

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None
