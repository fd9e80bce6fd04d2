"""`workload:`, `constraints:` and `tco:`: what cost and capacity analysis prices (docs/COST.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from assay.model import StrictModel

__all__ = ["Constraints", "TcoSettings", "Workload"]


class Workload(StrictModel):
    """The traffic a deployment must carry, for cost and capacity (see docs/COST.md)."""

    daily_active_users: float = Field(gt=0)
    conversations_per_user_per_day: float = Field(default=1.0, gt=0)
    turns_per_conversation: int = Field(default=1, ge=1, le=1000)
    input_tokens_per_turn: float = Field(ge=0, description="New tokens the user and system add each turn.")
    output_tokens_per_turn: float = Field(ge=0)
    reasoning_tokens_per_turn: float = Field(default=0.0, ge=0, description="Billed as output; not in the reply.")
    history: Literal["full", "none"] = Field(
        default="full", description="full: each turn resends all earlier turns; none: it does not."
    )
    cached_input_fraction: float = Field(default=0.0, ge=0, le=1, description="Share of input billed as cache reads.")
    days_per_month: float = Field(default=30.0, gt=0, le=31)
    peak_to_average: float = Field(default=3.0, ge=1, le=1000, description="Peak traffic over the monthly average.")
    monthly_growth: float = Field(default=0.0, gt=-1, le=10, description="Compound growth of volume per month.")


class Constraints(StrictModel):
    """Limits a choice must respect; `assay cost` reports each as pass/fail with the margin."""

    monthly_budget_usd: float | None = Field(default=None, gt=0)
    max_cost_per_interaction_usd: float | None = Field(default=None, gt=0)
    p95_latency_ms: float | None = Field(default=None, gt=0, description="Checked against a measured run (--run).")


class TcoSettings(StrictModel):
    """Defaults for `assay tco`."""

    months: int = Field(default=36, ge=1, le=120)
    sensitivity: float = Field(default=0.2, gt=0, lt=1, description="Tornado swing: each input moved ± this share.")
