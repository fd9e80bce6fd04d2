"""Opt-in probes of real providers: `pytest --live` with the key in the environment.

They check that what the simulator taught the clients holds against the real
APIs: streaming, server-reported usage, and TTFT before E2E.
"""

from __future__ import annotations

import os

import pytest

from assay.clients import make_client, open_session
from assay.model import ChatRequest, Message, Target, Timing

LIVE = [
    ("openai", "https://api.openai.com/v1", "gpt-4o-mini", "OPENAI_API_KEY"),
    ("anthropic", "https://api.anthropic.com", "claude-3-5-haiku-latest", "ANTHROPIC_API_KEY"),
]


@pytest.mark.live
@pytest.mark.parametrize(("api", "base_url", "model", "key_env"), LIVE)
async def test_real_provider_streams_with_usage(api: str, base_url: str, model: str, key_env: str) -> None:
    if not os.environ.get(key_env):
        pytest.skip(f"{key_env} not set")
    target = Target(name=f"live-{api}", api=api, base_url=base_url, model=model, api_key_env=key_env)  # type: ignore[arg-type]
    async with open_session() as session:
        timing = Timing()
        c = await make_client(target, session).send(ChatRequest([Message("user", "Say hello.")], max_tokens=20), timing)
    assert c.text and c.usage.source == "server" and c.usage.output_tokens > 0
    ttft, e2e = timing.ttft_ms(), timing.e2e_ms()
    assert ttft is not None and e2e is not None and 0 < ttft <= e2e
