"""Load runs: open-loop (a rate on an absolute schedule) or closed-loop (fixed concurrency) traffic.

Each target gets its own schedule, all at once, so several targets meet the same
offered load in one run. Prompts are synthetic with a controlled size (unique per
request when asked, to defeat prompt caches). Every attempt is a Record in the
store with its intended start, so service time, response time and generator lag
come out of the same Records as everything else.

Resume: the schedule and the prompts are seeded, so a resumed run rebuilds them,
skips what has a final attempt and sends the rest on the same schedule, shifted
to start now (an open loop), or for what is left of the duration (a closed loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from assay.clients import open_session
from assay.clock import Clock
from assay.config import SLO, ProjectConfig, state_dir
from assay.datasets import data_dir, load_items
from assay.errors import ConfigError
from assay.model import ChatRequest, Message, StrictModel
from assay.records import Record, WorkItem
from assay.runner import Runner
from assay.runner.arrivals import Arrivals, schedule
from assay.runner.runs import Run, open_run
from assay.stats import TargetSummary, summarize_by_target, timeline
from assay.store import Store

__all__ = [
    "KIND",
    "LAG_WARN_MS",
    "LoadOptions",
    "LoadResult",
    "SweepPoint",
    "SweepResult",
    "behind_schedule",
    "load_summaries",
    "read_trace",
    "run_load",
    "run_sweep",
    "sustains",
    "synthetic_prompt",
]

log = logging.getLogger("assay")

KIND = "load"
SUITE = "load"
LAG_WARN_MS = 10.0  # a generator later than this (p99) is not keeping its schedule
_WORDS = (  # noqa: SIM905 - a line of words reads better than thirty strings
    "latency throughput request token stream model vendor queue budget error retry window second minute "
    "answer question context prompt cache limit rate burst steady user session traffic service region"
).split()


class LoadOptions(StrictModel):
    """One load run. Open loop when `rate` is set; closed loop (`concurrency` workers) otherwise."""

    targets: tuple[str, ...] = ()
    rate: float | None = Field(default=None, gt=0, description="Requests per second per target (open loop).")
    arrival: Literal["constant", "poisson", "gamma", "ramp", "step", "trace"] = "constant"
    burstiness: float = Field(default=1.0, gt=0)
    rate_end: float | None = Field(default=None, ge=0, description="ramp: the rate at the end of the duration.")
    steps: tuple[tuple[float, float], ...] = Field(default=(), description="step: (seconds, rate) stages.")
    trace: tuple[tuple[float, int | None], ...] = Field(default=(), description="trace: (offset s, input tokens).")
    concurrency: int | None = Field(default=None, ge=1, description="Closed loop: requests kept in flight.")
    max_in_flight: int | None = Field(default=None, ge=1, description="Open loop: cap on requests in flight.")
    duration_s: float | None = Field(default=None, gt=0)
    requests: int | None = Field(default=None, ge=1, description="Per target.")
    input_tokens: int = Field(default=256, ge=1)
    output_tokens: int = Field(default=64, ge=1)
    unique_prompts: bool = True
    prompts: str | None = Field(
        default=None, description="Prompts from a dataset (gsm8k, demo-qa, ...) or a golden-set file, cycled."
    )
    timeout_s: float | None = Field(
        default=None, gt=0, description="--timeout: the total for every target of this run, over any config."
    )
    slo: SLO = Field(default_factory=SLO, description="Goodput objectives (default: the config's `slo:`).")
    seed: int = 0
    retries: int = Field(default=0, ge=0, le=10, description="Client retries (Retry-After honoured, else backoff).")
    retry_budget: float | None = Field(default=None, gt=0, le=10, description="Retries per first attempt, at most.")
    sweep_id: str | None = Field(default=None, description="Set by --sweep: the steps of one sweep share it.")

    @model_validator(mode="after")
    def _bounded(self) -> LoadOptions:
        scheduled = self.arrival in ("step", "trace")  # these carry their own length and rates
        if self.duration_s is None and self.requests is None and not scheduled:
            raise ValueError("a load run needs --duration or --requests (or both): it must stop by itself")
        if self.rate is None and self.concurrency is None and not scheduled:
            raise ValueError("give --rate (open loop) or --concurrency (closed loop)")
        if self.rate is not None and self.concurrency is not None:
            raise ValueError("--rate (open loop) and --concurrency (closed loop) exclude each other")
        return self


def synthetic_prompt(tokens: int, rng: random.Random, unique: bool) -> str:
    """About `tokens` tokens of text (4 characters a token); a random nonce first when unique."""
    words: list[str] = [f"[{rng.getrandbits(64):016x}]"] if unique else []
    size = sum(len(w) + 1 for w in words)
    while size < tokens * 4:
        w = rng.choice(_WORDS)
        words.append(w)
        size += len(w) + 1
    return " ".join(words) + "\nReply with a short paragraph."


@dataclass
class LoadResult:
    run_id: str
    summaries: dict[str, TargetSummary]
    timelines: dict[str, list[dict[str, Any]]] | None = None

    def to_json(self) -> dict[str, Any]:
        targets = {n: s.to_json() for n, s in self.summaries.items()}
        for n, rows in (self.timelines or {}).items():
            targets[n]["timeline"] = rows
        return {"run_id": self.run_id, "targets": targets}


def _plan(opts: LoadOptions) -> tuple[list[float] | None, int]:
    """The open-loop schedule (None for closed loop) and how many requests are planned per target."""
    if opts.rate is None and opts.arrival not in ("step", "trace"):
        return None, opts.requests or 10_000_000
    try:
        arrivals = Arrivals(
            opts.arrival,
            opts.rate or 1.0,
            rate_end=opts.rate_end,
            burstiness=opts.burstiness,
            steps=opts.steps,
            times=tuple(t for t, _ in opts.trace),
            seed=opts.seed,
        )
        times = schedule(arrivals, opts.duration_s, opts.requests)
    except ValueError as e:
        raise ConfigError(f"arrivals: {e}") from None
    return times, len(times)


def _schedule_length(opts: LoadOptions, times: list[float] | None) -> float | None:
    """How long the offered load lasted: the duration, the stages, or (for a request count) the last send plus
    one mean gap, so that n requests at r per second are an offered rate of r, not n / ((n - 1) / r)."""
    if opts.arrival == "step":
        total = sum(d for d, _ in opts.steps)
        return min(opts.duration_s, total) if opts.duration_s else total
    if opts.duration_s:
        return opts.duration_s
    if not times:
        return None
    if len(times) > 1 and times[-1] > 0:
        return times[-1] * len(times) / (len(times) - 1)
    return 1.0 / opts.rate if opts.rate else None


def load_summaries(store: Store, run_id: str, with_timelines: bool = False) -> LoadResult:
    """The summaries of a stored load run, as `assay load` printed them and the report shows them."""
    info = store.run(run_id, kind=KIND)
    if info.kind != KIND:
        raise ConfigError(f"run {info.run_id} is a {info.kind} run, not a load run")
    opts = LoadOptions.model_validate(info.params)
    times, planned = _plan(opts)
    offered = planned if times is not None else None
    schedule_s = _schedule_length(opts, times)
    summaries = summarize_by_target(
        store.iter_records(info.run_id), info.targets, slo=opts.slo, offered=offered, schedule_s=schedule_s
    )
    timelines = None
    if with_timelines:
        timelines = {n: _timeline(store, info.run_id, n) for n in summaries}
    return LoadResult(info.run_id, summaries, timelines)


def _timeline(store: Store, run_id: str, target: str) -> list[dict[str, Any]]:
    """Per second of the run, session after session (a resumed run's pause is left out; each row of a resumed
    run says its session)."""
    rows: list[dict[str, Any]] = []
    sessions = store.conn.execute(
        "SELECT session, MIN(CASE WHEN intended_ns > 0 THEN intended_ns ELSE sent_ns END) FROM records "
        "WHERE run_id = ? AND target = ? AND (intended_ns > 0 OR sent_ns > 0) GROUP BY session ORDER BY session",
        (run_id, target),
    ).fetchall()
    offset = 0.0
    for session, t0 in sessions:
        part = timeline((r for r in store.iter_records(run_id, target) if r.session == session), 1.0, t0)
        for row in part:
            row["t_s"] += offset
            if len(sessions) > 1:
                row["session"] = session
        offset += len(part)
        rows += part
    return rows


def behind_schedule(s: TargetSummary) -> str | None:
    """A warning when the generator could not keep its schedule, else None."""
    lag = s.latency["generator_lag_ms"].p["p99"]
    offered = s.offered_rate_rps
    behind = offered is not None and offered > 0 and s.achieved_rate_rps < 0.95 * offered
    if (lag is not None and lag > LAG_WARN_MS) or behind:
        return (
            f"{s.target}: the generator could not keep its schedule (lag p99 {lag or 0:,.0f} ms, sent "
            f"{s.achieved_rate_rps:.1f} of {offered or 0:.1f}/s); response times include that wait, "
            "service times do not"
        )
    return None


async def run_load(
    config: ProjectConfig | None,
    opts: LoadOptions,
    db: Path,
    *,
    resume: str | None = None,
    clock: Clock | None = None,
    on_record: Callable[[Record], None] | None = None,
    on_start: Callable[[str, dict[str, int]], None] | None = None,
    on_send: Callable[[WorkItem], None] | None = None,
) -> LoadResult:
    """Run (or resume) a load run; every attempt is a Record, summaries stream through sketches."""
    if resume is None:
        if config is None:
            raise ValueError("a new load run needs a config")
        names = list(opts.targets) or [t.name for t in config.targets]
        opts = opts.model_copy(update={"targets": tuple(names)})
        _plan(opts)  # refuse a bad schedule before anything is written
    run = open_run(db, KIND, config, opts, opts.targets, resume=resume, clock=clock)
    try:
        if run.resumed:
            opts = LoadOptions.model_validate(run.params)
        await _execute(run, opts, on_record, on_start, on_send)
        result = load_summaries(run.store, run.run_id, with_timelines=True)
        for s in result.summaries.values():
            if (warning := behind_schedule(s)) is not None:
                log.warning(warning)
        return result
    finally:
        run.close()


async def _execute(
    run: Run,
    opts: LoadOptions,
    on_record: Callable[[Record], None] | None,
    on_start: Callable[[str, dict[str, int]], None] | None,
    on_send: Callable[[WorkItem], None] | None,
) -> None:
    times, planned = _plan(opts)
    if on_start:
        done = {n: sum(1 for k in run.done if k[0] == n) for n in opts.targets}  # a resumed run has less to send
        total = planned if times is not None else (opts.requests or 0)
        on_start(run.run_id, {n: max(0, total - done[n]) for n in opts.targets})
    async with run.active() as _, open_session() as session:
        jobs = []
        for name in opts.targets:
            runner = run.runner(
                run.clients(session, [name], total_s=opts.timeout_s),
                concurrency=opts.concurrency or 1,
                # No retries by default: load measures the API. With them, what they cost is reported.
                retries=opts.retries,
                on_record=on_record,
                keep_text=False,
                retry_budget=opts.retry_budget,
                on_send=on_send,
            )
            jobs.append(_drive(runner, run, name, opts, times))
        await asyncio.gather(*jobs)


async def _drive(runner: Runner, run: Run, target: str, opts: LoadOptions, times: list[float] | None) -> None:
    rng = random.Random(f"{opts.seed}/{target}")
    texts = prompt_pool(opts)

    def items() -> Iterator[WorkItem]:
        k = 0
        while opts.requests is None or k < opts.requests:
            recorded = opts.trace[k][1] if k < len(opts.trace) else None
            size = recorded or opts.input_tokens
            if texts:
                prompt = texts[k % len(texts)]
                if opts.unique_prompts:
                    prompt = f"[{rng.getrandbits(64):016x}] {prompt}"
            else:
                prompt = synthetic_prompt(size, rng, opts.unique_prompts)
            request = ChatRequest([Message("user", prompt)], max_tokens=opts.output_tokens, stream=True)
            yield WorkItem(target, SUITE, f"{k:07d}", request)
            k += 1

    done = run.done
    if times is not None:
        pending = ((t, w) for t, w in zip(times, items(), strict=False) if w.key not in done)
        if done:  # a resumed schedule starts now, at its first pending send
            first = next(pending, None)
            if first is None:
                return
            shift = first[0]
            pending = ((t - shift, w) for t, w in itertools.chain([first], pending))
        await runner.run_open_loop(pending, opts.max_in_flight, next_attempt=run.next_attempt)
        return
    # Closed loop: `concurrency` workers until the requests run out or the duration ends.
    work = runner.run_closed_loop(
        (w for w in items() if w.key not in done), opts.concurrency or 1, next_attempt=run.next_attempt
    )
    if opts.duration_s is None:
        await work
        return
    remaining = opts.duration_s - _elapsed_s(run, target) if done else opts.duration_s
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(work, timeout=max(0.0, remaining))


def _elapsed_s(run: Run, target: str) -> float:
    """How much of a closed loop's duration an earlier try of this run already used."""
    row = run.store.conn.execute(
        "SELECT MIN(wall_start_s), MAX(wall_start_s) FROM records WHERE run_id = ? AND target = ?",
        (run.run_id, target),
    ).fetchone()
    return float(row[1] - row[0]) if row and row[0] is not None else 0.0


@dataclass
class SweepPoint:
    rate_rps: float
    run_id: str
    summary: TargetSummary
    ok: bool

    def to_json(self) -> dict[str, Any]:
        s = self.summary
        return {
            "rate_rps": self.rate_rps,
            "run_id": self.run_id,
            "sustains": self.ok,  # goodput >= 90% of offered and errors <= 5% (`sustains`), not the per-request SLO
            "goodput_rps": s.goodput_rps,
            "throughput_rps": s.throughput_rps,
            "error_rate": s.error_rate,
            "ttft_ms": s.ttft.to_json(),
            "e2e_ms": s.e2e.to_json(),
            "rate_limit": s.rate_limit.behavior,
        }


@dataclass
class SweepResult:
    targets: dict[str, list[SweepPoint]]
    knees: dict[str, float | None]

    def to_json(self) -> dict[str, Any]:
        return {
            "targets": {
                n: {"knee_rps": self.knees[n], "curve": [p.to_json() for p in sorted(pts, key=lambda p: p.rate_rps)]}
                for n, pts in self.targets.items()
            }
        }


def sustains(s: TargetSummary, goodput_share: float = 0.9, max_error_rate: float = 0.05) -> bool:
    """A rate is sustained when goodput keeps up with the offered rate and errors stay rare."""
    offered = s.offered_rate_rps
    if not s.requests or not offered:
        return False
    return s.goodput_rps >= goodput_share * offered and (s.error_rate or 0.0) <= max_error_rate


async def run_sweep(
    config: ProjectConfig,
    opts: LoadOptions,
    db: Path,
    *,
    factor: float = 1.5,
    max_steps: int = 12,
    bisect: int = 3,
    on_point: Callable[[str, SweepPoint], None] | None = None,
) -> SweepResult:
    """Find each target's knee: the highest open-loop rate it sustains under the SLOs.

    Rates grow by `factor` from `opts.rate` until a step fails (or `max_steps`), then the gap
    between the last sustained and the first failed rate is bisected `bisect` times. A target
    stops early once it fails: saturated targets are not pushed further.
    """
    if opts.rate is None:
        raise ConfigError("--sweep needs a starting --rate")
    names = list(opts.targets) or [t.name for t in config.targets]
    points: dict[str, list[SweepPoint]] = {}
    knees: dict[str, float | None] = {}
    sweep_id = secrets.token_hex(4)  # each step is a run; the report finds its siblings by this

    async def step(name: str, rate: float) -> SweepPoint:
        update = {"rate": rate, "targets": (name,), "sweep_id": sweep_id}
        result = await run_load(config, opts.model_copy(update=update), db)
        s = result.summaries[name]
        point = SweepPoint(rate, result.run_id, s, sustains(s))
        points[name].append(point)
        if on_point:
            on_point(name, point)
        return point

    for name in names:
        points[name] = []
        good: float | None = None
        bad: float | None = None
        rate = opts.rate
        for _ in range(max_steps):
            if (await step(name, rate)).ok:
                good, rate = rate, rate * factor
            else:
                bad = rate
                break
        if good is not None and bad is not None:
            for _ in range(bisect):
                mid = (good + bad) / 2
                if (await step(name, mid)).ok:
                    good = mid
                else:
                    bad = mid
        knees[name] = good
    return SweepResult(points, knees)


def prompt_pool(opts: LoadOptions) -> list[str]:
    """The prompts of `opts.prompts` (a dataset name or golden-set file), in dataset order; none: synthetic."""
    if opts.prompts is None:
        return []
    items = load_items(opts.prompts, data_dir(), state_dir() / "datasets")
    return [it.question if not it.messages else it.messages[-1][1] for it in items]


def read_trace(path: Path) -> tuple[tuple[float, int | None], ...]:
    """A recorded trace: JSONL of {"t": seconds, "input_tokens": n (optional)}, or CSV t[,input_tokens]."""
    import csv

    import orjson

    if not path.is_file():
        raise ConfigError(f"{path}: no such trace file")
    rows: list[tuple[float, int | None]] = []
    with path.open(encoding="utf-8") as f:
        if path.suffix.lower() == ".csv":
            reader = csv.reader(f)
            for n, row in enumerate(reader, 1):
                if n == 1 and row and not row[0].replace(".", "", 1).isdigit():
                    continue  # a header
                try:
                    rows.append((float(row[0]), int(row[1]) if len(row) > 1 and row[1] else None))
                except (ValueError, IndexError):
                    raise ConfigError(f"{path}:{n}: expected t[,input_tokens]") from None
        else:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    doc = orjson.loads(line)
                    rows.append((float(doc["t"]), int(doc["input_tokens"]) if doc.get("input_tokens") else None))
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    raise ConfigError(f'{path}:{n}: expected {{"t": seconds, "input_tokens": n}}') from None
    if not rows:
        raise ConfigError(f"{path}: the trace is empty")
    if any(b[0] < a[0] for a, b in itertools.pairwise(rows)):
        raise ConfigError(f"{path}: timestamps must not go backwards")
    start = rows[0][0]
    return tuple((t - start, size) for t, size in rows)
