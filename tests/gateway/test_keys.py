"""Virtual keys: hashed, per-key routes, RPM limits with Retry-After, and budgets that hold under concurrency."""

from __future__ import annotations

import asyncio

import anthropic
import openai
import orjson
import pytest

from assay.errors import ConfigError
from tests.gateway.conftest import GatewayFactory, post, records_of, target, vendors

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hello there"}]}


def _config(sim: object, keys: str) -> str:
    return ("targets:\n" + target(sim, "p") + "gateway:\n  routes:\n    - {model: chat, targets: [p]}\n"
            "    - {model: other, targets: [p]}\n  keys:\n" + keys)  # fmt: skip


async def test_keys_are_required_checked_and_scoped_to_routes(sims, gateway: GatewayFactory, sdk,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("TEAM_A", "sk-team-a-123")
    monkeypatch.setenv("TEAM_B", "sk-team-b-456")
    sim = await sims(vendors(p={}))
    gw = await gateway(_config(sim, "    - {name: a, key_env: TEAM_A, routes: [chat]}\n"
                                    "    - {name: b, key_env: TEAM_B}\n"))  # fmt: skip
    with pytest.raises(openai.AuthenticationError):
        await sdk.openai(gw, key="sk-wrong").chat.completions.create(**CHAT)
    status, _, body = await post(gw.url + "/v1/chat/completions", CHAT)
    assert status == 401 and "unknown API key" in orjson.loads(body)["error"]["message"]
    with pytest.raises(anthropic.AuthenticationError):
        await sdk.anthropic(gw, key="nope").messages.create(model="chat", max_tokens=5,
                                                           messages=[{"role": "user", "content": "hi"}])
    ok = await sdk.openai(gw, key="sk-team-a-123").chat.completions.create(**CHAT)
    assert ok.choices[0].finish_reason == "stop"
    with pytest.raises(openai.PermissionDeniedError) as e:
        await sdk.openai(gw, key="sk-team-a-123").chat.completions.create(**{**CHAT, "model": "other"})
    assert "may not use model 'other'" in str(e.value)
    await sdk.anthropic(gw, key="sk-team-b-456").messages.create(model="other", max_tokens=5,
                                                                messages=[{"role": "user", "content": "hi"}])
    recs = await records_of(gw)
    assert [r.key_id for r in recs] == ["a", "b"]
    state = gw.gateway.describe()
    assert "sk-team" not in orjson.dumps(state).decode()  # key values are never shown
    assert [k["name"] for k in state["keys"]] == ["a", "b"] and state["keys"][0]["refused"] == {"route": 1}


async def test_rpm_limit_is_a_429_with_retry_after(
    sims, gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_A", "sk-a")
    sim = await sims(vendors(p={}))
    gw = await gateway(_config(sim, "    - {name: a, key_env: TEAM_A, rpm: 3}\n"))
    statuses = []
    for _ in range(5):
        status, headers, body = await post(gw.url + "/v1/chat/completions", CHAT, {"authorization": "Bearer sk-a"})
        statuses.append(status)
    assert statuses == [200, 200, 200, 429, 429]
    assert int(headers["retry-after"]) >= 1 and orjson.loads(body)["error"]["type"] == "rate_limit_exceeded"
    assert len(sim.servers["p"].log) == 3  # refused requests never reach a provider


async def test_missing_key_value_refuses_to_start(sims, gateway: GatewayFactory) -> None:
    sim = await sims(vendors(p={}))
    with pytest.raises(ConfigError, match="TEAM_UNSET is not set"):
        await gateway(_config(sim, "    - {name: a, key_env: TEAM_UNSET}\n"))


async def test_budget_overshoot_is_bounded_by_requests_in_flight(sims, gateway: GatewayFactory,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """64 concurrent streams against a small budget: spend never passes it by more than what was in flight."""
    monkeypatch.setenv("TEAM_A", "sk-a")
    sim = await sims(vendors(p={"ttft_ms": 30, "itl_ms": 3, "output_tokens": 40}))
    # Each request: ~4 input tokens at $1/M and up to 40 output tokens at $2/M -> reserved $0.000084 each.
    budget = 0.001
    gw = await gateway(_config(sim, f"    - {{name: a, key_env: TEAM_A, budget_usd: {budget}}}\n"))

    async def one() -> int:
        body = {**CHAT, "stream": True, "max_tokens": 40}
        status, _, _ = await post(gw.url + "/v1/chat/completions", body, {"authorization": "Bearer sk-a"})
        return status

    statuses = await asyncio.gather(*(one() for _ in range(64)))
    recs = await records_of(gw)
    spent = sum(r.cost_usd or 0 for r in recs)
    served = statuses.count(200)
    assert 0 < served < 64 and statuses.count(429) == 64 - served
    assert spent <= budget  # reservations at the worst case: nothing in flight could pass it
    key = gw.gateway.describe()["keys"][0]
    assert key["spent_usd"] == pytest.approx(spent) and key["reserved_usd"] == pytest.approx(0, abs=1e-12)
    assert key["refused"] == {"budget": 64 - served}
