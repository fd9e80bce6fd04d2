"""Behaviour profiles of simulated models: latency distributions, faults, limits, incidents."""

from __future__ import annotations

import math
import random
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from assay.config import parse_yaml_model
from assay.errors import ConfigError
from assay.model import StrictModel

__all__ = [
    "FAULT_KINDS",
    "Dist",
    "Faults",
    "FineTuning",
    "Incident",
    "ModelProfile",
    "RateLimit",
    "SafetyBehaviour",
    "SimulatorSpec",
    "Vendor",
    "builtin_spec",
    "load_spec",
]

FAULT_KINDS = (
    "rate_limited",
    "server_error",
    "overloaded",
    "hang",
    "reset",
    "stream_broken",
    "malformed_chunk",
    "error_event",
)


class Dist(StrictModel):
    """A distribution of a non-negative quantity (milliseconds or tokens).

    `fixed` uses `value`; `normal` uses `mean` and `sd`; `lognormal` uses
    `median` and `sigma` (of the log); `uniform` uses `low` and `high`.
    Samples are clipped to [`min`, `max`].
    """

    dist: Literal["fixed", "normal", "lognormal", "uniform"] = "fixed"
    value: float | None = None
    mean: float | None = None
    sd: float = 0.0
    median: float | None = None
    sigma: float = 0.0
    low: float | None = None
    high: float | None = None
    min: float = 0.0
    max: float = math.inf

    @model_validator(mode="before")
    @classmethod
    def _number_is_fixed(cls, data: Any) -> Any:
        return {"dist": "fixed", "value": data} if isinstance(data, int | float) else data

    @model_validator(mode="after")
    def _has_parameters(self) -> Dist:
        need = {"fixed": ("value",), "normal": ("mean",), "lognormal": ("median",), "uniform": ("low", "high")}
        missing = [p for p in need[self.dist] if getattr(self, p) is None]
        if missing:
            raise ValueError(f"a {self.dist} distribution needs {' and '.join(missing)}")
        return self

    def sample(self, rng: random.Random) -> float:
        if self.dist == "fixed":
            x = float(self.value or 0.0)
        elif self.dist == "normal":
            x = rng.gauss(self.mean or 0.0, self.sd)
        elif self.dist == "lognormal":
            x = (self.median or 0.0) * math.exp(rng.gauss(0.0, self.sigma))
        else:
            x = rng.uniform(self.low or 0.0, self.high or 0.0)
        return min(max(x, self.min), self.max)


class Faults(StrictModel):
    """Probability per request of each injected failure; they are exclusive and sum to at most 1."""

    rate_limited: float = Field(default=0.0, ge=0, le=1)
    server_error: float = Field(default=0.0, ge=0, le=1)
    overloaded: float = Field(default=0.0, ge=0, le=1)
    hang: float = Field(default=0.0, ge=0, le=1)
    reset: float = Field(default=0.0, ge=0, le=1)
    stream_broken: float = Field(default=0.0, ge=0, le=1)
    malformed_chunk: float = Field(default=0.0, ge=0, le=1)
    error_event: float = Field(default=0.0, ge=0, le=1, description="A provider error event inside a 200 stream.")

    @model_validator(mode="after")
    def _at_most_one(self) -> Faults:
        if sum(getattr(self, k) for k in FAULT_KINDS) > 1.0 + 1e-9:
            raise ValueError("fault probabilities add up to more than 1")
        return self

    def pick(self, u: float) -> str | None:
        """The fault for a uniform draw `u` in [0, 1), or None for a clean answer."""
        acc = 0.0
        for kind in FAULT_KINDS:
            acc += getattr(self, kind)
            if u < acc:
                return kind
        return None


class RateLimit(StrictModel):
    """Token buckets per model, refilled continuously: requests and tokens per minute."""

    rpm: float | None = Field(default=None, gt=0)
    tpm: float | None = Field(default=None, gt=0)


class Incident(StrictModel):
    """A window, in seconds since the simulator started, where faults or latency change."""

    start_s: float = Field(ge=0)
    end_s: float = Field(gt=0)
    faults: Faults | None = None
    latency_factor: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Incident:
        if self.end_s <= self.start_s:
            raise ValueError("end_s must be after start_s")
        return self


class ListPrice(StrictModel):
    """What the simulated vendor charges, USD per million tokens; `assay demo` prices its targets with it."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class Answers(StrictModel):
    """How often the model answers a known dataset item right (the most specific setting wins)."""

    accuracy: float = Field(default=0.7, ge=0, le=1, description="For any known item.")
    by_dataset: dict[str, float] = Field(default_factory=dict, description="e.g. {gsm8k: 0.85}")
    by_tag: dict[str, float] = Field(default_factory=dict, description="e.g. {negation: 0.4}; the lowest matching tag")
    judge_error: float = Field(default=0.03, ge=0, le=1, description="As a judge: how often a verdict is wrong.")
    judge_unparseable: float = Field(default=0.05, ge=0, le=1, description="As a judge: how often it rambles.")

    @field_validator("by_dataset", "by_tag")
    @classmethod
    def _probabilities(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k, p in v.items() if not 0 <= p <= 1]
        if bad:
            raise ValueError(f"probabilities must be between 0 and 1 (check {', '.join(bad)})")
        return v


class SafetyBehaviour(StrictModel):
    """How the model behaves under red-team attacks (probabilities, drawn per prompt with the seed)."""

    refusal: float = Field(default=0.95, ge=0, le=1, description="Refuses a plainly harmful request.")
    jailbreak: float = Field(default=0.15, ge=0, le=1, description="Complies with a wrapped harmful request.")
    partial: float = Field(default=0.1, ge=0, le=1, description="Share of refusals that still give an outline.")
    over_refusal: float = Field(default=0.05, ge=0, le=1, description="Refuses a safe prompt that sounds risky.")
    leakage: float = Field(default=0.1, ge=0, le=1, description="Reveals a confidential system prompt.")
    injection: float = Field(default=0.2, ge=0, le=1, description="Follows an instruction hidden in a document.")
    misinformation: float = Field(default=0.1, ge=0, le=1, description="Affirms a false claim.")
    bias: float = Field(default=0.2, ge=0, le=1, description="Picks the stereotype when the context is ambiguous.")
    bias_accuracy: float = Field(default=0.9, ge=0, le=1, description="Right answer when the context says who.")
    content_filter: float = Field(default=0.0, ge=0, le=1, description="A harmful request is blocked outright.")
    escalation: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Yields, at each follow-up turn of a conversation that keeps pressing a harmful request "
        "(multi-turn attacks; docs/SIMULATOR.md has the exact rates).",
    )


class FineTuning(StrictModel):
    """The model can be fine-tuned (files and fine-tuning jobs API): job timings, failures, and what tuning changes.

    A job spends `validate_s` in `validating_files`, `queue_s` in `queued`, then runs for
    max(`min_run_s`, trained tokens / `tokens_per_s`). The tuned model answers like its base with
    `gain` (and `gain_by_tag`) added to its accuracies, drawing the same random numbers (see `draws_as`).
    """

    validate_s: float = Field(default=0.2, ge=0, description="Seconds a job spends in `validating_files`.")
    queue_s: float = Field(default=0.3, ge=0, description="Seconds a job spends in `queued`.")
    tokens_per_s: float = Field(
        default=500_000, gt=0, description="Training speed: `running` lasts max(min_run_s, trained_tokens / this)."
    )
    min_run_s: float = Field(default=0.5, ge=0, description="The shortest time a job spends in `running`.")
    upload_failure: float = Field(
        default=0.0, ge=0, le=1, description="Probability that a POST /v1/files answers 500 (drawn per upload)."
    )
    job_failure: float = Field(
        default=0.0, ge=0, le=1, description="Probability that a job fails part-way through `running` (per job)."
    )
    fail_at: float = Field(default=0.5, ge=0, le=1, description="Where in its running time a failing job fails.")
    gain: float = Field(
        default=0.0, ge=-1, le=1, description="Added to the base's accuracy and each by_dataset value (clipped)."
    )
    gain_by_tag: dict[str, float] = Field(
        default_factory=dict, description="Per-tag change, e.g. {negation: -0.2} (catastrophic forgetting)."
    )
    list_price: ListPrice | None = Field(default=None, description="The tuned model's price (reports only).")

    @field_validator("gain_by_tag")
    @classmethod
    def _changes(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k, g in v.items() if not -1 <= g <= 1]
        if bad:
            raise ValueError(f"changes must be between -1 and 1 (check {', '.join(bad)})")
        return v


class ModelProfile(StrictModel):
    name: str
    list_price: ListPrice | None = None
    answers: Answers = Field(default_factory=Answers)
    safety: SafetyBehaviour = Field(default_factory=SafetyBehaviour)
    ttft_ms: Dist = Field(default_factory=lambda: Dist(value=200))
    itl_ms: Dist = Field(default_factory=lambda: Dist(value=20))
    output_tokens: Dist = Field(default_factory=lambda: Dist(value=64))
    prefill_ms_per_1k_input: float = Field(default=0.0, ge=0, description="Extra TTFT per 1,000 input tokens.")
    faults: Faults = Field(default_factory=Faults)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    incidents: list[Incident] = Field(default_factory=list)
    retry_after_s: float = Field(default=2.0, ge=0, description="Retry-After sent with injected 429s and 503s.")
    max_concurrency: int | None = Field(
        default=None, ge=1, description="Requests served at once; the rest queue (latency grows, no 429s)."
    )
    hang_s: float = Field(default=120.0, gt=0, description="How long a hung request stays silent before closing.")
    context_window: int | None = Field(
        default=None, ge=1, description="Most input tokens a request may have; above it: a 400 (context too long)."
    )
    image_input_tokens: int = Field(default=765, ge=0, description="Input tokens each image in a request counts as.")
    fine_tuning: FineTuning | None = Field(
        default=None, description="The model can be fine-tuned; jobs for other models are refused (400)."
    )
    draws_as: str | None = Field(
        default=None,
        description="Answer known items with this model's random draws: a tuned model shares its base's, "
        "so the two differ only where their accuracy does (paired, like a real fine-tune).",
    )


class Vendor(StrictModel):
    name: str
    description: str = ""
    models: list[ModelProfile] = Field(min_length=1)


class SimulatorSpec(StrictModel):
    seed: int = 0
    vendors: list[Vendor] = Field(min_length=1)
    knowledge: list[str] = Field(
        default_factory=lambda: ["demo-qa", "gsm8k", "mmlu-redux", "safety"],
        description="Datasets whose items the models recognise (bundled, or local copies in $ASSAY_DATA_DIR).",
    )

    def vendor(self, name: str) -> Vendor:
        for v in self.vendors:
            if v.name == name:
                return v
        raise ConfigError(f"no simulated vendor named {name!r}; known: {', '.join(v.name for v in self.vendors)}")


def builtin_spec(seed: int = 0) -> SimulatorSpec:
    """The three demo vendors: fast-cheap-flaky, balanced, slow-premium-reliable."""
    text = resources.files("assay.simulator").joinpath("demo_vendors.yaml").read_text(encoding="utf-8")
    spec = _parse(text, "demo_vendors.yaml")
    return spec.model_copy(update={"seed": seed})


def load_spec(path: str | Path) -> SimulatorSpec:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read simulator profile: {e.strerror}") from None
    return _parse(text, str(p))


def _parse(text: str, source: str) -> SimulatorSpec:
    return parse_yaml_model(text, source, SimulatorSpec, "a mapping with a `vendors:` list", "docs/SIMULATOR.md")
