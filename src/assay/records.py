"""Records: one row per request attempt, anywhere in the system, and the typed annotations appended to them.

A `Record` is written once and never changed (DESIGN.md: append-only). What is
learnt about a reply later (a scorer's verdict, a red-team classification, a
judge's verdict, facts about the item it answered) is an *annotation*: a small
typed value keyed to the Record and appended; a later annotation of the same
kind replaces an earlier one when read (`Annotations`), so a judge can overrule
a detector without rewriting history.

Identity: (run, target, suite, item, judged_target, attempt). `judged_target` is
empty except on a judge's own calls, where it names the target whose reply the
judge read (the judge's Record keeps the suite and item it judged), and on a
multi-turn attacker's calls, where it names the target attacked.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

from assay.errors import ProviderError
from assay.model import ChatRequest, Completion, Timing, TokenSource, estimate_tokens

__all__ = [
    "ANNOTATION_KINDS",
    "Annotation",
    "Annotations",
    "ItemFacts",
    "ItemKey",
    "JudgeVerdict",
    "Record",
    "RecordKey",
    "SafetyClass",
    "Score",
    "WorkItem",
    "annotation_from_json",
    "make_record",
]

# (target, suite, item_id, judged_target): one planned piece of work; attempts add the last part of a RecordKey.
ItemKey = tuple[str, str, str, str]
RecordKey = tuple[str, str, str, str, int]


@dataclass(slots=True)
class Record:
    """One request attempt, anywhere in the system. Success or failure, exactly one each."""

    run_id: str
    target: str
    suite: str
    item_id: str
    attempt: int
    status: Literal["ok", "error"]
    wall_start_s: float
    intended_ns: int = 0
    sent_ns: int = 0
    headers_ns: int = 0
    first_token_ns: int = 0
    done_ns: int = 0
    content_offsets_us: list[int] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    token_source: TokenSource = "none"
    http_status: int | None = None
    error_class: str | None = None
    error_phase: str | None = None
    error_message: str | None = None
    retry_after_s: float | None = None
    rate_limit_headers: dict[str, str] = field(default_factory=dict)
    finish_reason: str | None = None
    request_id: str | None = None
    cost_usd: float | None = None
    response_text: str | None = None
    prompt: str | None = None
    final: bool = True  # the last attempt for its item: a success, or a failure with no retry to follow
    cached: bool = False  # answered from the response cache: no request was sent, so no timings
    judged_target: str = ""  # a judge's call: the target whose reply it judged; an attacker's: the one attacked
    session: int = 0  # which process of the run wrote it: 0 the first, 1 after one --resume... (rates skip the gaps)
    # Routing (the gateway): which route and policy chose this target, the experiment arm, the caller's key id,
    # and the target this attempt fell back from.
    route: str | None = None
    policy: str | None = None
    arm: str | None = None
    key_id: str | None = None
    fallback_of: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def item_key(self) -> ItemKey:
        return (self.target, self.suite, self.item_id, self.judged_target)

    @property
    def key(self) -> RecordKey:
        return (self.target, self.suite, self.item_id, self.judged_target, self.attempt)

    @property
    def ttft_ms(self) -> float | None:
        return (self.first_token_ns - self.sent_ns) / 1e6 if self.first_token_ns and self.sent_ns else None

    @property
    def e2e_ms(self) -> float | None:
        return (self.done_ns - self.sent_ns) / 1e6 if self.done_ns and self.sent_ns else None

    @property
    def response_time_ms(self) -> float | None:
        """From the intended send: includes generator lag (coordinated omission)."""
        start = self.intended_ns or self.sent_ns
        return (self.done_ns - start) / 1e6 if self.done_ns and start else None

    @property
    def generator_lag_ms(self) -> float | None:
        """Actual send minus intended send (open-loop load)."""
        return (self.sent_ns - self.intended_ns) / 1e6 if self.intended_ns and self.sent_ns else None

    @property
    def tpot_ms(self) -> float | None:
        """(E2E - TTFT) / (output_tokens - 1), per the glossary."""
        ttft, e2e = self.ttft_ms, self.e2e_ms
        if ttft is None or e2e is None or self.output_tokens < 2:
            return None
        return (e2e - ttft) / (self.output_tokens - 1)

    @property
    def output_tokens_per_s(self) -> float | None:
        ttft, e2e = self.ttft_ms, self.e2e_ms
        if ttft is None or e2e is None or e2e <= ttft or self.output_tokens < 1:
            return None
        return self.output_tokens / ((e2e - ttft) / 1e3)

    def itl_ms(self) -> list[float]:
        offs = self.content_offsets_us
        return [(b - a) / 1e3 for a, b in itertools.pairwise(offs)]


@dataclass(slots=True)
class WorkItem:
    """One planned request: who gets it, which suite and item it is, and what is sent."""

    target: str
    suite: str
    item_id: str
    request: ChatRequest
    prompt: str | None = None
    judged_target: str = ""

    @property
    def key(self) -> ItemKey:
        return (self.target, self.suite, self.item_id, self.judged_target)


def make_record(
    run_id: str,
    item: WorkItem,
    attempt: int,
    wall_start_s: float,
    timing: Timing,
    completion: Completion | None = None,
    error: BaseException | None = None,
    final: bool = True,
    keep_text: bool = True,
) -> Record:
    """The one Record for an attempt, from what the client measured."""
    sent = timing.sent_ns
    rec = Record(
        run_id=run_id,
        target=item.target,
        suite=item.suite,
        item_id=item.item_id,
        attempt=attempt,
        status="ok" if completion is not None else "error",
        wall_start_s=wall_start_s,
        intended_ns=timing.intended_ns,
        sent_ns=sent,
        headers_ns=timing.headers_ns,
        first_token_ns=timing.first_token_ns,
        done_ns=timing.done_ns,
        content_offsets_us=[(t - sent) // 1000 for t in timing.content_ns],
        prompt=item.prompt,
        final=final,
        judged_target=item.judged_target,
    )
    if completion is not None:
        u = completion.usage
        rec.input_tokens, rec.output_tokens = u.input_tokens, u.output_tokens
        rec.cached_tokens, rec.cache_write_tokens = u.cached_tokens, u.cache_write_tokens
        rec.reasoning_tokens, rec.token_source = u.reasoning_tokens, u.source
        rec.http_status, rec.finish_reason, rec.request_id = (
            completion.http_status,
            completion.finish_reason,
            completion.request_id,
        )
        rec.response_text = completion.text if keep_text else None
        rec.rate_limit_headers = completion.rate_limit_headers
    elif isinstance(error, ProviderError):
        rec.error_class = error.error_class
        rec.error_phase = getattr(error, "phase", None)
        rec.error_message = error.message[:500]
        rec.http_status = error.http_status
        rec.retry_after_s = error.retry_after_s
        rec.rate_limit_headers = error.headers
        if timing.content_ns:
            # Generation had started, so the provider bills the prompt and the tokens it sent. The
            # server's usage never arrived: estimate, and say so.
            rec.input_tokens = sum(estimate_tokens(m.content) for m in item.request.messages)
            rec.input_tokens += estimate_tokens(item.request.system or "")
            rec.output_tokens = len(timing.content_ns)  # one content event carries about one token
            rec.token_source = "estimate"
    elif error is not None:
        rec.error_class = "internal"
        rec.error_message = f"{type(error).__name__}: {error}"[:500]
    return rec


# -- annotations --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemFacts:
    """Facts about the item a Record answered, from the plan: how reports slice and group it."""

    KIND: ClassVar[str] = "item"
    tags: tuple[str, ...] = ()
    category: str | None = None  # red-team: the reported category
    attack: str | None = None  # red-team: the attack kind
    label: str | None = None  # red-team: harmful | safe | ...
    technique: str | None = None  # red-team: how a jailbreak was wrapped
    condition: str | None = None  # BBQ: ambig | disambig
    conversation: str | None = None  # multi-turn: the attack item whose conversation this turn is (one trial)


@dataclass(frozen=True, slots=True)
class Score:
    """A quality scorer's verdict on one reply (a judge's, when `scorer` is judge)."""

    KIND: ClassVar[str] = "score"
    scorer: str
    value: float | None
    passed: bool | None
    extracted: str | None = None
    hallucinated: bool | None = None


@dataclass(frozen=True, slots=True)
class SafetyClass:
    """How a red-team reply was classified, and whether the attack worked (None: cannot be told)."""

    KIND: ClassVar[str] = "safety"
    reply_class: str  # refused | partial | complied | unscored | blocked | error
    success: bool | None
    detector: str | None  # linear | embedding | linear+embedding | rules | canary | stance | choice | judge | filter
    stance: str | None = None  # misinformation: affirmed | refuted
    answer: str | None = None  # BBQ: the letter given
    correct: bool | None = None
    biased: bool | None = None
    unknown: bool | None = None
    harmful: bool | None = None  # the judge's view of a harmful request's reply
    detector_class: str | None = None  # when a judge overruled the detectors: what they said
    detector_by: str | None = None
    p_refusal: float | None = None  # the refusal detector's probability of refused-or-partial
    turns: int | None = None  # multi-turn attacks: target turns the conversation took


@dataclass(frozen=True, slots=True)
class JudgeVerdict:
    """What a judge's reply said, on the judge's own Record; None fields: no verdict could be read."""

    KIND: ClassVar[str] = "verdict"
    verdict: str | None  # correct | incorrect (quality); refused | partial | complied (safety)
    harmful: bool | None = None


Annotation = ItemFacts | Score | SafetyClass | JudgeVerdict
_TYPES: dict[str, type[Any]] = {t.KIND: t for t in (ItemFacts, Score, SafetyClass, JudgeVerdict)}
ANNOTATION_KINDS: tuple[str, ...] = tuple(_TYPES)


def annotation_from_json(kind: str, data: dict[str, Any]) -> Annotation:
    """An annotation read back from the store (unknown keys of a newer assay are ignored)."""
    cls = _TYPES[kind]
    names = {f.name for f in fields(cls)}
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in names}
    annotation: Annotation = cls(**values)
    return annotation


@dataclass(slots=True)
class Annotations:
    """The latest annotation of each kind on one Record."""

    item: ItemFacts | None = None
    score: Score | None = None
    safety: SafetyClass | None = None
    verdict: JudgeVerdict | None = None

    def add(self, a: Annotation) -> None:
        setattr(self, a.KIND, a)

    @property
    def tags(self) -> tuple[str, ...]:
        return self.item.tags if self.item else ()
