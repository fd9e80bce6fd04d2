"""Open-loop sending: the schedule is kept, and a cap on in-flight requests shows up as response time."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest

from assay.clients import make_client, open_session
from assay.model import ChatRequest, Message
from assay.records import Annotation, Record, WorkItem
from assay.runner import Runner
from assay.runner.arrivals import Arrivals, schedule
from assay.simulator import start_simulator
from tests.conftest import one_model_spec, target_for


class Sink:
    def __init__(self) -> None:
        self.records: list[Record] = []

    def put(self, record: Record, annotations: Iterable[Annotation] = ()) -> None:
        self.records.append(record)


async def _run(rate: float, seconds: float, ttft_ms: float, cap: int | None) -> list[Record]:
    sim = await start_simulator(one_model_spec(ttft_ms=ttft_ms, itl_ms=2, output_tokens=5))
    try:
        target = target_for(sim, "v", "m")
        request = ChatRequest([Message("user", "hi")], max_tokens=5)
        times = schedule(Arrivals("constant", rate=rate), duration_s=seconds)
        arrivals = ((t, WorkItem(target.name, "load", f"{k:05d}", request)) for k, t in enumerate(times))
        sink = Sink()
        async with open_session() as session:
            runner = Runner("r", {target.name: make_client(target, session)}, sink)
            await runner.run_open_loop(arrivals, max_in_flight=cap)
        return sink.records
    finally:
        await sim.stop()


async def test_the_schedule_is_kept_at_a_rate_the_machine_can_hold(tmp_path: Path) -> None:
    records = await _run(rate=40, seconds=3, ttft_ms=100, cap=None)
    assert len(records) == 120 and all(r.ok for r in records)
    intended = np.array(sorted(r.intended_ns for r in records), dtype=float)
    assert abs(np.diff(intended).mean() / 1e6 - 25) < 0.01  # one every 25 ms, on the clock
    lag_ms = np.array([(r.sent_ns - r.intended_ns) / 1e6 for r in records])
    assert np.percentile(lag_ms, 99) < 20, "the generator keeps its schedule; ~4 requests in flight at a time"
    # Without a cap, response time (from the intended start) and service time (from the send) nearly agree.
    gap = np.array([(r.response_time_ms or 0) - (r.e2e_ms or 0) for r in records])
    assert np.percentile(gap, 50) < 5


async def test_a_cap_below_what_the_rate_needs_shows_as_response_time(tmp_path: Path) -> None:
    # 40 requests/s of 200 ms each need ~8 in flight; with 2 the queue grows and the sends run late.
    records = await _run(rate=40, seconds=2, ttft_ms=200, cap=2)
    assert len(records) == 80
    service = np.array([r.e2e_ms for r in records])
    response = np.array([r.response_time_ms for r in records])
    lag = np.array([(r.sent_ns - r.intended_ns) / 1e6 for r in records])
    assert np.median(service) < 260  # each request alone is still fast
    assert np.percentile(response, 90) > 4 * np.percentile(service, 90), "queueing is visible, not hidden"
    assert np.percentile(lag, 99) > 1000  # the last sends left seconds after their schedule


async def _past_the_limit(profile: dict[str, object], rate: float, seconds: float) -> list[Record]:
    sim = await start_simulator(one_model_spec(**profile))
    try:
        target = target_for(sim, "v", "m")
        request = ChatRequest([Message("user", "hi")], max_tokens=5)
        times = schedule(Arrivals("constant", rate=rate), duration_s=seconds)
        sink = Sink()
        async with open_session() as session:
            runner = Runner("r", {target.name: make_client(target, session)}, sink)
            arrivals = ((t, WorkItem(target.name, "load", f"{k:05d}", request)) for k, t in enumerate(times))
            await runner.run_open_loop(arrivals)
        return sink.records
    finally:
        await sim.stop()


async def test_rate_limit_behaviour_is_classified_for_rejecting_and_queueing_vendors() -> None:
    from assay.config import SLO
    from assay.stats import classify_rate_limit, summarize

    fast = {"ttft_ms": 20, "itl_ms": 2, "output_tokens": 5}
    # 30 requests/min (a bucket of 30, refilled at 0.5/s) hit with 90 requests in 3 s: fast 429s for the excess.
    rejecting = await _past_the_limit({**fast, "rate_limit": {"rpm": 30}}, rate=30, seconds=3)
    verdict = classify_rate_limit(rejecting)
    assert verdict.behavior == "rejects" and verdict.rate_limited > 20 and verdict.retry_after_p50_s is not None
    # A vendor serving 2 at a time, 100 ms each (20/s at most), hit at 30/s: no 429s, TTFT climbs. With no sign
    # of a limit (no 429, no rate-limit headers) that is saturation; a vendor that states its limits queues.
    saturated = await _past_the_limit({**fast, "ttft_ms": 100, "max_concurrency": 2}, rate=30, seconds=3)
    verdict = classify_rate_limit(saturated)
    assert verdict.behavior == "saturates" and verdict.rate_limited == 0, verdict.reason
    limited = {**fast, "ttft_ms": 100, "max_concurrency": 2, "rate_limit": {"rpm": 60000}}
    queueing = await _past_the_limit(limited, rate=30, seconds=3)
    verdict = classify_rate_limit(queueing)
    assert verdict.behavior == "queues" and verdict.rate_limited == 0, verdict.reason
    # Below the limit: neither.
    calm = await _past_the_limit({**fast, "rate_limit": {"rpm": 6000}}, rate=10, seconds=2)
    assert classify_rate_limit(calm).behavior == "none"
    s = summarize("m", rejecting, slo=SLO(ttft_ms=500), offered=90, schedule_s=3.0)
    assert s.offered_rate_rps == 30 and s.achieved_rate_rps == pytest.approx(30, rel=0.05)
    assert s.throughput_rps < 15 and s.goodput_rps <= s.throughput_rps
    assert s.errors["rate_limited"] > 20
    assert set(s.to_json()) >= {
        "requests", "offered_rate_rps", "achieved_rate_rps", "throughput_rps", "goodput_rps",
        "output_tokens_per_s", "errors", "ttft_ms", "tpot_ms", "e2e_ms", "service_time_ms",
        "response_time_ms", "generator_lag_ms", "rate_limit",
    }  # fmt: skip
