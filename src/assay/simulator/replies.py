"""What a simulated model says when a request asks for more than text: tool calls, tool results, JSON.

A model with tools (and a tool choice other than none) answers a user's message
with a call to the forced tool, or else the first one; its arguments are a JSON
object with every required property of the tool's schema, each a plausible value
of its type (a city for `city`, a date for a `date` format, a number within its
bounds, the first of an enum). After a tool result it answers in text that quotes
the result. Asked for JSON, the reply is an object valid for the schema's required
properties and types (any object for `json_object`), whose first free-text string
holds what the model would have said. Every draw comes from the request's RNG.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

from assay.model import ChatRequest, ForcedTool, Message, ResponseFormat, Tool

__all__ = ["fill_schema", "json_reply", "tool_result_reply", "tool_to_call"]

_MAX_DEPTH = 8
_RESULT_WORDS = 30  # of a tool's result, quoted in the reply
# Plausible strings by what a property's name says it holds (the first match wins).
_BY_NAME = (
    ("email", "ada@example.com"),
    ("url", "https://example.com"),
    ("city", "Paris"),
    ("location", "Paris, France"),
    ("country", "France"),
    ("date", "2024-05-01"),
    ("time", "12:00"),
    ("unit", "celsius"),
    ("currency", "EUR"),
    ("language", "en"),
    ("name", "Ada Lovelace"),
    ("id", "item-1"),
)
_BY_FORMAT = {
    "date": "2024-05-01",
    "date-time": "2024-05-01T12:00:00Z",
    "time": "12:00:00",
    "email": "ada@example.com",
    "uri": "https://example.com",
    "uuid": "123e4567-e89b-12d3-a456-426614174000",
}


def tool_to_call(request: ChatRequest) -> Tool | None:
    """The tool this request's answer calls, or None for a text answer."""
    if not request.tools or request.tool_choice == "none" or not request.messages:
        return None
    if request.messages[-1].role != "user":
        return None
    if isinstance(request.tool_choice, ForcedTool):
        return next((t for t in request.tools if t.name == request.tool_choice.name), request.tools[0])
    return request.tools[0]


def tool_result_reply(request: ChatRequest) -> str | None:
    """The text answer to a conversation whose last message is a tool's result, or None when it is not."""
    last = request.messages[-1] if request.messages else None
    if last is None or last.tool_call_id is None:
        return None
    name = _tool_name(request.messages, last.tool_call_id)
    result = " ".join(last.content.split()[:_RESULT_WORDS]) or "nothing"
    verb = "failed with" if last.tool_error else "returned"
    return f"The {name} tool {verb}: {result}. That is the answer to your question."


def _tool_name(messages: list[Message], call_id: str) -> str:
    for m in reversed(messages):
        for call in m.tool_calls:
            if call.id == call_id:
                return call.name
    return "requested"


def json_reply(fmt: ResponseFormat, rng: random.Random, say: str) -> str:
    """The reply's text as the JSON the format asks for; `say` fills its first free-text string."""
    schema = fmt.schema if fmt.type == "json_schema" and fmt.schema else {}
    if not schema.get("properties") and schema.get("type", "object") == "object":
        return json.dumps({"answer": say})
    return json.dumps(fill_schema(schema, rng, say))


def fill_schema(schema: dict[str, Any], rng: random.Random, say: str = "") -> Any:
    """A value valid for `schema`'s types and required properties (local `$ref`s followed)."""
    return _Filler(schema, rng, say).value(schema, "", 0)


class _Filler:
    def __init__(self, root: dict[str, Any], rng: random.Random, say: str) -> None:
        self.root, self.rng, self.say = root, rng, say

    def value(self, schema: Any, name: str, depth: int) -> Any:
        if not isinstance(schema, dict) or depth > _MAX_DEPTH:
            return None
        if isinstance(ref := schema.get("$ref"), str):
            return self.value(self._resolve(ref), name, depth + 1)
        if "const" in schema:
            return schema["const"]
        if isinstance(enum := schema.get("enum"), list) and enum:
            return enum[0]
        for key in ("anyOf", "oneOf", "allOf"):
            if isinstance(options := schema.get(key), list) and options:
                typed = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
                return self.value((typed or options)[0], name, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            count = min(5, max(1, math.ceil(_number(schema, "minItems", 1))))
            return [self.value(schema.get("items", {}), name, depth + 1) for _ in range(count)]
        if kind == "integer":
            low = math.ceil(_number(schema, "minimum", 1))
            return self.rng.randint(low, max(low, math.floor(_number(schema, "maximum", max(10, low)))))
        if kind == "number":
            least = _number(schema, "minimum", 1)
            return round(self.rng.uniform(least, max(least, _number(schema, "maximum", 100))), 2)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return self._string(schema, name)

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        required = schema.get("required")
        names = [n for n in required if isinstance(n, str)] if isinstance(required, list) else list(props)
        return {n: self.value(props.get(n, {"type": "string"}), n, depth + 1) for n in names}

    def _string(self, schema: dict[str, Any], name: str) -> str:
        if isinstance(fmt := schema.get("format"), str) and fmt in _BY_FORMAT:
            return _BY_FORMAT[fmt]
        lowered = name.lower()
        for key, value in _BY_NAME:
            if key in lowered:
                return value
        if self.say:  # the first free-text string says what the model would have said
            said, self.say = self.say, ""
            return said
        return self.rng.choice(("blue", "yes", "example", "today", "sunny", "42 items"))

    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            return {}
        node: Any = self.root
        for part in ref[2:].split("/"):
            node = node.get(part) if isinstance(node, dict) else None
        return node if isinstance(node, dict) else {}


def _number(schema: dict[str, Any], key: str, default: float) -> float:
    value = schema.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default
