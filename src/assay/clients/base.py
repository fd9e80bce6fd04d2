"""The provider client: one async `send()` that times, streams and classifies failures.

Timing rule (DESIGN.md invariant 3): every chunk is stamped with the clock the
moment `readany()` hands it over, before any parsing, and all events in that
chunk share the stamp because they arrived together.

Timeouts by phase: `connect` (TCP/TLS, enforced by aiohttp), `first_token`
(send to first content token, headers included), `idle` (gap between chunks)
and `total`. One `asyncio.timeout` is re-armed before each wait with the
nearest deadline, so the phase that expired is always known and no task is
created per chunk.
"""

from __future__ import annotations

import asyncio
import os
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import aiohttp
import orjson

from assay.clients.errors import error_for_status
from assay.clock import Clock, SystemClock
from assay.errors import BadResponse, ConfigError, ConnectionFailed, ProviderError, StreamBroken, Timeout
from assay.model import ChatRequest, Completion, Target, Timing, Usage

__all__ = ["ProviderClient", "StreamState", "Timeouts", "estimate_tokens", "open_session"]


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_s: float = 10.0
    first_token_s: float = 30.0
    idle_s: float = 30.0
    total_s: float = 60.0


@dataclass(slots=True)
class StreamState:
    """What the protocol parser accumulates while a response streams in."""

    parts: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    done: bool = False
    model: str | None = None


def estimate_tokens(text: str) -> int:
    """~4 characters a token: a rough fallback used only when the server reports no usage."""
    return (len(text) + 3) // 4 if text else 0


@dataclass(slots=True)
class _SentStamp:
    timing: Timing
    clock: Clock


async def _on_body_sent(session: aiohttp.ClientSession, ctx: Any, params: aiohttp.TraceRequestChunkSentParams) -> None:
    """Re-stamp `sent_ns` when the body reaches the socket: pool waits and request building are not the server's."""
    stamp = ctx.trace_request_ctx
    if isinstance(stamp, _SentStamp):
        stamp.timing.sent_ns = stamp.clock.now_ns()


def proxy_for(url: str) -> str | None:
    """The proxy HTTP(S)_PROXY / NO_PROXY choose for `url`, looked up once per client.

    aiohttp's `trust_env` does this lookup on every request, through a thread hop
    (~0.3 ms of CPU an item in a 10,000-item eval); a target's proxy does not change.
    """
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def open_session(max_connections: int = 1000) -> aiohttp.ClientSession:
    """One pooled session for all targets; per-request timeouts are set by the client.

    HTTP(S)_PROXY and NO_PROXY are honoured per target (`proxy_for`), as corporate networks need.
    """
    connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=0, ttl_dns_cache=300)
    trace = aiohttp.TraceConfig()
    trace.on_request_chunk_sent.append(_on_body_sent)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None),
        auto_decompress=True,
        trace_configs=[trace],
    )


class _Deadlines:
    """The phase deadlines of one attempt, enforced by one re-armed `asyncio.timeout`.

    Before each wait, `arm` points the timer at the nearest deadline and
    remembers its phase, so an expiry always knows what it was waiting for.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, timeouts: Timeouts, timing: Timing) -> None:
        self.loop, self.timeouts, self.timing = loop, timeouts, timing
        start = loop.time()
        self.total_at = start + timeouts.total_s
        self.first_at = start + timeouts.first_token_s
        self.timer: asyncio.Timeout | None = None
        self.phase = "first_token"
        self.http_status = 0
        self.request_id: str | None = None

    def arm(self, idle: bool) -> None:
        choices = [(self.total_at, "total")]
        if not self.timing.content_ns:
            choices.append((self.first_at, "first_token"))
        if idle:
            choices.append((self.loop.time() + self.timeouts.idle_s, "idle"))
        when, self.phase = min(choices)
        assert self.timer is not None
        self.timer.reschedule(when)


class ProviderClient(ABC):
    """Speaks one wire protocol to one target."""

    api: ClassVar[str]

    def __init__(
        self,
        target: Target,
        session: aiohttp.ClientSession,
        timeouts: Timeouts | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.target = target
        self.session = session
        self.proxy = proxy_for(target.base_url)
        self.timeouts = timeouts or Timeouts()
        self.clock: Clock = clock or SystemClock()
        self._api_key: str | None = None
        if target.api_key_env:
            key = os.environ.get(target.api_key_env)
            if not key:
                raise ConfigError(f"target {target.name!r}: environment variable {target.api_key_env} is not set")
            self._api_key = key

    # -- what each protocol supplies -------------------------------------------------
    @abstractmethod
    def url(self) -> str: ...

    @abstractmethod
    def headers(self) -> dict[str, str]: ...

    @abstractmethod
    def body(self, request: ChatRequest) -> dict[str, Any]: ...

    @abstractmethod
    def on_event(self, event: dict[str, Any], state: StreamState) -> str | None:
        """Fold one stream event into `state`; return its content text, if any."""

    @abstractmethod
    def parse_body(self, data: dict[str, Any], state: StreamState) -> None:
        """Fill `state` from a non-streaming response body."""

    # -- the shared lifecycle ----------------------------------------------------------
    async def send(self, request: ChatRequest, timing: Timing | None = None) -> Completion:
        """Send one request. Raises a ProviderError subclass on any failure.

        Pass `timing` to keep the stamps of a failed or cancelled attempt.
        """
        timing = timing if timing is not None else Timing()
        state = StreamState()
        deadlines = _Deadlines(asyncio.get_running_loop(), self.timeouts, timing)
        timing.sent_ns = self.clock.now_ns()  # re-stamped when the body reaches the socket
        try:
            async with asyncio.timeout(None) as deadlines.timer:
                await self._exchange(request, timing, state, deadlines)
        except ProviderError as e:
            if e.http_status is None and deadlines.http_status:
                e.http_status = deadlines.http_status  # errors found inside a 200 stream
            raise
        except Exception as e:
            failure = self._classify(e, timing, deadlines)
            if failure is None:
                raise
            raise failure from None
        return self._completion(request, state, timing, deadlines)

    async def _exchange(self, request: ChatRequest, timing: Timing, state: StreamState, deadlines: _Deadlines) -> None:
        deadlines.arm(idle=False)
        async with self.session.post(
            self.url(),
            data=orjson.dumps(self.body(request)),
            headers={"content-type": "application/json", **self.target.headers, **self.headers()},
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeouts.connect_s),
            trace_request_ctx=_SentStamp(timing, self.clock),
            proxy=self.proxy,
        ) as resp:
            timing.headers_ns = self.clock.now_ns()
            deadlines.http_status = resp.status
            deadlines.request_id = resp.headers.get("x-request-id") or resp.headers.get("request-id")
            if resp.status >= 300:
                raw = await resp.read()
                timing.first_byte_ns = timing.done_ns = self.clock.now_ns()
                raise error_for_status(resp.status, resp.headers, raw)
            if request.stream:
                await self._read_stream(resp, state, timing, deadlines)
                return
            raw = await resp.read()
            timing.first_byte_ns = stamp = self.clock.now_ns()
            self.parse_body(orjson.loads(raw), state)
            if any(state.parts):
                timing.content_ns.append(stamp)
            timing.done_ns = stamp

    def _classify(self, e: Exception, timing: Timing, deadlines: _Deadlines) -> ProviderError | None:
        """The taxonomy class of a transport-level failure; None for what is not one (a bug: let it raise)."""
        t, status = self.timeouts, deadlines.http_status or None
        if isinstance(e, TimeoutError):
            if (
                isinstance(e, aiohttp.ConnectionTimeoutError)
                or deadlines.timer is None
                or not deadlines.timer.expired()
            ):
                return Timeout(f"connect timed out after {t.connect_s:g}s", phase="connect")
            limit = {"total": t.total_s, "first_token": t.first_token_s, "idle": t.idle_s}[deadlines.phase]
            return Timeout(f"{deadlines.phase} timeout after {limit:g}s", phase=deadlines.phase, http_status=status)
        if isinstance(e, orjson.JSONDecodeError | UnicodeDecodeError):
            return BadResponse(f"unparseable response: {e}", http_status=status)
        if isinstance(e, aiohttp.ClientConnectorError):
            return ConnectionFailed(f"cannot connect to {self.target.base_url}: {e.os_error.strerror or e}")
        if isinstance(e, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError | aiohttp.ClientPayloadError):
            if timing.first_byte_ns:
                n = len(timing.content_ns)
                return StreamBroken(
                    f"connection lost mid-stream after {n} content events ({_short(e)})", http_status=status
                )
            return ConnectionFailed(f"connection closed before any response ({_short(e)})")
        if isinstance(e, aiohttp.ClientResponseError):
            return BadResponse(f"malformed HTTP response: {e.message}")
        return None

    def _completion(
        self, request: ChatRequest, state: StreamState, timing: Timing, deadlines: _Deadlines
    ) -> Completion:
        text = "".join(state.parts)
        usage = state.usage
        if usage.source == "none":
            usage.output_tokens = estimate_tokens(text)
            prompt = [m.content for m in request.messages] + [request.system or ""]
            usage.input_tokens = sum(estimate_tokens(p) for p in prompt)
            usage.source = "estimate"
        return Completion(
            text=text,
            finish_reason=state.finish_reason,
            usage=usage,
            timing=timing,
            http_status=deadlines.http_status,
            request_id=deadlines.request_id,
            model=state.model,
        )

    async def _read_stream(
        self, resp: aiohttp.ClientResponse, state: StreamState, timing: Timing, deadlines: _Deadlines
    ) -> None:
        buf = b""
        content = resp.content
        while True:
            deadlines.arm(idle=True)
            chunk = await content.readany()
            stamp = self.clock.now_ns()
            if not chunk:
                break
            if not timing.first_byte_ns:
                timing.first_byte_ns = stamp
            buf += chunk
            if b"\n" not in chunk:
                continue
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if not line.startswith(b"data:"):
                    continue  # event names, comments, blank separators
                data = line[5:].strip()
                if data == b"[DONE]":
                    state.done = True
                    continue
                try:
                    event = orjson.loads(data)
                except orjson.JSONDecodeError:
                    raise BadResponse(f"malformed stream event: {data[:80]!r}", http_status=resp.status) from None
                if self.on_event(event, state):
                    timing.content_ns.append(stamp)
            if state.done:
                break
        timing.done_ns = stamp
        if not state.done:
            raise StreamBroken("stream ended before the completion was finished", http_status=resp.status)


def _short(e: BaseException) -> str:
    """aiohttp's messages nest the cause's repr; the class name says enough."""
    if isinstance(e, aiohttp.ClientPayloadError):
        return "payload incomplete"
    if isinstance(e, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    return (str(e) or type(e).__name__)[:120]
