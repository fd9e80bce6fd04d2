"""`assay report` (a run's scorecard), `assay export` (its Records) and `assay runs` (what is stored)."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from assay.cli.console import out
from assay.config import state_dir
from assay.errors import ConfigError
from assay.store import Store, write_export
from assay.suites.traffic import run_summaries


def report(
    run_id: str = typer.Argument("latest", help="RUN_ID, or 'latest'."),
    out_dir: Path | None = typer.Option(None, "--out", "-o", help="Folder for index.html and scorecard.md."),
    pdf: bool = typer.Option(False, "--pdf", help="Also print scorecard.pdf (needs Chromium)."),
    quality: str | None = typer.Option(None, "--quality", help="Add the quality section of this eval run."),
    safety: str | None = typer.Option(None, "--safety", help="Add the safety section of this red-team run."),
) -> None:
    """Write the one-page scorecard (self-contained HTML and Markdown, optionally PDF) of a run.

    A probe run's page can carry the quality and safety sections of an eval and a red-team run of the
    same targets, as `assay demo` does.
    """
    from assay.report.scorecard import write_report  # matplotlib is slow to import; only this command needs it

    with Store(state_dir() / "assay.db") as store:
        info = store.run(run_id)
        summaries = run_summaries(store, info.run_id)
        target_dir = out_dir or Path("reports") / info.run_id
        extra = {}
        for option, run, kind, wanted in (("--quality", quality, "eval", "an eval"),
                                          ("--safety", safety, "redteam", "a red-team")):  # fmt: skip
            if run is not None:
                other = store.run(run)
                if other.kind != kind:
                    raise ConfigError(f"{option} {run}: run {other.run_id} is a {other.kind} run, not {wanted} run")
                extra[option] = other.run_id
        paths = write_report(
            store,
            info.run_id,
            target_dir,
            summaries,
            quality_run=extra.get("--quality"),
            safety_run=extra.get("--safety"),
        )
    out.print(f"scorecard: [bold]{paths['html']}[/]  (markdown: {paths['markdown']})")
    if pdf:
        from assay.report.browser import html_to_pdf

        out.print(f"pdf:       [bold]{html_to_pdf(paths['html'], paths['html'].with_name('scorecard.pdf'))}[/]")


def export(
    run_id: str = typer.Argument("latest", help="RUN_ID, or 'latest'."),
    out_file: Path = typer.Option(..., "--out", "-o", help="File to write (.csv or .jsonl)."),
    fmt: str | None = typer.Option(None, "--format", help="csv or jsonl; default from the file's extension."),
) -> None:
    """Export a run's Records (one row per attempt) for notebooks and spreadsheets."""
    chosen = fmt or out_file.suffix.lstrip(".").lower()
    if chosen not in ("csv", "jsonl"):
        raise ConfigError(f"--format must be csv or jsonl (got {chosen or 'no extension'!r})")
    with Store(state_dir() / "assay.db") as store:
        info = store.run(run_id)
        n = write_export(store.iter_annotated(info.run_id), out_file, chosen)  # type: ignore[arg-type]
    out.print(f"wrote {n} records of run {info.run_id} to [bold]{out_file}[/]")


def runs(limit: int = typer.Option(20, "--limit", min=1)) -> None:
    """List stored runs, newest first."""
    with Store(state_dir() / "assay.db") as store:
        infos = store.runs(limit)
        table = Table(header_style="bold")
        for col in ("run", "kind", "status", "started (UTC)", "targets", "records"):
            table.add_column(col)
        for i in infos:
            n = store.conn.execute("SELECT COUNT(*) FROM records WHERE run_id = ?", (i.run_id,)).fetchone()[0]
            status = {"complete": "[green]complete", "interrupted": "[yellow]interrupted"}.get(i.status, i.status)
            table.add_row(
                i.run_id,
                i.kind,
                status,
                time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(i.created_s)),
                ", ".join(i.targets),
                str(n),
            )
    out.print(table if infos else "no runs yet; start one with `assay probe`")
