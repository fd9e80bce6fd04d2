"""`assay eval`: quality of every target on the config's suites, with CIs and paired comparisons."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import typer
from rich.table import Table
from rich.text import Text

from assay.cli.console import new_table, out, refuse_with_resume, run_with_bars, show_table
from assay.cli.project import load_project, project_if_present
from assay.config import ProjectConfig, state_dir
from assay.errors import ConfigError
from assay.report.formats import ci_range, ms, pct, points, usd_text
from assay.stats import summarize_stored
from assay.store import Store
from assay.suites.quality import EvalOptions, EvalRun, run_eval, summarize_run
from assay.suites.quality_summary import EvalSummary


def eval_table(summary: EvalSummary) -> Table:
    table = new_table(
        f"eval {summary.run_id}",
        "score %, 95% CI: Wilson (pass rates) or bootstrap (graded)\n"
        "unscored: failed for good or undecided, never counted as fails",
    )
    table.add_column("target", style="bold", no_wrap=True)
    table.add_column("suite", no_wrap=True)
    for col in ("score", "95% CI", "n", "unscored", "E2E p50", "cost"):
        table.add_column(col, justify="right", no_wrap=True)
    for suite in summary.suites:
        best = max((s.score or 0) for t in summary.targets if (s := summary.scores[t].get(suite)))
        for t in summary.targets:
            s = summary.scores[t].get(suite)
            if s is None:
                continue
            style = "bold green" if s.score is not None and s.score == best else ""
            table.add_row(
                t,
                suite,
                Text(pct(s.score), style=style),
                ci_range(s.ci95),
                str(s.n),
                Text(str(s.unscored), style="yellow" if s.unscored else "dim"),
                # Replies reused from the cache have no latency of their own.
                ("cached" if s.cached else "–") if s.latency_p50_ms is None else f"{ms(s.latency_p50_ms)} ms",
                usd_text(s.cost_usd),
            )
        table.add_section()
    return table


def comparison_lines(summary: EvalSummary) -> list[str]:
    lines = []
    for c in summary.comparisons:
        better, worse = (c.a, c.b) if c.diff >= 0 else (c.b, c.a)
        mark = "[green]✓[/]" if c.p_holm < 0.05 else "[dim]–[/]"
        detail = f"{c.a_only}/{c.b_only} discordant" if c.test == "mcnemar_exact" else "paired bootstrap"
        lines.append(
            f"  {mark} {c.suite}: {better} > {worse} by {points(c.diff)} pts, n={c.n} "
            f"({detail}), p={c.p_value:.2g}, Holm p={c.p_holm:.2g}"
        )
    return lines


def eval_cmd(
    ctx: typer.Context,
    config: Path = typer.Option(Path("assay.yaml"), "-c", "--config", help="Project file with `suites:`."),
    suite: list[str] = typer.Option([], "--suite", "-s", help="Run only this suite (repeatable)."),
    target: list[str] = typer.Option([], "--target", "-t", help="Evaluate only this target (repeatable)."),
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="Requests in flight per target."),
    timeout: float | None = typer.Option(
        None, "--timeout", min=0.001, help="Total seconds allowed per request, for every target (over the config)."
    ),
    retries: int = typer.Option(3, "--retries", min=0, max=10, help="Retries of transient errors per item."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="The first N items of each suite."),
    sample: int | None = typer.Option(None, "--sample", min=1, help="A seeded random N items of each suite."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of --sample (default: the suite's, 0)."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Local dataset copies (default $ASSAY_DATA_DIR)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Send every request, even ones answered before."),
    resume: str | None = typer.Option(None, "--resume", help="Finish an interrupted eval (RUN_ID or 'latest')."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
) -> None:
    """Score every target on the same items; CIs, paired significance tests, slices by tag."""
    db = state_dir() / "assay.db"
    cfg: ProjectConfig | None = None
    opts = EvalOptions()
    if resume is None:
        cfg = load_project(config)
        opts = EvalOptions(
            suites=tuple(suite),
            targets=tuple(target),
            concurrency=concurrency,
            timeout_s=timeout,
            retries=retries,
            data_dir=str(data_dir) if data_dir else None,
            cache=not no_cache,
            limit=limit,
            sample=sample,
            seed=seed,
        )
    else:
        refuse_with_resume("eval", ctx)
        cfg = project_if_present(config)
    result = run_with_progress(cfg, opts, db, resume, quiet=as_json)
    with Store(db) as store:
        summary = summarize_run(store, result.run_id)
        traffic = summarize_stored(store, result.run_id)
    if as_json:
        doc = summary.to_json()
        doc["summaries"] = {n: s.to_json() for n, s in traffic.items()}  # its traffic, as a probe reports it
        sys.stdout.write(orjson.dumps(doc).decode() + "\n")
        return
    show_table(eval_table(summary))
    if summary.comparisons:
        out.print("[bold]paired comparisons[/] on the same items (✓: significant at 5% after Holm's correction)")
        for line in comparison_lines(summary):
            out.print(line, highlight=False)
    out.print(f"[dim]full scorecard:[/] assay report {result.run_id}")


def run_with_progress(
    cfg: ProjectConfig | None,
    opts: EvalOptions,
    db: Path,
    resume: str | None = None,
    quiet: bool = False,
    hint: str | None = None,
) -> EvalRun:
    """Run an eval with a live bar per target; on Ctrl-C say how to resume."""
    return run_with_bars(
        lambda on_start, on_record: run_eval(cfg, opts, db, resume=resume, on_record=on_record, on_start=on_start),
        "eval",
        quiet,
        resume_hint=hint,
    )


def items_needed_cmd(
    diff: float = typer.Option(..., "--diff", help="Difference in pass rate to detect, e.g. 0.02 for 2 points."),
    base: float = typer.Option(0.8, "--base", min=0.0, max=1.0, help="Expected pass rate of the better target."),
    power: float = typer.Option(0.8, "--power", min=0.01, max=0.999),
    alpha: float = typer.Option(0.05, "--alpha", min=0.0001, max=0.5),
    discordant: float | None = typer.Option(
        None, "--discordant", min=0.0, max=1.0, help="Share of items the targets disagree on (from a pilot run)."
    ),
) -> None:
    """How many items a paired comparison needs to detect a difference (McNemar, Connor's formula)."""
    from assay.stats import items_needed

    try:
        n = items_needed(diff, base=base, power=power, alpha=alpha, discordant=discordant)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    assumption = (
        f"the targets disagree on {discordant:.0%} of items"
        if discordant is not None
        else "their errors are independent (the worst case; a pilot run's disagreement rate lowers it)"
    )
    out.print(
        f"[bold]{n:,}[/] items to detect {diff * 100:g} points at {power:.0%} power, α = {alpha:g}, "
        f"base pass rate {base:.0%}, assuming {assumption}",
        highlight=False,
    )
