"""`probe:`: defaults for `assay probe`; command-line options override them."""

from __future__ import annotations

from pydantic import Field

from assay.model import StrictModel

__all__ = ["ProbeSettings"]


class ProbeSettings(StrictModel):
    """Defaults for `assay probe`; command-line options override them."""

    requests: int = Field(default=50, ge=1, le=1_000_000)
    concurrency: int = Field(default=4, ge=1, le=10_000)
    # Timeouts for the probe only; unset ones come from `timeouts:` (config/timeouts.py).
    timeout_s: float | None = Field(default=None, gt=0, description="Total time allowed for one request.")
    connect_timeout_s: float | None = Field(default=None, gt=0)
    first_token_timeout_s: float | None = Field(default=None, gt=0)
    idle_timeout_s: float | None = Field(default=None, gt=0, description="Longest allowed gap between stream chunks.")
    prompt: str = "Explain in three sentences why the sky is blue."
    max_tokens: int = Field(default=128, ge=1)
    stream: bool = True
    retries: int = Field(default=0, ge=0, le=10, description="Retries per item; 0 measures the raw API.")
    duration_s: float | None = Field(
        default=None,
        gt=0,
        description="Spread each target's requests evenly over this many seconds (uptime over time).",
    )
    bucket_s: float | None = Field(default=None, gt=0, description="Uptime bucket width; default ~20 buckets.")
