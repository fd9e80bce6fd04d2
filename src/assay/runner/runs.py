"""The one run lifecycle: every command that sends requests creates or resumes its run here.

A run is a row in the store with the validated config (secrets redacted), the
command's options, the versions that make two runs comparable, and a status:
`running` while it sends, `complete` when it finished, `interrupted` when it was
cancelled or crashed. Resuming reopens the same run with its stored config and
options, skips the items that already have a final attempt, and continues the
attempt numbers of the others, so no (run, target, suite, item, attempt) is ever
written twice. Nothing is written before the input is known to be good.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import secrets
import socket
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from pydantic import BaseModel

import assay
from assay.catalog import PriceBook, load_catalog
from assay.clients import ProviderClient, Timeouts, make_client
from assay.clock import Clock, SystemClock
from assay.config import ProjectConfig, TimeoutSettings, missing_key_envs, state_dir
from assay.errors import ConfigError
from assay.records import ItemKey, WorkItem
from assay.runner.execute import Annotator, Runner
from assay.runner.retry import RetryPolicy
from assay.store import RecordWriter, RunInfo, Store

__all__ = ["Run", "client_timeouts", "config_hash", "new_run_id", "open_run", "stored_config", "versions"]

log = logging.getLogger("assay")

_SECRET_HINTS = ("auth", "key", "token", "secret", "password", "cookie")
REDACTED = "<redacted>"


def new_run_id(clock: Clock) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(clock.wall_s())) + "-" + secrets.token_hex(3)


def stored_config(config: ProjectConfig) -> dict[str, Any]:
    """The config as stored with a run: header values that look like credentials are redacted."""
    data = config.model_dump(mode="json")
    for target in data["targets"]:
        target["headers"] = {
            k: (REDACTED if any(h in k.lower() for h in _SECRET_HINTS) else v)
            for k, v in target.get("headers", {}).items()
        }
    return data


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


def client_timeouts(t: TimeoutSettings) -> Timeouts:
    # A first-token or idle limit longer than the total one would never fire.
    total = t.timeout_s
    return Timeouts(t.connect_timeout_s, min(t.first_token_timeout_s, total), min(t.idle_timeout_s, total), total)


@dataclass
class Run:
    """An open run: what it is, where its Records go, and what an earlier try already finished."""

    run_id: str
    kind: str
    config: ProjectConfig
    params: dict[str, Any]  # the command's options, as stored
    db: Path
    store: Store
    clock: Clock
    prices: PriceBook
    targets: list[str]  # the targets this run sends to (judges included)
    done: set[ItemKey] = field(default_factory=set)
    next_attempt: dict[ItemKey, int] = field(default_factory=dict)
    resumed: bool = False
    writer: RecordWriter | None = None
    session: int = 0  # 0 for the run's first process, 1 after one --resume...

    # -- the lifecycle --------------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def active(self, queue_limit: int = 0) -> AsyncIterator[RecordWriter]:
        """Status `running` (owned by this process) while inside; `complete` when the work and the writer both
        finished, `interrupted` otherwise. `queue_limit` bounds the writer's queue (see RecordWriter.offer)."""
        self.session = self.store.start_session(self.run_id, _owner())
        self.writer = RecordWriter(self.db, queue_limit)
        finished = False
        try:
            yield self.writer
            finished = True
        finally:
            writer, self.writer = self.writer, None
            try:
                await writer.aclose()
            except BaseException:
                finished = False
                raise
            finally:
                status = "complete" if finished else "interrupted"
                self.store.set_status(self.run_id, status, self.clock.wall_s())
                if writer.duplicates:
                    log.warning(
                        "run %s: %d attempt(s) were already recorded and were not written again "
                        "(is another process resuming the same run?)",
                        self.run_id,
                        writer.duplicates,
                    )

    async def flush(self) -> None:
        """Wait until every Record written so far can be read back (before a phase that reads them)."""
        if self.writer is not None:
            await self.writer.aflush()

    def close(self) -> None:
        self.store.close()

    def pending(self, items: Iterable[WorkItem]) -> dict[str, int]:
        """Items still to send, per target (for progress bars: what a resumed run has left)."""
        out: dict[str, int] = {}
        for item in items:
            if item.key not in self.done:
                out[item.target] = out.get(item.target, 0) + 1
        return out

    def refresh_progress(self) -> None:
        """Re-read what is finished (after a phase, before the next one resumes its own items)."""
        self.done, self.next_attempt = self.store.attempts_so_far(self.run_id)

    # -- sending --------------------------------------------------------------------------------------------------
    def timeouts(self, target: str, section: object = None, total_s: float | None = None) -> Timeouts:
        return client_timeouts(self.config.timeouts_for(target, section, total_s))

    def clients(
        self, session: Any, names: Iterable[str], section: object = None, total_s: float | None = None
    ) -> dict[str, ProviderClient]:
        """A client per target, each with its own effective timeouts (config/timeouts.py)."""
        return {
            n: make_client(self.config.target(n), session, self.timeouts(n, section, total_s), self.clock)
            for n in dict.fromkeys(names)
        }

    def runner(
        self,
        clients: dict[str, ProviderClient],
        *,
        concurrency: int = 4,
        retries: int = 0,
        annotate: Annotator | None = None,
        **kwargs: Any,
    ) -> Runner:
        """A Runner writing to this run: every Record priced, annotated and stored."""
        assert self.writer is not None, "open the run with `async with run.active():` first"
        return Runner(
            self.run_id,
            clients,
            self.writer,
            concurrency,
            RetryPolicy(max_retries=retries),
            clock=self.clock,
            price=self.prices.cost,
            annotate=annotate,
            session=self.session,
            **kwargs,
        )


def _with_secrets(stored: ProjectConfig, info: RunInfo, current: ProjectConfig | None) -> ProjectConfig:
    """The stored config, with header values redacted at storage time taken from the current project file."""
    redacted = [(t.name, k) for t in stored.targets for k, v in t.headers.items() if v == REDACTED]
    if not redacted:
        return stored
    if current is not None and config_hash(current) == info.config_hash:
        return current
    target, header = redacted[0]
    raise ConfigError(
        f"run {info.run_id}: target {target!r} sends header {header!r}, whose value was not stored; resume with "
        "the project file the run started from (-c FILE) so it can be sent again"
    )


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _still_running(owner: str | None) -> bool:
    """Whether the process that owns a `running` run is alive (on this machine; elsewhere, assume it is)."""
    if not owner or ":" not in owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return int(pid) != os.getpid()


def _price_book(config: ProjectConfig, names: Iterable[str]) -> PriceBook:
    """Prices where known; an unpriced target is measured anyway, its cost unknown, with one warning."""
    book, unpriced = PriceBook.known(config.targets, load_catalog(state_dir()))
    for name in dict.fromkeys(names):
        if name in unpriced:
            log.warning(
                "target %r has no price, so its cost is unknown (%s); add `pricing:` to it to see costs",
                name,
                unpriced[name],
            )
    return book


def open_run(
    db: Path,
    kind: str,
    config: ProjectConfig | None,
    params: BaseModel | None,
    targets: Iterable[str],
    *,
    resume: str | None = None,
    clock: Clock | None = None,
) -> Run:
    """Create a run (config and params given) or reopen `resume` (RUN_ID or 'latest' of this kind).

    `targets` are every target the run sends to (judges included), stored with the run. On resume,
    `config` (the project file as it is now) only supplies header values that were redacted when
    the run was stored, and only when it is the same config (same hash).
    A new run's input is checked before anything is written: unknown targets, keys missing
    from the environment. A resumed run uses its stored config, options and targets; the
    caller validates `run.params` into its options model.
    """
    clock = clock or SystemClock()
    if resume is None:
        if config is None or params is None:
            raise ConfigError(f"a new {kind} run needs a config")
        names = list(dict.fromkeys(targets))
        for n in names:
            config.target(n)  # refuses unknown names with the list of known ones
        missing = missing_key_envs(config, names)
        if missing:
            raise ConfigError(f"cannot start the {kind} run: API keys missing", missing)
        prices = _price_book(config, names)
        store = Store(db)
        try:
            run_id = new_run_id(clock)
            stored = params.model_dump(mode="json")
            store.create_run(
                run_id, kind, clock.wall_s(), config_hash(config), stored_config(config), stored, versions(), names
            )
        except BaseException:
            store.close()
            raise
        return Run(run_id, kind, config, stored, db, store, clock, prices, names)
    store = Store(db)
    try:
        info = store.run(resume, kind=kind)
        if info.kind != kind:
            raise ConfigError(f"run {info.run_id} is a {info.kind} run, not a {kind} run; resume it with `assay "
                              f"{info.kind} --resume {info.run_id}`")  # fmt: skip
        if info.status == "complete":
            raise ConfigError(f"run {info.run_id} is complete: nothing to resume (`assay report {info.run_id}`)")
        if info.status == "running" and _still_running(info.owner):
            raise ConfigError(
                f"run {info.run_id} is still running (process {info.owner}); resuming it too would send its "
                "requests twice"
            )
        config = _with_secrets(ProjectConfig.model_validate(info.config), info, config)
        names = info.targets
        missing = missing_key_envs(config, names)
        if missing:
            raise ConfigError(f"cannot resume the {kind} run: API keys missing", missing)
        prices = _price_book(config, names)
        done, next_attempt = store.attempts_so_far(info.run_id)
    except BaseException:
        store.close()
        raise
    return Run(info.run_id, kind, config, info.params, db, store, clock, prices, names, done, next_attempt, True)
