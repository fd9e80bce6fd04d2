"""The reliability probe: N requests per target with one standard prompt, measured raw.

No retries by default: the probe measures what the API does, not what a
client could paper over. With `retries`, every attempt is still its own Record.
"""

from __future__ import annotations

import hashlib
import platform
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

import assay
from assay.catalog import PriceBook, load_catalog
from assay.clients import Timeouts, make_client, open_session
from assay.clock import Clock, SystemClock
from assay.config import ProbeSettings, ProjectConfig, missing_key_envs, state_dir
from assay.errors import ConfigError
from assay.model import ChatRequest, Message, Record
from assay.runner import RetryPolicy, Runner, WorkItem
from assay.stats import TargetSummary, summarize
from assay.store import RecordWriter, Store

__all__ = [
    "ProbeOptions",
    "ProbeResult",
    "config_hash",
    "price_book",
    "probe_items",
    "run_probe",
    "summarize_run",
    "versions",
]

SUITE = "probe"


class ProbeOptions(ProbeSettings):
    """The config's `probe:` settings, with command-line overrides and the targets to probe."""

    targets: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: ProjectConfig, **overrides: Any) -> ProbeOptions:
        given = {k: v for k, v in overrides.items() if v is not None}
        return cls.model_validate({**config.probe.model_dump(), **given})

    @property
    def timeouts(self) -> Timeouts:
        # A first-token or idle limit longer than the total one would never fire.
        t = self.timeout_s
        return Timeouts(self.connect_timeout_s, min(self.first_token_timeout_s, t), min(self.idle_timeout_s, t), t)


@dataclass
class ProbeResult:
    run_id: str
    summaries: dict[str, TargetSummary]
    interrupted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "targets": {n: s.to_json() for n, s in self.summaries.items()}}


def config_hash(config: ProjectConfig) -> str:
    """Same config, same hash: two runs with one hash are comparable."""
    return hashlib.sha256(orjson.dumps(stored_config(config), option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def versions() -> dict[str, str]:
    return {
        "assay": assay.__version__,
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "platform": platform.platform(terse=True),
    }


def probe_items(config: ProjectConfig, opts: ProbeOptions) -> list[WorkItem]:
    names = list(opts.targets) or [t.name for t in config.targets]
    for n in names:
        config.target(n)  # refuses unknown names with the list of known ones
    request = ChatRequest([Message("user", opts.prompt)], max_tokens=opts.max_tokens, stream=opts.stream)
    width = len(str(opts.requests - 1))
    return [WorkItem(n, SUITE, f"{i:0{width}d}", request, opts.prompt) for n in names for i in range(opts.requests)]


def _checked_items(config: ProjectConfig, opts: ProbeOptions) -> list[WorkItem]:
    items = probe_items(config, opts)
    missing = missing_key_envs(config, {i.target for i in items})
    if missing:
        raise ConfigError("cannot probe: API keys missing", missing)
    return items


def price_book(config: ProjectConfig) -> PriceBook:
    """Prices for every target, so each Record carries its cost; an unpriced target is refused here."""
    return PriceBook.for_targets(config.targets, load_catalog(state_dir()))


_SECRET_HINTS = ("auth", "key", "token", "secret", "password", "cookie")


def stored_config(config: ProjectConfig) -> dict[str, Any]:
    """The config as stored with a run: header values that look like credentials are redacted."""
    data = config.model_dump(mode="json")
    for target in data["targets"]:
        target["headers"] = {
            k: ("<redacted>" if any(h in k.lower() for h in _SECRET_HINTS) else v)
            for k, v in target.get("headers", {}).items()
        }
    return data


def summarize_run(store: Store, run_id: str, bucket_s: float | None = None) -> dict[str, TargetSummary]:
    by_target: dict[str, list[Record]] = {}
    for r in store.iter_records(run_id):
        by_target.setdefault(r.target, []).append(r)
    info = store.run(run_id)
    order = [t["name"] for t in info.config.get("targets", [])]
    names = [n for n in order if n in by_target] + [n for n in by_target if n not in order]
    return {n: summarize(n, by_target[n], bucket_s) for n in names}


@dataclass
class _Plan:
    """A run opened in the store: what to send, and what an earlier try already finished."""

    run_id: str
    config: ProjectConfig
    opts: ProbeOptions
    items: list[WorkItem]
    done: set[tuple[str, str, str]]
    next_attempt: dict[tuple[str, str, str], int]
    prices: PriceBook

    def pending(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for item in self.items:
            out[item.target] = out.get(item.target, 0) + (item.key not in self.done)
        return out


def _open_run(
    store: Store, config: ProjectConfig, opts: ProbeOptions, items: list[WorkItem], prices: PriceBook, clock: Clock
) -> _Plan:
    run_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime(clock.wall_s())) + "-" + secrets.token_hex(3)
    params = opts.model_dump(mode="json")
    store.create_run(run_id, "probe", clock.wall_s(), config_hash(config), stored_config(config), params, versions())
    return _Plan(run_id, config, opts, items, set(), {}, prices)


def _reopen_run(store: Store, run_id: str) -> _Plan:
    info = store.run(run_id)
    if info.kind != "probe":
        raise ConfigError(f"run {info.run_id} is a {info.kind} run, not a probe")
    config = ProjectConfig.model_validate(info.config)
    opts = ProbeOptions.model_validate(info.params)
    items = _checked_items(config, opts)
    prices = price_book(config)
    done, next_attempt = store.attempts_so_far(info.run_id)
    store.set_status(info.run_id, "running")
    return _Plan(info.run_id, config, opts, items, done, next_attempt, prices)


async def _execute(
    store: Store, plan: _Plan, db_path: Path, clock: Clock, on_record: Callable[[Record], None] | None
) -> None:
    """Send the pending items; the run ends `complete`, or `interrupted` if cancelled."""
    writer = RecordWriter(db_path)
    status = "interrupted"
    try:
        async with open_session() as session:
            names = {i.target for i in plan.items}
            clients = {
                t.name: make_client(t, session, plan.opts.timeouts, clock)
                for t in plan.config.targets
                if t.name in names
            }
            retry = RetryPolicy(max_retries=plan.opts.retries)
            pace_s = plan.opts.duration_s / plan.opts.requests if plan.opts.duration_s else 0.0
            runner = Runner(
                plan.run_id,
                clients,
                writer,
                plan.opts.concurrency,
                retry,
                clock=clock,
                on_record=on_record,
                price=plan.prices.cost,
                keep_text=False,
                pace_s=pace_s,
            )
            await runner.run(plan.items, plan.done, plan.next_attempt)
        status = "complete"
    finally:
        await writer.aclose()
        store.set_status(plan.run_id, status, clock.wall_s())


async def run_probe(
    config: ProjectConfig | None,
    opts: ProbeOptions,
    db_path: Path,
    *,
    resume: str | None = None,
    clock: Clock | None = None,
    on_record: Callable[[Record], None] | None = None,
    on_start: Callable[[str, dict[str, int]], None] | None = None,
) -> ProbeResult:
    """Run (or resume) a probe and return its per-target summaries.

    On resume the config and options are the ones stored with the run.
    `on_start(run_id, pending items per target)` is called once the plan is known.
    """
    clock = clock or SystemClock()
    items: list[WorkItem] = []
    prices: PriceBook | None = None
    if resume is None:
        if config is None:
            raise ConfigError("a new probe needs a config")
        items = _checked_items(config, opts)  # refuse bad input before anything is written
        prices = price_book(config)
    store = Store(db_path)
    try:
        if resume:
            plan = _reopen_run(store, resume)
        else:
            assert config is not None and prices is not None  # checked above, before the store was opened
            plan = _open_run(store, config, opts, items, prices, clock)
        if on_start:
            on_start(plan.run_id, plan.pending())
        await _execute(store, plan, db_path, clock, on_record)
        return ProbeResult(plan.run_id, summarize_run(store, plan.run_id, plan.opts.bucket_s))
    finally:
        store.close()
