"""When requests are sent: arrival schedules for open-loop load, as offsets in seconds from the start.

Open-loop load follows an absolute schedule, fixed before the first request, so a
slow target cannot slow the generator down (coordinated omission). Every model is
seeded and bounded: by a duration, a request count, or both; the schedule always ends.

- constant: one request every 1/rate seconds;
- poisson: exponential gaps with mean 1/rate (independent users);
- gamma: gamma gaps with mean 1/rate and coefficient of variation `burstiness`
  (1 is Poisson; above 1, bursts and lulls);
- ramp: the rate moves linearly from `rate` to `rate_end` over the duration;
- step: stages of (seconds, rate), e.g. a burst between two calm periods;
- trace: recorded timestamps, replayed as they were.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = ["ArrivalKind", "Arrivals", "schedule"]

ArrivalKind = Literal["constant", "poisson", "gamma", "ramp", "step", "trace"]
MAX_ARRIVALS = 10_000_000  # a guard against a typo such as --rate 1e9 --duration 3600


@dataclass(frozen=True)
class Arrivals:
    kind: ArrivalKind = "constant"
    rate: float = 1.0  # requests per second (the start rate of a ramp)
    rate_end: float | None = None  # ramp
    burstiness: float = 1.0  # gamma: coefficient of variation of the gaps
    steps: tuple[tuple[float, float], ...] = ()  # step: (seconds, rate) stages
    times: tuple[float, ...] = ()  # trace: offsets in seconds
    seed: int = 0
    notes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("trace", "step") and not self.rate > 0:
            raise ValueError(f"{self.kind} arrivals need a rate above 0 requests/s (got {self.rate})")
        if self.kind == "gamma" and not self.burstiness > 0:
            raise ValueError("gamma arrivals need burstiness above 0 (1 is Poisson)")
        if self.kind == "ramp" and (self.rate_end is None or self.rate_end < 0):
            raise ValueError("ramp arrivals need rate_end (requests/s at the end of the duration), 0 or more")
        if self.kind == "step" and (not self.steps or any(d <= 0 or r < 0 for d, r in self.steps)):
            raise ValueError("step arrivals need stages of (seconds > 0, rate >= 0)")
        if self.kind == "trace" and (not self.times or any(b < a for a, b in itertools.pairwise(self.times))):
            raise ValueError("a trace needs at least one timestamp, in increasing order")


def schedule(spec: Arrivals, duration_s: float | None = None, requests: int | None = None) -> list[float]:
    """Send times in seconds from the start, ascending, cut at `duration_s` and/or `requests`."""
    if spec.kind == "step":
        duration_s = min(duration_s or math.inf, sum(d for d, _ in spec.steps))
    if spec.kind == "trace":
        duration_s = duration_s if duration_s is not None else spec.times[-1] + 1e-9
    if duration_s is None and requests is None:
        raise ValueError("an arrival schedule needs a duration, a request count, or both; it must end by itself")
    if spec.kind == "ramp" and duration_s is None:
        raise ValueError("a ramp needs a duration (the time over which the rate moves)")
    cap = requests if requests is not None else MAX_ARRIVALS
    horizon = duration_s if duration_s is not None else math.inf
    times = _times(spec, horizon, cap)
    out = [t for t in times if t < horizon][:cap]
    if len(out) >= MAX_ARRIVALS:
        raise ValueError(f"the schedule would send over {MAX_ARRIVALS:,} requests; check the rate and duration")
    return out


def _times(spec: Arrivals, horizon: float, cap: int) -> Sequence[float]:
    rng = np.random.default_rng(spec.seed)
    n_hint = cap if math.isinf(horizon) else min(cap, int(spec.rate * horizon * 1.2 + 50) if spec.rate else cap)
    if spec.kind == "constant":
        n = min(cap, math.ceil(horizon * spec.rate) if not math.isinf(horizon) else cap)
        return [k / spec.rate for k in range(n)]
    if spec.kind in ("poisson", "gamma"):
        out: list[float] = []
        t = 0.0
        while len(out) < cap and t < horizon:
            if spec.kind == "poisson":
                gaps = rng.exponential(1.0 / spec.rate, size=max(16, n_hint))
            else:
                shape = 1.0 / spec.burstiness**2  # CV of a gamma is 1/sqrt(shape)
                gaps = rng.gamma(shape, 1.0 / (spec.rate * shape), size=max(16, n_hint))
            for g in gaps:
                out.append(t)  # the first request goes at once, as with constant
                t += float(g)
                if len(out) >= cap or t >= horizon:
                    break
        return out
    if spec.kind == "ramp":
        # Deterministic: the k-th request at the time the expected count reaches k, i.e. invert
        # N(t) = r0 t + (r1 - r0) t^2 / (2 D).
        r0, r1, d = spec.rate, float(spec.rate_end or 0.0), horizon
        total = (r0 + r1) / 2 * d
        a = (r1 - r0) / (2 * d)
        out = []
        for k in range(min(cap, math.ceil(total))):
            if abs(a) < 1e-12:
                out.append(k / r0)
            else:
                out.append((-r0 + math.sqrt(r0 * r0 + 4 * a * k)) / (2 * a))
        return out
    if spec.kind == "step":
        out = []
        start = 0.0
        for seconds, rate in spec.steps:
            if rate > 0:
                out += [start + k / rate for k in range(math.ceil(seconds * rate - 1e-9))]
            start += seconds
            if len(out) >= cap:
                break
        return out
    return list(spec.times)
