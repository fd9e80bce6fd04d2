"""Map HTTP failures to the error taxonomy, and read Retry-After and rate-limit headers.

Behind LiteLLM's proxy the provider's own headers arrive prefixed (`llm_provider-retry-after`,
`llm_provider-x-ratelimit-remaining-requests`, ...); they are read, and kept, under their plain
names, and a plain header the proxy set itself wins over a prefixed one.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime

from assay.clients.deadlines import Deadlines
from assay.clients.transport import TransportError
from assay.errors import (
    BadResponse,
    ClientError,
    ConnectionFailed,
    Overloaded,
    ProviderError,
    RateLimited,
    ServerError,
    StreamBroken,
    Timeout,
)
from assay.model import Timing
from assay.wire import decode_error

__all__ = ["classify", "error_for_status", "parse_duration_s", "rate_limit_headers", "retry_after_s"]

_RATE_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-", "retry-after")
_PROXIED = "llm_provider-"  # LiteLLM's prefix for the headers of the provider behind it


def _plain(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers lower-cased, proxied ones under their plain names (a plain header wins)."""
    out: dict[str, str] = {}
    proxied: list[tuple[str, str]] = []
    for k, v in headers.items():
        key = k.lower()
        if key.startswith(_PROXIED):
            proxied.append((key[len(_PROXIED) :], v))
        else:
            out[key] = v
    for key, v in proxied:
        out.setdefault(key, v)
    return out


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def rate_limit_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers a provider uses to describe its limits, lower-cased, under their plain names."""
    return {k: v for k, v in _plain(headers).items() if k.startswith(_RATE_PREFIXES)}


def parse_duration_s(text: str) -> float | None:
    """Parse OpenAI's reset durations ('1s', '6m0s', '20ms', '1h2m3.5s') or plain seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


def retry_after_s(headers: Mapping[str, str], now_wall_s: float | None = None) -> float | None:
    """How long the provider asked us to wait, from the most precise header it sent."""
    h = _plain(headers)
    if "retry-after-ms" in h:
        try:
            return float(h["retry-after-ms"]) / 1000.0
        except ValueError:
            pass
    if "retry-after" in h:
        value = h["retry-after"].strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if value else None
            if parsed is not None:
                now = time.time() if now_wall_s is None else now_wall_s
                return max(0.0, parsed.timestamp() - now)
    for key in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"):
        if key in h:
            d = parse_duration_s(h[key])
            if d is not None:
                return d
    for key in ("anthropic-ratelimit-requests-reset", "anthropic-ratelimit-tokens-reset"):
        if key in h:
            try:
                instant = datetime.fromisoformat(h[key].replace("Z", "+00:00"))
            except ValueError:
                continue
            now = time.time() if now_wall_s is None else now_wall_s
            return max(0.0, instant.timestamp() - now)
    return None


def error_for_status(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    describe: Callable[[bytes], tuple[str, str | None]] = decode_error,
) -> ProviderError:
    """The taxonomy class for a non-2xx response; `describe` reads the protocol's error body."""
    message, err_type = describe(body)
    text = f"HTTP {status}" + (f" {err_type}" if err_type else "") + (f": {message}" if message else "")
    kwargs: dict[str, object] = {"http_status": status, "headers": rate_limit_headers(headers)}
    if status == 429:
        return RateLimited(text, retry_after_s=retry_after_s(headers), **kwargs)  # type: ignore[arg-type]
    if status in (503, 529) or err_type == "overloaded_error":
        return Overloaded(text, retry_after_s=retry_after_s(headers), **kwargs)  # type: ignore[arg-type]
    if status >= 500:
        return ServerError(text, **kwargs)  # type: ignore[arg-type]
    return ClientError(text, **kwargs)  # type: ignore[arg-type]


def classify(e: Exception, timing: Timing, deadlines: Deadlines, url: str, status: int) -> ProviderError | None:
    """The taxonomy class of a failure below HTTP status; None for what is not one (a bug: let it raise)."""
    t, http_status = deadlines.timeouts, status or None
    if isinstance(e, TransportError):
        if e.kind == "connect_timeout":
            return Timeout(f"connect timed out after {t.connect_s:g}s", phase="connect")
        if e.kind == "connect":
            return ConnectionFailed(f"cannot connect to {url}: {e.detail}")
        if e.kind == "malformed":
            return BadResponse(f"malformed HTTP response: {e.detail}")
        if timing.first_byte_ns:
            n = len(timing.content_ns)
            return StreamBroken(
                f"connection lost mid-stream after {n} content events ({e.detail})", http_status=http_status
            )
        return ConnectionFailed(f"connection closed before any response ({e.detail})")
    if isinstance(e, TimeoutError):
        if not deadlines.expired():  # not our deadline: a connect timeout below us
            return Timeout(f"connect timed out after {t.connect_s:g}s", phase="connect")
        phase = deadlines.phase
        return Timeout(f"{phase} timeout after {t.limit_s(phase):g}s", phase=phase, http_status=http_status)
    return None
