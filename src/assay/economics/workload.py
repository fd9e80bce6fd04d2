"""A workload in tokens: what each turn of a conversation sends and receives, per month and at the peak.

With `history: full`, turn k resends every earlier turn, so it sends
k*input + (k-1)*output tokens: conversations get dearer with length, which a
price-per-token comparison hides.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from assay.catalog import ModelPrice, TokenCounts, dec
from assay.config import Workload

__all__ = ["SECONDS_PER_DAY", "Volume", "conversation_list_cost", "turn_tokens", "volume"]

SECONDS_PER_DAY = 86_400


def turn_tokens(w: Workload) -> list[TokenCounts]:
    """Token counts of each turn of one conversation."""
    inp, out, reasoning = dec(w.input_tokens_per_turn), dec(w.output_tokens_per_turn), dec(w.reasoning_tokens_per_turn)
    turns = []
    for k in range(1, w.turns_per_conversation + 1):
        sent = k * inp + (k - 1) * out if w.history == "full" else inp
        # Reasoning is billed as output but not resent as history.
        turns.append(TokenCounts(sent, out + reasoning, sent * dec(w.cached_input_fraction), 0, reasoning))
    return turns


def conversation_list_cost(w: Workload, price: ModelPrice) -> Decimal:
    """USD at list price for one conversation; tiers apply per request, as providers bill."""
    return sum((price.list_cost(t) for t in turn_tokens(w)), Decimal(0))


@dataclass(frozen=True)
class Volume:
    """A workload's monthly volume and peak rates (scale 1 = as declared)."""

    conversations: Decimal
    interactions: Decimal
    input_tokens: Decimal
    output_tokens: Decimal
    peak_tokens_per_s: Decimal  # input + output, what provisioned units are sized in
    peak_output_tokens_per_s: Decimal  # what a self-hosted replica's throughput is quoted in
    hours: Decimal  # hours in the month: always-on capacity bills these

    @property
    def tokens(self) -> Decimal:
        return self.input_tokens + self.output_tokens


def volume(w: Workload, scale: Decimal | float = 1) -> Volume:
    """Monthly volume at `scale` times the declared users (growth and sweeps scale it)."""
    days = dec(w.days_per_month)
    conversations = dec(w.daily_active_users) * dec(w.conversations_per_user_per_day) * days * dec(scale)
    turns = turn_tokens(w)
    inp = sum((dec(t.input) for t in turns), Decimal(0)) * conversations
    out = sum((dec(t.output) for t in turns), Decimal(0)) * conversations
    seconds = days * SECONDS_PER_DAY
    peak = dec(w.peak_to_average)
    return Volume(
        conversations=conversations,
        interactions=conversations * w.turns_per_conversation,
        input_tokens=inp,
        output_tokens=out,
        peak_tokens_per_s=(inp + out) / seconds * peak,
        peak_output_tokens_per_s=out / seconds * peak,
        hours=days * 24,
    )
