"""A gateway's round trip, in memory: one protocol's server half in front, the other's client half behind.

The caller is the vendor's own SDK; its request reaches the front protocol's
server half (through httpx's MockTransport, no sockets), is sent upstream with
the other protocol's client half to that protocol's server half, and the
neutral events decoded from the upstream answer are encoded back by the front
server half for the SDK to read. Text, finish reason and usage must survive.
"""

from __future__ import annotations

import anthropic
import httpx2 as httpx
import openai
import orjson
import pytest

from assay.model import Usage
from assay.wire import PROTOCOLS, Collector, Event, Finish, Incoming, SSEDecoder

ANSWER = ["Rayleigh", " scattering:", " blue light", " bends more."]
UPSTREAM_USAGE = Usage(input_tokens=41, output_tokens=len(ANSWER), source="server")


def upstream_answer(api: str, body: bytes) -> tuple[Incoming, bytes]:
    """The provider behind the gateway: its server half parses the request and answers it."""
    wire = PROTOCOLS[api]
    asked = wire.parse_request(body)
    finish = Finish("length")  # max_tokens reached
    if not asked.request.stream:
        return asked, wire.encode_body("up-1", asked.model, "".join(ANSWER), finish, UPSTREAM_USAGE)
    enc = wire.stream_encoder("up-1", asked.model, asked.include_usage)
    out = enc.start(UPSTREAM_USAGE.input_tokens) + b"".join(enc.text(t) for t in ANSWER)
    return asked, out + enc.close(finish, UPSTREAM_USAGE)


def stream_events(api: str, stream: bytes) -> list[Event]:
    """A client half reading a stream, in chunks of 7 bytes."""
    sse, decoder = SSEDecoder(), PROTOCOLS[api].stream_decoder()
    events: list[Event] = []
    for i in range(0, len(stream), 7):
        for item in sse.feed(stream[i : i + 7]):
            events += decoder.decode(item)
    return events


def gateway(front: str, back: str, seen: list[Incoming]) -> httpx.MockTransport:
    def handle(http: httpx.Request) -> httpx.Response:
        incoming = PROTOCOLS[front].parse_request(http.content)  # what the SDK asked, in neutral terms
        seen.append(incoming)
        upstream_body = orjson.dumps(PROTOCOLS[back].request_body(incoming.request, incoming.model))
        asked_upstream, answer = upstream_answer(back, upstream_body)
        seen.append(asked_upstream)
        rid = "gw-1"
        if not incoming.request.stream:
            got = Collector()
            for event in PROTOCOLS[back].decode_body(answer):
                got.add(event)
            assert got.finish is not None and got.usage is not None
            body = PROTOCOLS[front].encode_body(rid, incoming.model, got.text, got.finish, got.usage)
            return httpx.Response(200, content=body, headers={"content-type": "application/json"})
        enc = PROTOCOLS[front].stream_encoder(rid, incoming.model, incoming.include_usage)
        out = b"".join(enc.encode(event) for event in stream_events(back, answer))
        return httpx.Response(200, content=out, headers={"content-type": "text/event-stream"})

    return httpx.MockTransport(handle)


def check_requests(seen: list[Incoming], stream: bool) -> None:
    front, upstream = seen
    for asked in (front, upstream):
        r = asked.request
        assert asked.model == "m" and r.system == "Be brief." and r.stream is stream
        assert [(m.role, m.content) for m in r.messages] == [("user", "Why is the sky blue?")]
        assert r.max_tokens == len(ANSWER) and r.temperature == 0.5


@pytest.mark.parametrize("stream", [True, False])
def test_openai_caller_through_an_anthropic_upstream(stream: bool) -> None:
    seen: list[Incoming] = []
    http = httpx.Client(transport=gateway("openai", "anthropic", seen))
    with openai.OpenAI(base_url="http://gateway/v1", api_key="k", http_client=http, max_retries=0) as client:
        kwargs = {
            "model": "m",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Why is the sky blue?"},
            ],
            "max_tokens": len(ANSWER),
            "temperature": 0.5,
        }
        if stream:
            chunks = list(client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))  # type: ignore[call-overload]
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            finish = next(c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason)
            usage = chunks[-1].usage
        else:
            r = client.chat.completions.create(**kwargs)  # type: ignore[call-overload]
            text, finish, usage = r.choices[0].message.content, r.choices[0].finish_reason, r.usage
    check_requests(seen, stream)
    assert text == "".join(ANSWER) and finish == "length"  # Anthropic's max_tokens, in OpenAI's words
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (41, len(ANSWER))


@pytest.mark.parametrize("stream", [True, False])
def test_anthropic_caller_through_an_openai_upstream(stream: bool) -> None:
    seen: list[Incoming] = []
    http = httpx.Client(transport=gateway("anthropic", "openai", seen))
    with anthropic.Anthropic(base_url="http://gateway", api_key="k", http_client=http, max_retries=0) as client:
        kwargs = {
            "model": "m",
            "system": "Be brief.",
            "messages": [{"role": "user", "content": "Why is the sky blue?"}],
            "max_tokens": len(ANSWER),
            "extra_body": {"temperature": 0.5},  # this SDK version has no `temperature` argument
        }
        if stream:
            with client.messages.stream(**kwargs) as s:  # type: ignore[arg-type]
                text = "".join(s.text_stream)
                final = s.get_final_message()
        else:
            final = client.messages.create(**kwargs)  # type: ignore[arg-type]
            text = "".join(b.text for b in final.content if b.type == "text")
    check_requests(seen, stream)
    assert text == "".join(ANSWER) and final.stop_reason == "max_tokens"  # OpenAI's length, in Anthropic's words
    assert (final.usage.input_tokens, final.usage.output_tokens) == (41, len(ANSWER))


@pytest.mark.parametrize(("front", "back"), [("openai", "anthropic"), ("anthropic", "openai")])
def test_raw_finish_reasons_pass_through_their_own_protocol(front: str, back: str) -> None:
    """A reason the front protocol spells natively goes out unchanged; Records keep the provider's raw string."""
    enc = PROTOCOLS[back].stream_encoder("r", "m", True)
    raw = {"anthropic": "stop_sequence", "openai": "content_filter"}[back]
    stream = enc.start(1) + enc.text("x") + enc.close(Finish("stop" if back == "anthropic" else "content_filter", raw))
    events = stream_events(back, stream)
    finish = next(e for e in events if isinstance(e, Finish))
    assert finish.raw == raw
    out = PROTOCOLS[front].stream_encoder("r", "m", True)
    again = stream_events(front, b"".join(out.encode(e) for e in events))
    assert next(e for e in again if isinstance(e, Finish)).reason == finish.reason
