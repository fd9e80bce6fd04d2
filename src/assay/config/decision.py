"""The `decision:` section: criteria over measured metrics, their weights, must-haves and the methods' settings.

    decision:
      criteria:
        - {name: quality, metric: eval.math.score, weight: 0.35, direction: max}
        - {name: latency, metric: probe.ttft_ms.p95, weight: 0.2, direction: min, must: {max: 2000}}
        - {name: certified, metric: vendor.certifications, weight: 0, must: {includes: [SOC 2 Type II]}}
      normalize: minmax          # minmax | vector | target
      datum: meridian            # the Pugh baseline

A metric is `KIND.FIELD`: a figure of the one per-target summary of a run of that kind
(probe, load, gateway), of an eval or red-team run, of the cost analysis, or of the vendor
evidence the config documents. `METRICS` below is the grammar; which figures a given set
of runs holds is checked when `assay decide` reads them (`assay decide --list-metrics`).
Weights need not sum to 1: they are divided by their sum.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from assay.model import StrictModel

__all__ = [
    "LATENCY_FIELDS",
    "METRIC_KINDS",
    "NORMALIZATIONS",
    "Criterion",
    "DecisionSettings",
    "Must",
    "metric_problem",
    "metric_unit",
]

NORMALIZATIONS = ("minmax", "vector", "target")
TRAFFIC_KINDS = ("probe", "load", "gateway")
METRIC_KINDS = (*TRAFFIC_KINDS, "eval", "redteam", "cost", "vendor")
QUANTILE_FIELDS = ("p50", "p90", "p95", "p99", "mean")
LATENCY_FIELDS = (
    "ttft_ms",
    "tpot_ms",
    "itl_ms",
    "e2e_ms",
    "response_time_ms",
    "service_time_ms",
    "output_tokens_per_s",
)
# Scalar figures of the per-target traffic summary (stats/summary.py), by their JSON path.
TRAFFIC_FIELDS = (
    "success_rate",
    "uptime_pct",
    "throughput_rps",
    "goodput_rps",
    "achieved_rate_rps",
    "output_throughput_tokens_per_s",
    "goodput_tokens_per_s",
    "cost_usd",
    "cost_per_success_usd",
    "slo.attainment",
    "jitter.itl_stdev_ms",
    "jitter.itl_p99_over_p50",
    "cached_input_fraction",
    "output_tokens.mean",
    "input_tokens.mean",
    "requests",
    "failed",
)
EVAL_FIELDS = ("score", "hallucination_rate", "cost_usd", *(f"latency_ms.{q}" for q in QUANTILE_FIELDS))
REDTEAM_FIELDS = ("safety_score", "breaches", "over_refusal.rate")
REDTEAM_CATEGORY_FIELDS = ("attack_success_rate", "refusal_rate")
COST_FIELDS = ("monthly_cost_usd", "cost_per_interaction_usd", "cost_per_conversation_usd")
# Vendor evidence (config/safety.py VendorEvidence): lists score as their length, text as documented (1) or not.
VENDOR_FIELDS = {
    "certifications": "list",
    "data_residency": "list",
    "retention_days": "number",
    "trains_on_data": "bool",
    "fine_tuning": "bool",
    "model_card": "text",
    "content_filter": "text",
    "incident_response": "text",
}

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def metric_problem(metric: str, quality_suites: list[str] | None = None) -> str | None:
    """Why `metric` is not a metric assay knows (None when it is one). `quality_suites`: the config's names."""
    kind, _, field = metric.partition(".")
    if kind not in METRIC_KINDS or not field:
        kinds = ", ".join(METRIC_KINDS)
        return f"'{metric}' is not KIND.FIELD with KIND one of {kinds} (see `assay decide --list-metrics`)"
    if kind in TRAFFIC_KINDS:
        head, _, q = field.partition(".")
        if field in TRAFFIC_FIELDS or (head in LATENCY_FIELDS and q in QUANTILE_FIELDS):
            return None
        if head in LATENCY_FIELDS:
            return f"'{metric}': a latency needs one of {', '.join(QUANTILE_FIELDS)} after it, e.g. {kind}.{head}.p95"
        return f"'{metric}': {kind} has no figure '{field}'; it has {', '.join(TRAFFIC_FIELDS)} and LATENCY.pXX"
    if kind == "eval":
        suite, _, rest = field.partition(".")
        if quality_suites is not None and suite not in quality_suites:
            known = ", ".join(quality_suites) or "none"
            return f"'{metric}': no quality suite named '{suite}' (the config's suites: {known})"
        if rest not in EVAL_FIELDS:
            return f"'{metric}': an eval figure is eval.SUITE.FIELD with FIELD one of {', '.join(EVAL_FIELDS)}"
        return None
    if kind == "redteam":
        _category, _, rest = field.partition(".")
        if field in REDTEAM_FIELDS or rest in REDTEAM_CATEGORY_FIELDS:
            return None
        return (
            f"'{metric}': a red-team figure is one of {', '.join('redteam.' + f for f in REDTEAM_FIELDS)} or "
            f"redteam.CATEGORY.FIELD with FIELD one of {', '.join(REDTEAM_CATEGORY_FIELDS)}"
        )
    if kind == "cost":
        return None if field in COST_FIELDS else f"'{metric}': cost figures are {', '.join(COST_FIELDS)}"
    if field not in VENDOR_FIELDS:
        return f"'{metric}': vendor evidence fields are {', '.join(VENDOR_FIELDS)}"
    return None


def metric_unit(metric: str) -> str:
    """How a metric's values read: share (0-1), ms, usd, rps, score (0-100), count, bool, text, list or number."""
    kind, _, field = metric.partition(".")
    last = field.rsplit(".", 1)[-1]
    if kind == "vendor":
        shape = VENDOR_FIELDS.get(field, "number")
        return "days" if field == "retention_days" else shape
    head = field.split(".")[0] if kind in TRAFFIC_KINDS else field.split(".")[-2] if "." in field else field
    if field == "safety_score":
        return "score"
    if field in ("breaches", "requests", "failed"):
        return "count"
    if head == "output_tokens_per_s" or last.endswith("tokens_per_s"):
        return "tok/s"
    if last.endswith("_usd") or kind == "cost" or field.endswith("cost_usd"):
        return "usd"
    if last.endswith("_rps"):
        return "rps"
    if last.endswith("_ms") or (head.endswith("_ms") and last in QUANTILE_FIELDS) or ".latency_ms." in f".{field}":
        return "ms"
    if field == "uptime_pct":
        return "pct"
    if "rate" in last or last in ("score", "attainment", "cached_input_fraction"):
        return "share"
    return "number"


class Must(StrictModel):
    """A must-have: a target failing one is out, whatever its score."""

    min: float | None = Field(default=None, description="The value must be at least this.")
    max: float | None = Field(default=None, description="The value must be at most this.")
    equals: bool | float | str | None = Field(default=None, description="The value must be exactly this.")
    includes: list[str] | None = Field(default=None, description="A list (vendor evidence) must hold all of these.")

    @field_validator("includes", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _something(self) -> Must:
        if self.min is None and self.max is None and self.equals is None and self.includes is None:
            raise PydanticCustomError("empty", "a must needs min, max, equals or includes", {})
        if self.min is not None and self.max is not None and self.min > self.max:
            raise PydanticCustomError("order", "min ({lo}) is above max ({hi})", {"lo": self.min, "hi": self.max})
        return self

    def bound(self, direction: str) -> float | None:
        """The bound on the worse side of a criterion: what `normalize: target` scores against."""
        return self.max if direction == "min" else self.min


class Criterion(StrictModel):
    """One column of the decision matrix."""

    name: str = Field(description="What the page calls it: quality, latency, cost...")
    metric: str = Field(description="KIND.FIELD, e.g. eval.math.score, probe.ttft_ms.p95, cost.monthly_cost_usd.")
    weight: float = Field(default=1.0, ge=0, description="Relative importance; 0 for a must-have that is not scored.")
    direction: Literal["max", "min"] = Field(default="max", description="Whether more (max) or less (min) is better.")
    must: Must | None = Field(default=None, description="A hard gate on the value.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise PydanticCustomError(
                "name", "a criterion name is a word of letters, digits, _ or - (got '{v}')", {"v": v}
            )
        return v

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        problem = metric_problem(v)
        if problem:
            raise PydanticCustomError("unknown_metric", problem, {})
        return v

    @model_validator(mode="after")
    def _must_fits(self) -> Criterion:
        unit = metric_unit(self.metric)
        m = self.must
        if m is None:
            return self
        if m.includes is not None and unit != "list":
            raise PydanticCustomError(
                "must", "`includes` is for list evidence (certifications, data_residency)", {"at": ("must", "includes")}
            )
        if (m.min is not None or m.max is not None) and unit in ("list", "text", "bool"):
            raise PydanticCustomError(
                "must",
                "min/max need a number; {metric} is {unit} evidence",
                {"metric": self.metric, "unit": unit, "at": ("must",)},
            )
        return self

    @property
    def unit(self) -> str:
        return metric_unit(self.metric)


class DecisionSettings(StrictModel):
    """How `assay decide`, `assay gate` and the scorecard's Decision section choose among the targets."""

    criteria: list[Criterion] = Field(min_length=1)
    normalize: Literal["minmax", "vector", "target"] = Field(
        default="minmax", description="minmax (worst 0, best 1), vector (x/‖x‖) or target (the must bound 0, best 1)."
    )
    datum: str | None = Field(default=None, description="The Pugh matrix's baseline target; default the first.")
    pareto: list[str] | None = Field(
        default=None, description="Two or three criterion names for the Pareto front; default cost, quality, latency."
    )
    runs: list[str] = Field(
        default_factory=list, description="Run ids (or 'latest' of each kind) the decision reads by default."
    )
    choose: str | None = Field(default=None, description="For `assay gate`: the target CI expects to win.")
    confidence: float = Field(
        default=0.95, gt=0.5, lt=1, description="Probability of first place that counts as separated (and for gate)."
    )
    draws: int = Field(default=2000, ge=100, le=100_000, description="Resamples for the uncertainty figures.")
    seed: int = Field(default=0, description="Seed of the resampling, so a decision is reproducible.")

    @field_validator("criteria")
    @classmethod
    def _criteria(cls, criteria: list[Criterion]) -> list[Criterion]:
        seen: dict[str, int] = {}
        for i, c in enumerate(criteria):
            if c.name in seen:
                raise PydanticCustomError(
                    "duplicate_name",
                    "'{name}' is already the name of criteria[{first}]",
                    {"name": c.name, "first": seen[c.name], "at": (i, "name")},
                )
            seen[c.name] = i
        if not any(c.weight > 0 for c in criteria):
            raise PydanticCustomError(
                "all_zero", "every weight is 0; give at least one criterion a weight above 0", {"at": (0, "weight")}
            )
        return criteria

    @model_validator(mode="after")
    def _pareto(self) -> DecisionSettings:
        if self.pareto is None:
            return self
        names = [c.name for c in self.criteria]
        for j, name in enumerate(self.pareto):
            if name not in names:
                raise PydanticCustomError(
                    "unknown_criterion",
                    "'{name}' is not a criterion ({known})",
                    {"name": name, "known": ", ".join(names), "at": ("pareto", j)},
                )
        if not 2 <= len(set(self.pareto)) <= 3 or len(set(self.pareto)) != len(self.pareto):
            raise PydanticCustomError(
                "pareto", "the Pareto front takes two or three different criteria", {"at": ("pareto",)}
            )
        return self

    @property
    def pareto_criteria(self) -> list[str]:
        """The front's axes: as configured, else cost, quality and latency where named so, else the first three."""
        if self.pareto:
            return list(self.pareto)
        names = [c.name for c in self.criteria if c.weight > 0]
        wanted: list[str] = [n for n in ("cost", "quality", "latency") if n in names]
        if len(wanted) >= 2:
            return wanted
        return names[:3]
