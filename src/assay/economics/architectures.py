"""Monthly cost of running a workload on a target, for each way of buying it.

- serverless: pay per token at list price, less graduated volume discounts and the contract discount;
- provisioned: whole capacity units by the hour, sized for the peak, fixed for each commitment term;
- self-hosted: whole GPU replicas sized for the peak at the planned utilisation, plus people and fixed costs.

Always-on capacity is billed for every hour of the month whether used or not;
that is where pay-as-you-go wins at low volume and loses at high volume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from assay.catalog import ModelPrice, dec
from assay.config import Workload
from assay.economics.workload import Volume, conversation_list_cost, volume
from assay.errors import ConfigError
from assay.model import Pricing, Target

__all__ = ["ARCHITECTURES", "Architecture", "MonthCost", "Option", "contract_discount", "options_for"]

Architecture = Literal["serverless", "provisioned", "self_hosted"]
ARCHITECTURES: tuple[Architecture, ...] = ("serverless", "provisioned", "self_hosted")


@dataclass(frozen=True)
class MonthCost:
    total: Decimal
    units: int | None = None  # provisioned units or self-hosted replicas
    detail: dict[str, Decimal] = field(default_factory=dict)


def contract_discount(pricing: Pricing | None, month: int) -> Decimal:
    """The contract discount in force in `month` (1-based): the last scheduled step reached, else the base."""
    if pricing is None:
        return Decimal(0)
    d = dec(pricing.discount)
    for step in pricing.discount_schedule:
        if step.from_month <= month:
            d = dec(step.discount)
    return d


def _graduated(list_spend: Decimal, pricing: Pricing | None) -> Decimal:
    """List spend less graduated volume discounts: each tier's rate applies only to the spend above it."""
    if pricing is None or not pricing.volume_tiers:
        return list_spend
    bounds = [Decimal(0), *(dec(t.above_monthly_usd) for t in pricing.volume_tiers)]
    rates = [Decimal(0), *(dec(t.discount) for t in pricing.volume_tiers)]
    total = Decimal(0)
    for i, lo in enumerate(bounds):
        hi = bounds[i + 1] if i + 1 < len(bounds) else None
        top = list_spend if hi is None else min(list_spend, hi)
        if top > lo:
            total += (top - lo) * (1 - rates[i])
    return total


@dataclass(frozen=True)
class Option:
    """One way to buy one target: what a cost curve, a TCO line or a break-even point is about."""

    target: Target
    architecture: Architecture
    price: ModelPrice | None  # per-token list price (serverless); None for capacity-only options
    output_tokens_per_s: float | None = None  # self-hosted replica throughput (declared or measured)

    @property
    def label(self) -> str:
        return f"{self.target.name}/{self.architecture}"

    def units_needed(self, vol: Volume) -> int:
        if self.architecture == "provisioned":
            p = self.target.provisioned
            assert p is not None
            return max(p.min_units, math.ceil(vol.peak_tokens_per_s / dec(p.unit_tokens_per_s)))
        if self.architecture == "self_hosted":
            h = self.target.self_hosted
            assert h is not None and self.output_tokens_per_s is not None
            usable = dec(self.output_tokens_per_s) * dec(h.target_utilization)
            return max(h.min_replicas, math.ceil(vol.peak_output_tokens_per_s * (1 + dec(h.headroom)) / usable))
        return 0

    def month_cost(
        self, w: Workload, scale: Decimal | float = 1, month: int = 1, units: int | None = None
    ) -> MonthCost:
        """Cost of month `month` at `scale` times the declared volume; `units` fixes capacity (commitments)."""
        vol = volume(w, scale)
        if self.architecture == "serverless":
            assert self.price is not None
            list_spend = conversation_list_cost(w, self.price) * vol.conversations
            after_volume = _graduated(list_spend, self.target.pricing)
            total = after_volume * (1 - contract_discount(self.target.pricing, month))
            return MonthCost(total, None, {"list": list_spend, "billed": total})
        n = max(units or 0, self.units_needed(vol))
        if self.architecture == "provisioned":
            p = self.target.provisioned
            assert p is not None
            capacity = n * dec(p.unit_hourly_usd) * vol.hours
            return MonthCost(capacity, n, {"capacity": capacity})
        h = self.target.self_hosted
        assert h is not None
        gpus = n * h.gpus_per_replica * dec(h.gpu_hourly_usd) * vol.hours
        people = dec(h.engineering_hours_per_month) * dec(h.engineering_hourly_usd)
        fixed = dec(h.fixed_monthly_usd)
        setup = dec(h.setup_usd) if month == 1 else Decimal(0)
        total = gpus + people + fixed + setup
        return MonthCost(total, n, {"gpus": gpus, "engineering": people, "fixed": fixed, "setup": setup})


def options_for(
    target: Target, price: ModelPrice | None, measured_output_tokens_per_s: float | None = None
) -> list[Option]:
    """Every architecture this target's config says how to price."""
    out = []
    if price is not None and price.source != "self-hosted":
        out.append(Option(target, "serverless", price))
    if target.provisioned is not None:
        out.append(Option(target, "provisioned", price))
    if target.self_hosted is not None:
        tps = target.self_hosted.output_tokens_per_s or measured_output_tokens_per_s
        if tps is None:
            raise ConfigError(
                f"target {target.name!r}: self_hosted needs output_tokens_per_s (one replica's throughput at "
                "the SLO), declared or measured from a run with --run"
            )
        out.append(Option(target, "self_hosted", price, tps))
    return out
