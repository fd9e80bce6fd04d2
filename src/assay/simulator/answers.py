"""What simulated models know: they answer known dataset items right with a configured probability.

The simulator finds the item a prompt asks about (the question's text appears in it;
with few-shot examples, the last one wins), then draws right or wrong from an RNG
seeded by (seed, model, item), so a model's answer to an item never changes between
runs, whatever the order or concurrency. A right answer is written the way the
dataset's scorer reads it; a wrong one is plausible (a nearby number, another letter).
"""

from __future__ import annotations

import json
import random
import re
import string
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from assay.datasets import BUILTIN, LETTERS, EvalItem, data_dir, load_items
from assay.datasets.safety import SAFETY_SOURCES
from assay.errors import AssayError
from assay.simulator.profiles import Answers

__all__ = ["JUDGE_MARKER", "AnswerKey", "judge_reply", "load_answer_key"]

_KEY_WORDS = 8
_STRIP = "".join(c for c in string.punctuation if c not in "+*-/=^<>%$")  # keep symbols that change meaning
_PUNCT = str.maketrans(_STRIP, " " * len(_STRIP))


def _norm(text: str) -> str:
    return " ".join(text.lower().translate(_PUNCT).split())


def _key(line: str) -> str:
    words = _norm(line).split()
    if words and words[0] in ("question", "q"):
        words = words[1:]
    return " ".join(words[:_KEY_WORDS])


@dataclass(frozen=True)
class _Entry:
    item: EvalItem
    last_line: str  # normalised: where the question sits in a prompt
    parts: tuple[str, ...]  # normalised question and choices, all of which a matching prompt contains


class AnswerKey:
    """Known items, found by the first words of each line of a prompt."""

    def __init__(self, items: Iterable[EvalItem]) -> None:
        self._by_key: dict[str, list[_Entry]] = {}
        self.size = 0
        for it in items:
            lines = [ln for ln in it.question.splitlines() if ln.strip()]
            if not lines:
                continue
            # Choices are part of the match: some datasets repeat a question with different options.
            entry = _Entry(it, _norm(lines[-1]), tuple(_norm(p) for p in (it.question, *it.choices)))
            self._by_key.setdefault(_key(lines[-1]), []).append(entry)
            self.size += 1

    def find(self, prompt: str) -> EvalItem | None:
        """The known item this prompt asks about; the one placed last when several appear (few-shot)."""
        text = _norm(prompt)
        best: tuple[int, int, EvalItem] | None = None
        for line in prompt.splitlines():
            for entry in self._by_key.get(_key(line), ()):
                pos = text.rfind(entry.last_line)
                if pos < 0 or not all(p in text for p in entry.parts):
                    continue
                rank = (pos, sum(map(len, entry.parts)))  # the last question in the prompt; the fullest match
                if best is None or rank > best[:2]:
                    best = (*rank, entry.item)
        return best[2] if best else None

    @staticmethod
    def accuracy(answers: Answers, item: EvalItem) -> float:
        p = answers.by_dataset.get(item.dataset, answers.accuracy)
        tagged = [answers.by_tag[t] for t in item.tags if t in answers.by_tag]
        return min(tagged) if tagged else p

    def answer(self, answers: Answers, seed: int, model: str, item: EvalItem) -> tuple[str, bool]:
        """The reply text and whether it is right; the same for the same (seed, model, item).

        `model` names whose random draws to use: a tuned model passes its base's (`draws_as`), so the two
        share each item's draw and differ only where their accuracies do.
        """
        rng = random.Random(f"{seed}/{model}/{item.dataset}/{item.id}")
        right = rng.random() < self.accuracy(answers, item)
        return _reply(item, right, rng), right


def _as_int(text: str) -> int | None:
    try:
        return int(float(text.replace(",", "")))
    except ValueError:
        return None


def _reply(item: EvalItem, right: bool, rng: random.Random) -> str:
    if item.choices:
        letters = LETTERS[: len(item.choices)]
        letter = item.expected if right else rng.choice([x for x in letters if x != item.expected])
        return f"Looking at the options, the answer is ({letter})."
    number = _as_int(item.expected) if re.fullmatch(r"-?[\d,]+(\.\d+)?", item.expected.strip()) else None
    if number is not None:
        value = number if right else number + rng.choice([-10, -3, -2, -1, 1, 2, 4, 12])
        if item.dataset == "gsm8k":
            return f"Let me work through this step by step, keeping track of each quantity.\nThe answer is {value}."
        return str(value)
    return item.expected if right else "I am not sure; the text does not say."


def load_answer_key(names: Iterable[str], root: Path | None = None, warn: bool = True) -> AnswerKey:
    """Items of the named datasets that are available offline (bundled, or in the data folder); others skipped,
    with a warning on stderr when `warn` (a profile that names its `knowledge:`; the default list stays quiet,
    and an eval whose replies cannot be scored says so itself)."""
    root = data_dir(root)
    items: list[EvalItem] = []
    for name in names:
        if name == "safety" or name in SAFETY_SOURCES:
            continue  # red-team items: simulator/safety.py knows those
        if root is None and name in BUILTIN and name != "demo-qa":
            # Not downloaded at start: a simulator must come up offline. Say so, or evals silently score 0.
            if warn:
                print(
                    f"simulator: warning: not loading answers for {name!r}: no local copy (set ASSAY_DATA_DIR); "
                    f"its items will be answered with filler text and score 0",
                    file=sys.stderr,
                )
            continue
        try:
            items += load_items(name, root, root or Path("."))
        except AssayError as e:  # a missing dataset only means the simulator does not know it
            print(f"simulator: warning: not loading answers for {name!r}: {e}", file=sys.stderr)
    return AnswerKey(items)


JUDGE_MARKER = "You are grading a reply"  # the prompt of suites/judge.py; keep the section names in step


def prompt_section(prompt: str, name: str) -> str:
    m = re.search(rf"### {name}\n(.*?)(?:\n### |\Z)", prompt, re.S)
    return m.group(1).strip() if m else ""


def judge_reply(answers: Answers, seed: int, model: str, prompt: str, nth: int) -> str:
    """A simulated judge: compares the reply with the reference, errs and rambles at the profile's rates.

    `nth` counts earlier identical prompts, so a re-ask can succeed where the first try rambled.
    """
    rng = random.Random(f"{seed}/{model}/judge/{hash_text(prompt)}/{nth}")
    if rng.random() < answers.judge_unparseable:
        return "This one is hard to call; the reply has merit but also some issues."
    reference, reply = (
        _norm(prompt_section(prompt, "Reference answer")),
        _norm(prompt_section(prompt, "Reply to grade")),
    )
    numbers = _numbers(reference)
    right = bool(reference) and (reference in reply or (bool(numbers) and numbers == _numbers(reply)[-1:]))
    if rng.random() < answers.judge_error:
        right = not right
    verdict = {"verdict": "correct" if right else "incorrect", "reason": "Compared with the reference answer."}
    return json.dumps(verdict)


def _numbers(text: str) -> list[str]:
    return re.findall(r"-?\d+(?:\.\d+)?", text)


def hash_text(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:16]
