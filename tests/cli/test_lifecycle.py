"""One run lifecycle for every command that sends requests: SIGINT and resume, timeouts, unpriced targets,
and one latency shape in every command's JSON."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from assay.simulator import SimulatorProcess
from assay.store import Store
from tests.conftest import ASSAY, PRICE, cli_env, default_signals, records_so_far, wait_until_sending

PROFILE = """
vendors:
  - name: v
    models:
      - {name: m, ttft_ms: 80, itl_ms: 8, output_tokens: 12}
      - {name: hangs, ttft_ms: 20, itl_ms: 2, output_tokens: 8, faults: {hang: 0.3}}
      - {name: flaky, ttft_ms: 5, itl_ms: 1, output_tokens: 6, faults: {server_error: 0.4}}
knowledge: [demo-qa, safety]
"""

# Each kind, bounded so it takes a few seconds at concurrency 2 (long enough to interrupt).
COMMANDS: dict[str, list[str]] = {
    "probe": ["probe", "--requests", "60", "--concurrency", "2"],
    "load": ["load", "--concurrency", "2", "--requests", "60"],
    "eval": ["eval", "--concurrency", "2", "--no-cache"],
    "redteam": ["redteam", "--concurrency", "2"],
}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    path = tmp_path_factory.mktemp("sim") / "v.yaml"
    path.write_text(PROFILE)
    with SimulatorProcess(profile=path, seed=4) as s:
        yield s


def _config(tmp_path: Path, url: str, model: str = "m", priced: bool = True) -> Path:
    price = f", pricing: {PRICE}" if priced else ""
    path = tmp_path / "assay.yaml"
    path.write_text(
        f"targets:\n  - {{name: a, base_url: '{url}/v1', model: {model}{price}}}\n"
        "suites:\n  - {name: qa, dataset: demo-qa, scorer: contains}\n"
        "  - {name: harmful, kind: safety, category: harmful, dataset: demo-safety}\n"
    )
    return path


def _assay(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ASSAY, *args], cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(COMMANDS))
def test_sigint_then_resume_completes_with_no_duplicate_attempt(
    tmp_path: Path, sim: SimulatorProcess, kind: str
) -> None:
    cfg = _config(tmp_path, sim.urls["v"])
    proc = subprocess.Popen(
        [ASSAY, *COMMANDS[kind], "-c", str(cfg)], preexec_fn=default_signals,
        cwd=tmp_path, env=cli_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    db = tmp_path / ".assay" / "assay.db"
    wait_until_sending(proc, db, 8)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, f"{stderr}\n{stdout[-3000:]}\nrecords seen: {records_so_far(db)}"
    assert f"resume with: assay {kind} --resume" in stderr
    with Store(db) as store:
        first = store.run("latest")
        before = store.records(first.run_id)
    assert first.status == "interrupted" and first.kind == kind
    assert any(r.error_class == "cancelled" for r in before), "in-flight attempts wrote their Records"

    resumed = _assay(tmp_path, kind, "--resume", "latest", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert orjson.loads(resumed.stdout)["run_id"] == first.run_id
    assert "already recorded" not in resumed.stderr, "the writer refused no duplicate: nothing was sent twice"
    with Store(db) as store:
        info = store.run(first.run_id)
        records = store.records(first.run_id)
    assert info.status == "complete"
    keys = Counter(r.key for r in records)  # (target, suite, item, judged_target, attempt)
    assert set(keys.values()) == {1}, "no attempt was written twice"
    finals = Counter(r.item_key for r in records if r.final)
    assert set(finals.values()) == {1}
    if kind in ("probe", "load"):
        assert len(finals) == 60, "every planned item has exactly one final attempt"
    again = _assay(tmp_path, kind, "--resume", first.run_id, "--target", "a")
    assert again.returncode == 2 and "--resume continues" in again.stderr and "--target" in again.stderr
    done = _assay(tmp_path, kind, "--resume", first.run_id)
    assert done.returncode == 2 and "is complete: nothing to resume" in done.stderr
    assert sessions_of(db, first.run_id) == {0, 1}, "each process's Records say which it was"


def sessions_of(db: Path, run_id: str) -> set[int]:
    with Store(db) as store:
        return {r.session for r in store.records(run_id)}


def test_a_run_still_running_elsewhere_is_not_resumed_twice(tmp_path: Path, sim: SimulatorProcess) -> None:
    cfg = _config(tmp_path, sim.urls["v"])
    proc = subprocess.Popen(
        [ASSAY, "probe", "-c", str(cfg), "--requests", "200", "--concurrency", "1"],
        cwd=tmp_path, env=cli_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    db = tmp_path / ".assay" / "assay.db"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.1)
            if records_so_far(db) >= 2:
                break
        second = _assay(tmp_path, "probe", "--resume", "latest")
        assert second.returncode == 2 and "is still running (process" in second.stderr, second.stderr
    finally:
        proc.kill()
        proc.wait()
    # killed without a chance to say so: the run stays `running`, but its owner is gone, so it resumes
    third = _assay(tmp_path, "probe", "--resume", "latest", "--json")
    assert third.returncode == 0, third.stderr
    assert orjson.loads(third.stdout)["targets"]["a"]["requests"] == 200


def test_a_secret_header_is_resent_from_the_same_project_file(tmp_path: Path, sim: SimulatorProcess) -> None:
    path = tmp_path / "assay.yaml"
    path.write_text(
        f"targets:\n  - {{name: a, base_url: '{sim.urls['v']}/v1', model: m, pricing: {PRICE}, "
        "headers: {x-org-token: s3cret}}\n"
    )
    run = subprocess.Popen(
        [ASSAY, "probe", "-c", str(path), "--requests", "60", "--concurrency", "1"], preexec_fn=default_signals,
        cwd=tmp_path, env=cli_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    db = tmp_path / ".assay" / "assay.db"
    wait_until_sending(run, db, 3)  # interrupt it once it has sent some (a busy machine may take seconds)
    run.send_signal(signal.SIGINT)
    run.wait(timeout=30)
    blind = _assay(tmp_path, "probe", "--resume", "latest", "-c", str(tmp_path / "elsewhere.yaml"))
    assert blind.returncode == 2 and "header 'x-org-token', whose value was not stored" in blind.stderr
    ok = _assay(tmp_path, "probe", "--resume", "latest", "-c", str(path), "--json")
    assert ok.returncode == 0, ok.stderr
    with Store(tmp_path / ".assay" / "assay.db") as store:
        assert "s3cret" not in orjson.dumps(store.run("latest").config).decode()


def test_rates_of_a_resumed_run_leave_out_the_pause() -> None:
    """Two sessions an hour apart, each perfect at 1/s: the rates are those of the sending, not of the hour."""
    from assay.records import Record
    from assay.stats import summarize

    def rec(i: int, session: int) -> Record:
        t = i + session * 3600
        ns = int(t * 1e9)
        return Record("r", "a", "load", f"{i:02d}", 0, "ok", float(t), intended_ns=ns, sent_ns=ns,
                      first_token_ns=ns + 50_000_000, done_ns=ns + 100_000_000, output_tokens=5,
                      session=session)  # fmt: skip

    records = [rec(i, 0) for i in range(10)] + [rec(i, 1) for i in range(10, 20)]
    s = summarize("a", records, offered=20, schedule_s=20.0)
    assert s.duration_s == pytest.approx(2 * 9.1)
    assert s.achieved_rate_rps == pytest.approx(1.0) and s.offered_rate_rps == pytest.approx(1.0)
    assert s.goodput_rps == pytest.approx(1.0)


def test_load_timeout_ends_the_run_near_its_duration(tmp_path: Path, sim: SimulatorProcess) -> None:
    """A hung request holds a run for its timeout, not for the 60 s default."""
    cfg = _config(tmp_path, sim.urls["v"], model="hangs")
    started = time.monotonic()
    run = _assay(tmp_path, "load", "-c", str(cfg), "--rate", "5", "--duration", "3", "--timeout", "1.5", "--json")
    took = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    t = orjson.loads(run.stdout)["targets"]["a"]
    assert t["errors"]["timeout"] > 0, "some requests hung and timed out"
    assert took < 3 + 1.5 + 6, f"the run took {took:.1f} s"  # duration + timeout + process start and summary (not 60 s)


def test_timeouts_come_from_the_config_per_target(tmp_path: Path, sim: SimulatorProcess) -> None:
    path = tmp_path / "assay.yaml"
    url = sim.urls["v"]
    path.write_text(
        "timeouts: {timeout_s: 30}\n"
        f"targets:\n  - {{name: quick, base_url: '{url}/v1', model: hangs, pricing: {PRICE}, timeout_s: 0.8}}\n"
        f"  - {{name: patient, base_url: '{url}/v1', model: m, pricing: {PRICE}}}\n"
    )
    started = time.monotonic()
    run = _assay(tmp_path, "probe", "-c", str(path), "--requests", "30", "--concurrency", "10", "--json")
    assert run.returncode == 0, run.stderr
    assert time.monotonic() - started < 15, "the hangs timed out at the target's 0.8 s, not the project's 30 s"
    t = orjson.loads(run.stdout)["targets"]
    assert t["quick"]["errors"]["timeout"] > 0 and t["patient"]["errors"]["timeout"] == 0
    with Store(tmp_path / ".assay" / "assay.db") as store:
        phases = {r.error_phase for r in store.records(store.run("latest").run_id) if r.error_class == "timeout"}
    assert phases and phases <= {"first_token", "total"}  # 0.8 s: the first token never came


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(COMMANDS))
def test_an_unpriced_target_is_measured_with_its_cost_unknown(tmp_path: Path, sim: SimulatorProcess, kind: str) -> None:
    cfg = _config(tmp_path, sim.urls["v"], priced=False)  # model `m` is in no price catalog
    args = {"probe": ["--requests", "6"], "load": ["--requests", "6", "--concurrency", "2"], "eval": ["--limit", "5"],
            "redteam": ["--sample", "4"]}[kind]  # fmt: skip
    run = _assay(tmp_path, kind, "-c", str(cfg), *args, "--json")
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if "has no price" in line]
    assert len(warnings) == 1 and "'a'" in warnings[0] and "pricing:" in warnings[0], run.stderr
    doc = orjson.loads(run.stdout)
    summary = doc["summaries" if kind in ("eval", "redteam") else "targets"]["a"]
    assert summary["cost_usd"] is None and summary["cost_per_success_usd"] is None
    if kind == "eval":
        assert doc["targets"]["a"]["qa"]["cost_usd"] is None
    refused = _assay(tmp_path, "cost", "-c", str(cfg))
    assert refused.returncode == 2 and "no price known for model 'm'" in refused.stderr


LATENCY_SHAPE = {
    "type": "object",
    "required": ["p50", "p90", "p95", "p99", "mean", "n", "ci95"],
    "additionalProperties": False,
    "properties": {
        **{k: {"type": ["number", "null"]} for k in ("p50", "p90", "p95", "p99", "mean")},
        "n": {"type": "integer", "minimum": 0},
        "ci95": {
            "type": "object",
            "required": ["p50", "p90", "p95", "p99"],
            "additionalProperties": False,
            "patternProperties": {"^p": {"oneOf": [{"type": "null"}, {"type": "array", "items": {"type": "number"},
                                                                       "minItems": 2, "maxItems": 2}]}},
        },
    },
}  # fmt: skip


def _latencies(doc: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every latency figure in a JSON document: a key ending in _ms (or latency_ms) whose value is an object."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            here = f"{path}.{k}"
            if k.endswith("_ms") and isinstance(v, dict):
                yield here, v
            else:
                yield from _latencies(v, here)
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _latencies(v, f"{path}[{i}]")


def test_every_command_json_has_one_latency_shape(tmp_path: Path, sim: SimulatorProcess) -> None:
    cfg = _config(tmp_path, sim.urls["v"])
    (tmp_path / "assay.yaml").write_text(
        cfg.read_text()
        + "workload: {daily_active_users: 100, input_tokens_per_turn: 100, output_tokens_per_turn: 50}\n"
    )
    docs = {}
    for name, args in {"probe": ["--requests", "25"], "load": ["--rate", "20", "--duration", "1.5"],
                       "eval": ["--limit", "25"], "redteam": ["--sample", "4"]}.items():  # fmt: skip
        run = _assay(tmp_path, name, "-c", str(cfg), *args, "--json")
        assert run.returncode == 0, run.stderr
        docs[name] = orjson.loads(run.stdout)
    run = _assay(tmp_path, "cost", "-c", str(cfg), "--run", docs["probe"]["run_id"], "--json")
    assert run.returncode == 0, run.stderr
    docs["cost"] = orjson.loads(run.stdout)
    validator = jsonschema.Draft202012Validator(LATENCY_SHAPE)
    for name, doc in docs.items():
        found = list(_latencies(doc))
        assert found, f"{name} reports latency"
        for where, value in found:
            errors = [e.message for e in validator.iter_errors(value)]
            assert not errors, (name, where, errors)
    # the headline figures really are measured, with CIs where n allows
    ttft = docs["probe"]["targets"]["a"]["ttft_ms"]
    assert ttft["n"] == 25 and ttft["p50"] <= ttft["p95"] <= ttft["p99"] and ttft["ci95"]["p50"] is not None
    assert docs["cost"]["targets"]["a"]["measured"]["e2e_ms"]["n"] == 25


def test_an_evals_latency_is_of_its_successful_attempts_like_every_summary(
    tmp_path: Path, sim: SimulatorProcess
) -> None:
    cfg = _config(tmp_path, sim.urls["v"], model="flaky")
    run = _assay(tmp_path, "eval", "-c", str(cfg), "--retries", "0", "--no-cache", "--limit", "30", "--json")
    assert run.returncode == 0, run.stderr
    doc = orjson.loads(run.stdout)
    summary = doc["summaries"]["a"]
    assert summary["failed"] > 0, "the flaky model failed some requests"
    assert doc["targets"]["a"]["qa"]["latency_ms"]["n"] == summary["e2e_ms"]["n"] == summary["succeeded"]
