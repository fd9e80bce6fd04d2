"""The four request timeouts, and how a target's effective ones are found.

Precedence, most specific last: the defaults here, the project's `timeouts:`,
a command's own section (e.g. `probe:`), the target's own keys, then the
command line's `--timeout` (which sets the total for this run only).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from assay.model import StrictModel

__all__ = ["TIMEOUT_KEYS", "TimeoutSettings", "effective_timeouts"]

TIMEOUT_KEYS = ("timeout_s", "connect_timeout_s", "first_token_timeout_s", "idle_timeout_s")


class TimeoutSettings(StrictModel):
    """Limits on one request attempt; each phase that runs out is its own `timeout` failure."""

    timeout_s: float = Field(default=60.0, gt=0, description="Total time allowed for one request.")
    connect_timeout_s: float = Field(default=10.0, gt=0, description="TCP and TLS connection set-up.")
    first_token_timeout_s: float = Field(default=30.0, gt=0, description="From sending to the first content token.")
    idle_timeout_s: float = Field(default=30.0, gt=0, description="Longest allowed gap between stream chunks.")


def effective_timeouts(*layers: BaseModel | Mapping[str, Any] | None) -> TimeoutSettings:
    """The timeouts after applying each layer's set (non-None) keys in order over the defaults."""
    values: dict[str, Any] = {}
    for layer in layers:
        if layer is None:
            continue
        given = layer if isinstance(layer, Mapping) else {k: getattr(layer, k, None) for k in TIMEOUT_KEYS}
        values.update({k: v for k, v in given.items() if k in TIMEOUT_KEYS and v is not None})
    return TimeoutSettings(**values)
