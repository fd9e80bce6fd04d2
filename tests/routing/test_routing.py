"""The pure routing layer: breaker, retry budget, pacing, fault kinds and policies, driven by given times."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from assay.config import SLO, BreakerSettings, Route
from assay.routing import (
    Breaker,
    Health,
    Outcome,
    RequestFacts,
    RetryBudget,
    backoff_s,
    failure_kind,
    order,
    pacing_wait_s,
)

FACTS = RequestFacts(input_tokens=100, max_tokens=200, stream=True)


def test_breaker_opens_on_consecutive_failures_and_probes_once() -> None:
    b = Breaker(BreakerSettings(consecutive_failures=3, cooldown_s=2, cooldown_growth=2, max_cooldown_s=5))
    assert b.record(False, 0.0) is None and b.record(False, 0.1) is None
    moved = b.record(False, 0.2)
    assert moved is not None and (moved.after, moved.reason) == ("open", "consecutive_failures")
    assert b.acquire(1.0) == (False, None) and b.ready_at_s() == pytest.approx(2.2)
    ok, moved = b.acquire(2.3)
    assert ok and moved is not None and moved.after == "half_open"
    assert b.acquire(2.3) == (False, None)  # one probe at a time
    moved = b.record(False, 2.4)
    assert moved is not None and moved.reason == "probe_failed" and b.cooldown_s == 4
    b.acquire(6.5)
    moved = b.record(False, 6.5)
    assert b.cooldown_s == 5  # capped
    b.acquire(11.6)
    moved = b.record(True, 11.7)
    assert moved is not None and (moved.after, b.cooldown_s) == ("closed", 0.0)


def test_a_late_failure_never_shortens_an_open_deadline() -> None:
    b = Breaker(BreakerSettings(consecutive_failures=1, cooldown_s=10))
    b.record(False, 0.0)
    assert b.open_until_s == 10
    b.record(False, 0.5)  # an attempt sent before it opened fails late
    assert b.open_until_s == 10.5


def test_breaker_opens_on_error_rate_over_its_window() -> None:
    b = Breaker(BreakerSettings(error_rate=0.5, window_s=10, min_requests=4, consecutive_failures=100))
    for i, ok in enumerate([True, False, True, False]):
        moved = b.record(ok, float(i))
    assert moved is not None and moved.reason == "error_rate"
    fresh = Breaker(BreakerSettings(error_rate=0.5, window_s=1, min_requests=4, consecutive_failures=100))
    for i, ok in enumerate([False, True, True, False, True, False]):
        assert fresh.record(ok, i * 2.0) is None  # spread over time: never four in one window


def test_retry_budget_is_a_share_of_first_attempts_over_a_window() -> None:
    budget = RetryBudget(0.2, window_s=10, min_retries=1)
    for i in range(20):
        budget.first(i * 0.1)
    spent = 0
    while budget.allows(2.0):
        budget.spend(2.0)
        spent += 1
    assert spent == 4  # 20% of 20
    assert budget.allows(13.0)  # the window moved on


def test_pacing_and_backoff() -> None:
    assert pacing_wait_s([], 0) == 0 and pacing_wait_s([0.0], 0.01) == 0
    assert pacing_wait_s([0.0, 0.1], 0.2) == pytest.approx(1.5 + 0.05 - 0.2)
    rng = random.Random(1)
    waits = [backoff_s(k, rng) for k in (1, 2, 3)]
    assert 0.025 <= waits[0] <= 0.075 and 0.05 <= waits[1] <= 0.15 and 0.1 <= waits[2] <= 0.3


@pytest.mark.parametrize(("cls", "status", "message", "kind"), [
    ("rate_limited", 429, "slow down", "rate_limited"),
    ("server_error", 500, "boom", "transient"),
    ("stream_broken", 200, "cut", "transient"),
    ("client_error", 400, "This model's maximum context length is 8192 tokens", "context_length"),
    ("client_error", 400, "prompt is too long: 300000 tokens > 200000 maximum", "context_length"),
    ("client_error", 400, "filtered by the content management policy", "content_filter"),
    ("client_error", 401, "invalid x-api-key", "target_config"),
    ("client_error", 422, "temperature must be <= 2", "bad_request"),
])  # fmt: skip
def test_failure_kinds(cls: str, status: int, message: str, kind: str) -> None:
    assert failure_kind(cls, status, message) == kind


def _route(policy: str, **kw: object) -> Route:
    return Route(model="chat", policy=policy, targets=["a", "b", "c"], **kw)  # type: ignore[arg-type]


def _health() -> Health:
    return Health(["a", "b", "c"], BreakerSettings(consecutive_failures=1, cooldown_s=5))


def test_fallback_keeps_order_and_puts_unavailable_targets_last_by_readiness() -> None:
    h = _health()
    h.targets["a"].observe(Outcome(False), 0.0)  # breaker open until 5
    h.targets["b"].observe(Outcome(False, counts_against=False, cooldown_s=2), 0.0)  # Retry-After 2 s
    snap = h.snapshot(1.0, ["a", "b", "c"])
    assert order(_route("fallback"), FACTS, snap, random.Random(0)) == ["c", "b", "a"]


def test_weighted_follows_the_weights() -> None:
    route = _route("weighted", weights={"a": 8, "b": 2, "c": 0})
    snap = _health().snapshot(0.0, ["a", "b", "c"])
    rng = random.Random(4)
    firsts = Counter(order(route, FACTS, snap, rng)[0] for _ in range(5000))
    assert firsts["c"] == 0 and 0.77 < firsts["a"] / 5000 < 0.83


def test_least_latency_and_cost_with_an_slo() -> None:
    h = _health()
    for name, ttft in (("a", 900.0), ("b", 300.0), ("c", 500.0)):
        h.targets[name].observe(Outcome(True, ttft_ms=ttft, e2e_ms=ttft * 2, output_tokens=100), 0.0)
    prices = {"a": (0.1, 0.4), "b": (3.0, 15.0), "c": (1.0, 2.0)}
    snap = h.snapshot(0.0, ["a", "b", "c"], prices)
    assert order(_route("least_latency"), FACTS, snap, random.Random(0)) == ["b", "c", "a"]
    assert order(_route("cost"), FACTS, snap, random.Random(0)) == ["a", "c", "b"]
    # a (cheapest) misses a 600 ms TTFT objective: the cheapest of those that meet it goes first.
    assert order(_route("cost", slo=SLO(ttft_ms=600)), FACTS, snap, random.Random(0)) == ["c", "b", "a"]


def test_least_busy() -> None:
    h = _health()
    h.targets["a"].in_flight, h.targets["b"].in_flight, h.targets["c"].in_flight = 5, 1, 3
    assert order(_route("least_busy"), FACTS, h.snapshot(0.0, ["a", "b", "c"]), random.Random(0)) == ["b", "c", "a"]


def test_the_same_inputs_give_the_same_decision() -> None:
    route = _route("weighted", weights={"a": 1, "b": 1, "c": 1})
    snap = _health().snapshot(0.0, ["a", "b", "c"])
    runs = [[tuple(order(route, FACTS, snap, rng)) for _ in range(50)] for rng in (random.Random(9), random.Random(9))]
    assert runs[0] == runs[1]
