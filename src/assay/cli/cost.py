"""`assay cost` and `assay tco`: what the workload costs on each target, now and over the years."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.table import Table
from rich.text import Text

from assay.catalog import PriceBook, load_catalog
from assay.cli.console import new_table, out, show_table
from assay.cli.project import load_project
from assay.config import ProjectConfig, state_dir
from assay.economics import (
    BreakEven,
    CostReport,
    LimitCheck,
    Measured,
    TcoLine,
    all_options,
    break_evens,
    cost_report,
    tco,
    tornado,
    volume,
)
from assay.errors import ConfigError
from assay.report.formats import usd_text
from assay.store import Store
from assay.suites.traffic import run_summaries

ConfigOpt = typer.Option(Path("assay.yaml"), "-c", "--config", help="Project file with `workload:`.")
RunOpt = typer.Option(None, "--run", help="Add a run's measured spend, latency and throughput (RUN_ID or 'latest').")
MeasuredTokensOpt = typer.Option(
    False,
    "--measured-tokens",
    help="Price the workload with the run's measured tokens per request (only when the run's traffic IS the workload).",
)
JsonOpt = typer.Option(False, "--json", help="Print exactly one JSON object on stdout.")


def _inputs(
    config: Path, run: str | None, measured_tokens: bool
) -> tuple[ProjectConfig, PriceBook, dict[str, Measured] | None, str | None]:
    cfg = load_project(config, priced=True)
    book = PriceBook.for_targets(cfg.targets, load_catalog(state_dir()))
    if run is None:
        if measured_tokens:
            raise ConfigError("--measured-tokens needs --run: the run whose tokens per request to use")
        return cfg, book, None, None
    with Store(state_dir() / "assay.db") as store:
        info = store.run(run)
        measured = {n: Measured.from_summary(s) for n, s in run_summaries(store, info.run_id).items()}
    return cfg, book, measured, info.run_id


def _check(c: LimitCheck | None, fmt: Any) -> Text:
    if c is None:
        return Text("–", style="dim")
    if c.ok is None:
        return Text("not measured", style="dim")
    mark, style = ("✓", "green") if c.ok else ("✗", "red")
    return Text(f"{mark} {fmt(c.value)}", style=style)


def cost_table(report: CostReport) -> Table:
    w = report.workload
    v = volume(w)
    title = (
        f"cost · {w.daily_active_users:,.0f} users/day · {w.turns_per_conversation}-turn conversations "
        f"(history {w.history}) · {float(v.interactions):,.0f} interactions/month"
    )
    table = new_table(title)
    for col, just in (
        ("target", "left"),
        ("on", "left"),
        ("$/interaction", "right"),
        ("$/conversation", "right"),
        ("$/month", "right"),
        ("budget", "right"),
        ("≤ $/interaction", "right"),
        ("p95 latency", "right"),
    ):
        # Never wrapped: a terminal too narrow for the table gets one block per target (show_table).
        table.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
    measured = [name for name, t in report.targets.items() if t.declared is not None and t.workload != t.declared]
    for name, t in report.targets.items():
        table.add_row(
            name + (" *" if name in measured else ""),
            t.architecture.replace("_", "-"),
            usd_text(float(t.cost_per_interaction)),
            usd_text(float(t.cost_per_conversation)),
            Text(usd_text(float(t.monthly)), style="bold"),
            _check(t.checks.get("monthly_budget_usd"), usd_text),
            _check(t.checks.get("max_cost_per_interaction_usd"), usd_text),
            _check(t.checks.get("p95_latency_ms"), lambda ms: f"{ms:,.0f} ms"),
        )
    names = {
        "monthly_budget_usd": lambda v: f"budget {usd_text(v)}/month",
        "max_cost_per_interaction_usd": lambda v: f"at most {usd_text(v)} per interaction",
        "p95_latency_ms": lambda v: f"p95 latency at most {v:,.0f} ms",
    }
    c = [names[k](v.limit) for k, v in _limits(report).items()]
    table.caption = "constraints: " + ("; ".join(c) if c else "none set (add `constraints:` to the config)")
    if measured:
        table.caption += f"\n* tokens per turn measured in run {report.run_id}, not declared"
    table.caption_justify = "left"
    return table


def _limits(report: CostReport) -> dict[str, LimitCheck]:
    out_: dict[str, LimitCheck] = {}
    for t in report.targets.values():
        for k, c in t.checks.items():
            out_.setdefault(k, c)
    return out_


def cost(
    config: Path = ConfigOpt,
    run: str | None = RunOpt,
    measured_tokens: bool = MeasuredTokensOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Cost per interaction, per conversation and per month for each target; budget checks."""
    cfg, book, measured, run_id = _inputs(config, run, measured_tokens)
    report = cost_report(cfg, book, measured, run_id, measured_tokens=measured_tokens)
    if as_json:
        data = report.to_json()
        if run_id:
            data["run_id"] = run_id
        sys.stdout.write(orjson.dumps(data).decode() + "\n")
        return
    show_table(cost_table(report))
    for name, t in report.targets.items():
        alt = {a: c for a, c in t.by_architecture.items() if a != t.architecture}
        others = [f"{a.replace('_', '-')} {usd_text(float(c))}" for a, c in alt.items()]
        if others:
            out.print(f"  {name} bought another way, per month: {', '.join(others)}", highlight=False)
    if run_id:
        tokens = f"tokens per turn measured in run {run_id}" if measured_tokens else "tokens per turn as declared"
        out.print(f"[dim]{tokens}; spend and p95 latency measured in run {run_id}[/]")


def tco_json(
    lines: list[TcoLine], evens: list[BreakEven], swings: dict[str, list[Any]], months: int, cfg: ProjectConfig
) -> dict[str, Any]:
    targets: dict[str, dict[str, Any]] = {}
    for line in lines:
        entry = line.to_json()
        entry["break_even"] = [
            {**b.to_json(), "vs": b.b if b.a == line.label else b.a} for b in evens if line.label in (b.a, b.b)
        ]
        entry["sensitivity"] = [s.to_json() for s in swings[line.label]]
        targets.setdefault(line.target, {})[line.architecture] = entry
    cheapest = min(lines, key=lambda x: x.total)
    assert cfg.workload is not None
    return {
        "months": months,
        "workload": cfg.workload.model_dump(),
        "cheapest": cheapest.label,
        "targets": targets,
        "break_even": [b.to_json() for b in evens],
    }


def break_even_lines(evens: list[BreakEven]) -> list[str]:
    """One line per pair: where they first cross and, past any capacity steps, which wins for good."""
    pairs: dict[tuple[str, str], list[BreakEven]] = {}
    for b in evens:
        pairs.setdefault((b.a, b.b), []).append(b)
    lines = []
    for (a, other), xs in pairs.items():
        first, last = xs[0], xs[-1]
        above = other if last.cheaper_below == a else a
        text = (
            f"{a} vs {other}: {first.cheaper_below} is cheaper up to {first.daily_active_users:,.0f} users/day "
            f"({first.interactions_per_month:,.0f} interactions/month)"
        )
        if len(xs) > 1:
            text += (
                f"; they cross {len(xs) - 1} more time(s) as capacity comes in whole units, "
                f"and above {last.daily_active_users:,.0f} users/day {above} stays cheaper"
            )
        lines.append(text)
    return lines


def tco_table(lines: list[TcoLine], months: int) -> Table:
    marks = sorted({1, 12, 24, 36, months} & set(range(1, months + 1)))
    cheapest = min(lines, key=lambda x: x.total).label
    table = new_table(
        f"total cost of ownership · {months} months",
        "monthly cost in the given month; units = provisioned units or GPU replicas",
    )
    table.add_column("option", no_wrap=True)
    for m in marks:
        table.add_column(f"month {m}", justify="right", no_wrap=True)
    table.add_column("units", justify="right", no_wrap=True)
    table.add_column(f"total {months} mo", justify="right", no_wrap=True)
    for line in sorted(lines, key=lambda x: x.total):
        units = [u for u in line.units if u is not None]
        span = "–" if not units else (str(units[0]) if min(units) == max(units) else f"{min(units)}→{max(units)}")
        style = "bold green" if line.label == cheapest else ""
        table.add_row(
            Text(line.label + ("  ← cheapest" if line.label == cheapest else ""), style=style),
            *(usd_text(float(line.monthly[m - 1])) for m in marks),
            span,
            Text(usd_text(float(line.total)), style=style or "bold"),
        )
    return table


def tco_cmd(
    config: Path = ConfigOpt,
    months: int | None = typer.Option(None, "--months", min=1, max=120, help="Horizon (default: config, 36)."),
    run: str | None = RunOpt,
    measured_tokens: bool = MeasuredTokensOpt,
    as_json: bool = JsonOpt,
) -> None:
    """TCO per target and architecture, break-even volumes, and which inputs move the total most."""
    cfg, book, measured, run_id = _inputs(config, run, measured_tokens)
    horizon = months or cfg.tco.months
    options = all_options(cfg, book, measured, measured_tokens)
    lines = [tco(o, w, horizon) for o, w in options]
    evens = break_evens(options)
    swings = {o.label: tornado(o, w, horizon, cfg.tco.sensitivity) for o, w in options}
    if as_json:
        data = tco_json(lines, evens, swings, horizon, cfg)
        if run_id:
            data["run_id"] = run_id
        sys.stdout.write(orjson.dumps(data).decode() + "\n")
        return
    show_table(tco_table(lines, horizon))
    if evens:
        out.print("[bold]break-even volumes[/] (a steady month)")
        for line in break_even_lines(evens):
            out.print("  " + line, highlight=False)
    else:
        out.print("[dim]no break-even between 0.001x and 1000x the declared users: the order never changes[/]")
    cheapest = min(lines, key=lambda x: x.total).label
    top = swings[cheapest][:4]
    if top:
        pct = int(cfg.tco.sensitivity * 100)
        parts = [f"{s.name} {usd_text(float(s.tco_low))}–{usd_text(float(s.tco_high))}" for s in top]
        out.print(f"[bold]sensitivity[/] of {cheapest}'s TCO to ±{pct}%: " + "; ".join(parts), highlight=False)
