"""Percentiles, confidence intervals, uptime and the per-target summary."""

from __future__ import annotations

import numpy as np
import pytest

from assay.records import Record
from assay.stats import bootstrap_ci, latency_tier, percentiles, summarize
from assay.stats.percentiles import BOOTSTRAP_MAX_N


def rec(i: int, ok: bool = True, t: float = 0.0, **kw: object) -> Record:
    base: dict[str, object] = dict(
        run_id="r", target="t", suite="probe", item_id=str(i), attempt=0, status="ok" if ok else "error", wall_start_s=t
    )
    base.update(kw)
    return Record(**base)  # type: ignore[arg-type]


def test_percentiles_interpolate_linearly() -> None:
    assert percentiles(list(range(1, 101))) == pytest.approx({"p50": 50.5, "p90": 90.1, "p95": 95.05, "p99": 99.01})
    assert percentiles([]) == {"p50": None, "p90": None, "p95": None, "p99": None}


@pytest.mark.parametrize("n", [200, BOOTSTRAP_MAX_N + 1000])
def test_ci_covers_the_true_percentile(n: int) -> None:
    """Across 40 samples from a known distribution, the 95% CI of the median covers the truth ~95% of the time."""
    rng = np.random.default_rng(7)
    hits = 0
    for seed in range(40):
        ci = bootstrap_ci(list(rng.lognormal(0.0, 1.0, n)), seed=seed)["p50"]
        assert ci is not None
        hits += ci[0] <= 1.0 <= ci[1]  # median of lognormal(0, 1) is 1
    assert hits >= 34


def test_ci_is_withheld_when_n_is_too_small() -> None:
    ci = bootstrap_ci([1.0] * 19)
    assert ci == {"p50": None, "p90": None, "p95": None, "p99": None}
    ci = bootstrap_ci(list(range(100)))
    assert ci["p50"] is not None and ci["p99"] is None  # 1 value above p99 cannot be resampled meaningfully


def test_uptime_buckets() -> None:
    records = [rec(i, ok=i % 10 != 0, t=float(i)) for i in range(20)]  # healthy
    records += [rec(100 + i, ok=False, t=20.0 + i, error_class="server_error") for i in range(10)]  # 10 s down
    records.append(rec(999, ok=False, t=5.0, error_class="client_error"))  # our fault: ignored
    s = summarize("t", records, bucket_s=5.0)
    pct, buckets, width = s.uptime_pct, s.buckets, s.bucket_s
    assert width == 5.0 and len(buckets) == 6
    assert [b.up for b in buckets] == [True, True, True, True, False, False]
    assert pct == pytest.approx(100 * 4 / 6)


def test_summary_follows_the_glossary() -> None:
    ms = 1_000_000
    ok = rec(
        0,
        sent_ns=1_000 * ms,
        first_token_ns=1_200 * ms,
        done_ns=2_200 * ms,
        output_tokens=11,
        content_offsets_us=[200_000, 300_000, 500_000],
        token_source="server",
        input_tokens=5,
    )
    failed = rec(1, ok=False, error_class="rate_limited", retry_after_s=2.0, t=1.0)
    retried = rec(2, ok=False, error_class="server_error", final=False)
    retried_ok = rec(2, attempt=1, sent_ns=ms, first_token_ns=101 * ms, done_ns=201 * ms, output_tokens=2)
    cancelled = rec(3, ok=False, error_class="cancelled", final=False)
    s = summarize("t", [ok, failed, retried, retried_ok, cancelled])
    assert (s.requests, s.succeeded, s.failed, s.attempts, s.cancelled) == (3, 2, 1, 4, 1)
    assert s.success_rate == pytest.approx(2 / 3)
    assert s.errors["rate_limited"] == 1 and s.errors["server_error"] == 0
    assert s.attempt_errors["server_error"] == 1
    assert s.ttft.p["p50"] == pytest.approx(150.0)
    assert sorted(s.tpot.values) == pytest.approx([100.0, 100.0])  # (1000 - 200) / 10 ; (200 - 100) / 1
    assert sorted(s.itl.values) == pytest.approx([100.0, 200.0])
    assert s.speed.values[0] == pytest.approx(11 / 1.0)  # 11 tokens in the 1 s after the first
    assert s.retry_after.values == [2.0]
    assert s.token_source == "mixed"
    j = s.to_json()
    assert j["errors"] == {**dict.fromkeys(j["errors"], 0), "rate_limited": 1}  # the final failure, by class
    assert set(j["errors"]) == {
        "rate_limited",
        "overloaded",
        "server_error",
        "client_error",
        "timeout",
        "connection",
        "stream_broken",
        "bad_response",
    }


def test_latency_tiers() -> None:
    assert [latency_tier(v) for v in (None, 120, 300, 799, 1999, 5000)] == [None, "A", "B", "B", "C", "D"]
