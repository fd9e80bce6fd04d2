"""Gateway soak: a steady rate through one gateway process for a long time, one target flapping; is memory flat?

The simulator (child process) serves two vendors: `steady`, and `flappy`, which is
down (every request a 500) for `--down` seconds out of every `--period`. The gateway
(`assay gateway serve`, child process) routes one model over both with the
`fallback` policy, flappy first, so every outage exercises the breaker, the
fallback and the recovery. An open-loop client sends `--rate` streaming requests a
second. Every `--sample` seconds the script reads the gateway's RSS (from
/proc/PID/status) and its /metrics (record queue, dropped Records).

    .venv/bin/python benchmarks/gateway_soak.py --minutes 60 --rate 50 [--json out.json]

Memory is "flat" when the RSS at the end is within 5% (or 5 MB) of the RSS after
the first `--warmup` minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
ASSAY = ROOT / ".venv" / "bin" / "assay"


def _profile(minutes: float, period_s: float, down_s: float) -> str:
    incidents = []
    t = period_s / 2
    while t < minutes * 60 + 120:
        incidents.append(f"{{start_s: {t:g}, end_s: {t + down_s:g}, faults: {{server_error: 1.0}}}}")
        t += period_s
    model = "ttft_ms: 20, itl_ms: 2, output_tokens: 32"
    return (
        f"seed: 3\nvendors:\n  - name: steady\n    models: [{{name: steady, {model}}}]\n"
        f"  - name: flappy\n    models: [{{name: flappy, {model}, incidents: [{', '.join(incidents)}]}}]\n"
    )


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _load(url: str, rate: float, seconds: float, samples: list[dict[str, float]], gw_pid: int,
                sample_s: float) -> dict[str, int]:  # fmt: skip
    counts = {"ok": 0, "failed": 0}
    body = {"model": "chat", "stream": True, "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            try:
                async with session.post(url + "/v1/chat/completions", json=body,
                                        timeout=aiohttp.ClientTimeout(total=30)) as r:  # fmt: skip
                    data = await r.read()
                    good = r.status == 200 and b"[DONE]" in data and b'"error"' not in data
            except (aiohttp.ClientError, TimeoutError):
                good = False
            counts["ok" if good else "failed"] += 1

        async def sampler() -> None:
            t0 = time.monotonic()
            while True:
                async with session.get(url + "/metrics") as r:
                    text = await r.text()
                samples.append({"t_s": round(time.monotonic() - t0, 1), "rss_mb": round(_rss_mb(gw_pid), 2),
                                "record_queue": _metric(text, "assay_gateway_record_queue"),
                                "dropped": _metric(text, "assay_gateway_records_dropped_total"),
                                "ok": counts["ok"], "failed": counts["failed"]})  # fmt: skip
                print(json.dumps(samples[-1]), file=sys.stderr, flush=True)
                await asyncio.sleep(sample_s)

        sampling = asyncio.create_task(sampler())
        tasks: set[asyncio.Task[None]] = set()
        start = time.monotonic()
        i = 0
        while (due := start + i / rate) < start + seconds:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            task = asyncio.create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        await asyncio.gather(*tasks)
        sampling.cancel()
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--rate", type=float, default=50)
    ap.add_argument("--period", type=float, default=60, help="seconds between the flappy target's outages")
    ap.add_argument("--down", type=float, default=6, help="seconds each outage lasts")
    ap.add_argument("--sample", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=2, help="minutes before the baseline RSS is taken")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.minutes <= 0 or args.rate <= 0 or args.down >= args.period:
        ap.error("--minutes and --rate must be > 0 and --down < --period")
    tmp = Path(tempfile.mkdtemp(prefix="assay-soak-"))
    (tmp / "sim.yaml").write_text(_profile(args.minutes, args.period, args.down))
    env = {**os.environ, "ASSAY_HOME": str(tmp / "home")}
    sim = subprocess.Popen([sys.executable, "-m", "assay", "simulator", "serve", "--port", "0", "--profile",
                            str(tmp / "sim.yaml")], stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
    assert sim.stdout is not None
    urls = json.loads(sim.stdout.readline())["urls"]
    price = "{input_per_mtok: 1, output_per_mtok: 2}"
    (tmp / "assay.yaml").write_text(
        "targets:\n"
        f"  - {{name: flappy, base_url: \"{urls['flappy']}/v1\", model: flappy, pricing: {price}}}\n"
        f"  - {{name: steady, base_url: \"{urls['steady']}/v1\", model: steady, pricing: {price}}}\n"
        "gateway:\n  routes:\n    - {model: chat, targets: [flappy, steady], retries: 1}\n"
        "  breaker: {consecutive_failures: 3, cooldown_s: 1, max_cooldown_s: 4}\n")  # fmt: skip
    port_file = tmp / "port"
    gw = subprocess.Popen([str(ASSAY), "gateway", "serve", "-c", str(tmp / "assay.yaml"), "--port", "0",
                           "--port-file", str(port_file)], env=env, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        while not port_file.exists():
            time.sleep(0.1)
        url = f"http://127.0.0.1:{int(port_file.read_text())}"
        samples: list[dict[str, float]] = []
        counts = asyncio.run(_load(url, args.rate, args.minutes * 60, samples, gw.pid, args.sample))
    finally:
        for p in (gw, sim):
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
    base = next((s for s in samples if s["t_s"] >= args.warmup * 60), samples[0])
    end = samples[-1]
    growth = end["rss_mb"] - base["rss_mb"]
    flat = growth <= max(5.0, 0.05 * base["rss_mb"])
    total = counts["ok"] + counts["failed"]
    result = {"minutes": args.minutes, "rate": args.rate, "requests": total,
              "success": counts["ok"] / total if total else 0.0, "rss_base_mb": base["rss_mb"],
              "rss_end_mb": end["rss_mb"], "rss_max_mb": max(s["rss_mb"] for s in samples), "growth_mb": growth,
              "flat": flat, "dropped_records": end["dropped"], "samples": samples}  # fmt: skip
    print(f"{total} requests, {100 * result['success']:.3f}% ok; RSS {base['rss_mb']:.1f} MB at "
          f"{base['t_s']:.0f} s -> {end['rss_mb']:.1f} MB at {end['t_s']:.0f} s (max {result['rss_max_mb']:.1f}); "
          f"{'flat' if flat else 'GROWING'}; dropped Records {end['dropped']:g}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
