"""A circuit breaker per target: closed, open, half-open; pure (every call is given `now_s`).

It opens on `consecutive_failures` in a row, or when the error share over the last
`window_s` reaches `error_rate` with at least `min_requests` attempts in it. Open, it
refuses attempts until `open_until_s`; then it half-opens and lets exactly one probe
through. The probe's success closes it (and forgets the cooldown); its failure opens it
again for `cooldown_growth` times the last cooldown, up to `max_cooldown_s`. A failure while open never
shortens the deadline (LiteLLM #40130: a second failure kept the first, shorter one).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

from assay.config import BreakerSettings

__all__ = ["Breaker", "BreakerState", "Transition"]

BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class Transition:
    before: BreakerState
    after: BreakerState
    reason: str  # consecutive_failures | error_rate | cooldown_over | probe_failed | probe_succeeded


class Breaker:
    __slots__ = ("_outcomes", "_probe_out", "consecutive", "cooldown_s", "open_until_s", "opens", "settings", "state")

    def __init__(self, settings: BreakerSettings) -> None:
        self.settings = settings
        self.state: BreakerState = "closed"
        self.open_until_s = 0.0
        self.cooldown_s = 0.0  # the last open period; 0 while closed
        self.consecutive = 0
        self.opens = 0
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._probe_out = False

    def ready_at_s(self) -> float:
        """When an attempt may next go through (0: now)."""
        return self.open_until_s if self.state == "open" else 0.0

    def available(self, now_s: float) -> bool:
        """Whether an attempt would be let through now (without claiming the half-open probe)."""
        if self.state == "closed":
            return True
        if self.state == "open":
            return now_s >= self.open_until_s
        return not self._probe_out

    def acquire(self, now_s: float) -> tuple[bool, Transition | None]:
        """Claim the right to send one attempt now; half-open lets one probe through at a time."""
        if self.state == "closed":
            return True, None
        moved: Transition | None = None
        if self.state == "open":
            if now_s < self.open_until_s:
                return False, None
            self.state = "half_open"
            self._probe_out = False
            moved = Transition("open", "half_open", "cooldown_over")
        if self._probe_out:
            return False, moved
        self._probe_out = True
        return True, moved

    def release(self) -> None:
        """An acquired attempt that ended without a verdict on the target (cancelled, or the client's fault)."""
        self._probe_out = False

    def record(self, ok: bool, now_s: float) -> Transition | None:
        """One attempt's outcome for the target's health; the transition it caused, if any."""
        s = self.settings
        outcomes = self._outcomes
        outcomes.append((now_s, ok))
        while outcomes and outcomes[0][0] < now_s - s.window_s:
            outcomes.popleft()
        if ok:
            self.consecutive = 0
            if self.state == "half_open":
                self.state, self.cooldown_s, self._probe_out = "closed", 0.0, False
                outcomes.clear()
                return Transition("half_open", "closed", "probe_succeeded")
            return None
        self.consecutive += 1
        if self.state == "half_open":
            self._probe_out = False
            return self._open(now_s, "probe_failed", "half_open")
        if self.state == "open":  # a late failure of an attempt sent before it opened: extend, never shorten
            self.open_until_s = max(self.open_until_s, now_s + self.cooldown_s)
            return None
        if self.consecutive >= s.consecutive_failures:
            return self._open(now_s, "consecutive_failures", "closed")
        if len(outcomes) >= s.min_requests:
            failed = sum(1 for _, good in outcomes if not good)
            if failed / len(outcomes) >= s.error_rate:
                return self._open(now_s, "error_rate", "closed")
        return None

    def _open(self, now_s: float, reason: str, before: BreakerState) -> Transition:
        s = self.settings
        grown = self.cooldown_s * s.cooldown_growth
        self.cooldown_s = s.cooldown_s if self.cooldown_s == 0 else min(grown, s.max_cooldown_s)
        self.state = "open"
        self.open_until_s = max(self.open_until_s, now_s + self.cooldown_s)
        self.opens += 1
        return Transition(before, "open", reason)
