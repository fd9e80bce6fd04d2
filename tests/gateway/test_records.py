"""Records are written off the hot path: a locked store neither blocks requests nor grows memory without bound."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import aiohttp

from tests.gateway.conftest import GatewayFactory, post, records_of, target, vendors

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hello"}]}
N = 800


async def test_a_locked_store_drops_counted_records_and_recovers(sims, gateway: GatewayFactory) -> None:
    sim = await sims(vendors(p={}))
    gw = await gateway("targets:\n" + target(sim, "p") +
                       "gateway:\n  record_queue: 100\n  routes:\n    - {model: chat, targets: [p]}\n")  # fmt: skip
    writer = gw.gateway.writer
    assert writer is not None
    status, _, _ = await post(gw.url + "/v1/chat/completions", CHAT)
    assert status == 200
    await records_of(gw)  # the first Record is in
    lock = sqlite3.connect(writer.path, timeout=1, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # another process holds the store
    try:
        t0 = time.monotonic()
        async with aiohttp.ClientSession() as session:

            async def one() -> int:
                async with session.post(gw.url + "/v1/chat/completions", json=CHAT) as r:
                    await r.read()
                    return r.status

            statuses = await asyncio.gather(*(one() for _ in range(N)))
        assert statuses == [200] * N and time.monotonic() - t0 < 20  # requests are not held up by the store
        await asyncio.sleep(1.1)  # long enough for the writer to count as stalled
        # Bounded, whatever the store does: the queue's limit, and one batch the writer thread holds.
        assert writer.pending <= 100 + 1
        assert writer.dropped >= N - 100 - writer.BATCH - 1
        state = gw.gateway.describe()["records"]
        assert state["dropped"] == writer.dropped and state["store_stalled"] is True
        _, _, body = await _get(gw.url + "/metrics")
        assert f"assay_gateway_records_dropped_total {writer.dropped}" in body.decode()
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    stored = await records_of(gw)  # the writer waited for the lock, then wrote what it held
    assert len(stored) == 1 + N - writer.dropped
    assert not gw.gateway.describe()["records"]["store_stalled"]


async def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status, dict(r.headers), await r.read()
