"""The four phase timeouts of one attempt, enforced by one re-armed `asyncio.timeout`.

`connect` (TCP/TLS) is the transport's; `first_token` (send to first content
token, headers included), `idle` (gap between chunks) and `total` are enforced
here. Before each wait, `arm` points the one timer at the nearest deadline and
remembers its phase, so an expiry always knows what it was waiting for, and no
task or timer context is created per chunk. `disarm` stops it while events are
handed to the caller: time the caller spends is not the provider's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from assay.model import Timing

__all__ = ["Deadlines", "Timeouts"]


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_s: float = 10.0
    first_token_s: float = 30.0
    idle_s: float = 30.0
    total_s: float = 60.0

    def limit_s(self, phase: str) -> float:
        return {"connect": self.connect_s, "first_token": self.first_token_s, "idle": self.idle_s}.get(
            phase, self.total_s
        )


class Deadlines:
    __slots__ = ("first_at", "loop", "phase", "timeouts", "timer", "timing", "total_at")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeouts: Timeouts, timing: Timing) -> None:
        self.loop, self.timeouts, self.timing = loop, timeouts, timing
        start = loop.time()
        self.total_at = start + timeouts.total_s
        self.first_at = start + timeouts.first_token_s
        self.timer: asyncio.Timeout | None = None
        self.phase = "first_token"

    def arm(self, idle: bool) -> None:
        """Point the timer at the nearest deadline before a wait (`idle`: a wait for the next chunk)."""
        when, self.phase = self.total_at, "total"  # on a tie the more specific phase is named
        if not self.timing.content_ns and self.first_at <= when:
            when, self.phase = self.first_at, "first_token"
        if idle:
            idle_at = self.loop.time() + self.timeouts.idle_s
            if idle_at < when or (idle_at == when and self.phase == "total"):
                when, self.phase = idle_at, "idle"
        assert self.timer is not None
        self.timer.reschedule(when)

    def disarm(self) -> None:
        assert self.timer is not None
        self.timer.reschedule(None)

    def expired(self) -> bool:
        return self.timer is not None and self.timer.expired()
