"""Server-sent events: encoding, and an incremental decoder that knows where each event ended.

`SSEDecoder.feed` takes body chunks as they arrive and returns the events they
complete, each with the stream offset just past its terminating blank line, so
a reader can give an event the arrival stamp of the bytes that completed it. An
incomplete event waits in a list of pieces that is joined once, when its end
arrives: a long event split over many chunks costs linear time, not quadratic.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["DONE_EVENT", "SSEDecoder", "SSEEvent", "encode_sse"]

DONE_EVENT = b"data: [DONE]\n\n"  # OpenAI's end of stream
# A blank line in any of SSE's three line endings; atomic groups keep "\r\n" from counting as two.
_BLANK_LINE = re.compile(rb"(?>\r\n|\r|\n)(?>\r\n|\r|\n)")
_LINE = re.compile(rb"\r\n|\r|\n")
_NOTHING: tuple[SSEEvent, ...] = ()


def encode_sse(data: Any, event: str | None = None) -> bytes:
    """One event: an optional `event:` line and one `data:` line of JSON (bytes are sent as they are)."""
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + payload + b"\n\n"


@dataclass(slots=True)
class SSEEvent:
    event: str | None  # the `event:` field, when the server named the event
    data: bytes  # the `data:` lines, joined by newlines
    end: int  # stream offset just past the blank line that ended the event


class SSEDecoder:
    """Feed it body chunks; get back the events they complete."""

    __slots__ = ("_offset", "_pending", "_pending_len")

    def __init__(self) -> None:
        self._pending: list[bytes] = []  # pieces of an event whose end has not arrived
        self._pending_len = 0
        self._offset = 0  # bytes fed so far

    def feed(self, chunk: bytes) -> Sequence[SSEEvent]:
        start = self._offset - self._pending_len  # stream offset of the first byte to scan
        self._offset += len(chunk)
        if self._pending:
            last = self._pending[-1]
            ends_here = b"\n\n" in chunk or b"\r" in chunk or (chunk[:1] == b"\n" and last[-1:] == b"\n")
            self._pending.append(chunk)
            self._pending_len += len(chunk)
            if not ends_here and last[-1:] != b"\r":
                return _NOTHING
            buf = b"".join(self._pending)
            self._pending.clear()
        else:
            buf = chunk
        if b"\r" in buf:
            events, used = _split_any(buf, start)
        else:  # the usual stream: events end with "\n\n"; inlined, as this runs for every chunk
            events, used = [], 0
            while (i := buf.find(b"\n\n", used)) >= 0:
                if buf.startswith(b"data: ", used) and buf.find(b"\n", used, i) < 0:  # one data line
                    events.append(SSEEvent(None, buf[used + 6 : i], start + i + 2))
                elif (event := _parse(buf[used:i], start + i + 2)) is not None:
                    events.append(event)
                used = i + 2
        self._pending_len = len(buf) - used
        if self._pending_len:
            self._pending.append(buf[used:] if used else buf)
        return events

    def close(self) -> Sequence[SSEEvent]:
        """Events left when the stream ends: a last event whose blank line never came still counts
        if its lines are complete (lenient servers end with one newline)."""
        buf = b"".join(self._pending)
        self._pending.clear()
        self._pending_len = 0
        if not buf.endswith((b"\n", b"\r")):
            return _NOTHING
        event = _parse(buf.rstrip(b"\r\n"), self._offset)
        return [event] if event is not None else _NOTHING


def _split_any(buf: bytes, start: int) -> tuple[list[SSEEvent], int]:
    """The complete events in `buf` (at stream offset `start`), with any of SSE's line endings, and the bytes used."""
    events: list[SSEEvent] = []
    pos = 0
    if buf.endswith(b"\r"):
        buf = buf[:-1]  # a "\r" may be the first half of a "\r\n" still on its way
    for m in _BLANK_LINE.finditer(buf):
        if (event := _parse(buf[pos : m.start()], start + m.end())) is not None:
            events.append(event)
        pos = m.end()
    return events, pos


def _parse(block: bytes, end: int) -> SSEEvent | None:
    """One event's lines; None for a block with no data (comments, keep-alives)."""
    if block.startswith(b"data:") and b"\n" not in block and b"\r" not in block:  # the usual event: one line
        data = block[5:]
        return SSEEvent(None, data[1:] if data[:1] == b" " else data, end)
    name: str | None = None
    data_lines: list[bytes] = []
    for line in _LINE.split(block) if b"\r" in block else block.split(b"\n"):
        if not line or line[:1] == b":":
            continue
        key, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if key == b"data":
            data_lines.append(value)
        elif key == b"event":
            name = value.decode("utf-8", "replace")
    if not data_lines:
        return None
    return SSEEvent(name, data_lines[0] if len(data_lines) == 1 else b"\n".join(data_lines), end)
