"""The vendors' own SDKs talk to the simulator as they would to the real APIs."""

from __future__ import annotations

import anthropic
import openai
import pytest

from assay.simulator import Faults, SimulatorProcess, start_simulator
from tests.conftest import one_model_spec


def test_openai_sdk_streams_and_reads_usage(demo_process: SimulatorProcess) -> None:
    with openai.OpenAI(base_url=demo_process.urls["atlas"] + "/v1", api_key="unused", max_retries=0) as client:
        _stream_and_list(client)


def _stream_and_list(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="atlas-opus",
        messages=[{"role": "user", "content": "Why is the sky blue?"}],
        max_tokens=20,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == 20
    assert len(text.split()) == 20
    models = client.models.list()
    assert [m.id for m in models.data] == ["atlas-opus"]


def test_openai_sdk_non_streaming(demo_process: SimulatorProcess) -> None:
    with openai.OpenAI(base_url=demo_process.urls["atlas"] + "/v1", api_key="unused", max_retries=0) as client:
        r = client.chat.completions.create(
            model="atlas-opus", messages=[{"role": "user", "content": "hi"}], max_tokens=5
        )
    assert r.choices[0].finish_reason == "length"
    assert r.usage is not None and r.usage.completion_tokens == 5


def test_anthropic_sdk_streams(demo_process: SimulatorProcess) -> None:
    with (
        anthropic.Anthropic(base_url=demo_process.urls["atlas"], api_key="unused", max_retries=0) as client,
        client.messages.stream(
            model="atlas-opus", max_tokens=15, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert len(text.split()) == 15
    assert final.usage.output_tokens == 15
    assert final.stop_reason == "max_tokens"


async def test_sdks_see_429_with_retry_after() -> None:
    sim = await start_simulator(one_model_spec(faults=Faults(rate_limited=1.0), retry_after_s=3))
    try:
        oa = openai.AsyncOpenAI(base_url=sim.urls["v"] + "/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.RateLimitError) as info:
            await oa.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert info.value.response.headers["retry-after"] == "3"
        await oa.close()
        an = anthropic.AsyncAnthropic(base_url=sim.urls["v"], api_key="unused", max_retries=0)
        with pytest.raises(anthropic.RateLimitError):
            await an.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
        await an.close()
    finally:
        await sim.stop()


async def test_sdks_raise_on_in_stream_error_events() -> None:
    """The SDKs' own stream parsers recognise the simulator's mid-stream error events as errors."""
    sim = await start_simulator(one_model_spec(faults=Faults(error_event=1.0), ttft_ms=5, itl_ms=1, output_tokens=20))
    try:
        oa = openai.AsyncOpenAI(base_url=sim.urls["v"] + "/v1", api_key="unused", max_retries=0)
        stream = await oa.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
        with pytest.raises(openai.APIError, match="injected mid-stream"):
            async for _ in stream:
                pass
        await oa.close()
        an = anthropic.AsyncAnthropic(base_url=sim.urls["v"], api_key="unused", max_retries=0)
        with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
            async with an.messages.stream(model="m", max_tokens=20, messages=[{"role": "user", "content": "hi"}]) as s:
                async for _ in s:
                    pass
        await an.close()
    finally:
        await sim.stop()
