"""The provider simulator: an OpenAI- and Anthropic-compatible HTTP server per simulated vendor.

Every request gets a plan drawn from an RNG seeded by (seed, model, request
number), so the n-th request to a model always behaves the same. The server
stamps its own monotonic times (received, headers, first token, done) and
serves them at `/_assay/requests`: tests and benchmarks use them as ground
truth for client measurements.

Requests that ask for more than text get it (simulator/replies.py): a tool call
when tools are offered, a text about a tool's result, JSON when a response format
asks for it, a continuation of an assistant prefill, and `n` choices (OpenAI).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

from assay.clock import Clock, SystemClock
from assay.errors import WireError
from assay.model import ChatRequest, ToolCall, Usage
from assay.simulator.answers import JUDGE_MARKER, AnswerKey, judge_reply
from assay.simulator.conversation import ATTACKER_MARKERS, attacker_reply, converse
from assay.simulator.finetune import FineTuneAPI
from assay.simulator.profiles import ModelProfile, Vendor
from assay.simulator.ratelimit import Decision, RateLimiter
from assay.simulator.replies import fill_schema, json_reply, tool_result_reply, tool_to_call
from assay.simulator.safety import SAFETY_JUDGE_MARKER, SafetyKey, safety_judge_reply
from assay.simulator.text import words
from assay.wire import ANTHROPIC, OPENAI, Choice, Finish, StreamEncoder, ToolCallDelta, Wire

__all__ = ["Plan", "VendorServer"]

LOG_LIMIT = 200_000
# Azure OpenAI's wording when its filter stops a prompt; clients and detectors key on `content_filter`.
CONTENT_FILTERED = "The prompt was filtered by the content management policy (content_filter)."


@dataclass(slots=True)
class Plan:
    """What the simulator will do with one request, decided before it starts."""

    fault: str | None
    ttft_ms: float
    itl_ms: list[float]
    tokens: list[str]
    break_at: int
    tool: ToolCall | None = None  # the answer is this call; `tokens` are fragments of its arguments
    more: list[list[str]] = field(default_factory=list)  # the tokens of each choice after the first (n > 1)


@dataclass(slots=True)
class _ModelState:
    profile: ModelProfile
    limiter: RateLimiter
    counter: int = 0
    slots: asyncio.Semaphore | None = None  # max_concurrency: a queue in front of the model


@dataclass(slots=True)
class _Call:
    """The parsed request, in protocol-neutral terms."""

    model: str
    max_tokens: int
    stream: bool
    include_usage: bool
    input_tokens: int
    prompt: str = ""  # system and message texts, to recognise known dataset items
    system: str = ""
    user: str = ""  # the last user message
    users: tuple[str, ...] = ()  # every user message, in order (a conversation's turns)
    extra: dict[str, Any] = field(default_factory=dict)
    request: ChatRequest = field(default_factory=lambda: ChatRequest([]))


def _with_text(plan: Plan, text: str, max_tokens: int) -> Plan:
    """The plan with its filler replaced by an answer, one word a token, timings kept (cut at max_tokens)."""
    parts = text.split(" ")
    tokens = [w if i == 0 else " " + w for i, w in enumerate(parts)][:max_tokens]
    gaps = plan.itl_ms or [20.0]
    itl = [gaps[i % len(gaps)] for i in range(len(tokens) - 1)]
    return Plan(plan.fault, plan.ttft_ms, itl, tokens, min(plan.break_at, max(0, len(tokens) - 1)))


class VendorServer:
    """One simulated vendor: its models, limits, faults and request log."""

    def __init__(
        self,
        vendor: Vendor,
        seed: int = 0,
        clock: Clock | None = None,
        answers: AnswerKey | None = None,
        safety: SafetyKey | None = None,
    ) -> None:
        self.vendor = vendor
        self.answers = answers
        self.safety = safety
        self._judged: dict[str, int] = {}  # judge prompts seen, to vary re-asks deterministically
        self.seed = seed
        self.clock: Clock = clock or SystemClock()
        self.started_ns = self.clock.now_ns()
        self.models: dict[str, _ModelState] = {}
        for m in vendor.models:
            self.add_model(m)
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)
        self._n = 0
        # Last byte arrival per connection (keyed by transport id), filled by serve.py's protocol wrapper.
        self.arrivals: dict[int, int] = {}
        self.finetune = FineTuneAPI(self)  # files and fine-tuning jobs; their tuned models join `models`

    def add_model(self, m: ModelProfile) -> None:
        """Serve a model (at start, or once a fine-tuning job made it) with its own limits and queue."""
        self.models[m.name] = _ModelState(
            m,
            RateLimiter(m.rate_limit.rpm, m.rate_limit.tpm, self.clock),
            slots=asyncio.Semaphore(m.max_concurrency) if m.max_concurrency else None,
        )

    def app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_get("/health", self._health)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/_assay/requests", self._requests)
        app.router.add_post(OPENAI.route, self._openai)
        app.router.add_post(ANTHROPIC.route, self._anthropic)
        self.finetune.add_routes(app)
        return app

    # -- plans -------------------------------------------------------------------------
    def plan(self, profile: ModelProfile, seq: int, max_tokens: int, input_tokens: int, elapsed_s: float) -> Plan:
        """Deterministic in (seed, model, seq, max_tokens, input size, incident window)."""
        rng = random.Random(f"{self.seed}/{profile.name}/{seq}")
        faults, factor = profile.faults, 1.0
        for inc in profile.incidents:
            if inc.start_s <= elapsed_s < inc.end_s:
                faults = inc.faults or faults
                factor = inc.latency_factor
        fault = faults.pick(rng.random())
        ttft = (profile.ttft_ms.sample(rng) + profile.prefill_ms_per_1k_input * input_tokens / 1000) * factor
        n_out = max(1, min(max_tokens, round(profile.output_tokens.sample(rng))))
        itl = [profile.itl_ms.sample(rng) * factor for _ in range(n_out - 1)]
        break_at = rng.randrange(n_out) if n_out > 1 else 0
        return Plan(fault, ttft, itl, words(rng, n_out), break_at)

    # -- handlers ----------------------------------------------------------------------
    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "vendor": self.vendor.name})

    async def _list_models(self, request: web.Request) -> web.Response:
        self.finetune.refresh()
        data = [{"id": m, "object": "model", "owned_by": self.vendor.name, "created": 0} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _requests(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        rows = [r for r in self.log if r["n"] >= since]
        return web.Response(body=orjson.dumps({"requests": rows}), content_type="application/json")

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, OPENAI)

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, ANTHROPIC)

    async def _serve(self, request: web.Request, wire: Wire) -> web.StreamResponse:
        entry: dict[str, Any] = {"n": self._n, "api": wire.api}
        if client_id := request.headers.get("x-request-id"):
            entry["client_request_id"] = client_id  # lets any load tool's requests be joined to these timings
        self._n += 1
        self.log.append(entry)
        call_or_error = await self._parse(request, wire)
        # The request's last bytes arrived when the wrapper saw them, not when this handler got to run.
        received_ns = self.arrivals.get(id(request.transport)) or self.clock.now_ns()
        entry["received_ns"] = received_ns
        if isinstance(call_or_error, web.Response):
            entry.update(status=call_or_error.status, done_ns=self.clock.now_ns())
            return call_or_error
        call = call_or_error
        state = self.models[call.model]
        seq = state.counter
        state.counter += 1
        rid = f"{'chatcmpl' if wire.api == 'openai' else 'msg'}-{self.vendor.name}-{call.model}-{seq}"
        entry.update(id=rid, model=call.model, seq=seq, stream=call.stream)
        elapsed_s = (received_ns - self.started_ns) / 1e9
        plan = self.plan(state.profile, seq, call.max_tokens, call.input_tokens, elapsed_s)
        filler = plan.tokens
        if call.prompt and SAFETY_JUDGE_MARKER in call.prompt:
            nth = self._judged[call.prompt] = self._judged.get(call.prompt, -1) + 1
            verdict = safety_judge_reply(state.profile.answers, self.seed, call.model, call.prompt, nth)
            plan = _with_text(plan, verdict, call.max_tokens)
            entry.update(judge=True)
        elif call.prompt and JUDGE_MARKER in call.prompt:
            nth = self._judged[call.prompt] = self._judged.get(call.prompt, -1) + 1
            verdict = judge_reply(state.profile.answers, self.seed, call.model, call.prompt, nth)
            plan = _with_text(plan, verdict, call.max_tokens)
            entry.update(judge=True)
        elif call.prompt and any(m in call.prompt for m in ATTACKER_MARKERS):
            plan = _with_text(plan, attacker_reply(self.seed, call.model, call.prompt), call.max_tokens)
            entry.update(attacker=True)
        elif (
            self.safety is not None
            and call.user
            and (said := converse(self.safety, state.profile.safety, self.seed, call.model, call.system, call.users))
        ):
            entry.update(safety=said.truth)
            if len(call.users) > 1:
                entry.update(turn=len(call.users))  # which user turn of a conversation this answered
            if said.text is not None:
                plan = _with_text(plan, said.text, call.max_tokens)
        elif self.answers is not None and call.prompt and (item := self.answers.find(call.prompt)) is not None:
            draws = state.profile.draws_as or state.profile.name  # a tuned model draws as its base: paired
            text, right = self.answers.answer(state.profile.answers, self.seed, draws, item)
            plan = _with_text(plan, text, call.max_tokens)
            entry.update(item=item.id, right=right)
        plan = self._shape(plan, call, seq, wire, entry, filler=plan.tokens is filler)
        decision = state.limiter.admit(call.input_tokens + call.max_tokens * call.request.n)
        headers = {"x-request-id": rid, **_limit_headers(decision, wire.api)}
        if not decision.allowed:
            entry.update(fault="rate_limit_bucket")
            return self._error(entry, wire, 429, "Rate limit reached; retry later.", headers, decision.retry_after_s)
        if entry.get("safety") == "blocked":
            return self._error(entry, wire, 400, CONTENT_FILTERED, headers)
        entry["fault"] = plan.fault
        profile = state.profile
        if plan.fault == "rate_limited":
            return self._error(entry, wire, 429, "Rate limit reached (injected).", headers, profile.retry_after_s)
        if plan.fault == "server_error":
            return self._error(entry, wire, 500, "The server had an error (injected).", headers)
        if plan.fault == "overloaded":
            msg = "Overloaded (injected)."
            return self._error(entry, wire, wire.overloaded_status, msg, headers, profile.retry_after_s)
        if plan.fault == "hang":
            await asyncio.sleep(profile.hang_s)
            return self._abort(request, entry)
        if plan.fault == "reset":
            return self._abort(request, entry)
        entry["started_ns"] = received_ns
        if state.slots is not None:  # a queueing server: wait for a free slot, then start the clock
            async with state.slots:
                entry["started_ns"] = self.clock.now_ns()
                return await self._respond(request, wire, call, plan, entry, headers)
        return await self._respond(request, wire, call, plan, entry, headers)

    async def _respond(
        self, request: web.Request, wire: Wire, call: _Call, plan: Plan, entry: dict[str, Any], headers: dict[str, str]
    ) -> web.StreamResponse:
        if call.stream:
            return await self._stream(request, wire, call, plan, entry, headers)
        return await self._whole(wire, call, plan, entry, headers)

    async def _parse(self, request: web.Request, wire: Wire) -> _Call | web.Response:
        try:
            incoming = wire.parse_request(await request.read())
        except WireError as e:
            return web.Response(status=e.status, body=e.body, content_type="application/json")
        if incoming.model not in self.models:
            self.finetune.refresh()  # a job may have finished since it was last read: its model exists now
        if incoming.model not in self.models:
            known = ", ".join(self.models)
            msg = f"The model {incoming.model!r} does not exist on {self.vendor.name}; known: {known}."
            return self._reply(wire, 404, msg)
        req = incoming.request
        profile = self.models[incoming.model].profile
        system = req.system or ""
        texts = [system] + [m.content for m in req.messages]
        users = [m.content for m in req.messages if m.role == "user"]
        chars = sum(map(len, texts)) + sum(len(c.name) + len(c.arguments) for m in req.messages for c in m.tool_calls)
        if req.tools:
            chars += len(json.dumps([[t.name, t.description, t.parameters] for t in req.tools]))
        images = sum(len(m.images) for m in req.messages)
        n_in = max(1, (chars + 3) // 4) + images * profile.image_input_tokens
        if profile.context_window is not None and n_in > profile.context_window:
            return self._too_long(wire, n_in, profile.context_window)
        return _Call(
            incoming.model,
            req.max_tokens,
            req.stream,
            incoming.include_usage,
            n_in,
            "\n".join(texts),
            system.strip(),
            users[-1] if users else "",
            tuple(users),
            req.extra,
            req,
        )

    def _too_long(self, wire: Wire, n_in: int, window: int) -> web.Response:
        if wire.api == "anthropic":
            body = wire.error_body(400, f"prompt is too long: {n_in} tokens > {window} maximum")
        else:
            said = (f"This model's maximum context length is {window} tokens. However, your messages resulted in "
                    f"{n_in} tokens. Please reduce the length of the messages.")  # fmt: skip
            body = wire.error_body(400, said, "invalid_request_error", "context_length_exceeded")
        return web.Response(status=400, body=body, content_type="application/json")

    def _shape(self, plan: Plan, call: _Call, seq: int, wire: Wire, entry: dict[str, Any], filler: bool) -> Plan:
        """The plan's text made what the request asks for: a tool call, JSON, a continuation, n choices."""
        req = call.request
        rng = random.Random(f"{self.seed}/{call.model}/{seq}/shape")
        if (tool := tool_to_call(req)) is not None:
            arguments = json.dumps(fill_schema(tool.parameters, rng, call.user))
            plan = _with_text(plan, arguments, call.max_tokens)
            prefix = "toolu" if wire.api == "anthropic" else "call"
            plan.tool = ToolCall(f"{prefix}_{seq}_{rng.randrange(16**8):08x}", tool.name, arguments)
            entry["tool_call"] = tool.name
            filler = False
        else:
            if (said := tool_result_reply(req)) is not None:
                plan, filler = _with_text(plan, said, call.max_tokens), False
            if req.response_format is not None:
                text = json_reply(req.response_format, rng, "".join(plan.tokens).strip())
                if req.continues and text.startswith(prefill := req.messages[-1].content):
                    text = text[len(prefill) :]
                plan, filler = _with_text(plan, text, call.max_tokens), False
                entry["json"] = True
        if req.n > 1:
            plan.more = [
                words(random.Random(f"{self.seed}/{call.model}/{seq}/choice{c}"), len(plan.tokens))
                if filler
                else list(plan.tokens)
                for c in range(1, req.n)
            ]
            entry["choices"] = req.n
        if req.continues and plan.tool is None:  # go on from the prefill: never say it again
            entry["continued"] = True
            if not req.messages[-1].content[-1].isspace():
                for tokens in (plan.tokens, *plan.more):
                    if tokens and not tokens[0].startswith(" "):
                        tokens[0] = " " + tokens[0]
        return plan

    def _reply(self, wire: Wire, status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(
            status=status, body=wire.error_body(status, message), headers=headers, content_type="application/json"
        )

    def _error(
        self,
        entry: dict[str, Any],
        wire: Wire,
        status: int,
        message: str,
        headers: dict[str, str],
        retry_after_s: float | None = None,
    ) -> web.Response:
        if retry_after_s is not None:
            headers = {**headers, "retry-after": str(max(1, math.ceil(retry_after_s)))}
            if wire.api == "openai":
                headers["retry-after-ms"] = str(round(retry_after_s * 1000))
        entry.update(status=status, done_ns=self.clock.now_ns())
        return self._reply(wire, status, message, headers)

    def _abort(self, request: web.Request, entry: dict[str, Any]) -> web.Response:
        entry.update(status=0, done_ns=self.clock.now_ns())
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError  # nothing more can be said on a dead connection

    async def _sleep_until(self, when_ns: int) -> None:
        delay = (when_ns - self.clock.now_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)

    async def _stream(
        self, request: web.Request, wire: Wire, call: _Call, plan: Plan, entry: dict[str, Any], headers: dict[str, str]
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={**headers, "content-type": "text/event-stream", "cache-control": "no-cache"})
        await resp.prepare(request)
        entry.update(status=200, headers_ns=self.clock.now_ns())
        encoder = wire.stream_encoder(entry["id"], call.model, call.include_usage)
        plain = plan.tool is None and not plan.more  # the usual answer: one choice of text
        try:
            await resp.write(encoder.start(call.input_tokens))
            when = entry["started_ns"] + int(plan.ttft_ms * 1e6)
            for i, tok in enumerate(plan.tokens):
                await self._sleep_until(when)
                if i == plan.break_at and plan.fault == "stream_broken":
                    entry["output_tokens"] = i
                    return self._abort(request, entry)
                if i == plan.break_at and plan.fault == "error_event":
                    await resp.write(encoder.error("Overloaded (injected mid-stream).", "overloaded_error"))
                    entry.update(output_tokens=i, done_ns=self.clock.now_ns())
                    await resp.write_eof()
                    return resp
                if i == plan.break_at and plan.fault == "malformed_chunk":
                    await resp.write(b'data: {"choices": [{"delta": {"content": "tr\n\n')
                if i == 0:  # stamped as the bytes are handed over: write() may return after delivery
                    entry["first_token_ns"] = self.clock.now_ns()
                await resp.write(encoder.text(tok) if plain else _pieces(encoder, plan, i))
                if i < len(plan.itl_ms):
                    when += int(plan.itl_ms[i] * 1e6)
            output_tokens = len(plan.tokens) * (1 + len(plan.more))
            entry.update(done_ns=self.clock.now_ns(), output_tokens=output_tokens)
            finish = _finish(plan, call)
            for c in range(1, 1 + len(plan.more)):
                encoder.encode(Finish(finish.reason, finish.raw, c))
            await resp.write(encoder.close(finish, Usage(call.input_tokens, output_tokens)))
            await resp.write_eof()
        except ConnectionError:
            entry.update(client_gone=True, done_ns=self.clock.now_ns())
        return resp

    async def _whole(
        self, wire: Wire, call: _Call, plan: Plan, entry: dict[str, Any], headers: dict[str, str]
    ) -> web.Response:
        total_ms = plan.ttft_ms + sum(plan.itl_ms)
        await self._sleep_until(entry["started_ns"] + int(total_ms * 1e6))
        output_tokens = len(plan.tokens) * (1 + len(plan.more))
        usage, finish, text = Usage(call.input_tokens, output_tokens), _finish(plan, call), "".join(plan.tokens)
        calls = [ToolCall(plan.tool.id, plan.tool.name, text)] if plan.tool is not None else []
        more = [
            Choice(c, tool_calls=[ToolCall(f"{calls[0].id}_{c}", calls[0].name, text)], finish=finish)
            if calls
            else Choice(c, tokens, finish=finish)
            for c, tokens in enumerate(plan.more, 1)
        ]
        body = wire.encode_body(
            entry["id"], call.model, "" if calls else text, finish, usage, tool_calls=calls, more_choices=more
        )
        now = self.clock.now_ns()
        entry.update(status=200, headers_ns=now, first_token_ns=now, done_ns=now, output_tokens=output_tokens)
        return web.Response(body=body, headers=headers, content_type="application/json")


def _pieces(encoder: StreamEncoder, plan: Plan, i: int) -> bytes:
    """Step `i` of an answer that is a tool call or has several choices: each choice's token."""
    out = b""
    for c, tokens in enumerate((plan.tokens, *plan.more)):
        if i >= len(tokens):
            continue
        if plan.tool is None:
            out += encoder.text(tokens[i], c)
        elif i == 0:  # a call's first piece names it
            call_id = plan.tool.id if c == 0 else f"{plan.tool.id}_{c}"
            out += encoder.tool_call(ToolCallDelta(0, call_id, plan.tool.name, tokens[i], c))
        else:
            out += encoder.tool_call(ToolCallDelta(0, None, None, tokens[i], c))
    return out


def _finish(plan: Plan, call: _Call) -> Finish:
    if len(plan.tokens) >= call.max_tokens:
        return Finish("length")
    return Finish("tool_calls") if plan.tool is not None else Finish("stop")


def _limit_headers(d: Decision, api: str) -> dict[str, str]:
    h: dict[str, str] = {}
    if api == "openai":
        if d.limit_requests is not None:
            h["x-ratelimit-limit-requests"] = str(int(d.limit_requests))
            h["x-ratelimit-remaining-requests"] = str(int(d.remaining_requests or 0))
            h["x-ratelimit-reset-requests"] = f"{d.reset_requests_s:.3f}s"
        if d.limit_tokens is not None:
            h["x-ratelimit-limit-tokens"] = str(int(d.limit_tokens))
            h["x-ratelimit-remaining-tokens"] = str(int(d.remaining_tokens or 0))
            h["x-ratelimit-reset-tokens"] = f"{d.reset_tokens_s:.3f}s"
    else:  # Anthropic states resets as RFC 3339 instants, not durations
        if d.limit_requests is not None:
            h["anthropic-ratelimit-requests-limit"] = str(int(d.limit_requests))
            h["anthropic-ratelimit-requests-remaining"] = str(int(d.remaining_requests or 0))
            h["anthropic-ratelimit-requests-reset"] = _rfc3339_in(d.reset_requests_s)
        if d.limit_tokens is not None:
            h["anthropic-ratelimit-tokens-limit"] = str(int(d.limit_tokens))
            h["anthropic-ratelimit-tokens-remaining"] = str(int(d.remaining_tokens or 0))
            h["anthropic-ratelimit-tokens-reset"] = _rfc3339_in(d.reset_tokens_s)
    return h


def _rfc3339_in(seconds: float) -> str:
    when = datetime.now(UTC) + timedelta(seconds=seconds)
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")
