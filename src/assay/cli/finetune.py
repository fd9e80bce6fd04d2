"""`assay finetune`: validate a training file, run a fine-tuning job, compare the tuned model with its base."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import orjson
import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from assay.cli.console import err, new_table, out, show_table
from assay.cli.project import load_project
from assay.config import ProjectConfig
from assay.errors import ConfigError
from assay.report.finetune import break_even_sentence
from assay.report.formats import plural, usd_text
from assay.suites.finetune import TrainingAudit, audit_training_file
from assay.suites.finetune_compare import FinetuneComparison

app = typer.Typer(help="Fine-tuning due diligence: will our data be accepted, what it costs, does the tuned model pay.")

_BIG = 8 * 1024 * 1024  # files above this get a progress bar


class Fmt(StrEnum):
    openai = "openai"
    anthropic_bedrock = "anthropic-bedrock"
    together = "together"
    fireworks = "fireworks"


def _tokens(n: float) -> str:
    return f"{n:,.0f}" if n == int(n) else f"{n:,.1f}"


def show_audit(a: TrainingAudit) -> None:
    s = a.scan
    head = Text.assemble(
        (f"{s.path}", "bold"),
        f": {plural(s.examples, 'example')} in the {s.format} format, ",
        (f"{s.valid:,} valid", "green" if s.ok else "yellow"),
        ", ",
        (f"{sum(s.error_counts.values()):,} error(s)", "bold red") if s.error_counts else ("no errors", "green"),
    )
    out.print(head)
    if s.errors:
        table = new_table(
            "errors",
            None
            if len(s.errors) == sum(s.error_counts.values())
            else f"showing the first {len(s.errors):,}; --json lists the same, error_counts all",
        )
        table.add_column("line", justify="right", no_wrap=True)
        table.add_column("class", style="red", no_wrap=True)
        table.add_column("detail")
        for e in s.errors[:200]:
            table.add_row("file" if e.line is None else str(e.line), e.cls, e.detail)
        show_table(table)
        if len(s.errors) > 200:
            out.print(f"[dim]... {len(s.errors) - 200:,} more in --json[/]")
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(s.error_counts.items(), key=lambda kv: -kv[1]))
        out.print(f"[bold]by class:[/] {counts}", highlight=False)
    if s.warnings:
        table = new_table("warnings", "accepted by the vendor, but worth a look")
        table.add_column("warning", style="yellow", no_wrap=True)
        table.add_column("examples", justify="right")
        table.add_column("lines")
        table.add_column("what")
        for w in s.warnings:
            more = f" +{w.count - len(w.lines)}" if w.count > len(w.lines) else ""
            table.add_row(
                w.cls,
                f"{w.count:,}",
                ", ".join(map(str, w.lines[:8])) + ("…" if len(w.lines) > 8 else "") + more,
                w.detail,
            )
        show_table(table)
    table = new_table(
        "tokens per valid example",
        f"counted with {s.tokenizer.note}\n"
        "true percentiles (p5/p95, not the cookbook's 10th/90th); trained: assistant tokens with weight 1",
    )
    table.add_column("", style="bold", no_wrap=True)
    for col in ("min", "p5", "median", "mean", "p95", "max", "total"):
        table.add_column(col, justify="right", no_wrap=True)
    for name, st in (("messages", s.messages), ("tokens", s.tokens), ("trained", s.assistant)):
        table.add_row(name, *(_tokens(v) for v in (st.min, st.p5, st.p50, st.mean, st.p95, st.max, st.total)))
    show_table(table)
    est = "" if s.tokenizer.exact else " (estimated tokens)"
    price = (
        f"at ${a.price_per_mtok}/M ({a.price_source})"
        if a.price_per_mtok is not None
        else "no training price known: --price USD_PER_MTOK or the target's pricing.training_per_mtok"
    )
    out.print(
        f"[bold]training:[/] {a.epochs} epochs ({a.epochs_source}) x {s.billed_tokens(1):,} tokens = "
        f"[bold]{a.billed_tokens:,}[/] billed tokens{est}; cost [bold]{usd_text(a.cost_usd)}[/] {price}",
        highlight=False,
    )
    if a.tuned is not None:
        out.print(
            f"[bold]tuned model:[/] {a.tuned.name} serves at ${a.tuned.input}/M in, ${a.tuned.output}/M out",
            highlight=False,
        )
    if a.breakeven is not None and a.base is not None:
        said = break_even_sentence(a.breakeven, a.base_target or a.base.name, "list prices, the workload's requests")
        out.print(f"[bold]break-even:[/] {said}", highlight=False)


def validate_cmd(
    file: Path = typer.Argument(..., help="The JSONL training file."),
    fmt: Fmt = typer.Option(Fmt.openai, "--format", "-f", help="Whose rules to check against."),
    model: str | None = typer.Option(None, "--model", "-m", help="Base model: its tokenizer, context and price."),
    config: Path | None = typer.Option(None, "-c", "--config", help="Project file: eval suites to check, workload."),
    target: str | None = typer.Option(None, "--target", "-t", help="Base model from this target of the project."),
    replaces: str | None = typer.Option(None, "--replaces", help="Target the tuned model would replace: break-even."),
    tuned: str | None = typer.Option(
        None, "--tuned", help="Target of the tuned model: its price (else the catalog's)."
    ),
    epochs: int | None = typer.Option(None, "--epochs", min=1, max=50, help="Epochs (default: the vendor's rule)."),
    price: float | None = typer.Option(None, "--price", min=0.0, help="Training USD per million tokens."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", min=1, help="Longest example trained on, tokens."),
    months: int = typer.Option(12, "--months", min=1, max=120, help="Horizon of the break-even."),
    workers: int | None = typer.Option(
        None, "--workers", min=1, max=64, help="Processes for a file over 16 MB (default: one a core; 1: least memory)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
) -> None:
    """Check a training file against a vendor's rules: every problem by line and class, tokens, epochs, cost."""
    cfg = load_project(config) if config is not None else None
    size = file.stat().st_size if file.is_file() else 0
    with Progress(
        TextColumn("validating"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=as_json or size < _BIG,
    ) as bar:
        task = bar.add_task("validate", total=size)
        audit = audit_training_file(
            file,
            fmt.value,
            model,
            config=cfg,
            target=target,
            replaces=replaces,
            tuned_target=tuned,
            epochs=epochs,
            price_per_mtok=price,
            max_example_tokens=max_tokens,
            months=months,
            workers=workers,
            on_progress=lambda done, total: bar.update(task, completed=done),
        )
    if as_json:
        sys.stdout.write(orjson.dumps(audit.to_json()).decode() + "\n")
    else:
        show_audit(audit)
    if not audit.scan.ok:
        raise typer.Exit(1)


app.command("validate")(validate_cmd)


def tuned_target_yaml(cfg: ProjectConfig, target: str, model: str) -> str:
    """A `targets:` entry for the tuned model: the base target's endpoint and key, the new model's name."""
    import yaml

    base = cfg.target(target).model_dump(mode="json", exclude_defaults=True)
    base.update(name=f"{target}-tuned", model=model)
    base.pop("pricing", None)  # the tuned model bills differently: price it (or let the catalog's ft: entry)
    return yaml.safe_dump([base], sort_keys=False)


def run_cmd(
    ctx: typer.Context,
    config: Path = typer.Option(Path("assay.yaml"), "-c", "--config", help="Project file with the target."),
    target: str | None = typer.Option(None, "--target", "-t", help="Target whose vendor trains the model."),
    file: Path | None = typer.Option(None, "--file", "-f", help="The JSONL training file (OpenAI format)."),
    model: str | None = typer.Option(None, "--model", "-m", help="Base model (default: the target's)."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, max=50, help="Epochs (default: the vendor's auto)."),
    suffix: str | None = typer.Option(None, "--suffix", help="Part of the tuned model's name."),
    seed: int | None = typer.Option(None, "--seed", help="The job's seed, for reproducible training."),
    poll: float = typer.Option(5.0, "--poll", min=0.01, help="Seconds between polls of the job."),
    timeout: float = typer.Option(86_400.0, "--timeout", min=0.1, help="Stop following after this many seconds."),
    retries: int = typer.Option(3, "--retries", min=0, max=10, help="Retries of a failed upload or job creation."),
    resume: str | None = typer.Option(None, "--resume", help="Follow the job of an interrupted run (RUN_ID|latest)."),
    emit_target: str | None = typer.Option(None, "--emit-target", help="Write a targets: entry for the tuned model."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
) -> None:
    """Upload the file, start a fine-tuning job, follow it with a progress bar; every API call is recorded."""
    from assay.cli.console import refuse_with_resume, run_async
    from assay.config import state_dir
    from assay.suites.finetune_job import FinetuneOptions, run_finetune

    db = state_dir() / "assay.db"
    cfg, opts = None, None
    if resume is None:
        if target is None or file is None:
            raise ConfigError("--target and --file are needed (or --resume RUN_ID to follow an earlier job)")
        cfg = load_project(config)
        cfg.target(target)
        opts = FinetuneOptions(
            target=target,
            file=str(file),
            model=model,
            epochs=epochs,
            suffix=suffix,
            seed=seed,
            poll_s=poll,
            timeout_s=timeout,
            retries=retries,
        )
    else:
        refuse_with_resume("finetune run", ctx)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        console=err,
        transient=True,
        disable=as_json,
    )
    task = progress.add_task("fine-tuning", total=None, status="uploading")
    state: dict[str, str] = {}

    def on_start(run_id: str) -> None:
        state["run"] = run_id
        progress.start()

    def on_job(job: dict[str, object], events: list[dict[str, object]]) -> None:
        steps = next((e.get("data") for e in events if e.get("type") == "metrics"), None)
        status = str(job.get("status"))
        if isinstance(steps, dict) and steps.get("total_steps"):
            progress.update(task, total=steps["total_steps"], completed=steps.get("step", 0), status=status)
        else:
            progress.update(task, status=status)

    try:
        outcome = run_async(run_finetune(cfg, opts, db, resume=resume, on_start=on_start, on_job=on_job))
    except KeyboardInterrupt:
        progress.stop()
        if "run" in state:
            err.print(
                f"[yellow]interrupted.[/] the job goes on at the vendor; follow it with: "
                f"assay finetune run --resume {state['run']}"
            )
        raise
    finally:
        progress.stop()
    if emit_target and outcome.fine_tuned_model and cfg is not None:
        text = tuned_target_yaml(cfg, outcome.target, outcome.fine_tuned_model)
        if emit_target == "-":
            err.print(text)
        else:
            Path(emit_target).write_text(text)
    if as_json:
        sys.stdout.write(orjson.dumps(outcome.to_json()).decode() + "\n")
    else:
        style = {"succeeded": "green", "failed": "bold red", "cancelled": "yellow"}.get(outcome.status or "", "")
        out.print(
            f"run {outcome.run_id}: job {outcome.job_id} [{style}]{outcome.status}[/]"
            + (f", [bold]{outcome.fine_tuned_model}[/]" if outcome.fine_tuned_model else ""),
            highlight=False,
        )
        if outcome.error:
            out.print(f"[red]error:[/] {outcome.error.get('code')}: {outcome.error.get('message')}", highlight=False)
        phases = ", ".join(f"{k.removesuffix('_s').replace('_', ' ')} {v:.1f}s" for k, v in outcome.timeline.items())
        out.print(
            f"job latency: {phases or 'not observed'}; trained tokens: {outcome.trained_tokens or '–'}; "
            f"{outcome.calls} API calls, {outcome.failed_calls} failed",
            highlight=False,
        )
    if outcome.status != "succeeded":
        raise typer.Exit(1)


app.command("run")(run_cmd)


def show_comparison(c: FinetuneComparison) -> None:
    from assay.report.formats import ms, pct, signed_points

    table = new_table(f"base vs tuned on {c.suite} (eval {c.run_id}, {c.n} items both scored)")
    table.add_column("", style="bold", no_wrap=True)
    for col in ("score", "cost / request", "E2E p50", "E2E p95"):
        table.add_column(col, justify="right", no_wrap=True)
    for role, name, score in (("base", c.base, c.base_score), ("tuned", c.tuned, c.tuned_score)):
        lat = c.latency_ms[name]
        table.add_row(
            f"{role}: {name}",
            pct(score),
            usd_text(c.cost_per_request_usd[name]),
            f"{ms(lat['p50'])} ms",
            f"{ms(lat['p95'])} ms",
        )
    show_table(table)
    lo, hi = c.ci95
    test = (
        f"McNemar exact p = {c.p_value:.2g} ({c.tuned_only} items only tuned got right, {c.base_only} only base)"
        if c.test == "mcnemar_exact"
        else f"paired bootstrap p = {c.p_value:.2g}"
    )
    mark = (
        "[green]significant[/]"
        if c.significant and c.diff > 0
        else ("[bold red]significantly worse[/]" if c.significant else "[yellow]not significant[/]")
    )
    out.print(
        f"[bold]tuned − base:[/] {signed_points(c.diff)} points "
        f"(95% CI {signed_points(lo)} to {signed_points(hi)}), {test}: {mark}",
        highlight=False,
    )
    if c.slices:
        table = new_table("by tag", "paired per tag, Holm-corrected across tags; regressed: catastrophic forgetting")
        table.add_column("tag", style="bold", no_wrap=True)
        for col in ("n", "base", "tuned", "Δ pts", "Holm p", ""):
            table.add_column(col, justify="right", no_wrap=True)
        style = {"improved": "green", "regressed": "bold red", "unchanged": "dim"}
        for s in sorted(c.slices, key=lambda s: s.diff):
            table.add_row(
                s.tag,
                str(s.n),
                pct(s.base),
                pct(s.tuned),
                signed_points(s.diff),
                f"{s.p_holm:.2g}",
                Text(s.verdict, style=style[s.verdict]),
            )
        show_table(table)
    if c.training_usd is not None:
        out.print(f"[bold]training:[/] {usd_text(c.training_usd)} ({c.training_source})", highlight=False)
    if c.breakeven is not None:
        said = break_even_sentence(c.breakeven, c.base, "measured on the suite's requests")
        out.print(f"[bold]break-even:[/] {said}", highlight=False)


def compare_cmd(
    config: Path = typer.Option(Path("assay.yaml"), "-c", "--config", help="Project file with both targets."),
    base: str = typer.Option(..., "--base", help="The base model's target."),
    tuned: str = typer.Option(..., "--tuned", help="The tuned model's target."),
    suite: str = typer.Option(..., "--suite", "-s", help="The quality suite both answer."),
    run: str | None = typer.Option(None, "--run", help="Weigh an eval run that already has both (RUN_ID|latest)."),
    training_usd: float | None = typer.Option(None, "--training-usd", min=0.0, help="What training cost, USD."),
    training_run: str | None = typer.Option(None, "--training-run", help="The `finetune run` that trained it."),
    months: int = typer.Option(12, "--months", min=1, max=120, help="Horizon of the break-even."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="The first N items of the suite."),
    sample: int | None = typer.Option(None, "--sample", min=1, help="A seeded random N items."),
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="Requests in flight per target."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Local dataset copies (default $ASSAY_DATA_DIR)."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
) -> None:
    """Base and tuned answer the same items: paired difference, per-tag changes, cost, latency, break-even."""
    from assay.cli.eval import run_with_progress
    from assay.config import state_dir
    from assay.store import Store
    from assay.suites.finetune_compare import compare_finetune
    from assay.suites.quality import EvalOptions

    if training_usd is not None and training_run is not None:
        raise ConfigError("give --training-usd or --training-run, not both")
    db = state_dir() / "assay.db"
    pair = {
        "base": base,
        "tuned": tuned,
        "suite": suite,
        "training_usd": training_usd,
        "training_run": training_run,
        "months": months,
    }
    if run is None:
        cfg = load_project(config)
        for name in (base, tuned):
            cfg.target(name)
        cfg.suite(suite)
        opts = EvalOptions(
            suites=(suite,),
            targets=(base, tuned),
            concurrency=concurrency,
            limit=limit,
            sample=sample,
            data_dir=str(data_dir) if data_dir else None,
            cache=False,  # cost and latency per request are measured: a cached reply has neither
            finetune=pair,
        )
        run = run_with_progress(cfg, opts, db, quiet=as_json).run_id
    with Store(db) as store:
        comparison = compare_finetune(
            store, run, base, tuned, suite, training_usd=training_usd, training_run=training_run, months=months
        )
    if as_json:
        sys.stdout.write(orjson.dumps(comparison.to_json()).decode() + "\n")
        return
    show_comparison(comparison)
    out.print(f"[dim]full scorecard:[/] assay report {comparison.run_id}")


app.command("compare")(compare_cmd)
