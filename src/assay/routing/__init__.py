"""Routing: policies, live health, circuit breakers, retry budgets and fault rules; pure (engine layer).

    policies.py   a policy orders a route's targets from a request's facts and a health snapshot
    health.py     EWMA latency and errors, rate-limit headroom, cooldowns per target; the snapshot
    breaker.py    closed / open / half-open with a growing cooldown
    budget.py     retries as a share of first attempts over a window
    faults.py     after a failure: retry, move on or stop; backoff and pacing

No I/O and no clock reads: callers pass `now_s` and an RNG, so the gateway and the
what-if simulator make the same decisions on the same inputs.
"""

from assay.routing.breaker import Breaker, BreakerState, Transition
from assay.routing.budget import RetryBudget
from assay.routing.faults import MAX_IN_WINDOW, WINDOW_S, FailureKind, backoff_s, failure_kind, pacing_wait_s
from assay.routing.health import Health, Outcome, Snapshot, TargetHealth, TargetView
from assay.routing.policies import POLICIES, RequestFacts, expected_cost_usd, order

__all__ = [
    "MAX_IN_WINDOW",
    "POLICIES",
    "WINDOW_S",
    "Breaker",
    "BreakerState",
    "FailureKind",
    "Health",
    "Outcome",
    "RequestFacts",
    "RetryBudget",
    "Snapshot",
    "TargetHealth",
    "TargetView",
    "Transition",
    "backoff_s",
    "expected_cost_usd",
    "failure_kind",
    "order",
    "pacing_wait_s",
]
