"""`assay`: the command line. Each command lives in a module named for it."""

from __future__ import annotations

import sys

import typer

from assay import __version__
from assay.cli import cost, demo, prices, probe, project, redteam, report, simulator
from assay.cli import eval as eval_
from assay.cli import load as load_
from assay.cli.console import Terminated, err
from assay.errors import AssayError, ConfigError

app = typer.Typer(
    name="assay",
    help="Evidence for choosing LLM providers: reliability, latency, cost, and a one-page scorecard.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("init")(project.init)
app.command("validate")(project.validate)
app.command("probe")(probe.probe)
app.command("report")(report.report)
app.command("runs")(report.runs)
app.command("export")(report.export)
app.command("load")(load_.load_cmd)
app.command("eval")(eval_.eval_cmd)
app.command("items-needed")(eval_.items_needed_cmd)
app.command("cost")(cost.cost)
app.command("tco")(cost.tco_cmd)
app.command("demo")(demo.demo)
app.add_typer(redteam.app, name="redteam")
app.add_typer(prices.app, name="prices")
app.add_typer(simulator.app, name="simulator")


@app.callback(invoke_without_command=True)
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    if version:
        print(__version__)
        raise typer.Exit()


def main() -> None:
    """Entry point: usage errors are typer's (exit 2); ours print one clear message."""
    try:
        app()
    except ConfigError as e:
        err.print(f"[bold red]config error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except AssayError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except Terminated:
        sys.exit(143)  # 128 + SIGTERM, as shells report it
