"""Tool calls, tool results, JSON mode, images, choices and prefills across both protocols, both halves.

The round trips go OpenAI -> neutral -> Anthropic -> neutral -> OpenAI, the way a
gateway translates; the end-to-end ones put the vendor's SDK in front of an
in-memory translation and the simulator, speaking the other protocol, behind it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import orjson
import pytest

from assay.errors import WireError
from assay.model import ChatRequest, ForcedTool, Image, Message, ResponseFormat, Tool, ToolCall, Usage
from assay.simulator import SimulatorProcess
from assay.wire import (
    ANTHROPIC,
    JSON_TOOL,
    OPENAI,
    PROTOCOLS,
    Collector,
    Done,
    Event,
    Finish,
    SSEDecoder,
    Start,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)

ANTHROPIC_USAGE = Usage(input_tokens=7, output_tokens=5, source="server")
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
OPENAI_BODY: dict[str, Any] = {
    "model": "m",
    "max_tokens": 50,
    "messages": [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare "},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
                {"type": "text", "text": " with "},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                {"type": "text", "text": " and check the weather."},
            ],
        },
        {
            "role": "assistant",
            "content": "Looking.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "25C"},
        {"role": "user", "content": "Which is warmer?"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": "Weather now.", "parameters": WEATHER_SCHEMA},
        }
    ],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "parallel_tool_calls": False,
}


def via_anthropic(request: ChatRequest) -> ChatRequest:
    """What an Anthropic server half reads from what the Anthropic client half sends for `request`."""
    return ANTHROPIC.parse_request(orjson.dumps(ANTHROPIC.request_body(request, "m"))).request


def test_tools_results_and_images_survive_openai_to_anthropic_and_back() -> None:
    first = OPENAI.parse_request(orjson.dumps(OPENAI_BODY)).request
    user = first.messages[0]
    assert user.content == "Compare  with  and check the weather."
    assert user.images == [
        Image(data=PIXEL, media_type="image/png", at=8),
        Image(url="https://example.com/cat.png", at=14),
    ]
    assert first.messages[1].tool_calls == [
        ToolCall("call_1", "get_weather", '{"city":"Paris"}'),
        ToolCall("call_2", "get_weather", '{"city":"Rome"}'),
    ]
    assert [(m.role, m.tool_call_id, m.content) for m in first.messages[2:4]] == [
        ("tool", "call_1", "18C"),
        ("tool", "call_2", "25C"),
    ]
    assert first.tools == [Tool("get_weather", "Weather now.", WEATHER_SCHEMA)]
    assert first.tool_choice == ForcedTool("get_weather") and first.parallel_tool_calls is False

    upstream = ANTHROPIC.request_body(first, "claude")
    paris, rome, question = upstream["messages"][2]["content"]  # both results and the next question: one user turn
    assert paris == {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"}
    assert rome["tool_use_id"] == "call_2" and question == {"type": "text", "text": "Which is warmer?"}
    assert len(upstream["messages"]) == 3
    assert upstream["tool_choice"] == {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}
    assert upstream["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PIXEL},
    }

    second = via_anthropic(first)
    assert second == first  # nothing lost or changed on the way
    back = OPENAI.request_body(second, "m")
    for key in ("tools", "tool_choice", "parallel_tool_calls", "max_tokens"):
        assert back[key] == OPENAI_BODY[key]
    assert back["messages"][1]["content"] == OPENAI_BODY["messages"][1]["content"]
    assert back["messages"][2]["tool_calls"] == OPENAI_BODY["messages"][2]["tool_calls"]
    assert back["messages"][3:] == OPENAI_BODY["messages"][3:]


def test_anthropic_tool_choices_results_with_errors_and_prefills_map_both_ways() -> None:
    body = {
        "model": "m",
        "max_tokens": 9,
        "tools": [{"name": "t", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any"},
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "t", "input": {"a": 1}}]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "is_error": True,
                        "content": [{"type": "text", "text": "boom"}],
                    },
                    {"type": "text", "text": "try again"},
                ],
            },
            {"role": "assistant", "content": "I will"},
        ],
    }
    r = ANTHROPIC.parse_request(orjson.dumps(body)).request
    assert r.tool_choice == "required" and r.continues
    assert [(m.role, m.content, m.tool_error) for m in r.messages[2:]] == [
        ("tool", "boom", True),
        ("user", "try again", False),
        ("assistant", "I will", False),
    ]
    sent = OPENAI.request_body(r, "m")
    assert (
        sent["tool_choice"] == "required" and sent["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"a":1}'
    )
    assert sent["continue_final_message"] is True and sent["add_generation_prompt"] is False  # vLLM's words
    assert OPENAI.parse_request(orjson.dumps(sent)).request.messages[:2] == r.messages[:2]
    assert ANTHROPIC.request_body(r, "m")["messages"] == [
        *body["messages"][:2],
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "boom", "is_error": True},
                {"type": "text", "text": "try again"},
            ],
        },
        {"role": "assistant", "content": "I will"},
    ]


def test_extras_go_only_to_their_own_protocol_unless_they_mean_the_same_there() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "logprobs": True,
        "user": "u-1",
        "stop": "END",
        "top_p": 0.5,
        "n": 2,
    }
    r = OPENAI.parse_request(orjson.dumps(body)).request
    assert r.extra_api == "openai" and r.n == 2
    assert {k: OPENAI.request_body(r, "m")[k] for k in ("logprobs", "user", "stop", "top_p", "n")} == {
        "logprobs": True,
        "user": "u-1",
        "stop": "END",
        "top_p": 0.5,
        "n": 2,
    }
    assert OPENAI.unsupported(r) == []
    upstream = ANTHROPIC.request_body(r, "m")
    assert upstream["stop_sequences"] == ["END"] and upstream["top_p"] == 0.5
    assert not {"logprobs", "user", "stop", "n"} & set(upstream)  # user is harmless: dropped, not refused
    assert ANTHROPIC.unsupported(r) == ["logprobs", "n"]
    claude = ANTHROPIC.parse_request(
        orjson.dumps(
            {
                "model": "m",
                "max_tokens": 5,
                "top_k": 5,
                "metadata": {"user_id": "x"},
                "messages": [{"role": "user", "content": "hi"}],
            }
        )
    ).request
    assert OPENAI.unsupported(claude) == ["top_k"] and "metadata" not in OPENAI.request_body(claude, "m")
    assert ANTHROPIC.request_body(claude, "m")["metadata"] == {"user_id": "x"}


def test_json_mode_becomes_a_forced_tool_for_anthropic() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "w", "schema": WEATHER_SCHEMA}}
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "response_format": fmt}
    r = OPENAI.parse_request(orjson.dumps(body)).request
    assert r.response_format == ResponseFormat("json_schema", WEATHER_SCHEMA, "w")
    assert OPENAI.request_body(r, "m")["response_format"] == fmt
    upstream = ANTHROPIC.request_body(r, "m")
    assert upstream["tools"][0]["name"] == JSON_TOOL and upstream["tools"][0]["input_schema"] == WEATHER_SCHEMA
    assert upstream["tool_choice"] == {"type": "tool", "name": JSON_TOOL}
    with_tools = ChatRequest(r.messages, tools=[Tool("t")], response_format=ResponseFormat("json_object"))
    upstream = ANTHROPIC.request_body(with_tools, "m")
    assert [t["name"] for t in upstream["tools"]] == ["t", JSON_TOOL] and upstream["tool_choice"] == {"type": "any"}
    # An answer through json_answer reads as JSON text that finished normally, whole or streamed.
    answer = {
        "id": "a",
        "model": "m",
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 3, "output_tokens": 4},
        "content": [{"type": "tool_use", "id": "toolu_1", "name": JSON_TOOL, "input": {"city": "Paris"}}],
    }
    got = fold(ANTHROPIC.decode_body(orjson.dumps(answer)))
    assert json.loads(got.text) == {"city": "Paris"} and not got.tool_calls and got.finish == Finish("stop", "end_turn")
    enc = ANTHROPIC.stream_encoder("a", "m", True)
    stream = enc.start(3) + enc.tool_call(ToolCallDelta(0, "toolu_1", JSON_TOOL))
    stream += enc.tool_call(ToolCallDelta(0, arguments='{"city": ')) + enc.tool_call(
        ToolCallDelta(0, arguments='"Paris"}')
    )
    streamed = fold(stream_events("anthropic", stream + enc.close(Finish("tool_calls"), None)))
    assert streamed.text == '{"city": "Paris"}' and streamed.finish == Finish("stop", "end_turn")
    assert streamed.finish is not None and got.usage is not None
    openai_says = OPENAI.encode_body("r", "m", streamed.text, streamed.finish, got.usage)
    assert orjson.loads(openai_says)["choices"][0]["finish_reason"] == "stop"


def fold(events: list[Event]) -> Collector:
    got = Collector()
    for e in events:
        got.add(e)
    return got


def stream_events(api: str, stream: bytes) -> list[Event]:
    sse, decoder = SSEDecoder(), PROTOCOLS[api].stream_decoder()
    events: list[Event] = []
    for i in range(0, len(stream), 5):
        for item in sse.feed(stream[i : i + 5]):
            events += decoder.decode(item)
    return events


ANSWER: list[Event] = [
    Start("r", "m", 7),
    TextDelta("Checking."),
    ToolCallDelta(0, "call_a", "get_weather", ""),
    ToolCallDelta(0, arguments='{"city":'),
    ToolCallDelta(0, arguments=' "Paris"}'),
    ToolCallDelta(1, "call_b", "get_time", '{"tz": "CET"}'),
    Finish("tool_calls"),
]


@pytest.mark.parametrize(("front", "back"), [("openai", "anthropic"), ("anthropic", "openai")])
def test_streamed_and_whole_tool_calls_cross_both_ways(front: str, back: str) -> None:
    upstream = PROTOCOLS[back].stream_encoder("r", "m", True)
    usage = UsageReport(ANTHROPIC_USAGE)
    wire_bytes = b"".join(upstream.encode(e) for e in [*ANSWER, usage, Done()])
    events = stream_events(back, wire_bytes)
    downstream = PROTOCOLS[front].stream_encoder("g", "m", True)
    got = fold(stream_events(front, b"".join(downstream.encode(e) for e in events)))
    want = [ToolCall("call_a", "get_weather", '{"city": "Paris"}'), ToolCall("call_b", "get_time", '{"tz": "CET"}')]
    assert got.text == "Checking." and got.tool_calls == want and got.finish is not None
    assert got.finish.reason == "tool_calls" and got.usage is not None and got.usage.output_tokens == 5
    body = PROTOCOLS[back].encode_body("r", "m", got.text, got.finish, got.usage, tool_calls=got.tool_calls)
    whole = fold(PROTOCOLS[back].decode_body(body))
    again = PROTOCOLS[front].encode_body(
        "g", "m", whole.text, whole.finish or Finish("stop"), got.usage, tool_calls=whole.tool_calls
    )
    final = fold(PROTOCOLS[front].decode_body(again))
    assert [(c.name, json.loads(c.arguments)) for c in final.tool_calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"tz": "CET"}),
    ]
    assert [c.id for c in final.tool_calls] == ["call_a", "call_b"] and final.text == "Checking."


def test_choices_are_streamed_with_their_indexes_and_folded_apart() -> None:
    enc = OPENAI.stream_encoder("r", "m", True)
    events: list[Event] = [
        Start("r", "m"),
        TextDelta("a"),
        TextDelta("b", 1),
        TextDelta("c"),
        TextDelta("d", 1),
        Finish("length", choice=1),
        Finish("stop"),
        UsageReport(ANTHROPIC_USAGE),
        Done(),
    ]
    got = fold(stream_events("openai", b"".join(enc.encode(e) for e in events)))
    assert [(c.index, c.text, c.finish.reason if c.finish else None) for c in got.choices] == [
        (0, "ac", "stop"),
        (1, "bd", "length"),
    ]
    body = OPENAI.encode_body("r", "m", got.text, Finish("stop"), ANTHROPIC_USAGE, more_choices=got.choices[1:])
    assert [(c.index, c.text) for c in fold(OPENAI.decode_body(body)).choices] == [(0, "ac"), (1, "bd")]
    claude = ANTHROPIC.stream_encoder("r", "m", True)  # one choice only: the others are not said
    assert fold(stream_events("anthropic", b"".join(claude.encode(e) for e in events))).text == "ac"


@pytest.mark.parametrize(
    ("api", "patch", "says"),
    [
        ("openai", {"tools": {"name": "x"}}, "tools must be a list"),
        ("openai", {"tools": [{"type": "function"}]}, "tools[0] must be"),
        ("openai", {"tools": [{"type": "function", "function": {"name": ""}}]}, "tools[0].function.name"),
        ("openai", {"tools": [{"type": "function", "function": {"name": "a", "parameters": []}}]}, "JSON schema"),
        (
            "openai",
            {"tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "not one of the request's tools",
        ),
        ("openai", {"tool_choice": "sometimes"}, "tool_choice must be"),
        ("openai", {"tool_choice": "required"}, "has no tools"),
        ("openai", {"messages": [{"role": "tool", "content": "r"}]}, "needs a string 'tool_call_id'"),
        (
            "openai",
            {"messages": [{"role": "assistant", "tool_calls": [{"id": "c"}]}]},
            "must be an object with a 'function'",
        ),
        (
            "openai",
            {
                "messages": [
                    {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {}}}]}
                ]
            },
            "arguments must be a string",
        ),
        ("openai", {"n": 0}, "n must be an integer"),
        ("openai", {"n": "2"}, "n must be an integer"),
        ("openai", {"n": True}, "n must be an integer"),
        ("openai", {"response_format": {"type": "yaml"}}, "response_format.type"),
        ("openai", {"response_format": {"type": "json_schema", "json_schema": {"schema": 3}}}, "schema"),
        (
            "openai",
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 5}}]}]},
            "image_url must be an object with a string 'url'",
        ),
        (
            "openai",
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:text/plain,hi"}}]}
                ]
            },
            "data:image/...;base64",
        ),
        ("openai", {"parallel_tool_calls": "yes"}, "parallel_tool_calls must be a boolean"),
        ("anthropic", {"tools": [{"name": "a"}]}, "input_schema: Field required"),
        ("anthropic", {"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "only custom tools"),
        ("anthropic", {"tool_choice": {"type": "tool", "name": "zzz"}}, "not one of the request's tools"),
        ("anthropic", {"tool_choice": "auto"}, "tool_choice: expected"),
        ("anthropic", {"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]}, "tool_use_id"),
        (
            "anthropic",
            {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}]},
            "expected {type: base64",
        ),
        (
            "anthropic",
            {"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "b"}]}]},
            "belong in assistant messages",
        ),
        (
            "anthropic",
            {
                "messages": [
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "b", "input": []}]}
                ]
            },
            "valid dictionary",
        ),
    ],
)
def test_bad_shapes_are_refused_with_a_clear_400(api: str, patch: dict[str, Any], says: str) -> None:
    body: dict[str, Any] = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    if api == "anthropic" and "tools" not in patch and "tool_choice" in patch:
        body["tools"] = [{"name": "t", "input_schema": {"type": "object"}}]
    body.update(patch)
    with pytest.raises(WireError) as info:
        PROTOCOLS[api].parse_request(orjson.dumps(body))
    assert info.value.status == 400 and says in info.value.message


def test_what_cannot_cross_is_named() -> None:
    asks = ChatRequest([Message("assistant", "", tool_calls=[ToolCall("c", "f", "[1, 2]")]), Message("user", "x")])
    assert ANTHROPIC.unsupported(asks) == ["tool call arguments that are not a JSON object"]
    array = ChatRequest([Message("user", "x")], response_format=ResponseFormat("json_schema", {"type": "array"}))
    assert ANTHROPIC.unsupported(array) == ["response_format with a schema whose root is not an object"]
    reserved = ChatRequest([Message("user", "x")], tools=[Tool(JSON_TOOL)])
    assert ANTHROPIC.unsupported(reserved) == [f"a tool named {JSON_TOOL!r} (reserved)"]
    picture = ChatRequest([Message("tool", "r", tool_call_id="c", images=[Image(url="https://x/y.png")])])
    assert OPENAI.unsupported(picture) == ["images in a tool result"] and ANTHROPIC.unsupported(picture) == []


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    keys = [
        "model",
        "messages",
        "role",
        "content",
        "tools",
        "tool_choice",
        "type",
        "function",
        "name",
        "n",
        "parameters",
        "input_schema",
        "tool_calls",
        "tool_call_id",
        "id",
        "arguments",
        "image_url",
        "url",
        "source",
        "data",
        "media_type",
        "response_format",
        "json_schema",
        "schema",
        "max_tokens",
        "text",
        "tool_use_id",
        "input",
        "stream",
        "stream_options",
        "system",
        "temperature",
        "is_error",
        "parallel_tool_calls",
        "disable_parallel_tool_use",
    ]
    values: list[Any] = [
        "user",
        "assistant",
        "tool",
        "text",
        "image_url",
        "image",
        "tool_use",
        "tool_result",
        "function",
        "auto",
        "any",
        "none",
        "required",
        "json_schema",
        "json_object",
        "base64",
        "url",
        "data:image/png;base64,AA",
        "m",
        "",
        0,
        1,
        -1,
        2.5,
        True,
        None,
    ]
    if depth > 4 or rng.random() < 0.3:
        return rng.choice(values)
    if rng.random() < 0.5:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randrange(6))}


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_random_bodies_are_parsed_or_refused_never_crash(api: str) -> None:
    rng = random.Random(7)
    wire, parsed = PROTOCOLS[api], 0
    for _ in range(4000):
        body = _random_json(rng)
        if isinstance(body, dict) and rng.random() < 0.8:
            body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], **body}
        try:
            request = wire.parse_request(orjson.dumps(body)).request
        except WireError as e:
            assert e.status == 400 and e.message
            continue
        parsed += 1
        for other in PROTOCOLS.values():  # whatever was read can be written, or named as not sendable
            other.unsupported(request)
            orjson.dumps(other.request_body(request, "m"))
    assert parsed > 100


class _Gateway:
    """OpenAI's SDK in front, the simulator speaking Anthropic behind: the translation a gateway makes."""

    def __init__(self, upstream_url: str) -> None:
        self.upstream = httpx.Client(base_url=upstream_url, timeout=30)
        self.sent: list[dict[str, Any]] = []

    def __call__(self, http: httpx.Request) -> httpx.Response:
        incoming = OPENAI.parse_request(http.content)
        assert ANTHROPIC.unsupported(incoming.request) == []
        body = ANTHROPIC.request_body(incoming.request, incoming.model)
        self.sent.append(body)
        answer = self.upstream.post("/v1/messages", content=orjson.dumps(body), headers=ANTHROPIC.headers(None))
        assert answer.status_code == 200, answer.text
        if not incoming.request.stream:
            got = fold(ANTHROPIC.decode_body(answer.content))
            assert got.finish is not None and got.usage is not None
            out = OPENAI.encode_body("gw", incoming.model, got.text, got.finish, got.usage, tool_calls=got.tool_calls)
            return httpx.Response(200, content=out, headers={"content-type": "application/json"})
        enc = OPENAI.stream_encoder("gw", incoming.model, incoming.include_usage)
        out = b"".join(enc.encode(e) for e in stream_events("anthropic", answer.content))
        return httpx.Response(200, content=out, headers={"content-type": "text/event-stream"})


@pytest.fixture(scope="module")
def through_anthropic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[openai.OpenAI, _Gateway]]:
    profile = Path(tmp_path_factory.mktemp("sim")) / "claude.yaml"
    profile.write_text(
        "vendors:\n  - name: c\n    models:\n      - {name: m, ttft_ms: 2, itl_ms: 1, output_tokens: 10}\n"
    )
    with SimulatorProcess(profile=profile, seed=3) as sim:
        gw = _Gateway(sim.urls["c"])
        http = httpx.Client(transport=httpx.MockTransport(gw))
        with (
            gw.upstream,
            openai.OpenAI(base_url="http://gateway/v1", api_key="k", http_client=http, max_retries=0) as client,
        ):
            yield client, gw


@pytest.mark.parametrize("stream", [True, False])
def test_openai_json_mode_through_an_anthropic_upstream(
    through_anthropic: tuple[openai.OpenAI, _Gateway], stream: bool
) -> None:
    client, gw = through_anthropic
    fmt = {"type": "json_schema", "json_schema": {"name": "w", "schema": WEATHER_SCHEMA}}
    kwargs: dict[str, Any] = {
        "model": "m",
        "messages": [{"role": "user", "content": "Weather?"}],
        "response_format": fmt,
        "max_tokens": 50,
    }
    if stream:
        chunks = list(client.chat.completions.create(**kwargs, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = next(c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason)
        calls = [c for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    else:
        r = client.chat.completions.create(**kwargs)
        text, finish, calls = (
            r.choices[0].message.content or "",
            r.choices[0].finish_reason,
            r.choices[0].message.tool_calls or [],
        )
    assert json.loads(text) == {"city": "Paris"} and finish == "stop" and not calls
    assert gw.sent[-1]["tool_choice"] == {"type": "tool", "name": JSON_TOOL}


@pytest.mark.parametrize("stream", [True, False])
def test_openai_tools_and_images_through_an_anthropic_upstream(
    through_anthropic: tuple[openai.OpenAI, _Gateway], stream: bool
) -> None:
    client, gw = through_anthropic
    tool = OPENAI_BODY["tools"][0]
    parts = [
        {"type": "text", "text": "Weather here?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
    ]
    kwargs: dict[str, Any] = {
        "model": "m",
        "messages": [{"role": "user", "content": parts}],
        "tools": [tool],
        "max_tokens": 50,
    }
    if stream:
        chunks = list(client.chat.completions.create(**kwargs, stream=True))
        pieces = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls]
        name, call_id = pieces[0].function.name, pieces[0].id  # type: ignore[union-attr]
        arguments = "".join(p.function.arguments or "" for p in pieces)  # type: ignore[union-attr]
        finish = next(c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason)
    else:
        r = client.chat.completions.create(**kwargs)
        (call,) = r.choices[0].message.tool_calls or []
        name, call_id, arguments, finish = (
            call.function.name,
            call.id,
            call.function.arguments,
            r.choices[0].finish_reason,
        )
    assert name == "get_weather" and json.loads(arguments) == {"city": "Paris"} and finish == "tool_calls"
    assert gw.sent[-1]["messages"][0]["content"][1]["type"] == "image"
    follow = [
        *kwargs["messages"],
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "18C and sunny"},
    ]
    r = client.chat.completions.create(model="m", messages=follow, tools=[tool], max_tokens=50)  # type: ignore[arg-type]
    assert "18C and sunny" in (r.choices[0].message.content or "") and r.choices[0].finish_reason == "stop"
