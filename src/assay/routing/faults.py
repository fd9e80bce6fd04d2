"""What to do after a failed attempt: retry the target, move on, or stop; and how long to wait (pure).

    kind            breaker   then
    transient       counts    retry the same target (within `retries`, the retry budget and pacing), else next
    rate_limited    no        cool the target down for Retry-After (or a jittered backoff); next at once
    context_length  no        next candidate with a larger context window, else stop with the provider's error
    content_filter  no        stop: the provider's reason goes to the client
    target_config   counts    next (the target's key, model or URL is wrong; the request is not)
    bad_request     no        stop: the provider's error goes to the client

Pacing: never more than `MAX_IN_WINDOW` attempts on one target within `WINDOW_S`
for one request, and never before a target's Retry-After has passed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

__all__ = ["MAX_IN_WINDOW", "WINDOW_S", "FailureKind", "backoff_s", "failure_kind", "pacing_wait_s"]

FailureKind = Literal["transient", "rate_limited", "context_length", "content_filter", "target_config", "bad_request"]
WINDOW_S = 1.5
MAX_IN_WINDOW = 2
MARGIN_S = 0.05  # sends reach the provider with jitter: keep the spacing there, not only here
_CONTEXT_WORDS = ("context_length", "context length", "context window", "prompt is too long", "too many tokens",
                  "maximum context")  # fmt: skip
_FILTER_WORDS = ("content_filter", "content filter", "content management policy", "content_policy", "safety system")


def failure_kind(error_class: str, http_status: int | None, message: str) -> FailureKind:
    if error_class == "rate_limited":
        return "rate_limited"
    if error_class != "client_error":
        return "transient"  # overloaded, server_error, timeout, connection, stream_broken, bad_response
    text = message.lower()
    if any(w in text for w in _CONTEXT_WORDS):
        return "context_length"
    if any(w in text for w in _FILTER_WORDS):
        return "content_filter"
    if http_status in (401, 403, 404):
        return "target_config"
    return "bad_request"


def backoff_s(retry: int, rng: random.Random, base_s: float = 0.05, cap_s: float = 2.0) -> float:
    """Exponential backoff with jitter for the `retry`-th retry (1, 2, ...): base * 2^(retry-1) * U(0.5, 1.5)."""
    return float(min(cap_s, base_s * 2.0 ** (retry - 1)) * (0.5 + rng.random()))


def pacing_wait_s(starts_s: Sequence[float], now_s: float) -> float:
    """How long until one more attempt on a target keeps at most MAX_IN_WINDOW of them within any WINDOW_S."""
    if len(starts_s) < MAX_IN_WINDOW:
        return 0.0
    return max(0.0, starts_s[-MAX_IN_WINDOW] + WINDOW_S + MARGIN_S - now_s)
