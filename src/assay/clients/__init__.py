"""Provider clients over a transport seam. Providers register by API kind; `make_client` picks one for a target.

    client.py      ProviderClient: stream() yields neutral events as they arrive, send() folds them
    transport.py   the Transport seam; AiohttpTransport (the real one, stamping bytes on arrival), open_session
    inprocess.py   InProcessTransport: an aiohttp app in the same loop, joined by an in-memory pipe
    deadlines.py   the four phase timeouts and the one re-armed timer that enforces them
    errors.py      HTTP status, transport failures and timeouts -> the error taxonomy; Retry-After and limits

What each protocol says on the wire is `assay.wire`'s.
"""

from __future__ import annotations

import aiohttp

from assay.clients.client import AnthropicClient, OpenAIClient, ProviderClient, StreamHead
from assay.clients.deadlines import Timeouts
from assay.clients.inprocess import InProcessTransport
from assay.clients.transport import AiohttpTransport, HttpRequest, Response, Transport, TransportError, open_session
from assay.clock import Clock
from assay.model import Target

__all__ = [
    "CLIENTS",
    "AiohttpTransport",
    "AnthropicClient",
    "HttpRequest",
    "InProcessTransport",
    "OpenAIClient",
    "ProviderClient",
    "Response",
    "StreamHead",
    "Timeouts",
    "Transport",
    "TransportError",
    "make_client",
    "open_session",
]

CLIENTS: dict[str, type[ProviderClient]] = {OpenAIClient.api: OpenAIClient, AnthropicClient.api: AnthropicClient}


def make_client(
    target: Target,
    session: Transport | aiohttp.ClientSession,
    timeouts: Timeouts | None = None,
    clock: Clock | None = None,
) -> ProviderClient:
    """The client for a target's API kind, over a transport (`open_session()`, `InProcessTransport`, ...)."""
    return CLIENTS[target.api](target, session, timeouts, clock)
