"""`assay load`: open- or closed-loop traffic against the targets; rates, latency, goodput, rate limits."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import orjson
import typer
from pydantic import ValidationError
from rich.table import Table
from rich.text import Text

from assay.cli.console import err, new_table, out, refuse_with_resume, run_async, run_with_bars, show_table
from assay.cli.project import load_project, project_if_present
from assay.config import LATENCY_KEYS, SLO, ProjectConfig, state_dir
from assay.errors import ConfigError
from assay.records import Record, WorkItem
from assay.report.formats import ms as _ms
from assay.report.formats import rate
from assay.suites.load import LAG_WARN_MS, LoadOptions, LoadResult, SweepPoint, read_trace, run_load, run_sweep


def parse_slo(text: str | None, base: SLO) -> SLO:
    """`ttft_ms=500,e2e_ms=2000` over the config's SLO (the latency bounds given replace its own); a clear error
    for anything else."""
    if not text:
        return base
    bounds: dict[str, float] = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        key = key.strip()
        if key not in LATENCY_KEYS:
            keys = ", ".join(LATENCY_KEYS)
            raise ConfigError(f"--slo: unknown SLO key {key!r}; use {keys} (e.g. ttft_ms=500,e2e_ms=2000)")
        try:
            bounds[key] = float(value)
        except ValueError:
            raise ConfigError(
                f"--slo: expected key=number pairs such as ttft_ms=500,e2e_ms=2000 (got {part!r})"
            ) from None
    return base.model_copy(update={**dict.fromkeys(LATENCY_KEYS), **bounds})


def parse_steps(text: str | None) -> tuple[tuple[float, float], ...]:
    if not text:
        return ()
    out_ = []
    for part in text.split(","):
        seconds, _, rate = part.partition(":")
        try:
            out_.append((float(seconds), float(rate)))
        except ValueError:
            raise ConfigError(f"--steps: expected seconds:rate stages such as 30:2,10:20 (got {part!r})") from None
    return tuple(out_)


def load_table(result: LoadResult) -> Table:
    table = new_table(
        f"load {result.run_id}",
        "rates per second; latency in ms p50/p99; response time counts from the scheduled send",
    )
    for col in ("target", "offered/sent", "ok/s", "goodput", "TTFT", "service", "response", "lag p99", "err", "limit"):
        table.add_column(col, justify="left" if col in ("target", "limit") else "right", no_wrap=True)
    for name, s in result.summaries.items():
        lat = {k: d.p for k, d in s.latency.items()}
        lag = lat["generator_lag_ms"]["p99"]
        table.add_row(
            name,
            f"{rate(s.offered_rate_rps)}/{rate(s.achieved_rate_rps)}",
            rate(s.throughput_rps),
            rate(s.goodput_rps),
            f"{_ms(lat['ttft_ms']['p50'])}/{_ms(lat['ttft_ms']['p99'])}",
            f"{_ms(lat['e2e_ms']['p50'])}/{_ms(lat['e2e_ms']['p99'])}",
            f"{_ms(lat['response_time_ms']['p50'])}/{_ms(lat['response_time_ms']['p99'])}",
            Text(_ms(lag), style="red" if lag is not None and lag > LAG_WARN_MS else ""),
            Text(str(s.failed), style="red" if s.failed else "dim"),
            s.rate_limit.behavior,
        )
    return table


def load_cmd(
    ctx: typer.Context,
    config: Path = typer.Option(Path("assay.yaml"), "-c", "--config", help="Project file."),
    target: list[str] = typer.Option([], "--target", "-t", help="Load only this target (repeatable)."),
    rate: float | None = typer.Option(None, "--rate", help="Open loop: requests per second per target."),
    arrival: str = typer.Option(
        "constant", "--arrival", help="constant, poisson, gamma, ramp (with --rate-end), step (--steps) or trace."
    ),
    rate_end: float | None = typer.Option(None, "--rate-end", help="ramp: requests/s at the end of --duration."),
    steps: str | None = typer.Option(None, "--steps", help="step: seconds:rate stages, e.g. 30:2,10:20,30:2."),
    trace: Path | None = typer.Option(None, "--trace", help="Replay a trace (JSONL t, input_tokens; or CSV)."),
    burstiness: float = typer.Option(1.0, "--burstiness", help="gamma: coefficient of variation of the gaps."),
    concurrency: int | None = typer.Option(None, "--concurrency", help="Closed loop: requests kept in flight."),
    max_in_flight: int | None = typer.Option(None, "--max-in-flight", help="Open loop: cap on requests in flight."),
    duration: float | None = typer.Option(None, "--duration", help="Seconds to run."),
    requests: int | None = typer.Option(None, "--requests", "-n", help="Requests per target."),
    input_tokens: int = typer.Option(256, "--input-tokens", help="Prompt size (synthetic)."),
    prompts: str | None = typer.Option(
        None, "--prompts", help="Prompts from a dataset (gsm8k, demo-qa) or a golden-set .jsonl/.csv, cycled."
    ),
    output_tokens: int = typer.Option(64, "--output-tokens", help="max_tokens of each request."),
    slo: str | None = typer.Option(None, "--slo", help="Goodput objectives, e.g. ttft_ms=500,e2e_ms=2000."),
    seed: int = typer.Option(0, "--seed"),
    sweep: bool = typer.Option(False, "--sweep", help="Find the highest rate each target sustains (from --rate up)."),
    retries: int = typer.Option(0, "--retries", min=0, max=10, help="Client retries; Retry-After honoured."),
    retry_budget: float | None = typer.Option(None, "--retry-budget", help="Retries per first attempt, at most."),
    timeout: float | None = typer.Option(
        None, "--timeout", min=0.001, help="Total seconds allowed per request, for every target (over the config)."
    ),
    resume: str | None = typer.Option(None, "--resume", help="Finish an interrupted load run (RUN_ID or 'latest')."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
) -> None:
    """Drive traffic at the targets: open loop at a rate, or closed loop at a concurrency; always bounded."""
    db = state_dir() / "assay.db"
    if resume is not None:
        refuse_with_resume("load", ctx)
        result = _run(project_if_present(config), LoadOptions(requests=1, concurrency=1), db, as_json, resume)
        _show(result, as_json)
        return
    cfg = load_project(config)
    objectives = parse_slo(slo, cfg.slo)
    try:
        opts = LoadOptions(
            targets=tuple(target),
            rate=rate,
            arrival="trace" if trace else arrival,
            burstiness=burstiness,
            rate_end=rate_end,
            steps=parse_steps(steps),
            trace=read_trace(trace) if trace else (),
            concurrency=concurrency,
            max_in_flight=max_in_flight,
            duration_s=duration,
            requests=requests,
            input_tokens=input_tokens,
            prompts=prompts,
            output_tokens=output_tokens,
            slo=objectives,
            seed=seed,
            retries=retries,
            retry_budget=retry_budget,
            timeout_s=timeout,
        )
    except ValidationError as e:
        problems = [
            f"{'.'.join(map(str, x['loc'])) or 'options'}: {x['msg'].removeprefix('Value error, ')}" for x in e.errors()
        ]
        raise ConfigError("bad load options", problems) from None
    if sweep:
        _sweep(cfg, opts, db, as_json)
        return
    _show(_run(cfg, opts, db, as_json, None), as_json)


def _run(cfg: ProjectConfig | None, opts: LoadOptions, db: Path, as_json: bool, resume: str | None) -> LoadResult:
    panels: list[LoadPanel] = []

    def panel(pending: dict[str, int]) -> LoadPanel:
        panels.append(LoadPanel(pending))
        return panels[-1]

    def on_send(item: WorkItem) -> None:
        if panels:
            panels[0].on_send(item)

    return run_with_bars(
        lambda on_start, on_record: run_load(
            cfg, opts, db, resume=resume, on_record=on_record, on_start=on_start, on_send=on_send
        ),
        "load",
        as_json,
        view=panel,
    )


def _show(result: LoadResult, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(result.to_json()).decode() + "\n")
        return
    show_table(load_table(result))
    for name, s in result.summaries.items():
        if s.retries:
            r = s.retries
            rescued = r["rescued_response_time_ms"]["p50"]
            out.print(
                f"  {name}: retries: {r['extra_attempts']} extra attempts rescued {r['items_rescued']} of "
                f"{r['items_retried']} items; rescued responses took {_ms(rescued)} ms "
                f"(p50); failed tries used {r['failed_attempt_tokens']:,} tokens",
                highlight=False,
            )
        if s.rate_limit.behavior != "none":
            label = "saturates" if s.rate_limit.behavior == "saturates" else f"rate limiting {s.rate_limit.behavior}"
            out.print(f"  {name}: [bold]{label}[/]: {s.rate_limit.reason}", highlight=False)


def _sweep(cfg: ProjectConfig, opts: LoadOptions, db: Path, as_json: bool) -> None:
    if opts.duration_s is None:
        raise ConfigError("--sweep needs --duration: how long each rate is held")

    def on_point(name: str, p: SweepPoint) -> None:
        if not as_json:
            mark = "[green]✓[/]" if p.ok else "[red]✗[/]"
            t = p.summary.ttft.p
            err.print(
                f"  {mark} {name} at {rate(p.rate_rps)}/s: goodput {rate(p.summary.goodput_rps)}/s, "
                f"TTFT p50/p99 {_ms(t['p50'])}/{_ms(t['p99'])} ms, {p.summary.failed} errors",
                highlight=False,
            )

    result = run_async(run_sweep(cfg, opts, db, on_point=on_point))
    if as_json:
        sys.stdout.write(orjson.dumps(result.to_json()).decode() + "\n")
        return
    for name, knee in result.knees.items():
        slo = ", ".join(f"{k} ≤ {v:g}" for k, v in opts.slo.bounds.items()) or "no SLO (goodput = successes)"
        if knee is None:
            out.print(f"[bold]{name}[/]: does not sustain even {opts.rate:g}/s under {slo}")
        else:
            out.print(
                f"[bold]{name}[/]: knee at [bold green]{rate(knee)} requests/s[/] ({slo}; goodput ≥ 90% of offered)"
            )


class LoadPanel:
    """The live view of a load run: per target, sent and finished, in flight, errors, rate, rolling TTFT."""

    WINDOW = 200  # TTFTs in the rolling percentiles
    RATE_S = 5.0  # seconds in the rolling rate

    def __init__(self, pending: dict[str, int]) -> None:
        from collections import deque

        from rich.live import Live

        self.planned = pending
        self.sent = dict.fromkeys(pending, 0)
        self.done = dict.fromkeys(pending, 0)
        self.errors = dict.fromkeys(pending, 0)
        self.ttft: dict[str, deque[float]] = {t: deque(maxlen=self.WINDOW) for t in pending}
        self.finished_at: dict[str, deque[float]] = {t: deque() for t in pending}
        self.started = time.monotonic()
        self.live = Live(self._table(), console=err, refresh_per_second=4, transient=True, get_renderable=self._table)

    def on_send(self, item: WorkItem) -> None:
        if item.target in self.sent:
            self.sent[item.target] += 1

    def on_record(self, r: Record) -> None:
        if r.target not in self.done:
            return
        self.done[r.target] += 1
        now = time.monotonic()
        self.finished_at[r.target].append(now)
        while self.finished_at[r.target] and now - self.finished_at[r.target][0] > self.RATE_S:
            self.finished_at[r.target].popleft()
        if not r.ok:
            self.errors[r.target] += 1
        elif (x := r.ttft_ms) is not None:
            self.ttft[r.target].append(x)

    def _table(self) -> Table:
        elapsed = time.monotonic() - self.started
        table = new_table(f"load · {elapsed:,.0f} s")
        for col in ("target", "sent", "done", "in flight", "rate/s", "errors", "TTFT p50", "TTFT p99"):
            table.add_column(col, justify="left" if col == "target" else "right")
        for t in self.planned:
            window = sorted(self.ttft[t])
            p50 = window[len(window) // 2] if window else None
            p99 = window[min(len(window) - 1, int(len(window) * 0.99))] if window else None
            per_s = len(self.finished_at[t]) / min(self.RATE_S, max(elapsed, 1e-9))
            table.add_row(
                t,
                f"{self.sent[t]:,}",
                f"{self.done[t]:,}",
                f"{max(0, self.sent[t] - self.done[t]):,}",
                rate(per_s),
                Text(str(self.errors[t]), style="red" if self.errors[t] else "dim"),
                _ms(p50),
                _ms(p99),
            )
        return table

    def __enter__(self) -> LoadPanel:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()
