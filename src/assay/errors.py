"""The one exception hierarchy of assay.

    AssayError
    ├── ConfigError                 input the user must fix (file, line, field)
    ├── WireError                   a request body a protocol's server half refuses:
    │                               `status`, and `body` in that protocol's error format
    └── ProviderError               a request attempt failed; `error_class` names it
        ├── RateLimited             429, with retry-after and rate-limit headers
        ├── Overloaded              503 / 529: the provider sheds load
        ├── ServerError             any other 5xx
        ├── ClientError             4xx other than 429: auth, bad request,
        │                           content filter, context too long
        ├── Timeout                 connect, first_token, idle or total (`phase`)
        ├── ConnectionFailed        could not connect, or reset before any byte
        ├── StreamBroken            failed after the first byte of the body
        ├── BadResponse             a body or event that does not parse
        └── Cancelled               the attempt was interrupted by us (Ctrl-C,
                                    shutdown); not the provider's fault

Every failed attempt becomes a Record whose `error_class` is the class's
`error_class` string, so statistics never depend on Python class names.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "ERROR_CLASSES",
    "AssayError",
    "BadResponse",
    "Cancelled",
    "ClientError",
    "ConfigError",
    "ConnectionFailed",
    "Overloaded",
    "ProviderError",
    "RateLimited",
    "ServerError",
    "StreamBroken",
    "Timeout",
    "WireError",
]


class AssayError(Exception):
    """Root of every error assay raises on purpose."""


class ConfigError(AssayError):
    """Input the user must fix. `problems` holds one line per problem."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or []
        full = message if not self.problems else message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(full)


class WireError(AssayError):
    """A request a server refuses before doing anything with it (the gateway's and the simulator's edge)."""

    def __init__(self, status: int, message: str, body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body


class ProviderError(AssayError):
    """A request attempt failed. Subclasses set `error_class`."""

    error_class = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        retry_after_s: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.retry_after_s = retry_after_s
        self.headers = dict(headers or {})


class RateLimited(ProviderError):
    error_class = "rate_limited"


class Overloaded(ProviderError):
    error_class = "overloaded"


class ServerError(ProviderError):
    error_class = "server_error"


class ClientError(ProviderError):
    error_class = "client_error"


class Timeout(ProviderError):
    error_class = "timeout"

    def __init__(self, message: str, *, phase: str, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.phase = phase


class ConnectionFailed(ProviderError):
    error_class = "connection"


class StreamBroken(ProviderError):
    error_class = "stream_broken"


class BadResponse(ProviderError):
    error_class = "bad_response"


class Cancelled(ProviderError):
    error_class = "cancelled"


# The error classes a report counts, in display order. `cancelled` is not a
# provider failure and is reported apart from these.
ERROR_CLASSES: tuple[str, ...] = (
    "rate_limited",
    "overloaded",
    "server_error",
    "client_error",
    "timeout",
    "connection",
    "stream_broken",
    "bad_response",
)
