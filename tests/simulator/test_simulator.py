"""The simulator: deterministic plans, token buckets, incidents, profile validation."""

from __future__ import annotations

import random

import aiohttp
import pytest

from assay.clock import ManualClock
from assay.errors import ConfigError
from assay.simulator import Dist, Faults, Incident, ModelProfile, Vendor, VendorServer, builtin_spec, load_spec
from assay.simulator.ratelimit import RateLimiter
from tests.conftest import one_model_spec

FLAKY = ModelProfile(
    name="m",
    ttft_ms=Dist(dist="lognormal", median=200, sigma=0.5),
    itl_ms=Dist(dist="normal", mean=20, sd=5),
    output_tokens=Dist(dist="uniform", low=10, high=60),
    faults=Faults(rate_limited=0.1, server_error=0.1, stream_broken=0.1),
)


def plans(seed: int, n: int = 50) -> list[tuple[object, ...]]:
    server = VendorServer(Vendor(name="v", models=[FLAKY]), seed=seed)
    return [
        (p.fault, p.ttft_ms, tuple(p.itl_ms), tuple(p.tokens), p.break_at)
        for p in (server.plan(FLAKY, i, 100, 10, 0.0) for i in range(n))
    ]


def test_same_seed_same_behaviour_request_by_request() -> None:
    assert plans(seed=1) == plans(seed=1)
    assert plans(seed=1) != plans(seed=2)


def test_fault_rates_follow_the_profile() -> None:
    faults = [p[0] for p in plans(seed=4, n=4000)]
    for kind in ("rate_limited", "server_error", "stream_broken"):
        assert 0.085 < faults.count(kind) / len(faults) < 0.115
    assert faults.count(None) / len(faults) == pytest.approx(0.7, abs=0.03)


def test_distributions_are_clipped_and_parametrised() -> None:
    rng = random.Random(0)
    d = Dist(dist="normal", mean=10, sd=50, min=2, max=30)
    xs = [d.sample(rng) for _ in range(2000)]
    assert min(xs) == 2 and max(xs) == 30
    assert Dist.model_validate(150).sample(rng) == 150  # a plain number is fixed
    with pytest.raises(ValueError, match="lognormal distribution needs median"):
        Dist(dist="lognormal")


def test_incident_window_changes_faults_and_latency() -> None:
    profile = FLAKY.model_copy(
        update={"incidents": [Incident(start_s=10, end_s=20, faults=Faults(server_error=1.0), latency_factor=3)]}
    )
    server = VendorServer(Vendor(name="v", models=[profile]), seed=0)
    before = server.plan(profile, 0, 100, 10, elapsed_s=5)
    during = server.plan(profile, 0, 100, 10, elapsed_s=15)
    assert during.fault == "server_error"
    assert during.ttft_ms == pytest.approx(before.ttft_ms * 3)


def test_token_bucket_refills_continuously() -> None:
    clock = ManualClock()
    limiter = RateLimiter(rpm=60, tpm=600, clock=clock)
    assert all(limiter.admit(10).allowed for _ in range(60))
    refused = limiter.admit(10)
    assert not refused.allowed and refused.retry_after_s == pytest.approx(1.0)
    assert refused.remaining_requests == 0
    clock.advance(1.0)
    assert limiter.admit(10).allowed
    # tokens: 600/min; a 300-token request needs half the bucket
    tokens_only = RateLimiter(rpm=None, tpm=600, clock=clock)
    assert tokens_only.admit(300).allowed and tokens_only.admit(300).allowed
    d = tokens_only.admit(300)
    assert not d.allowed and d.retry_after_s == pytest.approx(30.0)


def test_profiles_refuse_impossible_faults(tmp_path: object) -> None:
    with pytest.raises(ValueError, match="add up to more than 1"):
        Faults(server_error=0.7, hang=0.5)


def test_profile_file_errors_name_the_field(tmp_path: pytest.TempPathFactory) -> None:
    from pathlib import Path

    p = Path(str(tmp_path)) / "vendors.yaml"
    p.write_text("vendors:\n  - name: v\n    models:\n      - name: m\n        ttft: 100\n")
    with pytest.raises(ConfigError) as info:
        load_spec(p)
    assert info.value.problems == [
        f"{p}:5: vendors[0].models[0].ttft: unknown key; "
        "check the spelling (allowed keys are listed in docs/SIMULATOR.md)"
    ]


def test_builtin_vendors_have_distinct_trade_offs() -> None:
    spec = builtin_spec()
    assert [v.name for v in spec.vendors] == ["swift", "meridian", "atlas"]
    swift, meridian, atlas = (v.models[0] for v in spec.vendors)
    fault_total = [sum(getattr(m.faults, k) for k in Faults.model_fields) for m in (swift, meridian, atlas)]
    assert fault_total[0] > fault_total[1] > fault_total[2]  # flaky -> reliable
    assert (swift.ttft_ms.median or 0) < (meridian.ttft_ms.median or 0) < (atlas.ttft_ms.median or 0)


async def test_health_models_and_request_log_endpoints() -> None:
    from assay.simulator import start_simulator

    sim = await start_simulator(one_model_spec(ttft_ms=1, itl_ms=1, output_tokens=3))
    url = sim.urls["v"]
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{url}/health") as r:
                assert (await r.json())["status"] == "ok"
            async with s.get(f"{url}/v1/models") as r:
                assert [m["id"] for m in (await r.json())["data"]] == ["m"]
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
            async with s.post(f"{url}/v1/chat/completions", json=body, headers={"x-request-id": "bench-7"}) as r:
                await r.read()
            async with s.post(f"{url}/v1/chat/completions", data=b"{not json") as r:
                assert r.status == 400
            async with s.get(f"{url}/_assay/requests") as r:
                rows = (await r.json())["requests"]
        ok, bad = rows
        assert ok["status"] == 200 and ok["output_tokens"] == 3
        assert ok["client_request_id"] == "bench-7" and "client_request_id" not in bad  # a load tool's own id
        assert ok["received_ns"] <= ok["headers_ns"] <= ok["first_token_ns"] <= ok["done_ns"]
        assert bad["status"] == 400
    finally:
        await sim.stop()


def test_shipped_chaos_profile_loads() -> None:
    from pathlib import Path

    spec = load_spec(Path(__file__).parents[2] / "examples" / "chaos-vendor.yaml")
    (model,) = spec.vendors[0].models
    assert model.incidents and model.rate_limit.rpm == 120


async def test_a_knowledge_dataset_that_cannot_load_is_announced(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without its local copy the simulator cannot know GSM8K; evals against it would score 0 without a word."""
    from assay.simulator import SimulatorSpec, start_simulator

    monkeypatch.delenv("ASSAY_DATA_DIR", raising=False)
    spec = one_model_spec().model_copy(update={"knowledge": ["demo-qa", "gsm8k"]})
    assert isinstance(spec, SimulatorSpec)
    sim = await start_simulator(spec)
    await sim.stop()
    err = capsys.readouterr().err
    assert "warning: not loading answers for 'gsm8k'" in err and "ASSAY_DATA_DIR" in err
    assert "demo-qa" not in err
    quiet = await start_simulator(one_model_spec())  # the default knowledge list: no noise, evals warn themselves
    await quiet.stop()
    assert "not loading answers" not in capsys.readouterr().err
