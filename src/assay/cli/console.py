"""Shared terminal plumbing: consoles, warnings, the async entry point, the probe table, progress."""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.padding import Padding
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from assay.errors import ERROR_CLASSES, ConfigError
from assay.records import Record
from assay.report.formats import ms, pct_sign, usd_text
from assay.report.formats import rate as rate_text
from assay.stats import TargetSummary

__all__ = [
    "ProbeProgress",
    "Terminated",
    "err",
    "failure_lines",
    "out",
    "probe_table",
    "refuse_with_resume",
    "run_async",
    "run_with_bars",
    "show_table",
    "show_warnings",
]

T = TypeVar("T")


def _pipe_width() -> int | None:
    """A terminal sets its own width. Logs and pipes get at least 120 columns (not rich's 80-column
    fallback), or COLUMNS when it asks for more."""
    if sys.stdout.isatty():
        return None
    given = os.environ.get("COLUMNS", "")
    return max(120, int(given)) if given.isdigit() else 120


out = Console(width=_pipe_width())
err = Console(stderr=True)

_SHORT = {
    "rate_limited": "429",
    "overloaded": "overload",
    "server_error": "5xx",
    "client_error": "4xx",
    "timeout": "timeout",
    "connection": "conn",
    "stream_broken": "broken",
    "bad_response": "bad",
}
_TIER_STYLE = {
    "A": "bold white on green",
    "B": "bold white on cyan",
    "C": "bold black on yellow",
    "D": "bold white on red",
}


class _WarningHandler(logging.Handler):
    """Library warnings (`logging.getLogger("assay")`) as one yellow line each on stderr, even with --json."""

    def emit(self, record: logging.LogRecord) -> None:
        err.print(f"[bold yellow]warning:[/] {escape(record.getMessage())}", highlight=False, soft_wrap=True)


def show_warnings() -> None:
    """Route assay's warnings to stderr (once per process)."""
    logger = logging.getLogger("assay")
    if not any(isinstance(h, _WarningHandler) for h in logger.handlers):
        logger.addHandler(_WarningHandler(logging.WARNING))
        logger.setLevel(logging.WARNING)
        logger.propagate = False


# Options that go with --resume: where the store is and how to print, not what the run does.
_RESUME_OK = frozenset({"config", "resume", "as_json"})


def refuse_with_resume(command: str, ctx: Any) -> None:
    """`--resume` continues a run with its stored options: any other option typed on the command line is an
    error, not silently ignored (`ctx` is the command's click context, which knows where each value came from)."""
    clash = [
        max(p.opts, key=len)
        for p in ctx.command.params
        if p.name not in _RESUME_OK and getattr(ctx.get_parameter_source(p.name), "name", "") == "COMMANDLINE"
    ]
    if clash:
        raise ConfigError(f"--resume continues a {command} run with its stored options; drop {', '.join(clash)}")


class Terminated(Exception):
    """SIGTERM arrived; the work was cancelled the same way Ctrl-C cancels it."""


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """The only `asyncio.run` in assay: at the CLI edge, on uvloop where available.

    SIGTERM (CI timeouts, container stops) cancels the work like Ctrl-C does,
    so every in-flight attempt still writes its Record; then Terminated is raised.
    """
    terminated = False

    async def guarded() -> T:
        nonlocal terminated
        task = asyncio.current_task()
        assert task is not None

        def on_term() -> None:
            nonlocal terminated
            terminated = True
            task.cancel()

        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, on_term)
        return await coro

    try:
        import uvloop

        runner: Callable[[Coroutine[Any, Any, T]], T] = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        return runner(guarded())
    except asyncio.CancelledError:
        if terminated:
            raise Terminated from None
        raise


def failure_lines(summaries: dict[str, TargetSummary]) -> list[str]:
    """One line per target that failed: its failures by class, and the commonest one's message."""
    lines = []
    for name, s in summaries.items():
        parts = [f"{_SHORT[c]}×{n}" for c in ERROR_CLASSES if (n := s.errors.get(c))]
        if parts:
            commonest = max(ERROR_CLASSES, key=lambda c: s.errors.get(c, 0))
            example = s.error_examples.get(commonest, "")
            example = example if len(example) <= 100 else example[:99] + "…"
            note = f"  [dim]({escape(example)})[/]" if example else ""  # provider text is not markup
            lines.append(f"  {escape(name)}: {' '.join(parts)}{note}")
    return lines


def new_table(title: str | None = None, caption: str | None = None) -> Table:
    """The house style of every result table: a bold header, one rule, left-aligned title and caption."""
    return Table(
        title=title,
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption=caption,
        caption_justify="left",
    )


def show_table(table: Table, console: Console | None = None) -> None:
    """Print a result table; when the terminal is too narrow for it, one block per row instead, so a
    figure is never cropped."""
    console = console or out
    bare = copy.copy(table)  # titles and captions wrap; only the columns must fit
    bare.title = bare.caption = None
    needed = Measurement.get(console, console.options.update_width(10_000), bare).maximum  # its natural width
    if needed <= console.width:
        console.print(table)
        return
    if table.title:
        console.print(Text(str(table.title), style="bold"))
    headers = [str(c.header) for c in table.columns]
    cells = [list(c.cells) for c in table.columns]
    for i in range(table.row_count):
        first, rest = cells[0][i], [(h, col[i]) for h, col in zip(headers[1:], cells[1:], strict=True)]
        parts = [Text.assemble(f"{h} ", v if isinstance(v, Text) else str(v)) for h, v in rest if str(v).strip()]
        if str(first).strip():
            console.print(Text(str(first), style="bold"))
        if parts:
            console.print(Padding(Text(" · ").join(parts), (0, 0, 0, 4)))
    if table.caption:
        console.print(Text(str(table.caption), style="dim"))


def probe_table(summaries: dict[str, TargetSummary], title: str) -> Table:
    table = new_table(
        title,
        "latency in ms: p50 / p90 / p99 of successful requests",
    )
    table.add_column("target", style="bold", no_wrap=True)
    table.add_column("tier", justify="center", no_wrap=True)
    table.add_column("success", justify="right", no_wrap=True)
    table.add_column("uptime", justify="right", no_wrap=True)
    table.add_column("TTFT", justify="right", no_wrap=True)
    table.add_column("E2E", justify="right", no_wrap=True)
    table.add_column("tok/s", justify="right", no_wrap=True)
    table.add_column("$/success", justify="right", no_wrap=True)
    table.add_column("failed", justify="right", no_wrap=True)
    for name, s in summaries.items():
        rate = s.success_rate
        style = "green" if (rate or 0) >= 0.99 else "yellow" if (rate or 0) >= 0.95 else "red"
        tier = Text(f" {s.tier} ", style=_TIER_STYLE[s.tier]) if s.tier else Text("–")
        table.add_row(
            name,
            tier,
            Text(pct_sign(rate), style=style),
            pct_sign(None if s.uptime_pct is None else s.uptime_pct / 100),
            "/".join(ms(s.ttft.p[k]).replace(",", "") for k in ("p50", "p90", "p99")),
            "/".join(ms(s.e2e.p[k]).replace(",", "") for k in ("p50", "p90", "p99")),
            rate_text(s.speed.p["p50"]),
            usd_text(s.cost_per_success_usd),
            Text(str(s.failed), style="red" if s.failed else "dim"),
        )
    return table


class ProbeProgress:
    """One bar per target, counting finished items, with live failure counts."""

    def __init__(self, console: Console, pending: dict[str, int]) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.fields[name]:<16}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.tasks = {t: self.progress.add_task("", total=n, name=t, failed=0) for t, n in pending.items()}
        self.failed = dict.fromkeys(pending, 0)

    def on_record(self, r: Record) -> None:
        if not r.final or r.judged_target or r.target not in self.tasks:
            return  # a judge's calls are not the judge target's own items
        if not r.ok:
            self.failed[r.target] += 1
        self.progress.update(self.tasks[r.target], advance=1, failed=self.failed[r.target])

    def __enter__(self) -> ProbeProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


Starter = Callable[[Callable[[str, dict[str, int]], None], Callable[[Record], None]], Coroutine[Any, Any, T]]


class Live(Protocol):
    """A live view fed with every Record: progress bars, or the load panel."""

    def on_record(self, r: Record) -> None: ...
    def __enter__(self) -> Any: ...
    def __exit__(self, *exc: object) -> None: ...


def run_with_bars(
    start: Starter[T],
    command: str,
    quiet: bool = False,
    view: Callable[[dict[str, int]], Live] | None = None,
    resume_hint: str | None = None,
) -> T:
    """Run a suite with a live view (a bar per target by default); on Ctrl-C or SIGTERM say how to resume.

    `start(on_start, on_record)` makes the suite's coroutine; `command` names it in the resume hint.
    """
    state: dict[str, Any] = {}
    make = view or (lambda pending: ProbeProgress(err, pending))

    def on_start(run_id: str, pending: dict[str, int]) -> None:
        state["run_id"] = run_id
        if not quiet and pending:
            state["bar"] = make(pending).__enter__()

    def on_record(r: Record) -> None:
        if bar := state.get("bar"):
            bar.on_record(r)

    try:
        return run_async(start(on_start, on_record))
    except (KeyboardInterrupt, Terminated):
        if bar := state.pop("bar", None):
            bar.__exit__()
        if "run_id" in state:
            hint = resume_hint or f"resume with: assay {command} --resume {state['run_id']}"
            err.print(f"[yellow]interrupted.[/] {hint}")
        raise
    finally:
        if bar := state.get("bar"):
            bar.__exit__()
