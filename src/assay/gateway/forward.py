"""One client request through the gateway: candidates from the route's policy, attempts, retries, fallbacks.

The order comes from `routing.order` (pure); the rules after a failure from
`routing.failure_kind`. Each upstream attempt streams (whatever the client asked),
so first-token and idle timeouts hold for every request and a failure is seen as it
happens. Every attempt becomes a Record, written when the request ends, the last
one marked final.

A stream cut after bytes reached the client continues on the next candidate that
accepts an assistant prefill (Anthropic targets, and OpenAI-protocol targets listed
in `gateway.prefill_targets`, which get vLLM's `continue_final_message`): the text
already sent becomes the prefill, and the client receives only what follows, so the
answer it ends with is whole. With no such candidate, the stream ends with the
protocol's error event: never a finish reason over a truncated answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from aiohttp import web

from assay.clients import StreamHead
from assay.config import Route
from assay.errors import Cancelled, ProviderError, StreamBroken, Timeout
from assay.gateway.keys import KeyState
from assay.gateway.sink import Sink
from assay.gateway.state import GatewayState
from assay.model import ChatRequest, Completion, Message, Timing, Usage, estimate_tokens
from assay.records import Record, WorkItem, make_record
from assay.routing import Outcome, RequestFacts, backoff_s, failure_kind, order, pacing_wait_s
from assay.wire import Collector, Done, ErrorEvent, Finish, Incoming, Start, TextDelta, UsageReport, Wire

if TYPE_CHECKING:
    from assay.gateway.app import Gateway

__all__ = ["Exchange", "facts_of"]

_NOT_CONTENT = (Start, UsageReport, Finish, Done, ErrorEvent)
_RATE_LIMIT_BACKOFF_S = 0.5  # a 429 without Retry-After cools its target for 0.25-0.75 s (jittered)


def facts_of(request: ChatRequest) -> RequestFacts:
    chars = len(request.system or "") + sum(len(m.content) for m in request.messages)
    return RequestFacts((chars + 3) // 4, request.max_tokens, request.stream)


@dataclass
class _Attempt:
    target: str
    error: ProviderError | None
    got: Collector
    timing: Timing
    client_gone: bool = False
    probe: bool = False
    input_estimate: int = 0


@dataclass
class Exchange:
    gw: Gateway
    state: GatewayState
    http: web.Request
    wire: Wire  # the client's protocol
    incoming: Incoming
    route_name: str
    key: KeyState | None
    rid: str
    received_ns: int
    reserved_usd: float = 0.0
    records: list[Record] = field(default_factory=list)
    errors: list[tuple[str, ProviderError]] = field(default_factory=list)
    served_by: str | None = None

    @property
    def route(self) -> Route:
        return self.state.routes[self.route_name]

    def now_s(self) -> float:
        return self.gw.clock.now_ns() / 1e9

    # -- the request ------------------------------------------------------------------------------------------
    async def serve(self) -> web.StreamResponse:
        route, state, gw = self.route, self.state, self.gw
        request = self.incoming.request
        sink = Sink(self.http, self.wire, self.rid, request.stream, self.incoming.include_usage,
                    route.holdback_tokens, self.gw.clock.now_ns)  # fmt: skip
        deadline = asyncio.get_running_loop().time() + route.timeout_s
        upstream_request = replace(request, stream=True)  # always stream upstream: timeouts and failures seen live
        facts = facts_of(request)
        budget = state.budgets[route.model]
        budget.first(self.now_s())
        snapshot = state.health.snapshot(self.now_s(), route.targets, state.prices, state.windows)
        queue = deque(order(route, facts, snapshot, state.rng))
        deferred: set[str] = set()
        attempt_no = 0
        previous: str | None = None
        last_window: int | None = None
        need_window = False  # after context_length_exceeded: only a larger window will do
        try:
            while queue:
                name = queue.popleft()
                h = state.health.targets[name]
                if need_window and not self._larger(name, last_window):
                    continue
                if sink.started and (name not in state.prefill or sink.sent_other):
                    continue  # cannot continue the text the client already has
                if (unsupported := self._unsupported(name, upstream_request)) is not None:
                    self.errors.append((name, unsupported))
                    continue
                if not h.available(self.now_s()):
                    if name not in deferred and any(state.health.targets[n].available(self.now_s()) for n in queue):
                        deferred.add(name)
                        queue.append(name)
                        continue
                    wait_s = h.ready_at_s() - self.now_s()
                    if wait_s > deadline - asyncio.get_running_loop().time():
                        self.errors.append((name, _unavailable(name, wait_s)))
                        continue
                    await asyncio.sleep(max(0.0, wait_s))
                acquired = await self._acquire(name, deadline, bool(queue))
                if acquired is None:
                    if name not in deferred and queue:
                        deferred.add(name)
                        queue.append(name)
                    continue
                probe = acquired
                retries = 0
                starts: list[float] = []
                while True:
                    if (wait := pacing_wait_s(starts, self.now_s())) > 0:
                        await asyncio.sleep(wait)
                    starts.append(self.now_s())
                    if retries:
                        budget.spend(self.now_s())
                        gw.metrics.retries.inc((name,))
                    attempt_request = self._continuation(upstream_request, sink, name)
                    result = await self._attempt(name, attempt_request, attempt_no, previous, sink, deadline, probe)
                    attempt_no += 1
                    if result.error is None:
                        return await self._finish(result, sink)
                    error = result.error
                    self.errors.append((name, error))
                    if result.client_gone:
                        return sink.response or web.Response(status=499)
                    kind = failure_kind(error.error_class, error.http_status, error.message)
                    if kind in ("content_filter", "bad_request"):
                        return await self._refuse_upstream(error, sink)
                    if kind == "context_length":
                        need_window, last_window = True, state.windows.get(name)
                        break
                    left_s = deadline - asyncio.get_running_loop().time()
                    if kind == "transient" and not sink.started and not probe and retries < route.retries:
                        # A 503/529 may carry Retry-After: never sooner; and if another target can go now, it does.
                        cool_s = h.cooldown_until_s - self.now_s()
                        pause = max(backoff_s(retries + 1, state.rng), cool_s)
                        if (cool_s <= 0 or not queue) and h.breaker.state == "closed" and \
                                budget.allows(self.now_s()) and pause < left_s:  # fmt: skip
                            retries += 1
                            await asyncio.sleep(pause)
                            continue
                    if kind == "rate_limited" and not queue and not probe and retries < route.retries:
                        wait_s = h.ready_at_s() - self.now_s()
                        if wait_s < left_s and budget.allows(self.now_s()):
                            retries += 1
                            await asyncio.sleep(max(0.0, wait_s))
                            continue
                    break
                previous = name
                if queue:
                    gw.metrics.fallbacks.inc((route.model, name, kind))
            return await self._give_up(sink)
        finally:
            self._settle()

    def _larger(self, name: str, than: int | None) -> bool:
        window = self.state.windows.get(name)
        return than is not None and window is not None and window > than

    def _unsupported(self, name: str, request: ChatRequest) -> ProviderError | None:
        client = self.state.clients[name]
        check = getattr(client.wire, "unsupported", None)
        if check is None:
            return None
        problems: list[str] = check(request)
        if not problems:
            return None
        return _Unsupported(f"target {name!r} ({client.wire.api} API) cannot carry: {', '.join(problems)}",
                            http_status=400)  # fmt: skip

    async def _acquire(self, name: str, deadline: float, others: bool) -> bool | None:
        """Claim the target's breaker: False (closed), True (the half-open probe), None (not now)."""
        h = self.state.health.targets[name]
        loop = asyncio.get_running_loop()
        while True:
            ok, moved = h.breaker.acquire(self.now_s())
            if moved is not None:
                self.gw.breaker_moved(name, moved)
            if ok:
                return h.breaker.state == "half_open"
            if others or loop.time() + 0.05 > deadline:
                return None
            await asyncio.sleep(0.05)  # the only candidate's probe is out: wait for its verdict

    def _continuation(self, request: ChatRequest, sink: Sink, name: str) -> ChatRequest:
        if not sink.started:
            return request
        prefix = "".join(sink.sent_text)
        messages = list(request.messages)
        if messages and messages[-1].role == "assistant":
            messages[-1] = replace(messages[-1], content=messages[-1].content + prefix)
        else:
            messages.append(Message("assistant", prefix))
        return replace(request, messages=messages)  # `continues`: each wire says "go on from here" its own way

    # -- one attempt ------------------------------------------------------------------------------------------
    async def _attempt(self, name: str, request: ChatRequest, attempt_no: int, previous: str | None, sink: Sink,
                       deadline: float, probe: bool) -> _Attempt:  # fmt: skip
        gw, state = self.gw, self.state
        client = state.clients[name]
        h = state.health.targets[name]
        timing, head, got = Timing(), StreamHead(), Collector()
        wall = gw.clock.wall_s()
        result = _Attempt(name, None, got, timing, probe=probe, input_estimate=facts_of(request).input_tokens)
        sink.begin_attempt(state.targets[name].model, {
            "x-assay-target": name, "x-assay-route": self.route_name, "x-request-id": self.rid})  # fmt: skip
        h.in_flight += 1
        h.recent.append(self.now_s())
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(max(0.001, remaining)):
                events = client.stream(request, timing, head)
                async with contextlib.aclosing(events):
                    parts = got.choices[0].parts
                    async for event in events:
                        kind = type(event)
                        if kind is TextDelta:  # the usual event: the first choice's next token
                            assert isinstance(event, TextDelta)
                            if event.choice:
                                got.add(event)
                            else:
                                parts.append(event.text)
                            await sink.content(event)
                        elif not isinstance(event, _NOT_CONTENT):  # a tool call piece, or what comes next
                            got.add(event)
                            await sink.content(event)
                        elif kind is ErrorEvent:
                            got.add(event)
                            assert isinstance(event, ErrorEvent)
                            said = " ".join(x for x in (event.type, event.message) if x)
                            raise StreamBroken(f"provider error mid-stream: {said}", http_status=head.status or None)
                        else:
                            got.add(event)
                            if kind is UsageReport and all(c.finish is not None for c in got.choices):
                                break  # finished and counted: no need to wait for [DONE]
        except ProviderError as e:
            result.error = e
        except TimeoutError:
            result.error = Timeout(f"request deadline of {self.route.timeout_s:g}s reached", phase="total")
        except (ConnectionResetError, ConnectionError):
            result.error, result.client_gone = Cancelled("the client went away"), True
        except asyncio.CancelledError:  # the client's connection closed while we waited on the provider
            result.error, result.client_gone = Cancelled("the client went away"), True
            self._record(result, request, attempt_no, previous, wall, head)
            h.breaker.release()
            raise
        finally:
            h.in_flight -= 1
        if result.error is not None and got.finish is not None and got.error is None and not result.client_gone:
            result.error = None  # a complete answer whose stream ended without [DONE] / message_stop
        self._observe(result, head)
        self._record(result, request, attempt_no, previous, wall, head)
        return result

    def _observe(self, result: _Attempt, head: StreamHead) -> None:
        h = self.state.health.targets[result.target]
        e, timing = result.error, result.timing
        outcome: Outcome
        if e is None:
            outcome = Outcome(True, timing.ttft_ms(), timing.e2e_ms(), _usage(result).output_tokens, limits=head.limits)
            self.gw.metrics.attempts.inc((result.target, "ok"))
        elif result.client_gone:
            h.breaker.release()
            self.gw.metrics.attempts.inc((result.target, "cancelled"))
            return
        else:
            kind = failure_kind(e.error_class, e.http_status, e.message)
            cooldown = None
            if kind == "rate_limited" or e.retry_after_s is not None:
                cooldown = e.retry_after_s if e.retry_after_s is not None else backoff_s(1, self.state.rng,
                                                                                          _RATE_LIMIT_BACKOFF_S)
            outcome = Outcome(False, counts_against=kind in ("transient", "target_config"), cooldown_s=cooldown,
                              limits=e.headers)  # fmt: skip
            self.gw.metrics.attempts.inc((result.target, e.error_class))
        moved = h.observe(outcome, self.now_s())
        if moved is not None:
            self.gw.breaker_moved(result.target, moved)

    def _record(self, result: _Attempt, request: ChatRequest, attempt_no: int, previous: str | None, wall: float,
                head: StreamHead) -> None:  # fmt: skip
        gw, state = self.gw, self.state
        store_text = state.settings.store_text
        prompt = "\n".join(m.content for m in request.messages) if store_text else None
        item = WorkItem(result.target, "gateway", self.rid, request, prompt=prompt)
        completion = None
        if result.error is None:
            got = result.got
            completion = Completion(got.text, got.finish.raw if got.finish else None, _usage(result), result.timing,
                                    head.status or 200, head.request_id, got.model, head.limits)  # fmt: skip
        rec = make_record(gw.run_id, item, attempt_no, wall, result.timing, completion, result.error, final=False,
                          keep_text=store_text)  # fmt: skip
        rec.route, rec.policy, rec.fallback_of = self.route_name, self.route.policy, previous
        rec.key_id = self.key.name if self.key else None
        rec.session = gw.session
        rec.cost_usd = state.book.cost(rec)
        self.records.append(rec)
        gw.observe_attempt(rec, state.targets[result.target])

    # -- endings ----------------------------------------------------------------------------------------------
    async def _finish(self, result: _Attempt, sink: Sink) -> web.StreamResponse:
        self.served_by = result.target
        got = result.got
        usage = _usage(result)
        response = await sink.close(got, usage)
        self.gw.observe_served(self, result, sink)
        return response

    async def _refuse_upstream(self, error: ProviderError, sink: Sink) -> web.StreamResponse:
        """The provider refused the request itself (content filter, bad request): its reason reaches the client."""
        if sink.started:
            return await sink.fail(error.message, "invalid_request_error")
        status = error.http_status or 400
        return self._error(status, _upstream_message(error))

    async def _give_up(self, sink: Sink) -> web.StreamResponse:
        summary = "; ".join(f"{t}: {e.message}" for t, e in self.errors[-4:]) or "no target could take it"
        message = f"every target of model {self.route_name!r} failed ({summary})"
        if sink.started:
            self.gw.metrics.continued.inc((self.route_name, "failed"))
            return await sink.fail(message, "api_error" if self.wire.api == "anthropic" else "server_error")
        last = self.errors[-1][1] if self.errors else None
        headers: dict[str, str] = {}
        if last is None:
            status = 503
        elif isinstance(last, _Unsupported):
            return self._error(400, "; ".join(e.message for _, e in self.errors if isinstance(e, _Unsupported)))
        elif last.error_class == "client_error" and failure_kind("client_error", last.http_status, last.message) \
                == "context_length":
            return self._error(last.http_status or 400, _upstream_message(last))
        elif last.error_class == "rate_limited":
            status = 429
            waits = [self.state.health.targets[t].ready_at_s() - self.now_s() for t in self.route.targets]
            headers["retry-after"] = str(max(1, math.ceil(min(waits))))
        elif last.error_class == "overloaded" or isinstance(last, _NotReady):
            status = self.wire.overloaded_status
        elif last.error_class == "timeout":
            status = 504
        else:
            status = 502
        return self._error(status, message, headers)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        body = self.wire.error_body(status, message)
        return web.Response(status=status, body=body, content_type="application/json",
                            headers={"x-request-id": self.rid, **(headers or {})})  # fmt: skip

    def _settle(self) -> None:
        spent = sum(r.cost_usd or 0.0 for r in self.records)
        if self.key is not None:
            self.key.settle(self.reserved_usd, spent)
        last: dict[str, Record] = {}
        for rec in self.records:  # each target's last attempt ends its item (target, request): no retry followed
            last[rec.target] = rec
        for rec in last.values():
            rec.final = True
        self.gw.write(self.records)


class _Unsupported(ProviderError):
    error_class = "client_error"


class _NotReady(ProviderError):
    error_class = "overloaded"


def _unavailable(name: str, wait_s: float) -> ProviderError:
    return _NotReady(f"target {name!r} is cooling down for {wait_s:.1f}s more, past the request's deadline")


def _upstream_message(e: ProviderError) -> str:
    # "HTTP 400 invalid_request_error: the reason" -> the provider's reason, as it said it
    text = e.message
    if text.startswith("HTTP ") and ": " in text:
        return text.split(": ", 1)[1]
    return text


def _usage(result: _Attempt) -> Usage:
    """The provider's count, or an estimate (and it says so) when the provider sent none."""
    got = result.got
    usage = got.usage or Usage()
    if usage.source == "none":
        usage = Usage(result.input_estimate, estimate_tokens(got.text), source="estimate")
    return usage
