"""What the gateway serves with, built from one config: routes, clients, live health, keys, prices.

A reload builds a new `GatewayState` from the new config (refusing it whole if it is
bad) and swaps it in one assignment; requests in flight finish on the state they
started with. Targets and keys that keep their names keep their health, spend and
limits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from assay.catalog import Catalog, PriceBook
from assay.clients import ProviderClient, Transport, make_client
from assay.clock import Clock
from assay.config import GatewaySettings, ProjectConfig, Route, missing_key_envs
from assay.errors import ConfigError
from assay.gateway.keys import KeyRing
from assay.model import Target
from assay.routing import Health, RetryBudget
from assay.runner.runs import client_timeouts

__all__ = ["GatewayState", "build_state"]


@dataclass
class GatewayState:
    config: ProjectConfig
    settings: GatewaySettings
    routes: dict[str, Route]
    targets: dict[str, Target]
    clients: dict[str, ProviderClient]
    health: Health
    keys: KeyRing
    book: PriceBook
    prices: dict[str, tuple[float, float]]  # (input, output) USD per million tokens, where known
    windows: dict[str, int | None]  # context window, in input tokens, where known
    budgets: dict[str, RetryBudget]  # per route
    prefill: set[str]  # targets that continue an assistant prefill
    rng: random.Random = field(default_factory=random.Random)

    def worst_rates(self, route: Route) -> tuple[float, float]:
        """The dearest input and output rates among a route's targets (for budget reservations)."""
        rates = [self.prices[t] for t in route.targets if t in self.prices]
        if not rates:
            return 0.0, 0.0
        return max(r[0] for r in rates), max(r[1] for r in rates)


def build_state(
    config: ProjectConfig,
    session: Transport,
    clock: Clock,
    catalog: Catalog,
    previous: GatewayState | None = None,
) -> GatewayState:
    """Everything the gateway needs from `config`; ConfigError (nothing changed) when it cannot serve it."""
    settings = config.gateway
    if settings is None:
        raise ConfigError("the config has no `gateway:` section (routes to serve); see docs/GATEWAY.md")
    names = list(dict.fromkeys(n for r in settings.routes for n in r.targets))
    targets = {n: config.target(n) for n in names}
    missing = missing_key_envs(config, names)
    if missing:
        raise ConfigError("cannot serve the gateway: API keys missing", missing)
    book, _ = PriceBook.known(targets.values(), catalog)
    prices: dict[str, tuple[float, float]] = {}
    windows: dict[str, int | None] = {}
    for n, t in targets.items():
        price = book.prices.get(n)
        if price is not None:
            prices[n] = (float(price.input * (1 - price.discount)), float(price.output * (1 - price.discount)))
        declared = getattr(t, "context_window", None)
        windows[n] = declared if declared is not None else (price.context_window if price is not None else None)
    unpriced_budgets = [
        f"gateway key {k.name!r} has budget_usd but route target {t!r} has no price (add `pricing:` to it)"
        for k in settings.keys if k.budget_usd is not None
        for r in settings.routes if k.routes is None or r.model in k.routes
        for t in r.targets if t not in prices
    ]  # fmt: skip
    if unpriced_budgets:
        raise ConfigError("cannot enforce a budget without prices", list(dict.fromkeys(unpriced_budgets)))
    clients = {n: make_client(t, session, client_timeouts(config.timeouts_for(n)), clock) for n, t in targets.items()}
    now_s = clock.now_ns() / 1e9
    keys = KeyRing(settings.keys, now_s, previous=previous.keys if previous else None)
    health = previous.health.adopt(names, settings.breaker) if previous else Health(names, settings.breaker)
    old_budgets = previous.budgets if previous else {}
    budgets = {r.model: old_budgets.get(r.model) or RetryBudget(r.retry_budget) for r in settings.routes}
    for r in settings.routes:
        budgets[r.model].ratio = r.retry_budget
    prefill = {n for n, t in targets.items() if t.api == "anthropic" or n in settings.prefill_targets}
    return GatewayState(
        config, settings, {r.model: r for r in settings.routes}, targets, clients, health, keys, book, prices,
        windows, budgets, prefill, previous.rng if previous else random.Random(),
    )


