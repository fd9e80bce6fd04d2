"""Billing rules against hand-computed bills, exact to the last decimal."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from assay.catalog import Catalog, ModelPrice, PriceBook, Tier, TokenCounts, convert_litellm, load_catalog
from assay.catalog.table import _read, write_table
from assay.model import Pricing, Target
from assay.records import Record
from tests.conftest import DATA_DIR, needs_data

SHARED_PRICES = DATA_DIR / "prices" / "model_prices_and_context_window.json"
D = Decimal


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def test_plain_input_and_output(catalog: Catalog) -> None:
    price = catalog.require("gpt-4o-mini")  # $0.15 in, $0.60 out per million
    assert price.cost(TokenCounts(input=1000, output=500)) == D("0.00045")  # 150e-6 + 300e-6


def test_cache_reads_and_writes_bill_at_their_own_rates(catalog: Catalog) -> None:
    price = catalog.require("claude-haiku-4-5")  # $1 in, $5 out, $0.10 cache read, $1.25 cache write
    tokens = TokenCounts(input=10_000, output=100, cached=6_000, cache_write=2_000)
    # 2,000 fresh x $1 + 6,000 read x $0.10 + 2,000 written x $1.25 + 100 out x $5 = $0.0056
    assert price.cost(tokens) == D("0.0056")


def test_reasoning_tokens_bill_at_their_rate_or_the_output_rate() -> None:
    own = ModelPrice("m", input=D(1), output=D(10), reasoning=D(2))
    assert own.cost(TokenCounts(input=0, output=1000, reasoning=400)) == D("0.0068")  # 600 x 10 + 400 x 2
    default = ModelPrice("m", input=D(1), output=D(10))
    assert default.cost(TokenCounts(input=0, output=1000, reasoning=400)) == D("0.01")


def test_long_context_tier_applies_to_the_whole_request(catalog: Catalog) -> None:
    price = catalog.require("gemini-2.5-pro")  # $1.25/$10; above 200k input: $2.50/$15 on everything
    assert price.cost(TokenCounts(input=200_000, output=1000)) == D("0.26")  # at the threshold: base rates
    # One token more and all 200,001 input tokens and the output move to the tier's rates.
    assert price.cost(TokenCounts(input=200_001, output=1000)) == D("0.5150025")


def test_highest_crossed_tier_wins_and_caches_follow_it() -> None:
    price = ModelPrice(
        "m",
        input=D(1),
        output=D(2),
        cached_input=D("0.5"),
        tiers=(Tier(100, D(3), D(4)), Tier(1000, D(5), D(6), cached_input=D(1))),
    )
    assert price.cost(TokenCounts(input=500, output=10, cached=100)) == D("0.00129")  # 400x3 + 100x0.5 + 10x4
    assert price.cost(TokenCounts(input=2000, output=10, cached=1000)) == D("0.00606")  # 1000x5 + 1000x1 + 10x6


def test_negotiated_discount_and_inline_overrides(catalog: Catalog) -> None:
    t = Target(
        name="t",
        base_url="http://x/v1",
        model="claude-haiku-4-5",
        pricing=Pricing(discount=0.10, output_per_mtok=4),
    )
    book = PriceBook.for_targets([t], catalog)
    price = book.prices["t"]
    assert price is not None and price.source == "catalog+inline"
    assert price.input == D(1) and price.output == D(4)
    assert book.exact_cost("t", TokenCounts(input=1000, output=1000)) == D("0.0045")  # (1000 + 4000) x 0.9 / 1e6


def test_self_hosted_tokens_cost_gpu_time() -> None:
    from assay.model import SelfHosted

    hosting = SelfHosted(gpu_hourly_usd=1.8, output_tokens_per_s=1000, target_utilization=0.5)
    t = Target(name="t", base_url="http://x/v1", model="llama", deployment="self_hosted", self_hosted=hosting)
    book = PriceBook.for_targets([t], load_catalog())
    # $1.80 an hour buys 1000 x 3600 x 0.5 = 1.8M output tokens: $1 per million.
    assert book.exact_cost("t", TokenCounts(input=5000, output=1_000_000)) == D(1)


def _record(status: str, input_tokens: int, output_tokens: int) -> Record:
    return Record("r", "t", "probe", "0", 0, status, 0.0, input_tokens=input_tokens, output_tokens=output_tokens)  # type: ignore[arg-type]


def test_records_are_priced_from_their_tokens_failed_ones_included() -> None:
    t = Target(name="t", base_url="http://x/v1", model="m", pricing=Pricing(input_per_mtok=2, output_per_mtok=8))
    book = PriceBook.for_targets([t], load_catalog())
    assert book.cost(_record("ok", 1000, 100)) == pytest.approx(0.0028)
    assert book.cost(_record("error", 1000, 40)) == pytest.approx(0.00232)  # broke mid-stream: billed so far
    assert book.cost(_record("error", 0, 0)) == 0.0  # a 429 costs nothing


def test_unknown_model_is_refused_with_suggestions(catalog: Catalog) -> None:
    from assay.errors import ConfigError

    t = Target(name="t", base_url="http://x/v1", model="gpt-4o-mnii")
    with pytest.raises(ConfigError) as info:
        PriceBook.for_targets([t], catalog)
    assert "no price known for model 'gpt-4o-mnii'" in info.value.problems[0]
    assert "gpt-4o-mini" in info.value.problems[0]


@needs_data("prices", "model_prices_and_context_window.json")
def test_conversion_of_litellm_map_keeps_exact_rates(tmp_path: Path) -> None:
    import orjson

    raw = orjson.loads(SHARED_PRICES.read_bytes())
    table = convert_litellm(raw, "test")
    write_table(table, tmp_path / "prices.json")
    converted = _read(tmp_path / "prices.json")
    for name in ("gpt-4o", "claude-sonnet-4-5", "gemini-2.5-pro"):
        entry, price = raw[name], converted.require(name)
        # LiteLLM stores USD per token as floats; the table holds the same rate per million, exactly.
        assert price.input == Decimal(repr(entry["input_cost_per_token"])) * 1_000_000
        assert price.output == Decimal(repr(entry["output_cost_per_token"])) * 1_000_000
    assert converted.require("gemini-2.5-pro").tiers[0].above_input_tokens == 200_000
    assert all(p.provider in {"openai", "anthropic"} or p.provider for p in converted.models.values())
    assert "dall-e-3" not in converted.models  # image models are not chat models
