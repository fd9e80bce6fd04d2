"""Clocks passed in, never reached for: tests and simulations stay deterministic.

`SystemClock` reads CLOCK_MONOTONIC, which on Linux is shared by every
process on the machine, so a client's stamps and the simulator's server-side
stamps are directly comparable.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    def now_ns(self) -> int:
        """Monotonic time in nanoseconds."""
        ...

    def wall_s(self) -> float:
        """Wall-clock time in seconds since the epoch (for display and buckets across runs)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now_ns(self) -> int:
        return time.monotonic_ns()

    def wall_s(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to; `sleep` advances it instantly."""

    def __init__(self, start_ns: int = 0, wall_start_s: float = 1_700_000_000.0) -> None:
        self._ns = start_ns
        self._wall0 = wall_start_s
        self._start_ns = start_ns

    def now_ns(self) -> int:
        return self._ns

    def wall_s(self) -> float:
        return self._wall0 + (self._ns - self._start_ns) / 1e9

    def advance(self, seconds: float) -> None:
        self._ns += int(seconds * 1e9)

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)
