"""Anthropic messages API (base_url without /v1, as the Anthropic SDK takes it)."""

from __future__ import annotations

from typing import Any

from assay.clients.base import ProviderClient, StreamState
from assay.errors import StreamBroken
from assay.model import ChatRequest

__all__ = ["ANTHROPIC_VERSION", "AnthropicClient"]

ANTHROPIC_VERSION = "2023-06-01"


class AnthropicClient(ProviderClient):
    api = "anthropic"

    def url(self) -> str:
        return f"{self.target.base_url}/v1/messages"

    def headers(self) -> dict[str, str]:
        h = {"anthropic-version": ANTHROPIC_VERSION}
        if self._api_key:
            h["x-api-key"] = self._api_key
        return h

    def body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.target.model,
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

    def on_event(self, event: dict[str, Any], state: StreamState) -> str | None:
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            piece = delta.get("text")
            if piece:
                state.parts.append(piece)
                return str(piece)
        elif kind == "message_start":
            message = event.get("message") or {}
            state.model = message.get("model")
            _read_usage(message.get("usage") or {}, state)
        elif kind == "message_delta":
            state.finish_reason = (event.get("delta") or {}).get("stop_reason") or state.finish_reason
            _read_usage(event.get("usage") or {}, state)
        elif kind == "message_stop":
            state.done = True
        elif kind == "error":
            err = event.get("error") or {}
            raise StreamBroken(f"provider error mid-stream: {err.get('type', '')} {err.get('message', '')}".strip())
        return None

    def parse_body(self, data: dict[str, Any], state: StreamState) -> None:
        state.model = data.get("model")
        for block in data.get("content") or ():
            if block.get("type") == "text" and block.get("text"):
                state.parts.append(block["text"])
        state.finish_reason = data.get("stop_reason")
        _read_usage(data.get("usage") or {}, state)
        state.done = True


def _read_usage(usage: dict[str, Any], state: StreamState) -> None:
    """Anthropic reports input in message_start and the running output count in message_delta."""
    u = state.usage
    if "input_tokens" in usage:
        # Anthropic's input_tokens excludes cache reads and writes; ours counts the whole prompt.
        u.cached_tokens = int(usage.get("cache_read_input_tokens") or 0)
        u.cache_write_tokens = int(usage.get("cache_creation_input_tokens") or 0)
        u.input_tokens = int(usage["input_tokens"] or 0) + u.cached_tokens + u.cache_write_tokens
    if "output_tokens" in usage:
        u.output_tokens = int(usage["output_tokens"] or 0)
    if usage:
        u.source = "server"
