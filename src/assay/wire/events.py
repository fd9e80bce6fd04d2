"""Provider-neutral stream events: what each protocol's streams and bodies decode into and encode from.

A stream is `Start`, any number of `TextDelta`, `UsageReport` and `Finish`, then
`Done`; or it ends early with an `ErrorEvent` (the provider's own in-band error).
`UsageReport.usage` is cumulative: the last one holds the whole count.

Finish reasons have a neutral spelling (`FinishReason`) for translation, and every
`Finish` keeps the provider's own string in `raw`: Records store that (Anthropic's
"end_turn" stays "end_turn"), and an encoder given a reason its protocol spells
natively sends it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from assay.model import Usage

__all__ = [
    "DONE",
    "FINISH_REASONS",
    "Collector",
    "Done",
    "ErrorEvent",
    "Event",
    "Finish",
    "FinishReason",
    "Start",
    "TextDelta",
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


@dataclass(slots=True)
class UsageReport:
    usage: Usage  # cumulative, a snapshot: later reports do not change it


@dataclass(slots=True)
class Finish:
    reason: FinishReason
    raw: str | None = None  # the provider's own spelling


@dataclass(slots=True)
class ErrorEvent:
    message: str
    type: str | None = None  # the provider's error type (overloaded_error, server_error, ...)


@dataclass(slots=True)
class Done:
    pass


DONE = Done()
Event = Start | TextDelta | UsageReport | Finish | ErrorEvent | Done


def finish_from(api: str, raw: str) -> Finish:
    """A provider's finish reason, with its neutral meaning (`other` for spellings we do not know)."""
    return Finish(FINISH_REASONS[api].get(raw, "other"), raw)


def spell_finish(api: str, finish: Finish) -> str:
    """How `api` says this finish: the raw string when it is one of its own, else its word for the reason."""
    if finish.raw is not None and finish.raw in FINISH_REASONS[api]:
        return finish.raw
    return _SPELLING[api][finish.reason]


@dataclass(slots=True)
class Collector:
    """Folds events into what a whole answer holds: the one fold for clients and servers alike."""

    parts: list[str] = field(default_factory=list)
    id: str | None = None
    model: str | None = None
    finish: Finish | None = None
    usage: Usage | None = None
    error: ErrorEvent | None = None
    done: bool = False

    def add(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            self.parts.append(event.text)
        elif isinstance(event, UsageReport):
            self.usage = event.usage
        elif isinstance(event, Finish):
            self.finish = event
        elif isinstance(event, Start):
            self.id = self.id or event.id
            self.model = self.model or event.model
        elif isinstance(event, Done):
            self.done = True
        else:
            self.error = event

    @property
    def text(self) -> str:
        return "".join(self.parts)
