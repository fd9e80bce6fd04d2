"""Anthropic messages, both halves (base_url without /v1, as the Anthropic SDK takes it).

Anthropic counts `input_tokens` without prompt-cache reads and writes; the neutral
`Usage.input_tokens` is the whole prompt, so decoding adds them and encoding
takes them out again.

Anthropic has no JSON mode. A request with a `response_format` goes out with one more
tool, `assay_json_answer` (`JSON_TOOL`), whose input schema is the wanted schema (any object for
`json_object`), and a `tool_choice` that makes the model call a tool (that one, when
the request's own tool choice does not already force another); the decoders turn
that tool's input back into the answer's text, so the caller reads JSON content
with `finish_reason` stop, as from OpenAI. The name is reserved: a caller's own tool
by that name (its calls would read as text), or a schema whose root is not an
object, cannot be sent (`unsupported`).

Anthropic has no `n`: a request for more than one choice cannot be sent either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

import orjson

from assay.model import ChatRequest, ForcedTool, Image, Message, Tool, ToolCall, ToolChoice, Usage
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
from assay.wire.sse import SSEEvent, encode_sse

__all__ = ["ANTHROPIC", "ANTHROPIC_VERSION", "JSON_TOOL", "AnthropicWire"]

ANTHROPIC_VERSION = "2023-06-01"
JSON_TOOL = "assay_json_answer"  # the tool a response_format becomes; its input is the answer (a reserved name)
_PARSED = frozenset(("model", "messages", "system", "max_tokens", "temperature", "stream", "tools", "tool_choice"))
_EMPTY: tuple[Event, ...] = ()
_DONE = (DONE,)
_PING = encode_sse({"type": "ping"}, "ping")
_TEXT_START = encode_sse(
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}, "content_block_start"
)
_MESSAGE_STOP = encode_sse({"type": "message_stop"}, "message_stop")
_JSON_FINISH = Finish("stop", "end_turn")  # JSON_TOOL was called: the answer is its input, complete
_CHOICES = {"auto": "auto", "none": "none", "required": "any"}


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
            "messages": _messages(request.messages),
        }
        if request.system:
            body["system"] = request.system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.stream:
            body["stream"] = True
        tools, choice = [_tool(t) for t in request.tools], _tool_choice(request.tool_choice)
        # A forced call (named or required) already answers; else the answer is JSON_TOOL's input.
        forced = isinstance(request.tool_choice, ForcedTool) or request.tool_choice == "required"
        if (fmt := request.response_format) is not None and not forced:
            schema = fmt.schema if fmt.type == "json_schema" and fmt.schema else {"type": "object"}
            answer = {"name": JSON_TOOL, "description": _JSON_TOOL_SAYS, "input_schema": schema}
            if request.tool_choice == "none" or not request.tools:
                tools, choice = [answer], {"type": "tool", "name": JSON_TOOL}
            else:  # call a tool, or answer through JSON_TOOL
                tools, choice = [*tools, answer], {"type": "any"}
        if request.parallel_tool_calls is False:
            choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
        if tools:
            body["tools"] = tools
        if choice is not None:
            body["tool_choice"] = choice
        if request.extra:
            body.update(self.extras_for(request)[0])
        return body

    def unsupported(self, request: ChatRequest) -> list[str]:
        said = super().unsupported(request)
        if request.n != 1:
            said.append("n")
        fmt = request.response_format
        if fmt is not None and fmt.schema is not None and fmt.schema.get("type", "object") != "object":
            said.append("response_format with a schema whose root is not an object")
        if any(t.name == JSON_TOOL for t in request.tools):
            said.append(f"a tool named {JSON_TOOL!r} (reserved)")
        for m in request.messages:
            if any(not _is_object(c.arguments) for c in m.tool_calls):
                said.append("tool call arguments that are not a JSON object")
                break
        return said

    foreign_extras: ClassVar[dict[tuple[str, str], Any]] = {
        ("openai", "top_p"): lambda v: ("top_p", v),
        ("openai", "stop"): lambda v: (
            ("stop_sequences", [v]) if isinstance(v, str)
            else ("stop_sequences", v) if isinstance(v, list) and all(isinstance(x, str) for x in v)
            else None
        ),
    }  # fmt: skip

    def stream_decoder(self) -> StreamDecoder:
        return _Decoder()

    def decode_body(self, body: bytes) -> list[Event]:
        data = orjson.loads(body)
        if not isinstance(data, dict):
            raise ValueError("response body is not a JSON object")
        usage = _read_usage(data.get("usage") or {}, Usage())
        events: list[Event] = [Start(data.get("id"), data.get("model"), usage.input_tokens or None)]
        calls = 0
        answered = False  # by JSON_TOOL
        for block in data.get("content") or ():
            kind = block.get("type")
            if kind == "text" and block.get("text"):
                events.append(TextDelta(block["text"]))
            elif kind == "tool_use" and block.get("name") == JSON_TOOL:
                answered = True
                events.append(TextDelta(orjson.dumps(block.get("input") or {}).decode()))
            elif kind == "tool_use":
                arguments = orjson.dumps(block.get("input") or {}).decode()
                events.append(ToolCallDelta(calls, block.get("id"), block.get("name"), arguments))
                calls += 1
        if reason := data.get("stop_reason"):
            events.append(
                _JSON_FINISH if answered and not calls and reason == "tool_use" else finish_from(self.api, reason)
            )
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
            if m["role"] == "system":  # not Anthropic's way, but clear enough to take
                system.append(self.text_of(m.get("content"), f"messages[{i}].content"))
            else:
                messages += self._turn(m["role"], m.get("content"), f"messages[{i}].content")
        max_tokens = data.get("max_tokens")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
            raise self.refuse(400, "max_tokens: field required")
        if max_tokens < 1:
            raise self.refuse(400, "max_tokens: must be at least 1")
        tools = self._tools(data.get("tools"))
        choice, parallel = self._tool_choice(data.get("tool_choice"))
        request = ChatRequest(
            messages,
            max_tokens=max_tokens,
            temperature=self._temperature(data),
            stream=bool(data.get("stream")),
            system="\n".join(system) if system else None,
            extra={k: v for k, v in data.items() if k not in _PARSED},
            tools=tools,
            tool_choice=self._check_choice(choice, tools),
            parallel_tool_calls=parallel,
            extra_api=self.api,
        )
        return Incoming(model, request, include_usage=True)

    def _turn(self, role: str, content: Any, where: str) -> list[Message]:
        """One Anthropic message as neutral ones: its tool results each a tool message, then the rest."""
        if not isinstance(content, list):
            return [Message(role, self.text_of(content, where))]
        results: list[Message] = []
        parts: list[str] = []
        images: list[Image] = []
        calls: list[ToolCall] = []
        at = 0
        for i, block in enumerate(content):
            if not isinstance(block, dict):
                continue
            kind, here = block.get("type"), f"{where}[{i}]"
            if kind == "text":
                piece = str(block.get("text") or "")
                parts.append(piece)
                at += len(piece)
            elif kind == "image":
                images.append(self._image(block.get("source"), at, f"{here}.source"))
            elif kind == "tool_use":
                id, name = self._call(block.get("id"), block.get("name"), here)
                arguments = block.get("input", {})
                if not isinstance(arguments, dict):
                    raise self.refuse(400, f"{here}.input: Input should be a valid dictionary")
                calls.append(ToolCall(id, name, orjson.dumps(arguments).decode()))
            elif kind == "tool_result":
                results.append(self._result(block, here))
        if calls and role != "assistant":
            raise self.refuse(400, f"{where}: tool_use blocks belong in assistant messages.")
        if results and role != "user":
            raise self.refuse(400, f"{where}: tool_result blocks belong in user messages.")
        if parts or images or calls or not results:
            results.append(Message(role, "".join(parts), tool_calls=calls, images=images))
        return results

    def _result(self, block: dict[str, Any], where: str) -> Message:
        call_id = block.get("tool_use_id")
        if not isinstance(call_id, str) or not call_id:
            raise self.refuse(400, f"{where}.tool_use_id: Field required (a string)")
        content = block.get("content")
        images: list[Image] = []
        if isinstance(content, list):
            at = 0
            for i, part in enumerate(content):
                if isinstance(part, dict) and part.get("type") == "image":
                    images.append(self._image(part.get("source"), at, f"{where}.content[{i}].source"))
                elif isinstance(part, dict) and part.get("type") == "text":
                    at += len(str(part.get("text") or ""))
        text = self.text_of(content, f"{where}.content")
        return Message("tool", text, tool_call_id=call_id, tool_error=block.get("is_error") is True, images=images)

    def _image(self, source: Any, at: int, where: str) -> Image:
        kind = source.get("type") if isinstance(source, dict) else None
        if kind == "url" and isinstance(source, dict) and isinstance(source.get("url"), str) and source["url"]:
            return Image(url=source["url"], at=at)
        if kind == "base64" and isinstance(source, dict):
            data, media_type = source.get("data"), source.get("media_type")
            if isinstance(data, str) and isinstance(media_type, str) and media_type.startswith("image/"):
                return Image(data=data, media_type=media_type, at=at)
        raise self.refuse(400, f"{where}: expected {{type: base64, media_type: image/..., data}} or {{type: url, url}}")

    def _tools(self, value: Any) -> list[Tool]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.refuse(400, "tools: Input should be a valid list")
        tools: list[Tool] = []
        for i, t in enumerate(value):
            if not isinstance(t, dict) or t.get("type", "custom") != "custom":
                raise self.refuse(
                    400, f"tools.{i}: only custom tools ({{name, description, input_schema}}) are supported"
                )
            if "input_schema" not in t:
                raise self.refuse(400, f"tools.{i}.input_schema: Field required")
            tools.append(self._tool(t.get("name"), t.get("description"), t["input_schema"], f"tools.{i}"))
        return tools

    def _tool_choice(self, value: Any) -> tuple[ToolChoice | None, bool | None]:
        if value is None:
            return None, None
        kind = value.get("type") if isinstance(value, dict) else None
        if not isinstance(value, dict) or kind not in ("auto", "any", "tool", "none"):
            raise self.refuse(400, "tool_choice: expected {type: auto | any | tool | none}")
        disable = value.get("disable_parallel_tool_use")
        if disable is not None and not isinstance(disable, bool):
            raise self.refuse(400, "tool_choice.disable_parallel_tool_use: Input should be a valid boolean")
        parallel = None if disable is None else not disable
        if kind == "tool":
            name = value.get("name")
            if not isinstance(name, str) or not name:
                raise self.refuse(400, "tool_choice.name: Field required (a string)")
            return ForcedTool(name), parallel
        return ("required" if kind == "any" else kind), parallel

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
        content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text or not tool_calls else []
        content += [{"type": "tool_use", "id": c.id, "name": c.name, "input": _input(c.arguments)} for c in tool_calls]
        return orjson.dumps(
            {
                "id": rid,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": spell_finish(self.api, finish),
                "stop_sequence": None,
                "usage": {**_input_usage(usage.input_tokens, usage), "output_tokens": usage.output_tokens},
            }
        )

    def error_body(self, status: int, message: str, type: str | None = None, code: str | None = None) -> bytes:
        return orjson.dumps({"type": "error", "error": {"type": self.error_type(status, type), "message": message}})


class _Decoder(StreamDecoder):
    """Anthropic states input in message_start and the running output count in message_delta."""

    __slots__ = ("_answered", "_blocks", "_calls", "_usage")

    def __init__(self) -> None:
        self._usage = Usage()
        self._blocks: dict[int, int] = {}  # tool_use block index -> tool call index (-1: JSON_TOOL, read as text)
        self._calls = 0
        self._answered = False

    def decode(self, event: SSEEvent) -> Sequence[Event]:
        data = orjson.loads(event.data)
        if not isinstance(data, dict):
            raise ValueError("stream event is not a JSON object")
        kind = data.get("type")
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            piece = delta.get("text")
            if piece:
                return (TextDelta(str(piece)),)
            partial = delta.get("partial_json")
            if not partial:
                return _EMPTY
            call = self._blocks.get(data.get("index"))  # type: ignore[arg-type]
            if call is None:
                raise ValueError("input_json_delta outside a tool_use block")
            return (TextDelta(str(partial)),) if call < 0 else (ToolCallDelta(call, arguments=str(partial)),)
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "message_start":
            message = data.get("message") or {}
            usage = _read_usage(message.get("usage") or {}, self._usage)
            if usage.source != "server":
                return (Start(message.get("id"), message.get("model")),)
            return Start(message.get("id"), message.get("model"), usage.input_tokens), UsageReport(replace(usage))
        if kind == "message_delta":
            out: list[Event] = []
            if reason := (data.get("delta") or {}).get("stop_reason"):
                answered = self._answered and not self._calls and reason == "tool_use"
                out.append(_JSON_FINISH if answered else finish_from("anthropic", reason))
            if reported := data.get("usage"):
                out.append(UsageReport(replace(_read_usage(reported, self._usage))))
            return out
        if kind == "message_stop":
            return _DONE
        if kind == "error":
            err = data.get("error") or {}
            return (ErrorEvent(str(err.get("message", "")), err.get("type")),)
        return _EMPTY  # ping, content_block_stop

    def _block_start(self, data: dict[str, Any]) -> Sequence[Event]:
        block = data.get("content_block")
        if not isinstance(block, dict) or block.get("type") != "tool_use":
            return _EMPTY  # text (its text comes in deltas), thinking
        index = data.get("index")
        if not isinstance(index, int):
            raise ValueError("content_block_start without an index")
        given = block.get("input")
        arguments = orjson.dumps(given).decode() if given else ""
        if block.get("name") == JSON_TOOL:
            self._blocks[index] = -1
            self._answered = True
            return (TextDelta(arguments),) if arguments else _EMPTY
        call = self._blocks[index] = self._calls
        self._calls += 1
        return (ToolCallDelta(call, block.get("id"), block.get("name"), arguments),)


class _Encoder(StreamEncoder):
    """Content blocks open as the answer needs them: a text block, a tool_use block per call.

    Anthropic has one choice: events of any other are not said."""

    def __init__(self, rid: str, model: str, include_usage: bool) -> None:
        super().__init__(rid, model, include_usage)
        self._input_told = False
        self._block = -1  # the open content block's index, -1 before the first
        self._in_text = False  # the open block is a text block
        self._tool = -1  # the tool call whose block is open

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
        return encode_sse({"type": "message_start", "message": message}, "message_start") + _PING

    def _open(self, block: dict[str, Any]) -> bytes:
        out = self._stop_block()
        self._block += 1
        if self._block == 0 and block["type"] == "text":
            return out + _TEXT_START
        event = {"type": "content_block_start", "index": self._block, "content_block": block}
        return out + encode_sse(event, "content_block_start")

    def _stop_block(self) -> bytes:
        if self._block < 0 or (not self._in_text and self._tool < 0):
            return b""
        self._in_text, self._tool = False, -1
        return encode_sse({"type": "content_block_stop", "index": self._block}, "content_block_stop")

    def text(self, text: str, choice: int = 0) -> bytes:
        if choice:
            return b""
        head = b""
        if not self._in_text:
            head = self._open({"type": "text", "text": ""})
            self._in_text = True
        return head + encode_sse(
            {"type": "content_block_delta", "index": self._block, "delta": {"type": "text_delta", "text": text}},
            "content_block_delta",
        )

    def tool_call(self, delta: ToolCallDelta) -> bytes:
        if delta.choice:
            return b""
        head = b""
        if delta.index != self._tool:
            block = {
                "type": "tool_use",
                "id": delta.id or f"toolu_{delta.index}",
                "name": delta.name or "",
                "input": {},
            }
            head = self._open(block)
            self._tool = delta.index
        if not delta.arguments:
            return head
        piece = {"type": "input_json_delta", "partial_json": delta.arguments}
        return head + encode_sse(
            {"type": "content_block_delta", "index": self._block, "delta": piece}, "content_block_delta"
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
        return self._stop_block() + encode_sse(delta, "message_delta") + _MESSAGE_STOP

    def error(self, message: str, type: str | None = None) -> bytes:
        kind = ANTHROPIC.error_type(500, type)
        return encode_sse({"type": "error", "error": {"type": kind, "message": message}}, "error")


_JSON_TOOL_SAYS = "Give your answer as this tool's input: it is the whole reply, as a JSON object."


def _messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Neutral messages as Anthropic turns: tool results (and a user message after them) in one user turn."""
    out: list[dict[str, Any]] = []
    for m in messages:
        last = out[-1] if out else None
        gathering = last is not None and last["role"] == "user" and _has_results(last)
        if m.tool_call_id is not None:
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": _result(m)}
            if m.tool_error:
                block["is_error"] = True
            if gathering and last is not None:
                last["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif gathering and last is not None and m.role == "user":
            last["content"] += _blocks(m)
        else:
            out.append({"role": m.role, "content": _blocks(m) if m.images or m.tool_calls else m.content})
    return out


def _has_results(turn: dict[str, Any]) -> bool:
    content = turn["content"]
    return isinstance(content, list) and any(b.get("type") == "tool_result" for b in content)


def _blocks(m: Message) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        ({"type": "text", "text": p} if isinstance(p, str) else {"type": "image", "source": _source(p)})
        for p in content_pieces(m)
        if p
    ]
    out += [{"type": "tool_use", "id": c.id, "name": c.name, "input": _input(c.arguments)} for c in m.tool_calls]
    return out


def _result(m: Message) -> Any:
    return _blocks(Message("user", m.content, images=m.images)) if m.images else m.content


def _source(image: Image) -> dict[str, Any]:
    url = image.url
    if url is not None and url.startswith("data:"):
        head, _, data = url[5:].partition(",")
        return {"type": "base64", "media_type": head.partition(";")[0], "data": data}
    if url is not None:
        return {"type": "url", "url": url}
    return {"type": "base64", "media_type": image.media_type or "image/png", "data": image.data or ""}


def _tool(t: Tool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": t.name, "input_schema": t.parameters}
    if t.description is not None:
        out["description"] = t.description
    return out


def _tool_choice(choice: ToolChoice | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, ForcedTool):
        return {"type": "tool", "name": choice.name}
    return {"type": _CHOICES[choice]}


def _input(arguments: str) -> Any:
    """A tool call's JSON arguments as Anthropic's input object ({} for none, or for text that is not one)."""
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _is_object(arguments: str) -> bool:
    if not arguments.strip():
        return True
    try:
        return isinstance(orjson.loads(arguments), dict)
    except orjson.JSONDecodeError:
        return False


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
