"""One test per fault class: attempts and timings checked against the simulator's own log and the Records."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import openai
import orjson
import pytest
from aiohttp import web

from assay.simulator import Faults, Incident
from tests.gateway.conftest import (
    GatewayFactory,
    planned_words,
    post,
    records_of,
    restart_clock,
    seed_breaking_after,
    target,
    vendors,
)

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hello there"}]}


def _config(sim: Any, route: str, *targets: str, breaker: str = "", extra: str = "") -> str:
    text = "targets:\n" + "".join(targets) + f"gateway:\n  routes:\n    - {route}\n"
    if breaker:
        text += f"  breaker: {breaker}\n"
    return text + extra


def _received_s(sim: Any, vendor: str) -> list[float]:
    return [e["received_ns"] / 1e9 for e in sim.servers[vendor].log]


async def _stream_text(client: openai.AsyncOpenAI, **kwargs: Any) -> tuple[str, str | None, Any, Any]:
    raw = await client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "hello there"}], stream=True,
        stream_options={"include_usage": True}, **kwargs)  # fmt: skip
    parts, finish, usage = [], None, None
    async for chunk in raw.parse():
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    return "".join(parts), finish, usage, raw.headers


@pytest.mark.parametrize(("fault", "error_class"), [("server_error", "server_error"), ("reset", "connection")])
async def test_5xx_is_retried_within_pacing_then_falls_back(sims, gateway: GatewayFactory, sdk, fault: str,
                                                            error_class: str) -> None:  # fmt: skip
    sim = await sims(vendors(p={"faults": Faults(**{fault: 1.0})}, b={}))
    gw = await gateway(_config(sim, "{model: chat, targets: [p, b], retries: 2}", target(sim, "p"), target(sim, "b")))
    done = await sdk.openai(gw).chat.completions.with_raw_response.create(**CHAT)
    assert done.headers["x-assay-target"] == "b"
    starts = _received_s(sim, "p")
    assert len(starts) == 3  # the first attempt and two retries
    assert starts[2] - starts[0] >= 1.5 - 0.01  # never more than 2 attempts on a target within 1.5 s
    recs = await records_of(gw)
    assert [(r.target, r.status, r.error_class) for r in recs] == [("p", "error", error_class)] * 3 + [
        ("b", "ok", None)]  # fmt: skip
    assert [r.final for r in recs] == [False, False, True, True]  # each target's last attempt ends its item
    assert recs[-1].fallback_of == "p" and all(r.route == "chat" and r.policy == "fallback" for r in recs)
    assert all(r.cost_usd == 0 for r in recs[:3]) and recs[-1].cost_usd and recs[-1].cost_usd > 0


async def test_an_open_breaker_means_at_most_one_attempt_per_request(sims, gateway: GatewayFactory, sdk) -> None:
    sim = await sims(vendors(p={"faults": Faults(server_error=1.0)}, b={}))
    gw = await gateway(_config(sim, "{model: chat, targets: [p, b], retries: 0}", target(sim, "p"), target(sim, "b"),
                               breaker="{consecutive_failures: 2, cooldown_s: 0.6}"))  # fmt: skip
    client = sdk.openai(gw)
    for _ in range(2):
        await client.chat.completions.create(**CHAT)
    assert len(sim.servers["p"].log) == 2
    state = gw.gateway.describe()
    assert state["targets"]["p"]["breaker"] == "open"
    for _ in range(10):  # open: p is not tried at all
        r = await client.chat.completions.with_raw_response.create(**CHAT)
        assert r.headers["x-assay-target"] == "b"
    assert len(sim.servers["p"].log) == 2
    await asyncio.sleep(0.65)
    await asyncio.gather(*(client.chat.completions.create(**CHAT) for _ in range(5)))  # half-open: one probe only
    assert len(sim.servers["p"].log) == 3
    p = gw.gateway.describe()["targets"]["p"]
    assert p["breaker"] == "open" and p["cooldown_s"] == pytest.approx(0.9)  # grew by 1.5x on the failed probe


async def test_breaker_closes_when_the_target_recovers(sims, gateway: GatewayFactory, sdk) -> None:
    flaky = {"incidents": [Incident(start_s=0, end_s=1.0, faults=Faults(server_error=1.0))]}
    sim = await sims(vendors(p=flaky, b={}))
    gw = await gateway(_config(sim, "{model: chat, targets: [p, b], retries: 0}", target(sim, "p"), target(sim, "b"),
                               breaker="{consecutive_failures: 1, cooldown_s: 0.3}"))  # fmt: skip
    client = sdk.openai(gw)
    served = []
    restart_clock(sim, "p")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 2.5:
        r = await client.chat.completions.with_raw_response.create(**CHAT)
        served.append((time.monotonic() - t0, r.headers["x-assay-target"]))
        await asyncio.sleep(0.05)
    assert all(t == "b" for s, t in served if s < 0.9)  # down: served around
    back = [s for s, t in served if t == "p"]
    assert back and back[0] < 1.0 + 1.2  # traffic back within a cooldown or two of recovering
    assert gw.gateway.describe()["targets"]["p"]["breaker"] == "closed"


async def test_429_retry_after_moves_on_at_once_and_is_never_undercut(sims, gateway: GatewayFactory, sdk) -> None:
    sim = await sims(vendors(p={"faults": Faults(rate_limited=1.0), "retry_after_s": 1.0}, b={}))
    gw = await gateway(_config(sim, "{model: chat, targets: [p, b], retries: 2}", target(sim, "p"), target(sim, "b")))
    client = sdk.openai(gw)
    t0 = time.monotonic()
    r = await client.chat.completions.with_raw_response.create(**CHAT)
    assert r.headers["x-assay-target"] == "b" and time.monotonic() - t0 < 0.5  # moved on at once
    for _ in range(5):
        await client.chat.completions.create(**CHAT)
    assert len(sim.servers["p"].log) == 1  # nobody tries p before its Retry-After ran out
    await asyncio.sleep(1.05)
    await client.chat.completions.create(**CHAT)
    starts = _received_s(sim, "p")
    assert len(starts) == 2 and starts[1] - starts[0] >= 1.0


@pytest.mark.parametrize(("fault", "status"), [("rate_limited", 429), ("overloaded", 503)])
async def test_a_lone_target_is_retried_after_its_retry_after(sims, gateway: GatewayFactory, sdk, fault: str,
                                                              status: int) -> None:  # fmt: skip
    limited = {"incidents": [Incident(start_s=0, end_s=0.5, faults=Faults(**{fault: 1.0}))], "retry_after_s": 1.0}
    sim = await sims(vendors(p=limited))
    gw = await gateway(_config(sim, "{model: chat, targets: [p], retries: 1}", target(sim, "p")))
    restart_clock(sim, "p")
    done = await sdk.openai(gw).chat.completions.create(**CHAT)
    assert done.choices[0].finish_reason == "stop"
    log = sim.servers["p"].log
    assert [e["status"] for e in log] == [status, 200]
    assert (log[1]["received_ns"] - log[0]["received_ns"]) / 1e9 >= 1.0  # never sooner than it asked


async def test_every_target_rate_limited_is_a_429_with_retry_after(sims, gateway: GatewayFactory) -> None:
    sim = await sims(vendors(p={"faults": Faults(rate_limited=1.0), "retry_after_s": 30.0}))
    gw = await gateway(_config(sim, "{model: chat, targets: [p], retries: 1, timeout_s: 5}", target(sim, "p")))
    status, headers, body = await post(gw.url + "/v1/chat/completions", CHAT)
    assert status == 429 and int(headers["retry-after"]) >= 29
    assert orjson.loads(body)["error"]["type"] == "rate_limit_exceeded"
    assert len(sim.servers["p"].log) == 1  # 30 s is past the deadline: not waited for


async def test_no_first_token_ends_the_attempt_and_moves_on(sims, gateway: GatewayFactory, sdk) -> None:
    sim = await sims(vendors(p={"faults": Faults(hang=1.0), "hang_s": 30}, b={}))
    gw = await gateway(_config(sim, "{model: chat, targets: [p, b], retries: 0}",
                               target(sim, "p", first_token_timeout_s=0.3), target(sim, "b")))  # fmt: skip
    t0 = time.monotonic()
    _, finish, usage, headers = await _stream_text(sdk.openai(gw))
    elapsed = time.monotonic() - t0
    assert headers["x-assay-target"] == "b" and finish == "stop" and usage.completion_tokens == 12
    assert 0.3 <= elapsed < 1.5
    recs = await records_of(gw)
    assert (recs[0].target, recs[0].error_class, recs[0].error_phase) == ("p", "timeout", "first_token")


async def test_connection_refused_moves_on(sims, gateway: GatewayFactory, sdk) -> None:
    sim = await sims(vendors(b={}))
    dead = '  - {name: dead, base_url: "http://127.0.0.1:9/v1", model: x, pricing: {input_per_mtok: 1, ' \
        'output_per_mtok: 2}}\n'
    gw = await gateway(_config(sim, "{model: chat, targets: [dead, b], retries: 1}", dead, target(sim, "b")))
    r = await sdk.openai(gw).chat.completions.with_raw_response.create(**CHAT)
    assert r.headers["x-assay-target"] == "b"
    recs = await records_of(gw)
    assert [r.error_class for r in recs if r.target == "dead"] == ["connection", "connection"]


@pytest.mark.parametrize("fault", ["stream_broken", "error_event", "malformed_chunk"])
async def test_a_stream_cut_after_bytes_is_continued_on_a_prefill_target(sims, gateway: GatewayFactory, sdk,
                                                                         fault: str) -> None:  # fmt: skip
    spec = seed_breaking_after(vendors(p={"faults": Faults(**{fault: 1.0})}, b={}), "p")
    sim = await sims(spec)
    gw = await gateway(_config(sim, "{model: chat, targets: [p, b]}", target(sim, "p"), target(sim, "b", "anthropic")))
    text, finish, usage, headers = await _stream_text(sdk.openai(gw))
    recs = await records_of(gw)
    assert finish == "stop" and headers["x-assay-target"] == "p"
    # The whole answer: p's first words, then b's continuation, nothing repeated or lost.
    p_words, b_words = planned_words(sim, "p"), planned_words(sim, "b")
    got = text.split()
    k = len(got) - len(b_words)
    assert k >= 2 and got == p_words[:k] + b_words
    assert usage.completion_tokens == sim.servers["b"].log[0]["output_tokens"]  # the serving target's usage
    assert [(r.target, r.status) for r in recs] == [("p", "error"), ("b", "ok")] and recs[1].fallback_of == "p"


async def test_a_stall_after_bytes_is_continued_too(sims, gateway: GatewayFactory, sdk) -> None:
    sim = await sims(vendors(p={"itl_ms": 5000}, b={}))
    gw = await gateway(_config(sim, "{model: chat, targets: [p, b]}", target(sim, "p", idle_timeout_s=0.3),
                               target(sim, "b", "anthropic")))  # fmt: skip
    t0 = time.monotonic()
    text, finish, _, _ = await _stream_text(sdk.openai(gw))
    assert finish == "stop" and time.monotonic() - t0 < 2.0
    assert len(text.split()) == 1 + sim.servers["b"].log[0]["output_tokens"]  # p's first token, then b's
    recs = await records_of(gw)
    assert (recs[0].error_class, recs[0].error_phase) == ("timeout", "idle")


async def test_a_cut_with_no_target_to_continue_ends_with_an_error_never_a_finish(sims, gateway: GatewayFactory,
                                                                                  sdk) -> None:  # fmt: skip
    spec = seed_breaking_after(vendors(p={"faults": Faults(stream_broken=1.0)}, b={}), "p")
    sim = await sims(spec)
    gw = await gateway(_config(sim, "{model: chat, targets: [p, b]}", target(sim, "p"), target(sim, "b")))
    raw = await sdk.openai(gw).chat.completions.with_raw_response.create(**CHAT, stream=True)
    finishes = []
    with pytest.raises(openai.APIError):
        async for chunk in raw.parse():
            if chunk.choices and chunk.choices[0].finish_reason:
                finishes.append(chunk.choices[0].finish_reason)
    assert finishes == []  # never a finished-looking stream over a truncated answer
    assert len(sim.servers["b"].log) == 0  # an OpenAI target not listed in prefill_targets cannot continue it


async def test_holdback_lets_an_early_cut_fall_back_cleanly(sims, gateway: GatewayFactory, sdk) -> None:
    spec = seed_breaking_after(vendors(p={"faults": Faults(stream_broken=1.0)}, b={}), "p")
    sim = await sims(spec)
    gw = await gateway(_config(sim, "{model: chat, targets: [p, b], holdback_tokens: 12}", target(sim, "p"),
                               target(sim, "b")))  # fmt: skip
    text, finish, _, headers = await _stream_text(sdk.openai(gw))
    assert finish == "stop" and headers["x-assay-target"] == "b"
    assert len(text.split()) == 12  # b's whole answer; nothing of p's reached the client


async def _upstream(handler: Any) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/v1"


def _chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    body: dict[str, Any] = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "up",
                            "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        body["usage"] = usage
    return b"data: " + orjson.dumps(body) + b"\n\n"


async def test_a_complete_stream_without_done_finishes_promptly(gateway: GatewayFactory, sdk) -> None:
    async def no_done(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(_chunk({"role": "assistant", "content": ""}))
        for word in ("one", " two", " three"):
            await resp.write(_chunk({"content": word}))
        await resp.write(_chunk({}, "stop"))
        await resp.write(_chunk({}, usage={"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}))
        await asyncio.sleep(10)  # no [DONE], and the connection stays open
        return resp

    runner, url = await _upstream(no_done)
    try:
        cfg = (f'targets:\n  - {{name: up, base_url: "{url}", model: up, idle_timeout_s: 5, pricing: '
               '{input_per_mtok: 1, output_per_mtok: 2}}\ngateway:\n  routes:\n    - {model: chat, targets: [up]}\n')
        gw = await gateway(cfg)
        t0 = time.monotonic()
        text, finish, usage, _ = await _stream_text(sdk.openai(gw))
        assert (text, finish, usage.completion_tokens) == ("one two three", "stop", 3)
        assert time.monotonic() - t0 < 1.0
    finally:
        await runner.cleanup()


async def test_content_filter_is_not_retried_and_its_reason_reaches_the_client(sims, gateway: GatewayFactory) -> None:
    calls = []

    async def filtered(request: web.Request) -> web.Response:
        calls.append(1)
        body = {"error": {"message": "The response was filtered due to the prompt triggering Azure OpenAI's content "
                          "management policy.", "type": "invalid_request_error", "code": "content_filter"}}
        return web.json_response(body, status=400)

    runner, url = await _upstream(filtered)
    try:
        sim = await sims(vendors(b={}))
        cfg = (f'targets:\n  - {{name: up, base_url: "{url}", model: up, pricing: {{input_per_mtok: 1, '
               f'output_per_mtok: 2}}}}\n{target(sim, "b")}gateway:\n  routes:\n    - {{model: chat, targets: [up, b], '
               'retries: 2}\n')
        gw = await gateway(cfg)
        status, _, body = await post(gw.url + "/v1/chat/completions", CHAT)
        assert status == 400 and "content management policy" in orjson.loads(body)["error"]["message"]
        assert len(calls) == 1 and len(sim.servers["b"].log) == 0
    finally:
        await runner.cleanup()


async def test_context_length_moves_to_a_larger_window_only(sims, gateway: GatewayFactory, sdk) -> None:
    sim = await sims(vendors(small={"context_window": 8}, same={"context_window": 8}, big={}))
    gw = await gateway(_config(sim, "{model: chat, targets: [small, same, big]}",
                               target(sim, "small", context_window=8), target(sim, "same", context_window=8),
                               target(sim, "big", context_window=100000)))  # fmt: skip
    long = {"model": "chat", "messages": [{"role": "user", "content": "word " * 200}]}
    r = await sdk.openai(gw).chat.completions.with_raw_response.create(**long)
    assert r.headers["x-assay-target"] == "big"
    assert len(sim.servers["small"].log) == 1 and len(sim.servers["same"].log) == 0  # no retry, no same-size window
    gw2 = await gateway(_config(sim, "{model: chat, targets: [small, same]}", target(sim, "small", context_window=8),
                                target(sim, "same", context_window=8)))  # fmt: skip
    status, _, body = await post(gw2.url + "/v1/chat/completions", long)
    assert status == 400 and "context" in orjson.loads(body)["error"]["message"].lower()


async def test_when_every_breaker_is_open_the_request_waits_for_the_first_half_open(sims, gateway: GatewayFactory,
                                                                                    sdk) -> None:  # fmt: skip
    down = {"incidents": [Incident(start_s=0, end_s=0.4, faults=Faults(server_error=1.0))]}
    sim = await sims(vendors(p=down, q=down))
    gw = await gateway(_config(sim, "{model: chat, targets: [p, q], retries: 0}", target(sim, "p"), target(sim, "q"),
                               breaker="{consecutive_failures: 1, cooldown_s: 0.6}"))  # fmt: skip
    restart_clock(sim, "p", "q")
    status, _, _ = await post(gw.url + "/v1/chat/completions", CHAT)
    assert status == 502  # both failed, both breakers open
    t0 = time.monotonic()
    done = await sdk.openai(gw).chat.completions.create(**CHAT)  # waits for the earliest half-open, not a 5xx
    assert done.choices[0].finish_reason == "stop" and 0.4 < time.monotonic() - t0 < 1.5


async def test_every_target_failing_is_a_502_in_each_protocols_format(sims, gateway: GatewayFactory) -> None:
    sim = await sims(vendors(p={"faults": Faults(server_error=1.0)}))
    gw = await gateway(_config(sim, "{model: chat, targets: [p], retries: 0}", target(sim, "p"),
                               breaker="{consecutive_failures: 5}"))  # fmt: skip
    status, _, body = await post(gw.url + "/v1/messages", {**CHAT, "max_tokens": 10})
    assert status == 502 and orjson.loads(body)["type"] == "error"
    assert "every target of model 'chat' failed" in orjson.loads(body)["error"]["message"]


async def test_429_without_retry_after_backs_off_with_jitter_and_never_hammers(gateway: GatewayFactory) -> None:
    seen: list[float] = []

    async def limited(request: web.Request) -> web.Response:
        seen.append(time.monotonic())
        body = {"error": {"message": "Rate limit reached", "type": "rate_limit_exceeded", "code": None}}
        return web.json_response(body, status=429)  # and no Retry-After, nor any reset header

    runner, url = await _upstream(limited)
    try:
        cfg = (f'targets:\n  - {{name: up, base_url: "{url}", model: up, pricing: {{input_per_mtok: 1, '
               'output_per_mtok: 2}}\ngateway:\n  routes:\n    - {model: chat, targets: [up], retries: 3}\n')
        gw = await gateway(cfg)
        status, _, _ = await post(gw.url + "/v1/chat/completions", CHAT)
        assert status == 429
        assert len(seen) == 4  # the first attempt and 3 retries, each after the target's backoff
        gaps = [b - a for a, b in itertools.pairwise(seen)]
        assert all(g >= 0.25 for g in gaps)  # a jittered 0.25-0.75 s backoff, never at once
        assert all(seen[i + 2] - seen[i] >= 1.5 for i in range(len(seen) - 2))  # at most 2 in any 1.5 s
    finally:
        await runner.cleanup()


async def test_a_server_that_ignores_stream_true_is_still_served(gateway: GatewayFactory, sdk) -> None:
    async def whole(request: web.Request) -> web.Response:
        return web.json_response({"id": "x", "object": "chat.completion", "created": 0, "model": "up", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "one body"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}})  # fmt: skip

    runner, url = await _upstream(whole)
    try:
        cfg = (f'targets:\n  - {{name: up, base_url: "{url}", model: up, pricing: {{input_per_mtok: 1, '
               'output_per_mtok: 2}}\ngateway:\n  routes:\n    - {model: chat, targets: [up]}\n')
        gw = await gateway(cfg)
        text, finish, usage, _ = await _stream_text(sdk.openai(gw))
        assert (text, finish, usage.completion_tokens) == ("one body", "stop", 2)
    finally:
        await runner.cleanup()


async def test_a_client_that_goes_away_ends_the_upstream_attempt(sims, gateway: GatewayFactory) -> None:
    sim = await sims(vendors(p={"itl_ms": 50, "output_tokens": 100}))
    gw = await gateway(_config(sim, "{model: chat, targets: [p]}", target(sim, "p")))
    import aiohttp

    async with aiohttp.ClientSession() as session, session.post(gw.url + "/v1/chat/completions",
                                                                json={**CHAT, "stream": True}) as r:  # fmt: skip
        await r.content.readany()
        await r.content.readany()
    # leaving the block closes the connection mid-stream
    recs = await records_of(gw)
    for _ in range(100):
        if recs:
            break
        await asyncio.sleep(0.05)
        recs = await records_of(gw)
    assert [(r.status, r.error_class) for r in recs] == [("error", "cancelled")]
    await asyncio.sleep(0.2)
    assert sim.servers["p"].log[0].get("client_gone") is True  # the gateway let go of the provider too
    assert gw.gateway.state is not None and gw.gateway.state.health.targets["p"].breaker.state == "closed"
