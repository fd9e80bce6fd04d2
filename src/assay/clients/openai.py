"""OpenAI chat completions, and every server that speaks it (Azure, vLLM, TGI, Ollama, llama.cpp...)."""

from __future__ import annotations

from typing import Any

from assay.clients.base import ProviderClient, StreamState
from assay.errors import StreamBroken
from assay.model import ChatRequest

__all__ = ["OpenAIClient"]


class OpenAIClient(ProviderClient):
    api = "openai"

    def url(self) -> str:
        return f"{self.target.base_url}/chat/completions"

    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def body(self, request: ChatRequest) -> dict[str, Any]:
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [{"role": m.role, "content": m.content} for m in request.messages]
        body: dict[str, Any] = {"model": self.target.model, "messages": messages, "max_tokens": request.max_tokens}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.stream:
            # Ask for server-side usage so token counts are measured, not estimated.
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        body.update(request.extra)
        return body

    def on_event(self, event: dict[str, Any], state: StreamState) -> str | None:
        if "error" in event:
            err = event["error"]
            msg = err.get("message", err) if isinstance(err, dict) else err
            raise StreamBroken(f"provider error mid-stream: {msg}")
        state.model = state.model or event.get("model")
        if usage := event.get("usage"):
            _read_usage(usage, state)
        text = None
        for choice in event.get("choices") or ():
            delta = choice.get("delta") or {}
            piece = delta.get("content")
            if piece:
                state.parts.append(piece)
                text = piece
            if choice.get("finish_reason"):
                state.finish_reason = choice["finish_reason"]
        return text

    def parse_body(self, data: dict[str, Any], state: StreamState) -> None:
        state.model = data.get("model")
        for choice in data.get("choices") or ():
            message = choice.get("message") or {}
            if message.get("content"):
                state.parts.append(message["content"])
            state.finish_reason = choice.get("finish_reason")
        if usage := data.get("usage"):
            _read_usage(usage, state)
        state.done = True


def _read_usage(usage: dict[str, Any], state: StreamState) -> None:
    u = state.usage
    u.input_tokens = int(usage.get("prompt_tokens") or 0)
    u.output_tokens = int(usage.get("completion_tokens") or 0)
    u.cached_tokens = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    u.reasoning_tokens = int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
    u.source = "server"
