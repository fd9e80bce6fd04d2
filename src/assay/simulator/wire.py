"""How the simulator spells its answers in each protocol: bodies, stream events, errors."""

from __future__ import annotations

import time
from typing import Any, Protocol

import orjson

__all__ = ["AnthropicWire", "OpenAIWire", "Wire"]

_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}


class Wire(Protocol):
    api: str
    overloaded_status: int

    def error_body(self, status: int, message: str) -> bytes: ...
    def error_event(self, message: str) -> bytes: ...
    def stream_open(self, rid: str, model: str, input_tokens: int) -> bytes: ...
    def token(self, rid: str, model: str, text: str) -> bytes: ...
    def stream_close(self, rid: str, model: str, finish: str, usage: tuple[int, int], include_usage: bool) -> bytes: ...
    def body(self, rid: str, model: str, text: str, finish: str, usage: tuple[int, int]) -> bytes: ...


def _sse(data: dict[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


class OpenAIWire:
    api = "openai"
    overloaded_status = 503

    def error_body(self, status: int, message: str) -> bytes:
        kind = {429: "rate_limit_exceeded", 400: "invalid_request_error", 404: "model_not_found"}.get(
            status, "server_error"
        )
        return orjson.dumps({"error": {"message": message, "type": kind, "code": kind}})

    def error_event(self, message: str) -> bytes:
        # What OpenAI sends when a request fails mid-stream: one data line with an error and no choices.
        return _sse({"error": {"message": message, "type": "server_error", "param": None, "code": None}})

    def _chunk(self, rid: str, model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": rid,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def stream_open(self, rid: str, model: str, input_tokens: int) -> bytes:
        # OpenAI's first chunk carries the role and empty content: it must not count as a token.
        return _sse(self._chunk(rid, model, {"role": "assistant", "content": ""}))

    def token(self, rid: str, model: str, text: str) -> bytes:
        return _sse(self._chunk(rid, model, {"content": text}))

    def stream_close(self, rid: str, model: str, finish: str, usage: tuple[int, int], include_usage: bool) -> bytes:
        out = _sse(self._chunk(rid, model, {}, finish))
        if include_usage:
            out += _sse(
                {
                    "id": rid,
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [],
                    "usage": _openai_usage(usage),
                }
            )
        return out + b"data: [DONE]\n\n"

    def body(self, rid: str, model: str, text: str, finish: str, usage: tuple[int, int]) -> bytes:
        return orjson.dumps(
            {
                "id": rid,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
                "usage": _openai_usage(usage),
            }
        )


def _openai_usage(usage: tuple[int, int]) -> dict[str, int]:
    return {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": usage[0] + usage[1]}


class AnthropicWire:
    api = "anthropic"
    overloaded_status = 529

    def error_body(self, status: int, message: str) -> bytes:
        kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})

    def error_event(self, message: str) -> bytes:
        return _sse({"type": "error", "error": {"type": "overloaded_error", "message": message}}, "error")

    def stream_open(self, rid: str, model: str, input_tokens: int) -> bytes:
        message: dict[str, Any] = {
            "id": rid,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1},
        }
        return (
            _sse({"type": "message_start", "message": message}, "message_start")
            + _sse(
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                "content_block_start",
            )
            + _sse({"type": "ping"}, "ping")
        )

    def token(self, rid: str, model: str, text: str) -> bytes:
        return _sse(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
            "content_block_delta",
        )

    def stream_close(self, rid: str, model: str, finish: str, usage: tuple[int, int], include_usage: bool) -> bytes:
        stop = "max_tokens" if finish == "length" else "end_turn"
        return (
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
            + _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": usage[1]},
                },
                "message_delta",
            )
            + _sse({"type": "message_stop"}, "message_stop")
        )

    def body(self, rid: str, model: str, text: str, finish: str, usage: tuple[int, int]) -> bytes:
        return orjson.dumps(
            {
                "id": rid,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "max_tokens" if finish == "length" else "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
            }
        )
