"""`assay load` as a user runs it: the JSON contract, open and closed loop, refusals."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import orjson

from assay.simulator import SimulatorProcess
from tests.conftest import ASSAY, PRICE, cli_env

PROFILE = """
vendors:
  - name: v
    models:
      - {name: m, ttft_ms: 30, itl_ms: 2, output_tokens: 16}
knowledge: []
"""


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "assay.yaml"
    path.write_text(f"targets:\n  - {{name: a, base_url: '{url}/v1', model: m, pricing: {PRICE}}}\n")
    return path


def test_load_json_contract_open_and_closed_loop(tmp_path: Path) -> None:
    (tmp_path / "v.yaml").write_text(PROFILE)
    with SimulatorProcess(profile=tmp_path / "v.yaml") as sim:
        cfg = _config(tmp_path, sim.urls["v"])
        run = subprocess.run(
            [ASSAY, "load", "-c", str(cfg), "--rate", "25", "--arrival", "poisson", "--duration", "2",
             "--slo", "ttft_ms=500", "--json"],
            cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, timeout=60,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr.decode()
        t = orjson.loads(run.stdout)["targets"]["a"]
        assert set(t) >= {
            "requests", "offered_rate_rps", "achieved_rate_rps", "throughput_rps", "goodput_rps",
            "output_tokens_per_s", "errors", "ttft_ms", "tpot_ms", "e2e_ms", "service_time_ms",
            "response_time_ms", "generator_lag_ms", "rate_limit",
        }  # fmt: skip
        assert 30 <= t["requests"] <= 75 and t["goodput_rps"] <= t["throughput_rps"]
        assert set(t["rate_limit"]) >= {"behavior", "rate_limited", "retry_after_s"}
        shape = {"p50", "p90", "p95", "p99", "mean", "n", "ci95"}  # the one latency shape
        assert set(t["generator_lag_ms"]) == shape and set(t["ttft_ms"]) == shape
        run_id = orjson.loads(run.stdout)["run_id"]
        from assay.store import Store
        from assay.suites.load import load_summaries

        with Store(tmp_path / ".assay" / "assay.db") as store:  # what the report reads is what the command printed
            again = orjson.loads(orjson.dumps(load_summaries(store, run_id, with_timelines=True).to_json()))
        assert again == orjson.loads(run.stdout)
        rep = subprocess.run(
            [ASSAY, "report", run_id, "-o", "rep"], cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, timeout=60
        )
        assert rep.returncode == 0, rep.stderr.decode()
        html = (tmp_path / "rep" / "index.html").read_text()
        assert "Load &amp; latency scorecard" in html and "Under load" in html and "poisson arrivals at 25/s" in html
        assert html.count("<svg") == 4  # CDFs, failures, uptime, the load timeline
        closed = subprocess.run(
            [ASSAY, "load", "-c", str(cfg), "--concurrency", "4", "--requests", "40", "--json"],
            cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, timeout=60,
        )  # fmt: skip
        assert closed.returncode == 0, closed.stderr.decode()
        assert orjson.loads(closed.stdout)["targets"]["a"]["requests"] == 40
        from_dataset = subprocess.run(
            [ASSAY, "load", "-c", str(cfg), "--concurrency", "4", "--requests", "20", "--prompts", "demo-qa", "--json"],
            cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, timeout=60,
        )  # fmt: skip
        assert from_dataset.returncode == 0, from_dataset.stderr.decode()
    import sqlite3

    db = sqlite3.connect(tmp_path / ".assay" / "assay.db")
    runs = [r[0] for r in db.execute("SELECT run_id FROM runs ORDER BY created_s")]
    synthetic, dataset = (
        db.execute("SELECT AVG(input_tokens) FROM records WHERE run_id = ?", (run,)).fetchone()[0] for run in runs[1:]
    )
    assert synthetic > 200 and dataset < 60  # 256-token synthetic prompts; the demo set's short questions


def test_unbounded_or_contradictory_load_is_refused(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "http://127.0.0.1:9")
    for args, message in (
        (["--rate", "5"], b"must stop by itself"),
        (["--rate", "5", "--concurrency", "2", "--duration", "1"], b"exclude each other"),
        (["--rate", "5", "--duration", "1", "--slo", "ttft=5"], b"unknown SLO key"),
        (["--rate", "5", "--duration", "1", "--slo", "ttft_ms"], b"key=number pairs"),
    ):
        cmd = [ASSAY, "load", "-c", str(cfg), *args]
        run = subprocess.run(cmd, cwd=tmp_path, env=cli_env(tmp_path), capture_output=True)
        assert run.returncode == 2 and message in run.stderr, (args, run.stderr)
    assert not (tmp_path / ".assay" / "assay.db").exists(), "a refused run writes nothing"


def test_sweep_finds_the_knee_of_a_queueing_server(tmp_path: Path) -> None:
    # Two requests at a time, ~65 ms each: ~31 requests/s at most; past it the queue pushes TTFT over 300 ms
    # (a 2 s step absorbs a little more before the queue gets that long).
    model = "{name: m, ttft_ms: 50, itl_ms: 1, output_tokens: 16, max_concurrency: 2}"
    (tmp_path / "v.yaml").write_text(f"vendors:\n  - name: v\n    models:\n      - {model}\nknowledge: []\n")
    with SimulatorProcess(profile=tmp_path / "v.yaml") as sim:
        cfg = _config(tmp_path, sim.urls["v"])
        run = subprocess.run(
            [ASSAY, "load", "-c", str(cfg), "--rate", "6", "--duration", "2", "--slo", "ttft_ms=300",
             "--output-tokens", "16", "--sweep", "--json"],
            cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, timeout=180,
        )  # fmt: skip
    assert run.returncode == 0, run.stderr.decode()
    out = orjson.loads(run.stdout)["targets"]["a"]
    knee = out["knee_rps"]
    assert knee is not None and 15 <= knee <= 45, out
    curve = out["curve"]
    assert any(not p["sustains"] for p in curve) and all(p["sustains"] for p in curve if p["rate_rps"] <= knee)
    # The scorecard of any step shows the whole sweep: its curve and the same knee.
    rep = subprocess.run([ASSAY, "report", curve[0]["run_id"], "-o", str(tmp_path / "rep")], cwd=tmp_path,
                         env=cli_env(tmp_path), capture_output=True, timeout=120)  # fmt: skip
    assert rep.returncode == 0, rep.stderr.decode()
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "<h2>Sweep</h2>" in html and f"<b>a</b> {knee:.1f}/s" in html and f"{len(curve)} steps" in html
    md = (tmp_path / "rep" / "scorecard.md").read_text()
    assert md.startswith("# Load & latency scorecard")
    assert f"a {knee:.1f}/s" in md and len(re.findall(r"^\| a \| .*(✓|✗) \|$", md, re.M)) == len(curve)


def test_client_retries_report_their_cost_and_respect_a_budget(tmp_path: Path) -> None:
    # One request in five fails with a 503; Retry-After 0 so the test stays fast.
    model = "{name: m, ttft_ms: 10, itl_ms: 1, output_tokens: 8, faults: {overloaded: 0.2}, retry_after_s: 0}"
    (tmp_path / "v.yaml").write_text(f"vendors:\n  - name: v\n    models:\n      - {model}\nknowledge: []\n")
    with SimulatorProcess(profile=tmp_path / "v.yaml") as sim:
        cfg = _config(tmp_path, sim.urls["v"])

        def run(*extra: str) -> dict:
            done = subprocess.run(
                [ASSAY, "load", "-c", str(cfg), "--rate", "50", "--requests", "150", "--json", *extra],
                cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, timeout=60,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr.decode()
            return orjson.loads(done.stdout)["targets"]["a"]

        raw, retried, budgeted = run(), run("--retries", "3"), run("--retries", "3", "--retry-budget", "0.05")
    assert raw["retries"] is None and sum(raw["errors"].values()) > 15  # ~20% fail without retries
    r = retried["retries"]
    assert r["items_rescued"] >= 0.9 * r["items_retried"] and sum(retried["errors"].values()) < 5
    assert r["extra_attempts"] >= r["items_retried"]
    b = budgeted["retries"]
    assert b["extra_attempts"] <= 0.05 * 150 + 1, "the budget caps retries at 5% of first attempts"
    assert sum(budgeted["errors"].values()) > sum(retried["errors"].values())


def test_step_ramp_and_trace_arrivals_with_a_per_second_timeline(tmp_path: Path) -> None:
    (tmp_path / "v.yaml").write_text(PROFILE)
    trace = tmp_path / "trace.jsonl"
    rows = ['{"t": 100.0, "input_tokens": 50}', '{"t": 100.2}', '{"t": 100.5, "input_tokens": 400}', '{"t": 101.5}']
    trace.write_text("\n".join(rows) + "\n")
    with SimulatorProcess(profile=tmp_path / "v.yaml") as sim:
        cfg = _config(tmp_path, sim.urls["v"])

        def run(*args: str) -> dict:
            done = subprocess.run(
                [ASSAY, "load", "-c", str(cfg), "--json", *args],
                cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, timeout=60,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr.decode()
            return orjson.loads(done.stdout)["targets"]["a"]

        step = run("--arrival", "step", "--steps", "1:5,1:20,1:5")
        ramp = run("--arrival", "ramp", "--rate", "5", "--rate-end", "25", "--duration", "3")
        replay = run("--trace", str(trace))
    assert [b["offered"] for b in step["timeline"]][:3] == [5, 20, 5]
    offered = [b["offered"] for b in ramp["timeline"]][:3]
    assert sum(offered) == 45 and offered[0] < offered[1] < offered[2]
    assert replay["requests"] == 4 and [b["offered"] for b in replay["timeline"]][:2] == [3, 1]
    assert all(isinstance(b["in_flight"], int) and b["sent"] <= b["offered"] + 1 for b in step["timeline"])
