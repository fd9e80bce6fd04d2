"""Provider-neutral stream events: what each protocol's streams and bodies decode into and encode from.

A stream is `Start`, any number of `TextDelta`, `ToolCallDelta`, `UsageReport` and
`Finish`, then `Done`; or it ends early with an `ErrorEvent` (the provider's own
in-band error). `UsageReport.usage` is cumulative: the last one holds the whole count.

A tool call arrives as `ToolCallDelta`s: the first of a call (a new `index`) has its
id and name, the following ones fragments of its JSON arguments. An answer with
several choices (OpenAI's `n`) says which one each `TextDelta`, `ToolCallDelta` and
`Finish` belongs to in `choice`; 0, the default, is the only choice of most answers.

Finish reasons have a neutral spelling (`FinishReason`) for translation, and every
`Finish` keeps the provider's own string in `raw`: Records store that (Anthropic's
"end_turn" stays "end_turn"), and an encoder given a reason its protocol spells
natively sends it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from assay.model import ToolCall, Usage

__all__ = [
    "DONE",
    "FINISH_REASONS",
    "Choice",
    "Collector",
    "Done",
    "ErrorEvent",
    "Event",
    "Finish",
    "FinishReason",
    "Start",
    "TextDelta",
    "ToolCallDelta",
    "UsageReport",
    "finish_from",
    "spell_finish",
]

FinishReason = Literal["stop", "length", "content_filter", "tool_calls", "pause", "other"]

# Each protocol's spellings, to the neutral reason and back.
FINISH_REASONS: dict[str, dict[str, FinishReason]] = {
    "openai": {
        "stop": "stop",
        "length": "length",
        "content_filter": "content_filter",
        "tool_calls": "tool_calls",
        "function_call": "tool_calls",
    },
    "anthropic": {
        "end_turn": "stop",
        "stop_sequence": "stop",
        "max_tokens": "length",
        "model_context_window_exceeded": "length",
        "refusal": "content_filter",
        "tool_use": "tool_calls",
        "pause_turn": "pause",
    },
}
_SPELLING: dict[str, dict[FinishReason, str]] = {
    "openai": {
        "stop": "stop",
        "length": "length",
        "content_filter": "content_filter",
        "tool_calls": "tool_calls",
        "pause": "stop",
        "other": "stop",
    },
    "anthropic": {
        "stop": "end_turn",
        "length": "max_tokens",
        "content_filter": "refusal",
        "tool_calls": "tool_use",
        "pause": "pause_turn",
        "other": "end_turn",
    },
}


@dataclass(slots=True)
class Start:
    id: str | None = None
    model: str | None = None
    input_tokens: int | None = None  # when the protocol says it up front (Anthropic does, OpenAI does not)


@dataclass(slots=True)
class TextDelta:
    text: str
    choice: int = 0


@dataclass(slots=True)
class ToolCallDelta:
    """A piece of a tool call: the first of a call carries its id and name, the rest argument fragments."""

    index: int  # the call's place among its choice's tool calls (0, 1, ...)
    id: str | None = None
    name: str | None = None
    arguments: str = ""  # a fragment of the arguments' JSON text
    choice: int = 0


@dataclass(slots=True)
class UsageReport:
    usage: Usage  # cumulative, a snapshot: later reports do not change it


@dataclass(slots=True)
class Finish:
    reason: FinishReason
    raw: str | None = None  # the provider's own spelling
    choice: int = 0


@dataclass(slots=True)
class ErrorEvent:
    message: str
    type: str | None = None  # the provider's error type (overloaded_error, server_error, ...)


@dataclass(slots=True)
class Done:
    pass


DONE = Done()
Event = Start | TextDelta | ToolCallDelta | UsageReport | Finish | ErrorEvent | Done


def finish_from(api: str, raw: str) -> Finish:
    """A provider's finish reason, with its neutral meaning (`other` for spellings we do not know)."""
    return Finish(FINISH_REASONS[api].get(raw, "other"), raw)


def spell_finish(api: str, finish: Finish) -> str:
    """How `api` says this finish: the raw string when it is one of its own, else its word for the reason."""
    if finish.raw is not None and finish.raw in FINISH_REASONS[api]:
        return finish.raw
    return _SPELLING[api][finish.reason]


@dataclass(slots=True)
class Choice:
    """One choice of an answer, folded: its text, its tool calls and how it finished."""

    index: int = 0
    parts: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish: Finish | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def add_tool_delta(self, delta: ToolCallDelta) -> None:
        calls = self.tool_calls
        while len(calls) <= delta.index:
            calls.append(ToolCall("", "", ""))
        call = calls[delta.index]
        if delta.id:
            call.id = delta.id
        if delta.name:
            call.name = delta.name
        if delta.arguments:
            call.arguments += delta.arguments


@dataclass(slots=True)
class Collector:
    """Folds events into what a whole answer holds: the one fold for clients and servers alike.

    `text`, `parts`, `tool_calls` and `finish` are the first choice's; `choices` holds them all, in order.
    """

    choices: list[Choice] = field(default_factory=lambda: [Choice()])
    id: str | None = None
    model: str | None = None
    usage: Usage | None = None
    error: ErrorEvent | None = None
    done: bool = False

    def choice(self, index: int) -> Choice:
        """The choice of this index, created (with any before it) when first seen."""
        choices = self.choices
        while len(choices) <= index:
            choices.append(Choice(len(choices)))
        return choices[index]

    def add(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            (self.choices[0] if event.choice == 0 else self.choice(event.choice)).parts.append(event.text)
        elif isinstance(event, ToolCallDelta):
            self.choice(event.choice).add_tool_delta(event)
        elif isinstance(event, UsageReport):
            self.usage = event.usage
        elif isinstance(event, Finish):
            self.choice(event.choice).finish = event
        elif isinstance(event, Start):
            self.id = self.id or event.id
            self.model = self.model or event.model
        elif isinstance(event, Done):
            self.done = True
        else:
            self.error = event

    @property
    def parts(self) -> list[str]:
        return self.choices[0].parts

    @property
    def text(self) -> str:
        return self.choices[0].text

    @property
    def tool_calls(self) -> list[ToolCall]:
        return self.choices[0].tool_calls

    @property
    def finish(self) -> Finish | None:
        return self.choices[0].finish
