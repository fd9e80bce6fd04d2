"""Client capacity: the highest open-loop rate one load-generator process holds on one core.

The simulator runs in its own process pinned to CPU 1 and stamps, with
CLOCK_MONOTONIC, when each request arrived and when it wrote the first token.
Each load tool runs pinned to CPU 0 (`taskset -c 0`, the whole process tree), at
a constant rate, streaming 64 output tokens per request. A rate is *held* when

- generator lag p99 (actual send minus scheduled send, as the tool stamps them) < 5 ms,
- client TTFT error p99 (the tool's TTFT minus the server's) < 2 ms,
- at least 99% of requests succeed and the achieved rate is within 5% of the offered one.

It is *sustained* under a looser bar (lag and TTFT error p99 under 50 ms, same
success and rate), which gives a ratio when a peer holds no rate at all.

Requests are joined to the simulator's log by response id, so the error is per
request, not a difference of averages. guidellm is installed into a throwaway
virtualenv (default /tmp/assay-peers/guidellm, never committed, never a dependency
of assay) and run with its own CLI; its per-request JSON carries the scheduled
start, the request start, the first-token time and the response id.

vLLM's `vllm bench serve` (`--tools assay,guidellm,vllm`) goes into its own
virtualenv too (/tmp/assay-peers/vllm/venv; it pulls torch, several GB). It sends
each request with an `x-request-id` header, which the simulator logs, and saves
per-request send times (time.perf_counter, the same CLOCK_MONOTONIC) and TTFTs.
Its schedule is absolute (start + i/rate for a constant rate), so its lag is the
send time minus the first send minus i/rate. vLLM's TTFT ends at the first SSE chunk
with `choices`, which is the empty role chunk OpenAI-style servers send first; its
timing error is therefore measured against the server's stamp of that chunk
(`headers_ns`, written just before it), not against the first token.

    .venv/bin/python benchmarks/peers/client_capacity.py [--rates 100,200,400] [--seconds 20] [--tools assay,guidellm]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from peer_venv import ensure_peer  # the sibling module; scripts run with benchmarks/peers/ on sys.path

from assay.store import Store

GUIDELLM = "guidellm==0.8.1"
VLLM = "vllm<0.33"  # 0.33 needs a certifi newer than this machine's package mirror has
MISMATCHED = ("torchvision", "torchaudio", "torchcodec")
OUTPUT_TOKENS = 64
PROFILE = f"""\
vendors:
  - name: cap
    models:
      - {{name: m, ttft_ms: 20, itl_ms: 1, output_tokens: {OUTPUT_TOKENS}}}
knowledge: []
"""
LAG_P99_MS, TTFT_ERR_P99_MS = 5.0, 2.0  # the bar ("held")
LOOSE_P99_MS = (
    50.0  # a looser bar ("sustained"): lag and TTFT error p99 under 50 ms, for a ratio when a peer holds nothing
)


@dataclass
class Sample:
    response_id: str
    scheduled_s: float  # the request's scheduled start, on the tool's own clock
    lag_ms: float
    ttft_ms: float
    # The server stamp the tool's TTFT ends at: the first content token, or (vLLM, which stops its
    # TTFT clock at the first chunk with `choices`, the empty role chunk) the response's first chunk.
    server_mark: str = "first_token_ns"


@dataclass
class Level:
    tool: str
    rate: float
    requests: int
    ok: int
    achieved_rps: float
    lag_p99_ms: float
    ttft_err_p50_ms: float
    ttft_err_p99_ms: float
    matched: int

    def meets(self, lag_ms: float, ttft_err_ms: float) -> bool:
        """>=99% succeeded, >=95% of the rate sent, and both p99s under their bounds."""
        return (
            self.ok >= 0.99 * self.requests
            and self.achieved_rps >= 0.95 * self.rate
            and self.lag_p99_ms < lag_ms
            and self.ttft_err_p99_ms < ttft_err_ms
        )

    @property
    def held(self) -> bool:
        return self.meets(LAG_P99_MS, TTFT_ERR_P99_MS)

    @property
    def sustained(self) -> bool:
        return self.meets(LOOSE_P99_MS, LOOSE_P99_MS)


def start_simulator(profile: Path) -> tuple[subprocess.Popen[str], str]:
    assay = Path(sys.executable).parent / "assay"
    cmd = ["taskset", "-c", "1", str(assay), "simulator", "serve", "--port", "0", "--profile", str(profile)]
    # The simulator's log of connections a struggling peer drops goes to a file, not the results.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(profile.with_suffix(".log"), "w"), text=True)  # noqa: SIM115
    assert proc.stdout is not None
    ready = json.loads(proc.stdout.readline())
    return proc, ready["urls"]["cap"]


def server_log(url: str, since: int) -> dict[str, dict[str, int]]:
    """The simulator's timings by response id and by the client's own x-request-id."""
    with urllib.request.urlopen(f"{url}/_assay/requests?since={since}") as r:
        rows = [row for row in json.loads(r.read())["requests"] if "id" in row and "first_token_ns" in row]
    by_id = {row["id"]: row for row in rows}
    by_id.update({row["client_request_id"]: row for row in rows if "client_request_id" in row})
    return by_id


def server_count(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_assay/requests?since=0") as r:
        rows = json.loads(r.read())["requests"]
    return max((row["n"] for row in rows), default=-1) + 1


def run_group(cmd: list[str], env: dict[str, str] | None = None) -> None:
    """Run a peer in its own process group and kill whatever it leaves behind: guidellm's worker
    processes can outlive it, pinned to the load core, and would skew every later measurement."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _, err = proc.communicate()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[3]} failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")


def run_vllm(exe: Path, url: str, rate: float, seconds: float, work: Path) -> tuple[list[Sample], int, float]:
    from assay.suites.embedding import default_model_dir

    name, prefix = f"vllm-{rate:g}.json", f"vllm{rate:g}-"
    cmd = [
        "taskset", "-c", "0", str(exe), "bench", "serve",
        "--backend", "openai-chat", "--base-url", url, "--endpoint", "/v1/chat/completions", "--model", "m",
        # Any local tokenizer will do for the random dataset; the offline MiniLM one ships with assay's extra.
        "--tokenizer", str(default_model_dir()),
        "--dataset-name", "random", "--random-input-len", "16", "--random-output-len", str(OUTPUT_TOKENS),
        "--num-prompts", str(int(rate * seconds)), "--request-rate", str(rate), "--burstiness", "inf",
        "--ignore-eos", "--disable-tqdm", "--request-id-prefix", prefix, "--seed", "0",
        "--save-result", "--save-detailed", "--result-dir", str(work), "--result-filename", name,
    ]  # fmt: skip
    run_group(cmd, {**os.environ, "HF_HUB_OFFLINE": "1"})
    res = json.loads((work / name).read_text())
    starts, ttfts, errors = res["start_times"], res["ttfts"], res["errors"]
    t0 = starts[0]
    samples = [
        Sample(f"{prefix}{i}", t0 + i / rate, (st - t0 - i / rate) * 1e3, ttft * 1e3, "headers_ns")
        for i, (st, ttft, err) in enumerate(zip(starts, ttfts, errors, strict=True))
        if not err
    ]
    n = len(starts)
    duration = float(res.get("duration") or seconds)
    return samples, n, n / duration if duration else 0.0


def run_assay(url: str, rate: float, seconds: float, work: Path) -> tuple[list[Sample], int, float]:
    home = work / "assay-home"
    home.mkdir(parents=True, exist_ok=True)
    cfg = work / "assay.yaml"
    cfg.write_text(
        f'targets:\n  - {{name: cap, base_url: "{url}/v1", model: m, '
        "pricing: {input_per_mtok: 0, output_per_mtok: 0}}\n"
    )
    assay = Path(sys.executable).parent / "assay"
    cmd = [
        "taskset", "-c", "0", str(assay), "load", "-c", str(cfg), "--rate", str(rate), "--duration", str(seconds),
        "--output-tokens", str(OUTPUT_TOKENS), "--input-tokens", "16", "--json",
    ]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "ASSAY_HOME": str(home)})
    summary = json.loads(out.stdout)
    with Store(home / "assay.db") as store:
        records = store.records(summary["run_id"])
    samples = [
        Sample(
            r.request_id or "",
            r.intended_ns / 1e9,
            (r.sent_ns - r.intended_ns) / 1e6,
            (r.first_token_ns - r.sent_ns) / 1e6,
        )
        for r in records
        if r.ok and r.request_id
    ]
    t = summary["targets"]["cap"]
    return samples, t["requests"], t["achieved_rate_rps"]


def run_guidellm(exe: Path, url: str, rate: float, seconds: float, work: Path) -> tuple[list[Sample], int, float]:
    data = work / "prompts.jsonl"
    if not data.exists():
        with data.open("w") as f:
            for i in range(100_000):
                f.write(json.dumps({"prompt": f"Request {i}: a short question about the sea."}) + "\n")
    out = work / f"guidellm-{rate:g}.json"
    cmd = [
        "taskset", "-c", "0", str(exe), "run",
        "--backend", f"kind=openai_http,target={url},model=m,max_tokens={OUTPUT_TOKENS}",
        "--profile", f"kind=constant,rate={rate}",
        "--constraint", f"kind=max_duration,seconds={seconds}",
        "--data", f"kind=json_file,path={data}",
        "--output", f"kind=json,path={out}",
        "--disable-console",
    ]  # fmt: skip
    run_group(cmd)
    bench = json.loads(out.read_text())["benchmarks"][0]
    # guidellm stamps with time.time(), the simulator with CLOCK_MONOTONIC; both TTFTs are
    # differences on one clock each, so they compare without converting.
    samples = []
    for r in bench["requests"]["successful"]:
        t = r["info"]["timings"]
        if not r.get("response_id") or t.get("first_token_iteration") is None:
            continue
        start = t["request_start"]
        samples.append(
            Sample(
                r["response_id"],
                t["targeted_start"],
                (start - t["targeted_start"]) * 1e3,
                (t["first_token_iteration"] - start) * 1e3,
            )
        )
    n = sum(len(bench["requests"][k]) for k in ("successful", "errored", "incomplete"))
    duration = float(bench.get("duration") or seconds)
    return samples, n, n / duration if duration else 0.0


def level(
    tool: str,
    rate: float,
    samples: list[Sample],
    n: int,
    achieved: float,
    rows: dict[str, dict[str, int]],
    warmup_s: float,
) -> Level:
    """Figures over the requests scheduled after the warm-up (connection pools, imports, JIT caches)."""
    errs, lags = [], []
    t0 = min((s.scheduled_s for s in samples), default=0.0)
    for s in samples:
        if s.scheduled_s - t0 < warmup_s:
            continue
        row = rows.get(s.response_id)
        lags.append(s.lag_ms)
        if row is None:
            continue
        server_ttft_ms = (row[s.server_mark] - row["received_ns"]) / 1e6
        errs.append(s.ttft_ms - server_ttft_ms)
    return Level(
        tool,
        rate,
        n,
        len(samples),
        achieved,
        float(np.percentile(lags, 99)) if lags else float("inf"),
        float(np.percentile(errs, 50)) if errs else float("inf"),
        float(np.percentile(errs, 99)) if errs else float("inf"),
        len(errs),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="50,100,200,300,400,600,800")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds at the start of each run left out")
    ap.add_argument("--tools", default="assay,guidellm")
    ap.add_argument("--venv", type=Path, default=Path("/tmp/assay-peers/guidellm"))
    ap.add_argument("--vllm-venv", type=Path, default=Path("/tmp/assay-peers/vllm/venv"))
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()
    tools = args.tools.split(",")
    exe = ensure_peer(args.venv, "guidellm", GUIDELLM) if "guidellm" in tools else None
    # The mirror pairs vllm's CPU torch with torchvision/torchaudio builds for another torch, which fail
    # at import; `vllm bench serve` needs none of them, and transformers skips them when absent.
    vllm = ensure_peer(args.vllm_venv, "vllm", VLLM, drop=MISMATCHED) if "vllm" in tools else None
    levels: list[Level] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "cap.yaml").write_text(PROFILE)
        sim, url = start_simulator(work / "cap.yaml")
        try:
            for rate in (float(r) for r in args.rates.split(",")):
                for tool in tools:
                    since = server_count(url)
                    if tool == "assay":
                        samples, n, achieved = run_assay(url, rate, args.seconds, work)
                    elif tool == "vllm":
                        assert vllm is not None
                        samples, n, achieved = run_vllm(vllm, url, rate, args.seconds, work)
                    else:
                        assert exe is not None
                        samples, n, achieved = run_guidellm(exe, url, rate, args.seconds, work)
                    lv = level(tool, rate, samples, n, achieved, server_log(url, since), args.warmup)
                    levels.append(lv)
                    print(
                        f"{tool:9} {rate:6.0f}/s  n={lv.requests:6d} ok={lv.ok:6d} achieved={lv.achieved_rps:7.1f}/s  "
                        f"lag p99={lv.lag_p99_ms:7.2f} ms  TTFT err p50={lv.ttft_err_p50_ms:6.2f} "
                        f"p99={lv.ttft_err_p99_ms:7.2f} ms  matched={lv.matched}  {'held' if lv.held else 'NOT held'}",
                        flush=True,
                    )
        finally:
            sim.terminate()
            sim.wait(10)
    results = {}
    for bar, test in (("held", lambda lv: lv.held), ("sustained", lambda lv: lv.sustained)):
        best = {t: max((lv.rate for lv in levels if lv.tool == t and test(lv)), default=0.0) for t in tools}
        results[bar] = best
        print(f"\nhighest rate {bar}: " + ", ".join(f"{t} {r:g}/s" for t, r in best.items()))
        for peer in tools[1:]:
            if best[tools[0]] and best[peer]:
                print(f"  ratio {tools[0]}/{peer}: {best[tools[0]] / best[peer]:.1f}x")
    if args.json:
        args.json.write_text(json.dumps({"levels": [lv.__dict__ for lv in levels], **results}, indent=2))


if __name__ == "__main__":
    main()
