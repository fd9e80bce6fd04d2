"""With one of two targets down, the route stays up; a dead target sees at most one attempt per request once its
breaker is open; a flapping target is served around while down and gets traffic back soon after."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import aiohttp
import pytest

from assay.simulator import Faults, Incident
from tests.gateway.conftest import GatewayFactory, records_of, restart_clock, target, vendors

BODY = {"model": "chat", "stream": True, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
N = 2000
CONCURRENCY = 32


async def _send_all(url: str, n: int, concurrency: int) -> Counter[str]:
    served: Counter[str] = Counter()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                async with session.post(url + "/v1/chat/completions", json=BODY) as r:
                    data = await r.read()
                    ok = r.status == 200 and b"[DONE]" in data and b'"error"' not in data
                    served[r.headers.get("x-assay-target", "") if ok else "failed"] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return served


@pytest.mark.slow
@pytest.mark.parametrize("down", ["refused", "all_500", "hanging"])
async def test_one_target_down_out_of_two(sims, gateway: GatewayFactory, down: str) -> None:
    profiles = {"b": {"ttft_ms": 2, "itl_ms": 0.2, "output_tokens": 8}}
    if down == "all_500":
        profiles["p"] = {"faults": Faults(server_error=1.0)}
    elif down == "hanging":
        profiles["p"] = {"faults": Faults(hang=1.0), "hang_s": 60}
    sim = await sims(vendors(**profiles))
    if down == "refused":
        primary = '  - {name: p, base_url: "http://127.0.0.1:9/v1", model: p, pricing: {input_per_mtok: 1, ' \
                  'output_per_mtok: 2}}\n'  # fmt: skip
    else:
        primary = target(sim, "p", first_token_timeout_s=0.2)
    gw = await gateway("targets:\n" + primary + target(sim, "b") +
                       "gateway:\n  routes:\n    - {model: chat, targets: [p, b], retries: 1}\n"
                       "  breaker: {cooldown_s: 1.0}\n")  # fmt: skip
    t0 = time.monotonic()
    served = await _send_all(gw.url, N, CONCURRENCY)
    elapsed = time.monotonic() - t0
    assert served["failed"] <= N * 0.001, served  # at least 99.9% succeed
    assert served["b"] >= N * 0.999
    recs = await records_of(gw)
    opened_at = next(r.wall_start_s for r in recs if r.target == "p")  # p fails from its first attempt
    per_request = Counter(r.item_id for r in recs if r.target == "p")
    after_open = [r for r in recs if r.target == "p" and r.wall_start_s > opened_at + 1.0]
    assert all(per_request[r.item_id] == 1 for r in after_open)  # once open: at most one attempt a request
    probes = len({r.item_id for r in after_open})
    assert probes <= elapsed / 1.0 + 1  # about one half-open probe per cooldown, not one per request
    assert len(recs) == sum(per_request.values()) + served["b"]  # every attempt is a Record


@pytest.mark.slow
async def test_a_flapping_target_is_served_around_and_gets_traffic_back(sims, gateway: GatewayFactory) -> None:
    flappy = {"incidents": [Incident(start_s=1, end_s=7, faults=Faults(server_error=1.0))], "ttft_ms": 2}
    sim = await sims(vendors(p=flappy, b={"ttft_ms": 2}))
    gw = await gateway("targets:\n" + target(sim, "p") + target(sim, "b") +
                       "gateway:\n  routes:\n    - {model: chat, targets: [p, b], retries: 1}\n"
                       "  breaker: {cooldown_s: 1.0, max_cooldown_s: 2.0}\n")  # fmt: skip
    restart_clock(sim, "p")
    t0 = time.monotonic()
    timeline: list[tuple[float, str]] = []
    async with aiohttp.ClientSession() as session:
        while (now := time.monotonic() - t0) < 11:
            async with session.post(gw.url + "/v1/chat/completions", json=BODY) as r:
                await r.read()
                timeline.append((now, r.headers.get("x-assay-target", "") if r.status == 200 else "failed"))
            await asyncio.sleep(0.02)
    assert not [t for t in timeline if t[1] == "failed"]
    during = [who for t, who in timeline if 1.5 < t < 6.9]
    assert during and set(during) == {"b"}  # served around while down
    back = next(t for t, who in timeline if t > 7 and who == "p")
    assert back < 7 + 2.5  # traffic back within a (capped) cooldown of recovering
