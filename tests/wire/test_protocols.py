"""Each protocol's two halves: the bodies clients send, what servers refuse, usage both ways."""

from __future__ import annotations

import orjson
import pytest

from assay.errors import WireError
from assay.model import ChatRequest, Message, Usage
from assay.wire import ANTHROPIC, OPENAI, PROTOCOLS, Collector, Finish, finish_from, spell_finish

ASKED = ChatRequest([Message("user", "hi")], max_tokens=20, temperature=0.0, system="sys", extra={"top_p": 0.9})


def test_client_bodies_are_the_ones_assay_always_sent() -> None:
    assert OPENAI.request_body(ASKED, "gpt") == {
        "model": "gpt",
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}],
        "max_tokens": 20,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},  # measured tokens, not estimates
        "top_p": 0.9,
    }
    assert ANTHROPIC.request_body(ASKED, "claude") == {
        "model": "claude",
        "max_tokens": 20,
        "messages": [{"role": "user", "content": "hi"}],
        "system": "sys",
        "temperature": 0.0,
        "stream": True,
        "top_p": 0.9,
    }
    whole = ChatRequest([Message("user", "hi")], stream=False)
    assert "stream" not in OPENAI.request_body(whole, "m") and "stream" not in ANTHROPIC.request_body(whole, "m")
    assert OPENAI.headers("k") == {"authorization": "Bearer k"} and OPENAI.headers(None) == {}
    assert ANTHROPIC.headers("k") == {"anthropic-version": "2023-06-01", "x-api-key": "k"}


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_a_server_half_reads_what_its_client_half_sends(api: str) -> None:
    wire = PROTOCOLS[api]
    incoming = wire.parse_request(orjson.dumps(wire.request_body(ASKED, "m")))
    assert incoming.model == "m" and incoming.include_usage
    assert incoming.request == ASKED


@pytest.mark.parametrize(
    ("api", "body", "status", "says"),
    [
        ("openai", b"{not json", 400, "not valid JSON"),
        ("openai", b"[1]", 400, "must be a JSON object"),
        ("openai", b'{"model": "m", "messages": []}', 400, "'messages' must be a non-empty list"),
        ("openai", b'{"model": "m", "messages": ["hi"]}', 400, "messages[0] must be an object"),
        ("openai", b'{"messages": [{"role": "user", "content": "x"}]}', 400, "model: field required"),
        ("openai", b'{"model": "m", "max_tokens": "9", "messages": [{"role": "user", "content": "x"}]}', 400,
         "max_tokens must be an integer"),
        ("openai", b'{"model": "m", "messages": [{"role": "user", "content": 5}]}', 400,
         "messages[0].content must be a string or a list"),
        ("anthropic", b'{"model": "m", "messages": [{"role": "user", "content": "x"}]}', 400,
         "max_tokens: field required"),
        ("anthropic", b'{"model": "m", "max_tokens": 5, "temperature": "hot", "messages": [{"role": "user"}]}', 400,
         "temperature must be a number"),
    ],
)  # fmt: skip
def test_bad_bodies_are_refused_in_the_protocols_own_format(api: str, body: bytes, status: int, says: str) -> None:
    wire = PROTOCOLS[api]
    with pytest.raises(WireError) as info:
        wire.parse_request(body)
    e = info.value
    assert e.status == status and says in e.message
    message, kind = wire.decode_error(e.body)
    assert message == e.message and kind == "invalid_request_error"
    if api == "anthropic":
        assert orjson.loads(e.body)["type"] == "error"


def test_content_parts_system_roles_and_unknown_fields() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "developer", "content": "be terse"},
            {"role": "user", "content": [{"type": "text", "text": "look: "}, {"type": "image_url", "image_url": {}},
                                         {"type": "text", "text": "a cat"}]},
        ],
        "max_completion_tokens": 7,
        "stop": ["\n"],
    }  # fmt: skip
    incoming = OPENAI.parse_request(orjson.dumps(body))
    r = incoming.request
    assert r.system == "be terse" and r.messages == [Message("user", "look: a cat")]
    assert r.max_tokens == 7 and r.extra == {"stop": ["\n"]} and not r.stream and not incoming.include_usage
    block_system = {"model": "m", "max_tokens": 3, "system": [{"type": "text", "text": "S"}],
                    "messages": [{"role": "user", "content": [{"type": "text", "text": "U"}]}]}  # fmt: skip
    r = ANTHROPIC.parse_request(orjson.dumps(block_system)).request
    assert r.system == "S" and r.messages == [Message("user", "U")]


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_whole_bodies_carry_cached_and_reasoning_counts_both_ways(api: str) -> None:
    wire = PROTOCOLS[api]
    usage = Usage(input_tokens=100, output_tokens=9, cached_tokens=60, source="server")
    if api == "anthropic":
        usage.cache_write_tokens = 10
    else:
        usage.reasoning_tokens = 4
    got = Collector()
    for event in wire.decode_body(wire.encode_body("r", "m", "text", Finish("stop"), usage)):
        got.add(event)
    assert got.usage == usage and got.text == "text" and got.id == "r" and got.done
    assert got.finish is not None and got.finish.reason == "stop"


def test_finish_reasons_map_both_ways_and_keep_the_raw_string() -> None:
    assert finish_from("anthropic", "end_turn") == Finish("stop", "end_turn")
    assert finish_from("anthropic", "refusal").reason == "content_filter"
    assert finish_from("openai", "tool_calls").reason == "tool_calls"
    assert finish_from("openai", "abort").reason == "other"  # a server's own word: kept raw, meaning unknown
    assert spell_finish("anthropic", Finish("length", "length")) == "max_tokens"
    assert spell_finish("openai", Finish("stop", "end_turn")) == "stop"
    assert spell_finish("anthropic", Finish("stop", "stop_sequence")) == "stop_sequence"
    assert spell_finish("openai", Finish("content_filter")) == "content_filter"
