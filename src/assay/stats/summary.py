"""The reliability and latency summary of one target's Records, as every report reads it."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assay.model import Record
from assay.stats.percentiles import bootstrap_ci, percentiles
from assay.stats.reliability import Bucket, error_counts, error_examples, uptime

__all__ = ["LATENCY_TIERS", "Latency", "TargetSummary", "latency_tier", "summarize"]

# Tier by TTFT p90 (ms): how the reply feels to a person waiting for it.
LATENCY_TIERS: tuple[tuple[str, float, str], ...] = (
    ("A", 300.0, "instant"),
    ("B", 800.0, "responsive"),
    ("C", 2000.0, "noticeable"),
    ("D", float("inf"), "slow"),
)


def latency_tier(ttft_p90_ms: float | None) -> str | None:
    if ttft_p90_ms is None:
        return None
    return next(name for name, bound, _ in LATENCY_TIERS if ttft_p90_ms < bound)


@dataclass
class Latency:
    """Percentiles of one latency metric, with bootstrap CIs where n allows."""

    values: list[float]
    p: dict[str, float | None] = field(init=False)
    ci95: dict[str, tuple[float, float] | None] = field(init=False)

    def __post_init__(self) -> None:
        self.p = percentiles(self.values)
        self.ci95 = bootstrap_ci(self.values)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: _r(v) for k, v in self.p.items()}
        out["mean"] = _r(statistics.fmean(self.values)) if self.values else None
        out["n"] = len(self.values)
        out["ci95"] = {k: [_r(v[0]), _r(v[1])] if v else None for k, v in self.ci95.items()}
        return out


@dataclass
class TargetSummary:
    target: str
    requests: int
    succeeded: int
    failed: int
    attempts: int
    cancelled: int
    errors: dict[str, int]
    attempt_errors: dict[str, int]
    error_examples: dict[str, str]
    uptime_pct: float | None
    buckets: list[Bucket]
    bucket_s: float
    e2e: Latency
    ttft: Latency
    tpot: Latency
    itl: Latency
    speed: Latency  # output tokens/s after the first token
    output_tokens_total: int
    input_tokens_total: int
    token_source: str
    retry_after: list[float]
    duration_s: float
    cost_usd: float | None = None  # every attempt, failed ones included; None when no price is known

    @property
    def cost_per_success_usd(self) -> float | None:
        """What one successful request cost, billed failures and retries spread over the successes."""
        return self.cost_usd / self.succeeded if self.cost_usd is not None and self.succeeded else None

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.requests if self.requests else None

    @property
    def tier(self) -> str | None:
        return latency_tier(self.ttft.p["p90"])

    @property
    def jitter(self) -> dict[str, float | None]:
        """ITL standard deviation and the p99/p50 ratio of ITL."""
        v = self.itl.values
        p50, p99 = self.itl.p["p50"], self.itl.p["p99"]
        return {
            "itl_stdev_ms": float(np.std(v)) if len(v) > 1 else None,
            "itl_p99_over_p50": (p99 / p50) if p50 and p99 is not None else None,
        }

    def to_json(self) -> dict[str, Any]:
        ra = percentiles(self.retry_after, {"p50": 50.0, "max": 100.0})
        return {
            "requests": self.requests,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "attempts": self.attempts,
            "cancelled": self.cancelled,
            "success_rate": _r(self.success_rate, 4),
            "uptime_pct": _r(self.uptime_pct, 2),
            "uptime_bucket_s": _r(self.bucket_s, 3),
            "latency_tier": self.tier,
            "errors": self.errors,
            "attempt_errors": self.attempt_errors,
            "error_examples": self.error_examples,
            "e2e_ms": self.e2e.to_json(),
            "ttft_ms": self.ttft.to_json(),
            "tpot_ms": self.tpot.to_json(),
            "itl_ms": self.itl.to_json(),
            "jitter": {k: _r(v) for k, v in self.jitter.items()},
            "output_tokens_per_s": {k: _r(v) for k, v in self.speed.p.items()},
            "output_tokens": {"total": self.output_tokens_total, "source": self.token_source},
            "input_tokens": {"total": self.input_tokens_total},
            "retry_after_s": {"count": len(self.retry_after), "p50": _r(ra["p50"]), "max": _r(ra["max"])},
            "duration_s": _r(self.duration_s, 3),
            "cost_usd": _r(self.cost_usd, 8),
            "cost_per_success_usd": _r(self.cost_per_success_usd, 8),
        }


def summarize(target: str, records: Sequence[Record], bucket_s: float | None = None) -> TargetSummary:
    """Summarize one target's attempts. Items are judged by their final attempt."""
    attempts = [r for r in records if r.error_class != "cancelled"]
    finals = [r for r in attempts if r.final]
    ok = [r for r in attempts if r.ok]
    pct, buckets, width = uptime(attempts, bucket_s)
    sources = {r.token_source for r in ok}
    starts = [r.wall_start_s for r in attempts]
    ends = [r.wall_start_s + (r.e2e_ms or 0) / 1e3 for r in attempts]
    return TargetSummary(
        target=target,
        requests=len(finals),
        succeeded=sum(r.ok for r in finals),
        failed=sum(not r.ok for r in finals),
        attempts=len(attempts),
        cancelled=len(records) - len(attempts),
        errors=error_counts(finals),
        attempt_errors=error_counts(attempts),
        error_examples=error_examples(attempts),
        uptime_pct=pct,
        buckets=buckets,
        bucket_s=width,
        e2e=Latency([v for r in ok if (v := r.e2e_ms) is not None]),
        ttft=Latency([v for r in ok if (v := r.ttft_ms) is not None]),
        tpot=Latency([v for r in ok if (v := r.tpot_ms) is not None]),
        itl=Latency([g for r in ok for g in r.itl_ms()]),
        speed=Latency([v for r in ok if (v := r.output_tokens_per_s) is not None]),
        output_tokens_total=sum(r.output_tokens for r in ok),
        input_tokens_total=sum(r.input_tokens for r in ok),
        token_source=sources.pop() if len(sources) == 1 else ("mixed" if sources else "none"),
        retry_after=[r.retry_after_s for r in attempts if r.retry_after_s is not None],
        duration_s=(max(ends) - min(starts)) if starts else 0.0,
        cost_usd=sum(r.cost_usd or 0.0 for r in attempts) if any(r.cost_usd is not None for r in attempts) else None,
    )


def _r(v: float | None, digits: int = 2) -> float | None:
    return None if v is None else round(float(v), digits)
