"""Gateway fixtures: simulated vendors and the gateway in the test's event loop, on loopback ports."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from assay.config import parse_config
from assay.gateway import RunningGateway, start_gateway
from assay.simulator import ModelProfile, RunningSimulator, SimulatorSpec, Vendor, start_simulator

PRICE = "{input_per_mtok: 1, output_per_mtok: 2}"
FAST = {"ttft_ms": 5, "itl_ms": 1, "output_tokens": 12}


def vendors(**models: dict[str, Any]) -> SimulatorSpec:
    """One simulated vendor per model (vendor and model share the name), each with its profile."""
    return SimulatorSpec(seed=7, vendors=[Vendor(name=n, models=[ModelProfile(name=n, **{**FAST, **p})])
                                          for n, p in models.items()])  # fmt: skip


def target(sim: RunningSimulator, name: str, api: str = "openai", **extra: Any) -> str:
    """A `targets:` entry (flow YAML) for simulated model `name`."""
    url = sim.urls[name] + ("/v1" if api == "openai" else "")
    more = "".join(f", {k}: {v}" for k, v in extra.items())
    return f'  - {{name: {name}, api: {api}, base_url: "{url}", model: {name}, pricing: {PRICE}{more}}}\n'


GatewayFactory = Callable[..., Awaitable[RunningGateway]]


@pytest.fixture
async def sims() -> AsyncIterator[Callable[[SimulatorSpec], Awaitable[RunningSimulator]]]:
    started: list[RunningSimulator] = []

    async def start(spec: SimulatorSpec) -> RunningSimulator:
        sim = await start_simulator(spec)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        await sim.stop()


@pytest.fixture
async def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[GatewayFactory]:
    """`await gateway(config_text)`: a gateway serving it; stopped (and its Records flushed) after the test."""
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / ".assay"))
    started: list[RunningGateway] = []

    async def start(text: str, **kwargs: Any) -> RunningGateway:
        path = tmp_path / f"assay-{len(started)}.yaml"
        path.write_text(text)
        running = await start_gateway(parse_config(text, str(path)), path, db=tmp_path / ".assay" / "assay.db",
                                      **kwargs)  # fmt: skip
        started.append(running)
        return running

    yield start
    for running in started:
        await running.stop(drain_s=5)


async def sim_log(sim: RunningSimulator, vendor: str) -> list[dict[str, Any]]:
    """The simulator's own log of what it received (its ground truth)."""
    return list(sim.servers[vendor].log)


async def post(
    url: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as s, s.post(url, json=body, headers=headers or {}) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, await r.read()


def env_key(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    assert os.environ[name] == value


@pytest.fixture
async def sdk() -> AsyncIterator[Any]:
    """`sdk.openai(gw)` / `sdk.anthropic(gw)`: real SDK clients on the gateway, closed after the test."""
    import anthropic
    import openai

    opened: list[Any] = []

    class Factory:
        def openai(self, gw: RunningGateway, key: str = "unused") -> openai.AsyncOpenAI:
            c = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)
            opened.append(c)
            return c

        def anthropic(self, gw: RunningGateway, key: str = "unused") -> anthropic.AsyncAnthropic:
            c = anthropic.AsyncAnthropic(base_url=gw.url, api_key=key, max_retries=0)
            opened.append(c)
            return c

    yield Factory()
    for c in opened:
        await c.close()


async def records_of(gw: RunningGateway) -> list[Any]:
    """Every Record the gateway wrote so far (after its in-flight requests ended), oldest first."""
    import asyncio

    from assay.store import Store

    for _ in range(200):
        if gw.gateway.in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert gw.gateway.writer is not None
    await gw.gateway.writer.aflush()
    store = Store(gw.gateway.writer.path)
    try:
        return sorted(store.records(gw.gateway.run_id), key=lambda r: (r.wall_start_s, r.attempt))
    finally:
        store.close()


def seed_breaking_after(spec: SimulatorSpec, model: str, at_least: int = 2) -> SimulatorSpec:
    """`spec` with a seed whose first request to `model` breaks (if it is set to) after at least `at_least`
    tokens, so the client has bytes before the cut; found with the simulator's own planner."""
    from assay.simulator.server import VendorServer

    vendor = next(v for v in spec.vendors if any(m.name == model for m in v.models))
    profile = next(m for m in vendor.models if m.name == model)
    for seed in range(1000):
        if VendorServer(vendor, seed=seed).plan(profile, 0, 4096, 10, 0.0).break_at >= at_least:
            return spec.model_copy(update={"seed": seed})
    raise AssertionError("no seed found")


def restart_clock(sim: RunningSimulator, *vendor_names: str) -> None:
    """Count the simulator's incident windows from now (a busy test machine may take a while to get here)."""
    for name in vendor_names:
        server = sim.servers[name]
        server.started_ns = server.clock.now_ns()


def planned_words(sim: RunningSimulator, vendor: str, seq: int = 0) -> list[str]:
    """The words the simulator plans for request `seq` to `vendor`'s model (its own planner)."""
    server = sim.servers[vendor]
    profile = server.vendor.models[0]
    return "".join(server.plan(profile, seq, 4096, 10, 0.0).tokens).split()
