"""What a fine-tune costs and when it pays for itself: epochs, billed training tokens, price, break-even.

Epochs follow each vendor's documented default unless given (the rule lives
with the formats, datasets/finetune_formats.py, where the simulator reads it
too). Billed tokens are the file's tokens (each example up to the training
context) times the epochs.

The break-even compares two ways to serve the same traffic: the base model
today and the tuned one (usually a smaller model tuned to replace a larger
one). Training is paid once; each request then saves the difference in cost
per request, so the monthly volume that pays the training back within a
horizon is training / (saving per request x months).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from assay.catalog.prices import MILLION, dec
from assay.datasets.finetune_formats import default_epochs

__all__ = ["BreakEven", "break_even", "default_epochs", "training_cost"]


def training_cost(billed_tokens: int, per_mtok: Decimal | float | None) -> Decimal | None:
    """USD for training on `billed_tokens`, or None without a price."""
    return None if per_mtok is None else dec(per_mtok) * billed_tokens / MILLION


@dataclass(frozen=True)
class BreakEven:
    """When the tuned model's savings pay back its training."""

    training_usd: Decimal
    saving_per_request_usd: Decimal  # base cost per request minus tuned cost per request
    monthly_requests: Decimal | None  # the workload's, when the project has one
    months: int  # the horizon the volume below pays back within
    break_even_monthly_requests: Decimal | None  # None: the tuned model saves nothing per request
    payback_months: Decimal | None  # at the workload's volume; None without a workload or a saving

    def to_json(self) -> dict[str, float | int | None]:
        def f(v: Decimal | None) -> float | None:
            return None if v is None else float(v)

        return {
            "training_usd": float(self.training_usd),
            "saving_per_request_usd": float(self.saving_per_request_usd),
            "monthly_requests": f(self.monthly_requests),
            "months": self.months,
            "break_even_monthly_requests": f(self.break_even_monthly_requests),
            "payback_months": f(self.payback_months),
        }


def break_even(
    training_usd: Decimal,
    base_per_request_usd: Decimal | float,
    tuned_per_request_usd: Decimal | float,
    monthly_requests: Decimal | float | None = None,
    months: int = 12,
) -> BreakEven:
    """The monthly volume at which the saving per request repays training within `months`, and the payback time."""
    saving = dec(base_per_request_usd) - dec(tuned_per_request_usd)
    volume = None if monthly_requests is None else dec(monthly_requests)
    if saving <= 0:
        return BreakEven(training_usd, saving, volume, months, None, None)
    needed = training_usd / (saving * months)
    payback = training_usd / (saving * volume) if volume else None
    return BreakEven(training_usd, saving, volume, months, needed, payback)
