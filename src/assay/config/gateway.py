"""The `gateway:` section: routes over the project's targets, virtual keys, breakers and the server's limits.

    gateway:
      routes:
        - model: chat                  # the model name clients send
          policy: fallback             # fallback | weighted | least_latency | cost | least_busy
          targets: [primary, backup]   # names from targets:
          retries: 2                   # per request, on the same target, before moving on
          retry_budget: 0.2            # retries at most 20% of first attempts, over a window
      keys:
        - {name: team-a, key_env: TEAM_A_KEY, budget_usd: 50, rpm: 600, routes: [chat]}

Whether route targets exist is checked by `ProjectConfig`, which knows the targets.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from assay.config.slo import SLO
from assay.model import StrictModel, env_var_name

__all__ = ["POLICY_NAMES", "BreakerSettings", "GatewaySettings", "Route", "VirtualKey"]

POLICY_NAMES = ("fallback", "weighted", "least_latency", "cost", "least_busy")
PolicyName = Literal["fallback", "weighted", "least_latency", "cost", "least_busy"]


class Route(StrictModel):
    """One model name clients may ask for, and how its requests pick among targets."""

    model: str = Field(min_length=1, max_length=200, description="The model name clients send.")
    policy: PolicyName = "fallback"
    targets: list[str] = Field(min_length=1, description="Names from `targets:`, in fallback order.")
    retries: int = Field(default=1, ge=0, le=10, description="Retries on the same target before moving on.")
    retry_budget: float = Field(
        default=0.2, ge=0, le=1, description="Retries allowed as a share of first attempts over the last 10 s."
    )
    weights: dict[str, float] = Field(default_factory=dict, description="For `weighted`: relative shares.")
    slo: SLO | None = Field(default=None, description="For least_latency and cost: the latency a target must keep.")
    timeout_s: float = Field(default=120.0, gt=0, description="The whole request's deadline, all attempts included.")
    holdback_tokens: int = Field(
        default=0, ge=0, le=1000, description="Stream events held back until the stream looks healthy."
    )

    @model_validator(mode="after")
    def _weights_name_targets(self) -> Route:
        if len(set(self.targets)) != len(self.targets):
            raise PydanticCustomError("duplicate", "a target is listed twice", {"at": ("targets",)})
        stray = sorted(set(self.weights) - set(self.targets))
        if stray:
            raise PydanticCustomError(
                "unknown_target",
                "weights name {stray}, which is not among this route's targets ({known})",
                {"stray": ", ".join(stray), "known": ", ".join(self.targets), "at": ("weights",)},
            )
        if any(w < 0 for w in self.weights.values()):
            raise PydanticCustomError("negative", "weights must be >= 0", {"at": ("weights",)})
        if self.policy == "weighted" and self.weights and not any(self.weights.values()):
            raise PydanticCustomError("all_zero", "weights are all zero", {"at": ("weights",)})
        return self


class VirtualKey(StrictModel):
    """A caller's key: its value lives in an environment variable; only its hash is kept in memory."""

    name: str = Field(min_length=1, max_length=64)
    key_env: str = Field(description="Environment variable holding the key's value.")
    budget_usd: float | None = Field(default=None, ge=0, description="Spend allowed through this key.")
    rpm: int | None = Field(default=None, ge=1, description="Requests per minute.")
    tpm: int | None = Field(default=None, ge=1, description="Tokens per minute (input estimate + max_tokens).")
    routes: list[str] | None = Field(default=None, description="Route models this key may use; default: all.")

    @field_validator("key_env")
    @classmethod
    def _env_name(cls, v: str) -> str:
        return env_var_name(v, "TEAM_A_KEY")


class BreakerSettings(StrictModel):
    """When a target's circuit opens, and how long it stays open."""

    error_rate: float = Field(default=0.5, gt=0, le=1, description="Opens at this error share over `window_s`.")
    window_s: float = Field(default=10.0, gt=0)
    min_requests: int = Field(default=5, ge=1, description="Attempts in the window before the error rate counts.")
    consecutive_failures: int = Field(default=3, ge=1, description="Opens after this many failures in a row.")
    cooldown_s: float = Field(default=2.0, gt=0, description="First open period; grows on each re-open.")
    cooldown_growth: float = Field(default=1.5, ge=1, le=10, description="Factor the open period grows by.")
    max_cooldown_s: float = Field(default=30.0, gt=0)


class GatewaySettings(StrictModel):
    routes: list[Route] = Field(min_length=1)
    keys: list[VirtualKey] = Field(default_factory=list)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, description="Larger request bodies get 413.")
    drain_s: float = Field(default=10.0, ge=0, description="On SIGTERM, how long in-flight requests may finish.")
    max_in_flight: int = Field(
        default=4096, ge=1, description="Client requests served at once; beyond it, 503/529 with Retry-After: 1."
    )
    record_queue: int = Field(
        default=100_000, ge=100, description="Records waiting for the store; beyond it they are counted as dropped."
    )
    prefill_targets: list[str] = Field(
        default_factory=list,
        description="OpenAI-protocol targets that continue an assistant prefill (vLLM's continue_final_message); "
        "Anthropic targets always do.",
    )
    admin_key_env: str | None = Field(default=None, description="Key for /admin/*; without it, loopback callers only.")
    store_text: bool = Field(default=False, description="Keep prompts and replies in the Records (off: privacy).")
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP traces endpoint (e.g. http://127.0.0.1:4318/v1/traces); needs assay[otel]."
    )
    service_name: str = Field(default="assay-gateway", min_length=1, description="Traces' service.name.")

    @field_validator("otlp_endpoint")
    @classmethod
    def _http(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:4318/v1/traces")
        return v

    @model_validator(mode="after")
    def _unique(self) -> GatewaySettings:
        routes = _first_uses([r.model for r in self.routes], "route model", "routes", "model")
        _first_uses([k.name for k in self.keys], "key name", "keys", "name")
        for i, k in enumerate(self.keys):
            for model in k.routes or ():
                if model not in routes:
                    raise PydanticCustomError(
                        "unknown_route", "route '{r}' is not one of the routes ({known})",
                        {"r": model, "known": ", ".join(routes), "at": ("keys", i, "routes")},
                    )  # fmt: skip
        return self


def _first_uses(names: list[str], what: str, field: str, key: str) -> dict[str, int]:
    """Each name's index; a second use is an error at its own line."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise PydanticCustomError(
                "duplicate_name", "{what} '{name}' is already {field}[{j}]'s",
                {"what": what, "name": name, "field": field, "j": seen[name], "at": (field, i, key)},
            )  # fmt: skip
        seen[name] = i
    return seen
