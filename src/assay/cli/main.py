"""`assay`: the command line. Each command lives in a module named for it.

Exit codes, one meaning each: 0 done; 1 the work failed (a store that cannot be
written, a writer error); 2 the input is wrong (config, options, a run or file
that does not exist), with one line saying what, where and what was expected;
130 interrupted (Ctrl-C); 143 terminated (SIGTERM). Every error prints the same
way: `error: ...` on stderr.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
import typer.core

try:  # typer 0.29 ships its own copy of click; earlier ones use click itself
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import ClickException, UsageError  # type: ignore[assignment,no-redef,import-not-found,unused-ignore]

from assay import __version__
from assay.cli import cost, decide, demo, finetune, gateway, prices, probe, project, redteam, report, simulator
from assay.cli import eval as eval_
from assay.cli import load as load_
from assay.cli.console import Terminated, err, show_warnings
from assay.errors import AssayError, ConfigError

# typer 0.29 prints a type column in help ("<bool>" for every flag, "<list[str]>", "<int range>"); flags take no
# value, so they get none, and the others get the classic upper-case names people know from other tools.
_TYPE_NAMES = {"<str>": "TEXT", "<int>": "INTEGER", "<int range>": "INTEGER", "<float>": "NUMBER",
               "<float range>": "NUMBER", "<path>": "PATH", "<list[str]>": "TEXT"}  # fmt: skip
_display_type_rich = typer.core.TyperOption.display_type_rich


def _metavar(self: typer.core.TyperOption, ctx: Any) -> str | None:
    if self.is_flag:
        return None
    shown = _display_type_rich(self, ctx)
    return _TYPE_NAMES.get(shown or "", shown)


typer.core.TyperOption.display_type_rich = _metavar  # type: ignore[method-assign,assignment,unused-ignore]

app = typer.Typer(
    name="assay",
    help="Evidence for choosing LLM providers: reliability, latency, quality, safety, cost, and a one-page scorecard.",
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
app.command("decide")(decide.decide_cmd)
app.command("gate")(decide.gate)
app.add_typer(redteam.app, name="redteam")
app.add_typer(finetune.app, name="finetune")
app.add_typer(prices.app, name="prices")
app.add_typer(simulator.app, name="simulator")
app.add_typer(gateway.app, name="gateway")


@app.callback(invoke_without_command=True)
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    if version:
        print(__version__)
        raise typer.Exit()


def _usage(e: UsageError) -> str:
    command = e.ctx.command_path if e.ctx is not None else "assay"
    return f"{e.format_message()} (see `{command} --help`)"


def main() -> None:
    """Entry point: one error style and one exit code per kind of failure (see the module docstring)."""
    show_warnings()
    code = 0
    try:
        result: Any = app(standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except typer.Exit as e:
        code = e.exit_code
    except UsageError as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # `assay` alone: the help was printed
            sys.exit(0)
        err.print(f"[bold red]error:[/] {_usage(e)}", highlight=False, soft_wrap=True)
        code = 2
    except ClickException as e:
        err.print(f"[bold red]error:[/] {e.format_message()}", highlight=False, soft_wrap=True)
        code = e.exit_code
    except typer.Abort:
        err.print("[yellow]aborted[/]")
        code = 130
    except ConfigError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        code = 2
    except AssayError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        code = 1
    except Terminated:
        code = 143  # 128 + SIGTERM, as shells report it
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
