"""What a target does past its limit: rejects, queues, saturates, or none of them.

- rejects: at least `reject_share` of attempts were 429s (fast refusals);
- queues: few 429s but the vendor says it limits (a 429 or rate-limit headers were seen) and the
  last third's median TTFT is at least `growth` times the first third's: requests wait in its queue;
- saturates: the same latency build-up with no sign of rate limiting at all (no 429, no rate-limit
  headers): the server is simply out of capacity, which is not rate limiting;
- none: neither.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from assay.records import Record
from assay.stats.sketch import Sketch

__all__ = ["RateLimitTracker", "RateLimitVerdict", "classify_rate_limit"]

Behavior = Literal["rejects", "queues", "saturates", "none"]


@dataclass(frozen=True)
class RateLimitVerdict:
    behavior: Behavior
    rate_limited: int
    share: float
    retry_after_p50_s: float | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "behavior": self.behavior,
            "rate_limited": self.rate_limited,
            "share": self.share,
            "retry_after_s": {"p50": self.retry_after_p50_s},
            "reason": self.reason,
        }


class RateLimitTracker:
    """Folds Records one at a time; keeps two 8-byte numbers per success and two sketches."""

    def __init__(self) -> None:
        self.attempts = 0
        self.limited = 0
        self.limit_headers = False
        self.limited_e2e = Sketch()
        self.waits = Sketch()
        self.ok_starts = array("d")
        self.ok_ttft = array("d")

    def add(self, r: Record) -> None:
        if r.error_class == "cancelled":
            return
        self.attempts += 1
        if r.rate_limit_headers:
            self.limit_headers = True
        if r.error_class == "rate_limited":
            self.limited += 1
            if (x := r.e2e_ms) is not None:
                self.limited_e2e.add(x)
            if r.retry_after_s is not None:
                self.waits.add(r.retry_after_s)
        if r.ok and r.final and (ttft := r.ttft_ms) is not None:
            self.ok_starts.append(float(r.intended_ns or r.sent_ns))
            self.ok_ttft.append(ttft)

    def verdict(self, reject_share: float = 0.02, growth: float = 2.0) -> RateLimitVerdict:
        share = self.limited / self.attempts if self.attempts else 0.0
        wait_p50 = self.waits.quantile(0.5)
        if share >= reject_share:
            fast = self.limited_e2e.quantile(0.5)
            how = f"{share:.1%} of attempts got 429" + (f", answered in {fast:.0f} ms" if fast is not None else "")
            return RateLimitVerdict("rejects", self.limited, share, wait_p50, how)
        if len(self.ok_ttft) >= 9:
            order = np.argsort(np.frombuffer(self.ok_starts, dtype=np.float64), kind="stable")
            ttft = np.frombuffer(self.ok_ttft, dtype=np.float64)[order]
            third = len(ttft) // 3
            early, late = float(np.median(ttft[:third])), float(np.median(ttft[-third:]))
            if early > 0 and late >= growth * early:
                grew = f"median TTFT grew from {early:.0f} to {late:.0f} ms over the run"
                if self.limited or self.limit_headers:
                    why = f"few 429s ({share:.1%}); {grew}"
                    return RateLimitVerdict("queues", self.limited, share, wait_p50, why)
                why = f"no 429s and no rate-limit headers; {grew}: out of capacity, not rate limiting"
                return RateLimitVerdict("saturates", self.limited, share, wait_p50, why)
        return RateLimitVerdict("none", self.limited, share, wait_p50, f"{share:.1%} 429s and no latency build-up")


def classify_rate_limit(records: Iterable[Record], reject_share: float = 0.02, growth: float = 2.0) -> RateLimitVerdict:
    """The verdict for one target's Records (see the module docstring)."""
    t = RateLimitTracker()
    for r in records:
        t.add(r)
    return t.verdict(reject_share, growth)
