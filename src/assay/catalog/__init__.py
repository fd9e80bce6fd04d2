"""Model prices: the bundled catalog, its cache, and the billing rules that turn tokens into dollars."""

from __future__ import annotations

from assay.catalog.book import PriceBook, price_problems, record_tokens
from assay.catalog.prices import MILLION, ModelPrice, Tier, TokenCounts, dec, self_hosted_price, with_overrides
from assay.catalog.table import LITELLM_URL, Catalog, cache_path, convert_litellm, load_catalog, update_catalog

__all__ = [
    "LITELLM_URL",
    "MILLION",
    "Catalog",
    "ModelPrice",
    "PriceBook",
    "Tier",
    "TokenCounts",
    "cache_path",
    "convert_litellm",
    "dec",
    "load_catalog",
    "price_problems",
    "record_tokens",
    "self_hosted_price",
    "update_catalog",
    "with_overrides",
]
