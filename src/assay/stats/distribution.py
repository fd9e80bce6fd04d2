"""The distribution of one latency-like metric, and its one JSON shape.

Every latency figure assay reports, in every command, is a `Distribution`:

    {"p50": .., "p90": .., "p95": .., "p99": .., "mean": .., "n": .., "ci95": {"p50": [lo, hi] | null, ...}}

Values are kept exactly up to `EXACT_MAX` (percentiles by linear interpolation,
bootstrap CIs), so probes and evals report exact figures. Past that, the values
move into a DDSketch (1% relative error) and memory stops growing, so a one-hour
soak is summarised in the space of a one-minute one; CIs then come from the
binomial order-statistic ranks, read off the sketch.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from typing import Any

import numpy as np

from assay.stats.percentiles import MIN_N_FOR_CI, QUANTILES, bootstrap_ci, order_statistic_ranks, percentiles
from assay.stats.sketch import Sketch

__all__ = ["EXACT_MAX", "Distribution"]

EXACT_MAX = 100_000  # values kept exactly; 800 KB a metric


class Distribution:
    """Streaming: `add` values, then read percentiles, CIs, mean and standard deviation."""

    __slots__ = ("_ci", "_p", "_sketch", "_values", "n", "total", "total_sq")

    def __init__(self, values: Iterable[float] = ()) -> None:
        self._values: array[float] | None = array("d")
        self._sketch: Sketch | None = None
        self.n = 0
        self.total = 0.0
        self.total_sq = 0.0
        self._p: dict[str, float | None] | None = None
        self._ci: dict[str, tuple[float, float] | None] | None = None
        for v in values:
            self.add(v)

    def add(self, x: float) -> None:
        self.n += 1
        self.total += x
        self.total_sq += x * x
        self._p = self._ci = None
        if self._values is not None:
            self._values.append(x)
            if len(self._values) > EXACT_MAX:
                self._sketch = Sketch().extend(self._values)
                self._values = None
        else:
            assert self._sketch is not None
            self._sketch.add(x)

    @property
    def exact(self) -> bool:
        return self._values is not None

    @property
    def values(self) -> list[float]:
        """The values, when still kept exactly (empty once sketched)."""
        return list(self._values) if self._values is not None else []

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def stdev(self) -> float | None:
        """Population standard deviation (numpy's default), from running sums."""
        if self.n < 2:
            return None
        m = self.total / self.n
        return math.sqrt(max(0.0, self.total_sq / self.n - m * m))

    @property
    def p(self) -> dict[str, float | None]:
        """p50, p90, p95 and p99 (None each when empty)."""
        if self._p is None:
            if self._values is not None:
                self._p = percentiles(np.frombuffer(self._values, dtype=np.float64))
            else:
                assert self._sketch is not None
                self._p = {k: self._sketch.quantile(q / 100) for k, q in QUANTILES.items()}
        return self._p

    def quantile(self, q: float) -> float | None:
        """Any quantile, 0-1."""
        if not self.n:
            return None
        if self._values is not None:
            return float(np.percentile(np.frombuffer(self._values, dtype=np.float64), q * 100))
        assert self._sketch is not None
        return self._sketch.quantile(q)

    @property
    def ci95(self) -> dict[str, tuple[float, float] | None]:
        """95% CI of each percentile (bootstrap while exact); None where the sample is too small for an honest one."""
        if self._ci is None:
            if self._values is not None:
                self._ci = bootstrap_ci(np.frombuffer(self._values, dtype=np.float64))
            else:
                self._ci = self.rank_ci95()
        return self._ci

    def rank_ci95(self) -> dict[str, tuple[float, float] | None]:
        """95% CIs from the binomial order-statistic ranks (the same ranks the bootstrap uses past 5,000 values):
        no resampling, cheap enough for every second of a long timeline. Withheld under the bootstrap's rule.
        Read off a sketch, each bound moves out by the sketch's relative error, so the interval still covers."""
        n = self.n
        out: dict[str, tuple[float, float] | None] = {}
        ordered = np.sort(np.frombuffer(self._values, dtype=np.float64)) if self._values is not None and n else None
        for k, q in QUANTILES.items():
            p = q / 100
            if n < MIN_N_FOR_CI or (n * (1 - p) < 5 and p > 0.5):
                out[k] = None
                continue
            lo, hi = order_statistic_ranks(n, p)
            if ordered is not None:
                out[k] = (float(ordered[lo]), float(ordered[hi]))
                continue
            assert self._sketch is not None
            a, b = self._sketch.quantile(lo / (n - 1)), self._sketch.quantile(hi / (n - 1))
            err = self._sketch.rel_error
            out[k] = None if a is None or b is None else (a * (1 - err), b * (1 + err))
        return out

    def merge(self, other: Distribution) -> Distribution:
        """Add another distribution's values (exact ones are replayed; a sketched side sketches both)."""
        if other._values is not None:
            for v in other._values:
                self.add(v)
            return self
        assert other._sketch is not None
        if self._sketch is None:
            self._sketch = Sketch().extend(self._values or ())
            self._values = None
        self._sketch.merge(other._sketch)
        self.n += other.n
        self.total += other.total
        self.total_sq += other.total_sq
        self._p = self._ci = None
        return self

    def to_json(self, rank_ci: bool = False) -> dict[str, Any]:
        """The one latency shape; figures unrounded. `rank_ci`: order-statistic CIs (cheap) even while exact."""
        out: dict[str, Any] = dict(self.p)
        out["mean"] = self.mean
        out["n"] = self.n
        ci = self.rank_ci95() if rank_ci else self.ci95
        out["ci95"] = {k: [v[0], v[1]] if v else None for k, v in ci.items()}
        return out
