"""Load-run memory over a long soak: resident memory sampled while `assay load` runs open loop.

The simulator (instant answers) runs in its own process; this process runs the load
generator in-process and samples its own RSS every few seconds. Flat memory means the
generator, the Record writer and the live views hold no per-request state; the summary
at the end streams Records through quantile sketches.

    .venv/bin/python benchmarks/load_soak.py [--rate 200] [--seconds 180] [--log]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import threading
import time
from pathlib import Path

from assay.config import parse_config
from assay.simulator import SimulatorProcess
from assay.suites.load import LoadOptions, run_load

PROFILE = """\
vendors:
  - name: zero
    models:
      - {name: instant, ttft_ms: 1, itl_ms: 0.2, output_tokens: 16}
knowledge: []
"""


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=180)
    ap.add_argument("--every", type=float, default=5)
    ap.add_argument("--log", action="store_true", help="print RSS once a minute while running")
    args = ap.parse_args()
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        t0 = time.monotonic()
        while not stop.is_set():
            samples.append((time.monotonic() - t0, rss_mb()))
            if args.log and len(samples) % max(1, round(60 / args.every)) == 1:
                print(f"{samples[-1][0]:7.0f} s  RSS {samples[-1][1]:.1f} MB", flush=True)
            stop.wait(args.every)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "v.yaml").write_text(PROFILE)
        os.environ["ASSAY_HOME"] = str(root / "home")
        with SimulatorProcess(profile=root / "v.yaml") as sim:
            cfg = parse_config(
                f'targets:\n  - {{name: z, base_url: "{sim.urls["zero"]}/v1", model: instant, '
                "pricing: {input_per_mtok: 0, output_per_mtok: 0}}\n"
            )
            opts = LoadOptions(rate=args.rate, duration_s=args.seconds, input_tokens=64, output_tokens=16)
            threading.Thread(target=sample, daemon=True).start()
            result = asyncio.run(run_load(cfg, opts, root / "home" / "assay.db"))
            stop.set()
    s = result.summaries["z"]
    warm = [m for t, m in samples if t >= 20] or [m for _, m in samples]
    slope = (warm[-1] - warm[0]) / max(1e-9, (len(warm) - 1) * args.every / 60) if len(warm) > 1 else 0.0
    print(
        f"{s.requests:,} requests at {s.achieved_rate_rps:.0f}/s over {s.duration_s:.0f} s; lag p99 "
        f"{s.latency['generator_lag_ms'].p['p99'] or float('nan'):.2f} ms"
    )
    print(
        f"RSS: start {samples[0][1]:.0f} MB, after warm-up {warm[0]:.0f} MB, end {warm[-1]:.0f} MB, "
        f"max {max(m for _, m in samples):.0f} MB; slope after warm-up {slope:+.2f} MB/min"
    )


if __name__ == "__main__":
    main()
