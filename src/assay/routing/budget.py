"""A retry budget: retries may be at most a share of first attempts over a sliding window (pure).

A floor of `min_retries` per window lets a quiet route still retry; the share keeps a
busy one from multiplying its load when a target fails (a retry storm).
"""

from __future__ import annotations

from collections import deque

__all__ = ["RetryBudget"]


class RetryBudget:
    __slots__ = ("_firsts", "_retries", "min_retries", "ratio", "window_s")

    def __init__(self, ratio: float, window_s: float = 10.0, min_retries: int = 3) -> None:
        self.ratio, self.window_s, self.min_retries = ratio, window_s, min_retries
        self._firsts: deque[float] = deque()
        self._retries: deque[float] = deque()

    def _prune(self, now_s: float) -> None:
        edge = now_s - self.window_s
        for q in (self._firsts, self._retries):
            while q and q[0] < edge:
                q.popleft()

    def first(self, now_s: float) -> None:
        self._firsts.append(now_s)

    def allows(self, now_s: float) -> bool:
        self._prune(now_s)
        return len(self._retries) < max(self.min_retries, self.ratio * len(self._firsts))

    def spend(self, now_s: float) -> None:
        self._retries.append(now_s)

    def state(self, now_s: float) -> dict[str, float]:
        self._prune(now_s)
        return {"first_attempts": len(self._firsts), "retries": len(self._retries), "ratio": self.ratio}
