"""What a load run says about a target: rates, goodput, service vs response time, and its rate limiting.

- offered rate: what the schedule asked for; achieved: what was actually sent, per second;
- throughput: successful requests per second; goodput: those that also met every SLO
  (failures count as misses);
- service time runs from the actual send, response time from the intended one: their
  gap, with the generator lag (send minus intended), is the queueing a closed-loop tool hides;
- rate limiting past the limit is *rejects* (many fast 429s), *queues* (few 429s, latency
  grows as the run goes on) or *none* (neither).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from assay.model import Record
from assay.stats.percentiles import percentiles
from assay.stats.reliability import error_counts

__all__ = ["LoadSummary", "RateLimitVerdict", "classify_rate_limit", "summarize_load", "timeline"]

Behavior = Literal["rejects", "queues", "none"]
P3 = {"p50": 50.0, "p90": 90.0, "p99": 99.0}


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
            "share": round(self.share, 4),
            "retry_after_s": {"p50": self.retry_after_p50_s},
            "reason": self.reason,
        }


def classify_rate_limit(records: Sequence[Record], reject_share: float = 0.02, growth: float = 2.0) -> RateLimitVerdict:
    """Rejects: at least `reject_share` of attempts were 429s. Queues: few 429s, and the last third's
    median TTFT is at least `growth` times the first third's. Otherwise none."""
    attempts = [r for r in records if r.error_class != "cancelled"]
    limited = [r for r in attempts if r.error_class == "rate_limited"]
    share = len(limited) / len(attempts) if attempts else 0.0
    waits = [r.retry_after_s for r in limited if r.retry_after_s is not None]
    wait_p50 = float(np.median(waits)) if waits else None
    if share >= reject_share:
        fast = [x for r in limited if (x := r.e2e_ms) is not None]
        how = f"{share:.1%} of attempts got 429" + (f", answered in {np.median(fast):.0f} ms" if fast else "")
        return RateLimitVerdict("rejects", len(limited), share, wait_p50, how)
    ok = sorted((r for r in attempts if r.ok and r.ttft_ms is not None), key=lambda r: r.intended_ns or r.sent_ns)
    if len(ok) >= 9:
        third = len(ok) // 3
        early = float(np.median([r.ttft_ms for r in ok[:third]]))
        late = float(np.median([r.ttft_ms for r in ok[-third:]]))
        if early > 0 and late >= growth * early:
            why = f"few 429s ({share:.1%}); median TTFT grew from {early:.0f} to {late:.0f} ms over the run"
            return RateLimitVerdict("queues", len(limited), share, wait_p50, why)
    return RateLimitVerdict("none", len(limited), share, wait_p50, f"{share:.1%} 429s and no latency build-up")


@dataclass(frozen=True)
class LoadSummary:
    target: str
    requests: int
    offered_rate_rps: float
    achieved_rate_rps: float
    throughput_rps: float
    goodput_rps: float
    output_tokens_per_s: float
    errors: dict[str, int]
    latency: dict[str, dict[str, float | None]]  # ttft, tpot, e2e, service_time, response_time, generator_lag
    rate_limit: RateLimitVerdict
    duration_s: float
    retries: dict[str, Any] | None = None  # what client retries cost, when there were any

    def to_json(self) -> dict[str, Any]:
        lag = self.latency["generator_lag_ms"]
        extra = {"retries": self.retries} if self.retries is not None else {}
        return {
            **extra,
            "requests": self.requests,
            "offered_rate_rps": round(self.offered_rate_rps, 3),
            "achieved_rate_rps": round(self.achieved_rate_rps, 3),
            "throughput_rps": round(self.throughput_rps, 3),
            "goodput_rps": round(self.goodput_rps, 3),
            "output_tokens_per_s": round(self.output_tokens_per_s, 1),
            "errors": self.errors,
            **{k: v for k, v in self.latency.items() if k != "generator_lag_ms"},
            "generator_lag_ms": {"p50": lag["p50"], "p99": lag["p99"]},
            "rate_limit": self.rate_limit.to_json(),
            "duration_s": round(self.duration_s, 3),
        }


def _meets(r: Record, slo: dict[str, float]) -> bool:
    values = {"ttft_ms": r.ttft_ms, "e2e_ms": r.e2e_ms, "tpot_ms": r.tpot_ms}
    return r.ok and all(values[k] is not None and values[k] <= v for k, v in slo.items() if k in values)  # type: ignore[operator]


def _p(values: list[float]) -> dict[str, float | None]:
    out = percentiles(values, P3)
    return {k: None if v is None else round(v, 2) for k, v in out.items()}


def summarize_load(
    target: str, records: Sequence[Record], planned: int, schedule_s: float, slo: dict[str, float] | None = None
) -> LoadSummary:
    """`planned` requests over `schedule_s` seconds were offered; `records` is what happened."""
    slo = slo or {}
    attempts = [r for r in records if r.error_class != "cancelled"]
    finals = [r for r in attempts if r.final]
    ok = [r for r in finals if r.ok]
    sends = [r.sent_ns for r in attempts if r.sent_ns]
    starts = [r.intended_ns or r.sent_ns for r in attempts if r.intended_ns or r.sent_ns]
    ends = [r.done_ns for r in attempts if r.done_ns]
    span_s = max(schedule_s, ((max(ends) - min(starts)) / 1e9) if ends and starts else 0.0) or 1e-9
    send_span = ((max(sends) - min(sends)) / 1e9) if len(sends) > 1 else 0.0
    lag = [(r.sent_ns - r.intended_ns) / 1e6 for r in attempts if r.sent_ns and r.intended_ns]
    return LoadSummary(
        target=target,
        requests=len(finals),
        offered_rate_rps=planned / schedule_s if schedule_s > 0 else 0.0,
        # n sends over the span between the first and last: n - 1 gaps
        achieved_rate_rps=(len(sends) - 1) / send_span if send_span > 0 else 0.0,
        throughput_rps=len(ok) / span_s,
        goodput_rps=sum(1 for r in ok if _meets(r, slo)) / span_s,
        output_tokens_per_s=sum(r.output_tokens for r in ok) / span_s,
        errors=error_counts(finals),
        latency={
            "ttft_ms": _p([x for r in ok if (x := r.ttft_ms) is not None]),
            "tpot_ms": _p([x for r in ok if (x := r.tpot_ms) is not None]),
            "e2e_ms": _p([x for r in ok if (x := r.e2e_ms) is not None]),
            "service_time_ms": _p([x for r in ok if (x := r.e2e_ms) is not None]),
            "response_time_ms": _p([x for r in ok if (x := r.response_time_ms) is not None]),
            "generator_lag_ms": _p(lag),
        },
        rate_limit=classify_rate_limit(attempts),
        duration_s=span_s,
        retries=_retry_cost(attempts),
    )


def _retry_cost(attempts: Sequence[Record]) -> dict[str, Any] | None:
    """Extra attempts, items they rescued, the time they added and the tokens the failed tries consumed."""
    by_item: dict[str, list[Record]] = {}
    for r in attempts:
        by_item.setdefault(r.item_id, []).append(r)
    retried = {k: sorted(v, key=lambda r: r.attempt) for k, v in by_item.items() if len(v) > 1}
    if not retried:
        return None
    rescued = [v for v in retried.values() if v[-1].ok]
    # From the first try's intended send to the rescuing try's last byte (one process, one clock).
    added = [(v[-1].done_ns - (v[0].intended_ns or v[0].sent_ns)) / 1e6 for v in rescued if v[-1].done_ns]
    wasted = [r for v in retried.values() for r in v[:-1]]
    return {
        "extra_attempts": sum(len(v) - 1 for v in retried.values()),
        "items_retried": len(retried),
        "items_rescued": len(rescued),
        "rescued_response_time_ms": _p(added),
        "failed_attempt_tokens": sum(r.input_tokens + r.output_tokens for r in wasted),
        "failed_attempt_cost_usd": round(sum(r.cost_usd or 0.0 for r in wasted), 8),
    }


def timeline(records: Sequence[Record], bucket_s: float = 1.0) -> list[dict[str, Any]]:
    """Per `bucket_s` of the run: offered and sent requests, successes, errors by class, output tokens,
    in-flight requests at the bucket's middle, and TTFT p50/p99 of the requests sent in it."""
    attempts = [r for r in records if r.error_class != "cancelled" and (r.intended_ns or r.sent_ns)]
    if not attempts:
        return []
    t0 = min(r.intended_ns or r.sent_ns for r in attempts)
    width = int(bucket_s * 1e9)
    end = max(r.done_ns or r.sent_ns for r in attempts)
    n = (end - t0) // width + 1
    rows: list[dict[str, Any]] = [
        {"t_s": round(i * bucket_s, 3), "offered": 0, "sent": 0, "ok": 0, "errors": {}, "output_tokens": 0}
        for i in range(n)
    ]
    ttfts: list[list[float]] = [[] for _ in range(n)]
    starts = np.array([r.sent_ns for r in attempts if r.sent_ns], dtype=np.int64)
    stops = np.array([r.done_ns or r.sent_ns for r in attempts if r.sent_ns], dtype=np.int64)
    for r in attempts:
        rows[((r.intended_ns or r.sent_ns) - t0) // width]["offered"] += 1
        if not r.sent_ns:
            continue
        row = rows[(r.sent_ns - t0) // width]
        row["sent"] += 1
        if r.ok:
            row["ok"] += 1
            row["output_tokens"] += r.output_tokens
            if (x := r.ttft_ms) is not None:
                ttfts[(r.sent_ns - t0) // width].append(x)
        elif r.error_class:
            row["errors"][r.error_class] = row["errors"].get(r.error_class, 0) + 1
    for i, row in enumerate(rows):
        mid = t0 + i * width + width // 2
        row["in_flight"] = int(np.count_nonzero((starts <= mid) & (stops > mid)))
        row["ttft_ms"] = _p(ttfts[i]) if ttfts[i] else {"p50": None, "p90": None, "p99": None}
    return rows
