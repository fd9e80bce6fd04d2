"""Both protocols in both directions through the gateway, with the real openai and anthropic SDKs."""

from __future__ import annotations

import openai
import orjson
import pytest

from tests.gateway.conftest import GatewayFactory, post, target, vendors


async def _two(sims, gateway: GatewayFactory):  # type: ignore[no-untyped-def]
    sim = await sims(vendors(oa={}, an={}))
    text = "targets:\n" + target(sim, "oa") + target(sim, "an", "anthropic")
    text += "gateway:\n  routes:\n    - {model: gpt, targets: [oa]}\n    - {model: claude, targets: [an]}\n"
    return sim, await gateway(text)


@pytest.mark.parametrize("route", ["gpt", "claude"])
@pytest.mark.parametrize("stream", [False, True])
async def test_openai_sdk_is_served_by_either_protocol(
    sims, gateway: GatewayFactory, sdk, route: str, stream: bool
) -> None:
    sim, gw = await _two(sims, gateway)
    client = sdk.openai(gw)
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "why is the sky blue?"}]
    served = "oa" if route == "gpt" else "an"
    if stream:
        raw = await client.chat.completions.with_raw_response.create(
            model=route, messages=messages, stream=True, stream_options={"include_usage": True})  # type: ignore[arg-type]
        assert raw.headers["x-assay-target"] == served
        parts, finish, usage, model = [], None, None, None
        async for chunk in raw.parse():
            model = chunk.model
            if chunk.choices:
                parts.append(chunk.choices[0].delta.content or "")
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage:
                usage = chunk.usage
        text = "".join(parts)
        assert finish == "stop" and usage is not None and usage.completion_tokens == 12
    else:
        raw = await client.chat.completions.with_raw_response.create(model=route, messages=messages)  # type: ignore[arg-type]
        assert raw.headers["x-assay-target"] == served
        done = raw.parse()
        text, model = done.choices[0].message.content or "", done.model
        assert done.choices[0].finish_reason == "stop" and done.usage and done.usage.completion_tokens == 12
    assert model == served  # the serving target's model
    assert len(text.split()) == 12
    log = sim.servers[served].log
    assert len(log) == 1 and log[0]["status"] == 200


@pytest.mark.parametrize("route", ["gpt", "claude"])
@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_sdk_is_served_by_either_protocol(
    sims, gateway: GatewayFactory, sdk, route: str, stream: bool
) -> None:
    _, gw = await _two(sims, gateway)
    client = sdk.anthropic(gw)
    kwargs = {"model": route, "max_tokens": 100, "system": "be brief",
              "messages": [{"role": "user", "content": "why is the sky blue?"}]}
    if stream:
        async with client.messages.stream(**kwargs) as s:  # type: ignore[arg-type]
            message = await s.get_final_message()
    else:
        message = await client.messages.create(**kwargs)  # type: ignore[arg-type]
    assert message.model == ("oa" if route == "gpt" else "an")
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 12 and message.usage.input_tokens > 0
    assert len(message.content[0].text.split()) == 12  # type: ignore[union-attr]


async def test_models_and_unknown_model_in_each_protocols_format(sims, gateway: GatewayFactory, sdk) -> None:
    _, gw = await _two(sims, gateway)
    client = sdk.openai(gw)
    assert sorted([m.id async for m in client.models.list()]) == ["claude", "gpt"]
    with pytest.raises(openai.NotFoundError) as e:
        await client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}])
    assert "known models: gpt, claude" in str(e.value)
    status, _, body = await post(gw.url + "/v1/messages", {"model": "nope", "max_tokens": 5,
                                                            "messages": [{"role": "user", "content": "hi"}]})
    assert status == 404
    assert orjson.loads(body)["type"] == "error" and orjson.loads(body)["error"]["type"] == "not_found_error"


async def test_tool_call_round_trip_across_protocols(sims, gateway: GatewayFactory, sdk) -> None:
    """An OpenAI client's tools served by an Anthropic target: the call comes back in OpenAI's shape."""
    _, gw = await _two(sims, gateway)
    client = sdk.openai(gw)
    tools = [{"type": "function", "function": {"name": "weather", "description": "Weather in a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    done = await client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "Paris?"}],
                                                tools=tools)  # type: ignore[arg-type]
    call = done.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert done.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "weather" and "city" in orjson.loads(call.function.arguments)  # type: ignore[union-attr]
    chunks = await client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "Paris?"}],
                                                  tools=tools, stream=True)  # type: ignore[arg-type]
    args, name = "", None
    async for chunk in chunks:
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            name = tc.function.name or name  # type: ignore[union-attr]
            args += tc.function.arguments or ""  # type: ignore[union-attr]
    assert name == "weather" and "city" in orjson.loads(args)


async def test_n_to_an_anthropic_target_is_a_clear_400(sims, gateway: GatewayFactory, sdk) -> None:
    _, gw = await _two(sims, gateway)
    client = sdk.openai(gw)
    with pytest.raises(openai.BadRequestError) as e:
        await client.chat.completions.create(model="claude", n=2, messages=[{"role": "user", "content": "hi"}])
    assert "cannot carry: n" in str(e.value)
    two = await client.chat.completions.create(model="gpt", n=2, messages=[{"role": "user", "content": "hi"}])
    assert [c.index for c in two.choices] == [0, 1]


async def test_other_paths_and_methods_answer_in_json(sims, gateway: GatewayFactory) -> None:
    import aiohttp

    _, gw = await _two(sims, gateway)
    async with aiohttp.ClientSession() as s:
        async with s.get(gw.url + "/v1/chat/completions") as r:
            assert r.status == 405 and "POST /v1/chat/completions" in (await r.json())["error"]["message"]
        async with s.post(gw.url + "/v1/completions", json={}) as r:
            assert r.status == 404 and "is not served" in (await r.json())["error"]["message"]


async def test_over_max_in_flight_is_shed_with_the_protocols_overloaded_status(sims, gateway: GatewayFactory) -> None:
    import asyncio

    sim = await sims(vendors(slow={"itl_ms": 100, "output_tokens": 10}))
    gw = await gateway("targets:\n" + target(sim, "slow") +
                       "gateway:\n  max_in_flight: 2\n  routes:\n    - {model: chat, targets: [slow]}\n")  # fmt: skip
    chat = {"model": "chat", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    busy = [asyncio.create_task(post(gw.url + "/v1/chat/completions", chat)) for _ in range(2)]
    await asyncio.sleep(0.3)
    status, headers, _ = await post(gw.url + "/v1/messages", chat)
    assert status == 529 and headers["retry-after"] == "1"  # Anthropic's word for overloaded
    assert [s for s, _, _ in await asyncio.gather(*busy)] == [200, 200]
    assert (await post(gw.url + "/v1/chat/completions", chat))[0] == 200
