"""What a run measured that cost analysis can use: tokens per request, billed cost, latency, throughput."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from assay.config import SLO, Workload
from assay.model import Record

__all__ = ["Measured", "measure", "with_measured_tokens"]


@dataclass(frozen=True)
class Measured:
    target: str
    successes: int
    attempts: int
    billed_attempts: int  # attempts that cost something, failures included
    input_tokens: float  # means over successful requests
    output_tokens: float  # visible output (reasoning excluded)
    reasoning_tokens: float
    cached_fraction: float
    cost_usd: float  # every attempt of the run, failed ones included
    p95_e2e_ms: float | None
    output_tokens_per_s: float | None  # over the run's span, counting only requests that met the SLO

    @property
    def cost_per_success_usd(self) -> float | None:
        """What one successful request really cost: failed attempts that were billed are spread over the successes."""
        return self.cost_usd / self.successes if self.successes else None

    def to_json(self) -> dict[str, object]:
        return {
            "successes": self.successes,
            "attempts": self.attempts,
            "billed_attempts": self.billed_attempts,
            "input_tokens_mean": round(self.input_tokens, 2),
            "output_tokens_mean": round(self.output_tokens, 2),
            "reasoning_tokens_mean": round(self.reasoning_tokens, 2),
            "cached_input_fraction": round(self.cached_fraction, 4),
            "cost_usd": round(self.cost_usd, 8),
            "cost_per_success_usd": None if self.cost_per_success_usd is None else round(self.cost_per_success_usd, 8),
            "p95_e2e_ms": None if self.p95_e2e_ms is None else round(self.p95_e2e_ms, 1),
            "output_tokens_per_s": None if self.output_tokens_per_s is None else round(self.output_tokens_per_s, 1),
        }


def measure(records: Iterable[Record], slo: SLO | None = None) -> dict[str, Measured]:
    """Per target; with an SLO, throughput counts only the output of requests that met it (goodput)."""
    by_target: dict[str, list[Record]] = {}
    for r in records:
        if r.error_class != "cancelled":
            by_target.setdefault(r.target, []).append(r)
    return {name: _one(name, recs, slo or SLO()) for name, recs in by_target.items()}


def _meets(r: Record, slo: SLO) -> bool:
    checks = ((slo.ttft_ms, r.ttft_ms), (slo.e2e_ms, r.e2e_ms), (slo.tpot_ms, r.tpot_ms))
    return all(bound is None or (v is not None and v <= bound) for bound, v in checks)


def _one(name: str, recs: list[Record], slo: SLO) -> Measured:
    ok = [r for r in recs if r.ok]
    n = len(ok)
    inp = sum(r.input_tokens for r in ok)
    e2e = [r.e2e_ms for r in ok if r.e2e_ms is not None]
    tps = None
    if ok:
        # Wall clock, not monotonic stamps: a resumed run spans processes.
        start = min(r.wall_start_s for r in ok)
        end = max(r.wall_start_s + (r.e2e_ms or 0) / 1e3 for r in ok)
        if end > start:
            tps = sum(r.output_tokens for r in ok if _meets(r, slo)) / (end - start)
    return Measured(
        target=name,
        successes=n,
        attempts=len(recs),
        billed_attempts=sum(1 for r in recs if (r.cost_usd or 0) > 0),
        input_tokens=inp / n if n else 0.0,
        output_tokens=sum(r.output_tokens - r.reasoning_tokens for r in ok) / n if n else 0.0,
        reasoning_tokens=sum(r.reasoning_tokens for r in ok) / n if n else 0.0,
        cached_fraction=sum(r.cached_tokens for r in ok) / inp if inp else 0.0,
        cost_usd=sum(r.cost_usd or 0.0 for r in recs),
        p95_e2e_ms=float(np.percentile(e2e, 95)) if e2e else None,
        output_tokens_per_s=tps,
    )


def with_measured_tokens(w: Workload, m: Measured) -> Workload:
    """The workload with each turn's new tokens as measured (the run's requests stand for single turns)."""
    if not m.successes:
        return w
    return w.model_copy(
        update={
            "input_tokens_per_turn": m.input_tokens,
            "output_tokens_per_turn": m.output_tokens,
            "reasoning_tokens_per_turn": m.reasoning_tokens,
            "cached_input_fraction": min(1.0, m.cached_fraction),
        }
    )
