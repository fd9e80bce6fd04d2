"""The vendors' own SDKs ask the simulator for tool calls, JSON, several choices, continuations and images."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import openai
import pytest

from assay.clients import make_client, open_session
from assay.model import ChatRequest, Message, Tool
from assay.simulator import RunningSimulator, start_simulator
from tests.conftest import one_model_spec, target_for

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "verbose": {"type": "boolean"},
            },
            "required": ["city", "days", "unit"],
        },
    },
}
CLAUDE_WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city.",
    "input_schema": WEATHER["function"]["parameters"],  # type: ignore[index]
}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    running = await start_simulator(one_model_spec(ttft_ms=2, itl_ms=1, output_tokens=12, context_window=2000))
    yield running
    await running.stop()


@pytest.fixture
async def oa(sim: RunningSimulator) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=sim.urls["v"] + "/v1", api_key="unused", max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def an(sim: RunningSimulator) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=sim.urls["v"], api_key="unused", max_retries=0)
    yield client
    await client.close()


def check_weather_arguments(arguments: dict[str, Any]) -> None:
    assert set(arguments) == {"city", "days", "unit"}  # the required ones, each of its type
    assert arguments["city"] == "Paris" and arguments["unit"] == "celsius"
    assert isinstance(arguments["days"], int) and 1 <= arguments["days"] <= 7


async def test_openai_sdk_gets_a_tool_call_whole_and_streamed(oa: openai.AsyncOpenAI) -> None:
    whole = await oa.chat.completions.create(model="m", messages=ASK, tools=[WEATHER], max_tokens=100)  # type: ignore[list-item]
    choice = whole.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("call_")
    check_weather_arguments(json.loads(call.function.arguments))

    stream = await oa.chat.completions.create(
        model="m", messages=ASK, tools=[WEATHER], max_tokens=100, stream=True, stream_options={"include_usage": True}
    )  # type: ignore[list-item]
    chunks = [c async for c in stream]
    pieces = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert len(pieces) > 2 and pieces[0].id and pieces[0].function.name == "get_weather"  # type: ignore[union-attr]
    assert all(p.id is None for p in pieces[1:])  # the id and name come once, then argument fragments
    streamed = "".join(p.function.arguments or "" for p in pieces)  # type: ignore[union-attr]
    check_weather_arguments(json.loads(streamed))
    assert next(c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason) == "tool_calls"
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == len(pieces)


async def test_openai_sdk_forced_tool_and_the_answer_to_its_result(oa: openai.AsyncOpenAI) -> None:
    lookup = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    forced = await oa.chat.completions.create(
        model="m",
        messages=ASK,
        tools=[lookup, WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=100,
    )
    call = forced.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"
    history = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"},
    ]
    answer = await oa.chat.completions.create(model="m", messages=history, tools=[WEATHER], max_tokens=100)  # type: ignore[arg-type, list-item]
    said = answer.choices[0].message.content or ""
    assert "get_weather" in said and "18 degrees and sunny" in said and answer.choices[0].finish_reason == "stop"
    no_tools = await oa.chat.completions.create(model="m", messages=ASK, tools=[WEATHER], tool_choice="none")  # type: ignore[list-item]
    assert no_tools.choices[0].message.tool_calls is None and no_tools.choices[0].message.content


async def test_anthropic_sdk_gets_a_tool_call_whole_and_streamed(an: anthropic.AsyncAnthropic) -> None:
    whole = await an.messages.create(model="m", max_tokens=100, messages=ASK, tools=[CLAUDE_WEATHER])  # type: ignore[arg-type, list-item]
    assert whole.stop_reason == "tool_use"
    (block,) = whole.content
    assert block.type == "tool_use" and block.name == "get_weather" and block.id.startswith("toolu_")
    check_weather_arguments(block.input)  # type: ignore[arg-type]

    async with an.messages.stream(
        model="m",
        max_tokens=100,
        messages=ASK,  # type: ignore[arg-type]
        tools=[CLAUDE_WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "tool", "name": "get_weather"},
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert "input_json" in kinds  # the arguments arrived as partial_json fragments
    assert final.stop_reason == "tool_use" and [b.type for b in final.content] == ["tool_use"]
    check_weather_arguments(final.content[0].input)  # type: ignore[union-attr, arg-type]

    history = [
        *ASK,
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "18 degrees"}]},
    ]
    answer = await an.messages.create(model="m", max_tokens=100, messages=history, tools=[CLAUDE_WEATHER])  # type: ignore[arg-type, list-item]
    text = "".join(b.text for b in answer.content if b.type == "text")
    assert answer.stop_reason == "end_turn" and "18 degrees" in text and "get_weather" in text


async def test_openai_sdk_json_mode_and_structured_output(oa: openai.AsyncOpenAI) -> None:
    plain = await oa.chat.completions.create(model="m", messages=ASK, response_format={"type": "json_object"})
    assert isinstance(json.loads(plain.choices[0].message.content or ""), dict)
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "temperature": {"type": "number", "minimum": -40, "maximum": 50},
            "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}},
            "note": {"type": "string"},
        },
        "required": ["city", "temperature", "tags"],
        "$defs": {"tag": {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}},
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "weather", "schema": schema, "strict": True}}
    stream = await oa.chat.completions.create(model="m", messages=ASK, response_format=fmt, stream=True)  # type: ignore[arg-type]
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    got = json.loads(text)
    assert set(got) == {"city", "temperature", "tags"} and got["city"] == "Paris"
    assert isinstance(got["temperature"], float) and -40 <= got["temperature"] <= 50
    assert isinstance(got["tags"][0]["label"], str)


@pytest.mark.parametrize("stream", [True, False])
async def test_openai_sdk_n_choices_each_counted(oa: openai.AsyncOpenAI, stream: bool) -> None:
    if stream:
        chunks = await oa.chat.completions.create(
            model="m", messages=ASK, n=3, max_tokens=50, stream=True, stream_options={"include_usage": True}
        )
        texts = ["", "", ""]
        finishes: dict[int, str] = {}
        usage = None
        async for c in chunks:
            usage = c.usage or usage
            for ch in c.choices:
                texts[ch.index] += ch.delta.content or ""
                if ch.finish_reason:
                    finishes[ch.index] = ch.finish_reason
        assert finishes == {0: "stop", 1: "stop", 2: "stop"}
    else:
        r = await oa.chat.completions.create(model="m", messages=ASK, n=3, max_tokens=50)
        assert [c.index for c in r.choices] == [0, 1, 2]
        texts = [c.message.content or "" for c in r.choices]
        usage = r.usage
    assert all(len(t.split()) == 12 for t in texts) and len(set(texts)) == 3  # three different answers
    assert usage is not None and usage.completion_tokens == 36


async def test_prefills_are_continued_not_repeated(oa: openai.AsyncOpenAI, an: anthropic.AsyncAnthropic) -> None:
    prefill = "The sky looks blue because"
    messages = [*ASK, {"role": "assistant", "content": prefill}]
    vllm = {"continue_final_message": True, "add_generation_prompt": False}
    r = await oa.chat.completions.create(model="m", messages=messages, max_tokens=50, extra_body=vllm)  # type: ignore[arg-type]
    text = r.choices[0].message.content or ""
    claude = await an.messages.create(model="m", max_tokens=50, messages=messages)  # type: ignore[arg-type]
    continued = "".join(b.text for b in claude.content if b.type == "text")
    for said in (text, continued):
        assert said.startswith(" ") and not said.strip().startswith(prefill.split()[0])
        assert len(said.split()) == 12
    json_prefill = [*ASK, {"role": "assistant", "content": '{"answer": "'}]
    r = await oa.chat.completions.create(
        model="m", messages=json_prefill, response_format={"type": "json_object"}, extra_body=vllm
    )  # type: ignore[arg-type]
    assert isinstance(json.loads('{"answer": "' + (r.choices[0].message.content or "")), dict)


async def test_images_are_accepted_and_counted(
    oa: openai.AsyncOpenAI, an: anthropic.AsyncAnthropic, sim: RunningSimulator
) -> None:
    pixel = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
    text_only = await oa.chat.completions.create(model="m", messages=[{"role": "user", "content": "what is this?"}])
    parts = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{pixel}"}},
    ]
    with_image = await oa.chat.completions.create(model="m", messages=[{"role": "user", "content": parts}])  # type: ignore[misc, list-item]
    assert text_only.usage is not None and with_image.usage is not None
    assert with_image.usage.prompt_tokens == text_only.usage.prompt_tokens + 765
    blocks = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": pixel}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        {"type": "text", "text": "what is this?"},
    ]
    claude = await an.messages.create(model="m", max_tokens=20, messages=[{"role": "user", "content": blocks}])  # type: ignore[misc, list-item]
    assert claude.usage.input_tokens == text_only.usage.prompt_tokens + 2 * 765


async def test_a_prompt_over_the_context_window_is_refused_in_each_protocols_words(
    oa: openai.AsyncOpenAI, an: anthropic.AsyncAnthropic
) -> None:
    long = [{"role": "user", "content": "word " * 2000}]  # ~2,500 tokens, over the window of 2,000
    with pytest.raises(openai.BadRequestError) as info:
        await oa.chat.completions.create(model="m", messages=long)  # type: ignore[arg-type]
    assert info.value.code == "context_length_exceeded" and "maximum context length is 2000" in info.value.message
    with pytest.raises(anthropic.BadRequestError) as claude:
        await an.messages.create(model="m", max_tokens=5, messages=long)  # type: ignore[arg-type]
    assert "prompt is too long" in claude.value.message and "> 2000 maximum" in claude.value.message
    assert claude.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [True, False])
async def test_assays_client_reads_tool_calls_and_times_them(sim: RunningSimulator, api: str, stream: bool) -> None:
    tool = Tool("get_weather", "Weather now.", WEATHER["function"]["parameters"])  # type: ignore[index]
    request = ChatRequest([Message("user", "Weather in Paris?")], max_tokens=100, stream=stream, tools=[tool])
    async with open_session() as session:
        done = await make_client(target_for(sim, "v", "m", api), session).send(request)
    (call,) = done.tool_calls
    assert call.name == "get_weather" and call.id and done.text == ""
    check_weather_arguments(json.loads(call.arguments))
    assert done.finish_reason == ("tool_calls" if api == "openai" else "tool_use")
    assert done.timing.ttft_ms() is not None  # the arguments are the answer's content
    assert done.usage.source == "server" and done.usage.output_tokens == (
        len(done.timing.content_ns) if stream else done.usage.output_tokens
    )
