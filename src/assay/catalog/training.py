"""What training a model costs: the vendors' published training prices and training context lengths.

Training is billed per token trained on: the file's tokens times the epochs.
The bundled table holds OpenAI's published prices (USD per million training
tokens); any other vendor's, or a negotiated price, comes from the target's
`pricing.training_per_mtok`. The tuned model's inference prices are ordinary
catalog entries (`ft:BASE`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources

import orjson

from assay.catalog.prices import dec

__all__ = ["TrainingPrice", "training_price"]


@dataclass(frozen=True)
class TrainingPrice:
    """USD per million training tokens of one base model, and the longest example it trains on."""

    model: str
    per_mtok: Decimal
    context: int | None
    source: str


@functools.cache
def _table() -> dict[str, object]:
    raw = resources.files("assay.catalog").joinpath("training_prices.json").read_bytes()
    table: dict[str, object] = orjson.loads(raw)
    return table


def training_price(model: str | None) -> TrainingPrice | None:
    """The bundled training price of a base model (exact name, alias, or `provider/` prefix), else None."""
    if not model:
        return None
    table = _table()
    models, aliases = table["models"], table["aliases"]
    assert isinstance(models, dict) and isinstance(aliases, dict)
    name = model.split("/", 1)[1] if "/" in model else model
    name = aliases.get(name, name)
    row = models.get(name)
    if row is None:
        return None
    return TrainingPrice(name, dec(row["training"]), row.get("context"), str(table["source"]))
