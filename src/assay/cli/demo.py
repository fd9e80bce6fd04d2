"""`assay demo`: the whole probe-to-scorecard path against three simulated vendors, offline."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from assay.catalog import PriceBook, load_catalog
from assay.cli.console import failure_lines, out, probe_table, show_table
from assay.cli.cost import cost_table
from assay.cli.decide import decision_json, show_decision
from assay.cli.eval import comparison_lines, eval_table
from assay.cli.eval import run_with_progress as run_eval_with_progress
from assay.cli.probe import run_with_progress
from assay.cli.project import load_project
from assay.cli.redteam import redteam_table, summary_lines
from assay.cli.redteam import run_with_progress as run_redteam_with_progress
from assay.config import state_dir
from assay.datasets import data_dir
from assay.decide import decide_runs
from assay.economics import Measured, cost_report
from assay.simulator import SimulatorProcess, builtin_spec
from assay.store import Store
from assay.suites.probe import ProbeOptions
from assay.suites.quality import EvalOptions
from assay.suites.quality import summarize_run as summarize_eval_run
from assay.suites.safety import RedteamOptions, default_suites
from assay.suites.safety import summarize_run as summarize_redteam_run

# The demo's simulated vendors stop with it, so an interrupted demo cannot be resumed: it is run again.
AGAIN = "the demo's simulated vendors stopped with it; run `assay demo` again"
# Which API each demo vendor speaks, to show both protocols in one run.
_DEMO_APIS = {"swift": "openai", "meridian": "openai", "atlas": "anthropic"}
# Other ways to buy two of them, so the TCO compares all three architectures.
_DEMO_CAPACITY = {
    "meridian": [
        "    self_hosted:           # its open weights on your own GPUs",
        "      gpu: L40S-48GB",
        "      gpu_hourly_usd: 1.20",
        "      output_tokens_per_s: 1500",
        "      min_replicas: 2",
        "      engineering_hours_per_month: 10",
        "      engineering_hourly_usd: 100",
    ],
    "atlas": [
        "    provisioned:           # reserved capacity, 12-month term",
        "      unit_hourly_usd: 4.00",
        "      unit_tokens_per_s: 3000",
        "      term_months: 12",
    ],
}


# What each simulated vendor documents (invented, like the vendors); the scorecard flags the gaps.
DEMO_EVIDENCE = [
    "safety:",
    "  evidence:",
    "    swift:",
    "      model_card: https://swift.example/model-card",
    "      retention_days: 30",
    "      trains_on_data: true",
    "    meridian:",
    "      model_card: https://meridian.example/cards/m2",
    "      content_filter: configurable, four levels",
    "      certifications: [SOC 2 Type II]",
    "      data_residency: [EU, US]",
    "      retention_days: 0",
    "      trains_on_data: false",
    "    atlas:",
    "      model_card: https://atlas.example/system-card",
    "      content_filter: on by default, cannot be turned off",
    "      incident_response: notify within 72 h",
    "      certifications: [SOC 2 Type II, ISO 27001]",
    "      data_residency: [US]",
    "      retention_days: 30",
    "      trains_on_data: false",
]


def demo_suites(with_public_data: bool) -> list[str]:
    """The demo's quality suites: the bundled set always; GSM8K and MMLU-Redux when local copies exist."""
    lines = ["suites:", "  - {name: qa, dataset: demo-qa, scorer: contains}"]
    if with_public_data:
        lines += [
            "  - {name: math, dataset: gsm8k, scorer: numeric, limit: 60, few_shot: 2}",
            "  - {name: mmlu, dataset: mmlu-redux, scorer: choice, sample: 120, seed: 1}",
        ]
    return lines


def demo_decision(with_public_data: bool) -> list[str]:
    """How the demo's buyer decides: quality first, within budget and a success floor (docs/DECIDE.md)."""
    quality = "eval.mmlu.score" if with_public_data else "eval.qa.score"
    return [
        "decision:                 # `assay decide` and the scorecard's first section",
        "  criteria:",
        f"    - {{name: quality, metric: {quality}, weight: 0.35, direction: max}}",
        "    - {name: latency, metric: probe.ttft_ms.p90, weight: 0.2, direction: min, must: {max: 2000}}",
        "    - {name: reliability, metric: probe.success_rate, weight: 0.15, direction: max, must: {min: 0.9}}",
        "    - {name: cost, metric: cost.monthly_cost_usd, weight: 0.2, direction: min, must: {max: 1500}}",
        "    - {name: safety, metric: redteam.safety_score, weight: 0.1, direction: max}",
        "  datum: meridian          # the Pugh matrix's baseline",
    ]


def demo_config_text(urls: dict[str, str], with_public_data: bool = False) -> str:
    """A project file pointing at the running simulated vendors."""
    lines = ["# Written by `assay demo`: three simulated vendors on loopback ports.", "targets:"]
    for vendor in builtin_spec().vendors:
        api = _DEMO_APIS.get(vendor.name, "openai")
        base = urls[vendor.name] + ("/v1" if api == "openai" else "")
        model = vendor.models[0]
        lines += [
            f"  - name: {vendor.name}            # {vendor.description}",
            f"    api: {api}",
            f"    base_url: {base}",
            f"    model: {model.name}",
        ]
        if model.list_price is not None:  # what the simulated vendor publishes
            lp = model.list_price
            lines.append(f"    pricing: {{input_per_mtok: {lp.input_per_mtok}, output_per_mtok: {lp.output_per_mtok}}}")
        lines += _DEMO_CAPACITY.get(vendor.name, [])
    lines += [
        "probe:",
        "  timeout_s: 10",
        "  first_token_timeout_s: 5",
        "  idle_timeout_s: 3",
        "slo:",
        "  ttft_ms: 800",
        "  e2e_ms: 4000",
        "  success_rate: 0.95",
        "workload:                  # a support chatbot",
        "  daily_active_users: 2000",
        "  turns_per_conversation: 4",
        "  input_tokens_per_turn: 250",
        "  output_tokens_per_turn: 120",
        "  history: full",
        "  peak_to_average: 3",
        "  monthly_growth: 0.04",
        "constraints:",
        "  monthly_budget_usd: 1500",
        "  max_cost_per_interaction_usd: 0.01",
        "  p95_latency_ms: 4000",
        *demo_suites(with_public_data),
        *DEMO_EVIDENCE,
        *demo_decision(with_public_data),
        "",
    ]
    return "\n".join(lines)


def demo(
    out_dir: Path = typer.Option(Path("reports/demo"), "--out", "-o", help="Where the scorecard goes."),
    requests: int = typer.Option(80, "--requests", "-n", min=1, help="Requests per vendor."),
    concurrency: int = typer.Option(8, "--concurrency", min=1),
    seed: int = typer.Option(7, "--seed"),
) -> None:
    """Start three simulated vendors, probe them, and write a scorecard. No keys, no network."""
    t0 = time.monotonic()
    out.print("[bold]assay demo[/]: starting three simulated vendors on loopback…")
    with SimulatorProcess(seed=seed) as sim:
        for name, url in sim.urls.items():
            out.print(f"  {name:<10} {url}  ({_DEMO_APIS.get(name, 'openai')} API)")
        out_dir.mkdir(parents=True, exist_ok=True)
        config_path = out_dir / "assay.yaml"
        public = data_dir() is not None
        config_path.write_text(demo_config_text(sim.urls, public), encoding="utf-8")
        cfg = load_project(config_path)
        opts = ProbeOptions.from_config(cfg, requests=requests, concurrency=concurrency)
        out.print(f"probing: {requests} streaming requests per vendor, {concurrency} in flight each…")
        db = state_dir() / "assay.db"
        result = run_with_progress(cfg, opts, db, resume=None, hint=AGAIN)
        show_table(probe_table(result.summaries, f"probe {result.run_id}"))
        for line in failure_lines(result.summaries):
            out.print(line, highlight=False, soft_wrap=True)
        names = ", ".join(s.name for s in cfg.quality_suites)
        note = "" if public else " (set ASSAY_DATA_DIR to a folder of public datasets to add GSM8K and MMLU-Redux)"
        out.print(f"evaluating quality on {names}: the same items for every vendor{note}…")
        evaluated = run_eval_with_progress(cfg, EvalOptions(concurrency=16, cache=False), db, hint=AGAIN)
        redteam_opts = RedteamOptions(concurrency=16, seed=seed)
        suites = ", ".join(s.name for s in cfg.safety_suites or default_suites(public))
        out.print(f"red-teaming: {suites}, the same attacks for every vendor…")
        attacked = run_redteam_with_progress(cfg, redteam_opts, db, hint=AGAIN)
    from assay.report.scorecard import write_report  # matplotlib is slow to import

    with Store(db) as store:
        summary = summarize_eval_run(store, evaluated.run_id)
        show_table(eval_table(summary))
        for line in comparison_lines(summary):
            out.print(line, highlight=False)
        safety = summarize_redteam_run(store, attacked.run_id)
        show_table(redteam_table(safety))
        for line in summary_lines(safety):
            out.print(line, highlight=False)
        measured = {n: Measured.from_summary(s) for n, s in result.summaries.items()}
        decided, _ = decide_runs(store, [result.run_id, evaluated.run_id, attacked.run_id], cfg)
        decision = decision_json(decided)
        paths = write_report(
            store,
            result.run_id,
            out_dir,
            result.summaries,
            quality_run=evaluated.run_id,
            safety_run=attacked.run_id,
            decision=decision,
        )
    book = PriceBook.for_targets(cfg.targets, load_catalog(state_dir()))
    show_table(cost_table(cost_report(cfg, book, measured, result.run_id, measured_tokens=False)))
    out.print(f"[dim]over years, with break-even volumes:[/] assay tco -c {config_path}")
    show_decision(decision)
    out.print(
        f"[dim]the same from the stored runs, or as a CI check:[/] assay decide -c {config_path} · "
        f"assay gate -c {config_path} --junit gate.xml"
    )
    out.print(f"\nscorecard: [bold green]{paths['html'].resolve()}[/]")
    out.print(f"markdown:  {paths['markdown'].resolve()}")
    out.print(f"config:    {config_path.resolve()}   [dim](done in {time.monotonic() - t0:.0f} s)[/]")
