"""The one-page scorecard of a probe run: a view model shared by the HTML and Markdown renderers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from assay.catalog import load_catalog
from assay.config import SLO, ProjectConfig, state_dir
from assay.economics import Measured
from assay.errors import ERROR_CLASSES, ConfigError
from assay.report import plots
from assay.report.costs import CostView, build_cost_view
from assay.report.decision import DecisionView, build_decision_view
from assay.report.finetune import FinetuneView, build_finetune_view
from assay.report.formats import ms, pct_sign, plural, rate, usd_text
from assay.report.load import LoadView, build_load_view
from assay.report.quality import QualityView, build_quality_view
from assay.report.safety import SafetyView, build_safety_view
from assay.stats import LATENCY_TIERS, TargetSummary
from assay.store import RunInfo, Store
from assay.suites.traffic import run_summaries

__all__ = ["Row", "Scorecard", "build_scorecard", "render_html", "render_markdown", "write_report"]


@dataclass
class Row:
    """One target's line in the table, already formatted for reading."""

    name: str
    model: str
    api: str
    host: str
    colour: str
    tier: str | None
    success_rate: float | None
    uptime_pct: float | None
    summary: TargetSummary
    slo_checks: dict[str, bool | None] = field(default_factory=dict)

    @property
    def uptime_share(self) -> float | None:
        return None if self.uptime_pct is None else self.uptime_pct / 100

    @property
    def passes_slo(self) -> bool | None:
        checked = [v for v in self.slo_checks.values() if v is not None]
        return all(checked) if checked else None


@dataclass
class Scorecard:
    run: RunInfo
    rows: list[Row]
    headline: list[str]
    slo: SLO
    plots: dict[str, str]
    prompt: str
    error_classes: tuple[str, ...] = ERROR_CLASSES
    cost: CostView | None = None
    quality: QualityView | None = None
    safety: SafetyView | None = None
    load: LoadView | None = None
    decision: DecisionView | None = None
    finetune: FinetuneView | None = None

    @property
    def slo_text(self) -> list[str]:
        """The objectives as a person reads them, with the percentile checked: 'TTFT p90 ≤ 800 ms', 'success ≥ 99%'."""
        return _slo_words(self.slo).split(", ") if self.has_slo else []

    @property
    def has_slo(self) -> bool:
        return bool(self.slo.bounds) or self.slo.success_rate is not None

    @property
    def title(self) -> str:
        """What the page covers, e.g. "Reliability, latency, quality, safety & cost scorecard"."""
        if self.load:
            return "Load & latency scorecard"
        parts = ["Reliability", "latency"] + [name for name, view in
                 (("quality", self.quality), ("safety", self.safety), ("cost", self.cost)) if view]  # fmt: skip
        return ", ".join(parts[:-1]) + " & " + parts[-1] + " scorecard"

    @property
    def size_text(self) -> str:
        """'3 targets · 40 requests each' (probe) or '3 targets · 300 items each' (eval)."""
        n = max((r.summary.requests for r in self.rows), default=0)
        unit = "item" if self.run.kind == "eval" else "request"
        targets = plural(len(self.rows), "target")
        if self.run.kind in ("load", "gateway"):
            return f"{targets} · {plural(sum(r.summary.requests for r in self.rows), 'request')}"
        return f"{targets} · {plural(n, unit)}" + (" each" if len(self.rows) > 1 else "")

    @property
    def setup_text(self) -> str:
        p = self.run.params
        if self.run.kind == "load" and self.load is not None:
            slo = ", ".join(f"{k} ≤ {v:g}" for k, v in self.load.slo.items()) or "none"
            return f"Load: {self.load.mode} · SLO for goodput (per request; failures miss): {slo}"
        if self.run.kind == "gateway":
            routes = self.run.config.get("gateway", {}).get("routes", [])
            said = ", ".join(f"{r['model']} ({r['policy']}: {' → '.join(r['targets'])})" for r in routes)
            return f"Gateway traffic, every upstream attempt · routes: {said}"
        if self.run.kind == "eval":
            suites = ", ".join(
                s["name"] for s in self.run.config.get("suites", []) if not p.get("suites") or s["name"] in p["suites"]
            )
            return f"Suites: {suites} · concurrency {p.get('concurrency')} per target · retries {p.get('retries')}"
        if self.run.kind == "finetune":
            return (f"Fine-tuning job: {p.get('file')} on {p.get('model') or 'the target model'} · every files and "
                    f"jobs API call is a request here · polled every {p.get('poll_s')} s · retries {p.get('retries')}")
        stream = "streaming" if p.get("stream", True) else "non-streaming"
        prompt = self.prompt if len(self.prompt) <= 110 else self.prompt[:109] + "…"
        how = f"concurrency {p.get('concurrency')} per target · retries {p.get('retries')}"
        return f"Prompt: “{prompt}” · {stream} · {how}"

    @property
    def created(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.run.created_s))


def _slo_checks(s: TargetSummary, slo: SLO) -> dict[str, bool | None]:
    """Each latency bound against the measured percentile `slo.percentile` of successful requests, and the
    success rate; None when not set or not measured."""
    checks: dict[str, bool | None] = {}
    for key, metric in (("ttft_ms", s.ttft), ("e2e_ms", s.e2e), ("tpot_ms", s.tpot)):
        bound, value = getattr(slo, key), metric.p[slo.percentile]
        checks[key] = None if bound is None or value is None else value <= bound
    rate_ = s.success_rate
    checks["success_rate"] = None if slo.success_rate is None or rate_ is None else rate_ >= slo.success_rate
    return checks


def _headline(rows: list[Row], slo: SLO) -> list[str]:
    measured = [r for r in rows if r.summary.succeeded]
    if not measured:
        return ["No target answered successfully."]
    out = []
    if len(rows) == 1:  # nothing to compare: say what was measured
        r = rows[0]
        p90 = r.summary.ttft.p["p90"]
        out.append(f"{r.name}: {pct_sign(r.success_rate)} success, TTFT p90 {ms(p90)} ms, E2E p90 "
                   f"{ms(r.summary.e2e.p['p90'])} ms.")  # fmt: skip
    else:
        best = max(measured, key=lambda r: (r.success_rate or 0, r.uptime_pct or 0))
        out.append(f"Most reliable: {best.name} ({pct_sign(best.success_rate or 0)} success).")
        fastest = min(measured, key=lambda r: r.summary.ttft.p["p90"] or float("inf"))
        out.append(f"Fastest first token: {fastest.name} (p90 {ms(fastest.summary.ttft.p['p90'])} ms).")
        quickest = min(measured, key=lambda r: r.summary.e2e.p["p90"] or float("inf"))
        out.append(f"Fastest full answer: {quickest.name} (p90 {ms(quickest.summary.e2e.p['p90'])} ms).")
    passing = [r.name for r in rows if r.passes_slo]
    if any(r.passes_slo is not None for r in rows):
        # Named for what it checks, so it does not read as "meets every objective" beside quality and safety.
        checks = " & ".join(k for k, on in (("latency", slo.bounds), ("success", slo.success_rate is not None)) if on)
        out.append(f"Within the {checks} SLO ({_slo_words(slo)}): {', '.join(passing) if passing else 'none'}.")
    return out


def _slo_words(slo: SLO) -> str:
    """'TTFT p90 ≤ 800 ms, success ≥ 99%': what the pass/fail checks, in the page's words."""
    names = {"ttft_ms": "TTFT", "e2e_ms": "E2E", "tpot_ms": "TPOT"}
    parts = [f"{names[k]} {slo.percentile} ≤ {v:g} ms" for k, v in slo.bounds.items()]
    if slo.success_rate is not None:
        parts.append(f"success ≥ {slo.success_rate * 100:g}%")
    return ", ".join(parts)


def build_scorecard(run: RunInfo, summaries: dict[str, TargetSummary]) -> Scorecard:
    targets = {t["name"]: t for t in run.config.get("targets", [])}
    slo = SLO.model_validate(run.config.get("slo") or {})
    rows = []
    for i, (name, s) in enumerate(summaries.items()):
        t = targets.get(name, {})
        url = str(t.get("base_url", ""))
        rows.append(
            Row(
                name=name,
                model=str(t.get("model", "?")),
                api=str(t.get("api", "?")),
                host=url.split("://", 1)[-1].split("/", 1)[0],
                colour=plots.PALETTE[i % len(plots.PALETTE)],
                tier=s.tier,
                success_rate=s.success_rate,
                uptime_pct=s.uptime_pct,
                summary=s,
                slo_checks=_slo_checks(s, slo),
            )
        )
    ordered = list(summaries.values())
    figures = {
        "cdf": plots.latency_cdf_svg(ordered),
        "errors": plots.error_bars_svg(ordered),
        "uptime": plots.uptime_svg(ordered),
    }
    return Scorecard(run, rows, _headline(rows, slo), slo, figures, str(run.params.get("prompt", "")))


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("assay.report", "templates"),
    autoescape=jinja2.select_autoescape(["html.j2"], default=False),  # Markdown is not HTML: no &amp;
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)


_ENV.filters.update(ms=ms, pct=pct_sign, usd=usd_text, rate=rate)
_ENV.globals.update(tiers=LATENCY_TIERS, inf=float("inf"))


def render_html(card: Scorecard) -> str:
    return _ENV.get_template("scorecard.html.j2").render(card=card)


def render_markdown(card: Scorecard) -> str:
    return _ENV.get_template("scorecard.md.j2").render(card=card)


def cost_view(store: Store, run: RunInfo, colours: dict[str, str]) -> CostView | None:
    """The cost section, when the run's config declares a workload."""
    if not run.config.get("workload"):
        return None
    config = ProjectConfig.model_validate(run.config)
    measured = {n: Measured.from_summary(s) for n, s in run_summaries(store, run.run_id).items()}
    return build_cost_view(config, load_catalog(state_dir()), measured, colours)


def page_decision(store: Store, run: RunInfo, others: list[str | None], card: Scorecard) -> dict[str, Any] | None:
    """The decision the run's config asks for, over the page's own runs; a chip says why when it cannot be made."""
    from assay.decide import decide_runs, resolve_runs
    from assay.decide.sources import needed_kinds

    config = ProjectConfig.model_validate(run.config)
    page = [run.run_id, *(r for r in others if r)]
    kinds = {store.run(r).kind for r in page}
    try:  # the page's runs; for a kind it lacks, those `decision.runs` names, else the newest of the same config
        named = resolve_runs(store, config.decision.runs if config.decision else [], needed_kinds(config))
        for kind in needed_kinds(config):
            if kind in kinds:
                continue
            if kind in named:
                page.append(named[kind].run_id)
            elif (same := store.latest_of(kind, run.config_hash)) is not None:
                page.append(same)
        decision, _ = decide_runs(store, page, config)
    except ConfigError as e:
        card.headline.insert(0, f"No decision: {e}")
        return None
    return decision.to_json()


def write_report(
    store: Store,
    run_id: str,
    out_dir: Path,
    summaries: dict[str, TargetSummary],
    quality_run: str | None = None,
    safety_run: str | None = None,
    decision: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write index.html and scorecard.md into `out_dir`; files appear whole or not at all.

    An eval run gets a quality section, a red-team run a safety section; `quality_run` and
    `safety_run` add them from other runs (the demo's probe, eval and red-team share one page).
    A `decision` (what `assay decide --json` prints) puts its section first and its chips in the headline.
    """
    run = store.run(run_id)
    card = build_scorecard(run, summaries)
    if run.kind == "load":
        card.load = build_load_view(run, store, {r.name: r.colour for r in card.rows})
    eval_run = run_id if run.kind == "eval" else quality_run
    if eval_run is not None:
        from assay.suites.quality import summarize_run as summarize_eval_run

        colours = {r.name: r.colour for r in card.rows}
        card.quality = build_quality_view(summarize_eval_run(store, eval_run), colours)
        if pair := store.run(eval_run).params.get("finetune"):  # an eval `assay finetune compare` ran
            from assay.suites.finetune_compare import compare_finetune

            compared = compare_finetune(store, eval_run, pair["base"], pair["tuned"], pair["suite"],
                                        training_usd=pair.get("training_usd"), training_run=pair.get("training_run"),
                                        months=pair.get("months") or 12)  # fmt: skip
            card.finetune = build_finetune_view(compared)
    red_run = run_id if run.kind == "redteam" else safety_run
    if red_run is not None:
        from assay.config import ProjectConfig
        from assay.suites.safety import summarize_conversations
        from assay.suites.safety import summarize_run as summarize_redteam_run

        settings = ProjectConfig.model_validate(store.run(red_run).config).safety
        colours = {r.name: r.colour for r in card.rows}
        card.safety = build_safety_view(summarize_redteam_run(store, red_run), settings, colours,
                                        summarize_conversations(store, red_run))  # fmt: skip
    card.cost = cost_view(store, run, {r.name: r.colour for r in card.rows})
    if decision is None and run.config.get("decision"):
        decision = page_decision(store, run, [quality_run, safety_run], card)
    if decision is not None:
        # The decision replaces the headline: "most reliable" or "cheapest" beside a recommendation would be
        # read as a second verdict, and its chips carry the gates and caveats the old ones left out.
        card.decision = build_decision_view(decision, {r.name: r.colour for r in card.rows})
        card.headline = list(card.decision.chips)
    elif card.cost and card.cost.rows:
        cheapest = min(card.cost.rows, key=lambda r: r.monthly)
        card.headline.append(f"Cheapest for the workload: {cheapest.name} ({usd_text(cheapest.monthly)}/month).")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"html": out_dir / "index.html", "markdown": out_dir / "scorecard.md"}
    for kind, text in (("html", render_html(card)), ("markdown", render_markdown(card))):
        tmp = paths[kind].with_suffix(paths[kind].suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(paths[kind])
    return paths
