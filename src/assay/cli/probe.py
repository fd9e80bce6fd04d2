"""`assay probe`: N requests per target, measured raw; a table or one JSON object."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import typer

from assay.cli.console import failure_lines, out, probe_table, refuse_with_resume, run_with_bars, show_table
from assay.cli.project import load_project, project_if_present
from assay.config import ProjectConfig, state_dir
from assay.suites.probe import ProbeOptions, ProbeResult, run_probe


def probe(
    ctx: typer.Context,
    config: Path = typer.Option(Path("assay.yaml"), "-c", "--config", help="Project file."),
    requests: int | None = typer.Option(None, "--requests", "-n", min=1, help="Requests per target."),
    concurrency: int | None = typer.Option(None, "--concurrency", min=1, help="Requests in flight per target."),
    timeout: float | None = typer.Option(
        None, "--timeout", min=0.001, help="Total seconds allowed per request, for every target (over the config)."
    ),
    retries: int | None = typer.Option(
        None, "--retries", min=0, max=10, help="Retries per item (each attempt recorded)."
    ),
    target: list[str] = typer.Option([], "--target", "-t", help="Probe only this target (repeatable)."),
    no_stream: bool = typer.Option(False, "--no-stream", help="Ask for whole answers instead of streams."),
    prompt: str | None = typer.Option(None, "--prompt", help="The standard prompt."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", min=1),
    duration: float | None = typer.Option(
        None, "--duration", min=0.001, help="Spread each target's requests evenly over this many seconds."
    ),
    resume: str | None = typer.Option(None, "--resume", help="Finish an interrupted run (RUN_ID or 'latest')."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
) -> None:
    """Probe each target's API: success, failures by class, uptime, latency percentiles."""
    db = state_dir() / "assay.db"
    if resume:
        refuse_with_resume("probe", ctx)
        cfg = project_if_present(config)
        opts = ProbeOptions()
    else:
        cfg = load_project(config)
        opts = ProbeOptions.from_config(
            cfg,
            requests=requests,
            concurrency=concurrency,
            timeout_override_s=timeout,
            retries=retries,
            targets=tuple(target) or None,
            stream=False if no_stream else None,
            prompt=prompt,
            max_tokens=max_tokens,
            duration_s=duration,
        )
    result = run_with_progress(cfg, opts, db, resume, quiet=as_json)
    if as_json:
        sys.stdout.write(orjson.dumps(result.to_json()).decode() + "\n")
        return
    show_table(probe_table(result.summaries, f"probe {result.run_id}"))
    for line in failure_lines(result.summaries):
        out.print(line, highlight=False, soft_wrap=True)
    out.print(f"[dim]full scorecard:[/] assay report {result.run_id}")


def run_with_progress(
    cfg: ProjectConfig | None,
    opts: ProbeOptions,
    db: Path,
    resume: str | None,
    quiet: bool = False,
    hint: str | None = None,
) -> ProbeResult:
    """Run a probe with a live bar per target; on Ctrl-C say how to resume."""
    return run_with_bars(
        lambda on_start, on_record: run_probe(cfg, opts, db, resume=resume, on_record=on_record, on_start=on_start),
        "probe",
        quiet,
        resume_hint=hint,
    )
