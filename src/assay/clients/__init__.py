"""Wire protocols. Providers register by API kind; `make_client` picks one for a target."""

from __future__ import annotations

import aiohttp

from assay.clients.anthropic import AnthropicClient
from assay.clients.base import ProviderClient, StreamState, Timeouts, estimate_tokens, open_session
from assay.clients.openai import OpenAIClient
from assay.clock import Clock
from assay.model import Target

__all__ = [
    "CLIENTS",
    "AnthropicClient",
    "OpenAIClient",
    "ProviderClient",
    "StreamState",
    "Timeouts",
    "estimate_tokens",
    "make_client",
    "open_session",
]

CLIENTS: dict[str, type[ProviderClient]] = {"openai": OpenAIClient, "anthropic": AnthropicClient}


def make_client(
    target: Target, session: aiohttp.ClientSession, timeouts: Timeouts | None = None, clock: Clock | None = None
) -> ProviderClient:
    """The client for a target's API kind."""
    return CLIENTS[target.api](target, session, timeouts, clock)
