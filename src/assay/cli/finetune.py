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
from assay.report.formats import plural, usd_text
from assay.suites.finetune import TrainingAudit, audit_training_file

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
        table = new_table("errors", None if len(s.errors) == sum(s.error_counts.values()) else
                          f"showing the first {len(s.errors):,}; --json lists the same, error_counts all")  # fmt: skip
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
    price = f"at ${a.price_per_mtok}/M ({a.price_source})" if a.price_per_mtok is not None else \
        "no training price known: --price USD_PER_MTOK or the target's pricing.training_per_mtok"  # fmt: skip
    out.print(
        f"[bold]training:[/] {a.epochs} epochs ({a.epochs_source}) x {s.billed_tokens(1):,} tokens = "
        f"[bold]{a.billed_tokens:,}[/] billed tokens{est}; cost [bold]{usd_text(a.cost_usd)}[/] {price}",
        highlight=False,
    )
    if a.tuned is not None:
        out.print(f"[bold]tuned model:[/] {a.tuned.name} serves at ${a.tuned.input}/M in, ${a.tuned.output}/M out",
                  highlight=False)  # fmt: skip
    if (be := a.breakeven) is not None and a.base is not None:
        if be.break_even_monthly_requests is None:
            out.print(f"[bold]break-even:[/] never: the tuned model costs {usd_text(-be.saving_per_request_usd)} "
                      f"more a request than {a.base.name}", highlight=False)  # fmt: skip
        else:
            payback = ""
            if be.payback_months is not None:
                payback = f"; at the workload's {be.monthly_requests:,.0f} a month, in {be.payback_months:.1f} months"
            out.print(
                f"[bold]break-even:[/] saves {usd_text(be.saving_per_request_usd)} a request against {a.base.name}; "
                f"pays back the training within {be.months} months from {be.break_even_monthly_requests:,.0f} "
                f"requests a month{payback}",
                highlight=False,
            )


def validate_cmd(
    file: Path = typer.Argument(..., help="The JSONL training file."),
    fmt: Fmt = typer.Option(Fmt.openai, "--format", "-f", help="Whose rules to check against."),
    model: str | None = typer.Option(None, "--model", "-m", help="Base model: its tokenizer, context and price."),
    config: Path | None = typer.Option(None, "-c", "--config", help="Project file: eval suites to check, workload."),
    target: str | None = typer.Option(None, "--target", "-t", help="Base model from this target of the project."),
    replaces: str | None = typer.Option(None, "--replaces", help="Target the tuned model would replace: break-even."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, max=50, help="Epochs (default: the vendor's rule)."),
    price: float | None = typer.Option(None, "--price", min=0.0, help="Training USD per million tokens."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", min=1, help="Longest example trained on, tokens."),
    months: int = typer.Option(12, "--months", min=1, max=120, help="Horizon of the break-even."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
) -> None:
    """Check a training file against a vendor's rules: every problem by line and class, tokens, epochs, cost."""
    cfg = load_project(config) if config is not None else None
    size = file.stat().st_size if file.is_file() else 0
    with Progress(TextColumn("validating"), BarColumn(), DownloadColumn(), TimeRemainingColumn(), console=err,
                  transient=True, disable=as_json or size < _BIG) as bar:  # fmt: skip
        task = bar.add_task("validate", total=size)
        audit = audit_training_file(
            file, fmt.value, model, config=cfg, target=target, replaces=replaces, epochs=epochs,
            price_per_mtok=price, max_example_tokens=max_tokens, months=months,
            on_progress=lambda done, total: bar.update(task, completed=done),
        )  # fmt: skip
    if as_json:
        sys.stdout.write(orjson.dumps(audit.to_json()).decode() + "\n")
    else:
        show_audit(audit)
    if not audit.scan.ok:
        raise typer.Exit(1)


app.command("validate")(validate_cmd)
