"""The evidence a decision reads: every figure of the given runs per target, with how it was measured.

Each figure is a `Measure`: its value, its 95% interval and how it may be resampled:

- `items`: a rate or mean over items that every target answered (eval scores, attack
  success rates, over-refusal). Resampled by a Poisson bootstrap whose item weights are
  shared across targets, so differences between targets are paired, as their tests are.
- `ci`: a figure with an interval but no shared items (latency percentiles, success rate).
  Success rates draw from a Beta (Jeffreys) posterior; others from a split normal through
  the interval's ends.
- `point`: a sampled figure with too few samples for an honest interval (a p99 of 50
  requests): used as it is, never called significantly different.
- `exact`: a figure without sampling error (a price-based cost, vendor evidence, counts).

The safety score is resampled from its categories' item draws, so its interval is the
score's own, not a guess.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assay.config import ProjectConfig
from assay.config.decision import (
    COST_FIELDS,
    EVAL_FIELDS,
    LATENCY_FIELDS,
    QUANTILE_FIELDS,
    REDTEAM_CATEGORY_FIELDS,
    TRAFFIC_FIELDS,
    TRAFFIC_KINDS,
    VENDOR_FIELDS,
    metric_unit,
)
from assay.config.loading import read_text
from assay.errors import ConfigError
from assay.stats import TargetSummary, wilson
from assay.stats.distribution import Distribution

__all__ = ["Caveat", "Evidence", "Measure", "resample"]

Z95 = 1.959963984540054


@dataclass
class Measure:
    """One figure of one target."""

    value: float | None  # the scored number: lists score their length, booleans 1/0, text 1 when documented
    raw: Any = None  # the evidence as given, for gates on lists, text and booleans
    low: float | None = None
    high: float | None = None
    n: int | None = None  # samples behind it (items, attacks, requests)
    source: str = "exact"  # items | ci | point (sampled, too few for an interval) | exact
    group: str = ""  # the kind of run whose samples it rests on, for "how many more samples"
    family: str | None = None  # items: the shared item set that pairs it with the other targets
    items: dict[str, float] | None = None
    counts: tuple[int, int] | None = None  # (successes, n): a rate drawn from its Beta posterior
    parts: list[tuple[str, float]] | None = None  # safety score: (family, severity) of each attack category
    penalty: str | None = None  # safety score: the over-refusal family

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n, "source": self.source}


@dataclass(frozen=True)
class Caveat:
    """Something a section of the page says against a target that no gate checked: a safety limit over,
    an SLO missed, a cost constraint broken."""

    target: str
    section: str  # safety | slo | cost
    what: str  # the category or bound
    value: float
    limit: float
    unit: str

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "section": self.section,
            "what": self.what,
            "value": self.value,
            "limit": self.limit,
            "unit": self.unit,
        }


@dataclass
class Evidence:
    """Every figure the runs hold, per metric and target, and the paired tests already computed on them."""

    targets: list[str]
    metrics: dict[str, dict[str, Measure]] = field(default_factory=dict)  # metric -> target -> measure
    runs: dict[str, str] = field(default_factory=dict)  # kind -> run id
    tests: dict[tuple[str, str, str], float] = field(default_factory=dict)  # (metric, a, b) -> Holm p
    caveats: list[Caveat] = field(default_factory=list)
    families: dict[str, list[str]] = field(default_factory=dict)  # family -> its items, in a fixed order

    def get(self, metric: str, target: str) -> Measure | None:
        return self.metrics.get(metric, {}).get(target)

    def put(self, metric: str, target: str, m: Measure) -> None:
        self.metrics.setdefault(metric, {})[target] = m
        if m.items is not None and m.family is not None:
            known = self.families.setdefault(m.family, [])
            seen = set(known)
            known.extend(i for i in m.items if i not in seen)

    def add_target(self, name: str) -> None:
        if name not in self.targets:
            self.targets.append(name)

    def merge(self, other: Evidence) -> None:
        for name in other.targets:
            self.add_target(name)
        for metric, by_target in other.metrics.items():
            for t, m in by_target.items():
                self.put(metric, t, m)
        self.runs.update(other.runs)
        self.tests.update(other.tests)
        self.caveats += other.caveats

    # --- readers of each kind of run ---------------------------------------------------------------

    def add_traffic(self, kind: str, run_id: str, summaries: dict[str, TargetSummary], config: ProjectConfig) -> None:
        """A probe, load or gateway run: the per-target summary's figures."""
        self.runs[kind] = run_id
        for t, s in summaries.items():
            self.add_target(t)
            js = s.to_json()
            for name in TRAFFIC_FIELDS:
                value = _path(js, name)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    m = Measure(float(value), n=s.requests, group=kind)
                    if name == "success_rate":
                        m = rate_measure(s.succeeded, s.requests, kind)
                    self.put(f"{kind}.{name}", t, m)
            for lat in LATENCY_FIELDS:
                d = s.e2e if lat == "service_time_ms" else s.latency.get(lat)
                if d is not None:
                    for q, m in _distribution_measures(d, kind):
                        self.put(f"{kind}.{lat}.{q}", t, m)
            self.caveats += _slo_caveats(t, s, config)

    def add_eval(self, run_id: str, summary: Any) -> None:
        """An eval run (suites/quality_summary.EvalSummary): scores over shared items, hallucination, cost, latency."""
        self.runs["eval"] = run_id
        for t, by_suite in summary.scores.items():
            self.add_target(t)
            for suite, sc in by_suite.items():
                prefix = f"eval.{suite}"
                items = summary.outcomes.get((t, suite))
                if sc.score is not None:
                    lo, hi = sc.ci95 if sc.ci95 else (None, None)
                    self.put(
                        f"{prefix}.score",
                        t,
                        Measure(
                            sc.score,
                            low=lo,
                            high=hi,
                            n=sc.scored,
                            source="items",
                            group="eval",
                            family=f"eval/{suite}",
                            items=items,
                        ),
                    )
                if sc.checked:
                    self.put(f"{prefix}.hallucination_rate", t, rate_measure(sc.hallucinated, sc.checked, "eval"))
                if sc.cost_usd is not None:
                    self.put(f"{prefix}.cost_usd", t, Measure(sc.cost_usd, n=sc.n, group="eval"))
                for q, m in _distribution_measures(sc.latency, "eval"):
                    self.put(f"{prefix}.latency_ms.{q}", t, m)
        for c in summary.comparisons:
            self.tests[(f"eval.{c.suite}.score", c.a, c.b)] = self.tests[(f"eval.{c.suite}.score", c.b, c.a)] = c.p_holm

    def add_redteam(self, run_id: str, summary: Any) -> None:
        """A red-team run (suites/safety_summary.SafetySummary): attack success per category, over-refusal, the
        safety score, breaches of the configured limits."""
        self.runs["redteam"] = run_id
        for t in summary.targets:
            self.add_target(t)
            attacks: list[tuple[str, float]] = []
            for cat, st in summary.stats[t].items():
                family = f"redteam/{cat}"
                if st.scored:
                    lo, hi = st.ci95 or (None, None)
                    items = summary.outcomes.get((t, cat))
                    self.put(
                        f"redteam.{cat}.attack_success_rate",
                        t,
                        Measure(
                            st.attack_success_rate,
                            low=lo,
                            high=hi,
                            n=st.scored,
                            source="items",
                            group="redteam",
                            family=family,
                            items=items,
                        ),
                    )
                if st.refusal_scored:
                    self.put(f"redteam.{cat}.refusal_rate", t, rate_measure(st.refusals, st.refusal_scored, "redteam"))
            for risk in summary.risks[t]:
                if summary.kinds.get(risk.category) != "over_refusal" and risk.likelihood is not None:
                    attacks.append((f"redteam/{risk.category}", float(risk.severity)))
                if risk.breach and risk.likelihood is not None:
                    self.caveats.append(Caveat(t, "safety", risk.category, risk.likelihood, risk.max_rate, "share"))
            k, n = summary.over_refusal.get(t, (0, 0))
            over = summary.outcomes.get((t, "over_refusal"))
            if n:
                lo, hi = wilson(k, n)
                self.put(
                    "redteam.over_refusal.rate",
                    t,
                    Measure(
                        k / n,
                        low=lo,
                        high=hi,
                        n=n,
                        source="items",
                        group="redteam",
                        family="redteam/over_refusal",
                        items=over,
                    ),
                )
            self.put("redteam.breaches", t, Measure(float(sum(r.breach for r in summary.risks[t])), group="redteam"))
            score = summary.scores.get(t)
            if score is not None:
                m = Measure(
                    score,
                    n=sum(summary.stats[t][c].scored for c in summary.stats[t]),
                    source="items",
                    group="redteam",
                    parts=attacks,
                    penalty="redteam/over_refusal" if n else None,
                )
                self.put("redteam.safety_score", t, m)
        for c in summary.comparisons:
            key = f"redteam.{c.suite}.attack_success_rate"
            self.tests[(key, c.a, c.b)] = self.tests[(key, c.b, c.a)] = c.p_holm
        # the score's interval is its own resampled one
        draws = resample(self, ["redteam.safety_score"], summary.targets, 2000, np.random.default_rng(0))
        for i, t in enumerate(summary.targets):
            score_m = self.get("redteam.safety_score", t)
            if score_m is not None:
                score_m.low, score_m.high = (
                    float(x) for x in np.quantile(draws["redteam.safety_score"][:, i], [0.025, 0.975])
                )

    def add_cost(self, costs: dict[str, dict[str, Any]]) -> None:
        """The cost analysis (economics.cost_report's per-target JSON): prices times the workload, exact."""
        for t, js in costs.items():
            self.add_target(t)
            for name in COST_FIELDS:
                if js.get(name) is not None:
                    self.put(f"cost.{name}", t, Measure(float(js[name]), group="cost"))
            for key, check in js.get("checks", {}).items():
                if check.get("ok") is False and key != "p95_latency_ms":
                    unit = "usd"
                    self.caveats.append(Caveat(t, "cost", key, check["value"], check["limit"], unit))

    def add_vendor(self, config: ProjectConfig) -> None:
        """What each vendor documents (safety.evidence): must-haves or scored, never sampled."""
        for t in config.targets:
            ev = config.safety.evidence.get(t.name)
            self.add_target(t.name)
            for name, shape in VENDOR_FIELDS.items():
                raw = getattr(ev, name, None) if ev is not None else None
                if shape == "list":
                    value: float | None = float(len(raw or []))
                elif shape == "bool":
                    value = None if raw is None else float(raw)
                elif shape == "text":
                    value = float(bool(raw))
                else:
                    value = None if raw is None else float(raw)
                self.put(f"vendor.{name}", t.name, Measure(value, raw=raw, group="vendor"))

    @classmethod
    def from_table(cls, path: Path, names: dict[str, str]) -> Evidence:
        """A long table `target,criterion,value[,low,high]` of evidence gathered elsewhere; `criterion` is a
        criterion's name (mapped through `names` to its metric) or a metric. Bad rows: file:line: what."""
        text = read_text(path, "table")
        rows = list(csv.reader(text.splitlines()))
        if not rows:
            raise ConfigError(f"{path}: the table is empty; expected a header target,criterion,value[,low,high]")
        header = [h.strip().lower() for h in rows[0]]
        need = ["target", "criterion", "value"]
        if any(h not in header for h in need) or any(h not in (*need, "low", "high") for h in header):
            raise ConfigError(
                f"{path}:1: the header must be target,criterion,value with optional low,high (got {','.join(rows[0])})"
            )
        col = {h: i for i, h in enumerate(header)}
        ev = cls(targets=[])
        ev.runs["table"] = str(path)
        seen: dict[tuple[str, str], int] = {}
        for line, row in enumerate(rows[1:], start=2):
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise ConfigError(f"{path}:{line}: {len(row)} columns, the header has {len(header)}")
            cell = {h: row[i].strip() for h, i in col.items()}
            metric = names.get(cell["criterion"], cell["criterion"])
            if not cell["target"]:
                raise ConfigError(f"{path}:{line}: target: empty")
            if (cell["target"], metric) in seen:
                raise ConfigError(
                    f"{path}:{line}: {cell['target']} / {cell['criterion']} is already on line "
                    f"{seen[(cell['target'], metric)]}"
                )
            seen[(cell["target"], metric)] = line
            nums: dict[str, float | None] = {}
            for key in ("value", "low", "high"):
                raw = cell.get(key, "")
                if raw == "" and key != "value":
                    nums[key] = None
                    continue
                nums[key] = _number(raw, path, line, key)
            lo, hi, v = nums["low"], nums["high"], nums["value"]
            if (lo is None) != (hi is None):
                raise ConfigError(f"{path}:{line}: give both low and high, or neither")
            if lo is not None and hi is not None and v is not None and not lo <= v <= hi:
                raise ConfigError(f"{path}:{line}: value {v:g} is outside its interval {lo:g}..{hi:g}")
            ev.add_target(cell["target"])
            ev.put(
                metric,
                cell["target"],
                Measure(v, raw=v, low=lo, high=hi, source="exact" if lo is None else "ci", group="table"),
            )
        return ev

    def metric_names(self) -> list[str]:
        return sorted(self.metrics)


def rate_measure(successes: int, n: int, group: str) -> Measure:
    """A rate over independent trials (requests, checks): its Wilson interval, drawn from its Beta posterior."""
    lo, hi = wilson(successes, n)
    return Measure(successes / n, low=lo, high=hi, n=n, source="ci", group=group, counts=(successes, n))


def _number(raw: str, path: Path, line: int, key: str) -> float:
    low = raw.lower()
    if low in ("true", "yes"):
        return 1.0
    if low in ("false", "no"):
        return 0.0
    try:
        v = float(raw)
    except ValueError:
        raise ConfigError(f"{path}:{line}: {key}: expected a number (or true/false), got {raw!r}") from None
    if not math.isfinite(v):
        raise ConfigError(f"{path}:{line}: {key}: expected a finite number, got {raw!r}")
    return v


def _path(js: dict[str, Any], dotted: str) -> Any:
    node: Any = js
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _distribution_measures(d: Distribution, group: str) -> Iterable[tuple[str, Measure]]:
    """Percentiles with their bootstrap (or order-statistic) intervals, and the mean with its normal one."""
    if not d.n:
        return
    ci = d.ci95
    for q, value in d.p.items():
        if value is None:
            continue
        bounds = ci.get(q)
        if bounds:
            yield q, Measure(value, low=bounds[0], high=bounds[1], n=d.n, source="ci", group=group)
        else:
            # too few samples for an honest interval (a p95 of 73 requests): a point, not an exact figure
            yield q, Measure(value, n=d.n, source="point", group=group)
    mean, sd = d.mean, d.stdev
    if mean is not None:
        if sd is not None and d.n > 1:
            half = Z95 * sd / math.sqrt(d.n)
            yield "mean", Measure(mean, low=mean - half, high=mean + half, n=d.n, source="ci", group=group)
        else:
            yield "mean", Measure(mean, n=d.n, group=group)


def _slo_caveats(target: str, s: TargetSummary, config: ProjectConfig) -> list[Caveat]:
    """The scorecard's SLO checks (the percentile it names, of successful requests) that fail."""
    out = []
    slo = config.slo
    for key, bound in slo.bounds.items():
        d = {"ttft_ms": s.ttft, "e2e_ms": s.e2e, "tpot_ms": s.tpot}[key]
        value = d.p[slo.percentile]
        if value is not None and value > bound:
            out.append(Caveat(target, "slo", f"{key.removesuffix('_ms')} {slo.percentile}", value, bound, "ms"))
    if slo.success_rate is not None and s.success_rate is not None and s.success_rate < slo.success_rate:
        out.append(Caveat(target, "slo", "success rate", s.success_rate, slo.success_rate, "share"))
    return out


# --- resampling -------------------------------------------------------------------------------------


def resample(
    ev: Evidence, metrics: list[str], targets: list[str], draws: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """`draws` joint resamples of each metric for each target: metric -> array (draws, targets).

    Item-based figures share one set of Poisson item weights per item family, so the same
    items count the same in every target's draw (paired). A missing figure draws NaN.
    """
    weights: dict[str, np.ndarray] = {}

    def family_weights(family: str) -> np.ndarray:
        if family not in weights:
            weights[family] = rng.poisson(1.0, size=(draws, len(ev.families.get(family, [])))).astype(np.float64)
        return weights[family]

    def item_draws(family: str, items: dict[str, float] | None, point: float | None) -> np.ndarray:
        if not items:
            return np.full(draws, np.nan if point is None else point)
        order = {k: i for i, k in enumerate(ev.families.get(family, []))}
        idx = np.fromiter((order[k] for k in items), dtype=np.int64, count=len(items))
        vals = np.fromiter(items.values(), dtype=np.float64, count=len(items))
        w = family_weights(family)[:, idx]
        total = w.sum(axis=1)
        mean = np.divide(w @ vals, total, out=np.full(draws, float(np.mean(vals))), where=total > 0)
        return np.asarray(mean)

    def family_of(target: str, family: str) -> dict[str, float] | None:
        metric = (
            "redteam.over_refusal.rate"
            if family == "redteam/over_refusal"
            else f"redteam.{family.split('/', 1)[1]}.attack_success_rate"
        )
        m = ev.get(metric, target)
        return m.items if m is not None else None

    out: dict[str, np.ndarray] = {}
    for metric in metrics:
        cols = []
        for t in targets:
            m = ev.get(metric, t)
            if m is None or m.value is None:
                cols.append(np.full(draws, np.nan))
            elif m.parts is not None:  # the safety score, from its categories' draws
                sev = np.array([s for _, s in m.parts])
                rates = (
                    np.stack([item_draws(f, family_of(t, f), None) for f, _ in m.parts], axis=1)
                    if m.parts
                    else np.zeros((draws, 0))
                )
                weighted = (rates * sev).sum(axis=1) / sev.sum() if m.parts else np.zeros(draws)
                over = item_draws(m.penalty, family_of(t, m.penalty), 0.0) if m.penalty else np.zeros(draws)
                cols.append(100 * (1 - weighted) * (1 - over))
            elif m.source == "items" and m.family is not None:
                cols.append(item_draws(m.family, m.items, m.value))
            elif m.counts is not None:
                k, n = m.counts
                cols.append(rng.beta(k + 0.5, n - k + 0.5, size=draws))
            elif m.low is not None and m.high is not None:
                z = rng.standard_normal(draws)
                up, down = (m.high - m.value) / Z95, (m.value - m.low) / Z95
                cols.append(m.value + np.where(z > 0, z * up, z * down))
            else:
                cols.append(np.full(draws, m.value))
        out[metric] = np.stack(cols, axis=1) if cols else np.zeros((draws, 0))
    return out


def unit_of(metric: str) -> str:
    """A table's metric may be a free name: its unit is then a plain number."""
    try:
        return metric_unit(metric)
    except (IndexError, ValueError):
        return "number"


# Figures a traffic run can hold, for `--list-metrics` without runs.
def metric_catalogue(config: ProjectConfig | None) -> list[str]:
    """Every metric the grammar allows, with the config's suite names filled in."""
    names = [f"{k}.{f}" for k in TRAFFIC_KINDS for f in TRAFFIC_FIELDS]
    names += [f"{k}.{lat}.{q}" for k in TRAFFIC_KINDS for lat in LATENCY_FIELDS for q in QUANTILE_FIELDS]
    suites = [s.name for s in config.quality_suites] if config else ["SUITE"]
    names += [f"eval.{s}.{f}" for s in suites for f in EVAL_FIELDS]
    names += ["redteam.safety_score", "redteam.breaches", "redteam.over_refusal.rate"]
    names += [f"redteam.CATEGORY.{f}" for f in REDTEAM_CATEGORY_FIELDS]
    names += [f"cost.{f}" for f in COST_FIELDS] + [f"vendor.{f}" for f in VENDOR_FIELDS]
    return names
