"""The scorecard's cost section: what the config's workload costs on each target, beside what the run measured."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assay.catalog import Catalog, PriceBook
from assay.config import ProjectConfig
from assay.economics import (
    BreakEven,
    CostReport,
    Measured,
    Option,
    TcoLine,
    all_options,
    break_evens,
    cost_curve,
    cost_report,
    tco,
    volume,
)
from assay.errors import AssayError

__all__ = ["CostRow", "CostView", "build_cost_view"]


@dataclass
class CostRow:
    name: str
    colour: str
    architecture: str
    per_interaction: float
    monthly: float
    within_budget: bool | None
    meets_per_interaction: bool | None
    measured_per_success: float | None
    p95_ms: float | None
    best_tco_label: str
    best_tco: float


@dataclass
class CostView:
    workload_text: str
    constraints_text: list[str]
    rows: list[CostRow]
    months: int
    break_even_text: list[str]
    plots: dict[str, str] = field(default_factory=dict)
    unpriced: list[str] = field(default_factory=list)  # targets left out: no price known


def _workload_text(report: CostReport) -> str:
    w = report.workload
    v = volume(w)
    return (
        f"{w.daily_active_users:,.0f} users/day · {w.turns_per_conversation}-turn conversations "
        f"(history {w.history}) · {w.input_tokens_per_turn:,.0f} in / {w.output_tokens_per_turn:,.0f} out tokens "
        f"a turn · {float(v.interactions):,.0f} interactions/month · peak {w.peak_to_average:g}× average"
    )


def _constraints_text(config: ProjectConfig) -> list[str]:
    c = config.constraints
    out = []
    if c.monthly_budget_usd is not None:
        out.append(f"budget ${c.monthly_budget_usd:,.0f}/month")
    if c.max_cost_per_interaction_usd is not None:
        out.append(f"≤ ${c.max_cost_per_interaction_usd:g} per interaction")
    if c.p95_latency_ms is not None:
        out.append(f"p95 ≤ {c.p95_latency_ms:,.0f} ms")
    return out


def _break_even_text(evens: list[BreakEven]) -> list[str]:
    firsts: dict[tuple[str, str], BreakEven] = {}
    for b in evens:
        firsts.setdefault((b.a, b.b), b)
    ordered = sorted(firsts.values(), key=lambda b: b.daily_active_users)
    return [
        f"{b.a} and {b.b} cost the same at {b.daily_active_users:,.0f} users/day; below it {b.cheaper_below} is cheaper"
        for b in ordered
    ]


def build_cost_view(
    config: ProjectConfig,
    catalog: Catalog,
    measured: dict[str, Measured],
    colours: dict[str, str],
) -> CostView | None:
    """None when the config has no workload to price."""
    if config.workload is None:
        return None
    book, missing = PriceBook.known(config.targets, catalog)
    if missing:  # the section prices what it can, and says what it left out
        config = config.model_copy(update={"targets": [t for t in config.targets if t.name not in missing]})
        if not config.targets:
            return None
    try:
        book = PriceBook.for_targets(config.targets, catalog)
        # Declared tokens (a probe's one prompt is not the workload's turns); measured latency and spend.
        report = cost_report(config, book, measured, measured_tokens=False)
        options = all_options(config, book)
    except AssayError:
        return None  # the run's config no longer prices (catalog changed): the scorecard goes on without costs
    months = config.tco.months
    lines = [tco(o, w, months) for o, w in options]
    evens = break_evens(options)
    rows = []
    for name, t in report.targets.items():
        mine = [ln for ln in lines if ln.target == name]
        best = min(mine, key=lambda ln: ln.total)
        m = t.measured
        rows.append(
            CostRow(
                name=name,
                colour=colours.get(name, "#64748b"),
                architecture=t.architecture.replace("_", "-"),
                per_interaction=float(t.cost_per_interaction),
                monthly=float(t.monthly),
                within_budget=b.ok if (b := t.checks.get("monthly_budget_usd")) else None,
                meets_per_interaction=c.ok if (c := t.checks.get("max_cost_per_interaction_usd")) else None,
                measured_per_success=m.cost_per_success_usd if m else None,
                p95_ms=m.p95_e2e_ms if m else None,
                best_tco_label=best.architecture.replace("_", "-"),
                best_tco=float(best.total),
            )
        )
    view = CostView(_workload_text(report), _constraints_text(config), rows, months, _break_even_text(evens))
    view.unpriced = list(missing)
    view.plots = _plots(options, lines, evens, rows, config, colours)
    return view


def _plots(
    options: list[tuple[Option, Any]],
    lines: list[TcoLine],
    evens: list[BreakEven],
    rows: list[CostRow],
    config: ProjectConfig,
    colours: dict[str, str],
) -> dict[str, str]:
    from assay.report import plots

    assert config.workload is not None
    dau = config.workload.daily_active_users
    scales = [10 ** (k / 20) for k in range(-40, 41)]  # 0.01x to 100x the declared users
    curves = {o.label: (o.target.name, o.architecture, cost_curve(o, w, scales)) for o, w in options}
    out = {
        "volume": plots.cost_volume_svg(curves, evens, dau, colours, config.constraints.monthly_budget_usd),
        "tco": plots.tco_svg(lines, colours),
    }
    points = [(r.name, r.per_interaction, r.p95_ms) for r in rows if r.p95_ms is not None]
    if points:
        out["latency"] = plots.cost_latency_svg(points, colours, config.constraints.p95_latency_ms)
    return out
