"""The client-facing half of one gateway request: what has reached the client, in the client's protocol.

Streaming, nothing is written until the first content event arrives (after
`holdback` of them, when the route holds some back): until then a failed attempt
leaves no trace and the next target starts clean. Once bytes are out, `sent_text`
is what the client has, so a continuation can pick up from it. `close` is the only
way a finished-looking end (finish reason, usage, [DONE] / message_stop) is written,
and it is called only for a complete answer; a stream that cannot be completed ends
with `fail`, the protocol's in-band error event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aiohttp import web

from assay.model import Usage
from assay.wire import DONE, Collector, Event, Finish, StreamEncoder, TextDelta, UsageReport, Wire

__all__ = ["Sink"]


class Sink:
    __slots__ = (
        "_encoder",
        "_pending",
        "_request",
        "collector",
        "first_write_ns",
        "headers",
        "holdback",
        "include_usage",
        "model",
        "now_ns",
        "response",
        "rid",
        "sent_other",
        "sent_text",
        "stream",
        "wire",
    )  # fmt: skip

    def __init__(self, request: web.Request, wire: Wire, rid: str, stream: bool, include_usage: bool,
                 holdback: int, now_ns: Callable[[], int]) -> None:  # fmt: skip
        self._request = request
        self.now_ns = now_ns
        self.first_write_ns = 0  # when the first content bytes were handed to the client's socket
        self.wire, self.rid, self.stream, self.include_usage = wire, rid, stream, include_usage
        self.holdback = holdback
        self.response: web.StreamResponse | None = None
        self._encoder: StreamEncoder | None = None
        self._pending: list[Event] = []
        self.sent_text: list[str] = []  # text the client has received
        self.sent_other = False  # something other than text reached the client (a tool call): no continuation
        self.model = ""
        self.headers: dict[str, str] = {}

    @property
    def started(self) -> bool:
        """Whether any byte of the answer has reached the client."""
        return self.response is not None

    def begin_attempt(self, model: str, headers: Mapping[str, str]) -> None:
        """A new attempt: what it held back (never sent) is forgotten; its target names the answer if first."""
        self._pending.clear()
        if not self.started:
            self.model = model
            self.headers = dict(headers)

    async def content(self, event: Event) -> None:
        """A content event (text, a tool call) of the current attempt."""
        if not self.stream:
            return  # the attempt's own Collector holds it until the answer is complete
        response, encoder = self.response, self._encoder
        if response is not None and encoder is not None and type(event) is TextDelta:  # the usual token
            assert isinstance(event, TextDelta)
            self.sent_text.append(event.text)
            await response.write(encoder.text(event.text, event.choice))
            return
        if self.response is None and len(self._pending) < self.holdback:
            self._pending.append(event)
            return
        await self._write_events(event)

    async def _write_events(self, event: Event | None) -> None:
        if self.response is None:
            self._encoder = self.wire.stream_encoder(self.rid, self.model, self.include_usage)
            resp = web.StreamResponse(
                headers={**self.headers, "content-type": "text/event-stream", "cache-control": "no-cache"}
            )
            await resp.prepare(self._request)
            self.response = resp
        assert self._encoder is not None and self.response is not None
        events = [*self._pending, event] if event is not None else list(self._pending)
        self._pending.clear()
        out = b"".join(self._encoder.encode(e) for e in events)
        for e in events:
            if type(e) is TextDelta:
                self.sent_text.append(e.text)
            else:
                self.sent_other = True
        if out:
            await self.response.write(out)
            if not self.first_write_ns:
                self.first_write_ns = self.now_ns()

    async def close(self, got: Collector, usage: Usage) -> web.StreamResponse:
        """The answer is complete: end it as the protocol ends a finished answer, with this usage."""
        finish = got.finish or Finish("stop")
        if not self.stream:  # nothing was sent: the answer is all the serving attempt's
            body = self.wire.encode_body(self.rid, self.model, got.text, finish, usage, tool_calls=got.tool_calls,
                                         more_choices=got.choices[1:])  # fmt: skip
            return web.Response(body=body, headers=self.headers, content_type="application/json")
        await self._write_events(None)  # held-back events, and the head if nothing was sent yet
        assert self._encoder is not None and self.response is not None
        encode = self._encoder.encode
        for choice in got.choices:
            if choice.finish is not None:
                encode(choice.finish)  # held by the encoder until Done, as each protocol orders them
        await self.response.write(encode(UsageReport(usage)) + encode(DONE))
        await self.response.write_eof()
        return self.response

    async def fail(self, message: str, type: str | None = None) -> web.StreamResponse:
        """Bytes are out and the answer cannot be completed: say so in-band, never as a finished answer."""
        assert self._encoder is not None and self.response is not None
        await self.response.write(self._encoder.error(message, type))
        await self.response.write_eof()
        return self.response
