"""LLM-as-judge: another target grades each reply against the reference with a rubric.

The judge must answer with a JSON verdict. A verdict that cannot be parsed is
asked again (up to `retries` times); a judge that still cannot decide leaves the
item *unscored*, never failed. Judge calls are Records of their own (the judge's
target, the suite and item judged, and `judged_target`), so their cost and latency
are counted; the re-ask loop is the shared judge phase (runner/judge.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson

from assay.datasets import EvalItem
from assay.model import ChatRequest, Message

__all__ = ["json_objects", "judge_request", "parse_verdict"]

# The simulator's judge behaviour reads these section markers (simulator/answers.py); keep them in step.
PROMPT = """You are grading a reply to a question against a reference answer.

Rubric: {rubric}

### Question
{question}

### Reference answer
{reference}

### Reply to grade
{reply}

### Your verdict
Answer with one JSON object and nothing else: {{"verdict": "correct" or "incorrect", "reason": "<one sentence>"}}"""


def judge_request(item: EvalItem, reply: str, rubric: str, max_tokens: int) -> tuple[ChatRequest, str]:
    text = PROMPT.format(rubric=rubric, question=item.question, reference=item.expected, reply=reply.strip())
    return ChatRequest([Message("user", text)], max_tokens=max_tokens, temperature=0.0), text


_JSON_OBJECT = re.compile(r"\{.*?\}", re.S)


def json_objects(text: str) -> Iterator[dict[str, Any]]:
    """The flat JSON objects in a judge's reply, in order (judges wrap them in prose or code fences)."""
    for m in _JSON_OBJECT.finditer(text):
        try:
            doc = orjson.loads(m.group(0))
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict):
            yield doc


def parse_verdict(text: str) -> bool | None:
    """True (correct), False (incorrect), or None when the reply holds no clear verdict."""
    for doc in json_objects(text):
        v = doc.get("verdict")
        if isinstance(v, str) and v.strip().lower() in ("correct", "incorrect"):
            return v.strip().lower() == "correct"
    said = re.search(r"verdict\W+(correct|incorrect)\b", text, re.I)
    return None if said is None else said.group(1).lower() == "correct"
