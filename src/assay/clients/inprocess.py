"""An in-process transport: aiohttp's own client and server, joined by an in-memory pipe, no sockets.

`InProcessTransport(app)` serves an aiohttp `web.Application` (or one async
handler) to clients in the same event loop. Every byte goes through the real
HTTP machinery on both sides (framing, streaming, keep-alive, a connection
dropped mid-stream), and arrival stamps are taken as in `AiohttpTransport`;
only the kernel and the loopback are gone. Tests, the what-if engine and an
embedded simulator plug in here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp.client_proto import ResponseHandler

from assay.clients.transport import AiohttpTransport, HttpRequest, Response
from assay.clock import Clock

if TYPE_CHECKING:  # aiohttp's server half is imported when an in-process transport is made, not with assay.clients
    from aiohttp import web

__all__ = ["InProcessTransport"]

Handler = Callable[["web.Request"], Awaitable["web.StreamResponse"]]


class _Pipe(asyncio.Transport):
    """One end of an in-memory connection: what it writes, its peer's protocol receives on a later loop turn."""

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: asyncio.BaseProtocol, name: str) -> None:
        super().__init__({"peername": (name, 0), "sockname": (name, 0)})
        self._loop, self._protocol = loop, protocol
        self.peer: _Pipe | None = None
        self._closing = False

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def is_closing(self) -> bool:
        return self._closing

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._closing and data and self.peer is not None:
            self._loop.call_soon(self.peer._receive, bytes(data))

    def _receive(self, data: bytes) -> None:
        if not self._closing:
            self._protocol.data_received(data)  # type: ignore[attr-defined]

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self.peer is not None:
            self._loop.call_soon(self.peer._eof)

    def _eof(self) -> None:
        if not self._closing:
            self._protocol.eof_received()  # type: ignore[attr-defined]

    def close(self) -> None:
        self._shut(None)

    def abort(self) -> None:
        self._shut(ConnectionResetError("connection reset by peer"))

    def _shut(self, exc: Exception | None) -> None:
        if self._closing:
            return
        self._closing = True
        self._loop.call_soon(self._protocol.connection_lost, None)
        if self.peer is not None:
            self._loop.call_soon(self.peer._lost, exc)  # after the bytes already on their way

    def _lost(self, exc: Exception | None) -> None:
        if not self._closing:
            self._closing = True
            self._protocol.connection_lost(exc)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return not self._closing

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass


class _PipeConnector(aiohttp.BaseConnector):
    def __init__(self, server: Callable[[], web.Server], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._server = server

    async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> ResponseHandler:  # noqa: ASYNC109 - aiohttp's signature
        loop = asyncio.get_running_loop()
        client, server = self._factory(), self._server()()
        client_end, server_end = _Pipe(loop, client, "in-process-client"), _Pipe(loop, server, "in-process-server")
        client_end.peer, server_end.peer = server_end, client_end
        server.connection_made(server_end)
        client.connection_made(client_end)
        return client


class InProcessTransport(AiohttpTransport):
    """`async with InProcessTransport(app) as transport:`; targets' base URLs name any host (it is not looked up)."""

    uses_proxies = False

    def __init__(self, app: web.Application | Handler, *, clock: Clock | None = None) -> None:
        from aiohttp import web

        if not isinstance(app, web.Application):
            handler, app = app, web.Application()
            app.router.add_route("*", "/{path:.*}", handler)
        # Hung requests are part of the simulator's act; closing must not wait for them.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        self._ready = asyncio.Lock()
        super().__init__(connector=_PipeConnector(self._server), clock=clock)

    def _server(self) -> web.Server:
        server = self._runner.server
        assert server is not None, "the app is set up before the first request"
        return server

    async def send(self, request: HttpRequest) -> Response:
        if self._runner.server is None:
            async with self._ready:
                if self._runner.server is None:
                    await self._runner.setup()
        return await super().send(request)

    async def close(self) -> None:
        await super().close()
        await self._runner.cleanup()
