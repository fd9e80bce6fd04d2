"""Scorers: how a reply is judged against an item's reference answer.

Pass/fail scorers give 1.0 or 0.0; graded ones (token F1, ROUGE-L) a value in [0, 1]
that passes at `threshold`. A scorer that cannot decide returns None (unscored),
which is counted and reported, never folded into the failures.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from assay.config import Problem, ProjectConfig, SuiteConfig
from assay.datasets import LETTERS, EvalItem

__all__ = [
    "BATCH_SCORERS",
    "GRADED",
    "REFERENCE_CHECKS",
    "SCORERS",
    "SCORER_NAMES",
    "Verdict",
    "extract_choice",
    "extract_number",
    "hallucinated",
    "normalize",
    "reference_problems",
    "rouge_l",
    "scorer_problems",
    "token_f1",
]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)
_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")


@dataclass(frozen=True, slots=True)
class Verdict:
    value: float | None  # None: unscored
    passed: bool | None
    extracted: str | None = None  # what the scorer read from the reply (the number, the letter)


def normalize(text: str) -> str:
    """SQuAD-style: lower case, no punctuation, no articles, single spaces."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCT))
    return " ".join(text.split())


def _as_number(text: str) -> float | None:
    try:
        return float(text.replace(",", "").replace("$", "").rstrip("."))
    except ValueError:
        return None


def extract_number(reply: str) -> str | None:
    """GSM8K's convention first (`#### N`), then 'the answer is N', else the last number in the reply."""
    for pattern in (r"####\s*(-?\$?\d[\d,]*(?:\.\d+)?)", r"answer is[:\s]*\$?(-?\d[\d,]*(?:\.\d+)?)"):
        m = re.search(pattern, reply, re.I)
        if m:
            return m.group(1).replace(",", "").replace("$", "")
    found = _NUMBER.findall(reply)
    return found[-1].replace(",", "").replace("$", "").rstrip(".") if found else None


def extract_choice(reply: str, n_choices: int = 4) -> str | None:
    """The letter a reply commits to: 'answer is (B)', 'Answer: B', '(B)', or a reply that starts with 'B'."""
    letters = LETTERS[:n_choices]
    for pattern in (
        rf"answer is\s*\(?([{letters}])\b",
        rf"answer\s*:\s*\(?([{letters}])\b",
        rf"\(([{letters}])\)",
        rf"^\s*([{letters}])(?:[.):\s]|$)",
    ):
        m = re.search(pattern, reply, re.I | re.M)
        if m:
            return m.group(1).upper()
    return None


def token_f1(reply: str, reference: str) -> float:
    a, b = normalize(reply).split(), normalize(reference).split()
    if not a or not b:
        return float(a == b)
    common = sum((Counter(a) & Counter(b)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(b)
    return 2 * precision * recall / (precision + recall)


def rouge_l(reply: str, reference: str) -> float:
    """ROUGE-L F-measure: longest common subsequence of tokens."""
    a, b = normalize(reply).split(), normalize(reference).split()
    if not a or not b:
        return float(a == b)
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


def hallucinated(reply: str, item: EvalItem) -> bool | None:
    """Reference-based check: does the reply assert numbers or names found nowhere in the question,
    the reference answer or the context? None when the item gives nothing to check against."""
    if not item.expected and not item.context:
        return None
    known = normalize(" ".join(filter(None, [item.question, item.expected, item.context, *item.choices])))
    known_tokens = set(known.split())
    claims = {n.replace(",", "").replace("$", "").rstrip(".") for n in _NUMBER.findall(reply)}
    claims |= {w.lower() for w in re.findall(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]{2,}\b", reply)}
    unsupported = [c for c in claims if normalize(c) and normalize(c) not in known_tokens]
    return bool(unsupported)


Scorer = Callable[[EvalItem, str, dict[str, Any]], Verdict]


def _binary(ok: bool, extracted: str | None = None) -> Verdict:
    return Verdict(1.0 if ok else 0.0, ok, extracted)


def _exact(item: EvalItem, reply: str, opts: dict[str, Any]) -> Verdict:
    return _binary(normalize(reply) == normalize(item.expected))


def _contains(item: EvalItem, reply: str, opts: dict[str, Any]) -> Verdict:
    return _binary(normalize(item.expected) in normalize(reply))


def _numeric(item: EvalItem, reply: str, opts: dict[str, Any]) -> Verdict:
    got = extract_number(reply)
    want = _as_number(item.expected)
    if want is None:
        raise ValueError(_not_a_number(item))
    value = _as_number(got) if got is not None else None
    return _binary(value is not None and abs(value - want) <= 1e-6 * max(1.0, abs(want)), got)


def _choice(item: EvalItem, reply: str, opts: dict[str, Any]) -> Verdict:
    got = extract_choice(reply, max(len(item.choices), 4))
    return _binary(got == item.expected.strip().upper(), got)


def _regex(item: EvalItem, reply: str, opts: dict[str, Any]) -> Verdict:
    pattern = opts.get("pattern") or re.escape(item.expected)
    return _binary(re.search(pattern, reply, re.I | re.S) is not None)


def _graded(fn: Callable[[str, str], float]) -> Scorer:
    def score(item: EvalItem, reply: str, opts: dict[str, Any]) -> Verdict:
        v = fn(reply, item.expected)
        return Verdict(v, v >= float(opts.get("threshold", 0.5)))

    return score


def _json(item: EvalItem, reply: str, opts: dict[str, Any]) -> Verdict:
    text = reply.strip()
    if text.startswith("```"):  # a fenced block is how models usually return JSON
        text = text.strip("`").removeprefix("json").strip()
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _binary(False)
    schema = opts.get("schema")
    if schema is None:
        return _binary(True)
    import jsonschema  # only this scorer needs it

    return _binary(jsonschema.Draft202012Validator(schema).is_valid(doc))


def _not_a_number(item: EvalItem) -> str:
    where = f"{item.where}: " if item.where else ""
    return f"{where}item {item.id}: expected answer {item.expected!r} is not a number"


def _numeric_reference(item: EvalItem) -> str | None:
    return _not_a_number(item) if _as_number(item.expected) is None else None


SCORERS: dict[str, Scorer] = {
    "exact": _exact,
    "contains": _contains,
    "numeric": _numeric,
    "choice": _choice,
    "regex": _regex,
    "f1": _graded(token_f1),
    "rouge_l": _graded(rouge_l),
    "json": _json,
}
# Scored after the requests: a batch of embeddings, or another target's verdicts (suites/quality.py).
BATCH_SCORERS: tuple[str, ...] = ("embedding", "judge")
# The registry of names a suite's `scorer:` may take; docs and config checks read it, not a copy.
SCORER_NAMES: tuple[str, ...] = (*SCORERS, *BATCH_SCORERS)
GRADED = frozenset({"f1", "rouge_l", "embedding"})  # values in [0, 1]: bootstrap CIs and paired bootstrap tests
# What a scorer needs of an item's reference answer, checked before any request is sent.
REFERENCE_CHECKS: dict[str, Callable[[EvalItem], str | None]] = {"numeric": _numeric_reference}


def scorer_problems(config: ProjectConfig) -> list[Problem]:
    """Config check: every quality suite names a registered scorer (reported at the `scorer:` line)."""
    known = ", ".join(SCORER_NAMES)
    return [
        (("suites", i, "scorer"), f"unknown scorer {s.scorer!r}; one of {known}")
        for i, s in enumerate(config.suites)
        if isinstance(s, SuiteConfig) and s.scorer not in SCORER_NAMES
    ]


def reference_problems(scorer: str, items: list[EvalItem]) -> list[str]:
    """Items whose reference answer the scorer cannot use, one line each."""
    check = REFERENCE_CHECKS.get(scorer)
    return [p for it in items if check is not None and (p := check(it)) is not None]
