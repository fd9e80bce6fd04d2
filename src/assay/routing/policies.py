"""Routing policies: pure functions of a route, the request's facts and a snapshot, returning the order to try.

Every policy puts the targets that can take an attempt now first, in its own order,
then the ones that cannot (open breaker, Retry-After cooldown) by when they can: the
gateway tries them in that order and, when none can, waits for the earliest. No I/O,
no clock, no randomness of its own: the caller passes the RNG, so the what-if
simulator replays the same decisions.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from assay.config import Route
from assay.routing.health import Snapshot, TargetView

__all__ = ["POLICIES", "RequestFacts", "expected_cost_usd", "order"]


@dataclass(frozen=True, slots=True)
class RequestFacts:
    input_tokens: int  # an estimate, from the request's text
    max_tokens: int
    stream: bool


Policy = Callable[[Route, RequestFacts, list[TargetView], random.Random], list[TargetView]]


def _fallback(route: Route, facts: RequestFacts, views: list[TargetView], rng: random.Random) -> list[TargetView]:
    return views


def _weighted(route: Route, facts: RequestFacts, views: list[TargetView], rng: random.Random) -> list[TargetView]:
    """A weighted draw without replacement (Efraimidis-Spirakis keys): the first is chosen by weight,
    the rest follow as fallbacks in weighted order too."""
    def key(v: TargetView) -> float:
        w = route.weights.get(v.name, 1.0 if not route.weights else 0.0)
        return -math.inf if w <= 0 else math.log(rng.random() or 1e-300) / w

    return sorted(views, key=key, reverse=True)


def _ttft_or_prior(v: TargetView) -> float:
    return v.ttft_ms if v.ttft_ms is not None else 0.0  # an unmeasured target is tried: how else to learn it


def _least_latency(route: Route, facts: RequestFacts, views: list[TargetView], rng: random.Random) -> list[TargetView]:
    """Lowest EWMA TTFT (E2E for non-streaming requests), penalised by the recent error share."""
    def key(v: TargetView) -> float:
        base = _ttft_or_prior(v) if facts.stream else (v.e2e_ms if v.e2e_ms is not None else 0.0)
        return base * (1.0 + 4.0 * v.error_rate)

    return sorted(views, key=key)


def expected_cost_usd(v: TargetView, facts: RequestFacts) -> float:
    if v.input_per_mtok is None or v.output_per_mtok is None:
        return math.inf
    out = v.output_tokens if v.output_tokens is not None else min(facts.max_tokens, 256)
    return (facts.input_tokens * v.input_per_mtok + out * v.output_per_mtok) / 1e6


def _meets(route: Route, v: TargetView) -> bool:
    slo = route.slo
    if slo is None:
        return True
    if slo.ttft_ms is not None and v.ttft_ms is not None and v.ttft_ms > slo.ttft_ms:
        return False
    return not (slo.e2e_ms is not None and v.e2e_ms is not None and v.e2e_ms > slo.e2e_ms)


def _cost(route: Route, facts: RequestFacts, views: list[TargetView], rng: random.Random) -> list[TargetView]:
    """Cheapest first among targets whose EWMA latency meets the route's SLO, then the rest, cheapest first."""
    return sorted(views, key=lambda v: (not _meets(route, v), expected_cost_usd(v, facts)))


def _least_busy(route: Route, facts: RequestFacts, views: list[TargetView], rng: random.Random) -> list[TargetView]:
    """Fewest requests in flight; ties keep the route's order."""
    return sorted(views, key=lambda v: v.in_flight)


POLICIES: dict[str, Policy] = {
    "fallback": _fallback,
    "weighted": _weighted,
    "least_latency": _least_latency,
    "cost": _cost,
    "least_busy": _least_busy,
}


def order(route: Route, facts: RequestFacts, snapshot: Snapshot, rng: random.Random) -> list[str]:
    """The targets to try, in order: the policy's order of those available now, then the others by readiness."""
    views = [snapshot.targets[n] for n in route.targets]
    ready = POLICIES[route.policy](route, facts, [v for v in views if v.available], rng)
    waiting = sorted((v for v in views if not v.available), key=lambda v: v.ready_at_s)
    return [v.name for v in ready] + [v.name for v in waiting]
