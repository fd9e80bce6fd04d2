"""What a model's tokens cost: list prices per million tokens, long-context tiers, and the billing rule.

Money is `Decimal` from the catalog to the bill, so a cost is exactly what the
rates say; floats appear only at the edges (JSON, plots). Rates are USD per
million tokens, the unit vendors quote.

The billing rule, as OpenAI, Anthropic and Google apply it:
- input is split into uncached tokens, cache reads and cache writes, each at its rate;
- output is split into visible and reasoning tokens (reasoning at the output rate unless
  the model has its own);
- a long-context tier applies to the *whole* request once its input crosses the
  tier's threshold (not only to the tokens above it);
- a negotiated discount comes off the total.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from assay.model import Pricing, SelfHosted

__all__ = ["MILLION", "ModelPrice", "Tier", "TokenCounts", "dec", "self_hosted_price", "with_overrides"]

MILLION = Decimal(1_000_000)


def dec(v: float | int | str | Decimal) -> Decimal:
    """An exact Decimal for a price: floats go through their shortest repr, so 0.15 stays 0.15."""
    if isinstance(v, Decimal):
        return v
    return Decimal(repr(v)) if isinstance(v, float) else Decimal(v)


Count = int | Decimal  # a request's tokens are whole; a workload's average turn need not be


@dataclass(frozen=True, slots=True)
class TokenCounts:
    """The billable token counts of one request (cached and cache-write are part of input)."""

    input: Count = 0
    output: Count = 0
    cached: Count = 0
    cache_write: Count = 0
    reasoning: Count = 0


@dataclass(frozen=True, slots=True)
class Tier:
    """Rates for the whole request when input exceeds `above_input_tokens`."""

    above_input_tokens: int
    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """List prices of one model, USD per million tokens."""

    name: str
    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None  # None: cache reads bill at the input rate
    cache_write: Decimal | None = None  # None: cache writes bill at the input rate
    reasoning: Decimal | None = None  # None: reasoning bills at the output rate
    batch_input: Decimal | None = None
    batch_output: Decimal | None = None
    tiers: tuple[Tier, ...] = ()
    provider: str | None = None
    context_window: int | None = None
    max_output: int | None = None
    deprecation_date: str | None = None
    source: str = "catalog"  # catalog | inline | catalog+inline | self-hosted
    discount: Decimal = Decimal(0)

    def rates_for(self, input_tokens: Count) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """(input, output, cache read, cache write) rates for a request with this many input tokens."""
        inp, out, cr, cw = self.input, self.output, self.cached_input, self.cache_write
        for tier in self.tiers:  # ascending thresholds: the last one crossed wins
            if input_tokens > tier.above_input_tokens:
                inp, out = tier.input, tier.output
                cr = tier.cached_input if tier.cached_input is not None else cr
                cw = tier.cache_write if tier.cache_write is not None else cw
        return inp, out, (cr if cr is not None else inp), (cw if cw is not None else inp)

    def list_cost(self, tokens: TokenCounts) -> Decimal:
        """USD at list price, before any discount."""
        inp, out, cr, cw = self.rates_for(tokens.input)
        cached = min(tokens.cached, tokens.input)
        write = min(tokens.cache_write, tokens.input - cached)
        uncached = tokens.input - cached - write
        reasoning = min(tokens.reasoning, tokens.output)
        reasoning_rate = self.reasoning if self.reasoning is not None and not self._tiered(tokens.input) else out
        visible = tokens.output - reasoning
        total = uncached * inp + cached * cr + write * cw + visible * out + reasoning * reasoning_rate
        return total / MILLION

    def cost(self, tokens: TokenCounts) -> Decimal:
        """USD billed: list price less the negotiated discount."""
        return self.list_cost(tokens) * (1 - self.discount)

    def _tiered(self, input_tokens: Count) -> bool:
        return any(input_tokens > t.above_input_tokens for t in self.tiers)

    def to_json(self) -> dict[str, Any]:
        def f(v: Decimal | None) -> float | None:
            return None if v is None else float(v)

        return {
            "name": self.name,
            "provider": self.provider,
            "input_per_mtok": f(self.input),
            "output_per_mtok": f(self.output),
            "cached_input_per_mtok": f(self.cached_input),
            "cache_write_per_mtok": f(self.cache_write),
            "reasoning_per_mtok": f(self.reasoning),
            "batch_input_per_mtok": f(self.batch_input),
            "batch_output_per_mtok": f(self.batch_output),
            "long_context": [
                {
                    "above_input_tokens": t.above_input_tokens,
                    "input_per_mtok": f(t.input),
                    "output_per_mtok": f(t.output),
                    "cached_input_per_mtok": f(t.cached_input),
                    "cache_write_per_mtok": f(t.cache_write),
                }
                for t in self.tiers
            ],
            "context_window": self.context_window,
            "max_output_tokens": self.max_output,
            "deprecation_date": self.deprecation_date,
            "source": self.source,
            "discount": float(self.discount),
        }


def with_overrides(base: ModelPrice | None, name: str, pricing: Pricing) -> ModelPrice | None:
    """A catalog price with the target's inline rates laid over it; None if input or output is still unknown."""
    fields: dict[str, Any] = {}
    for ours, theirs in (
        ("input_per_mtok", "input"),
        ("output_per_mtok", "output"),
        ("cached_input_per_mtok", "cached_input"),
        ("cache_write_per_mtok", "cache_write"),
        ("reasoning_per_mtok", "reasoning"),
    ):
        v = getattr(pricing, ours)
        if v is not None:
            fields[theirs] = dec(v)
    if pricing.long_context:
        fields["tiers"] = tuple(
            Tier(
                t.above_input_tokens,
                dec(t.input_per_mtok),
                dec(t.output_per_mtok),
                None if t.cached_input_per_mtok is None else dec(t.cached_input_per_mtok),
                None if t.cache_write_per_mtok is None else dec(t.cache_write_per_mtok),
            )
            for t in pricing.long_context
        )
    fields["discount"] = dec(pricing.discount)
    if base is None:
        if "input" not in fields or "output" not in fields:
            return None
        return ModelPrice(name=name, source="inline", **fields)
    inline = any(k not in ("discount",) for k in fields)
    return replace(base, source="catalog+inline" if inline else base.source, **fields)


def self_hosted_price(name: str, hosting: SelfHosted) -> ModelPrice | None:
    """The GPU cost of a token at the planned utilisation; prompt tokens are covered by the same GPU hour.

    None when the replica's throughput is not declared (it can come from a load run instead).
    """
    if hosting.output_tokens_per_s is None:
        return None
    per_hour = dec(hosting.gpu_hourly_usd) * hosting.gpus_per_replica
    tokens_per_hour = dec(hosting.output_tokens_per_s) * 3600 * dec(hosting.target_utilization)
    return ModelPrice(name=name, input=Decimal(0), output=per_hour / tokens_per_hour * MILLION, source="self-hosted")
