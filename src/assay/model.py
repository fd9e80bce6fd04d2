"""The core types every layer shares: Target, ChatRequest, Completion, Timing, Record.

Targets come from user input, so they are pydantic models that refuse unknown
keys. The types made per request (requests, completions, timings, records)
are slotted dataclasses: they are created thousands of times a second under
load and never validated twice.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "ChatRequest",
    "Completion",
    "Message",
    "Record",
    "StrictModel",
    "Target",
    "Timing",
    "Usage",
]

ApiKind = Literal["openai", "anthropic"]
TokenSource = Literal["server", "estimate", "none"]
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class StrictModel(BaseModel):
    """Base of every model read from user input: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
    deployment: Literal["serverless", "provisioned", "self_hosted"] = "serverless"
    region: str | None = None
    tags: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name_is_slug(cls, v: str) -> str:
        if not _NAME_RE.match(v):
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
        if v is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", v):
            raise ValueError("must be an environment variable name such as OPENAI_API_KEY, not a key value")
        return v


@dataclass(slots=True)
class Message:
    role: str
    content: str


@dataclass(slots=True)
class ChatRequest:
    """A provider-neutral chat request."""

    messages: list[Message]
    max_tokens: int = 256
    temperature: float | None = None
    stream: bool = True
    system: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    source: TokenSource = "none"


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
    scores: dict[str, Any] = field(default_factory=dict)
    final: bool = True  # the last attempt for its item: a success, or a failure with no retry to follow

    @property
    def ok(self) -> bool:
        return self.status == "ok"

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
