"""Load runs: open-loop (a rate on an absolute schedule) or closed-loop (fixed concurrency) traffic.

Each target gets its own schedule, all at once, so several targets meet the same
offered load in one run. Prompts are synthetic with a controlled size (unique per
request when asked, to defeat prompt caches). Every attempt is a Record in the
store with its intended start, so service time, response time and generator lag
come out of the same Records as everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import random
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from assay.clients import Timeouts, make_client, open_session
from assay.clock import Clock, SystemClock
from assay.config import ProjectConfig, missing_key_envs, state_dir
from assay.datasets import data_dir, load_items
from assay.errors import ConfigError
from assay.model import ChatRequest, Message, Record, StrictModel
from assay.runner import RetryPolicy, Runner, WorkItem
from assay.runner.arrivals import Arrivals, schedule
from assay.stats import LoadSummary, summarize_load, timeline
from assay.store import RecordWriter, Store
from assay.suites.probe import config_hash, price_book, stored_config, versions

__all__ = [
    "LoadOptions",
    "LoadResult",
    "SweepPoint",
    "SweepResult",
    "read_trace",
    "run_load",
    "run_sweep",
    "sustains",
    "synthetic_prompt",
]

KIND = "load"
SUITE = "load"
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
    timeout_s: float = Field(default=60.0, gt=0)
    slo: dict[str, float] = Field(default_factory=dict)
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
        unknown = set(self.slo) - {"ttft_ms", "e2e_ms", "tpot_ms"}
        if unknown:
            raise ValueError(f"unknown SLO key(s) {', '.join(sorted(unknown))}; use ttft_ms, e2e_ms, tpot_ms")
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
    summaries: dict[str, LoadSummary]

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
    except ValueError as e:
        raise ConfigError(f"arrivals: {e}") from None
    times = schedule(arrivals, opts.duration_s, opts.requests)
    return times, len(times)


async def run_load(
    config: ProjectConfig,
    opts: LoadOptions,
    db: Path,
    *,
    clock: Clock | None = None,
    on_record: Callable[[Record], None] | None = None,
    on_start: Callable[[str, dict[str, int]], None] | None = None,
    on_send: Callable[[WorkItem], None] | None = None,
) -> LoadResult:
    clock = clock or SystemClock()
    names = list(opts.targets) or [t.name for t in config.targets]
    targets = [config.target(n) for n in names]
    missing = missing_key_envs(config, set(names))
    if missing:
        raise ConfigError("cannot load-test: API keys missing", missing)
    prices = price_book(config)
    times, planned = _plan(opts)
    run_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime(clock.wall_s())) + "-" + secrets.token_hex(3)
    store = Store(db)
    try:
        params = opts.model_dump(mode="json")
        store.create_run(run_id, KIND, clock.wall_s(), config_hash(config), stored_config(config), params, versions())
        if on_start:
            on_start(run_id, {n: planned if times is not None else (opts.requests or 0) for n in names})
        writer = RecordWriter(db)
        status = "interrupted"
        started = clock.now_ns()
        try:
            timeouts = Timeouts(10.0, opts.timeout_s, opts.timeout_s, opts.timeout_s)
            async with open_session() as session:
                jobs = []
                for t in targets:
                    runner = Runner(
                        run_id,
                        {t.name: make_client(t, session, timeouts, clock)},
                        writer,
                        opts.concurrency or 1,
                        # No retries by default: load measures the API. With them, what they cost is reported.
                        RetryPolicy(max_retries=opts.retries),
                        clock=clock,
                        on_record=on_record,
                        price=prices.cost,
                        keep_text=False,
                        retry_budget=opts.retry_budget,
                        on_send=on_send,
                    )
                    jobs.append(_drive(runner, t.name, opts, times))
                # Everything built so far (modules, config, schedules) lives for the whole run: move it out
                # of the collector's reach, so a full collection mid-run does not stall the event loop for
                # tens of milliseconds while requests wait to be sent (vLLM's bench does the same).
                gc.collect()
                gc.freeze()
                try:
                    await asyncio.gather(*jobs)
                finally:
                    gc.unfreeze()
            status = "complete"
        finally:
            await writer.aclose()
            store.set_status(run_id, status, clock.wall_s())
        elapsed_s = (clock.now_ns() - started) / 1e9
        schedule_s = opts.duration_s or (times[-1] if times else elapsed_s) or elapsed_s
        summaries, timelines = {}, {}
        for n in names:
            finals = store.conn.execute(
                "SELECT COUNT(*) FROM records WHERE run_id = ? AND target = ? AND final", (run_id, n)
            ).fetchone()[0]
            offered = planned if times is not None else finals
            summaries[n] = summarize_load(n, store.iter_records(run_id, n), offered, schedule_s, opts.slo)
            t0 = store.conn.execute(
                "SELECT MIN(CASE WHEN intended_ns > 0 THEN intended_ns ELSE sent_ns END) FROM records "
                "WHERE run_id = ? AND target = ? AND (intended_ns > 0 OR sent_ns > 0)",
                (run_id, n),
            ).fetchone()[0]
            timelines[n] = timeline(store.iter_records(run_id, n), 1.0, t0) if t0 else []
        return LoadResult(run_id, summaries, timelines)
    finally:
        store.close()


async def _drive(runner: Runner, target: str, opts: LoadOptions, times: list[float] | None) -> None:
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

    if times is not None:
        await runner.run_open_loop(zip(times, items(), strict=False), opts.max_in_flight)
        return
    # Closed loop: `concurrency` workers until the requests run out or the duration ends.
    work = runner.run_closed_loop(items(), opts.concurrency or 1)
    if opts.duration_s is None:
        await work
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(work, timeout=opts.duration_s)


@dataclass
class SweepPoint:
    rate_rps: float
    run_id: str
    summary: LoadSummary
    ok: bool

    def to_json(self) -> dict[str, Any]:
        s = self.summary
        return {
            "rate_rps": round(self.rate_rps, 3),
            "run_id": self.run_id,
            "meets_slo": self.ok,
            "goodput_rps": round(s.goodput_rps, 3),
            "throughput_rps": round(s.throughput_rps, 3),
            "error_rate": round(sum(s.errors.values()) / s.requests, 4) if s.requests else None,
            "ttft_ms": s.latency["ttft_ms"],
            "e2e_ms": s.latency["e2e_ms"],
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


def sustains(s: LoadSummary, goodput_share: float = 0.9, max_error_rate: float = 0.05) -> bool:
    """A rate is sustained when goodput keeps up with the offered rate and errors stay rare."""
    if not s.requests or s.offered_rate_rps <= 0:
        return False
    errors = sum(s.errors.values()) / s.requests
    return s.goodput_rps >= goodput_share * s.offered_rate_rps and errors <= max_error_rate


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
