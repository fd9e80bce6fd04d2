"""Use assay from Python: one timed request, a small probe, then a streamed answer. Runs offline (simulator).

.venv/bin/python examples/python_api.py
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path

from assay import ChatRequest, Message, Target, make_client, open_session, parse_config
from assay.simulator import builtin_spec, start_simulator
from assay.suites.probe import ProbeOptions, run_probe
from assay.wire import TextDelta


async def main() -> None:
    sim = await start_simulator(builtin_spec(seed=1))  # swift, meridian, atlas on free loopback ports
    try:
        # 1. One request, timed by the client: stamps taken as bytes arrive.
        target = Target(name="swift", api="openai", base_url=sim.urls["swift"] + "/v1", model="swift-mini")
        async with open_session() as session:
            completion = await make_client(target, session).send(
                ChatRequest([Message("user", "Why is the sky blue?")], max_tokens=30)
            )
        t = completion.timing
        print(f"answer: {completion.text[:60]}...")
        print(
            f"TTFT {t.ttft_ms():.0f} ms, E2E {t.e2e_ms():.0f} ms, {completion.usage.output_tokens} tokens "
            f"({completion.usage.source} count)"
        )

        # 2. A probe of two vendors; Records go to a SQLite store, summaries come back.
        config = parse_config(
            f"""
targets:
  - name: swift
    base_url: "{sim.urls["swift"]}/v1"
    model: swift-mini
    pricing: {{input_per_mtok: 0.20, output_per_mtok: 0.80}}   # simulated models are not in the catalog
  - name: atlas
    api: anthropic
    base_url: "{sim.urls["atlas"]}"
    model: atlas-opus
    pricing: {{input_per_mtok: 5, output_per_mtok: 25}}
"""
        )
        with tempfile.TemporaryDirectory() as tmp:
            opts = ProbeOptions.from_config(config, requests=20, concurrency=5, max_tokens=20)
            result = await run_probe(config, opts, Path(tmp) / "assay.db")
        for name, summary in result.summaries.items():
            print(
                f"{name}: success {summary.success_rate:.0%}, TTFT p90 {summary.ttft.p['p90']:.0f} ms, "
                f"${summary.cost_per_success_usd:.6f} per success, "
                f"errors { ({k: v for k, v in summary.errors.items() if v}) }"
            )

        # 3. The same client streams: provider-neutral events as they arrive, whichever protocol it speaks.
        atlas = config.target("atlas")  # an Anthropic-speaking vendor
        async with open_session() as session:
            events = make_client(atlas, session).stream(ChatRequest([Message("user", "Count to five.")], max_tokens=20))
            async with contextlib.aclosing(events) as stream:
                texts = [e.text async for e in stream if isinstance(e, TextDelta)]
        print(f"streamed from atlas: {len(texts)} text events, {''.join(texts)[:40]!r}...")
    finally:
        await sim.stop()


if __name__ == "__main__":
    asyncio.run(main())
