"""Live health of each target, and the frozen snapshot a policy decides on (pure: `now_s` is passed in).

The gateway feeds every attempt's outcome to `Health.observe`; the what-if simulator
will feed its simulated ones. A policy never sees `TargetHealth` itself, only a
`Snapshot`: values, no methods that change anything.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from assay.config import BreakerSettings
from assay.routing.breaker import Breaker, BreakerState, Transition

__all__ = ["Health", "Outcome", "Snapshot", "TargetHealth", "TargetView"]

ALPHA = 0.2  # EWMA weight of the newest observation: about the last 10 attempts matter


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt told us about its target."""

    ok: bool
    ttft_ms: float | None = None
    e2e_ms: float | None = None
    output_tokens: int = 0
    counts_against: bool = True  # a failure of the target (not a rate limit, not the client's bad request)
    cooldown_s: float | None = None  # no attempt before now + this (Retry-After, or a 429's backoff)
    limits: Mapping[str, str] = field(default_factory=dict)  # the provider's rate-limit headers


@dataclass(frozen=True, slots=True)
class TargetView:
    """One target as a policy sees it."""

    name: str
    state: BreakerState
    available: bool  # an attempt would go through now (breaker and cooldown)
    ready_at_s: float  # when it next will, if not now
    ttft_ms: float | None  # EWMA over successes
    e2e_ms: float | None
    output_tokens: float | None
    error_rate: float  # EWMA of failures (1) and successes (0)
    in_flight: int
    headroom: float | None  # remaining / limit of requests, from the provider's headers
    input_per_mtok: float | None
    output_per_mtok: float | None
    context_window: int | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    now_s: float
    targets: Mapping[str, TargetView]


def _ewma(old: float | None, new: float) -> float:
    return new if old is None else old + ALPHA * (new - old)


def _headroom(limits: Mapping[str, str]) -> float | None:
    for remaining, limit in (
        ("x-ratelimit-remaining-requests", "x-ratelimit-limit-requests"),
        ("anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-limit"),
    ):
        if remaining in limits and limit in limits:
            try:
                cap = float(limits[limit])
                return max(0.0, float(limits[remaining])) / cap if cap > 0 else None
            except ValueError:
                return None
    return None


class TargetHealth:
    __slots__ = ("attempts", "breaker", "cooldown_until_s", "e2e_ms", "error_rate", "failures", "headroom",
                 "in_flight", "name", "output_tokens", "recent", "ttft_ms")  # fmt: skip

    def __init__(self, name: str, breaker: BreakerSettings) -> None:
        self.name = name
        self.breaker = Breaker(breaker)
        self.ttft_ms: float | None = None
        self.e2e_ms: float | None = None
        self.output_tokens: float | None = None
        self.error_rate = 0.0
        self.in_flight = 0
        self.cooldown_until_s = 0.0
        self.headroom: float | None = None
        self.attempts = 0
        self.failures = 0
        self.recent: deque[float] = deque(maxlen=64)  # attempt start times, for the admin view

    def available(self, now_s: float) -> bool:
        return now_s >= self.cooldown_until_s and self.breaker.available(now_s)

    def ready_at_s(self) -> float:
        return max(self.cooldown_until_s, self.breaker.ready_at_s())

    def observe(self, outcome: Outcome, now_s: float) -> Transition | None:
        self.attempts += 1
        if outcome.limits:
            self.headroom = _headroom(outcome.limits)
        if outcome.cooldown_s:
            # Never sooner than the provider asked; a second, shorter ask never shortens the first.
            self.cooldown_until_s = max(self.cooldown_until_s, now_s + outcome.cooldown_s)
        if outcome.ok:
            if outcome.ttft_ms is not None:
                self.ttft_ms = _ewma(self.ttft_ms, outcome.ttft_ms)
            if outcome.e2e_ms is not None:
                self.e2e_ms = _ewma(self.e2e_ms, outcome.e2e_ms)
            if outcome.output_tokens:
                self.output_tokens = _ewma(self.output_tokens, float(outcome.output_tokens))
            self.error_rate = _ewma(self.error_rate, 0.0)
            return self.breaker.record(True, now_s)
        self.failures += 1
        if not outcome.counts_against:
            self.breaker.release()
            return None
        self.error_rate = _ewma(self.error_rate, 1.0)
        return self.breaker.record(False, now_s)


class Health:
    """Every target's live state, by name."""

    def __init__(self, names: Iterable[str], breaker: BreakerSettings) -> None:
        self.settings = breaker
        self.targets: dict[str, TargetHealth] = {n: TargetHealth(n, breaker) for n in names}

    def adopt(self, names: Iterable[str], breaker: BreakerSettings) -> Health:
        """A Health for a reloaded config: targets kept by name keep their state."""
        new = Health((), breaker)
        for n in names:
            new.targets[n] = self.targets.get(n) or TargetHealth(n, breaker)
        return new

    def snapshot(
        self,
        now_s: float,
        names: Iterable[str],
        prices: Mapping[str, tuple[float, float]] | None = None,
        windows: Mapping[str, int | None] | None = None,
    ) -> Snapshot:
        views: dict[str, TargetView] = {}
        for n in names:
            h = self.targets[n]
            rates = (prices or {}).get(n)
            views[n] = TargetView(
                n,
                h.breaker.state,
                h.available(now_s),
                h.ready_at_s(),
                h.ttft_ms,
                h.e2e_ms,
                h.output_tokens,
                h.error_rate,
                h.in_flight,
                h.headroom,
                rates[0] if rates else None,
                rates[1] if rates else None,
                (windows or {}).get(n),
            )
        return Snapshot(now_s, views)
