"""Gateway overhead: the latency a proxy adds in front of an LLM server, and the highest rate one proxy process holds.

The upstream is assay's simulator with one model of fixed latency (TTFT 50 ms, then 64 tokens 5 ms apart), pinned
to CPU 1 with this script's load client; each proxy (assay's gateway, LiteLLM's proxy) runs as one process pinned
to CPU 0 (`taskset -c 0`, its whole process tree). The client streams OpenAI-style chat completions over aiohttp
and stamps, with time.perf_counter_ns (CLOCK_MONOTONIC, the simulator's clock), the send, the chunk that completed
the first content token and the end of the stream. The simulator logs its own stamps for every request (arrival,
first token written, last token written), joined to the client's by the x-request-id header the client sends
(when the proxy forwards it) or else by the response id. Per request:

    added TTFT = client TTFT - (server first_token_ns - received_ns)
    added E2E  = client E2E  - (server done_ns - received_ns)

so the upstream's own time (and its jitter) is taken out request by request. The direct path (client to
simulator) measures what the client and loopback add by themselves; "added by the proxy" is a proxy path's
percentile minus the direct path's.

1. Sequential: one request at a time, paths interleaved (direct, assay, litellm, direct, ...), after warm-ups.
2. Closed loop: `--concurrency` streams kept in flight for `--seconds` per path (the first 2 s left out).
3. Open loop: each `--rates` rate for `--seconds` per path (direct first); a rate is *held* when >= 99% of
   requests succeed, the achieved rate (successful requests over the sending window) is within 5% of the
   offered one and the added TTFT p99 is <= 50 ms. A proxy is dropped once it fails two rates in a row.

Every response through a proxy is checked to have passed through it (assay: the `x-assay-target` header names
the simulator target; LiteLLM: its `x-litellm-call-id` header), and every request to have reached the simulator.
assay's gateway answers with an id of its own and does not forward x-request-id, so its responses are joined
through its Records (item_id = its id, request_id = the upstream's).

Both proxies share CPU 0: before each sequential request and each phase the script waits until neither has used
CPU for 50 ms. The CPU time per request it prints (user + system from /proc/PID/stat) is tick-sampled on this
kind of kernel and reads high at low rates, where a proxy runs in short bursts; it is steady from about 50/s.

    .venv/bin/python benchmarks/gateway_overhead.py [--proxies assay,litellm] [--sequential 300] [--concurrency 50]
        [--rates 5,10,25,50,100,200,400,800] [--seconds 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
from litellm_proxy import DEFAULT_VENV, LiteLLMProxy, ensure_litellm, litellm_version

from assay.runner.execute import collector_quiet

MODEL, OUTPUT_TOKENS = "m", 64
PROFILE = f"""\
vendors:
  - name: sim
    models:
      - {{name: {MODEL}, ttft_ms: 50, itl_ms: 5, output_tokens: {OUTPUT_TOKENS}}}
knowledge: []
"""
GATEWAY_CFG = """\
targets:
  - {{name: sim, api: openai, base_url: "{base_url}", model: {model},
     pricing: {{input_per_mtok: 1, output_per_mtok: 2}}}}
gateway:
  routes:
    - {{model: chat, policy: fallback, targets: [sim]}}
"""
PROMPT = [{"role": "user", "content": "Tell me three things about the sea."}]
HELD_OK, HELD_RATE, HELD_ADDED_P99_MS = 0.99, 0.95, 50.0
REQUEST_TIMEOUT_S = 30.0
MAX_IN_FLIGHT = 4000  # the client's connection pool; a request waiting for a connection counts in its TTFT
WARMUP_S = 2.0
ASSAY = Path(sys.executable).parent / "assay"


@dataclass
class Endpoint:
    """One path to the simulator: its chat completions URL, the model name it takes, and how to tell that a
    response really came through it."""

    name: str
    url: str
    model: str
    passed_through: Callable[[Mapping[str, str]], bool]
    api_key: str = "sk-dummy"
    upstream_ids: Callable[[set[str]], dict[str, str]] | None = None

    def resolve(self, samples: list[Sample]) -> None:
        """Give each sample the simulator's id for its response, where the proxy answered with its own."""
        if self.upstream_ids is not None:
            ids = self.upstream_ids({s.response_id for s in samples if s.ok})
            for s in samples:
                s.upstream_id = ids.get(s.response_id, "")

    def body(self) -> bytes:
        return orjson.dumps({"model": self.model, "messages": PROMPT, "stream": True, "max_tokens": OUTPUT_TOKENS})


@dataclass
class Sample:
    path: str
    client_id: str
    scheduled_ns: int
    sent_ns: int = 0
    first_ns: int = 0
    done_ns: int = 0
    status: int = 0
    response_id: str = ""
    upstream_id: str = ""  # the simulator's response id, where the proxy gives the client an id of its own
    via: bool = False
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.via and self.first_ns > 0 and self.done_ns > 0 and not self.error


def scan_events(buf: bytes, response_id: str) -> tuple[bool, str, bytes]:
    """Read the complete SSE events in `buf`: (a content token was among them, the response id, the rest)."""
    buf = buf.replace(b"\r\n", b"\n")
    while (end := buf.find(b"\n\n")) >= 0:
        event, buf = buf[:end], buf[end + 2 :]
        for line in event.split(b"\n"):
            data = line[5:].strip() if line.startswith(b"data:") else b""
            if not data or data == b"[DONE]":
                continue
            obj = orjson.loads(data)
            response_id = response_id or obj.get("id") or ""
            choices = obj.get("choices") or []
            if choices and (choices[0].get("delta") or {}).get("content"):
                return True, response_id, buf
    return False, response_id, buf


async def stream_one(session: aiohttp.ClientSession, ep: Endpoint, body: bytes, client_id: str, at_ns: int) -> Sample:
    """One streamed request; chunks are stamped as they arrive, before they are parsed."""
    s = Sample(ep.name, client_id, at_ns)
    headers = {"content-type": "application/json", "authorization": f"Bearer {ep.api_key}", "x-request-id": client_id}
    s.sent_ns = time.perf_counter_ns()
    try:
        async with session.post(ep.url, data=body, headers=headers) as resp:
            s.status, s.via = resp.status, ep.passed_through(resp.headers)
            if resp.status != 200:
                s.error = (await resp.read())[:300].decode(errors="replace")
                return s
            buf, tail = b"", b""
            async for chunk in resp.content.iter_any():
                now = time.perf_counter_ns()
                if not s.first_ns:
                    found, s.response_id, buf = scan_events(buf + chunk, s.response_id)
                    if found:
                        s.first_ns = now
                tail = (tail + chunk)[-64:]
            s.done_ns = time.perf_counter_ns()
            if b"[DONE]" not in tail:
                s.error = "stream ended without [DONE]"
    except (aiohttp.ClientError, TimeoutError, ValueError) as e:
        s.error = f"{type(e).__name__}: {e}"[:300]
    return s


class Simulator:
    """The upstream, pinned to CPU 1; its request log is read in increments."""

    def __init__(self, work: Path) -> None:
        profile = work / "sim.yaml"
        profile.write_text(PROFILE)
        cmd = ["taskset", "-c", "1", str(ASSAY), "simulator", "serve", "--port", "0", "--profile", str(profile)]
        stderr = (work / "sim.log").open("w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True)
        assert self.proc.stdout is not None
        self.url = json.loads(self.proc.stdout.readline())["urls"]["sim"]
        self.seen = 0

    def new_rows(self) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
        """Requests logged since the last call, by the client's x-request-id and by response id."""
        with urllib.request.urlopen(f"{self.url}/_assay/requests?since={self.seen}", timeout=60) as r:
            rows = orjson.loads(r.read())["requests"]
        self.seen = max((row["n"] for row in rows), default=self.seen - 1) + 1
        done = [row for row in rows if "first_token_ns" in row and "done_ns" in row]
        return {r["client_request_id"]: r for r in done if "client_request_id" in r}, {r["id"]: r for r in done}

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(10)


class AssayGateway:
    """`assay gateway serve` pinned to CPU 0, its record store in a temporary ASSAY_HOME."""

    def __init__(self, sim_url: str, work: Path, cpu: str = "0") -> None:
        cfg, self.port_file, home = work / "gateway.yaml", work / "gateway.port", work / "assay-home"
        self.db = home / "assay.db"
        home.mkdir(exist_ok=True)
        cfg.write_text(GATEWAY_CFG.format(base_url=f"{sim_url}/v1", model=MODEL))
        cmd = [
            "taskset", "-c", cpu, str(ASSAY), "gateway", "serve", "-c", str(cfg),
            "--host", "127.0.0.1", "--port", "0", "--port-file", str(self.port_file),
        ]  # fmt: skip
        self.log = work / "gateway.log"
        env = {**os.environ, "ASSAY_HOME": str(home)}
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.url = ""

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"assay gateway exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}")
            text = self.port_file.read_text().strip() if self.port_file.exists() else ""
            if text.isdigit():
                self.url = f"http://127.0.0.1:{text}"
                return
            time.sleep(0.1)
        raise RuntimeError(f"assay gateway not listening within {timeout_s:g}s:\n{self.log.read_text()[-3000:]}")

    def pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-g", str(self.proc.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def upstream_ids(self, wanted: set[str], wait_s: float = 5.0) -> dict[str, str]:
        """The gateway's response id -> the upstream's, from its Records (item_id, request_id), which its
        writer may commit a moment after the response ended."""
        found: dict[str, str] = {}
        deadline = time.monotonic() + wait_s
        while True:
            with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)) as conn:
                rows = conn.execute("SELECT item_id, request_id FROM records WHERE status = 'ok'").fetchall()
            found = {item: rid for item, rid in rows if item in wanted and rid}
            if len(found) >= len(wanted) or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)


def cpu_ms(pids: list[int]) -> float:
    """User plus system CPU time of these processes so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total * 1e3 / tick


def affinity(pids: list[int]) -> str:
    return ", ".join(f"{pid}:{sorted(os.sched_getaffinity(pid))}" for pid in pids)


@dataclass
class Figures:
    """One path in one phase, in milliseconds; "added" is over the simulator's own time for the same request."""

    path: str
    phase: str
    offered_rps: float
    requests: int
    ok: int
    matched: int
    matched_by_request_id: int  # the rest by response id: the proxy did not forward x-request-id
    achieved_rps: float
    lag_p99_ms: float
    client_ttft_p50_ms: float
    added_ttft_p50_ms: float
    added_ttft_p99_ms: float
    added_e2e_p50_ms: float
    added_e2e_p99_ms: float
    proxy_cpu_ms_per_request: float
    first_error: str

    @property
    def held(self) -> bool:
        return (
            self.requests > 0
            and self.ok >= HELD_OK * self.requests
            and self.achieved_rps >= HELD_RATE * self.offered_rps
            and self.added_ttft_p99_ms <= HELD_ADDED_P99_MS
        )


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def figures(
    phase: str, path: str, samples: list[Sample], rows: tuple[dict, dict], offered: float, cpu_ms_used: float
) -> Figures:
    by_client, by_id = rows
    ok = [s for s in samples if s.ok]
    ttft, e2e, client_ttft = [], [], []
    by_request_id = 0
    for s in ok:
        row = by_client.get(s.client_id)
        by_request_id += row is not None
        row = row or by_id.get(s.upstream_id or s.response_id)
        if row is None:
            continue
        client_ttft.append((s.first_ns - s.sent_ns) / 1e6)
        ttft.append(client_ttft[-1] - (row["first_token_ns"] - row["received_ns"]) / 1e6)
        e2e.append((s.done_ns - s.sent_ns) / 1e6 - (row["done_ns"] - row["received_ns"]) / 1e6)
    span_s = (max(s.sent_ns for s in samples) - min(s.sent_ns for s in samples)) / 1e9 if samples else 0.0
    achieved = len(ok) / (span_s + 1 / offered) if offered and samples else len(ok) / max(span_s, 1e-9)
    lags = [(s.sent_ns - s.scheduled_ns) / 1e6 for s in samples if s.scheduled_ns]
    errors = [s.error or f"status {s.status}, passed through: {s.via}" for s in samples if not s.ok]
    return Figures(
        path, phase, offered, len(samples), len(ok), len(ttft), by_request_id, achieved, pct(lags, 99),
        pct(client_ttft, 50), pct(ttft, 50), pct(ttft, 99), pct(e2e, 50), pct(e2e, 99),
        cpu_ms_used / max(len(samples), 1), errors[0] if errors else "",
    )  # fmt: skip


class Bench:
    """The endpoints, the simulator whose log they are joined to, and the proxies' processes (for CPU time)."""

    def __init__(self, sim: Simulator, endpoints: list[Endpoint], pids: dict[str, Callable[[], list[int]]]) -> None:
        self.sim, self.endpoints, self.pids = sim, endpoints, pids
        self.n = 0
        self.session: aiohttp.ClientSession

    def next_id(self, tag: str) -> str:
        self.n += 1
        return f"bench-{tag}-{self.n}"

    def cpu(self, path: str) -> float:
        return cpu_ms(self.pids[path]()) if path in self.pids else 0.0

    async def settle(self, paths: list[str], timeout_s: float = 30.0) -> None:
        """Wait until these proxies use no CPU for 50 ms (two /proc readings a tick apart), so the work one
        proxy does after a response (logging, accounting) does not land on the next request to another."""
        deadline = time.monotonic() + timeout_s
        before = sum(self.cpu(p) for p in paths)
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            now = sum(self.cpu(p) for p in paths)
            if now == before:
                return
            before = now

    async def sequential(self, n: int, warmup: int = 20) -> list[Figures]:
        samples: dict[str, list[Sample]] = {ep.name: [] for ep in self.endpoints}
        bodies = {ep.name: ep.body() for ep in self.endpoints}
        for _ in range(warmup):
            for ep in self.endpoints:
                await stream_one(self.session, ep, bodies[ep.name], self.next_id("warm"), 0)
        self.sim.new_rows()
        cpu0 = {ep.name: self.cpu(ep.name) for ep in self.endpoints}
        for _ in range(n):
            for ep in self.endpoints:
                await self.settle(list(self.pids), 1.0)
                s = await stream_one(self.session, ep, bodies[ep.name], self.next_id(f"seq-{ep.name}"), 0)
                samples[ep.name].append(s)
        await asyncio.sleep(0.2)  # the simulator logs a request's end just after the client sees it
        for ep in self.endpoints:
            ep.resolve(samples[ep.name])
        rows = self.sim.new_rows()
        return [figures("sequential", name, ss, rows, 0.0, self.cpu(name) - cpu0[name]) for name, ss in samples.items()]

    async def closed_loop(self, ep: Endpoint, workers: int, seconds: float) -> Figures:
        """`workers` streams in flight for `seconds`; their starts spread over one request's length (~0.4 s)."""
        body = ep.body()
        start = time.perf_counter_ns()
        deadline = start + int(seconds * 1e9)

        async def worker(i: int) -> list[Sample]:
            await asyncio.sleep(0.4 * i / workers)
            out = []
            while time.perf_counter_ns() < deadline:
                out.append(await stream_one(self.session, ep, body, self.next_id(f"cl-{ep.name}"), 0))
            return out

        await self.settle(list(self.pids))
        self.sim.new_rows()
        cpu0 = self.cpu(ep.name)
        batches = await asyncio.gather(*(worker(i) for i in range(workers)))
        cpu_used = self.cpu(ep.name) - cpu0
        await asyncio.sleep(0.2)
        measured = [s for b in batches for s in b if s.sent_ns >= start + WARMUP_S * 1e9]
        ep.resolve(measured)
        fig = figures(f"{workers} streams", ep.name, measured, self.sim.new_rows(), 0.0, 0.0)
        fig.proxy_cpu_ms_per_request = cpu_used / max(sum(map(len, batches)), 1)
        return fig

    async def open_loop(self, ep: Endpoint, rate: float, seconds: float) -> Figures:
        """`rate` requests a second for `seconds`, on an absolute schedule; the first WARMUP_S left out."""
        body, n = ep.body(), round(rate * seconds)
        interval_ns = 1e9 / rate
        await self.settle(list(self.pids))
        self.sim.new_rows()
        cpu0 = self.cpu(ep.name)
        t0 = time.perf_counter_ns() + 20_000_000
        tasks: list[asyncio.Task[Sample]] = []
        i = 0
        while i < n:
            now = time.perf_counter_ns()
            while i < n and t0 + i * interval_ns <= now:
                at = int(t0 + i * interval_ns)
                tasks.append(asyncio.create_task(stream_one(self.session, ep, body, self.next_id(f"ol-{ep.name}"), at)))
                i += 1
            if i < n:
                await asyncio.sleep(max(0.0, (t0 + i * interval_ns - time.perf_counter_ns()) / 1e9))
        samples = list(await asyncio.gather(*tasks))
        cpu_used = self.cpu(ep.name) - cpu0
        await asyncio.sleep(0.2)
        measured = [s for s in samples if s.scheduled_ns >= t0 + WARMUP_S * 1e9]
        ep.resolve(measured)
        fig = figures(f"{rate:g}/s", ep.name, measured, self.sim.new_rows(), rate, 0.0)
        fig.proxy_cpu_ms_per_request = cpu_used / max(n, 1)
        return fig


def start_proxies(names: list[str], sim: Simulator, work: Path, venv: Path) -> tuple[list[Endpoint], dict, list, dict]:
    """The direct path plus each proxy's, the proxies' process trees, their stop functions and versions."""
    direct = Endpoint("direct", f"{sim.url}/v1/chat/completions", MODEL, lambda h: h.get("x-request-id", "") != "")
    endpoints, pids, stops, versions = [direct], {}, [], {}
    if "assay" in names:
        gw = AssayGateway(sim.url, work)
        stops.append(gw.stop)
        gw.wait_ready()
        endpoints.append(
            Endpoint(
                "assay",
                f"{gw.url}/v1/chat/completions",
                "chat",
                lambda h: h.get("x-assay-target") == "sim",
                upstream_ids=gw.upstream_ids,
            )
        )
        pids["assay"] = gw.pids
        versions["assay"] = subprocess.run([str(ASSAY), "--version"], capture_output=True, text=True).stdout.strip()
    if "litellm" in names:
        exe = ensure_litellm(venv)
        versions["litellm"] = litellm_version(exe)
        lp = LiteLLMProxy(exe, f"{sim.url}/v1", MODEL, work)
        stops.append(lp.stop)
        lp.wait_ready()
        endpoints.append(
            Endpoint(
                "litellm", f"{lp.url}/v1/chat/completions", "chat", lambda h: "x-litellm-call-id" in h, lp.master_key
            )
        )
        pids["litellm"] = lp.pids
    for name, tree in pids.items():
        print(f"{name} {versions[name]}: pids and CPUs {affinity(tree())}", flush=True)
    return endpoints, pids, stops, versions


def line(f: Figures) -> str:
    held = ("held" if f.held else "NOT held") if f.offered_rps else ""
    return (
        f"{f.phase:>12} {f.path:8} n={f.requests:6d} ok={f.ok:6d} "
        f"matched={f.matched:6d} ({f.matched_by_request_id} by x-request-id) "
        f"achieved={f.achieved_rps:7.1f}/s lag p99={f.lag_p99_ms:7.2f}  added TTFT p50={f.added_ttft_p50_ms:7.2f} "
        f"p99={f.added_ttft_p99_ms:8.2f}  E2E p50={f.added_e2e_p50_ms:7.2f} p99={f.added_e2e_p99_ms:8.2f}  "
        f"cpu/req={f.proxy_cpu_ms_per_request:6.2f} ms  {held}"
        + (f"\n             first error: {f.first_error}" if f.first_error and f.ok < f.requests else "")
    )


async def run(args: argparse.Namespace, endpoints: list[Endpoint], sim: Simulator, pids: dict) -> list[Figures]:
    bench = Bench(sim, endpoints, pids)
    out: list[Figures] = []
    connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT, limit_per_host=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as bench.session:
        with collector_quiet():
            if args.sequential:
                for f in await bench.sequential(args.sequential):
                    out.append(f)
                    print(line(f), flush=True)
            if args.concurrency:
                for ep in endpoints:
                    out.append(await bench.closed_loop(ep, args.concurrency, args.seconds))
                    print(line(out[-1]), flush=True)
            failed_in_a_row = {ep.name: 0 for ep in endpoints}
            for rate in args.rates:
                proxies = [ep for ep in endpoints[1:] if failed_in_a_row[ep.name] < 2]
                if (endpoints[1:] and not proxies) or (not endpoints[1:] and failed_in_a_row["direct"] >= 2):
                    break
                for ep in [endpoints[0], *proxies]:  # the direct path at every rate: what the harness adds
                    f = await bench.open_loop(ep, rate, args.seconds)
                    failed_in_a_row[ep.name] = 0 if f.held else failed_in_a_row[ep.name] + 1
                    out.append(f)
                    print(line(f), flush=True)
                    await asyncio.sleep(1.0)  # let the last streams' connections settle
    return out


def summary(figs: list[Figures], proxies: list[str]) -> dict[str, dict[str, float]]:
    """Per phase, each proxy's added latency minus the direct path's; and each path's highest held rate."""
    added: dict[str, dict[str, float]] = {}
    for phase in dict.fromkeys(f.phase for f in figs if not f.offered_rps):
        by_path = {f.path: f for f in figs if f.phase == phase}
        if "direct" not in by_path:
            continue
        d = by_path["direct"]
        for p in proxies:
            if p in by_path:
                f = by_path[p]
                added[f"{phase} {p}"] = {
                    "ttft_p50_ms": f.added_ttft_p50_ms - d.added_ttft_p50_ms,
                    "ttft_p99_ms": f.added_ttft_p99_ms - d.added_ttft_p99_ms,
                    "e2e_p50_ms": f.added_e2e_p50_ms - d.added_e2e_p50_ms,
                    "e2e_p99_ms": f.added_e2e_p99_ms - d.added_e2e_p99_ms,
                }
    held = {
        p: max((f.offered_rps for f in figs if f.path == p and f.offered_rps and f.held), default=0.0)
        for p in ["direct", *proxies]
    }
    return {"added_by_proxy": added, "highest_held_rps": held}


def print_summary(res: dict[str, dict], proxies: list[str]) -> None:
    print("\nAdded by the proxy (proxy path minus direct path), ms:")
    print(f"{'':24} {'TTFT p50':>9} {'TTFT p99':>9} {'E2E p50':>9} {'E2E p99':>9}")
    for key, v in res["added_by_proxy"].items():
        print(f"{key:24} {v['ttft_p50_ms']:9.2f} {v['ttft_p99_ms']:9.2f} {v['e2e_p50_ms']:9.2f} {v['e2e_p99_ms']:9.2f}")
    held = res["highest_held_rps"]
    bar = f">= {HELD_OK:.0%} ok, achieved >= {HELD_RATE:.0%} of offered, added TTFT p99 <= {HELD_ADDED_P99_MS:g} ms"
    print(f"\nHighest rate held ({bar}): " + ", ".join(f"{p} {r:g}/s" for p, r in held.items()))
    if "assay" in held and "litellm" in held:
        a, b = held["assay"], held["litellm"]
        ratio = f"{a / b:.1f}x" if a and b else ("> every rate LiteLLM held (none)" if a else "n/a")
        print(f"ratio assay/litellm: {ratio}")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proxies", default="assay,litellm", help="comma-separated: assay, litellm (or none)")
    ap.add_argument("--sequential", type=int, default=300, help="requests per path, one at a time (0 skips)")
    ap.add_argument("--concurrency", type=int, default=50, help="streams kept in flight, closed loop (0 skips)")
    ap.add_argument("--rates", default="5,10,25,50,100,200,400,800", help="open-loop rates/s ('' skips)")
    ap.add_argument("--seconds", type=float, default=15.0, help="length of each closed-loop and rate run")
    ap.add_argument("--litellm-venv", type=Path, default=DEFAULT_VENV)
    ap.add_argument("--json", type=Path, help="also write every figure to this file")
    args = ap.parse_args()
    args.proxies = [p for p in args.proxies.split(",") if p and p != "none"]
    if not set(args.proxies) <= {"assay", "litellm"}:
        ap.error(f"--proxies takes assay and/or litellm, comma-separated (got {','.join(args.proxies)!r})")
    try:
        args.rates = [float(r) for r in args.rates.split(",") if r]
    except ValueError:
        ap.error(f"--rates takes comma-separated requests per second, like 5,10,25 (got {args.rates!r})")
    if min(args.rates, default=1) <= 0 or args.sequential < 0 or args.concurrency < 0 or args.seconds <= WARMUP_S:
        ap.error(f"--rates must be > 0, --sequential and --concurrency >= 0, --seconds > {WARMUP_S:g}")
    return args


def main() -> None:
    args = parse_args()
    os.sched_setaffinity(0, {1})  # the load client shares CPU 1 with the simulator; the proxies have CPU 0
    with tempfile.TemporaryDirectory(prefix="gateway-overhead-") as tmp:
        work = Path(tmp)
        sim = Simulator(work)
        stops = [sim.stop]
        try:
            endpoints, pids, proxy_stops, versions = start_proxies(args.proxies, sim, work, args.litellm_venv)
            stops = [*proxy_stops, sim.stop]
            try:
                import uvloop

                figs = uvloop.run(run(args, endpoints, sim, pids))
            except ImportError:
                figs = asyncio.run(run(args, endpoints, sim, pids))
        finally:
            for stop in stops:
                with contextlib.suppress(Exception):
                    stop()
    res = summary(figs, args.proxies)
    print_summary(res, args.proxies)
    if args.json:
        doc = {"versions": versions, "figures": [{**asdict(f), "held": f.held} for f in figs], **res}
        args.json.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
