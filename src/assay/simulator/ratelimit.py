"""Continuously refilled token buckets, the way providers meter RPM and TPM."""

from __future__ import annotations

import math
from dataclasses import dataclass

from assay.clock import Clock

__all__ = ["Bucket", "Decision", "RateLimiter"]


@dataclass(slots=True)
class Decision:
    allowed: bool
    retry_after_s: float
    limit_requests: float | None
    remaining_requests: float | None
    reset_requests_s: float
    limit_tokens: float | None
    remaining_tokens: float | None
    reset_tokens_s: float


class Bucket:
    """Holds up to `per_minute` units; refills at `per_minute / 60` units a second."""

    def __init__(self, per_minute: float, clock: Clock) -> None:
        self.capacity = per_minute
        self.rate_per_s = per_minute / 60.0
        self.level = per_minute
        self.clock = clock
        self._t = clock.now_ns()

    def _refill(self) -> None:
        now = self.clock.now_ns()
        self.level = min(self.capacity, self.level + (now - self._t) / 1e9 * self.rate_per_s)
        self._t = now

    def wait_s(self, amount: float) -> float:
        """Seconds until `amount` units are available (0 if they are now)."""
        self._refill()
        missing = min(amount, self.capacity) - self.level
        return max(0.0, missing / self.rate_per_s)

    def take(self, amount: float) -> None:
        self.level -= min(amount, self.capacity)

    def reset_s(self) -> float:
        """Seconds until the bucket is full again."""
        return max(0.0, (self.capacity - self.level) / self.rate_per_s)


class RateLimiter:
    """RPM and TPM buckets for one model; a request needs room in both."""

    def __init__(self, rpm: float | None, tpm: float | None, clock: Clock) -> None:
        self.requests = Bucket(rpm, clock) if rpm else None
        self.tokens = Bucket(tpm, clock) if tpm else None

    def admit(self, tokens: int) -> Decision:
        wait = 0.0
        if self.requests:
            wait = max(wait, self.requests.wait_s(1))
        if self.tokens:
            wait = max(wait, self.tokens.wait_s(tokens))
        allowed = wait == 0.0
        if allowed:
            if self.requests:
                self.requests.take(1)
            if self.tokens:
                self.tokens.take(tokens)
        r, t = self.requests, self.tokens
        return Decision(
            allowed=allowed,
            retry_after_s=wait,
            limit_requests=r.capacity if r else None,
            remaining_requests=math.floor(r.level) if r else None,
            reset_requests_s=r.reset_s() if r else 0.0,
            limit_tokens=t.capacity if t else None,
            remaining_tokens=math.floor(t.level) if t else None,
            reset_tokens_s=t.reset_s() if t else 0.0,
        )
