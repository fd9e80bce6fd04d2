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

from assay.model import Record
from assay.stats import Comparison, holm, mcnemar_exact, mean_ci, paired_bootstrap, wilson
from assay.suites.judge import JUDGE_SUFFIX

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
    cost_usd: float
    latency_p50_ms: float | None
    latency_p90_ms: float | None
    hallucinated: int = 0
    checked: int = 0  # items the hallucination check could judge
    cached: int = 0
    judge_calls: int = 0  # LLM-judge attempts spent on this target's replies
    judge_cost_usd: float = 0.0
    judge_latency_p50_ms: float | None = None

    @property
    def hallucination_rate(self) -> float | None:
        return self.hallucinated / self.checked if self.checked else None

    def to_json(self) -> dict[str, Any]:
        h = self.hallucination_rate
        return {
            "n": self.n,
            "score": None if self.score is None else round(self.score, 6),
            "ci95": None if self.ci95 is None else [round(self.ci95[0], 6), round(self.ci95[1], 6)],
            "unscored": self.unscored,
            "cost_usd": round(self.cost_usd, 8),
            "latency_ms": {
                "p50": None if self.latency_p50_ms is None else round(self.latency_p50_ms, 1),
                "p90": None if self.latency_p90_ms is None else round(self.latency_p90_ms, 1),
            },
            "hallucination_rate": None if h is None else round(h, 6),
            "hallucination_ci95": None if h is None else [round(x, 6) for x in wilson(self.hallucinated, self.checked)],
            "cached": self.cached,
            "judge": {
                "calls": self.judge_calls,
                "cost_usd": round(self.judge_cost_usd, 8),
                "latency_ms": {
                    "p50": None if self.judge_latency_p50_ms is None else round(self.judge_latency_p50_ms, 1)
                },
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
    records: Iterable[Record],
    graded: dict[str, bool],
    tags: dict[tuple[str, str], tuple[str, ...]],
    order: list[str] | None = None,
    max_disagreements: int = 20,
) -> EvalSummary:
    """`graded[suite]`: continuous scores; `tags[(suite, item)]`: the item's tags for slicing."""
    finals: dict[tuple[str, str, str], Record] = {}
    cost: dict[tuple[str, str], float] = {}
    judge_calls: dict[tuple[str, str], list[Record]] = {}  # (judged target, suite) -> the judge's attempts
    verdicts: dict[tuple[str, str, str], bool] = {}  # (target, suite, item) -> the judge's decided verdict
    for r in records:
        if r.error_class == "cancelled":
            continue
        if r.suite.endswith(JUDGE_SUFFIX):
            suite, (target, item) = r.suite.removesuffix(JUDGE_SUFFIX), r.item_id.split("/", 1)
            judge_calls.setdefault((target, suite), []).append(r)
            if r.scores.get("verdict") is not None:
                verdicts[(target, suite, item)] = bool(r.scores["verdict"])
            continue
        cost[(r.target, r.suite)] = cost.get((r.target, r.suite), 0.0) + (r.cost_usd or 0.0)
        if r.final:
            finals[(r.target, r.suite, r.item_id)] = r
    for key, verdict in verdicts.items():  # a judged reply's score is the judge's verdict
        if (rec := finals.get(key)) is not None and rec.ok:
            rec.scores = {**rec.scores, "value": 1.0 if verdict else 0.0, "passed": verdict}
    targets = list(dict.fromkeys(order or [])) + sorted({k[0] for k in finals} - set(order or []))
    targets = [t for t in targets if any(k[0] == t for k in finals)]
    suites = sorted({k[1] for k in finals} & set(graded))
    values: dict[tuple[str, str], dict[str, float]] = {}  # (target, suite) -> item -> value
    scores: dict[str, dict[str, Score]] = {t: {} for t in targets}
    for t, s in itertools.product(targets, suites):
        recs = [r for (tt, ss, _), r in finals.items() if tt == t and ss == s]
        vals = {r.item_id: float(r.scores["value"]) for r in recs if r.ok and r.scores.get("value") is not None}
        values[(t, s)] = vals
        score, ci = _score_of(list(vals.values()), graded[s])
        e2e = [x for r in recs if (x := r.e2e_ms) is not None]
        checked = [r for r in recs if "hallucinated" in r.scores]
        judging = judge_calls.get((t, s), [])
        judge_e2e = [x for r in judging if (x := r.e2e_ms) is not None]
        scores[t][s] = Score(
            n=len(recs),
            scored=len(vals),
            unscored=len(recs) - len(vals),
            score=score,
            ci95=ci,
            graded=graded[s],
            cost_usd=cost.get((t, s), 0.0),
            latency_p50_ms=float(np.percentile(e2e, 50)) if e2e else None,
            latency_p90_ms=float(np.percentile(e2e, 90)) if e2e else None,
            hallucinated=sum(1 for r in checked if r.scores["hallucinated"]),
            checked=len(checked),
            cached=sum(1 for r in recs if r.scores.get("cached")),
            judge_calls=len(judging),
            judge_cost_usd=sum(r.cost_usd or 0.0 for r in judging),
            judge_latency_p50_ms=float(np.percentile(judge_e2e, 50)) if judge_e2e else None,
        )
    comparisons = _compare(targets, suites, values, graded)
    slices = _slices(targets, suites, values, graded, tags)
    disagreements = _disagreements(targets, suites, values, finals, max_disagreements)
    return EvalSummary(run_id, targets, suites, scores, comparisons, slices, disagreements)


def _compare(
    targets: list[str], suites: list[str], values: dict[tuple[str, str], dict[str, float]], graded: dict[str, bool]
) -> list[Comparison]:
    out: list[Comparison] = []
    for s in suites:
        mine: list[Comparison] = []
        for a, b in itertools.combinations(targets, 2):
            va, vb = values[(a, s)], values[(b, s)]
            common = sorted(set(va) & set(vb))
            if not common:
                continue
            xa, xb = [va[i] for i in common], [vb[i] for i in common]
            if graded[s]:
                diff, p, _ = paired_bootstrap(xa, xb)
                mine.append(Comparison(s, a, b, len(common), diff, "paired_bootstrap", p))
            else:
                a_only = sum(1 for x, y in zip(xa, xb, strict=True) if x >= 1.0 > y)
                b_only = sum(1 for x, y in zip(xa, xb, strict=True) if y >= 1.0 > x)
                diff = (sum(xa) - sum(xb)) / len(common)
                p = mcnemar_exact(a_only, b_only)
                mine.append(Comparison(s, a, b, len(common), diff, "mcnemar_exact", p, 1.0, a_only, b_only))
        adjusted = holm([c.p_value for c in mine])  # Holm across the pairs of one suite
        out += [Comparison(**{**c.__dict__, "p_holm": p}) for c, p in zip(mine, adjusted, strict=True)]
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
