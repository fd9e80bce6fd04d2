"""OpenAI chat completions, both halves; also every server that speaks it (Azure, vLLM, TGI, Ollama...)."""

from __future__ import annotations

import time
from collections.abc import Sequence
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
from assay.wire.sse import DONE_EVENT, SSEEvent, encode_sse

__all__ = ["OPENAI", "OpenAIWire"]

DEFAULT_MAX_TOKENS = 4096  # what a server assumes when a request sets no limit
_PARSED = frozenset(("model", "messages", "max_tokens", "max_completion_tokens", "temperature", "stream",
                     "stream_options"))  # fmt: skip
_EMPTY: tuple[Event, ...] = ()
_DONE = (DONE,)


class OpenAIWire(Wire):
    api = "openai"
    route = "/v1/chat/completions"
    overloaded_status = 503
    error_types: ClassVar[dict[int, str]] = {
        400: "invalid_request_error",
        404: "model_not_found",
        429: "rate_limit_exceeded",
    }
    default_error_type = "server_error"

    # -- client half ----------------------------------------------------------------
    def url(self, base_url: str) -> str:
        return f"{base_url}/chat/completions"

    def headers(self, api_key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"} if api_key else {}

    def request_body(self, request: ChatRequest, model: str) -> dict[str, Any]:
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [{"role": m.role, "content": m.content} for m in request.messages]
        body: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": request.max_tokens}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.stream:
            # Ask for server-side usage so token counts are measured, not estimated.
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        body.update(request.extra)
        return body

    def stream_decoder(self) -> StreamDecoder:
        return _Decoder()

    def decode_body(self, body: bytes) -> list[Event]:
        data = orjson.loads(body)
        if not isinstance(data, dict):
            raise ValueError("response body is not a JSON object")
        events: list[Event] = [Start(data.get("id"), data.get("model"))]
        finish: Finish | None = None
        for choice in data.get("choices") or ():
            content = (choice.get("message") or {}).get("content")
            if content:
                events.append(TextDelta(content))
            if reason := choice.get("finish_reason"):
                finish = finish_from(self.api, reason)
        if finish is not None:
            events.append(finish)
        if usage := data.get("usage"):
            events.append(UsageReport(_read_usage(usage)))
        events.append(DONE)
        return events

    # -- server half ----------------------------------------------------------------
    def parse_request(self, body: bytes) -> Incoming:
        data = self._object(body)
        model = self._model(data)
        system: list[str] = []
        messages: list[Message] = []
        for i, m in enumerate(self._messages(data)):
            text = self.text_of(m.get("content"), f"messages[{i}].content")
            if m["role"] in ("system", "developer"):
                system.append(text)
            else:
                messages.append(Message(m["role"], text))
        max_tokens = data.get("max_tokens") or data.get("max_completion_tokens")
        if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)):
            raise self.refuse(400, "max_tokens must be an integer.")
        if max_tokens is not None and max_tokens < 1:
            raise self.refuse(400, "max_tokens must be at least 1.")
        options = data.get("stream_options") or {}
        if not isinstance(options, dict):
            raise self.refuse(400, "stream_options must be an object.")
        request = ChatRequest(
            messages,
            max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
            temperature=self._temperature(data),
            stream=bool(data.get("stream")),
            system="\n".join(system) if system else None,
            extra={k: v for k, v in data.items() if k not in _PARSED},
        )
        return Incoming(model, request, include_usage=bool(options.get("include_usage")))

    def stream_encoder(self, rid: str, model: str, include_usage: bool) -> StreamEncoder:
        return _Encoder(rid, model, include_usage)

    def encode_body(self, rid: str, model: str, text: str, finish: Finish, usage: Usage) -> bytes:
        return orjson.dumps(
            {
                "id": rid,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": spell_finish(self.api, finish),
                    }
                ],
                "usage": _usage(usage),
            }
        )

    def error_body(self, status: int, message: str, type: str | None = None) -> bytes:
        kind = self.error_type(status, type)
        return orjson.dumps({"error": {"message": message, "type": kind, "code": kind}})


class _Decoder(StreamDecoder):
    __slots__ = ("_started",)

    def __init__(self) -> None:
        self._started = False

    def decode(self, event: SSEEvent) -> Sequence[Event]:
        if event.data == b"[DONE]":
            return _DONE
        data = orjson.loads(event.data)
        if not isinstance(data, dict):
            raise ValueError("stream event is not a JSON object")
        if "error" in data:  # how OpenAI fails mid-stream: an error and no choices
            err = data["error"]
            if isinstance(err, dict):
                kind = err.get("type") or err.get("code")
                return (ErrorEvent(str(err.get("message", err)), str(kind) if kind else None),)
            return (ErrorEvent(str(err)),)
        choices = data.get("choices")
        if self._started and choices and len(choices) == 1 and not data.get("usage"):  # the usual chunk: a token
            choice = choices[0]
            delta = choice.get("delta")
            piece = delta.get("content") if delta else None
            if piece and not choice.get("finish_reason"):
                return (TextDelta(piece),)
        out: list[Event] = []
        if not self._started and data.get("model"):  # Azure's first chunk has an empty model: wait for one
            self._started = True
            out.append(Start(data.get("id"), data["model"]))
        for choice in choices or ():
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                out.append(TextDelta(piece))
            if reason := choice.get("finish_reason"):
                out.append(finish_from("openai", reason))
        if usage := data.get("usage"):
            out.append(UsageReport(_read_usage(usage)))
        return out or _EMPTY


class _Encoder(StreamEncoder):
    def __init__(self, rid: str, model: str, include_usage: bool) -> None:
        super().__init__(rid, model, include_usage)
        self.created = int(time.time())

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return encode_sse(
            {
                "id": self.rid,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    def start(self, input_tokens: int | None = None) -> bytes:
        # OpenAI's first chunk carries the role and empty content: it must not count as a token.
        return self._chunk({"role": "assistant", "content": ""})

    def text(self, text: str) -> bytes:
        return self._chunk({"content": text})

    def close(self, finish: Finish | None = None, usage: Usage | None = None) -> bytes:
        out = self._chunk({}, spell_finish("openai", finish or Finish("stop")))
        if self.include_usage:
            out += encode_sse(
                {
                    "id": self.rid,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "choices": [],
                    "usage": _usage(usage or Usage()),
                }
            )
        return out + DONE_EVENT

    def error(self, message: str, type: str | None = None) -> bytes:
        kind = OPENAI.error_type(500, type)
        return encode_sse({"error": {"message": message, "type": kind, "param": None, "code": None}})


def _usage(u: Usage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
    }
    if u.cached_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": u.cached_tokens}
    if u.reasoning_tokens:
        out["completion_tokens_details"] = {"reasoning_tokens": u.reasoning_tokens}
    return out


def _read_usage(usage: dict[str, Any]) -> Usage:
    return Usage(
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        cached_tokens=int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0),
        reasoning_tokens=int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0),
        source="server",
    )


OPENAI = OpenAIWire()
