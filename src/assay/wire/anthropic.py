"""Anthropic messages, both halves (base_url without /v1, as the Anthropic SDK takes it).

Anthropic counts `input_tokens` without prompt-cache reads and writes; the neutral
`Usage.input_tokens` is the whole prompt, so decoding adds them and encoding
takes them out again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

import orjson

from assay.model import ChatRequest, Message, Usage
from assay.wire.events import (
    DONE,
    ErrorEvent,
    Event,
    Finish,
    Start,
    TextDelta,
    UsageReport,
    finish_from,
    spell_finish,
)
from assay.wire.protocol import Incoming, StreamDecoder, StreamEncoder, Wire
from assay.wire.sse import SSEEvent, encode_sse

__all__ = ["ANTHROPIC", "ANTHROPIC_VERSION", "AnthropicWire"]

ANTHROPIC_VERSION = "2023-06-01"
_PARSED = frozenset(("model", "messages", "system", "max_tokens", "temperature", "stream"))
_EMPTY: tuple[Event, ...] = ()
_DONE = (DONE,)
_PING = encode_sse({"type": "ping"}, "ping")
_BLOCK_START = encode_sse(
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}, "content_block_start"
)
_BLOCK_STOP = encode_sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
_MESSAGE_STOP = encode_sse({"type": "message_stop"}, "message_stop")


class AnthropicWire(Wire):
    api = "anthropic"
    route = "/v1/messages"
    overloaded_status = 529
    error_types: ClassVar[dict[int, str]] = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        500: "api_error",
        503: "api_error",
        529: "overloaded_error",
    }
    default_error_type = "api_error"

    # -- client half ----------------------------------------------------------------
    def url(self, base_url: str) -> str:
        return f"{base_url}/v1/messages"

    def headers(self, api_key: str | None) -> dict[str, str]:
        h = {"anthropic-version": ANTHROPIC_VERSION}
        if api_key:
            h["x-api-key"] = api_key
        return h

    def request_body(self, request: ChatRequest, model: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        if request.system:
            body["system"] = request.system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.stream:
            body["stream"] = True
        body.update(request.extra)
        return body

    def stream_decoder(self) -> StreamDecoder:
        return _Decoder()

    def decode_body(self, body: bytes) -> list[Event]:
        data = orjson.loads(body)
        if not isinstance(data, dict):
            raise ValueError("response body is not a JSON object")
        usage = _read_usage(data.get("usage") or {}, Usage())
        events: list[Event] = [Start(data.get("id"), data.get("model"), usage.input_tokens or None)]
        for block in data.get("content") or ():
            if block.get("type") == "text" and block.get("text"):
                events.append(TextDelta(block["text"]))
        if reason := data.get("stop_reason"):
            events.append(finish_from(self.api, reason))
        if usage.source == "server":
            events.append(UsageReport(usage))
        events.append(DONE)
        return events

    # -- server half ----------------------------------------------------------------
    def parse_request(self, body: bytes) -> Incoming:
        data = self._object(body)
        model = self._model(data)
        system = [self.text_of(data["system"], "system")] if data.get("system") else []
        messages: list[Message] = []
        for i, m in enumerate(self._messages(data)):
            text = self.text_of(m.get("content"), f"messages[{i}].content")
            if m["role"] == "system":  # not Anthropic's way, but clear enough to take
                system.append(text)
            else:
                messages.append(Message(m["role"], text))
        max_tokens = data.get("max_tokens")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
            raise self.refuse(400, "max_tokens: field required")
        if max_tokens < 1:
            raise self.refuse(400, "max_tokens: must be at least 1")
        request = ChatRequest(
            messages,
            max_tokens=max_tokens,
            temperature=self._temperature(data),
            stream=bool(data.get("stream")),
            system="\n".join(system) if system else None,
            extra={k: v for k, v in data.items() if k not in _PARSED},
        )
        return Incoming(model, request, include_usage=True)

    def stream_encoder(self, rid: str, model: str, include_usage: bool) -> StreamEncoder:
        return _Encoder(rid, model, include_usage)

    def encode_body(self, rid: str, model: str, text: str, finish: Finish, usage: Usage) -> bytes:
        return orjson.dumps(
            {
                "id": rid,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": spell_finish(self.api, finish),
                "stop_sequence": None,
                "usage": {**_input_usage(usage.input_tokens, usage), "output_tokens": usage.output_tokens},
            }
        )

    def error_body(self, status: int, message: str, type: str | None = None) -> bytes:
        return orjson.dumps({"type": "error", "error": {"type": self.error_type(status, type), "message": message}})


class _Decoder(StreamDecoder):
    """Anthropic states input in message_start and the running output count in message_delta."""

    __slots__ = ("_usage",)

    def __init__(self) -> None:
        self._usage = Usage()

    def decode(self, event: SSEEvent) -> Sequence[Event]:
        data = orjson.loads(event.data)
        if not isinstance(data, dict):
            raise ValueError("stream event is not a JSON object")
        kind = data.get("type")
        if kind == "content_block_delta":
            piece = (data.get("delta") or {}).get("text")
            return (TextDelta(str(piece)),) if piece else _EMPTY
        if kind == "message_start":
            message = data.get("message") or {}
            usage = _read_usage(message.get("usage") or {}, self._usage)
            if usage.source != "server":
                return (Start(message.get("id"), message.get("model")),)
            return Start(message.get("id"), message.get("model"), usage.input_tokens), UsageReport(replace(usage))
        if kind == "message_delta":
            out: list[Event] = []
            if reason := (data.get("delta") or {}).get("stop_reason"):
                out.append(finish_from("anthropic", reason))
            if reported := data.get("usage"):
                out.append(UsageReport(replace(_read_usage(reported, self._usage))))
            return out
        if kind == "message_stop":
            return _DONE
        if kind == "error":
            err = data.get("error") or {}
            return (ErrorEvent(str(err.get("message", "")), err.get("type")),)
        return _EMPTY  # ping, content_block_start/stop


class _Encoder(StreamEncoder):
    def __init__(self, rid: str, model: str, include_usage: bool) -> None:
        super().__init__(rid, model, include_usage)
        self._input_told = False

    def start(self, input_tokens: int | None = None) -> bytes:
        self._input_told = input_tokens is not None
        message: dict[str, Any] = {
            "id": self.rid,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": input_tokens or 0, "output_tokens": 1},
        }
        return encode_sse({"type": "message_start", "message": message}, "message_start") + _BLOCK_START + _PING

    def text(self, text: str) -> bytes:
        return encode_sse(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
            "content_block_delta",
        )

    def close(self, finish: Finish | None = None, usage: Usage | None = None) -> bytes:
        counts: dict[str, int] = {"output_tokens": usage.output_tokens if usage else 0}
        if usage is not None and not self._input_told:  # translated from a protocol that says input at the end
            counts = {**_input_usage(usage.input_tokens, usage), **counts}
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": spell_finish("anthropic", finish or Finish("stop")), "stop_sequence": None},
            "usage": counts,
        }
        return _BLOCK_STOP + encode_sse(delta, "message_delta") + _MESSAGE_STOP

    def error(self, message: str, type: str | None = None) -> bytes:
        kind = ANTHROPIC.error_type(500, type)
        return encode_sse({"type": "error", "error": {"type": kind, "message": message}}, "error")


def _input_usage(input_tokens: int, u: Usage) -> dict[str, int]:
    out = {"input_tokens": max(0, input_tokens - u.cached_tokens - u.cache_write_tokens)}
    if u.cached_tokens:
        out["cache_read_input_tokens"] = u.cached_tokens
    if u.cache_write_tokens:
        out["cache_creation_input_tokens"] = u.cache_write_tokens
    return out


def _read_usage(usage: dict[str, Any], u: Usage) -> Usage:
    """Fold one usage object into `u` (in place) and return it."""
    if "input_tokens" in usage:
        # Anthropic's input_tokens excludes cache reads and writes; ours counts the whole prompt.
        u.cached_tokens = int(usage.get("cache_read_input_tokens") or 0)
        u.cache_write_tokens = int(usage.get("cache_creation_input_tokens") or 0)
        u.input_tokens = int(usage["input_tokens"] or 0) + u.cached_tokens + u.cache_write_tokens
    if "output_tokens" in usage:
        u.output_tokens = int(usage["output_tokens"] or 0)
    if usage:
        u.source = "server"
    return u


ANTHROPIC = AnthropicWire()
