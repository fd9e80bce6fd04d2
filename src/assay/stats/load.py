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

from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from assay.errors import ERROR_CLASSES
from assay.model import Record
from assay.stats.sketch import Sketch

__all__ = ["LoadAccumulator", "LoadSummary", "RateLimitVerdict", "classify_rate_limit", "summarize_load", "timeline"]

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


def classify_rate_limit(records: Iterable[Record], reject_share: float = 0.02, growth: float = 2.0) -> RateLimitVerdict:
    """Rejects: at least `reject_share` of attempts were 429s. Queues: few 429s, and the last third's
    median TTFT is at least `growth` times the first third's. Otherwise none."""
    acc = LoadAccumulator()
    for r in records:
        acc.add(r)
    return acc.verdict(reject_share, growth)


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


def _q(s: Sketch) -> dict[str, float | None]:
    return {k: None if (v := s.quantile(q / 100)) is None else round(v, 2) for k, q in P3.items()}


class LoadAccumulator:
    """Everything a load summary needs, folded in one Record at a time.

    Latencies go into quantile sketches (1% relative error), so memory does not grow
    with the run: a one-hour soak is summarised in the space of a one-minute one. Only
    TTFT and start of successes are kept as two 8-byte numbers each (the queueing test
    compares the first and last thirds), and only items that were retried are tracked.
    """

    def __init__(self, slo: dict[str, float] | None = None) -> None:
        self.slo = slo or {}
        self.sketch = {k: Sketch() for k in ("ttft_ms", "tpot_ms", "e2e_ms", "response_time_ms", "generator_lag_ms")}
        self.errors: Counter[str] = Counter()
        self.finals = self.ok = self.good = self.output_tokens = self.attempts = 0
        self.sends = 0
        self.first_send = self.last_send = self.first_start = self.last_end = 0
        self.limited = 0
        self.limited_e2e = Sketch()
        self.waits = Sketch()
        self.ok_starts = array("d")
        self.ok_ttft = array("d")
        self.retrying: dict[str, list[float]] = {}  # item -> [first intended ns, tokens, cost] while it is retried
        self.retried = self.rescued = self.extra_attempts = 0
        self.wasted_tokens = 0
        self.wasted_cost = 0.0
        self.rescued_ms = Sketch()

    def add(self, r: Record) -> None:
        if r.error_class == "cancelled":
            return
        self.attempts += 1
        start = r.intended_ns or r.sent_ns
        if start:
            self.first_start = min(self.first_start, start) if self.first_start else start
        if r.done_ns:
            self.last_end = max(self.last_end, r.done_ns)
        if r.sent_ns:
            self.sends += 1
            self.first_send = min(self.first_send, r.sent_ns) if self.first_send else r.sent_ns
            self.last_send = max(self.last_send, r.sent_ns)
            if r.intended_ns:
                self.sketch["generator_lag_ms"].add((r.sent_ns - r.intended_ns) / 1e6)
        if r.error_class == "rate_limited":
            self.limited += 1
            if (x := r.e2e_ms) is not None:
                self.limited_e2e.add(x)
            if r.retry_after_s is not None:
                self.waits.add(r.retry_after_s)
        self._retries(r, start)
        if not r.final:
            return
        self.finals += 1
        if not r.ok:
            self.errors[r.error_class or "internal"] += 1
            return
        self.ok += 1
        self.good += _meets(r, self.slo)
        self.output_tokens += r.output_tokens
        for key, value in (("ttft_ms", r.ttft_ms), ("tpot_ms", r.tpot_ms), ("e2e_ms", r.e2e_ms)):
            if value is not None:
                self.sketch[key].add(value)
        if (x := r.response_time_ms) is not None:
            self.sketch["response_time_ms"].add(x)
        if r.ttft_ms is not None:
            self.ok_starts.append(float(start))
            self.ok_ttft.append(r.ttft_ms)

    def _retries(self, r: Record, start: int) -> None:
        entry = self.retrying.get(r.item_id)
        if not r.final:  # a failed try that will be retried
            if entry is None:
                self.retrying[r.item_id] = entry = [float(start), 0.0, 0.0]
                self.retried += 1
            self.extra_attempts += 1
            entry[1] += r.input_tokens + r.output_tokens
            entry[2] += r.cost_usd or 0.0
            return
        if entry is not None:
            del self.retrying[r.item_id]
            self.wasted_tokens += int(entry[1])
            self.wasted_cost += entry[2]
            if r.ok and r.done_ns:
                self.rescued += 1
                self.rescued_ms.add((r.done_ns - entry[0]) / 1e6)

    def verdict(self, reject_share: float = 0.02, growth: float = 2.0) -> RateLimitVerdict:
        share = self.limited / self.attempts if self.attempts else 0.0
        wait = self.waits.quantile(0.5)
        wait_p50 = None if wait is None else round(wait, 3)
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
                why = f"few 429s ({share:.1%}); median TTFT grew from {early:.0f} to {late:.0f} ms over the run"
                return RateLimitVerdict("queues", self.limited, share, wait_p50, why)
        return RateLimitVerdict("none", self.limited, share, wait_p50, f"{share:.1%} 429s and no latency build-up")

    def summary(self, target: str, planned: int, schedule_s: float) -> LoadSummary:
        run_s = (self.last_end - self.first_start) / 1e9 if self.last_end and self.first_start else 0.0
        span_s = max(schedule_s, run_s) or 1e-9
        send_span = (self.last_send - self.first_send) / 1e9 if self.sends > 1 else 0.0
        retries = None
        if self.retried:
            retries = {
                "extra_attempts": self.extra_attempts,
                "items_retried": self.retried,
                "items_rescued": self.rescued,
                "rescued_response_time_ms": _q(self.rescued_ms),
                "failed_attempt_tokens": self.wasted_tokens + int(sum(e[1] for e in self.retrying.values())),
                "failed_attempt_cost_usd": round(self.wasted_cost, 8),
            }
        return LoadSummary(
            target=target,
            requests=self.finals,
            offered_rate_rps=planned / schedule_s if schedule_s > 0 else 0.0,
            # n sends over the span between the first and last: n - 1 gaps
            achieved_rate_rps=(self.sends - 1) / send_span if send_span > 0 else 0.0,
            throughput_rps=self.ok / span_s,
            goodput_rps=self.good / span_s,
            output_tokens_per_s=self.output_tokens / span_s,
            errors={**dict.fromkeys(ERROR_CLASSES, 0), **self.errors},  # every class, as the probe reports
            latency={
                "ttft_ms": _q(self.sketch["ttft_ms"]),
                "tpot_ms": _q(self.sketch["tpot_ms"]),
                "e2e_ms": _q(self.sketch["e2e_ms"]),
                "service_time_ms": _q(self.sketch["e2e_ms"]),
                "response_time_ms": _q(self.sketch["response_time_ms"]),
                "generator_lag_ms": _q(self.sketch["generator_lag_ms"]),
            },
            rate_limit=self.verdict(),
            duration_s=span_s,
            retries=retries,
        )


def summarize_load(
    target: str, records: Iterable[Record], planned: int, schedule_s: float, slo: dict[str, float] | None = None
) -> LoadSummary:
    """`planned` requests over `schedule_s` seconds were offered; `records` (streamed) is what happened."""
    acc = LoadAccumulator(slo)
    for r in records:
        acc.add(r)
    return acc.summary(target, planned, schedule_s)


def timeline(records: Iterable[Record], bucket_s: float = 1.0, t0_ns: int | None = None) -> list[dict[str, Any]]:
    """Per `bucket_s` of the run: offered and sent requests, successes, errors by class, output tokens,
    requests in flight at the bucket's start, and TTFT p50/p99 of the requests sent in it.

    With `t0_ns` (the run's first intended send) the Records are streamed and memory stays
    per bucket; without it they are read into memory once to find the start.
    """
    if t0_ns is None:
        records = [r for r in records if r.error_class != "cancelled" and (r.intended_ns or r.sent_ns)]
        if not records:
            return []
        t0_ns = min(r.intended_ns or r.sent_ns for r in records)
    width = int(bucket_s * 1e9)
    rows: dict[int, dict[str, Any]] = {}
    ttft: dict[int, Sketch] = {}
    delta: Counter[int] = Counter()  # +1 where a request starts, -1 where it ends

    def row(i: int) -> dict[str, Any]:
        if i not in rows:
            rows[i] = {
                "t_s": round(i * bucket_s, 3),
                "offered": 0,
                "sent": 0,
                "ok": 0,
                "errors": {},
                "output_tokens": 0,
            }
        return rows[i]

    for r in records:
        start = r.intended_ns or r.sent_ns
        if r.error_class == "cancelled" or not start:
            continue
        row(max(0, (start - t0_ns) // width))["offered"] += 1
        if not r.sent_ns:
            continue
        i = max(0, (r.sent_ns - t0_ns) // width)
        here = row(i)
        here["sent"] += 1
        delta[i] += 1
        delta[max(i, ((r.done_ns or r.sent_ns) - t0_ns) // width + 1)] -= 1
        if r.ok:
            here["ok"] += 1
            here["output_tokens"] += r.output_tokens
            if (x := r.ttft_ms) is not None:
                ttft.setdefault(i, Sketch()).add(x)
        elif r.error_class:
            here["errors"][r.error_class] = here["errors"].get(r.error_class, 0) + 1
    if not rows:
        return []
    out = []
    active = 0
    for i in range(max(rows) + 1):
        r_ = row(i)
        r_["in_flight"] = active  # requests still running when this bucket begins
        active += delta.get(i, 0)
        r_["ttft_ms"] = _q(ttft[i]) if i in ttft else {"p50": None, "p90": None, "p99": None}
        out.append(r_)
    return out
