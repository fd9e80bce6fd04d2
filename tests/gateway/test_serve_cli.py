"""`assay gateway serve` as a user runs it: port file, SIGHUP and /admin/reload, SIGTERM drain, and the run's
Records read by `assay report`, `assay export` and `assay cost --run`."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import openai
import pytest

from assay.simulator import SimulatorProcess
from tests.conftest import ASSAY, cli_env

PROFILE = """
seed: 1
vendors:
  - name: a
    models: [{name: fast, ttft_ms: 5, itl_ms: 1, output_tokens: 12}]
  - name: b
    models: [{name: slow, ttft_ms: 5, itl_ms: 100, output_tokens: 20}]
"""
PRICE = "{input_per_mtok: 1, output_per_mtok: 2}"


def _config(sim: SimulatorProcess, routes: str) -> str:
    return (f"targets:\n"
            f"  - {{name: fa, base_url: \"{sim.urls['a']}/v1\", model: fast, pricing: {PRICE}}}\n"
            f"  - {{name: sl, api: anthropic, base_url: \"{sim.urls['b']}\", model: slow, pricing: {PRICE}}}\n"
            "workload: {daily_active_users: 100, turns_per_conversation: 2, input_tokens_per_turn: 50, "
            "output_tokens_per_turn: 20}\n"
            f"gateway:\n  drain_s: 10\n  routes:\n{routes}")  # fmt: skip


def _wait_port(path: Path, proc: subprocess.Popen[str], timeout_s: float = 30) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        if proc.poll() is not None:
            raise AssertionError(f"gateway exited: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.05)
    raise AssertionError("no port file")


def _http(method: str, url: str) -> tuple[int, Any]:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _models(port: int) -> list[str]:
    return sorted(m["id"] for m in _http("GET", f"http://127.0.0.1:{port}/v1/models")[1]["data"])


def _until(check, timeout_s: float = 10) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.mark.slow
def test_serve_reload_drain_and_report(tmp_path: Path) -> None:
    home = tmp_path
    (tmp_path / "sim.yaml").write_text(PROFILE)
    with SimulatorProcess(profile=tmp_path / "sim.yaml") as sim:
        cfg = tmp_path / "assay.yaml"
        cfg.write_text(_config(sim, "    - {model: chat, targets: [fa]}\n    - {model: slow, targets: [sl]}\n"))
        port_file = tmp_path / "port"
        command = [ASSAY, "gateway", "serve", "-c", str(cfg), "--port", "0", "--port-file", str(port_file)]
        proc = subprocess.Popen(command, env=cli_env(home), stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        try:
            port = _wait_port(port_file, proc)
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
            done = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
            assert done.choices[0].finish_reason == "stop" and done.model == "fast"
            assert _models(port) == ["chat", "slow"]

            # SIGHUP with a good config: the new route is served.
            cfg.write_text(_config(sim, "    - {model: chat, targets: [fa]}\n    - {model: slow, targets: [sl]}\n"
                                        "    - {model: chat2, policy: weighted, targets: [fa, sl]}\n"))  # fmt: skip
            proc.send_signal(signal.SIGHUP)
            _until(lambda: "chat2" in _models(port))

            # A bad config is refused with file:line:field, by SIGHUP and by /admin/reload; the old one serves on.
            cfg.write_text(_config(sim, "    - {model: chat, targets: [fa, nobody]}\n"))
            proc.send_signal(signal.SIGHUP)
            status, said = _http("POST", f"http://127.0.0.1:{port}/admin/reload")
            assert status == 400 and not said["reloaded"]
            assert f"{cfg}:" in said["error"] and "nobody" in said["error"]
            assert _models(port) == ["chat", "chat2", "slow"]
            state = _http("GET", f"http://127.0.0.1:{port}/admin/state")[1]
            assert state["reloads"] == {"ok": 1, "refused": 2} and set(state["targets"]) == {"fa", "sl"}

            # SIGTERM while a 2 s stream is in flight: it completes, then the process exits 0.
            got: dict[str, object] = {}

            def slow_stream() -> None:
                stream = client.chat.completions.create(model="slow", stream=True,
                                                        messages=[{"role": "user", "content": "hi"}])
                parts, finish = [], None
                for chunk in stream:
                    if chunk.choices:
                        parts.append(chunk.choices[0].delta.content or "")
                        finish = chunk.choices[0].finish_reason or finish
                        got["started"] = True
                got.update(text="".join(parts), finish=finish)

            t = threading.Thread(target=slow_stream)
            t.start()
            _until(lambda: got.get("started") is True)
            proc.send_signal(signal.SIGTERM)
            t.join(timeout=15)
            assert got["finish"] == "stop" and len(str(got["text"]).split()) == 20
            assert proc.wait(timeout=15) == 0
            stderr = proc.stderr.read() if proc.stderr else ""
            assert "reload refused" in stderr and "nobody" in stderr
            assert "no keys: open, loopback only" in stderr
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stderr:
                proc.stderr.close()

        # The run's Records, read by the usual commands.
        env = cli_env(home)
        out = subprocess.run([ASSAY, "runs"], env=env, capture_output=True, text=True, cwd=tmp_path)
        assert "gateway" in out.stdout and "complete" in out.stdout
        rows = tmp_path / "records.csv"
        subprocess.run([ASSAY, "export", "latest", "-o", str(rows)], env=env, check=True, cwd=tmp_path)
        with rows.open() as f:
            recs = list(csv.DictReader(f))
        assert len(recs) == 2 and {r["route"] for r in recs} == {"chat", "slow"}
        assert {r["target"] for r in recs} == {"fa", "sl"} and all(r["status"] == "ok" for r in recs)
        report = subprocess.run([ASSAY, "report", "latest", "-o", str(tmp_path / "rep")], env=env,
                                capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
        assert report.returncode == 0, report.stderr
        assert "fa" in (tmp_path / "rep" / "scorecard.md").read_text()
        cfg.write_text(_config(sim, "    - {model: chat, targets: [fa]}\n"))
        cost = subprocess.run([ASSAY, "cost", "-c", str(cfg), "--run", "latest", "--json"], env=env,
                              capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
        assert cost.returncode == 0, cost.stderr
        measured = json.loads(cost.stdout)["targets"]
        for r in recs:  # one attempt each: the run's spend is the Records' own
            assert measured[r["target"]]["measured"]["cost_usd"] == pytest.approx(float(r["cost_usd"]))
            assert measured[r["target"]]["measured"]["successes"] == 1
