"""One evaluation item, whatever dataset it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["LETTERS", "EvalItem"]

LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True, slots=True)
class EvalItem:
    """A question with its reference answer.

    `expected` is what scorers compare against: GSM8K's final number, a multiple-choice
    letter, or a golden set's answer text. `messages` replaces the template for chat items.
    """

    id: str
    dataset: str
    question: str
    expected: str
    choices: tuple[str, ...] = ()
    messages: tuple[tuple[str, str], ...] = ()  # (role, content) pairs for chat-style golden items
    tags: tuple[str, ...] = ()
    context: str | None = None  # source text an answer must stay faithful to (hallucination checks)
    solution: str | None = None  # a worked answer (GSM8K), used for few-shot examples
    metadata: dict[str, Any] = field(default_factory=dict)
    where: str = ""  # file:line of a golden-set item, for errors that point at it

    @property
    def choice_lines(self) -> str:
        return "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(self.choices))
