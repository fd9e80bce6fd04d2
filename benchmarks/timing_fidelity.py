"""Client timing fidelity: how far a client's TTFT is from the truth, at 1, 10 and 100 concurrent streams.

The simulator runs in its own process and stamps, with CLOCK_MONOTONIC (shared
by all processes on the machine), when it received each request and when it
wrote the first token. A client's error is its TTFT minus the server's TTFT:
the time it spends sending, receiving and parsing, plus any lag of its own
event loop. We measure assay's client and, in the same run against the same
server, the official openai SDK (httpx), timed the way load tools time it:
from just before `create()` to the first chunk with content.

    .venv/bin/python benchmarks/timing_fidelity.py [--levels 1,10,100] [--per-worker 3]

Method, and why: each client runs in a fresh child process (so one client's heap and
threads do not slow the other), pinned to CPU 0 with the simulator on CPU 1 where
there are two (`--no-pin` leaves placement to the kernel); both clients run with the
collector frozen, as `assay load` sends (`collector_quiet`); and the streams' first
measured requests are spread over one request's length (`--spread`), because streams
that start together send in waves a cycle apart and the simulator's own arrival stamp
then waits behind the requests of the same wave: lag of the ground truth, not of the
client (`--spread 0` shows it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import numpy as np
import openai

from assay.clients import make_client, open_session
from assay.model import ChatRequest, Message, Target, Timing
from assay.runner.execute import collector_quiet
from assay.simulator import SimulatorProcess

PROFILE = """\
vendors:
  - name: bench
    models:
      - name: steady
        ttft_ms: {dist: normal, mean: 150, sd: 30, min: 50}
        itl_ms: {dist: fixed, value: 20}
        output_tokens: 40
"""
PROMPT = [{"role": "user", "content": "Explain in three sentences why the sky is blue."}]


async def server_rows(url: str) -> dict[str, dict[str, int]]:
    async with aiohttp.ClientSession() as s, s.get(f"{url}/_assay/requests") as r:
        return {row["id"]: row for row in (await r.json())["requests"] if "id" in row}


Sample = tuple[str, int, int]  # request id, client sent ns, client first-token ns


async def closed_loop(
    one: Callable[[], Awaitable[Sample]], workers: int, per_worker: int, spread_s: float
) -> list[Sample]:
    """`workers` streams kept in flight; each worker's first request (connection setup) is discarded,
    then worker i waits i/workers of `spread_s` so the streams do not send in waves."""

    async def worker(i: int) -> list[Sample]:
        await one()
        await asyncio.sleep(spread_s * i / workers)
        return [await one() for _ in range(per_worker)]

    with collector_quiet():
        batches = await asyncio.gather(*(worker(i) for i in range(workers)))
    return [s for batch in batches for s in batch]


async def assay_run(url: str, workers: int, per_worker: int, spread_s: float) -> list[Sample]:
    target = Target(name="bench", base_url=url + "/v1", model="steady")
    request = ChatRequest([Message("user", PROMPT[0]["content"])], max_tokens=40)
    async with open_session() as session:
        client = make_client(target, session)

        async def one() -> Sample:
            t = Timing()
            c = await client.send(request, t)
            return c.request_id or "", t.sent_ns, t.first_token_ns

        return await closed_loop(one, workers, per_worker, spread_s)


async def sdk_run(url: str, workers: int, per_worker: int, spread_s: float) -> list[Sample]:
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=60)

    async def one() -> Sample:
        sent = time.monotonic_ns()
        stream = await client.chat.completions.create(model="steady", messages=PROMPT, max_tokens=40, stream=True)
        first, rid = 0, ""
        async for chunk in stream:
            rid = chunk.id
            if not first and chunk.choices and chunk.choices[0].delta.content:
                first = time.monotonic_ns()
        return rid, sent, first

    try:
        return await closed_loop(one, workers, per_worker, spread_s)
    finally:
        await client.close()


def errors_ms(samples: list[Sample], rows: dict[str, dict[str, int]]) -> dict[str, list[float]]:
    """TTFT error and its two sides: send (client send -> server received), receive (server write -> client stamp)."""
    out: dict[str, list[float]] = {"ttft": [], "send": [], "receive": []}
    for rid, sent, first in samples:
        row = rows[rid]
        out["send"].append((row["received_ns"] - sent) / 1e6)
        out["receive"].append((first - row["first_token_ns"]) / 1e6)
        out["ttft"].append(((first - sent) - (row["first_token_ns"] - row["received_ns"])) / 1e6)
    return out


def client_process(
    name: str, url: str, workers: int, per_worker: int, spread_s: float, cpu: int | None
) -> list[Sample]:
    """One client's run, in its own process (the entry point of a spawned child)."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    return run(dict(CLIENTS)[name](url, workers, per_worker, spread_s))


def main(
    levels: list[int], per_worker: int, spread_s: float, pin: bool, samples_dir: Path | None = None
) -> dict[str, dict[str, dict[str, float]]]:
    pin = pin and len(os.sched_getaffinity(0)) >= 2
    client_cpu, sim_cpu = sorted(os.sched_getaffinity(0))[:2] if pin else (None, None)
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp) / "bench.yaml"
        profile.write_text(PROFILE)
        with SimulatorProcess(profile=profile) as sim:
            if sim_cpu is not None:
                os.sched_setaffinity(sim.proc.pid, {sim_cpu})
            url = sim.urls["bench"]
            results: dict[str, dict[str, dict[str, float]]] = {}
            for n in levels:
                k = max(per_worker, 30 // n)  # at least 30 samples a level
                for name, _ in CLIENTS:
                    with spawn.Pool(1) as pool:
                        samples = pool.apply(client_process, (name, url, n, k, spread_s, client_cpu))
                    errs = errors_ms(samples, asyncio.run(server_rows(url)))
                    if samples_dir is not None:  # one row per request, to see when the worst ones happened
                        samples_dir.mkdir(parents=True, exist_ok=True)
                        rows = ["sent_ns,ttft_error_ms,send_ms,receive_ms"] + [
                            f"{sent},{t:.4f},{a:.4f},{b:.4f}"
                            for (_, sent, _), t, a, b in zip(
                                samples, errs["ttft"], errs["send"], errs["receive"], strict=True
                            )
                        ]
                        (samples_dir / f"{n}-{name}.csv").write_text("\n".join(rows) + "\n")
                    results.setdefault(str(n), {})[name] = {
                        "n": len(errs["ttft"]),
                        **{f"{part}_p50_ms": float(np.percentile(v, 50)) for part, v in errs.items()},
                        **{f"{part}_p99_ms": float(np.percentile(v, 99)) for part, v in errs.items()},
                        "ttft_max_ms": max(errs["ttft"]),
                    }
            return results


CLIENTS: list[tuple[str, Callable[[str, int, int, float], Awaitable[list[Sample]]]]] = [
    ("assay", assay_run),
    ("openai-sdk", sdk_run),
]


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = [
        "| streams | client | n | TTFT error p50 | TTFT error p99 | send side p50 / p99 | receive side p50 / p99 "
        "| p99 ratio sdk/assay |",
        "|--:|---|--:|--:|--:|--:|--:|--:|",
    ]
    for level, by_client in results.items():
        ratio = by_client["openai-sdk"]["ttft_p99_ms"] / max(by_client["assay"]["ttft_p99_ms"], 1e-9)
        for name, r in by_client.items():
            lines.append(
                f"| {level} | {name} | {r['n']:.0f} | {r['ttft_p50_ms']:.3f} | {r['ttft_p99_ms']:.3f} "
                f"| {r['send_p50_ms']:.3f} / {r['send_p99_ms']:.3f} "
                f"| {r['receive_p50_ms']:.3f} / {r['receive_p99_ms']:.3f} | "
                + (f"{ratio:.1f}x |" if name == "openai-sdk" else " |")
            )
    return "\n".join(lines) + "\n(all figures in ms)"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="1,10,100", help="comma-separated concurrency levels")
    ap.add_argument("--per-worker", type=int, default=3, help="measured requests per stream after a warm-up one")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    ap.add_argument("--spread", type=float, default=1.0, help="seconds over which the streams' first requests start")
    ap.add_argument("--no-pin", action="store_true", help="do not pin the client and the simulator to their own CPUs")
    ap.add_argument("--samples", type=Path, help="write every request's figures, as CSV, into this directory")
    args = ap.parse_args()
    try:
        levels = [int(x) for x in args.levels.split(",")]
    except ValueError:
        ap.error(f"--levels takes comma-separated stream counts, like 1,10,100 (got {args.levels!r})")
    if args.spread < 0 or args.per_worker < 1 or min(levels) < 1:
        ap.error("--spread takes seconds >= 0 and --per-worker and --levels counts >= 1")
    res = main(levels, args.per_worker, args.spread, not args.no_pin, args.samples)
    print(table(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    worst = res.get("100", {}).get("assay", {}).get("ttft_p99_ms")
    if worst is not None:
        print(f"\ntarget: assay p99 error at 100 streams < 2 ms: {'MET' if worst < 2 else 'NOT MET'} ({worst:.3f} ms)")
