"""Open-loop sending: the schedule is kept, and a cap on in-flight requests shows up as response time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from assay.clients import make_client, open_session
from assay.model import ChatRequest, Message, Record
from assay.runner import Runner, WorkItem
from assay.runner.arrivals import Arrivals, schedule
from assay.simulator import start_simulator
from tests.conftest import one_model_spec, target_for


class Sink:
    def __init__(self) -> None:
        self.records: list[Record] = []

    def put(self, record: Record) -> None:
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
