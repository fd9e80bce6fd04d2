"""Cost per interaction, monthly cost, cost-vs-volume curves, break-even volumes, TCO and its sensitivity.

Everything here is a pure function of the config (and, with a run, what the
run measured); money stays `Decimal` until it is printed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from assay.catalog import ModelPrice, PriceBook, Tier, dec
from assay.config import ProjectConfig, Workload
from assay.economics.architectures import Architecture, Option, options_for
from assay.economics.measured import Measured, with_measured_tokens
from assay.economics.workload import volume
from assay.errors import ConfigError

__all__ = [
    "BreakEven",
    "CostReport",
    "LimitCheck",
    "Swing",
    "TargetCost",
    "TcoLine",
    "all_options",
    "break_even",
    "break_evens",
    "cost_curve",
    "cost_report",
    "tco",
    "tornado",
    "usd",
]

STEADY = 0  # a month with no one-off costs and the base contract discount
SCALES = [10 ** (k / 40) for k in range(-120, 121)]  # 0.001x to 1000x the declared users, 40 points a decade


def usd(v: Decimal | None) -> float | None:
    """Exact money as a JSON number (unrounded: rounding is for display)."""
    return None if v is None else float(v)


@dataclass(frozen=True)
class LimitCheck:
    """One constraint: the limit, the value, pass/fail and the margin (positive = room left)."""

    limit: float
    value: float | None
    ok: bool | None
    margin: float | None

    @classmethod
    def at_most(cls, limit: float | None, value: float | None) -> LimitCheck | None:
        if limit is None:
            return None
        if value is None:
            return cls(limit, None, None, None)
        return cls(limit, value, value <= limit, limit - value)

    def to_json(self) -> dict[str, Any]:
        return {"limit": self.limit, "value": self.value, "ok": self.ok, "margin": self.margin}


@dataclass(frozen=True)
class TargetCost:
    target: str
    architecture: Architecture
    workload: Workload  # as used: declared, or with measured tokens
    cost_per_interaction: Decimal
    cost_per_conversation: Decimal
    monthly: Decimal
    interactions: Decimal
    by_architecture: dict[str, Decimal]
    checks: dict[str, LimitCheck]
    measured: Measured | None = None
    units: int | None = None
    declared: Workload | None = None  # the config's workload, to tell measured tokens apart
    run_id: str | None = None  # the run measured figures came from

    def to_json(self) -> dict[str, Any]:
        budget, per_call = self.checks.get("monthly_budget_usd"), self.checks.get("max_cost_per_interaction_usd")
        latency = self.checks.get("p95_latency_ms")
        out: dict[str, Any] = {
            "architecture": self.architecture,
            "cost_per_interaction_usd": usd(self.cost_per_interaction),
            "cost_per_conversation_usd": usd(self.cost_per_conversation),
            "monthly_cost_usd": usd(self.monthly),
            "within_budget": budget.ok if budget else None,
            "meets_cost_per_interaction": per_call.ok if per_call else None,
            "meets_p95_latency": latency.ok if latency else None,
            "interactions_per_month": usd(self.interactions),
            "monthly_cost_by_architecture_usd": {k: usd(v) for k, v in self.by_architecture.items()},
            "checks": {k: v.to_json() for k, v in self.checks.items()},
            "tokens_per_turn": {
                "input_new": self.workload.input_tokens_per_turn,
                "output": self.workload.output_tokens_per_turn,
                "reasoning": self.workload.reasoning_tokens_per_turn,
                "cached_input_fraction": self.workload.cached_input_fraction,
                "source": "measured" if self.workload != self.declared else "declared",
                "run_id": self.run_id if self.workload != self.declared else None,
            },
        }
        if self.units is not None:
            out["units"] = self.units
        if self.measured is not None:
            out["measured"] = self.measured.to_json()
        return out


@dataclass(frozen=True)
class CostReport:
    workload: Workload
    targets: dict[str, TargetCost]
    run_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        v = volume(self.workload)
        out: dict[str, Any] = {
            "workload": {
                **self.workload.model_dump(),
                "conversations_per_month": usd(v.conversations),
                "interactions_per_month": usd(v.interactions),
                "peak_tokens_per_s": usd(v.peak_tokens_per_s),
            },
            "targets": {n: t.to_json() for n, t in self.targets.items()},
        }
        if self.run_id:
            out["run_id"] = self.run_id
        return out


def _workload(config: ProjectConfig) -> Workload:
    if config.workload is None:
        raise ConfigError(
            "the config has no `workload:` section; cost and TCO need one (users, turns, tokens per turn); "
            "see docs/COST.md"
        )
    return config.workload


def all_options(
    config: ProjectConfig, book: PriceBook, measured: dict[str, Measured] | None = None, measured_tokens: bool = False
) -> list[tuple[Option, Workload]]:
    """Every (target, architecture) the config prices, each with the workload it sees.

    With a run and `measured_tokens`, each target's tokens per turn are the run's: only right when the
    run's traffic *is* the workload (a probe's one short prompt says nothing about a workload's turns,
    though its latency and spend still count).
    """
    w = _workload(config)
    out = []
    for t in config.targets:
        m = (measured or {}).get(t.name)
        tw = with_measured_tokens(w, m) if m and measured_tokens else w
        for opt in options_for(t, book.prices.get(t.name), m.output_tokens_per_s if m else None):
            out.append((opt, tw))
    return out


def cost_report(
    config: ProjectConfig,
    book: PriceBook,
    measured: dict[str, Measured] | None = None,
    run_id: str | None = None,
    measured_tokens: bool = False,
) -> CostReport:
    """Each target on the architecture it is deployed on, checked against the constraints."""
    c = config.constraints
    by_target: dict[str, list[tuple[Option, Workload]]] = {}
    for opt, tw in all_options(config, book, measured, measured_tokens):
        by_target.setdefault(opt.target.name, []).append((opt, tw))
    out: dict[str, TargetCost] = {}
    for t in config.targets:
        opts = by_target.get(t.name, [])
        deployed = next(((o, tw) for o, tw in opts if o.architecture == t.deployment), None)
        if deployed is None:
            continue  # unreachable: the Target validator demands the block its deployment needs
        opt, tw = deployed
        month = opt.month_cost(tw, month=STEADY)
        vol = volume(tw)
        per_interaction = month.total / vol.interactions
        m = (measured or {}).get(t.name)
        checks = {
            "monthly_budget_usd": LimitCheck.at_most(c.monthly_budget_usd, usd(month.total)),
            "max_cost_per_interaction_usd": LimitCheck.at_most(c.max_cost_per_interaction_usd, usd(per_interaction)),
            "p95_latency_ms": LimitCheck.at_most(c.p95_latency_ms, m.p95_e2e_ms if m else None),
        }
        out[t.name] = TargetCost(
            target=t.name,
            architecture=opt.architecture,
            workload=tw,
            cost_per_interaction=per_interaction,
            cost_per_conversation=month.total / vol.conversations,
            monthly=month.total,
            interactions=vol.interactions,
            by_architecture={o.architecture: o.month_cost(ow, month=STEADY).total for o, ow in opts},
            checks={k: v for k, v in checks.items() if v is not None},
            measured=m,
            units=month.units,
            declared=_workload(config),
            run_id=run_id,
        )
    return CostReport(_workload(config), out, run_id)


def cost_curve(opt: Option, w: Workload, scales: Iterable[float] = SCALES) -> list[tuple[float, Decimal]]:
    """(users, steady monthly cost) across volumes."""
    dau = w.daily_active_users
    return [(s * dau, opt.month_cost(w, s, STEADY).total) for s in scales]


@dataclass(frozen=True)
class BreakEven:
    a: str
    b: str
    daily_active_users: float
    interactions_per_month: float
    cheaper_below: str  # which of a and b is cheaper just below this volume

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "daily_active_users": self.daily_active_users,
            "interactions_per_month": self.interactions_per_month,
            "cheaper_below": self.cheaper_below,
        }


def break_even(a: tuple[Option, Workload], b: tuple[Option, Workload]) -> list[BreakEven]:
    """Volumes (0.001x-1000x the declared users) where a and b cost the same; found by bisection.

    Capacity costs are steps, so two options can cross more than once; every crossing is listed.
    """
    (oa, wa), (ob, wb) = a, b

    def diff(s: float) -> Decimal:
        return oa.month_cost(wa, s, STEADY).total - ob.month_cost(wb, s, STEADY).total

    out = []
    prev_s, prev_d = SCALES[0], diff(SCALES[0])
    for s in SCALES[1:]:
        d = diff(s)
        if (prev_d < 0) != (d < 0) and prev_d != 0:
            lo, hi, dlo = prev_s, s, prev_d
            for _ in range(50):  # log-scale bisection: ~1e-15 relative width
                mid = math.sqrt(lo * hi)
                dm = diff(mid)
                if (dm < 0) == (dlo < 0) and dm != 0:
                    lo, dlo = mid, dm
                else:
                    hi = mid
            cross = math.sqrt(lo * hi)
            interactions = float(volume(wa, cross).interactions)
            below = oa.label if dlo < 0 else ob.label
            out.append(BreakEven(oa.label, ob.label, cross * wa.daily_active_users, interactions, below))
        prev_s, prev_d = s, d
    return out


def break_evens(options: list[tuple[Option, Workload]]) -> list[BreakEven]:
    return [x for i, a in enumerate(options) for b in options[i + 1 :] for x in break_even(a, b)]


@dataclass(frozen=True)
class TcoLine:
    label: str
    target: str
    architecture: Architecture
    monthly: list[Decimal]
    units: list[int | None] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum(self.monthly, Decimal(0))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "monthly_usd": [usd(v) for v in self.monthly],
            "total_usd": usd(self.total),
        }
        if any(u is not None for u in self.units):
            out["units"] = self.units
        return out


def tco(opt: Option, w: Workload, months: int) -> TcoLine:
    """Month-by-month cost with compound growth, contract discount steps and commitment terms.

    Provisioned units are fixed for each commitment term, sized for the largest month in it;
    self-hosted replicas follow demand month by month.
    """
    growth = dec(1 + w.monthly_growth)
    scales = [growth ** (m - 1) for m in range(1, months + 1)]
    term = opt.target.provisioned.term_months if opt.architecture == "provisioned" and opt.target.provisioned else 1
    costs: list[Decimal] = []
    units: list[int | None] = []
    for start in range(0, months, term):
        block = range(start, min(start + term, months))
        fixed = max((opt.units_needed(volume(w, scales[m])) for m in block), default=0) or None
        for m in block:
            c = opt.month_cost(w, scales[m], m + 1, units=fixed)
            costs.append(c.total)
            units.append(c.units)
    return TcoLine(opt.label, opt.target.name, opt.architecture, costs, units)


@dataclass(frozen=True)
class Swing:
    """TCO with one input moved down and up, the others held."""

    name: str
    low_value: float
    high_value: float
    tco_low: Decimal
    tco_high: Decimal

    @property
    def width(self) -> Decimal:
        return abs(self.tco_high - self.tco_low)

    def to_json(self) -> dict[str, Any]:
        return {
            "input": self.name,
            "low": self.low_value,
            "high": self.high_value,
            "tco_low_usd": usd(self.tco_low),
            "tco_high_usd": usd(self.tco_high),
        }


def _scaled_price(p: ModelPrice, f: Decimal) -> ModelPrice:
    def s(v: Decimal | None) -> Decimal | None:
        return None if v is None else v * f

    tiers = tuple(
        Tier(t.above_input_tokens, t.input * f, t.output * f, s(t.cached_input), s(t.cache_write)) for t in p.tiers
    )
    return replace(
        p,
        input=p.input * f,
        output=p.output * f,
        cached_input=s(p.cached_input),
        cache_write=s(p.cache_write),
        reasoning=s(p.reasoning),
        tiers=tiers,
    )


Variant = Callable[[Option, Workload, float], tuple[Option, Workload, float]]


def _workload_input(name: str, minimum: float = 0.0, whole: bool = False) -> Variant:
    def vary(o: Option, w: Workload, f: float) -> tuple[Option, Workload, float]:
        v = max(minimum, getattr(w, name) * f)
        v = max(minimum, round(v)) if whole else v
        return o, w.model_copy(update={name: v}), v

    return vary


def _growth(o: Option, w: Workload, f: float) -> tuple[Option, Workload, float]:
    # Zero growth has no relative swing; move it by ±1 point a month per 0.1 of swing instead.
    g = w.monthly_growth * f if w.monthly_growth else (f - 1) / 10
    return o, w.model_copy(update={"monthly_growth": g}), g


def _token_price(o: Option, w: Workload, f: float) -> tuple[Option, Workload, float]:
    assert o.price is not None
    return replace(o, price=_scaled_price(o.price, dec(f))), w, f


def _capacity(block: str, name: str) -> Variant:
    """Vary one field of the target's `provisioned` or `self_hosted` block."""

    def vary(o: Option, w: Workload, f: float) -> tuple[Option, Workload, float]:
        section = getattr(o.target, block)
        assert section is not None
        v = getattr(section, name) * f
        return replace(o, target=o.target.model_copy(update={block: section.model_copy(update={name: v})})), w, v

    return vary


def _throughput(o: Option, w: Workload, f: float) -> tuple[Option, Workload, float]:
    assert o.output_tokens_per_s is not None
    v = o.output_tokens_per_s * f
    return replace(o, output_tokens_per_s=v), w, v


def _variants(arch: Architecture) -> dict[str, Variant]:
    common: dict[str, Variant] = {
        "daily_active_users": _workload_input("daily_active_users", 1e-9),
        "turns_per_conversation": _workload_input("turns_per_conversation", 1, whole=True),
        "input_tokens_per_turn": _workload_input("input_tokens_per_turn"),
        "output_tokens_per_turn": _workload_input("output_tokens_per_turn"),
        "monthly_growth": _growth,
    }
    if arch == "serverless":
        return {**common, "token_price": _token_price}
    if arch == "provisioned":
        return {
            **common,
            "peak_to_average": _workload_input("peak_to_average", 1.0),
            "unit_hourly_usd": _capacity("provisioned", "unit_hourly_usd"),
            "unit_tokens_per_s": _capacity("provisioned", "unit_tokens_per_s"),
        }
    return {
        **common,
        "peak_to_average": _workload_input("peak_to_average", 1.0),
        "gpu_hourly_usd": _capacity("self_hosted", "gpu_hourly_usd"),
        "output_tokens_per_s": _throughput,
        "engineering_hourly_usd": _capacity("self_hosted", "engineering_hourly_usd"),
    }


def tornado(opt: Option, w: Workload, months: int, swing: float) -> list[Swing]:
    """TCO sensitivity: each main input moved by ±`swing` alone; widest bar first."""
    out = []
    for name, vary in _variants(opt.architecture).items():
        lo_o, lo_w, lo_v = vary(opt, w, 1 - swing)
        hi_o, hi_w, hi_v = vary(opt, w, 1 + swing)
        out.append(Swing(name, lo_v, hi_v, tco(lo_o, lo_w, months).total, tco(hi_o, hi_w, months).total))
    return sorted(out, key=lambda s: s.width, reverse=True)
