"""Service-level objectives, with the one meaning of "meets" that every command uses.

A request *meets* the SLO when it succeeded and each latency it is bounded on is
at most its bound (a bound on a figure the request does not have, such as TPOT
of a one-token reply, is not met). Failures count as misses. Goodput, the cost
of throughput at the SLO and the share of requests within it all use `meets`.
The scorecard's pass/fail checks a percentile of the successful requests
(`percentile`, p90 by default) against each bound, and says which.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from assay.model import StrictModel
from assay.records import Record

__all__ = ["LATENCY_KEYS", "SLO"]

LATENCY_KEYS = ("ttft_ms", "e2e_ms", "tpot_ms")


class SLO(StrictModel):
    """Objectives per request (latency bounds in ms) and for the run (success rate)."""

    ttft_ms: float | None = Field(default=None, gt=0)
    e2e_ms: float | None = Field(default=None, gt=0)
    tpot_ms: float | None = Field(default=None, gt=0)
    success_rate: float | None = Field(default=None, ge=0, le=1)
    percentile: Literal["p50", "p90", "p95", "p99"] = Field(
        default="p90", description="Which percentile of successful requests the scorecard checks against each bound."
    )

    @property
    def bounds(self) -> dict[str, float]:
        """The latency bounds that are set, by metric name."""
        return {k: v for k in LATENCY_KEYS if (v := getattr(self, k)) is not None}

    def meets(self, r: Record) -> bool:
        """Per request: it succeeded and every bounded latency is within its bound."""
        if not r.ok:
            return False
        for key, bound in self.bounds.items():
            value = getattr(r, key)
            if value is None or value > bound:
                return False
        return True

    def describe(self) -> str:
        """'TTFT ≤ 800 ms, E2E ≤ 4000 ms' (or 'none')."""
        names = {"ttft_ms": "TTFT", "e2e_ms": "E2E", "tpot_ms": "TPOT"}
        return ", ".join(f"{names[k]} ≤ {v:g} ms" for k, v in self.bounds.items()) or "none"
