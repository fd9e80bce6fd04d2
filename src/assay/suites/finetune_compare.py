"""`assay finetune compare`: does the tuned model beat its base, where did it get worse, and does it pay?

Both targets answer the same items of one suite (an ordinary eval run, which
remembers the pair in its options). The comparison is paired: the mean
difference tuned − base with a paired bootstrap interval, the exact McNemar
test on the items they disagree on (pass/fail scorers; a paired bootstrap
p-value otherwise), and the same per tag, Holm-corrected across tags, so a
regression on one slice (catastrophic forgetting) shows even when the total
improves. Cost and latency per request are the run's measured ones, and the
break-even uses them with the training cost (given, or from the `finetune run`
that trained the model: trained tokens x the training price).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from assay.catalog.training import training_price
from assay.config import ProjectConfig
from assay.economics.training import BreakEven, break_even, training_cost
from assay.economics.workload import volume
from assay.errors import ConfigError
from assay.stats.quality import compare_pair, holm, paired_bootstrap
from assay.store import Store
from assay.suites.finetune_job import KIND as FINETUNE_KIND
from assay.suites.quality import summarize_run
from assay.suites.quality_summary import EvalSummary

__all__ = ["FinetuneComparison", "SliceChange", "compare_finetune", "training_usd_of_run"]

ALPHA = 0.05


@dataclass(frozen=True)
class SliceChange:
    """One tag's items: base and tuned scores, the paired difference and its Holm-adjusted p-value."""

    tag: str
    n: int
    base: float
    tuned: float
    diff: float
    p_value: float
    p_holm: float

    @property
    def verdict(self) -> str:
        if self.p_holm >= ALPHA:
            return "unchanged"
        return "improved" if self.diff > 0 else "regressed"

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "verdict": self.verdict}


@dataclass
class FinetuneComparison:
    run_id: str
    suite: str
    base: str
    tuned: str
    n: int  # items both scored
    base_score: float
    tuned_score: float
    diff: float  # tuned − base
    ci95: tuple[float, float]  # paired bootstrap of the difference
    test: str  # mcnemar_exact | paired_bootstrap
    p_value: float
    p_bootstrap: float
    tuned_only: int  # items only the tuned model got right (pass/fail)
    base_only: int
    slices: list[SliceChange] = field(default_factory=list)
    cost_per_request_usd: dict[str, float | None] = field(default_factory=dict)
    latency_ms: dict[str, dict[str, float | None]] = field(default_factory=dict)  # target -> p50/p95
    training_usd: Decimal | None = None
    training_source: str | None = None
    breakeven: BreakEven | None = None

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "suite": self.suite,
            "base": self.base,
            "tuned": self.tuned,
            "n": self.n,
            "base_score": self.base_score,
            "tuned_score": self.tuned_score,
            "diff": self.diff,
            "ci95": list(self.ci95),
            "test": self.test,
            "p_value": self.p_value,
            "p_bootstrap": self.p_bootstrap,
            "significant": self.significant,
            "tuned_only": self.tuned_only,
            "base_only": self.base_only,
            "slices": [s.to_json() for s in self.slices],
            "improved": [s.tag for s in self.slices if s.verdict == "improved"],
            "regressed": [s.tag for s in self.slices if s.verdict == "regressed"],
            "cost_per_request_usd": self.cost_per_request_usd,
            "latency_ms": self.latency_ms,
            "training_usd": None if self.training_usd is None else float(self.training_usd),
            "training_source": self.training_source,
            "break_even": None if self.breakeven is None else self.breakeven.to_json(),
        }


def training_usd_of_run(store: Store, run_id: str) -> tuple[Decimal | None, str]:
    """What a `finetune run` trained (its job's trained tokens) at the base model's training price."""
    info = store.run(run_id, kind=FINETUNE_KIND)
    if info.kind != FINETUNE_KIND:
        raise ConfigError(f"run {info.run_id} is of kind {info.kind}, not a finetune run (`assay runs` lists them)")
    tokens = None
    for r in store.records(info.run_id):
        if r.ok and r.response_text and r.item_id.startswith("fine_tuning.jobs.retrieve"):
            tokens = orjson.loads(r.response_text).get("trained_tokens") or tokens
    if tokens is None:
        raise ConfigError(f"finetune run {info.run_id} has no trained tokens: its job did not finish (resume it)")
    config = ProjectConfig.model_validate(info.config)
    target = config.target(info.params["target"])
    model = info.params.get("model") or target.model
    if target.pricing is not None and target.pricing.training_per_mtok is not None:
        rate, said = Decimal(repr(target.pricing.training_per_mtok)), f"{target.name}'s pricing.training_per_mtok"
    elif (known := training_price(model)) is not None:
        rate, said = known.per_mtok, f"{known.model}'s list price"
    else:
        return None, f"run {info.run_id}: {tokens:,} trained tokens, no training price known for {model}"
    return training_cost(
        int(tokens), rate
    ), f"run {info.run_id}: {tokens:,} trained tokens at ${rate.normalize()}/M ({said})"


def _pair(summary: EvalSummary, config: ProjectConfig, base: str, tuned: str, suite: str) -> FinetuneComparison:
    for name in (base, tuned):
        if name not in summary.targets:
            raise ConfigError(f"run {summary.run_id} has no replies from {name!r}; it ran {', '.join(summary.targets)}")
    if suite not in summary.suites:
        raise ConfigError(f"run {summary.run_id} has no suite {suite!r}; it ran {', '.join(summary.suites)}")
    graded = summary.scores[base][suite].graded
    xb, xt = summary.outcomes[(base, suite)], summary.outcomes[(tuned, suite)]
    common = sorted(set(xb) & set(xt))
    if not common:
        raise ConfigError(f"run {summary.run_id}: no item of {suite!r} was scored for both {base} and {tuned}")
    pair = compare_pair(suite, tuned, base, xt, xb, graded)
    assert pair is not None
    _, p_boot, ci = paired_bootstrap([xt[i] for i in common], [xb[i] for i in common])
    slices = _slices(summary, suite, base, tuned, graded)
    return FinetuneComparison(
        summary.run_id, suite, base, tuned, pair.n,
        sum(xb[i] for i in common) / len(common), sum(xt[i] for i in common) / len(common),
        pair.diff, ci, pair.test, pair.p_value, p_boot, pair.a_only, pair.b_only, slices,
    )  # fmt: skip


def _slices(summary: EvalSummary, suite: str, base: str, tuned: str, graded: bool) -> list[SliceChange]:
    xb, xt = summary.outcomes[(base, suite)], summary.outcomes[(tuned, suite)]
    by_tag: dict[str, list[str]] = {}
    for (s, item), tags in summary.item_tags.items():
        if s == suite and item in xb and item in xt:
            for tag in tags:
                by_tag.setdefault(tag, []).append(item)
    rows = []
    for tag, items in sorted(by_tag.items()):
        c = compare_pair(tag, tuned, base, {i: xt[i] for i in items}, {i: xb[i] for i in items}, graded)
        if c is not None:
            rows.append((tag, items, c))
    adjusted = holm([c.p_value for _, _, c in rows])
    return [
        SliceChange(tag, len(items), sum(xb[i] for i in items) / len(items), sum(xt[i] for i in items) / len(items),
                    c.diff, c.p_value, p)
        for (tag, items, c), p in zip(rows, adjusted, strict=True)
    ]  # fmt: skip


def compare_finetune(
    store: Store,
    run_id: str,
    base: str,
    tuned: str,
    suite: str,
    *,
    training_usd: float | None = None,
    training_run: str | None = None,
    months: int = 12,
) -> FinetuneComparison:
    """Base against tuned on an eval run's items, with measured cost and latency and, given training, break-even."""
    summary = summarize_run(store, run_id)
    config = ProjectConfig.model_validate(store.run(summary.run_id).config)
    out = _pair(summary, config, base, tuned, suite)
    for name in (base, tuned):
        sc = summary.scores[name][suite]
        out.cost_per_request_usd[name] = None if sc.cost_usd is None or not sc.n else sc.cost_usd / sc.n
        out.latency_ms[name] = {"p50": sc.latency.quantile(0.5), "p95": sc.latency.quantile(0.95)}
    if training_usd is not None:
        out.training_usd, out.training_source = Decimal(repr(training_usd)), "--training-usd"
    elif training_run is not None:
        out.training_usd, out.training_source = training_usd_of_run(store, training_run)
    cb, ct = out.cost_per_request_usd[base], out.cost_per_request_usd[tuned]
    if out.training_usd is not None and cb is not None and ct is not None:
        monthly = volume(config.workload).interactions if config.workload is not None else None
        out.breakeven = break_even(out.training_usd, Decimal(repr(cb)), Decimal(repr(ct)), monthly, months)
    return out
