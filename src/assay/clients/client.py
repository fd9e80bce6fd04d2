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
import contextlib
import os
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import ClassVar

import aiohttp
import orjson

from assay.clients.deadlines import Deadlines, Timeouts
from assay.clients.errors import classify, error_for_status
from assay.clients.transport import AiohttpTransport, HttpRequest, Response, Transport, proxy_for, same_time_base
from assay.clock import Clock, SystemClock
from assay.errors import BadResponse, ConfigError, ProviderError, StreamBroken
from assay.model import ChatRequest, Completion, Target, Timing, Usage
from assay.wire import ANTHROPIC, OPENAI, PROTOCOLS, Collector, Done, ErrorEvent, Event, SSEDecoder, TextDelta, Wire

__all__ = ["AnthropicClient", "OpenAIClient", "ProviderClient", "estimate_tokens"]


def estimate_tokens(text: str) -> int:
    """~4 characters a token: a rough fallback used only when the server reports no usage."""
    return (len(text) + 3) // 4 if text else 0


@dataclass(slots=True)
class _Exchange:
    """What one attempt learned beyond its events: status and the provider's request id."""

    status: int = 0
    request_id: str | None = None


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
        got, exchange = Collector(), _Exchange()
        async with contextlib.aclosing(self._exchange(request, timing, exchange)) as events:
            async for event in events:
                got.add(event)
        if got.error is not None:
            said = " ".join(x for x in (got.error.type, got.error.message) if x)
            raise StreamBroken(f"provider error mid-stream: {said}", http_status=exchange.status or None)
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
            http_status=exchange.status,
            request_id=exchange.request_id,
            model=got.model,
        )

    def stream(self, request: ChatRequest, timing: Timing | None = None) -> AsyncGenerator[Event, None]:
        """The answer's neutral events as they arrive, `timing` stamped on arrival. Raises ProviderError."""
        return self._exchange(request, timing if timing is not None else Timing(), _Exchange())

    async def _exchange(self, request: ChatRequest, timing: Timing, exchange: _Exchange) -> AsyncGenerator[Event, None]:
        deadlines = Deadlines(asyncio.get_running_loop(), self.timeouts, timing)
        body = orjson.dumps(self.wire.request_body(request, self.target.model))
        http = HttpRequest(self.url, self._headers, body, connect_timeout_s=self.timeouts.connect_s, proxy=self.proxy)
        timing.sent_ns = self.clock.now_ns()  # re-stamped when the body reaches the socket
        resp: Response | None = None
        try:
            async with asyncio.timeout(None) as deadlines.timer:
                deadlines.arm(idle=False)
                resp = await self.transport.send(http)
                self._restamp_sent(timing, http)
                timing.headers_ns = resp.headers_ns if self._same_clock else self.clock.now_ns()
                exchange.status = status = resp.status
                exchange.request_id = resp.headers.get("x-request-id") or resp.headers.get("request-id")
                if status >= 300:
                    raw = await self._read_all(resp, timing, deadlines)
                    raise error_for_status(status, resp.headers, raw, self.wire.decode_error)
                if not request.stream:
                    raw = await self._read_all(resp, timing, deadlines)
                    deadlines.disarm()
                    try:
                        events = self.wire.decode_body(raw)
                    except ValueError as e:
                        raise BadResponse(f"unparseable response: {e}", http_status=status) from None
                    if any(isinstance(e, TextDelta) for e in events):
                        timing.content_ns.append(timing.done_ns)
                    for event in events:
                        yield event
                    return
                async with contextlib.aclosing(self._events(resp, timing, deadlines)) as stream:
                    async for event in stream:
                        yield event
        except ProviderError as e:
            if e.http_status is None and exchange.status:
                e.http_status = exchange.status  # errors found inside a 200 stream
            raise
        except Exception as e:
            failure = classify(e, timing, deadlines, self.target.base_url, exchange.status)
            if failure is None:
                raise
            raise failure from None
        finally:
            self._restamp_sent(timing, http)
            if resp is not None:
                resp.close()

    async def _events(self, resp: Response, timing: Timing, deadlines: Deadlines) -> AsyncGenerator[Event, None]:
        """Read the stream; each event is stamped with the arrival of the bytes that completed it."""
        sse, decoder, content, status = SSEDecoder(), self.wire.stream_decoder(), timing.content_ns, resp.status
        arrivals = self._same_clock
        while True:
            deadlines.arm(idle=True)
            chunk = await resp.read()
            read_ns = self.clock.now_ns()
            deadlines.disarm()
            if chunk:
                if not timing.first_byte_ns:
                    timing.first_byte_ns = resp.arrival_ns(1) if arrivals else read_ns
                completed = sse.feed(chunk)
            else:
                completed = sse.close()
                if not completed:
                    timing.done_ns = read_ns
                    raise StreamBroken("stream ended before the completion was finished", http_status=status)
            for item in completed:
                stamp = resp.arrival_ns(item.end) if arrivals else read_ns
                try:
                    events = decoder.decode(item)
                except ValueError:
                    raise BadResponse(f"malformed stream event: {item.data[:80]!r}", http_status=status) from None
                for event in events:
                    if isinstance(event, TextDelta):
                        content.append(stamp)
                    elif isinstance(event, Done):
                        timing.done_ns = stamp
                        yield event
                        return
                    elif isinstance(event, ErrorEvent):
                        yield event
                        return  # a provider error ends the stream
                    yield event

    async def _read_all(self, resp: Response, timing: Timing, deadlines: Deadlines) -> bytes:
        """A whole body; first byte and done are when its first and last bytes arrived."""
        chunks: list[bytes] = []
        size = 0
        while True:
            deadlines.arm(idle=True)
            chunk = await resp.read()
            read_ns = self.clock.now_ns()
            if not chunk:
                break
            if not size:
                timing.first_byte_ns = resp.arrival_ns(1) if self._same_clock else read_ns
            chunks.append(chunk)
            size += len(chunk)
        timing.done_ns = resp.arrival_ns(size) if self._same_clock and size else read_ns
        if not size:
            timing.first_byte_ns = timing.done_ns
        return b"".join(chunks)

    def _restamp_sent(self, timing: Timing, http: HttpRequest) -> None:
        if http.sent_ns and self._same_clock:
            timing.sent_ns = http.sent_ns


class OpenAIClient(ProviderClient):
    """OpenAI chat completions, and every server that speaks it (Azure, vLLM, TGI, Ollama, llama.cpp...)."""

    api = OPENAI.api


class AnthropicClient(ProviderClient):
    """Anthropic messages API (base_url without /v1, as the Anthropic SDK takes it)."""

    api = ANTHROPIC.api
