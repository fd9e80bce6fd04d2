"""What every wire protocol supplies, both halves: the `Wire` base, its stream coders, a parsed request.

Client half: where to send, which headers, the request body, and the decoders
that turn a stream's SSE events or a whole body into neutral events. Server
half: `parse_request` (refusing bad bodies with a `WireError` whose body is in
the protocol's own error format), and encoders from neutral events to bytes.
A gateway translates by pairing one protocol's server half with another's
client half; the events in between are the same.

Fields a parser does not interpret stay in `ChatRequest.extra`, with the protocol
they came in as `extra_api`. A client half sends them unchanged to that same
protocol only. To another one, it sends those with the same meaning there
(`top_p`; OpenAI's `stop` as Anthropic's `stop_sequences` and back), drops the
ones that only label or bill the request (`HARMLESS_EXTRAS`: `user`, `metadata`,
`store`, `service_tier`, ...), and names every other one in `unsupported()`, so
a gateway refuses the request rather than answer a different question.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from assay.errors import WireError
from assay.model import ChatRequest, ForcedTool, Image, Message, Tool, ToolCall, ToolChoice, Usage
from assay.wire.events import Choice, Done, Event, Finish, Start, TextDelta, ToolCallDelta, UsageReport
from assay.wire.sse import SSEEvent

__all__ = ["HARMLESS_EXTRAS", "Incoming", "StreamDecoder", "StreamEncoder", "Wire", "content_pieces", "decode_error"]

# Fields of each protocol that label, store or bill a request but do not change its answer: another
# protocol's client half leaves them out rather than refuse the request.
HARMLESS_EXTRAS: dict[str, frozenset[str]] = {
    "openai": frozenset(("user", "metadata", "store", "service_tier", "safety_identifier", "prompt_cache_key")),
    "anthropic": frozenset(("metadata", "service_tier")),
}
ExtraMove = Callable[[Any], "tuple[str, Any] | None"]  # a foreign field's value to (own name, value), None: cannot


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
        self._finishes: dict[int, Finish] = {}  # of choices other than the first, given before close
        self._finish: Finish | None = None
        self._usage: Usage | None = None
        self._started = False

    @abstractmethod
    def start(self, input_tokens: int | None = None) -> bytes: ...

    @abstractmethod
    def text(self, text: str, choice: int = 0) -> bytes: ...

    @abstractmethod
    def tool_call(self, delta: ToolCallDelta) -> bytes:
        """A piece of a tool call: a new `index` starts a call (with its id and name), the rest add arguments."""

    @abstractmethod
    def close(self, finish: Finish | None = None, usage: Usage | None = None) -> bytes:
        """The end of the stream; usage goes out where the protocol says (OpenAI only when asked).

        `finish` is the first choice's; other choices' finishes are passed to `encode` before."""

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
            if event.choice:
                self._finishes[event.choice] = event
            else:
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
            return head + self.text(event.text, event.choice)
        if isinstance(event, ToolCallDelta):
            return head + self.tool_call(event)
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
    def request_body(self, request: ChatRequest, model: str) -> dict[str, Any]:
        """The body to send; what `unsupported` names is left out of it."""

    def unsupported(self, request: ChatRequest) -> list[str]:
        """What of `request` this client half cannot send, by name (body fields, or a short phrase); a gateway
        answers 400 naming them rather than send a different question. Empty: everything is carried."""
        return self.extras_for(request)[1]

    # Foreign body fields this protocol has its own words for, by (their protocol, their name).
    foreign_extras: ClassVar[dict[tuple[str, str], ExtraMove]] = {}

    def extras_for(self, request: ChatRequest) -> tuple[dict[str, Any], list[str]]:
        """The request's uninterpreted fields as this protocol sends them, and the names it cannot send."""
        if request.extra_api is None or request.extra_api == self.api:
            return request.extra, []
        sent: dict[str, Any] = {}
        refused: list[str] = []
        harmless = HARMLESS_EXTRAS.get(request.extra_api, frozenset())
        for key, value in request.extra.items():
            move = self.foreign_extras.get((request.extra_api, key))
            said = move(value) if move is not None else None
            if said is not None:
                sent[said[0]] = said[1]
            elif move is not None or key not in harmless:
                refused.append(key)
        return sent, refused

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
    def encode_body(
        self,
        rid: str,
        model: str,
        text: str,
        finish: Finish,
        usage: Usage,
        *,
        tool_calls: Sequence[ToolCall] = (),
        more_choices: Sequence[Choice] = (),
    ) -> bytes:
        """A whole answer: the first choice's text, finish and tool calls, then any further choices
        (`Collector.choices[1:]`; a protocol without choices leaves them out)."""

    @abstractmethod
    def error_body(self, status: int, message: str, type: str | None = None, code: str | None = None) -> bytes:
        """An error in this protocol's format; `code` is OpenAI's finer word (`context_length_exceeded`)."""

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

    def _n(self, data: dict[str, Any]) -> int:
        n = data.get("n", 1)
        if n is None:
            return 1
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise self.refuse(400, "n must be an integer of at least 1.")
        return n

    def _schema(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.refuse(400, f"{where} must be a JSON schema (an object).")
        return value

    def _tool(self, name: Any, description: Any, parameters: Any, where: str) -> Tool:
        if not isinstance(name, str) or not name:
            raise self.refuse(400, f"{where}.name must be a non-empty string.")
        if description is not None and not isinstance(description, str):
            raise self.refuse(400, f"{where}.description must be a string.")
        if parameters is None:
            return Tool(name, description)
        return Tool(name, description, self._schema(parameters, f"{where} parameters"))

    def _check_choice(self, choice: ToolChoice | None, tools: list[Tool]) -> ToolChoice | None:
        if isinstance(choice, ForcedTool) and choice.name not in {t.name for t in tools}:
            raise self.refuse(400, f"tool_choice names {choice.name!r}, which is not one of the request's tools.")
        if choice == "required" and not tools:
            raise self.refuse(400, "tool_choice requires a tool call, but the request has no tools.")
        return choice

    def _call(self, id: Any, name: Any, where: str) -> tuple[str, str]:
        if not isinstance(id, str) or not id:
            raise self.refuse(400, f"{where}.id must be a non-empty string.")
        if not isinstance(name, str) or not name:
            raise self.refuse(400, f"{where}.name must be a non-empty string.")
        return id, name

    def text_of(self, content: Any, where: str) -> str:
        """A message's text: a string, or the text parts of a list of content parts (others are skipped)."""
        if isinstance(content, str):
            return content
        if content is None:
            return ""
        if isinstance(content, list):
            return "".join(str(p.get("text") or "") for p in content if isinstance(p, dict) and p.get("type") == "text")
        raise self.refuse(400, f"{where} must be a string or a list of content parts.")


def content_pieces(message: Message) -> list[str | Image]:
    """A message's text and images in their order: the text cut where each image sits."""
    pieces: list[str | Image] = []
    text, start = message.content, 0
    for image in sorted(message.images, key=lambda im: im.at):
        at = min(max(image.at, start), len(text))
        if at > start:
            pieces.append(text[start:at])
        pieces.append(image)
        start = at
    if start < len(text) or not pieces:
        pieces.append(text[start:])
    return pieces


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
