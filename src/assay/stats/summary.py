"""The one per-target summary: what a target's Records say, for every command, the report, cost and decisions.

Built by streaming Records through a `Summarizer` (nothing but the metric
distributions and a few arrays grows with the run), so a 40-request probe and a
one-hour soak are summarised by the same code and read the same way:

- reliability: items (judged by their final attempt), attempts, failures by class,
  uptime, Retry-After;
- latency: TTFT, TPOT, ITL, E2E (= service time), response time (from the intended
  send) and generator lag, each a `Distribution` in the one latency shape;
- traffic: offered and achieved rates, throughput and goodput (requests that meet the
  SLO, `config.SLO.meets`: failures count as misses), token throughput;
- money: what every attempt cost, failed ones included;
- rate limiting: rejects | queues | saturates | none; and what client retries cost.

JSON figures are unrounded (rounding is for display, report/formats.py).
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from assay.config import SLO, ProjectConfig
from assay.errors import ERROR_CLASSES
from assay.records import Record
from assay.stats.distribution import Distribution
from assay.stats.ratelimit import RateLimitTracker, RateLimitVerdict
from assay.stats.reliability import UPTIME_THRESHOLD, Bucket
from assay.store import Store

__all__ = [
    "LATENCY_METRICS",
    "LATENCY_TIERS",
    "Summarizer",
    "TargetSummary",
    "latency_tier",
    "summarize",
    "summarize_by_target",
    "summarize_stored",
]

# Tier by TTFT p90 (ms): how the reply feels to a person waiting for it.
LATENCY_TIERS: tuple[tuple[str, float, str], ...] = (
    ("A", 300.0, "instant"),
    ("B", 800.0, "responsive"),
    ("C", 2000.0, "noticeable"),
    ("D", float("inf"), "slow"),
)
# Per-request figures in the latency shape; service time is E2E under its load-testing name.
LATENCY_METRICS = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "response_time_ms", "generator_lag_ms",
                   "output_tokens_per_s")  # fmt: skip


def latency_tier(ttft_p90_ms: float | None) -> str | None:
    if ttft_p90_ms is None:
        return None
    return next(name for name, bound, _ in LATENCY_TIERS if ttft_p90_ms < bound)


@dataclass
class TargetSummary:
    target: str
    requests: int  # items, judged by their final attempt
    succeeded: int
    failed: int
    attempts: int
    cancelled: int
    errors: dict[str, int]  # items that failed for good, by class
    attempt_errors: dict[str, int]  # every failed attempt, by class
    error_examples: dict[str, str]
    uptime_pct: float | None
    buckets: list[Bucket]
    bucket_s: float
    latency: dict[str, Distribution]  # LATENCY_METRICS
    output_tokens_total: int
    input_tokens_total: int
    reasoning_tokens_total: int
    cached_tokens_total: int
    token_source: str
    retry_after: Distribution
    duration_s: float  # first start to last end, summed over the run's sessions (gaps between tries left out)
    met_slo: int  # final items that met the SLO (goodput's numerator)
    slo: SLO
    rate_limit: RateLimitVerdict
    offered: int | None = None  # items the plan scheduled, when it was a schedule
    schedule_s: float | None = None
    sends: int = 0
    send_gaps: int = 0  # sends minus one per session that sent anything
    send_span_s: float = 0.0
    cost_usd: float | None = None  # every attempt, failed ones included; None when no price is known
    billed_attempts: int = 0
    retries: dict[str, Any] | None = None  # what client retries cost, when there were any
    met_slo_output_tokens: int = 0

    # -- latency by name ----------------------------------------------------------------------------------------
    @property
    def ttft(self) -> Distribution:
        return self.latency["ttft_ms"]

    @property
    def tpot(self) -> Distribution:
        return self.latency["tpot_ms"]

    @property
    def itl(self) -> Distribution:
        return self.latency["itl_ms"]

    @property
    def e2e(self) -> Distribution:
        return self.latency["e2e_ms"]

    @property
    def speed(self) -> Distribution:
        """Output tokens per second after the first token, per successful request."""
        return self.latency["output_tokens_per_s"]

    # -- derived figures ------------------------------------------------------------------------------------------
    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.requests if self.requests else None

    @property
    def tier(self) -> str | None:
        return latency_tier(self.ttft.p["p90"])

    @property
    def cost_per_success_usd(self) -> float | None:
        """What one successful request cost, billed failures and retries spread over the successes."""
        return self.cost_usd / self.succeeded if self.cost_usd is not None and self.succeeded else None

    @property
    def span_s(self) -> float:
        """The time the rates are over: the schedule when there was one (so a run that keeps up has goodput equal
        to its offered rate, however long its last replies take), else the run's own duration."""
        return self.schedule_s or self.duration_s or 1e-9

    @property
    def offered_rate_rps(self) -> float | None:
        """What the schedule asked for per second; None for a run that was not a schedule."""
        if self.offered is None or not self.schedule_s:
            return None
        return self.offered / self.schedule_s

    @property
    def achieved_rate_rps(self) -> float:
        """Requests actually sent per second: the gaps between sends over the time they span (per session)."""
        return self.send_gaps / self.send_span_s if self.send_span_s > 0 else 0.0

    @property
    def throughput_rps(self) -> float:
        return self.succeeded / self.span_s

    @property
    def goodput_rps(self) -> float:
        return self.met_slo / self.span_s

    @property
    def slo_attainment(self) -> float | None:
        """Share of items that met the SLO (failures are misses)."""
        return self.met_slo / self.requests if self.requests else None

    @property
    def output_throughput_tokens_per_s(self) -> float:
        return self.output_tokens_total / self.span_s

    @property
    def goodput_tokens_per_s(self) -> float:
        """Output tokens per second of the requests that met the SLO: capacity at the SLO."""
        return self.met_slo_output_tokens / self.span_s

    @property
    def error_rate(self) -> float | None:
        return self.failed / self.requests if self.requests else None

    @property
    def jitter(self) -> dict[str, float | None]:
        """ITL standard deviation and the p99/p50 ratio of ITL."""
        p50, p99 = self.itl.p["p50"], self.itl.p["p99"]
        return {
            "itl_stdev_ms": self.itl.stdev,
            "itl_p99_over_p50": (p99 / p50) if p50 and p99 is not None else None,
        }

    def mean_tokens(self) -> dict[str, float]:
        """Mean tokens of a successful request: input, visible output, reasoning; and the cached share of input."""
        n = self.succeeded
        return {
            "input": self.input_tokens_total / n if n else 0.0,
            "output": (self.output_tokens_total - self.reasoning_tokens_total) / n if n else 0.0,
            "reasoning": self.reasoning_tokens_total / n if n else 0.0,
            "cached_input_fraction": self.cached_tokens_total / self.input_tokens_total
            if self.input_tokens_total
            else 0.0,
        }

    def to_json(self) -> dict[str, Any]:
        tokens = self.mean_tokens()
        return {
            "requests": self.requests,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "attempts": self.attempts,
            "cancelled": self.cancelled,
            "success_rate": self.success_rate,
            "uptime_pct": self.uptime_pct,
            "uptime_bucket_s": self.bucket_s,
            "latency_tier": self.tier,
            "errors": self.errors,
            "attempt_errors": self.attempt_errors,
            "error_examples": self.error_examples,
            **{k: d.to_json() for k, d in self.latency.items()},
            "service_time_ms": self.e2e.to_json(),
            "jitter": self.jitter,
            "output_tokens": {"total": self.output_tokens_total, "mean": tokens["output"], "source": self.token_source},
            "input_tokens": {"total": self.input_tokens_total, "mean": tokens["input"]},
            "reasoning_tokens": {"total": self.reasoning_tokens_total, "mean": tokens["reasoning"]},
            "cached_input_fraction": tokens["cached_input_fraction"],
            "retry_after_s": {
                "count": self.retry_after.n,
                "p50": self.retry_after.p["p50"],
                "max": self.retry_after.quantile(1.0),
            },
            "duration_s": self.duration_s,
            "offered_rate_rps": self.offered_rate_rps,
            "achieved_rate_rps": self.achieved_rate_rps,
            "throughput_rps": self.throughput_rps,
            "goodput_rps": self.goodput_rps,
            "slo": {**self.slo.bounds, "attainment": self.slo_attainment},
            "output_throughput_tokens_per_s": self.output_throughput_tokens_per_s,
            "goodput_tokens_per_s": self.goodput_tokens_per_s,
            "rate_limit": self.rate_limit.to_json(),
            "retries": self.retries,
            "cost_usd": self.cost_usd,
            "cost_per_success_usd": self.cost_per_success_usd,
            "billed_attempts": self.billed_attempts,
        }


class Summarizer:
    """Folds one target's Records into a TargetSummary, one at a time, in any order."""

    def __init__(self, slo: SLO | None = None) -> None:
        self.slo = slo or SLO()
        self.latency = {k: Distribution() for k in LATENCY_METRICS}
        self.retry_after = Distribution()
        self.errors: Counter[str] = Counter()
        self.attempt_errors: Counter[str] = Counter()
        self.examples: dict[str, str] = {}
        self.finals = self.ok = self.met = self.met_tokens = 0
        self.attempts = self.cancelled = 0
        self.output_tokens = self.input_tokens = self.reasoning_tokens = self.cached_tokens = 0
        self.sources: set[str] = set()
        self.sends = 0
        # per session: [first send ns, last send ns, sends, first start wall, last end wall]
        self.sessions: dict[int, list[float]] = {}
        self.cost = 0.0
        self.priced = False
        self.billed = 0
        self.limits = RateLimitTracker()
        # uptime: each countable attempt's wall-clock start and outcome
        self.walls = array("d")
        self.wall_ok = array("b")
        # retries: items still being retried -> [first start ns, tokens, cost]
        self.retrying: dict[tuple[str, str, str], list[float]] = {}
        self.retried = self.rescued = self.extra_attempts = 0
        self.wasted_tokens = 0
        self.wasted_cost = 0.0
        self.rescued_ms = Distribution()

    def add(self, r: Record) -> None:
        if r.error_class == "cancelled":
            self.cancelled += 1
            if r.cost_usd is not None:  # an interrupted stream billed what it generated
                self.priced = True
                self.cost += r.cost_usd
                self.billed += r.cost_usd > 0
            return
        self.attempts += 1
        self.limits.add(r)
        if r.cost_usd is not None:
            self.priced = True
            self.cost += r.cost_usd
            self.billed += r.cost_usd > 0
        end = r.wall_start_s + (r.e2e_ms or 0.0) / 1e3
        span = self.sessions.get(r.session)
        if span is None:
            span = self.sessions[r.session] = [math.inf, -math.inf, 0, math.inf, -math.inf]
        span[3] = min(span[3], r.wall_start_s)
        span[4] = max(span[4], end)
        if r.sent_ns and not r.cached:
            self.sends += 1
            span[0] = min(span[0], r.sent_ns)
            span[1] = max(span[1], r.sent_ns)
            span[2] += 1
            if (lag := r.generator_lag_ms) is not None:
                self.latency["generator_lag_ms"].add(lag)
        if r.retry_after_s is not None:
            self.retry_after.add(r.retry_after_s)
        if not r.ok:
            cls = r.error_class or "internal"
            self.attempt_errors[cls] += 1
            self.examples.setdefault(cls, r.error_message or "")
        if r.error_class != "client_error":  # the caller's mistakes say nothing about availability
            self.walls.append(r.wall_start_s)
            self.wall_ok.append(r.ok)
        self._retries(r)
        if not r.final:
            return
        self.finals += 1
        if not r.ok:
            self.errors[r.error_class or "internal"] += 1
            return
        self.ok += 1
        self.sources.add(r.token_source)
        self.output_tokens += r.output_tokens
        self.input_tokens += r.input_tokens
        self.reasoning_tokens += r.reasoning_tokens
        self.cached_tokens += r.cached_tokens
        if self.slo.meets(r):
            self.met += 1
            self.met_tokens += r.output_tokens
        lat = self.latency
        per_request = (
            ("ttft_ms", r.ttft_ms),
            ("tpot_ms", r.tpot_ms),
            ("e2e_ms", r.e2e_ms),
            ("response_time_ms", r.response_time_ms),
            ("output_tokens_per_s", r.output_tokens_per_s),
        )
        for key, value in per_request:
            if value is not None:
                lat[key].add(value)
        itl = lat["itl_ms"]
        offs = r.content_offsets_us
        for i in range(1, len(offs)):
            itl.add((offs[i] - offs[i - 1]) / 1e3)

    def _retries(self, r: Record) -> None:
        key = (r.suite, r.item_id, r.judged_target)
        entry = self.retrying.get(key)
        if not r.final:  # a failed try that will be retried
            if entry is None:
                self.retrying[key] = entry = [float(r.intended_ns or r.sent_ns), 0.0, 0.0, float(r.session)]
                self.retried += 1
            self.extra_attempts += 1
            entry[1] += r.input_tokens + r.output_tokens
            entry[2] += r.cost_usd or 0.0
            return
        if entry is not None:
            del self.retrying[key]
            self.wasted_tokens += int(entry[1])
            self.wasted_cost += entry[2]
            if r.ok and r.done_ns and entry[0]:
                self.rescued += 1
                if entry[3] == r.session:  # a chain that spans a pause has no meaningful wall time
                    self.rescued_ms.add((r.done_ns - entry[0]) / 1e6)

    def _uptime(self, bucket_s: float | None) -> tuple[float | None, list[Bucket], float]:
        if not self.walls:
            return None, [], bucket_s or 1.0
        t0, t1 = min(self.walls), max(self.walls)
        active_s = sum(max(0.0, x[4] - x[3]) for x in self.sessions.values())  # a resumed run's pause left out
        width = bucket_s or max(1.0, active_s / 20)
        n_buckets = int((t1 - t0) // width) + 1
        attempts = [0] * n_buckets
        ok = [0] * n_buckets
        for wall, good in zip(self.walls, self.wall_ok, strict=True):
            i = min(n_buckets - 1, int((wall - t0) // width))
            attempts[i] += 1
            ok[i] += good
        buckets = [
            Bucket(i * width, a, s, s >= math.ceil(UPTIME_THRESHOLD * a))
            for i, (a, s) in enumerate(zip(attempts, ok, strict=True))
            if a
        ]
        return 100.0 * sum(b.up for b in buckets) / len(buckets), buckets, width

    def summary(
        self, target: str, bucket_s: float | None = None, offered: int | None = None, schedule_s: float | None = None
    ) -> TargetSummary:
        pct, buckets, width = self._uptime(bucket_s)
        retries = None
        if self.retried:
            retries = {
                "extra_attempts": self.extra_attempts,
                "items_retried": self.retried,
                "items_rescued": self.rescued,
                "rescued_response_time_ms": self.rescued_ms.to_json(),
                "failed_attempt_tokens": self.wasted_tokens + int(sum(e[1] for e in self.retrying.values())),
                "failed_attempt_cost_usd": self.wasted_cost,
            }
        sources = self.sources
        return TargetSummary(
            target=target,
            requests=self.finals,
            succeeded=self.ok,
            failed=self.finals - self.ok,
            attempts=self.attempts,
            cancelled=self.cancelled,
            errors={**dict.fromkeys(ERROR_CLASSES, 0), **self.errors},
            attempt_errors={**dict.fromkeys(ERROR_CLASSES, 0), **self.attempt_errors},
            error_examples=dict(self.examples),
            uptime_pct=pct,
            buckets=buckets,
            bucket_s=width,
            latency=self.latency,
            output_tokens_total=self.output_tokens,
            input_tokens_total=self.input_tokens,
            reasoning_tokens_total=self.reasoning_tokens,
            cached_tokens_total=self.cached_tokens,
            token_source=next(iter(sources)) if len(sources) == 1 else ("mixed" if sources else "none"),
            retry_after=self.retry_after,
            duration_s=sum(max(0.0, s[4] - s[3]) for s in self.sessions.values()),
            met_slo=self.met,
            met_slo_output_tokens=self.met_tokens,
            slo=self.slo,
            rate_limit=self.limits.verdict(),
            offered=offered,
            schedule_s=schedule_s,
            sends=self.sends,
            send_gaps=sum(int(s[2]) - 1 for s in self.sessions.values() if s[2]),
            send_span_s=sum((s[1] - s[0]) / 1e9 for s in self.sessions.values() if s[2] > 1),
            cost_usd=self.cost if self.priced else None,
            billed_attempts=self.billed,
            retries=retries,
        )


def summarize(
    target: str,
    records: Iterable[Record],
    bucket_s: float | None = None,
    slo: SLO | None = None,
    offered: int | None = None,
    schedule_s: float | None = None,
) -> TargetSummary:
    """Summarize one target's attempts (streamed). Items are judged by their final attempt."""
    s = Summarizer(slo)
    for r in records:
        s.add(r)
    return s.summary(target, bucket_s, offered, schedule_s)


def summarize_by_target(
    records: Iterable[Record],
    order: Iterable[str] = (),
    bucket_s: float | None = None,
    slo: SLO | None = None,
    offered: int | None = None,
    schedule_s: float | None = None,
) -> dict[str, TargetSummary]:
    """One summary per target of a run's Records (streamed), in `order` first; a judge's calls are not the
    judge's own traffic and are left out (reports count them as the judging cost)."""
    folds: dict[str, Summarizer] = {n: Summarizer(slo) for n in order}
    for r in records:
        if r.judged_target:
            continue
        fold = folds.get(r.target)
        if fold is None:
            fold = folds[r.target] = Summarizer(slo)
        fold.add(r)
    return {n: f.summary(n, bucket_s, offered, schedule_s) for n, f in folds.items() if f.attempts or f.cancelled}


def summarize_stored(store: Store, run_id: str) -> dict[str, TargetSummary]:
    """The per-target summaries of any stored run's traffic, by its stored config and options alone.

    (A load run's offered rate comes from its schedule: `suites.load.load_summaries` adds it.)
    """
    info = store.run(run_id)
    config = ProjectConfig.model_validate(info.config)
    return summarize_by_target(store.iter_records(info.run_id), info.targets, info.params.get("bucket_s"), config.slo)
