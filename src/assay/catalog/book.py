"""Which price applies to each target: the catalog, inline rates, or the GPU bill of a self-hosted model.

A target whose price cannot be found is an error before any request is sent,
never a silent $0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from assay.catalog.prices import ModelPrice, TokenCounts, self_hosted_price, with_overrides
from assay.catalog.table import Catalog
from assay.errors import ConfigError
from assay.model import Target
from assay.records import Record

__all__ = ["PriceBook", "price_problems", "record_tokens"]

Problem = tuple[tuple[Any, ...], str]


def record_tokens(r: Record) -> TokenCounts:
    return TokenCounts(r.input_tokens, r.output_tokens, r.cached_tokens, r.cache_write_tokens, r.reasoning_tokens)


def _resolve(target: Target, catalog: Catalog) -> tuple[ModelPrice | None, Problem | None]:
    pricing = target.pricing
    if target.deployment == "self_hosted" and target.self_hosted is not None and pricing is None:
        return self_hosted_price(target.model, target.self_hosted), None
    key = (pricing.catalog if pricing else None) or target.model
    base = catalog.get(key)
    if pricing is not None:
        if pricing.catalog is not None and base is None:
            near = catalog.similar(pricing.catalog)
            hint = f"; similar: {', '.join(near)}" if near else "; see `assay prices show`"
            return None, (("pricing", "catalog"), f"{pricing.catalog!r} is not in the price catalog{hint}")
        price = with_overrides(base, key, pricing)
        if price is None:
            missing = [f for f in ("input_per_mtok", "output_per_mtok") if getattr(pricing, f) is None]
            return None, (
                ("pricing",),
                f"model {key!r} is not in the price catalog, so inline pricing needs {' and '.join(missing)}",
            )
        return price, None
    if base is None:
        near = catalog.similar(key)
        hint = f" (similar catalog entries: {', '.join(near)})" if near else ""
        return None, (
            ("model",),
            f"no price known for model {key!r}{hint}; add `pricing: {{catalog: NAME}}` or "
            "`pricing: {input_per_mtok: .., output_per_mtok: ..}` (use 0 for a free endpoint)",
        )
    return base, None


def price_problems(targets: Iterable[Target], catalog: Catalog, require: bool = True) -> list[Problem]:
    """Config-validation check: (field path, message) for each target whose price cannot be found.

    A `pricing:` block that does not resolve (a catalog name that does not exist, inline rates
    missing one) is always a problem: the user meant a price. A target with no `pricing:` whose
    model the catalog does not know is one only when `require` (cost analysis needs every price;
    measuring does not, its cost is then unknown).
    """
    out: list[Problem] = []
    for i, t in enumerate(targets):
        _, problem = _resolve(t, catalog)
        if problem is not None and (require or t.pricing is not None):
            out.append((("targets", i, *problem[0]), problem[1]))
    return out


@dataclass(frozen=True)
class PriceBook:
    """The price of every target in a config; prices each Record from its token counts."""

    prices: dict[str, ModelPrice | None]  # None: self-hosted with throughput still to be measured

    @classmethod
    def for_targets(cls, targets: Iterable[Target], catalog: Catalog) -> PriceBook:
        """Every target priced, or a ConfigError listing those that are not (cost analysis needs them all)."""
        book, unpriced = cls.known(targets, catalog)
        if unpriced:
            raise ConfigError("targets without a price", [f"target {n!r}: {msg}" for n, msg in unpriced.items()])
        return book

    @classmethod
    def known(cls, targets: Iterable[Target], catalog: Catalog) -> tuple[PriceBook, dict[str, str]]:
        """The prices that can be found, and for each target without one, what to add (its cost is unknown)."""
        prices: dict[str, ModelPrice | None] = {}
        unpriced: dict[str, str] = {}
        for t in targets:
            price, problem = _resolve(t, catalog)
            if problem is not None:
                field = ".".join(str(p) for p in problem[0])
                unpriced[t.name] = f"{field}: {problem[1]}"
            prices[t.name] = price
        return cls(prices), unpriced

    def cost(self, record: Record) -> float | None:
        """USD billed for one attempt: what its tokens cost (failed attempts bill what was generated)."""
        price = self.prices.get(record.target)
        if price is None:
            return None
        return float(price.cost(record_tokens(record)))

    def exact_cost(self, target: str, tokens: TokenCounts) -> Decimal | None:
        price = self.prices.get(target)
        return None if price is None else price.cost(tokens)
