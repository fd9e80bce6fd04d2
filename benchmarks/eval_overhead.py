"""Eval harness overhead: items per second and CPU per item against a zero-latency simulated target.

10,000 golden items, one target whose simulated model answers at once (TTFT 0,
no gaps, a few tokens), 64 requests in flight, cache off. The simulator runs in
its own process, so the CPU time of this process is the harness's: building
requests, the HTTP client, stream parsing, Records, scoring, pricing and the
SQLite writer thread.

The peer, in the same run and against the same server, is a minimal hand-rolled
loop with the official openai SDK (AsyncOpenAI, 64 in flight, exact-match
scoring, nothing stored): what a script written in an afternoon does.

    .venv/bin/python benchmarks/eval_overhead.py [--items 10000] [--concurrency 64] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import openai

from assay.config import parse_config
from assay.simulator import SimulatorProcess
from assay.store import Store
from assay.suites.quality import EvalOptions, run_eval, summarize_run

PROFILE = """\
vendors:
  - name: zero
    models:
      - name: instant
        ttft_ms: 0
        itl_ms: 0
        output_tokens: 4
        answers: {accuracy: 0.8}
knowledge: []
"""


def golden(path: Path, n: int) -> None:
    with path.open("w") as f:
        for i in range(n):
            row = {"id": f"q{i}", "input": f"Item {i}: what is {i} plus 1?", "expected": str(i + 1)}
            f.write(json.dumps(row) + "\n")


async def assay_run(url: str, data: Path, home: Path, concurrency: int) -> dict[str, Any]:
    os.environ["ASSAY_HOME"] = str(home)
    cfg = parse_config(
        f"""
targets:
  - {{name: zero, base_url: "{url}/v1", model: instant, pricing: {{input_per_mtok: 0.1, output_per_mtok: 0.4}}}}
suites:
  - {{name: bench, dataset: "{data}", scorer: contains, max_tokens: 16}}
"""
    )
    t0, c0 = time.perf_counter(), time.process_time()
    run = await run_eval(cfg, EvalOptions(concurrency=concurrency, cache=False, retries=0), home / "assay.db")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    with Store(home / "assay.db") as store:
        s = summarize_run(store, run.run_id).scores["zero"]["bench"]
    return {"wall_s": wall, "cpu_s": cpu, "items": s.n, "scored": s.scored}


async def openai_loop(url: str, n: int, concurrency: int) -> dict[str, Any]:
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    sem = asyncio.Semaphore(concurrency)
    passed = 0

    async def one(i: int) -> None:
        nonlocal passed
        async with sem:
            stream = await client.chat.completions.create(
                model="instant",
                messages=[{"role": "user", "content": f"Item {i}: what is {i} plus 1?"}],
                max_tokens=16,
                stream=True,
            )
            text = ""
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    text += chunk.choices[0].delta.content
            passed += str(i + 1) in text

    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(i) for i in range(n)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    await client.close()
    return {"wall_s": wall, "cpu_s": cpu, "items": n, "scored": n}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "vendors.yaml").write_text(PROFILE)
        data = root / "bench.jsonl"
        golden(data, args.items)
        with SimulatorProcess(profile=root / "vendors.yaml") as sim:
            url = sim.urls["zero"]
            ours = asyncio.run(assay_run(url, data, root / "home", args.concurrency))
            peer = asyncio.run(openai_loop(url, args.items, args.concurrency))
    out: dict[str, Any] = {}
    for name, r in (("assay eval", ours), ("openai SDK loop", peer)):
        out[name] = {
            **r,
            "items_per_s": r["items"] / r["wall_s"],
            "cpu_ms_per_item": r["cpu_s"] / r["items"] * 1e3,
        }
        print(
            f"{name:<16} {r['items']:>6} items in {r['wall_s']:6.1f} s = {out[name]['items_per_s']:7.0f} items/s; "
            f"CPU {out[name]['cpu_ms_per_item']:.2f} ms per item"
        )
    ratio = out["assay eval"]["items_per_s"] / out["openai SDK loop"]["items_per_s"]
    cpu_ratio = out["assay eval"]["cpu_ms_per_item"] / out["openai SDK loop"]["cpu_ms_per_item"]
    print(f"assay / peer: {ratio:.2f}x the throughput, {cpu_ratio:.2f}x the CPU per item")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
