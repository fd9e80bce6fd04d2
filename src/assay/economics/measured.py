"""What a run measured that cost analysis can use, read off the one per-target summary (stats.summary)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from assay.config import SLO, Workload
from assay.records import Record
from assay.stats import Distribution, TargetSummary, summarize_by_target

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
    cost_usd: float | None  # every attempt of the run, failed ones included; None: no price known
    e2e_ms: Distribution
    output_tokens_per_s: float | None  # over the run's span, counting only requests that met the SLO

    @classmethod
    def from_summary(cls, s: TargetSummary) -> Measured:
        tokens = s.mean_tokens()
        return cls(
            target=s.target,
            successes=s.succeeded,
            attempts=s.attempts,
            billed_attempts=s.billed_attempts,
            input_tokens=tokens["input"],
            output_tokens=tokens["output"],
            reasoning_tokens=tokens["reasoning"],
            cached_fraction=tokens["cached_input_fraction"],
            cost_usd=s.cost_usd,
            e2e_ms=s.e2e,
            output_tokens_per_s=s.goodput_tokens_per_s if s.succeeded and s.duration_s > 0 else None,
        )

    @property
    def p95_e2e_ms(self) -> float | None:
        return self.e2e_ms.p["p95"]

    @property
    def cost_per_success_usd(self) -> float | None:
        """What one successful request really cost: failed attempts that were billed are spread over the successes."""
        return self.cost_usd / self.successes if self.successes and self.cost_usd is not None else None

    def to_json(self) -> dict[str, Any]:
        return {
            "successes": self.successes,
            "attempts": self.attempts,
            "billed_attempts": self.billed_attempts,
            "input_tokens_mean": self.input_tokens,
            "output_tokens_mean": self.output_tokens,
            "reasoning_tokens_mean": self.reasoning_tokens,
            "cached_input_fraction": self.cached_fraction,
            "cost_usd": self.cost_usd,
            "cost_per_success_usd": self.cost_per_success_usd,
            "e2e_ms": self.e2e_ms.to_json(),
            "output_tokens_per_s": self.output_tokens_per_s,
        }


def measure(records: Iterable[Record], slo: SLO | None = None) -> dict[str, Measured]:
    """Per target; with an SLO, throughput counts only the output of requests that met it (goodput)."""
    return {n: Measured.from_summary(s) for n, s in summarize_by_target(records, slo=slo).items()}


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
