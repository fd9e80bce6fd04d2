"""Workload arithmetic, architectures, TCO, break-even and sensitivity, by hand and by property."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.catalog import PriceBook, load_catalog
from assay.cli.project import load_project
from assay.config import ProjectConfig, Workload, parse_config
from assay.economics import (
    Option,
    all_options,
    break_even,
    cost_report,
    tco,
    tornado,
    turn_tokens,
    volume,
)
from assay.model import Pricing, Provisioned, SelfHosted, Target

D = Decimal
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "support-chatbot.yaml"
W = Workload(daily_active_users=1000, turns_per_conversation=5, input_tokens_per_turn=300, output_tokens_per_turn=150)


def test_full_history_resends_earlier_turns() -> None:
    turns = turn_tokens(W)
    assert [t.input for t in turns] == [300, 750, 1200, 1650, 2100]  # k*300 + (k-1)*150
    assert all(t.output == 150 for t in turns)
    flat = turn_tokens(W.model_copy(update={"history": "none"}))
    assert [t.input for t in flat] == [300] * 5


def test_volume_and_peak() -> None:
    v = volume(W)
    assert v.conversations == 30_000 and v.interactions == 150_000
    assert v.input_tokens == 6000 * 30_000 and v.output_tokens == 750 * 30_000
    # 202.5M tokens over 30 days is 78.125 tokens/s on average; the peak is 3x that.
    assert v.peak_tokens_per_s == D("234.375")


def test_support_chatbot_example_numbers() -> None:
    cfg = load_project(EXAMPLE)
    report = cost_report(cfg, PriceBook.for_targets(cfg.targets, load_catalog()))
    mini, haiku, llama = (report.targets[n] for n in ("openai-mini", "claude-haiku", "llama-vllm"))
    # gpt-4o-mini: 6,000 input x $0.15 + 750 output x $0.60 per conversation = $0.00135; x 30,000 a month.
    assert mini.cost_per_conversation == D("0.00135") and mini.monthly == D("40.5")
    assert mini.cost_per_interaction == D("0.00027")
    # claude-haiku-4-5 at 10% off: (6,000 x $1 + 750 x $5) x 0.9 = $0.008775 a conversation.
    assert haiku.cost_per_conversation == D("0.008775") and haiku.monthly == D("263.25")
    assert haiku.checks["monthly_budget_usd"].ok and haiku.checks["monthly_budget_usd"].margin == pytest.approx(236.75)
    # Two L4s (the minimum) always on: 2 x $0.80 x 720 h + 8 h x $100 + $50.
    assert llama.monthly == D("2002") and llama.units == 2
    assert llama.checks["monthly_budget_usd"].ok is False
    assert haiku.by_architecture["provisioned"] == D("4320")  # one unit, 720 h x $6


def _target(**kw: object) -> Target:
    return Target(name="t", base_url="http://x/v1", model="m", **kw)  # type: ignore[arg-type]


def test_graduated_volume_tiers_and_contract_schedule() -> None:
    pricing = Pricing(
        input_per_mtok=1,
        output_per_mtok=1,
        volume_tiers=[{"above_monthly_usd": 100, "discount": 0.5}],  # type: ignore[list-item]
        discount_schedule=[{"from_month": 3, "discount": 0.2}],  # type: ignore[list-item]
    )
    t = _target(pricing=pricing)
    price = PriceBook.for_targets([t], load_catalog()).prices["t"]
    opt = Option(t, "serverless", price)
    # 1000 users x 30 days x 1 turn x 1M tokens... keep it simple: 10,000 tokens a conversation, $0.01 each.
    w = Workload(daily_active_users=1000, input_tokens_per_turn=5000, output_tokens_per_turn=5000)
    assert volume(w).conversations == 30_000  # list spend $300 a month
    m1 = opt.month_cost(w, month=1)
    assert m1.detail["list"] == D(300)
    assert m1.total == D(100) + D(200) * D("0.5")  # the first $100 at list, the rest at half
    assert opt.month_cost(w, month=3).total == D(200) * D("0.8")  # the contract step applies from month 3


def test_provisioned_units_are_fixed_for_each_term() -> None:
    t = _target(
        pricing=Pricing(input_per_mtok=1, output_per_mtok=1),
        provisioned=Provisioned(unit_hourly_usd=1, unit_tokens_per_s=100, term_months=12),
        deployment="provisioned",
    )
    w = W.model_copy(update={"monthly_growth": 0.10})
    opt = Option(t, "provisioned", None)
    line = tco(opt, w, 24)
    # 234.4 tokens/s at the peak in month 1 needs 3 units; by month 12 growth (1.1^11 = 2.85x) needs 7.
    assert line.units[:12] == [7] * 12, "a term is sized for its busiest month"
    assert line.units[12] > 7
    assert line.monthly[0] == D(7) * 720


def test_self_hosted_setup_is_charged_once_and_replicas_follow_demand() -> None:
    hosting = SelfHosted(gpu_hourly_usd=2, output_tokens_per_s=10, target_utilization=0.5, setup_usd=1000)
    t = _target(deployment="self_hosted", self_hosted=hosting)
    opt = Option(t, "self_hosted", None, 10)
    line = tco(opt, W, 3)
    # Peak output 750 x 30,000 / 2,592,000 s x 3 = 26.04 tokens/s; 5 usable tokens/s a replica: 6 replicas.
    assert line.units == [6, 6, 6]
    assert line.monthly == [D(6 * 2 * 720 + 1000), D(6 * 2 * 720), D(6 * 2 * 720)]


def _options() -> list[tuple[Option, Workload]]:
    cfg = load_project(EXAMPLE)
    return all_options(cfg, PriceBook.for_targets(cfg.targets, load_catalog()))


@settings(max_examples=40, deadline=None)
@given(a=st.floats(0.001, 500), b=st.floats(0.001, 500))
def test_cost_is_monotonic_in_volume(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    for opt, w in _OPTIONS:
        assert opt.month_cost(w, lo, 0).total <= opt.month_cost(w, hi, 0).total, opt.label


_OPTIONS = _options()


def test_break_even_is_symmetric_and_costs_meet_there() -> None:
    pairs = [(a, b) for i, a in enumerate(_OPTIONS) for b in _OPTIONS[i + 1 :]]
    found = 0
    for a, b in pairs:
        ab, ba = break_even(a, b), break_even(b, a)
        assert [x.daily_active_users for x in ab] == pytest.approx([x.daily_active_users for x in ba], rel=1e-9)
        assert [x.cheaper_below for x in ab] == [x.cheaper_below for x in ba]
        for x in ab:
            found += 1
            scale = x.daily_active_users / a[1].daily_active_users
            below, above = scale * 0.999, scale * 1.001
            ca, cb = a[0].month_cost(a[1], below, 0).total, b[0].month_cost(b[1], below, 0).total
            assert (ca < cb) == (x.cheaper_below == a[0].label)
            ca, cb = a[0].month_cost(a[1], above, 0).total, b[0].month_cost(b[1], above, 0).total
            assert (ca < cb) != (x.cheaper_below == a[0].label) or ca == cb
    assert found >= 2


def test_serverless_vs_self_hosted_break_even_by_hand() -> None:
    opts = {o.label: (o, w) for o, w in _OPTIONS}
    first = break_even(opts["claude-haiku/serverless"], opts["llama-vllm/self_hosted"])[0]
    # Self-hosting costs $2,002 a month until the peak needs a third replica; haiku costs $263.25 per
    # 1,000 users, so they meet at 1000 x 2002 / 263.25 = 7,605 users a day.
    assert first.daily_active_users == pytest.approx(1000 * 2002 / 263.25, rel=1e-6)
    assert first.cheaper_below == "claude-haiku/serverless"


def test_tornado_puts_the_widest_swing_first() -> None:
    opt, w = _OPTIONS[0]
    swings = tornado(opt, w, 36, 0.2)
    widths = [s.width for s in swings]
    assert widths == sorted(widths, reverse=True)
    names = {s.name for s in swings}
    assert {"daily_active_users", "token_price", "input_tokens_per_turn"} <= names
    base = tco(opt, w, 36).total
    users = next(s for s in swings if s.name == "daily_active_users")
    assert users.tco_low < base < users.tco_high
    # Pay-as-you-go is linear in users and in price: both move TCO by exactly ±20%.
    assert float(users.tco_high) == pytest.approx(float(base) * 1.2, rel=1e-9)
    price = next(s for s in swings if s.name == "token_price")
    assert float(price.tco_low) == pytest.approx(float(base) * 0.8, rel=1e-9)


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (
            "workload: {daily_active_users: -5, input_tokens_per_turn: 1, output_tokens_per_turn: 1}",
            "workload.daily_active_users: Input should be greater than 0",
        ),
        (
            "workload: {daily_active_users: 5, input_tokens_per_turn: 1, output_tokens_per_turn: 1,"
            " peak_to_average: 0.5}",
            "workload.peak_to_average: Input should be greater than or equal to 1",
        ),
        (
            "workload: {daily_active_users: 5, input_tokens_per_turn: 1, output_tokens_per_turn: 1, history: some}",
            "workload.history: Input should be 'full' or 'none'",
        ),
    ],
)
def test_bad_workloads_are_refused_with_the_field(snippet: str, expected: str) -> None:
    from assay.errors import ConfigError

    text = "targets:\n  - {name: a, base_url: 'http://x/v1', model: gpt-4o-mini}\n" + snippet + "\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="c.yaml")
    assert any(p.startswith("c.yaml:3: ") and expected in p for p in info.value.problems), info.value.problems


@pytest.mark.parametrize(
    ("pricing", "expected"),
    [
        ("{input_per_mtok: 1.5e-07, output_per_mtok: 6.0e-07}", "looks like USD per token"),
        ("{input_per_mtok: 1, output_per_mtok: 2, cached_input_per_mtok: 3}", "above input_per_mtok"),
        ("{output_per_mtok: 2}", "inline pricing needs input_per_mtok"),
        ("{catalog: gpt-4o-mnii}", "'gpt-4o-mnii' is not in the price catalog; similar: gpt-4o-mini"),
        ("{input_per_mtok: -1, output_per_mtok: 2}", "greater than or equal to 0"),
    ],
)
def test_bad_prices_are_refused_at_their_line(tmp_path: Path, pricing: str, expected: str) -> None:
    from assay.errors import ConfigError

    path = tmp_path / "c.yaml"
    path.write_text(f"targets:\n  - name: a\n    base_url: 'http://x/v1'\n    model: nope\n    pricing: {pricing}\n")
    with pytest.raises(ConfigError) as info:
        load_project(path)
    assert any(f"{path}:5: targets[0].pricing" in p and expected in p for p in info.value.problems), info.value.problems


def test_a_target_without_any_price_is_refused_at_its_model_line(tmp_path: Path) -> None:
    from assay.errors import ConfigError

    path = tmp_path / "c.yaml"
    path.write_text("targets:\n  - name: a\n    base_url: 'http://x/v1'\n    model: house-model-7\n")
    assert load_project(path).targets[0].model == "house-model-7"  # measuring it needs no price
    with pytest.raises(ConfigError) as info:
        load_project(path, priced=True)  # pricing it does
    assert info.value.problems[0].startswith(f"{path}:4: targets[0].model: no price known for model 'house-model-7'")


def test_self_hosted_without_throughput_says_what_to_add() -> None:
    from assay.errors import ConfigError

    cfg = ProjectConfig(
        targets=[_target(deployment="self_hosted", self_hosted=SelfHosted(gpu_hourly_usd=1))],
        workload=W,
    )
    with pytest.raises(ConfigError, match="self_hosted needs output_tokens_per_s"):
        cost_report(cfg, PriceBook.for_targets(cfg.targets, load_catalog()))


def test_measured_throughput_counts_only_requests_that_met_the_slo() -> None:
    from assay.config import SLO
    from assay.economics import measure, options_for
    from assay.records import Record

    def rec(item: str, start_s: float, e2e_ms: float, tokens: int) -> Record:
        sent = 1_000_000_000
        return Record(
            "r", "gpu", "probe", item, 0, "ok", start_s,
            sent_ns=sent, first_token_ns=sent + 10_000_000, done_ns=sent + int(e2e_ms * 1e6), output_tokens=tokens,
        )  # fmt: skip

    records = [rec("0", 100.0, 1000, 500), rec("1", 100.5, 3500, 700)]  # the second misses a 2 s E2E SLO
    m = measure(records, SLO(e2e_ms=2000))["gpu"]
    assert m.output_tokens_per_s == pytest.approx(500 / 4.0)  # span 100.0 s to 104.0 s
    assert measure(records)["gpu"].output_tokens_per_s == pytest.approx(1200 / 4.0)
    t = _target(deployment="self_hosted", self_hosted=SelfHosted(gpu_hourly_usd=1))
    (opt,) = options_for(t, None, m.output_tokens_per_s)
    assert opt.output_tokens_per_s == pytest.approx(125.0)
