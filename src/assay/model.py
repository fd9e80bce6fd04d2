"""The core types every layer shares: Target, ChatRequest, Completion, Usage, Timing (Records: records.py).

Targets come from user input, so they are pydantic models that refuse unknown
keys. The types made per request (requests, completions, timings, records)
are slotted dataclasses: they are created thousands of times a second under
load and never validated twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

__all__ = [
    "NAME_RE",
    "ChatRequest",
    "Completion",
    "ForcedTool",
    "Image",
    "LongContextTier",
    "Message",
    "Pricing",
    "Provisioned",
    "ResponseFormat",
    "ScheduledDiscount",
    "SelfHosted",
    "StrictModel",
    "Target",
    "Timing",
    "Tool",
    "ToolCall",
    "ToolChoice",
    "Usage",
    "VolumeTier",
    "env_var_name",
    "estimate_tokens",
]

ApiKind = Literal["openai", "anthropic"]
TokenSource = Literal["server", "estimate", "none"]
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # names of targets and suites


class StrictModel(BaseModel):
    """Base of every model read from user input: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# Prices are USD per million tokens, as vendors quote them. A per-token figure (LiteLLM's unit) typed
# here by mistake would be a million times too small, so tiny values are refused rather than billed.
_PER_TOKEN_LOOKALIKE = 1e-4


def _per_mtok(v: float | None) -> float | None:
    if v is not None and 0 < v < _PER_TOKEN_LOOKALIKE:
        raise ValueError(
            f"{v} looks like USD per token; *_per_mtok fields are USD per million tokens (e.g. 0.15, not 1.5e-07)"
        )
    return v


def _rate() -> Any:
    return Field(default=None, ge=0, description="USD per million tokens.")


class LongContextTier(StrictModel):
    """Rates for the whole request once its input crosses a threshold (how Anthropic and Google bill)."""

    above_input_tokens: int = Field(ge=1)
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cached_input_per_mtok: float | None = _rate()
    cache_write_per_mtok: float | None = _rate()

    @field_validator("input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "cache_write_per_mtok")
    @classmethod
    def _rates(cls, v: float | None) -> float | None:
        return _per_mtok(v)


class VolumeTier(StrictModel):
    """A graduated discount on the part of a month's list-price spend above `above_monthly_usd`."""

    above_monthly_usd: float = Field(ge=0)
    discount: float = Field(ge=0, lt=1)


class ScheduledDiscount(StrictModel):
    """A contract discount that starts in a given month of the TCO horizon (1 = the first month)."""

    from_month: int = Field(ge=1)
    discount: float = Field(ge=0, lt=1)


class Pricing(StrictModel):
    """Per-token prices: a catalog entry, inline rates, or a catalog entry with some rates overridden."""

    catalog: str | None = Field(default=None, description="Catalog entry to start from; default: the target's model.")
    input_per_mtok: float | None = _rate()
    output_per_mtok: float | None = _rate()
    cached_input_per_mtok: float | None = _rate()
    cache_write_per_mtok: float | None = _rate()
    reasoning_per_mtok: float | None = Field(default=None, ge=0, description="Default: the output rate.")
    training_per_mtok: float | None = Field(
        default=None, ge=0, description="Fine-tuning: USD per million training tokens (file tokens x epochs)."
    )
    long_context: list[LongContextTier] = Field(default_factory=list)
    discount: float = Field(default=0.0, ge=0, lt=1, description="Negotiated discount off list, on every token.")
    volume_tiers: list[VolumeTier] = Field(default_factory=list)
    discount_schedule: list[ScheduledDiscount] = Field(default_factory=list)

    @field_validator(
        "input_per_mtok",
        "output_per_mtok",
        "cached_input_per_mtok",
        "cache_write_per_mtok",
        "reasoning_per_mtok",
        "training_per_mtok",
    )
    @classmethod
    def _rates(cls, v: float | None) -> float | None:
        return _per_mtok(v)

    @model_validator(mode="after")
    def _cache_reads_are_cheaper(self) -> Pricing:
        # A cache read dearer than a fresh input token is a typo (often a rate in the wrong field or unit).
        cached, fresh = self.cached_input_per_mtok, self.input_per_mtok
        if cached is not None and fresh is not None and cached > fresh:
            raise PydanticCustomError(
                "inconsistent_rates",
                "cached_input_per_mtok ({cached}) is above input_per_mtok ({input}); cache reads are billed "
                "below the input rate",
                {"cached": cached, "input": fresh, "at": ("cached_input_per_mtok",)},
            )
        return self

    @field_validator("long_context", "volume_tiers", "discount_schedule")
    @classmethod
    def _ascending(cls, v: list[Any], info: Any) -> list[Any]:
        key = {"long_context": "above_input_tokens", "volume_tiers": "above_monthly_usd"}.get(
            info.field_name, "from_month"
        )
        values = [getattr(x, key) for x in v]
        if values != sorted(set(values)):
            raise ValueError(f"entries must be in strictly increasing order of `{key}` (got {values})")
        return v


class Provisioned(StrictModel):
    """Provisioned throughput: capacity units bought by the hour (Azure PTU, Bedrock model units)."""

    unit_hourly_usd: float = Field(gt=0, description="Price of one unit for one hour.")
    unit_tokens_per_s: float = Field(gt=0, description="Input+output tokens per second one unit sustains.")
    min_units: int = Field(default=1, ge=1)
    term_months: int = Field(default=1, ge=1, le=60, description="Commitment: units are fixed for each term.")


class SelfHosted(StrictModel):
    """Running the model yourself on rented or owned GPUs."""

    gpu: str = Field(default="GPU", description="GPU type, for reports (e.g. H100-80GB).")
    gpu_hourly_usd: float = Field(gt=0)
    gpus_per_replica: int = Field(default=1, ge=1)
    output_tokens_per_s: float | None = Field(
        default=None, gt=0, description="One replica's output throughput at the SLO; or measured with --run."
    )
    target_utilization: float = Field(default=0.7, gt=0, le=1, description="Share of capacity planned to be used.")
    headroom: float = Field(default=0.0, ge=0, le=10, description="Spare capacity on top of the peak (0.2 = 20%).")
    min_replicas: int = Field(default=1, ge=1)
    engineering_hours_per_month: float = Field(default=0.0, ge=0)
    engineering_hourly_usd: float = Field(default=0.0, ge=0)
    fixed_monthly_usd: float = Field(default=0.0, ge=0, description="Storage, monitoring, egress, licences.")
    setup_usd: float = Field(default=0.0, ge=0, description="One-off cost, charged in the first month of a TCO.")


class Target(StrictModel):
    """One thing you can send a request to."""

    name: str = Field(description="Unique name used in reports and on the command line.")
    api: ApiKind = Field(
        default="openai",
        description="Wire protocol: `openai` chat completions (any OpenAI-compatible server) or `anthropic` messages.",
    )
    base_url: str = Field(
        description="API root as the vendor SDK takes it: OpenAI's includes /v1, Anthropic's does not.",
    )
    model: str = Field(description="Model name sent in each request.")
    api_key_env: str | None = Field(
        default=None,
        description="Name of the environment variable holding the key. The value is never stored.",
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra HTTP headers (no secrets).")
    deployment: Literal["serverless", "provisioned", "self_hosted"] = Field(
        default="serverless", description="How you run it today; `assay cost` prices this architecture."
    )
    pricing: Pricing | None = Field(default=None, description="Per-token prices; default: the catalog's for `model`.")
    provisioned: Provisioned | None = None
    self_hosted: SelfHosted | None = None
    region: str | None = None
    tags: list[str] = Field(default_factory=list)
    # This target's own timeouts; unset ones come from the project's `timeouts:` (config/timeouts.py).
    timeout_s: float | None = Field(default=None, gt=0, description="Total time allowed for one request.")
    connect_timeout_s: float | None = Field(default=None, gt=0)
    first_token_timeout_s: float | None = Field(default=None, gt=0)
    idle_timeout_s: float | None = Field(default=None, gt=0)
    context_window: int | None = Field(
        default=None,
        ge=1,
        description="Most input tokens the model accepts in one request; default: the catalog's, if it has one.",
    )

    @model_validator(mode="after")
    def _deployment_has_its_costs(self) -> Target:
        if self.deployment == "provisioned" and self.provisioned is None:
            raise PydanticCustomError(
                "missing_block",
                "deployment is provisioned but the target has no `provisioned:` block (unit price and capacity)",
                {"at": ("deployment",)},
            )
        if self.deployment == "self_hosted" and self.self_hosted is None and self.pricing is None:
            raise PydanticCustomError(
                "missing_block",
                "deployment is self_hosted but the target has neither a `self_hosted:` block (GPU price and "
                "throughput) nor `pricing:`",
                {"at": ("deployment",)},
            )
        return self

    @field_validator("name")
    @classmethod
    def _name_is_slug(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError("must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return v

    @field_validator("base_url")
    @classmethod
    def _url_is_http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        return env_var_name(v, "OPENAI_API_KEY") if v is not None else None


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_var_name(v: str, example: str) -> str:
    """`v` if it names an environment variable; a key pasted where its variable's name belongs is refused."""
    if not _ENV_NAME.match(v):
        raise ValueError(f"must be an environment variable name such as {example}, not a key value")
    return v


@dataclass(slots=True)
class ToolCall:
    """A call the model made (or made earlier, in a conversation's history)."""

    id: str
    name: str
    arguments: str  # JSON text of the arguments, as the model wrote it (OpenAI's spelling; Anthropic's is an object)


@dataclass(slots=True)
class Image:
    """An image in a message: a URL (http(s) or a `data:` URL), or base64 data with its media type."""

    url: str | None = None
    data: str | None = None  # base64
    media_type: str | None = None  # with `data`: image/png, image/jpeg, ...
    at: int = 0  # where it sits in its message: the offset in `Message.content` it comes before

    def data_url(self) -> str:
        """The image as one URL (OpenAI's `image_url.url`)."""
        return self.url if self.url is not None else f"data:{self.media_type or 'image/png'};base64,{self.data or ''}"


@dataclass(slots=True)
class Message:
    """One turn. `content` is the message's text; the other fields say what else it carries.

    A tool result is role "tool" with `tool_call_id` set and the result's text as `content`.
    An assistant message may carry `tool_calls` (with or without text). When a request's last
    message is an assistant's text, the model is asked to continue that text (a prefill).
    """

    role: str
    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    tool_error: bool = False  # a tool result that reports a failure (Anthropic's is_error; OpenAI has no word)
    images: list[Image] = field(default_factory=list)  # in order of `at`


@dataclass(slots=True)
class Tool:
    """A function the model may call; `parameters` is a JSON schema of its arguments (an object)."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True, slots=True)
class ForcedTool:
    """`tool_choice` naming the one tool the model must call."""

    name: str


ToolChoice = Literal["auto", "none", "required"] | ForcedTool


@dataclass(slots=True)
class ResponseFormat:
    """Structured output: any JSON object (`json_object`) or one valid for `schema` (`json_schema`)."""

    type: Literal["json_object", "json_schema"]
    schema: dict[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None


@dataclass(slots=True)
class ChatRequest:
    """A provider-neutral chat request.

    `extra` holds body fields no neutral field carries. Set by a wire parser, `extra_api` names the
    protocol they came in (they mean something there only); None: the caller's own, sent as they are.
    """

    messages: list[Message]
    max_tokens: int = 256
    temperature: float | None = None
    stream: bool = True
    system: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None  # None: the provider's default (auto when there are tools)
    parallel_tool_calls: bool | None = None  # None: the provider's default (allowed)
    response_format: ResponseFormat | None = None
    n: int = 1  # choices wanted
    extra_api: str | None = field(default=None, compare=False)  # provenance of `extra`, not part of the request

    @property
    def continues(self) -> bool:
        """Whether the model is asked to continue the last message's text (an assistant prefill)."""
        last = self.messages[-1] if self.messages else None
        return last is not None and last.role == "assistant" and not last.tool_calls and bool(last.content)


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0  # of input_tokens, read from the prompt cache
    cache_write_tokens: int = 0  # of input_tokens, written to the prompt cache (Anthropic bills these higher)
    reasoning_tokens: int = 0  # of output_tokens
    source: TokenSource = "none"


def estimate_tokens(text: str) -> int:
    """~4 characters a token: a rough fallback used only when the server reports no usage."""
    return (len(text) + 3) // 4 if text else 0


@dataclass(slots=True)
class Timing:
    """Monotonic nanosecond stamps taken by the client as bytes arrive.

    `content_ns` holds the arrival stamp of every non-empty content event, so
    TTFT is `content_ns[0] - sent_ns` and ITL the gaps between its entries.
    """

    intended_ns: int = 0
    sent_ns: int = 0
    headers_ns: int = 0
    first_byte_ns: int = 0
    done_ns: int = 0
    content_ns: list[int] = field(default_factory=list)

    @property
    def first_token_ns(self) -> int:
        return self.content_ns[0] if self.content_ns else 0

    def ttft_ms(self) -> float | None:
        return (self.content_ns[0] - self.sent_ns) / 1e6 if self.content_ns else None

    def e2e_ms(self) -> float | None:
        return (self.done_ns - self.sent_ns) / 1e6 if self.done_ns else None


@dataclass(slots=True)
class Completion:
    text: str
    finish_reason: str | None
    usage: Usage
    timing: Timing
    http_status: int = 200
    request_id: str | None = None
    model: str | None = None
    rate_limit_headers: dict[str, str] = field(default_factory=dict)  # what the provider said of its limits
    tool_calls: list[ToolCall] = field(default_factory=list)  # the answer's, when it called tools
