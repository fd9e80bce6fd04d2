"""Interrupted runs: every attempt recorded, resume without duplicates, a killed run stays readable."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from assay.config import parse_config
from assay.simulator import Faults, SimulatorProcess, start_simulator
from assay.store import Store
from assay.suites.probe import ProbeOptions, run_probe
from tests.conftest import ASSAY, PRICE, cli_env, interrupt_after, one_model_spec, records_so_far


def config_for(url: str, names: tuple[str, ...] = ("a", "b")) -> str:
    rows = "".join(f"  - {{name: {n}, api: openai, base_url: '{url}/v1', model: m, pricing: {PRICE}}}\n" for n in names)
    return "targets:\n" + rows


async def test_cancelled_run_records_cancellations_and_resumes_without_duplicates(tmp_path: Path) -> None:
    sim = await start_simulator(one_model_spec(ttft_ms=30, itl_ms=5, output_tokens=10))
    db = tmp_path / "assay.db"
    cfg = parse_config(config_for(sim.urls["v"]))
    opts = ProbeOptions.from_config(cfg, requests=30, concurrency=3)
    try:
        run_id = await interrupt_after(12, lambda **hooks: run_probe(cfg, opts, db, **hooks), timeout_s=30)
        with Store(db) as store:
            first = store.records(run_id)
            assert store.run(run_id).status == "interrupted"
        cancelled = [r for r in first if r.error_class == "cancelled"]
        assert len(cancelled) == 6, "each of the 2x3 in-flight attempts wrote its record"
        assert all(not r.final and r.sent_ns for r in cancelled)

        result = await run_probe(None, opts, db, resume=run_id)
        with Store(db) as store:
            records = store.records(run_id)
            assert store.run(run_id).status == "complete"
        finals = Counter((r.target, r.item_id) for r in records if r.final)
        assert len(finals) == 60 and set(finals.values()) == {1}
        keys = Counter((r.target, r.item_id, r.attempt) for r in records)
        assert set(keys.values()) == {1}
        resumed = [r for r in records if r.item_id == cancelled[0].item_id and r.target == cancelled[0].target]
        assert [r.attempt for r in resumed] == [0, 1]  # the retry after the interruption is attempt 1
        assert result.summaries["a"].requests == 30 and result.summaries["a"].cancelled == 3
    finally:
        await sim.stop()


async def test_retries_are_recorded_as_separate_attempts(tmp_path: Path) -> None:
    sim = await start_simulator(one_model_spec(faults=Faults(server_error=0.5), ttft_ms=1, itl_ms=1, output_tokens=3))
    db = tmp_path / "assay.db"
    cfg = parse_config(config_for(sim.urls["v"], ("a",)))
    try:
        result = await run_probe(cfg, ProbeOptions.from_config(cfg, requests=40, retries=3), db)
        s = result.summaries["a"]
        assert s.attempts > s.requests == 40
        assert s.attempt_errors["server_error"] == s.attempts - s.succeeded
        assert s.errors["server_error"] == s.failed  # only items that failed all 4 attempts
        with Store(db) as store:
            by_item = Counter(r.item_id for r in store.records(result.run_id))
        assert max(by_item.values()) <= 4
    finally:
        await sim.stop()


def test_killed_cli_run_leaves_a_readable_store_and_resumes(tmp_path: Path) -> None:
    profile = tmp_path / "slow.yaml"
    profile.write_text(
        "vendors:\n  - name: v\n    models:\n      - {name: m, ttft_ms: 40, itl_ms: 5, output_tokens: 10}\n"
    )
    with SimulatorProcess(profile=profile) as sim:
        (tmp_path / "assay.yaml").write_text(config_for(sim.urls["v"]))
        env = cli_env(tmp_path)
        cmd = [ASSAY, "probe", "-c", "assay.yaml", "--requests", "100", "--concurrency", "2", "--json"]
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        db = tmp_path / ".assay" / "assay.db"
        deadline = time.monotonic() + 30
        count = 0
        while time.monotonic() < deadline and count < 20:
            time.sleep(0.2)
            count = records_so_far(db)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        with Store(db) as store:
            info = store.run("latest")
            partial = store.records(info.run_id)
        assert info.status == "running"  # killed: no chance to say otherwise
        assert 20 <= len(partial) < 200
        resumed = subprocess.run(
            [ASSAY, "probe", "--resume", info.run_id, "--json"], cwd=tmp_path, env=env, capture_output=True, timeout=120
        )
        assert resumed.returncode == 0, resumed.stderr.decode()
        out = orjson.loads(resumed.stdout)
        assert out["run_id"] == info.run_id
        assert out["targets"]["a"]["requests"] == 100 and out["targets"]["b"]["requests"] == 100
        with Store(db) as store:
            records = store.records(info.run_id)
        assert len({(r.target, r.item_id) for r in records if r.final}) == 200
        assert len({(r.target, r.item_id, r.attempt) for r in records}) == len(records)


async def test_refused_input_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from assay.errors import ConfigError

    db = tmp_path / "assay.db"
    monkeypatch.delenv("ASSAY_MISSING_KEY", raising=False)
    cfg = parse_config(
        "targets:\n  - {name: a, base_url: 'http://127.0.0.1:9/v1', model: m, api_key_env: ASSAY_MISSING_KEY}\n"
    )
    with pytest.raises(ConfigError, match="ASSAY_MISSING_KEY is not set"):
        await run_probe(cfg, ProbeOptions.from_config(cfg), db)
    with pytest.raises(ConfigError, match="no target named 'zz'"):
        await run_probe(cfg, ProbeOptions.from_config(cfg, targets=("zz",)), db)
    assert not db.exists()


def test_resume_refuses_new_options(tmp_path: Path) -> None:
    run = subprocess.run(
        [ASSAY, "probe", "--resume", "latest", "--requests", "5"],
        cwd=tmp_path,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "drop --requests" in run.stderr


def test_credentials_in_headers_are_not_stored() -> None:
    from assay.runner.runs import stored_config

    cfg = parse_config(
        "targets:\n  - {name: a, base_url: 'http://x/v1', model: m, "
        "headers: {X-Api-Key: s3cret, Authorization: Bearer s3cret, X-Team: blue}}\n"
    )
    headers = stored_config(cfg)["targets"][0]["headers"]
    assert headers == {"X-Api-Key": "<redacted>", "Authorization": "<redacted>", "X-Team": "blue"}
    assert "s3cret" not in orjson.dumps(stored_config(cfg)).decode()


def test_sigterm_cancels_cleanly_and_marks_the_run_interrupted(tmp_path: Path) -> None:
    profile = tmp_path / "slow.yaml"
    profile.write_text(
        "vendors:\n  - name: v\n    models:\n      - {name: m, ttft_ms: 300, itl_ms: 5, output_tokens: 5}\n"
    )
    with SimulatorProcess(profile=profile) as sim:
        (tmp_path / "assay.yaml").write_text(config_for(sim.urls["v"], ("a",)))
        cmd = [ASSAY, "probe", "-c", "assay.yaml", "--requests", "50", "--concurrency", "4"]
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, env=cli_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        db = tmp_path / ".assay" / "assay.db"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if records_so_far(db) >= 4:
                break
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 143
        assert "resume with: assay probe --resume" in stderr
        with Store(db) as store:
            info = store.run("latest")
            records = store.records(info.run_id)
        assert info.status == "interrupted"
        assert sum(r.error_class == "cancelled" for r in records) == 4  # the four in flight


async def test_probing_a_subset_needs_only_its_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASSAY_MISSING_KEY", raising=False)
    sim = await start_simulator(one_model_spec(ttft_ms=1, itl_ms=1, output_tokens=2))
    url = sim.urls["v"]
    cfg = parse_config(
        f"targets:\n  - {{name: keyed, base_url: '{url}/v1', model: m, api_key_env: ASSAY_MISSING_KEY,"
        f" pricing: {PRICE}}}\n"
        f"  - {{name: open, base_url: '{url}/v1', model: m, pricing: {PRICE}}}\n"
    )
    try:
        result = await run_probe(cfg, ProbeOptions.from_config(cfg, requests=3, targets=("open",)), tmp_path / "a.db")
    finally:
        await sim.stop()
    assert list(result.summaries) == ["open"] and result.summaries["open"].succeeded == 3


async def test_duration_spreads_requests_evenly(tmp_path: Path) -> None:
    sim = await start_simulator(one_model_spec(ttft_ms=5, itl_ms=1, output_tokens=3))
    cfg = parse_config(config_for(sim.urls["v"], ("a", "b")))
    db = tmp_path / "a.db"
    try:
        opts = ProbeOptions.from_config(cfg, requests=10, concurrency=4, duration_s=2.0)
        result = await run_probe(cfg, opts, db)
    finally:
        await sim.stop()
    with Store(db) as store:
        records = sorted(store.records(result.run_id, "a"), key=lambda r: r.intended_ns)
    gaps = [(b.intended_ns - a.intended_ns) / 1e9 for a, b in itertools.pairwise(records)]
    assert gaps == pytest.approx([0.2] * 9, abs=1e-6)  # the schedule itself
    lateness_ms = [(r.sent_ns - r.intended_ns) / 1e6 for r in records]
    assert all(0 <= late < 50 for late in lateness_ms), lateness_ms  # and it was kept
    assert records[-1].wall_start_s - records[0].wall_start_s == pytest.approx(1.8, abs=0.05)
    assert len(result.summaries["a"].buckets) >= 2
