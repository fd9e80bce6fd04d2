"""Fine-tuning file formats: what each vendor accepts in one line of a JSONL training file.

One example is checked at a time (files are streamed), and each root cause is
reported once, under one class: a message without `content` is
`message_missing_key`, not also `missing_content`. For the OpenAI format the
classes carry the names of OpenAI's data-preparation cookbook (`data_type`,
`missing_messages_list`, `message_missing_key`, `message_unrecognized_key`,
`unrecognized_role`, `missing_content`, `example_missing_assistant_message`);
the other checks add their own (`invalid_json`, `example_unrecognized_key`,
`turns_out_of_order`, `mixed_formats`, `weight_out_of_range`, ...).

The vendors' rules, from their documentation:
- openai: chat `messages` (system/developer, user, assistant, tool, function), optional
  `tools`, `functions`, `parallel_tool_calls`; `weight` 0 or 1 on assistant messages; at
  least 10 examples; examples over the model's training context are truncated.
- together: one shape for the whole file, conversational (`messages`), instruction
  (`prompt` + `completion`) or generic (`text`); the user and assistant turns alternate.
- fireworks: `messages`, the system message first and only there; `weight` in {0, 1};
  3 to 3,000,000 examples.
- anthropic-bedrock (Claude on Amazon Bedrock): `system` beside `messages`, which alternate
  user/assistant from a user turn to an assistant turn; 32 to 10,000 examples; 32,000 tokens
  an example at most.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FORMATS", "Example", "Format", "Problem", "check_example", "default_epochs", "format_rules", "shape_of"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One error in a training file: its line (1-based; None for the file as a whole), class and detail."""

    line: int | None
    cls: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "class": self.cls, "detail": self.detail}


@dataclass(frozen=True)
class Format:
    """One vendor's rules for a training example."""

    name: str
    roles: frozenset[str]
    message_keys: frozenset[str]
    example_keys: frozenset[str]
    system_key: bool = False  # the system prompt is a top-level `system`, not a message
    system_first_only: bool = False
    alternate: bool = False  # user and assistant turns alternate (after the system prompt)
    starts_with_user: bool = False
    ends_with_assistant: bool = False
    shapes: tuple[str, ...] = ("messages",)  # together: messages | prompt-completion | text
    min_examples: int = 1
    max_examples: int | None = None
    truncates: bool = True  # over the token limit: truncated (a warning), else refused (an error)
    max_example_tokens: int = 16_385
    default_epochs: int | None = None  # None: OpenAI's rule (economics/training.py)
    docs: str = ""


_CHAT = frozenset({"role", "content", "name", "weight"})
FORMATS: dict[str, Format] = {
    "openai": Format(
        "openai",
        roles=frozenset({"system", "developer", "user", "assistant", "tool", "function"}),
        message_keys=_CHAT | {"function_call", "tool_calls", "tool_call_id"},
        example_keys=frozenset({"messages", "tools", "functions", "parallel_tool_calls"}),
        min_examples=10,
        max_example_tokens=65_536,
        docs="https://platform.openai.com/docs/guides/supervised-fine-tuning",
    ),
    "together": Format(
        "together",
        roles=frozenset({"system", "user", "assistant"}),
        message_keys=_CHAT - {"name"},
        example_keys=frozenset({"messages", "prompt", "completion", "text"}),
        system_first_only=True,
        alternate=True,
        shapes=("messages", "prompt-completion", "text"),
        truncates=False,
        max_example_tokens=32_768,
        default_epochs=1,
        docs="https://docs.together.ai/docs/fine-tuning-data-preparation",
    ),
    "fireworks": Format(
        "fireworks",
        roles=frozenset({"system", "user", "assistant", "tool"}),
        message_keys=_CHAT | {"tool_calls", "tool_call_id"},
        example_keys=frozenset({"messages", "tools"}),
        system_first_only=True,
        min_examples=3,
        max_examples=3_000_000,
        truncates=False,
        max_example_tokens=65_536,
        default_epochs=1,
        docs="https://docs.fireworks.ai/fine-tuning/fine-tuning-models",
    ),
    "anthropic-bedrock": Format(
        "anthropic-bedrock",
        roles=frozenset({"user", "assistant"}),
        message_keys=frozenset({"role", "content"}),
        example_keys=frozenset({"system", "messages"}),
        system_key=True,
        alternate=True,
        starts_with_user=True,
        ends_with_assistant=True,
        min_examples=32,
        max_examples=10_000,
        truncates=False,
        max_example_tokens=32_000,
        default_epochs=2,
        docs="https://docs.aws.amazon.com/bedrock/latest/userguide/model-customization-prepare.html",
    ),
}


def format_rules(name: str) -> Format:
    return FORMATS[name]


# OpenAI's rule (its data-preparation cookbook, which mirrors the API's `n_epochs: auto`).
TARGET_EPOCHS, MIN_EXAMPLES, MAX_EXAMPLES, MIN_EPOCHS, MAX_EPOCHS = 3, 100, 25_000, 1, 25


def default_epochs(n_examples: int, fmt: str = "openai") -> int:
    """The epochs a vendor trains for by default on `n_examples` examples.

    OpenAI: 3, raised so that examples x epochs reaches 100 (at most 25 epochs), or lowered so it
    stays under 25,000 (at least 1). The others: their documented fixed default.
    """
    fixed = FORMATS[fmt].default_epochs
    if fixed is not None:
        return fixed
    if n_examples <= 0:
        return TARGET_EPOCHS
    if n_examples * TARGET_EPOCHS < MIN_EXAMPLES:
        return min(MAX_EPOCHS, MIN_EXAMPLES // n_examples)
    if n_examples * TARGET_EPOCHS > MAX_EXAMPLES:
        return max(MIN_EPOCHS, MAX_EXAMPLES // n_examples)
    return TARGET_EPOCHS


@dataclass(slots=True)
class Example:
    """What one example holds for the statistics: the texts to count, by who said them."""

    shape: str = "messages"
    roles: list[str] = field(default_factory=list)  # one per message
    texts: list[str] = field(default_factory=list)  # one per message: its text (content, calls, name)
    names: int = 0  # messages with a `name` (one token more each)
    trained: list[int] = field(default_factory=list)  # indices of the assistant messages trained on
    extra: list[str] = field(default_factory=list)  # counted once each: the system key, tool schemas, names
    system: bool = False  # a top-level system prompt (Bedrock)

    @property
    def has_system(self) -> bool:
        return self.system or any(r in ("system", "developer") for r in self.roles)

    @property
    def has_user(self) -> bool:
        return "user" in self.roles or self.shape != "messages"


def shape_of(obj: Mapping[str, Any]) -> str:
    if "messages" in obj:
        return "messages"
    if "prompt" in obj or "completion" in obj:
        return "prompt-completion"
    if "text" in obj:
        return "text"
    return "messages"


def _text_of(content: Any) -> str | None:
    """A message's text: a string, or the text parts of a content list; None when it has none."""
    if isinstance(content, str):
        return content if content.strip() else None
    if isinstance(content, list) and content:
        parts = []
        for part in content:
            if not isinstance(part, dict):
                return None
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif part.get("type") not in ("image_url", "image", "input_audio"):
                return None
        text = "\n".join(parts)
        return text if text.strip() or len(parts) < len(content) else None
    return None


def check_example(obj: Any, line: int, fmt: Format, file_shape: str | None) -> tuple[list[Problem], Example | None]:
    """The problems of one parsed line, and what it holds when it can be counted (None when it cannot)."""
    if not isinstance(obj, dict):
        return [Problem(line, "data_type", f"the line is a JSON {_json_type(obj)}, not an object")], None
    shape = shape_of(obj)
    keys = ", ".join(map(repr, sorted(obj))) or "none"
    if shape not in fmt.shapes:
        return [Problem(line, "missing_messages_list", f"no `messages` list (keys: {keys})")], None
    messages = obj.get("messages") if shape == "messages" else None
    if shape == "messages" and (not isinstance(messages, list) or not messages):
        what = (
            "missing"
            if messages is None
            else "empty"
            if isinstance(messages, list)
            else f"a JSON {_json_type(messages)}"
        )
        detail = f"`messages` is {what}; expected a list of messages" + (f" (keys: {keys})" if messages is None else "")
        return [Problem(line, "missing_messages_list", detail)], None
    problems: list[Problem] = []
    unknown = sorted(k for k in obj if k not in fmt.example_keys)
    if unknown:
        problems.append(
            Problem(
                line,
                "example_unrecognized_key",
                f"unrecognized key(s) {', '.join(map(repr, unknown))}; "
                f"{fmt.name} examples have {', '.join(sorted(fmt.example_keys))}",
            )
        )
    if file_shape is not None and shape != file_shape:
        problems.append(
            Problem(
                line,
                "mixed_formats",
                f"a {shape} example in a file of {file_shape} examples; {fmt.name} needs one format for the whole file",
            )
        )
    if shape != "messages":
        return _check_plain(obj, line, shape, problems)
    assert isinstance(messages, list)
    example = Example()
    system = obj.get("system")
    if fmt.system_key and system is not None:
        if not isinstance(system, str):
            problems.append(Problem(line, "missing_content", "`system` must be a string"))
        else:
            example.extra.append(system)
            example.system = True
    for key in ("tools", "functions"):
        if key in obj and key in fmt.example_keys:
            example.extra.append(_dumps(obj[key]))
    problems += _check_messages(messages, line, fmt, example)
    return problems, example


def _check_messages(messages: list[Any], line: int, fmt: Format, example: Example) -> list[Problem]:
    by_class: dict[str, list[str]] = {}

    def add(cls: str, detail: str) -> None:
        by_class.setdefault(cls, []).append(detail)

    for i, m in enumerate(messages):
        at = f"messages[{i}]"
        if not isinstance(m, dict):
            add("data_type", f"{at} is a JSON {_json_type(m)}, not an object")
            continue
        role = m.get("role")
        calls = m.get("tool_calls") or m.get("function_call")
        missing = [k for k in ("role", "content") if k not in m and not (k == "content" and calls)]
        if missing:
            add("message_missing_key", f"{at} has no {' or '.join(map(repr, missing))}")
        unknown = sorted(k for k in m if k not in fmt.message_keys)
        if unknown:
            add("message_unrecognized_key", f"{at}: {', '.join(map(repr, unknown))}")
        if "role" in m and role not in fmt.roles:
            add("unrecognized_role", f"{at} role {role!r}; expected one of {', '.join(sorted(fmt.roles))}")
        text = _text_of(m.get("content"))
        if "content" in m and text is None and not (calls and m.get("content") in (None, "")):
            add("missing_content", f"{at} ({role}) has no text: {_describe(m.get('content'))}")
        if "weight" in m and (m["weight"] not in (0, 1) or isinstance(m["weight"], bool)):
            add("weight_out_of_range", f"{at} weight {m['weight']!r}; expected 0 or 1")
        example.roles.append(role if isinstance(role, str) else "?")
        example.names += 1 if isinstance(m.get("name"), str) else 0
        example.texts.append(" ".join(p for p in (text or "", _dumps(calls) if calls else "") if p))
        if isinstance(m.get("name"), str):
            example.extra.append(m["name"])
        if role == "assistant" and m.get("weight", 1) != 0:
            example.trained.append(i)
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        add("example_missing_assistant_message", "no assistant message to train on")
    order = _order_problem(example.roles, fmt)
    if order:
        add("turns_out_of_order", order)
    return [Problem(line, cls, "; ".join(details)) for cls, details in by_class.items()]


def _order_problem(roles: list[str], fmt: Format) -> str | None:
    systems = [i for i, r in enumerate(roles) if r in ("system", "developer")]
    if fmt.system_first_only and any(i > 0 for i in systems):
        return f"a system message at messages[{next(i for i in systems if i > 0)}]; it may only come first"
    turns = [(i, r) for i, r in enumerate(roles) if r in ("user", "assistant")]
    if fmt.starts_with_user and turns and turns[0][1] != "user":
        return f"the first turn is messages[{turns[0][0]}] ({turns[0][1]}); it must be the user's"
    if fmt.alternate:
        for (_, a), (j, b) in itertools.pairwise(turns):
            if a == b:
                return f"messages[{j}] is a second {b} turn in a row; user and assistant turns must alternate"
    if fmt.ends_with_assistant and turns and turns[-1][1] != "assistant":
        return f"the last turn is messages[{turns[-1][0]}] ({turns[-1][1]}); it must be the assistant's"
    return None


def _check_plain(
    obj: dict[str, Any], line: int, shape: str, problems: list[Problem]
) -> tuple[list[Problem], Example | None]:
    keys = ("prompt", "completion") if shape == "prompt-completion" else ("text",)
    missing = [k for k in keys if k not in obj]
    if missing:
        return [*problems, Problem(line, "message_missing_key", f"no {' or '.join(map(repr, missing))}")], None
    empty = [k for k in keys if not isinstance(obj[k], str) or not obj[k].strip()]
    if empty:
        return [
            *problems,
            Problem(line, "missing_content", f"{', '.join(map(repr, empty))} must be non-empty text"),
        ], None
    example = Example(shape=shape)
    if shape == "prompt-completion":
        example.roles, example.texts, example.trained = ["user", "assistant"], [obj["prompt"], obj["completion"]], [1]
    else:
        example.roles, example.texts, example.trained = ["assistant"], [obj["text"]], [0]
    return problems, example


def _dumps(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode()


def _json_type(v: Any) -> str:
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}.get(
        type(v), "value"
    )


def _describe(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, str):
        return "an empty string"
    return f"a JSON {_json_type(v)}" + (" with no text parts" if isinstance(v, list) else "")
