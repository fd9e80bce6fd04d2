"""The provider client: `stream()` yields neutral events as they arrive; `send()` folds them into a Completion.

Policy lives here, bytes in the transport, spellings in the wire layer. The
client stamps `Timing` as bytes arrive (invariant 3): each SSE event takes the
arrival stamp of the bytes that completed it, from the transport, taken before
any parsing; `sent_ns` is re-stamped when the body reached the socket. Every
failure raises a ProviderError subclass, and the passed `Timing` keeps the
stamps taken so far, whether the attempt failed or was cancelled.

`stream()` ends after `Done`, or after an `ErrorEvent` (the provider's own
error inside a 200 stream, passed on as data); `send()` turns the latter into
`StreamBroken`. Close a `stream()` you stop early (`contextlib.aclosing`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import aiohttp
import orjson

from assay.clients.deadlines import Deadlines, Timeouts
from assay.clients.errors import classify, error_for_status, rate_limit_headers
from assay.clients.transport import AiohttpTransport, HttpRequest, Response, Transport, proxy_for, same_time_base
from assay.clock import Clock, SystemClock
from assay.errors import BadResponse, ConfigError, ProviderError, StreamBroken
from assay.model import ChatRequest, Completion, Target, Timing, Usage, estimate_tokens
from assay.wire import (
    ANTHROPIC,
    OPENAI,
    PROTOCOLS,
    Collector,
    Done,
    ErrorEvent,
    Event,
    SSEDecoder,
    SSEEvent,
    TextDelta,
    ToolCallDelta,
    Wire,
)

__all__ = ["AnthropicClient", "OpenAIClient", "ProviderClient", "StreamHead"]

_NOTHING: tuple[Event, ...] = ()


@dataclass(slots=True)
class StreamHead:
    """What a successful response's head said, for a `stream()` caller (a failure's is on its error)."""

    status: int = 0
    request_id: str | None = None
    limits: dict[str, str] = field(default_factory=dict)  # the provider's rate-limit headers


class ProviderClient:
    """Speaks one wire protocol to one target, over a transport."""

    api: ClassVar[str] = ""  # set by the per-protocol subclasses; else the target's API kind decides
    wire: Wire

    def __init__(
        self,
        target: Target,
        session: Transport | aiohttp.ClientSession,
        timeouts: Timeouts | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.target = target
        api_key: str | None = None
        if target.api_key_env:
            api_key = os.environ.get(target.api_key_env)
            if not api_key:
                raise ConfigError(f"target {target.name!r}: environment variable {target.api_key_env} is not set")
        self.wire = PROTOCOLS[self.api or target.api]
        self.transport: Transport = AiohttpTransport(session) if isinstance(session, aiohttp.ClientSession) else session
        self.timeouts = timeouts or Timeouts()
        self.clock: Clock = clock or SystemClock()
        self.proxy = proxy_for(target.base_url) if self.transport.uses_proxies else None
        self.url = self.wire.url(target.base_url)
        self._headers = {"content-type": "application/json", **target.headers, **self.wire.headers(api_key)}
        # The transport's arrival stamps are used when they are on the client's time base.
        self._same_clock = same_time_base(self.clock, self.transport.clock)

    async def send(self, request: ChatRequest, timing: Timing | None = None) -> Completion:
        """Send one request. Raises a ProviderError subclass on any failure.

        Pass `timing` to keep the stamps of a failed or cancelled attempt.
        """
        timing = timing if timing is not None else Timing()
        attempt, got = _Attempt(self, request, timing, handing_over=False), Collector()
        parts = got.parts
        try:
            async with asyncio.timeout(None) as attempt.deadlines.timer:
                await attempt.open()
                while (events := await attempt.next()) is not None:
                    for event in events:
                        if type(event) is TextDelta and not event.choice:
                            parts.append(event.text)
                        else:
                            got.add(event)
        except ProviderError as e:
            attempt.own(e)
            raise
        except Exception as e:
            if (failure := attempt.classify(e)) is None:
                raise
            raise failure from None
        finally:
            attempt.close()
        if got.error is not None:
            said = " ".join(x for x in (got.error.type, got.error.message) if x)
            raise StreamBroken(f"provider error mid-stream: {said}", http_status=attempt.status or None)
        usage = got.usage or Usage()
        text = got.text
        if usage.source == "none":
            usage.output_tokens = estimate_tokens(text)
            usage.input_tokens = sum(estimate_tokens(m.content) for m in request.messages)
            usage.input_tokens += estimate_tokens(request.system or "")
            usage.source = "estimate"
        return Completion(
            text=text,
            finish_reason=got.finish.raw if got.finish is not None else None,
            usage=usage,
            timing=timing,
            http_status=attempt.status,
            request_id=attempt.request_id,
            model=got.model,
            rate_limit_headers=attempt.limits,
            tool_calls=got.tool_calls,
        )

    async def stream(
        self, request: ChatRequest, timing: Timing | None = None, head: StreamHead | None = None
    ) -> AsyncGenerator[Event, None]:
        """The answer's neutral events as they arrive, `timing` stamped on arrival. Raises ProviderError.

        `head`, when given, is filled in once the response's head arrived (status, request id, limits)."""
        attempt = _Attempt(self, request, timing if timing is not None else Timing(), handing_over=True)
        try:
            async with asyncio.timeout(None) as attempt.deadlines.timer:
                await attempt.open()
                if head is not None:
                    head.status, head.request_id, head.limits = attempt.status, attempt.request_id, attempt.limits
                while (events := await attempt.next()) is not None:
                    for event in events:
                        yield event  # the timer is disarmed: the caller's time is not the provider's
        except ProviderError as e:
            attempt.own(e)
            raise
        except Exception as e:
            if (failure := attempt.classify(e)) is None:
                raise
            raise failure from None
        finally:
            attempt.close()


class _Attempt:
    """One request and its response, read into neutral events, each stamped with the arrival of the bytes
    that completed it. The caller wraps `open` and `next` in the deadlines' timer and `own`s or
    `classify`s what they raise."""

    __slots__ = ("_broken", "_client", "_decoder", "_handing_over", "_http", "_request", "_resp", "_sse", "_timing",
                 "_whole_body", "deadlines", "done", "limits", "request_id", "status")  # fmt: skip

    def __init__(self, client: ProviderClient, request: ChatRequest, timing: Timing, handing_over: bool) -> None:
        self._client, self._request, self._timing = client, request, timing
        self._handing_over = handing_over  # events go to someone else's code: disarm the timer meanwhile
        self.deadlines = Deadlines(asyncio.get_running_loop(), client.timeouts, timing)
        body = orjson.dumps(client.wire.request_body(request, client.target.model))
        self._http = HttpRequest(client.url, client._headers, body, connect_timeout_s=client.timeouts.connect_s,
                                 proxy=client.proxy)  # fmt: skip
        self._resp: Response | None = None
        self._sse = SSEDecoder()
        self._decoder = client.wire.stream_decoder()
        self.status = 0
        self.request_id: str | None = None
        self.limits: dict[str, str] = {}  # what the provider said of its rate limits, on a success too
        self.done = False
        self._broken: BadResponse | None = None  # a malformed event after good ones in the same chunk
        self._whole_body = False
        timing.sent_ns = client.clock.now_ns()  # re-stamped when the body reaches the socket

    async def open(self) -> None:
        """Send; raise the taxonomy's error for a non-2xx answer."""
        client, timing = self._client, self._timing
        self.deadlines.arm(idle=False)
        self._resp = resp = await client.transport.send(self._http)
        self._restamp_sent()
        timing.headers_ns = resp.headers_ns if client._same_clock else client.clock.now_ns()
        self.status = resp.status
        self.request_id = resp.headers.get("x-request-id") or resp.headers.get("request-id")
        self.limits = rate_limit_headers(resp.headers)
        if self.status >= 300:
            raw = await self._read_all()
            raise error_for_status(self.status, resp.headers, raw, client.wire.decode_error)
        if self._request.stream and resp.headers.get("content-type", "").startswith("application/json"):
            self._whole_body = True  # a server that ignores `stream: true` answers with one body: read it as one

    async def next(self) -> Sequence[Event] | None:
        """The events the next chunk completed (maybe none); None once the answer is over."""
        if self.done:
            if self._broken is not None:
                raise self._broken
            return None
        resp, timing = self._resp, self._timing
        assert resp is not None
        if not self._request.stream or self._whole_body:
            return await self._whole(resp)
        self.deadlines.arm(idle=True)
        chunk = await resp.read()
        if self._handing_over:
            self.deadlines.disarm()
        stamped = self._client._same_clock
        read_ns = 0 if stamped else self._client.clock.now_ns()
        if chunk:
            if not timing.first_byte_ns:
                timing.first_byte_ns = resp.arrival_ns(1) if stamped else read_ns
            completed = self._sse.feed(chunk)
        else:
            completed = self._sse.close()
            if not completed:
                timing.done_ns = self._client.clock.now_ns()
                raise StreamBroken("stream ended before the completion was finished", http_status=self.status)
        if not completed:
            return _NOTHING
        if len(completed) == 1:  # the usual chunk: one event, its decoded events handed over as they are
            return self._decode(completed[0], resp.arrival_ns(completed[0].end) if stamped else read_ns)
        out: list[Event] = []
        for item in completed:
            try:
                out += self._decode(item, resp.arrival_ns(item.end) if stamped else read_ns)
            except BadResponse as e:
                if not out:
                    raise
                self._broken = e  # the good events before it are handed over first; the error comes next
                self.done = True
                break
            if self.done:
                break
        return out

    def _decode(self, item: SSEEvent, stamp: int) -> Sequence[Event]:
        """One SSE event's neutral events, stamped; `done` once one of them ends the answer."""
        try:
            events = self._decoder.decode(item)
        except ValueError:
            raise BadResponse(f"malformed stream event: {item.data[:80]!r}", http_status=self.status) from None
        for event in events:
            kind = type(event)
            if kind is TextDelta or (isinstance(event, ToolCallDelta) and event.arguments):  # arguments are content
                self._timing.content_ns.append(stamp)
            elif kind is Done or kind is ErrorEvent:  # a provider error ends the stream too; nothing follows
                self.done = True
                if kind is Done:
                    self._timing.done_ns = stamp
        return events

    async def _whole(self, resp: Response) -> Sequence[Event]:
        raw = await self._read_all()
        if self._handing_over:
            self.deadlines.disarm()
        self.done = True
        try:
            events = self._client.wire.decode_body(raw)
        except ValueError as e:
            raise BadResponse(f"unparseable response: {e}", http_status=self.status) from None
        if any(type(e) is TextDelta or type(e) is ToolCallDelta for e in events):
            self._timing.content_ns.append(self._timing.done_ns)
        return events

    async def _read_all(self) -> bytes:
        """A whole body; first byte and done are when its first and last bytes arrived."""
        resp, timing, clock, stamped = self._resp, self._timing, self._client.clock, self._client._same_clock
        assert resp is not None
        chunks: list[bytes] = []
        size = 0
        while True:
            self.deadlines.arm(idle=True)
            chunk = await resp.read()
            if not chunk:
                break
            if not size:
                timing.first_byte_ns = resp.arrival_ns(1) if stamped else clock.now_ns()
            chunks.append(chunk)
            size += len(chunk)
        timing.done_ns = resp.arrival_ns(size) if stamped and size else clock.now_ns()
        if not size:
            timing.first_byte_ns = timing.done_ns
        return b"".join(chunks)

    def own(self, e: ProviderError) -> None:
        """An error found inside a 200 answer carries its status."""
        if e.http_status is None and self.status:
            e.http_status = self.status

    def classify(self, e: Exception) -> ProviderError | None:
        return classify(e, self._timing, self.deadlines, self._client.target.base_url, self.status)

    def close(self) -> None:
        self._restamp_sent()
        if self._resp is not None:
            self._resp.close()

    def _restamp_sent(self) -> None:
        if self._http.sent_ns and self._client._same_clock:
            self._timing.sent_ns = self._http.sent_ns


class OpenAIClient(ProviderClient):
    """OpenAI chat completions, and every server that speaks it (Azure, vLLM, TGI, Ollama, llama.cpp...)."""

    api = OPENAI.api


class AnthropicClient(ProviderClient):
    """Anthropic messages API (base_url without /v1, as the Anthropic SDK takes it)."""

    api = ANTHROPIC.api
