"""Run a plan of requests: bounded concurrency per target, retries, one Record per attempt, resume.

Each target gets its own queue and `concurrency` workers, so a slow or failing
target never holds back another. A cancelled attempt still writes its Record
(class `cancelled`, not final) before the cancellation goes on, so an
interrupted run can be resumed: finished items are skipped and attempt
numbers continue where they stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from assay.clients import ProviderClient
from assay.clock import Clock, SystemClock
from assay.errors import Cancelled, ProviderError
from assay.model import Timing
from assay.records import Annotation, ItemKey, Record, WorkItem, make_record
from assay.runner.retry import RetryPolicy

__all__ = ["Annotator", "RecordSink", "Runner", "collector_quiet", "run_all"]

# What is known about an attempt when it is written (a scorer's verdict, the item's tags), appended with it.
Annotator = Callable[[Record], Iterable[Annotation]]


_quiet_depth = 0


async def run_all(tasks: list[asyncio.Task[Any]]) -> None:
    """Await every worker; if one fails or the caller is cancelled, cancel the rest and wait for them to stop."""
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.contextmanager
def collector_quiet() -> Iterator[None]:
    """While requests are in flight, keep the cyclic collector's full passes short.

    Everything alive when sending starts (modules, config, plans, clients) lives for the
    whole run; moving it out of the collector's reach (`gc.freeze`) means a full collection
    mid-run walks only what the run allocated since, instead of stalling the event loop for
    tens of milliseconds while requests wait to be sent and chunks wait to be stamped (vLLM's
    bench does the same). Nested uses (several runners at once) share one freeze.
    """
    global _quiet_depth
    if _quiet_depth == 0:
        gc.collect()
        gc.freeze()
    _quiet_depth += 1
    try:
        yield
    finally:
        _quiet_depth -= 1
        if _quiet_depth == 0:
            gc.unfreeze()


class RecordSink(Protocol):
    def put(self, record: Record, annotations: Iterable[Annotation] = ()) -> None: ...


@dataclass
class Runner:
    run_id: str
    clients: dict[str, ProviderClient]
    sink: RecordSink
    concurrency: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Clock = field(default_factory=SystemClock)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    on_record: Callable[[Record], None] | None = None
    price: Callable[[Record], float | None] | None = None  # sets each Record's cost_usd from its tokens
    annotate: Annotator | None = None  # e.g. scores a reply; its annotations are written with the Record
    retry_budget: float | None = None  # retries allowed per first attempt (0.2 = 20%); None: no budget
    on_send: Callable[[WorkItem], None] | None = None  # each attempt, just before it is sent (live in-flight counts)
    keep_text: bool = True
    pace_s: float = 0.0  # > 0: a target's k-th pending item is not sent before start + k * pace_s
    session: int = 0  # the run's session (0 the first process, then one per --resume), stamped on each Record
    _next_attempt: dict[ItemKey, int] = field(default_factory=dict, init=False, repr=False)
    _due: dict[ItemKey, int] = field(default_factory=dict, init=False, repr=False)
    _written: int = field(default=0, init=False, repr=False)
    _firsts: int = field(default=0, init=False, repr=False)
    _retries: int = field(default=0, init=False, repr=False)

    async def run(
        self,
        items: Iterable[WorkItem],
        done: set[ItemKey] | None = None,
        next_attempt: dict[ItemKey, int] | None = None,
    ) -> int:
        """Run every item not in `done`; return how many Records were written."""
        with collector_quiet():  # before any pacing clock starts: the collection itself takes time
            return await self._run(items, done, next_attempt)

    async def _run(
        self, items: Iterable[WorkItem], done: set[ItemKey] | None, next_attempt: dict[ItemKey, int] | None
    ) -> int:
        done = done or set()
        self._next_attempt = dict(next_attempt or {})
        self._written = 0
        queues: dict[str, deque[WorkItem]] = {}
        for item in items:
            if item.key not in done:
                queues.setdefault(item.target, deque()).append(item)
        start_ns = self.clock.now_ns()
        self._due = {}
        if self.pace_s > 0:
            for q in queues.values():
                for k, item in enumerate(q):
                    self._due[item.key] = start_ns + int(k * self.pace_s * 1e9)
        workers = [
            asyncio.create_task(self._worker(q), name=f"assay-worker-{target}")
            for target, q in queues.items()
            for _ in range(min(self.concurrency, len(q)))
        ]
        await run_all(workers)
        return self._written

    async def run_open_loop(
        self,
        arrivals: Iterable[tuple[float, WorkItem]],
        max_in_flight: int | None = None,
        next_attempt: dict[ItemKey, int] | None = None,
    ) -> int:
        """Send each item at start + its offset in seconds, whatever the target does (open loop).

        `arrivals` may be a generator, so a long schedule is never held in memory; returns Records written.

        Each Record's intended start is its scheduled time. With `max_in_flight`, a send
        waits for a free slot but keeps its intended start, so the wait shows up as
        response time and generator lag instead of vanishing (coordinated omission).
        Only in-flight requests hold a task, so memory stays flat however long the schedule.
        `next_attempt` continues the attempt numbers of a resumed run.
        """
        with collector_quiet():  # before the schedule's clock starts: the collection itself takes time
            return await self._open_loop(arrivals, max_in_flight, next_attempt)

    async def _open_loop(
        self,
        arrivals: Iterable[tuple[float, WorkItem]],
        max_in_flight: int | None,
        next_attempt: dict[ItemKey, int] | None,
    ) -> int:
        self._next_attempt, self._written, self._due = dict(next_attempt or {}), 0, {}
        start = self.clock.now_ns()
        slots = asyncio.Semaphore(max_in_flight) if max_in_flight else None
        running: set[asyncio.Task[None]] = set()

        def done(task: asyncio.Task[None]) -> None:
            running.discard(task)
            if slots is not None:
                slots.release()

        try:
            for offset, item in arrivals:
                due = start + int(offset * 1e9)
                self._due[item.key] = due
                wait_s = (due - self.clock.now_ns()) / 1e9
                if wait_s > 0:
                    await self.clock.sleep(wait_s)
                if slots is not None:
                    await slots.acquire()
                task = asyncio.create_task(self._do(item), name=f"assay-open-{item.item_id}")
                running.add(task)
                task.add_done_callback(done)
            while running:
                await asyncio.gather(*list(running))
        finally:
            for task in list(running):
                task.cancel()
            await asyncio.gather(*list(running), return_exceptions=True)
        return self._written

    async def run_closed_loop(
        self, items: Iterator[WorkItem], workers: int, next_attempt: dict[ItemKey, int] | None = None
    ) -> int:
        """Keep `workers` requests in flight, pulling items lazily (the iterator may be endless; bound it
        with a request count or by cancelling after a duration); return Records written."""
        self._next_attempt, self._written, self._due = dict(next_attempt or {}), 0, {}

        async def worker() -> None:
            for item in items:  # one shared iterator: each worker takes the next item when it is free
                await self._do(item)

        with collector_quiet():
            await run_all([asyncio.create_task(worker(), name=f"assay-closed-{i}") for i in range(workers)])
        return self._written

    def _budget_allows_retry(self) -> bool:
        """A retry budget (as in Envoy and gRPC): retries may be at most `retry_budget` x first attempts so far,
        so retrying cannot multiply the load on a struggling target."""
        if self.retry_budget is None:
            self._retries += 1
            return True
        if self._retries + 1 > self.retry_budget * max(1, self._firsts):
            return False
        self._retries += 1
        return True

    async def _worker(self, q: deque[WorkItem]) -> None:
        while q:
            await self._do(q.popleft())

    def _emit(self, record: Record) -> None:
        record.session = self.session
        if self.price is not None:
            record.cost_usd = self.price(record)
        self.sink.put(record, self.annotate(record) if self.annotate is not None else ())
        self._written += 1
        if self.on_record is not None:
            self.on_record(record)

    async def _do(self, item: WorkItem) -> None:
        client = self.clients[item.target]
        attempt = self._next_attempt.get(item.key, 0)
        first = attempt
        self._firsts += 1
        due_ns = self._due.pop(item.key, None)  # popped: a long open-loop run keeps no per-item state
        if due_ns is not None:
            await self.clock.sleep(max(0.0, (due_ns - self.clock.now_ns()) / 1e9))
        while True:
            # Paced first attempts keep their schedule as intended start, so lateness shows as response time.
            intended = due_ns if due_ns is not None and attempt == first else self.clock.now_ns()
            timing = Timing(intended_ns=intended)
            wall = self.clock.wall_s()
            if self.on_send is not None:
                self.on_send(item)
            try:
                completion = await client.send(item.request, timing)
            except asyncio.CancelledError:
                self._emit(
                    make_record(self.run_id, item, attempt, wall, timing, error=Cancelled("interrupted"), final=False)
                )
                raise
            except ProviderError as e:
                delay = self.retry.delay_s(attempt - first, e, self.rng)
                if delay is not None and not self._budget_allows_retry():
                    delay = None  # the retry budget is spent: this failure is final
                self._emit(make_record(self.run_id, item, attempt, wall, timing, error=e, final=delay is None))
                if delay is None:
                    return
                attempt += 1
                await self.clock.sleep(delay)
                continue
            except Exception as e:  # a bug of ours: record it and go on with the rest of the plan
                self._emit(make_record(self.run_id, item, attempt, wall, timing, error=e))
                return
            self._emit(make_record(self.run_id, item, attempt, wall, timing, completion, keep_text=self.keep_text))
            return
