"""What an eval run says: scores with CIs per target and suite, paired comparisons, slices, disagreements.

Items are judged by their final attempt. An item whose request failed for good,
or whose reply could not be scored, is *unscored*: counted and reported, never
a silent fail. Comparisons use only items both targets have scored.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assay.records import Annotations, Record
from assay.stats import Comparison, Distribution, compare_pair, holm_adjusted, mean_ci, wilson

__all__ = ["EvalSummary", "Score", "Slice", "summarize_eval"]


@dataclass
class Score:
    """One target on one suite."""

    n: int  # items planned and finished
    scored: int
    unscored: int
    score: float | None
    ci95: tuple[float, float] | None
    graded: bool
    cost_usd: float | None  # None: no price known for the target
    latency: Distribution  # E2E of the replies (cache hits have none)
    hallucinated: int = 0
    checked: int = 0  # items the hallucination check could judge
    cached: int = 0
    judge_calls: int = 0  # LLM-judge attempts spent on this target's replies
    judge_cost_usd: float | None = 0.0  # None: no price known for the judge
    judge_latency: Distribution | None = None

    @property
    def latency_p50_ms(self) -> float | None:
        return self.latency.p["p50"]

    @property
    def hallucination_rate(self) -> float | None:
        return self.hallucinated / self.checked if self.checked else None

    def to_json(self) -> dict[str, Any]:
        h = self.hallucination_rate
        return {
            "n": self.n,
            "score": self.score,
            "ci95": None if self.ci95 is None else list(self.ci95),
            "unscored": self.unscored,
            "cost_usd": self.cost_usd,
            "latency_ms": self.latency.to_json(),
            "hallucination_rate": h,
            "hallucination_ci95": None if h is None else list(wilson(self.hallucinated, self.checked)),
            "cached": self.cached,
            "judge": {
                "calls": self.judge_calls,
                "cost_usd": self.judge_cost_usd,
                "latency_ms": (self.judge_latency or Distribution()).to_json(),
            }
            if self.judge_calls
            else None,
        }


@dataclass
class Slice:
    suite: str
    tag: str
    scores: dict[str, tuple[int, float | None, tuple[float, float] | None]]  # target -> (n, score, ci)


@dataclass
class Disagreement:
    suite: str
    item_id: str
    prompt: str
    answers: dict[str, tuple[bool | None, str]]  # target -> (passed, reply excerpt)


@dataclass
class EvalSummary:
    run_id: str
    targets: list[str]
    suites: list[str]
    scores: dict[str, dict[str, Score]]  # target -> suite -> score
    comparisons: list[Comparison]
    slices: list[Slice] = field(default_factory=list)
    disagreements: list[Disagreement] = field(default_factory=list)
    # (target, suite) -> item id -> score: what paired resampling and the decision's Pugh tests read
    outcomes: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    item_tags: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)  # (suite, item) -> its tags

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "targets": {t: {s: sc.to_json() for s, sc in by_suite.items()} for t, by_suite in self.scores.items()},
            "comparisons": [c.to_json() for c in self.comparisons],
            "slices": [
                {
                    "suite": s.suite,
                    "tag": s.tag,
                    "targets": {
                        t: {"n": n, "score": v, "ci95": None if ci is None else list(ci)}
                        for t, (n, v, ci) in s.scores.items()
                    },
                }
                for s in self.slices
            ],
            "disagreements": [
                {
                    "suite": d.suite,
                    "item_id": d.item_id,
                    "answers": {t: {"passed": p, "reply": text} for t, (p, text) in d.answers.items()},
                }
                for d in self.disagreements
            ],
        }


def _score_of(values: list[float], graded: bool) -> tuple[float | None, tuple[float, float] | None]:
    if not values:
        return None, None
    if graded:
        return float(np.mean(values)), mean_ci(values)
    k = sum(1 for v in values if v >= 1.0)
    return k / len(values), wilson(k, len(values))


def summarize_eval(
    run_id: str,
    rows: Iterable[tuple[Record, Annotations]],
    graded: dict[str, bool],
    order: list[str] | None = None,
    max_disagreements: int = 20,
) -> EvalSummary:
    """`rows`: every Record of the run with its annotations; `graded[suite]`: continuous scores."""
    finals: dict[tuple[str, str, str], tuple[Record, Annotations]] = {}
    cost: dict[tuple[str, str], float | None] = {}
    judge_calls: dict[tuple[str, str], list[Record]] = {}  # (judged target, suite) -> the judge's attempts
    verdicts: dict[tuple[str, str, str], bool] = {}  # (target, suite, item) -> the judge's decided verdict
    tags: dict[tuple[str, str], tuple[str, ...]] = {}
    for r, a in rows:
        if r.error_class == "cancelled":
            continue
        if r.judged_target:
            judge_calls.setdefault((r.judged_target, r.suite), []).append(r)
            if a.verdict is not None and a.verdict.verdict is not None:
                verdicts[(r.judged_target, r.suite, r.item_id)] = a.verdict.verdict == "correct"
            continue
        so_far = cost.get((r.target, r.suite))
        cost[(r.target, r.suite)] = so_far if r.cost_usd is None else (so_far or 0.0) + r.cost_usd
        if a.tags:
            tags[(r.suite, r.item_id)] = a.tags
        if r.final:
            finals[(r.target, r.suite, r.item_id)] = (r, a)
    targets = list(dict.fromkeys(order or [])) + sorted({k[0] for k in finals} - set(order or []))
    targets = [t for t in targets if any(k[0] == t for k in finals)]
    suites = sorted({k[1] for k in finals} & set(graded))
    values: dict[tuple[str, str], dict[str, float]] = {}  # (target, suite) -> item -> value
    scores: dict[str, dict[str, Score]] = {t: {} for t in targets}
    for t, s in itertools.product(targets, suites):
        recs = [(r, a) for (tt, ss, _), (r, a) in finals.items() if tt == t and ss == s]
        vals: dict[str, float] = {}
        for r, a in recs:
            if not r.ok:
                continue
            judged = verdicts.get((t, s, r.item_id))
            if judged is not None:  # a judged reply's score is the judge's verdict
                vals[r.item_id] = 1.0 if judged else 0.0
            elif a.score is not None and a.score.value is not None:
                vals[r.item_id] = float(a.score.value)
        values[(t, s)] = vals
        score, ci = _score_of(list(vals.values()), graded[s])
        checked = [a.score for _, a in recs if a.score is not None and a.score.hallucinated is not None]
        judging = judge_calls.get((t, s), [])
        scores[t][s] = Score(
            n=len(recs),
            scored=len(vals),
            unscored=len(recs) - len(vals),
            score=score,
            ci95=ci,
            graded=graded[s],
            cost_usd=cost.get((t, s)),
            latency=Distribution(x for r, _ in recs if r.ok and (x := r.e2e_ms) is not None),
            hallucinated=sum(1 for c in checked if c.hallucinated),
            checked=len(checked),
            cached=sum(1 for r, _ in recs if r.cached),
            judge_calls=len(judging),
            judge_cost_usd=sum(r.cost_usd for r in judging if r.cost_usd is not None)
            if any(r.cost_usd is not None for r in judging)
            else None,
            judge_latency=Distribution(x for r in judging if r.ok and (x := r.e2e_ms) is not None),
        )
    comparisons = _compare(targets, suites, values, graded)
    slices = _slices(targets, suites, values, graded, tags)
    disagreements = _disagreements(targets, suites, values, {k: r for k, (r, _) in finals.items()}, max_disagreements)
    return EvalSummary(run_id, targets, suites, scores, comparisons, slices, disagreements, values, tags)


def _compare(
    targets: list[str], suites: list[str], values: dict[tuple[str, str], dict[str, float]], graded: dict[str, bool]
) -> list[Comparison]:
    out: list[Comparison] = []
    for s in suites:
        pairs = [compare_pair(s, a, b, values[(a, s)], values[(b, s)], graded[s])
                 for a, b in itertools.combinations(targets, 2)]  # fmt: skip
        out += holm_adjusted([c for c in pairs if c is not None])  # Holm across the pairs of one suite
    return out


def _slices(
    targets: list[str],
    suites: list[str],
    values: dict[tuple[str, str], dict[str, float]],
    graded: dict[str, bool],
    tags: dict[tuple[str, str], tuple[str, ...]],
) -> list[Slice]:
    out = []
    for s in suites:
        by_tag: dict[str, set[str]] = {}
        for (suite, item), item_tags in tags.items():
            if suite == s:
                for tag in item_tags:
                    by_tag.setdefault(tag, set()).add(item)
        if len(by_tag) < 2:
            continue  # one tag (or none) says nothing the suite score does not
        for tag in sorted(by_tag):
            row = {}
            for t in targets:
                vals = [v for i, v in values[(t, s)].items() if i in by_tag[tag]]
                score, ci = _score_of(vals, graded[s])
                row[t] = (len(vals), score, ci)
            out.append(Slice(s, tag, row))
    return out


def _disagreements(
    targets: list[str],
    suites: list[str],
    values: dict[tuple[str, str], dict[str, float]],
    finals: dict[tuple[str, str, str], Record],
    limit: int,
) -> list[Disagreement]:
    out: list[Disagreement] = []
    for s in suites:
        items = sorted(set().union(*(values[(t, s)].keys() for t in targets)) if targets else set())
        for i in items:
            passed = {t: (values[(t, s)][i] >= 1.0 if i in values[(t, s)] else None) for t in targets}
            decided = {p for p in passed.values() if p is not None}
            if len(decided) < 2:
                continue
            answers = {}
            prompt = ""
            for t in targets:
                r = finals.get((t, s, i))
                text = (r.response_text or r.error_message or "") if r else ""
                answers[t] = (passed[t], text[:160])
                prompt = prompt or (r.prompt or "" if r else "")
            out.append(Disagreement(s, i, prompt[-240:], answers))
            if len(out) >= limit:
                return out
    return out
