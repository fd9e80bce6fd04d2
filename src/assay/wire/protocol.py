"""What every wire protocol supplies, both halves: the `Wire` base, its stream coders, a parsed request.

Client half: where to send, which headers, the request body, and the decoders
that turn a stream's SSE events or a whole body into neutral events. Server
half: `parse_request` (refusing bad bodies with a `WireError` whose body is in
the protocol's own error format), and encoders from neutral events to bytes.
A gateway translates by pairing one protocol's server half with another's
client half; the events in between are the same.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from assay.errors import WireError
from assay.model import ChatRequest, Usage
from assay.wire.events import Done, Event, Finish, Start, TextDelta, UsageReport
from assay.wire.sse import SSEEvent

__all__ = ["Incoming", "StreamDecoder", "StreamEncoder", "Wire", "decode_error"]


@dataclass(slots=True)
class Incoming:
    """A request as a server half parsed it."""

    model: str
    request: ChatRequest  # `extra` holds the body's fields this protocol layer does not interpret
    include_usage: bool  # whether the stream must end with usage (OpenAI asks; Anthropic always sends it)


class StreamDecoder(ABC):
    """Client half: one response stream's SSE events in, neutral events out (state kept per stream)."""

    @abstractmethod
    def decode(self, event: SSEEvent) -> Sequence[Event]:
        """Raises ValueError (orjson's included) for an event that is not what the protocol sends."""


class StreamEncoder(ABC):
    """Server half: one response stream, as bytes; `encode` takes neutral events, the rest say it directly."""

    def __init__(self, rid: str, model: str, include_usage: bool) -> None:
        self.rid, self.model, self.include_usage = rid, model, include_usage
        self._finish: Finish | None = None
        self._usage: Usage | None = None
        self._started = False

    @abstractmethod
    def start(self, input_tokens: int | None = None) -> bytes: ...

    @abstractmethod
    def text(self, text: str) -> bytes: ...

    @abstractmethod
    def close(self, finish: Finish | None = None, usage: Usage | None = None) -> bytes:
        """The end of the stream; usage goes out where the protocol says (OpenAI only when asked)."""

    @abstractmethod
    def error(self, message: str, type: str | None = None) -> bytes:
        """A provider error inside a 200 stream, after which the stream ends."""

    def encode(self, event: Event) -> bytes:
        """One neutral event, as this protocol says it. Finish and usage wait for Done: both protocols
        send them at the end, in their own order. A stream that did not begin with Start gets one."""
        if isinstance(event, Start):
            self._started = True
            return self.start(event.input_tokens)
        if isinstance(event, Finish):
            self._finish = event
            return b""
        if isinstance(event, UsageReport):
            self._usage = event.usage
            return b""
        head = b""
        if not self._started:
            self._started = True
            head = self.start(None)
        if isinstance(event, TextDelta):
            return head + self.text(event.text)
        if isinstance(event, Done):
            return head + self.close(self._finish, self._usage)
        return head + self.error(event.message, event.type)


class Wire(ABC):
    """One protocol, both halves."""

    api: ClassVar[str]
    route: ClassVar[str]  # the path servers answer it on
    overloaded_status: ClassVar[int]  # how this protocol says "shedding load"
    error_types: ClassVar[dict[int, str]]  # error type by HTTP status
    default_error_type: ClassVar[str]

    # -- client half ----------------------------------------------------------------
    @abstractmethod
    def url(self, base_url: str) -> str:
        """Where to post, from a target's base URL as the vendor's SDK takes it."""

    @abstractmethod
    def headers(self, api_key: str | None) -> dict[str, str]: ...

    @abstractmethod
    def request_body(self, request: ChatRequest, model: str) -> dict[str, Any]: ...

    @abstractmethod
    def stream_decoder(self) -> StreamDecoder: ...

    @abstractmethod
    def decode_body(self, body: bytes) -> list[Event]:
        """A whole (non-streaming) answer as the events a stream of it would have carried."""

    def decode_error(self, body: bytes) -> tuple[str, str | None]:
        """The message and error type in an error body."""
        return decode_error(body)

    # -- server half ----------------------------------------------------------------
    @abstractmethod
    def parse_request(self, body: bytes) -> Incoming:
        """Raises WireError (status, message, and the body to answer with) for a body to refuse."""

    @abstractmethod
    def stream_encoder(self, rid: str, model: str, include_usage: bool) -> StreamEncoder: ...

    @abstractmethod
    def encode_body(self, rid: str, model: str, text: str, finish: Finish, usage: Usage) -> bytes: ...

    @abstractmethod
    def error_body(self, status: int, message: str, type: str | None = None) -> bytes: ...

    def error_type(self, status: int, type: str | None = None) -> str:
        """`type` when this protocol has it, else its type for the status."""
        if type is not None and (type in self.error_types.values() or type == self.default_error_type):
            return type
        return self.error_types.get(status, self.default_error_type)

    def refuse(self, status: int, message: str) -> WireError:
        return WireError(status, message, self.error_body(status, message))

    # -- shared parsing -------------------------------------------------------------
    def _object(self, body: bytes) -> dict[str, Any]:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise self.refuse(400, "Request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise self.refuse(400, "Request body must be a JSON object.")
        return data

    def _messages(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        messages = data.get("messages")
        if not isinstance(messages, list) or not messages:
            raise self.refuse(400, "'messages' must be a non-empty list.")
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or not isinstance(m.get("role"), str):
                raise self.refuse(400, f"messages[{i}] must be an object with a string 'role'.")
        return messages

    def _model(self, data: dict[str, Any]) -> str:
        model = data.get("model")
        if not isinstance(model, str) or not model:
            raise self.refuse(400, "model: field required (a string).")
        return model

    def _temperature(self, data: dict[str, Any]) -> float | None:
        t = data.get("temperature")
        if t is None:
            return None
        if isinstance(t, bool) or not isinstance(t, int | float):
            raise self.refuse(400, "temperature must be a number.")
        return float(t)

    def text_of(self, content: Any, where: str) -> str:
        """A message's text: a string, or the text parts of a list of content parts (others are skipped)."""
        if isinstance(content, str):
            return content
        if content is None:
            return ""
        if isinstance(content, list):
            return "".join(str(p.get("text") or "") for p in content if isinstance(p, dict) and p.get("type") == "text")
        raise self.refuse(400, f"{where} must be a string or a list of content parts.")


def decode_error(body: bytes) -> tuple[str, str | None]:
    """The human message and error type in an OpenAI- or Anthropic-style error body (or any other)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace").strip(), None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        kind = err.get("type") or err.get("code")
        return str(err.get("message", ""))[:300], str(kind) if kind is not None else None
    if isinstance(err, str):
        return err[:300], None
    return body[:200].decode("utf-8", "replace"), None
