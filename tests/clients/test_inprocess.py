"""A real ProviderClient against the simulator's aiohttp app through the in-process transport: no sockets."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest

from assay.clients import InProcessTransport, Timeouts, make_client
from assay.errors import ProviderError
from assay.model import ChatRequest, Message, Pricing, Target, Timing
from assay.simulator import Faults, ModelProfile, RateLimit, Vendor, VendorServer
from assay.wire import Finish, TextDelta, UsageReport


def _target(model: str, api: str) -> Target:
    base = "http://v.in-process" + ("/v1" if api == "openai" else "")
    price = Pricing(input_per_mtok=1, output_per_mtok=2)
    return Target(name=f"{model}-{api}", api=api, base_url=base, model=model, pricing=price)


def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on (the event loop's own self-pipe already exists), opening a socket fails the test."""

    def refuse(*args: object, **kwargs: object) -> socket.socket:
        raise AssertionError("the in-process transport opened a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _vendor() -> VendorServer:
    fast = {"ttft_ms": 5, "itl_ms": 2, "output_tokens": 6}
    models = [
        ModelProfile(name="m", **fast),  # type: ignore[arg-type]
        ModelProfile(name="broken", faults=Faults(stream_broken=1.0), **fast),  # type: ignore[arg-type]
        ModelProfile(name="reset", faults=Faults(reset=1.0), **fast),  # type: ignore[arg-type]
        ModelProfile(name="event", faults=Faults(error_event=1.0), **fast),  # type: ignore[arg-type]
        ModelProfile(name="limited", rate_limit=RateLimit(rpm=1), **fast),  # type: ignore[arg-type]
    ]
    return VendorServer(Vendor(name="v", models=models), seed=1)


@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_the_simulator_in_process(api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    no_sockets(monkeypatch)
    server = _vendor()
    async with InProcessTransport(server.app()) as transport:
        client = make_client(_target("m", api), transport)
        timing = Timing()
        c = await client.send(ChatRequest([Message("user", "a" * 40)], max_tokens=4), timing)
        assert len(c.text.split()) == 4 and c.usage.source == "server" and c.usage.input_tokens == 10
        assert c.finish_reason == ("length" if api == "openai" else "max_tokens") and c.request_id
        assert timing.sent_ns <= timing.headers_ns <= timing.first_byte_ns <= timing.content_ns[0] <= timing.done_ns
        assert len(timing.content_ns) == 4
        whole = await client.send(ChatRequest([Message("user", "hi")], stream=False))
        assert len(whole.text.split()) == 6 and whole.finish_reason in ("stop", "end_turn")

        events = [e async for e in client.stream(ChatRequest([Message("user", "hi")], max_tokens=3))]
        assert sum(isinstance(e, TextDelta) for e in events) == 3
        assert any(isinstance(e, Finish) and e.reason == "length" for e in events)
        assert any(isinstance(e, UsageReport) and e.usage.output_tokens == 3 for e in events)

        failures: dict[str, ProviderError] = {}
        for model in ("broken", "reset", "event", "limited", "limited"):  # rpm 1: the second one is refused
            try:
                await make_client(_target(model, api), transport, Timeouts(1, 2, 2, 3)).send(
                    ChatRequest([Message("user", "hi")])
                )
            except ProviderError as e:
                failures[model] = e
    assert failures["broken"].error_class == "stream_broken"
    assert failures["reset"].error_class == "connection"
    assert failures["event"].error_class == "stream_broken" and "injected mid-stream" in failures["event"].message
    limited = failures["limited"]
    assert limited.error_class == "rate_limited" and limited.retry_after_s is not None
    assert {"x-ratelimit-limit-requests", "anthropic-ratelimit-requests-limit"} & set(limited.headers)
    assert [row["status"] for row in server.log if row.get("model") == "m"] == [200, 200, 200]


async def test_a_slow_caller_of_stream_is_not_the_providers_timeout_and_may_stop_early() -> None:
    """The idle and total deadlines time the provider: time the caller spends with an event does not count."""
    server = _vendor()
    async with InProcessTransport(server.app()) as transport:
        client = make_client(_target("m", "openai"), transport, Timeouts(1, 0.3, 0.3, 0.9))
        request = ChatRequest([Message("user", "hi")], max_tokens=6)
        texts = []
        async for event in client.stream(request):
            if isinstance(event, TextDelta):
                texts.append(event.text)
            await asyncio.sleep(0.2)  # seven events: 1.4 s with the caller, far past every deadline
        assert len(texts) == 6
        async with contextlib.aclosing(client.stream(request)) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    break  # the connection is dropped, not left half-read in the pool
        assert len((await client.send(request)).text.split()) == 6
