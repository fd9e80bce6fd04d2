"""Every injected fault, on both protocols, lands in the right error class."""

from __future__ import annotations

import socket

import pytest

from assay.clients import Timeouts, make_client, open_session
from assay.errors import ProviderError
from assay.model import ChatRequest, Message, Target, Timing
from assay.simulator import RateLimit, start_simulator
from assay.simulator.profiles import FAULT_KINDS
from tests.conftest import fault_spec, one_model_spec, target_for

EXPECTED = {
    "rate_limited": ("rate_limited", 429),
    "server_error": ("server_error", 500),
    "overloaded": ("overloaded", None),  # 503 on OpenAI, 529 on Anthropic
    "hang": ("timeout", None),
    "reset": ("connection", None),
    "stream_broken": ("stream_broken", 200),
    "malformed_chunk": ("bad_response", 200),
    "error_event": ("stream_broken", 200),
}
HI = ChatRequest([Message("user", "hi")], max_tokens=20)


@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_each_fault_maps_to_its_class(api: str) -> None:
    sim = await start_simulator(fault_spec(list(FAULT_KINDS), ttft_ms=5, itl_ms=2, hang_s=1, retry_after_s=7))
    try:
        async with open_session() as session:
            for kind in FAULT_KINDS:
                client = make_client(target_for(sim, "v", kind, api), session, Timeouts(1, 0.5, 0.5, 3))
                timing = Timing()
                with pytest.raises(ProviderError) as info:
                    await client.send(HI, timing)
                err = info.value
                cls, status = EXPECTED[kind]
                assert err.error_class == cls, f"{api}/{kind}: {err!r}"
                if status is not None:
                    assert err.http_status == status
                if kind == "overloaded":
                    assert err.http_status == (503 if api == "openai" else 529)
                if kind in ("rate_limited", "overloaded"):
                    assert err.retry_after_s == pytest.approx(7.0)
                if kind == "hang":
                    assert err.phase == "first_token"
                if kind in ("stream_broken", "error_event"):
                    assert timing.first_byte_ns > 0  # failed after the first byte, by definition
                if kind == "error_event":
                    assert "Overloaded (injected mid-stream)" in err.message
    finally:
        await sim.stop()


async def test_bucket_rate_limit_sends_retry_after_and_headers() -> None:
    sim = await start_simulator(one_model_spec(ttft_ms=1, itl_ms=1, output_tokens=2, rate_limit=RateLimit(rpm=60)))
    try:
        async with open_session() as session:
            client = make_client(target_for(sim, "v", "m"), session)
            await client.send(HI)  # the bucket holds 60; drain it with concurrent calls
            errors = []
            for _ in range(70):
                try:
                    await client.send(HI)
                except ProviderError as e:
                    errors.append(e)
            assert errors, "60 rpm must refuse the 61st request within a second"
            e = errors[0]
            assert e.error_class == "rate_limited"
            assert e.retry_after_s is not None and 0 < e.retry_after_s <= 1.5  # one token refills in 1 s
            assert e.headers["x-ratelimit-limit-requests"] == "60"
            assert e.headers["x-ratelimit-remaining-requests"] == "0"
    finally:
        await sim.stop()


@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_client_errors_carry_the_provider_message(api: str) -> None:
    sim = await start_simulator(one_model_spec())
    try:
        async with open_session() as session:
            client = make_client(target_for(sim, "v", "no-such-model", api), session)
            with pytest.raises(ProviderError) as info:
                await client.send(HI)
            assert info.value.error_class == "client_error"
            assert info.value.http_status == 404
            assert "does not exist" in info.value.message
    finally:
        await sim.stop()


async def test_connection_refused_is_connection_failed() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before we connect: nothing listens there
    async with open_session() as session:
        client = make_client(Target(name="x", base_url=f"http://127.0.0.1:{port}/v1", model="m"), session)
        with pytest.raises(ProviderError) as info:
            await client.send(HI)
    assert info.value.error_class == "connection"


@pytest.mark.parametrize(
    ("profile", "timeouts", "phase"),
    [
        ({"ttft_ms": 1500}, Timeouts(1, 0.3, 5, 5), "first_token"),
        ({"ttft_ms": 5, "itl_ms": 800, "output_tokens": 5}, Timeouts(1, 5, 0.3, 5), "idle"),
        ({"ttft_ms": 5, "itl_ms": 100, "output_tokens": 50}, Timeouts(1, 5, 5, 0.6), "total"),
    ],
)
async def test_timeouts_name_their_phase(profile: dict[str, float], timeouts: Timeouts, phase: str) -> None:
    sim = await start_simulator(one_model_spec(**profile))
    try:
        async with open_session() as session:
            client = make_client(target_for(sim, "v", "m"), session, timeouts)
            timing = Timing()
            with pytest.raises(ProviderError) as info:
                await client.send(ChatRequest([Message("user", "hi")], max_tokens=100), timing)
            assert info.value.error_class == "timeout"
            assert info.value.phase == phase
            if phase != "first_token":
                assert timing.content_ns, "tokens arrived before the stall"
    finally:
        await sim.stop()


def test_missing_key_env_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from assay.errors import ConfigError

    monkeypatch.delenv("ASSAY_TEST_KEY", raising=False)
    target = Target(name="x", base_url="http://127.0.0.1:1/v1", model="m", api_key_env="ASSAY_TEST_KEY")
    with pytest.raises(ConfigError, match="ASSAY_TEST_KEY is not set"):
        make_client(target, None)  # type: ignore[arg-type]
