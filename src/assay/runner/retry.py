"""When to try again: honour Retry-After, else exponential backoff with full jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass

from assay.errors import ProviderError

__all__ = ["RETRIABLE", "RetryPolicy"]

RETRIABLE = frozenset({"rate_limited", "overloaded", "server_error", "timeout", "connection", "stream_broken"})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 0
    base_s: float = 0.5
    cap_s: float = 30.0
    honour_retry_after: bool = True
    retriable: frozenset[str] = RETRIABLE

    def delay_s(self, attempt: int, error: ProviderError, rng: random.Random) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to give up."""
        if attempt >= self.max_retries or error.error_class not in self.retriable:
            return None
        if self.honour_retry_after and error.retry_after_s is not None:
            return min(error.retry_after_s, self.cap_s)
        return rng.uniform(0.0, min(self.cap_s, self.base_s * 2**attempt))
