"""OpenAI chat completions, both halves; also every server that speaks it (Azure, vLLM, TGI, Ollama...).

A request whose last message is an assistant's text asks for its continuation: the body
says so in vLLM's words (`continue_final_message: true, add_generation_prompt: false`),
which OpenAI's own API refuses with a 400 rather than answer a new turn.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar

import orjson

from assay.model import (
    ChatRequest,
    ForcedTool,
    Image,
    Message,
    ResponseFormat,
    Tool,
    ToolCall,
    ToolChoice,
    Usage,
)
from assay.wire.events import (
    DONE,
    Choice,
    ErrorEvent,
    Event,
    Finish,
    Start,
    TextDelta,
    ToolCallDelta,
    UsageReport,
    finish_from,
    spell_finish,
)
from assay.wire.protocol import Incoming, StreamDecoder, StreamEncoder, Wire, content_pieces
from assay.wire.sse import DONE_EVENT, SSEEvent, encode_sse

__all__ = ["OPENAI", "OpenAIWire"]

DEFAULT_MAX_TOKENS = 4096  # what a server assumes when a request sets no limit
_PARSED = frozenset(("model", "messages", "max_tokens", "max_completion_tokens", "temperature", "stream",
                     "stream_options", "tools", "tool_choice", "parallel_tool_calls", "response_format", "n",
                     "continue_final_message", "add_generation_prompt"))  # fmt: skip
_MAX_STOP = 4  # OpenAI takes at most four stop sequences
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
        messages += [_message(m) for m in request.messages]
        body: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": request.max_tokens}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.stream:
            # Ask for server-side usage so token counts are measured, not estimated.
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        if request.tools:
            body["tools"] = [_tool(t) for t in request.tools]
        if request.tool_choice is not None:
            body["tool_choice"] = _tool_choice(request.tool_choice)
        if request.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = request.parallel_tool_calls
        if (fmt := request.response_format) is not None:
            body["response_format"] = _response_format(fmt)
        if request.n != 1:
            body["n"] = request.n
        if request.continues:
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        if request.extra:
            body.update(self.extras_for(request)[0])
        return body

    def unsupported(self, request: ChatRequest) -> list[str]:
        said = super().unsupported(request)
        if any(m.images for m in request.messages if m.tool_call_id is not None):
            said.append("images in a tool result")
        return said

    foreign_extras: ClassVar[dict[tuple[str, str], Any]] = {
        ("anthropic", "top_p"): lambda v: ("top_p", v),
        ("anthropic", "stop_sequences"): lambda v: (
            ("stop", v) if isinstance(v, list) and len(v) <= _MAX_STOP and all(isinstance(x, str) for x in v) else None
        ),
    }

    def stream_decoder(self) -> StreamDecoder:
        return _Decoder()

    def decode_body(self, body: bytes) -> list[Event]:
        data = orjson.loads(body)
        if not isinstance(data, dict):
            raise ValueError("response body is not a JSON object")
        events: list[Event] = [Start(data.get("id"), data.get("model"))]
        finishes: list[Event] = []
        for choice in data.get("choices") or ():
            index = choice.get("index") or 0
            message = choice.get("message") or {}
            if content := message.get("content"):
                events.append(TextDelta(content, index))
            for i, call in enumerate(message.get("tool_calls") or ()):
                function = call.get("function") or {}
                events.append(
                    ToolCallDelta(i, call.get("id"), function.get("name"), function.get("arguments") or "", index)
                )
            if reason := choice.get("finish_reason"):
                finish = finish_from(self.api, reason)
                finish.choice = index
                finishes.append(finish)
        events += finishes
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
            where = f"messages[{i}]"
            role = m["role"]
            if role in ("system", "developer"):
                system.append(self.text_of(m.get("content"), f"{where}.content"))
                continue
            text, images = self._content(m.get("content"), f"{where}.content")
            message = Message(role, text, images=images)
            if role == "assistant" and m.get("tool_calls") is not None:
                message.tool_calls = self._tool_calls(m["tool_calls"], f"{where}.tool_calls")
            elif role == "tool":
                call_id = m.get("tool_call_id")
                if not isinstance(call_id, str) or not call_id:
                    raise self.refuse(400, f"{where}: a tool message needs a string 'tool_call_id'.")
                message.tool_call_id = call_id
            messages.append(message)
        max_tokens = data.get("max_tokens") or data.get("max_completion_tokens")
        if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)):
            raise self.refuse(400, "max_tokens must be an integer.")
        if max_tokens is not None and max_tokens < 1:
            raise self.refuse(400, "max_tokens must be at least 1.")
        options = data.get("stream_options") or {}
        if not isinstance(options, dict):
            raise self.refuse(400, "stream_options must be an object.")
        tools = self._tools(data.get("tools"))
        parallel = data.get("parallel_tool_calls")
        if parallel is not None and not isinstance(parallel, bool):
            raise self.refuse(400, "parallel_tool_calls must be a boolean.")
        request = ChatRequest(
            messages,
            max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
            temperature=self._temperature(data),
            stream=bool(data.get("stream")),
            system="\n".join(system) if system else None,
            extra={k: v for k, v in data.items() if k not in _PARSED},
            tools=tools,
            tool_choice=self._check_choice(self._tool_choice(data.get("tool_choice")), tools),
            parallel_tool_calls=parallel,
            response_format=self._response_format(data.get("response_format")),
            n=self._n(data),
            extra_api=self.api,
        )
        return Incoming(model, request, include_usage=bool(options.get("include_usage")))

    def _content(self, content: Any, where: str) -> tuple[str, list[Image]]:
        """A message's text and its images, each placed at the offset of the text it comes before."""
        if not isinstance(content, list):
            return self.text_of(content, where), []
        parts: list[str] = []
        images: list[Image] = []
        at = 0
        for i, part in enumerate(content):
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "text":
                piece = str(part.get("text") or "")
                parts.append(piece)
                at += len(piece)
            elif kind == "image_url":
                spec = part.get("image_url")
                if isinstance(spec, dict) and "url" not in spec:
                    continue  # an image part without an image: nothing to carry
                url = spec.get("url") if isinstance(spec, dict) else spec
                if not isinstance(url, str) or not url:
                    raise self.refuse(400, f"{where}[{i}].image_url must be an object with a string 'url'.")
                images.append(self._image(url, at, f"{where}[{i}].image_url.url"))
        return "".join(parts), images

    def _image(self, url: str, at: int, where: str) -> Image:
        if not url.startswith("data:"):
            return Image(url=url, at=at)
        head, comma, data = url[5:].partition(",")
        media_type, _, encoding = head.partition(";")
        if not comma or encoding != "base64" or not media_type.startswith("image/"):
            raise self.refuse(400, f"{where} must be an http(s) URL or a data:image/...;base64, URL.")
        return Image(data=data, media_type=media_type, at=at)

    def _tool_calls(self, value: Any, where: str) -> list[ToolCall]:
        if not isinstance(value, list):
            raise self.refuse(400, f"{where} must be a list.")
        calls: list[ToolCall] = []
        for i, call in enumerate(value):
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                raise self.refuse(400, f"{where}[{i}] must be an object with a 'function'.")
            id, name = self._call(call.get("id"), function.get("name"), f"{where}[{i}]")
            arguments = function.get("arguments", "")
            if not isinstance(arguments, str):
                raise self.refuse(400, f"{where}[{i}].function.arguments must be a string (JSON text).")
            calls.append(ToolCall(id, name, arguments))
        return calls

    def _tools(self, value: Any) -> list[Tool]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.refuse(400, "tools must be a list.")
        tools: list[Tool] = []
        for i, t in enumerate(value):
            function = t.get("function") if isinstance(t, dict) else None
            if not isinstance(t, dict) or t.get("type", "function") != "function" or not isinstance(function, dict):
                raise self.refuse(400, f"tools[{i}] must be {{'type': 'function', 'function': {{...}}}}.")
            where = f"tools[{i}].function"
            tools.append(
                self._tool(function.get("name"), function.get("description"), function.get("parameters"), where)
            )
        return tools

    def _tool_choice(self, value: Any) -> ToolChoice | None:
        if value is None or value in ("auto", "none", "required"):
            return value  # type: ignore[no-any-return]
        function = value.get("function") if isinstance(value, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            said = "tool_choice must be 'auto', 'none', 'required' or {'type': 'function', 'function': {'name': ...}}."
            raise self.refuse(400, said)
        return ForcedTool(name)

    def _response_format(self, value: Any) -> ResponseFormat | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.refuse(400, "response_format must be an object with a 'type'.")
        return self._format(value.get("type"), value.get("json_schema"), "response_format")

    def _format(self, kind: Any, spec: Any, where: str) -> ResponseFormat | None:
        """OpenAI's response_format, read: None for plain text."""
        if kind in (None, "text"):
            return None
        if kind == "json_object":
            return ResponseFormat("json_object")
        if kind != "json_schema":
            raise self.refuse(400, f"{where}.type must be 'text', 'json_object' or 'json_schema'.")
        if not isinstance(spec, dict):
            raise self.refuse(400, f"{where}.json_schema must be an object with a 'schema'.")
        name, strict = spec.get("name"), spec.get("strict")
        if name is not None and not isinstance(name, str):
            raise self.refuse(400, f"{where}.json_schema.name must be a string.")
        if strict is not None and not isinstance(strict, bool):
            raise self.refuse(400, f"{where}.json_schema.strict must be a boolean.")
        schema = self._schema(spec.get("schema", {"type": "object"}), f"{where}.json_schema.schema")
        return ResponseFormat("json_schema", schema, name, strict)

    def stream_encoder(self, rid: str, model: str, include_usage: bool) -> StreamEncoder:
        return _Encoder(rid, model, include_usage)

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
        choices = [_choice(0, text, tool_calls, finish)]
        choices += [_choice(c.index, c.text, c.tool_calls, c.finish or Finish("stop")) for c in more_choices]
        return orjson.dumps(
            {
                "id": rid,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": choices,
                "usage": _usage(usage),
            }
        )

    def error_body(self, status: int, message: str, type: str | None = None, code: str | None = None) -> bytes:
        kind = self.error_type(status, type)
        return orjson.dumps({"error": {"message": message, "type": kind, "code": code or kind}})


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
            if piece and not choice.get("finish_reason") and "tool_calls" not in delta:
                return (TextDelta(piece, _index(choice.get("index"))),)
        out: list[Event] = []
        if not self._started and data.get("model"):  # Azure's first chunk has an empty model: wait for one
            self._started = True
            out.append(Start(data.get("id"), data["model"]))
        for choice in choices or ():
            index = _index(choice.get("index"))
            delta = choice.get("delta") or {}
            if piece := delta.get("content"):
                out.append(TextDelta(piece, index))
            for call in delta.get("tool_calls") or ():
                function = call.get("function") or {}
                arguments = function.get("arguments") or ""
                out.append(ToolCallDelta(_index(call.get("index")), call.get("id"), function.get("name"), arguments,
                                         index))  # fmt: skip
            if reason := choice.get("finish_reason"):
                finish = finish_from("openai", reason)
                finish.choice = index
                out.append(finish)
        if usage := data.get("usage"):
            out.append(UsageReport(_read_usage(usage)))
        return out or _EMPTY


_MAX_INDEX = 1024  # of a choice or a tool call: more is a broken stream, not an answer


def _index(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _MAX_INDEX:
        raise ValueError(f"bad index in stream event: {value!r}")
    return value


class _Encoder(StreamEncoder):
    def __init__(self, rid: str, model: str, include_usage: bool) -> None:
        super().__init__(rid, model, include_usage)
        self.created = int(time.time())
        self._choices = {0}  # the choices begun (their first chunk says the role)

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, index: int = 0) -> bytes:
        return encode_sse(
            {
                "id": self.rid,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
            }
        )

    def _begin(self, index: int) -> bytes:
        if index in self._choices:
            return b""
        self._choices.add(index)
        return self._chunk({"role": "assistant", "content": ""}, None, index)

    def start(self, input_tokens: int | None = None) -> bytes:
        # OpenAI's first chunk carries the role and empty content: it must not count as a token.
        return self._chunk({"role": "assistant", "content": ""})

    def text(self, text: str, choice: int = 0) -> bytes:
        if choice:
            return self._begin(choice) + self._chunk({"content": text}, None, choice)
        return self._chunk({"content": text})

    def tool_call(self, delta: ToolCallDelta) -> bytes:
        call: dict[str, Any] = {"index": delta.index}
        if delta.id is not None or delta.name is not None:  # a call's first piece names it
            call["id"] = delta.id or f"call_{delta.index}"
            call["type"] = "function"
            call["function"] = {"name": delta.name or "", "arguments": delta.arguments}
        else:
            call["function"] = {"arguments": delta.arguments}
        return self._begin(delta.choice) + self._chunk({"tool_calls": [call]}, None, delta.choice)

    def close(self, finish: Finish | None = None, usage: Usage | None = None) -> bytes:
        out = self._chunk({}, spell_finish("openai", finish or Finish("stop")))
        for index in sorted(self._choices | set(self._finishes)):
            if index:
                out += self._chunk({}, spell_finish("openai", self._finishes.get(index) or Finish("stop")), index)
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


def _message(m: Message) -> dict[str, Any]:
    if m.tool_call_id is not None:
        return {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content}
    out: dict[str, Any] = {"role": m.role, "content": _parts(m) if m.images else m.content}
    if m.tool_calls:
        out["tool_calls"] = [_call(c) for c in m.tool_calls]
        if not m.content and not m.images:
            out["content"] = None
    return out


def _parts(m: Message) -> list[dict[str, Any]]:
    return [
        {"type": "text", "text": p} if isinstance(p, str) else {"type": "image_url", "image_url": {"url": p.data_url()}}
        for p in content_pieces(m)
    ]


def _call(c: ToolCall) -> dict[str, Any]:
    return {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}


def _tool(t: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": t.name, "parameters": t.parameters}
    if t.description is not None:
        function["description"] = t.description
    return {"type": "function", "function": function}


def _tool_choice(choice: ToolChoice) -> Any:
    if isinstance(choice, ForcedTool):
        return {"type": "function", "function": {"name": choice.name}}
    return choice


def _response_format(fmt: ResponseFormat) -> dict[str, Any]:
    if fmt.type == "json_object":
        return {"type": "json_object"}
    spec: dict[str, Any] = {"name": fmt.name or "response", "schema": fmt.schema or {"type": "object"}}
    if fmt.strict is not None:
        spec["strict"] = fmt.strict
    return {"type": "json_schema", "json_schema": spec}


def _choice(index: int, text: str, tool_calls: Sequence[ToolCall], finish: Finish) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not tool_calls else None}
    if tool_calls:
        message["tool_calls"] = [_call(c) for c in tool_calls]
    return {"index": index, "message": message, "finish_reason": spell_finish("openai", finish)}


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
