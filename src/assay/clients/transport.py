"""Bytes in and out: the `Transport` seam under the client, and the aiohttp transport that is the real one.

A transport sends one `HttpRequest` and returns a `Response`: status, headers,
and body chunks whose bytes carry arrival stamps, looked up by stream offset
(`arrival_ns`). Policy (timing rules, deadlines, retries, error classes) is the
client's; a transport only moves bytes and says when they came.

Timing rule (DESIGN.md invariant 3): `AiohttpTransport` stamps bytes in the
connection protocol's `data_received`, the I/O callback, before aiohttp parses
them: a subclass of aiohttp's `ResponseHandler`, installed through the
connector's protocol factory, records `(body bytes so far, now)` after each
call. A reader that gets a chunk later (behind every other ready callback, at
100 streams) still knows when each of its bytes arrived. Where the hook cannot
be installed (a session made elsewhere), a chunk is stamped when it is read.
"""

from __future__ import annotations

import functools
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import aiohttp
from aiohttp.client_proto import ResponseHandler

from assay.clock import Clock, SystemClock

__all__ = [
    "AiohttpTransport",
    "HttpRequest",
    "Response",
    "Transport",
    "TransportError",
    "open_session",
    "proxy_for",
    "same_time_base",
]


@dataclass(slots=True)
class HttpRequest:
    url: str
    headers: Mapping[str, str]
    body: bytes
    method: str = "POST"
    connect_timeout_s: float | None = None
    proxy: str | None = None
    sent_ns: int = 0  # set by the transport when the body reached the socket; 0 when it never did or cannot tell


class Response(Protocol):
    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Case-insensitive."""
        ...

    @property
    def headers_ns(self) -> int:
        """When the response head arrived."""
        ...

    async def read(self) -> bytes:
        """The next body chunk as it arrives; b"" at the end. Raises TransportError."""
        ...

    def arrival_ns(self, end: int) -> int:
        """When the body's bytes up to offset `end` had all arrived (offsets count from the body's start)."""
        ...

    def close(self) -> None:
        """Give the connection back (or drop it, if the body was not read to its end)."""
        ...


class Transport(Protocol):
    clock: Clock  # the clock its stamps are read from
    uses_proxies: bool  # whether HTTP(S)_PROXY applies to what it sends

    async def send(self, request: HttpRequest) -> Response:
        """Send one request; return once the response head arrived. Raises TransportError."""
        ...


class TransportError(Exception):
    """The exchange failed below HTTP semantics: could not connect, connection lost, bytes that are not HTTP."""

    def __init__(self, kind: Literal["connect", "connect_timeout", "closed", "malformed"], detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def same_time_base(a: Clock, b: Clock) -> bool:
    """Whether stamps from the two clocks can be compared (SystemClocks all read CLOCK_MONOTONIC)."""
    return a is b or (type(a) is SystemClock and type(b) is SystemClock)


def proxy_for(url: str) -> str | None:
    """The proxy HTTP(S)_PROXY / NO_PROXY choose for `url`, looked up once per client.

    aiohttp's `trust_env` does this lookup on every request, through a thread hop
    (~0.3 ms of CPU an item in a 10,000-item eval); a target's proxy does not change.
    """
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


class _Arrivals:
    """Arrival stamps of one response: after `totals[i]` body bytes had come, the time was `stamps[i]`."""

    __slots__ = ("headers_ns", "payload", "stamps", "totals")

    def __init__(self, payload: object, headers_ns: int) -> None:
        self.payload = payload
        self.headers_ns = headers_ns
        self.totals: list[int] = []
        self.stamps: list[int] = []


class _StampingHandler(ResponseHandler):
    """aiohttp's client connection protocol, stamping every arrival before parsing it."""

    def __init__(self, loop: Any, clock: Clock, **kwargs: Any) -> None:
        super().__init__(loop, **kwargs)
        # SystemClock.now_ns is time.monotonic_ns: call it without the extra frame, in the hottest callback.
        self._now_ns = time.monotonic_ns if type(clock) is SystemClock else clock.now_ns
        self.arrivals: _Arrivals | None = None

    def data_received(self, data: bytes) -> None:
        stamp = self._now_ns()
        before = self._payload
        ResponseHandler.data_received(self, data)
        payload = self._payload if self._payload is not None else before
        if payload is None:
            return
        a = self.arrivals
        if a is None or a.payload is not payload:  # a new response: its head arrived in these bytes
            a = self.arrivals = _Arrivals(payload, stamp)
        total = payload.total_bytes
        if not a.totals or a.totals[-1] != total:
            a.totals.append(total)
            a.stamps.append(stamp)


def _install_stamps(connector: aiohttp.BaseConnector, clock: Clock) -> bool:
    """Make the connector build stamping protocols; False where its factory is not aiohttp's own."""
    factory = getattr(connector, "_factory", None)
    if not isinstance(factory, functools.partial) or factory.func is not ResponseHandler:
        return False
    kwargs = {**factory.keywords, "clock": clock}
    connector._factory = functools.partial(_StampingHandler, *factory.args, **kwargs)  # type: ignore[assignment]
    return True


class _AiohttpResponse:
    __slots__ = ("_arrivals", "_clock", "_content", "_i", "_read_ns", "_resp", "headers", "headers_ns", "status")

    def __init__(self, resp: aiohttp.ClientResponse, clock: Clock) -> None:
        self._resp, self._clock, self._content = resp, clock, resp.content
        self.status, self.headers = resp.status, resp.headers
        self._read_ns = clock.now_ns()
        protocol = getattr(resp, "_protocol", None)
        a = protocol.arrivals if isinstance(protocol, _StampingHandler) else None
        self._arrivals = a if a is not None and a.payload is resp.content else None
        self.headers_ns = self._arrivals.headers_ns if self._arrivals is not None else self._read_ns
        self._i = 0

    async def read(self) -> bytes:
        try:
            chunk = await self._content.readany()
        except aiohttp.ClientError as e:
            raise _transport_error(e) from e
        if self._arrivals is None:
            self._read_ns = self._clock.now_ns()
        return chunk

    def arrival_ns(self, end: int) -> int:
        a = self._arrivals
        if a is None:
            return self._read_ns
        totals, i = a.totals, self._i
        n = len(totals)
        while i < n and totals[i] < end:
            i += 1
        self._i = i
        return a.stamps[i] if i < n else self._clock.now_ns()  # bytes the hook did not see: now, at the latest

    def close(self) -> None:
        self._resp.release()


async def _on_body_sent(
    clock: Clock, session: aiohttp.ClientSession, ctx: Any, params: aiohttp.TraceRequestChunkSentParams
) -> None:
    """Stamp `sent_ns` when the body reaches the socket: pool waits and request building are not the server's."""
    request = ctx.trace_request_ctx
    if isinstance(request, HttpRequest):
        request.sent_ns = clock.now_ns()


class AiohttpTransport:
    """The real transport: one pooled aiohttp session for every target.

    Give it nothing (it builds a stamping connector), a connector (stamped where
    aiohttp's factory is found), or a session made elsewhere (read-time stamps,
    and `sent_ns` stays the time of the call).
    """

    uses_proxies = True

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        connector: aiohttp.BaseConnector | None = None,
        clock: Clock | None = None,
        max_connections: int = 1000,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self._timeouts: dict[float | None, aiohttp.ClientTimeout] = {}
        if session is not None:
            self.session, self.stamped = session, False
            return
        if connector is None:
            connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=0, ttl_dns_cache=300)
        self.stamped = _install_stamps(connector, self.clock)
        trace = aiohttp.TraceConfig()
        trace.on_request_chunk_sent.append(functools.partial(_on_body_sent, self.clock))
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None),
            auto_decompress=True,
            trace_configs=[trace],
        )

    async def send(self, request: HttpRequest) -> Response:
        timeout = self._timeouts.get(request.connect_timeout_s)
        if timeout is None:
            timeout = self._timeouts[request.connect_timeout_s] = aiohttp.ClientTimeout(
                total=None, sock_connect=request.connect_timeout_s
            )
        try:
            resp = await self.session.request(
                request.method,
                request.url,
                data=request.body,
                headers=request.headers,
                timeout=timeout,
                trace_request_ctx=request,
                proxy=request.proxy if self.uses_proxies else None,
            )
        except aiohttp.ClientError as e:
            raise _transport_error(e) from e
        return _AiohttpResponse(resp, self.clock)

    async def close(self) -> None:
        await self.session.close()

    async def __aenter__(self) -> AiohttpTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def open_session(max_connections: int = 1000, clock: Clock | None = None) -> AiohttpTransport:
    """One pooled transport for all targets (`async with open_session() as session:`).

    HTTP(S)_PROXY and NO_PROXY are honoured per target (`proxy_for`), as corporate networks need.
    """
    return AiohttpTransport(clock=clock, max_connections=max_connections)


def _transport_error(e: aiohttp.ClientError) -> TransportError | aiohttp.ClientError:
    """aiohttp's failures in the transport's terms; others are returned as they are (a bug of ours)."""
    if isinstance(e, aiohttp.ConnectionTimeoutError):
        return TransportError("connect_timeout", str(e))
    if isinstance(e, aiohttp.ClientConnectorError):
        return TransportError("connect", e.os_error.strerror or str(e))
    if isinstance(e, aiohttp.ServerDisconnectedError):
        return TransportError("closed", "server disconnected")
    if isinstance(e, aiohttp.ClientPayloadError):
        return TransportError("closed", "payload incomplete")
    if isinstance(e, aiohttp.ClientOSError):
        return TransportError("closed", (str(e) or type(e).__name__)[:120])
    if isinstance(e, aiohttp.ClientResponseError):
        return TransportError("malformed", e.message)
    return e
