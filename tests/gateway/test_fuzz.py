"""Fuzz both request schemas: whatever a client sends, the gateway answers 2xx or 4xx in the protocol's own error
format, never a 5xx, never a crash; and an upstream's garbage never crashes it either."""

from __future__ import annotations

import asyncio
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay.config import parse_config
from assay.gateway import start_gateway
from assay.simulator import start_simulator
from tests.gateway.conftest import target, vendors

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
ROLES = st.sampled_from(["user", "assistant", "system", "tool", "developer", "nobody", ""])
PART = st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", "image", "tool_use", "tool_result", "x"])},
                             optional={"text": JSON, "image_url": JSON, "source": JSON, "id": JSON, "input": JSON,
                                       "tool_use_id": JSON, "content": JSON})  # fmt: skip
MESSAGE = st.fixed_dictionaries({"role": ROLES | JSON},
                                optional={"content": st.text(max_size=30) | st.lists(PART, max_size=3) | JSON,
                                          "tool_calls": JSON, "tool_call_id": JSON, "name": JSON})  # fmt: skip
TOOL = st.fixed_dictionaries({"type": st.just("function") | JSON},
                             optional={"function": st.fixed_dictionaries({"name": st.text(max_size=10) | JSON},
                                                                         optional={"parameters": JSON}),
                                       "name": JSON, "input_schema": JSON})  # fmt: skip
FIELDS = {
    "messages": st.lists(MESSAGE, max_size=4) | JSON,
    "max_tokens": st.integers(-5, 50) | JSON,
    "stream": st.booleans() | JSON,
    "temperature": st.floats(-1, 3) | JSON,
    "tools": st.lists(TOOL, max_size=2) | JSON,
    "tool_choice": st.sampled_from(["auto", "none", "required", "any"]) | JSON,
    "response_format": st.sampled_from([{"type": "json_object"}, {"type": "text"}]) | JSON,
    "n": st.integers(-1, 3) | JSON,
    "system": JSON,
    "stream_options": JSON,
    "stop": JSON,
    "unknown_field": JSON,
}
ANY_BODY = st.fixed_dictionaries({"model": st.sampled_from(["chat", "claude", "nope"]) | JSON},
                                 optional=FIELDS)  # fmt: skip
# Mostly valid requests with one or two odd fields, so the fuzzer reaches translation, routing and streaming.
GOOD_MESSAGES = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]),
                                                "content": st.text(min_size=1, max_size=30)}),
                         min_size=1, max_size=3)  # fmt: skip
GOOD_TOOL = st.builds(lambda name, props: {"type": "function", "function": {"name": name, "parameters": {
    "type": "object", "properties": {p: {"type": t} for p, t in props.items()}, "required": list(props)}}},
    st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
    st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True),
                    st.sampled_from(["string", "integer", "number", "boolean"]), max_size=3))  # fmt: skip
NEAR_VALID = st.fixed_dictionaries(
    {"model": st.sampled_from(["chat", "claude"]), "messages": GOOD_MESSAGES,
     "max_tokens": st.integers(1, 20)},
    optional={"stream": st.booleans(), "temperature": st.floats(0, 2), "tools": st.lists(GOOD_TOOL, max_size=2),
              "tool_choice": st.sampled_from(["auto", "none", "required"]), "n": st.integers(1, 2),
              "response_format": st.sampled_from([{"type": "json_object"}, {"type": "text"}]),
              "stop": st.lists(st.text(max_size=4), max_size=2), "system": st.text(max_size=20),
              "top_p": st.floats(0, 1), "stream_options": st.just({"include_usage": True})},
)  # fmt: skip
BODY = ANY_BODY | NEAR_VALID


class _Served:
    def __init__(self) -> None:
        self.url = ""
        self.ready = threading.Event()
        self.stop: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None


def _garbage_app() -> web.Application:
    async def garbage(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"data: {not json\n\ndata: [1, 2]\n\n\xff\xfe\n\n")
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", garbage)
    return app


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Served]:
    """A simulator and a gateway on their own event loop in a thread, for a synchronous fuzzer."""
    out = _Served()
    home = tmp_path_factory.mktemp("fuzz")

    async def main() -> None:
        sim = await start_simulator(vendors(oa={"output_tokens": 3}, an={"output_tokens": 3}))
        junk = web.AppRunner(_garbage_app(), handle_signals=False)
        await junk.setup()
        site = web.TCPSite(junk, "127.0.0.1", 0)
        await site.start()
        junk_url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/v1"  # type: ignore[union-attr]
        text = ("targets:\n" + target(sim, "oa") + target(sim, "an", "anthropic") +
                f'  - {{name: junk, base_url: "{junk_url}", model: j, pricing: {{input_per_mtok: 1, '
                "output_per_mtok: 1}}\n"
                "gateway:\n  max_body_bytes: 65536\n  routes:\n    - {model: chat, targets: [oa]}\n"
                "    - {model: claude, targets: [an]}\n    - {model: junk, targets: [junk]}\n")  # fmt: skip
        gw = await start_gateway(parse_config(text), db=Path(home) / "assay.db")
        out.url, out.stop, out.loop = gw.url, asyncio.Event(), asyncio.get_running_loop()
        out.ready.set()
        await out.stop.wait()
        await gw.stop(drain_s=2)
        await junk.cleanup()
        await sim.stop()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert out.ready.wait(30)
    yield out
    assert out.loop is not None and out.stop is not None
    out.loop.call_soon_threadsafe(out.stop.set)
    thread.join(15)


def _post(url: str, data: bytes) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, method="POST", headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _check(status: int, body: bytes, path: str) -> None:
    assert status < 500, (status, body[:300])
    if status >= 400:
        err = orjson.loads(body)
        if path == "/v1/messages":
            assert err["type"] == "error" and isinstance(err["error"]["message"], str)
        else:
            assert isinstance(err["error"]["message"], str)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])  # fmt: skip
@given(body=BODY, path=st.sampled_from(["/v1/chat/completions", "/v1/messages"]))
def test_fuzzed_bodies_never_get_a_5xx(served: _Served, body: dict[str, Any], path: str) -> None:
    status, raw = _post(served.url + path, orjson.dumps(body))
    _check(status, raw, path)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200))
def test_fuzzed_bytes_never_get_a_5xx(served: _Served, data: bytes) -> None:
    status, raw = _post(served.url + "/v1/chat/completions", data)
    _check(status, raw, "/v1/chat/completions")


def test_oversized_body_is_a_413_in_the_protocols_format(served: _Served) -> None:
    big = orjson.dumps({"model": "claude", "max_tokens": 5, "messages": [{"role": "user", "content": "x" * 70000}]})
    status, raw = _post(served.url + "/v1/messages", big)
    assert status == 413 and orjson.loads(raw)["type"] == "error"


def test_unknown_fields_are_refused_as_the_vendor_would(served: _Served) -> None:
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "frobnicate": 1}
    status, raw = _post(served.url + "/v1/chat/completions", orjson.dumps(body))
    assert status == 400 and "frobnicate" in orjson.loads(raw)["error"]["message"]


def test_an_upstreams_garbage_is_a_502_not_a_crash(served: _Served) -> None:
    for stream in (True, False):
        body = {"model": "junk", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
        status, raw = _post(served.url + "/v1/chat/completions", orjson.dumps(body))
        assert status == 502 and "malformed" in orjson.loads(raw)["error"]["message"]
    status, _ = _post(served.url + "/v1/chat/completions", orjson.dumps({"model": "chat", "messages": [
        {"role": "user", "content": "still serving?"}]}))  # fmt: skip
    assert status == 200
