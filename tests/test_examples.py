"""The shipped Python example runs as documented."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_python_api_example_runs_offline() -> None:
    run = subprocess.run([sys.executable, str(EXAMPLES / "python_api.py")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("answer: ")
    assert "tokens (server count)" in lines[1]
    assert lines[2].startswith("swift: success") and lines[3].startswith("atlas: success 100%")
    assert lines[4].startswith("streamed from atlas: ") and " 0 text events" not in lines[4]


def test_gateway_example_serves_the_client_example(tmp_path: Path) -> None:
    """examples/gateway.yaml in front of the demo vendors, driven by examples/gateway_client.py, as GATEWAY.md says."""
    import re
    import time

    from assay.simulator import SimulatorProcess
    from tests.conftest import ASSAY, cli_env

    with SimulatorProcess() as sim:
        text = (EXAMPLES / "gateway.yaml").read_text()
        for vendor, port in (("swift", 8001), ("meridian", 8002), ("atlas", 8003)):
            text = text.replace(f"http://127.0.0.1:{port}", sim.urls[vendor])
        assert not re.search(r"127\.0\.0\.1:800[123]", text)
        (tmp_path / "gateway.yaml").write_text(text)
        port_file = tmp_path / "port"
        command = [ASSAY, "gateway", "serve", "-c", str(tmp_path / "gateway.yaml"), "--port", "0", "--port-file",
                   str(port_file)]  # fmt: skip
        gw = subprocess.Popen(command, env=cli_env(tmp_path), stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not port_file.exists():
                assert time.monotonic() < deadline and gw.poll() is None
                time.sleep(0.05)
            url = f"http://127.0.0.1:{int(port_file.read_text())}"
            run = subprocess.run([sys.executable, str(EXAMPLES / "gateway_client.py"), url], capture_output=True,
                                 text=True, timeout=120)  # fmt: skip
        finally:
            gw.terminate()
            gw.wait(timeout=20)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("chat, served by ")
    served = ast.literal_eval(lines[1].split(": ", 1)[1])
    assert sum(served.values()) == 50 and set(served) <= {"swift", "meridian", "atlas"}
    assert lines[2].startswith("fast, via the Anthropic SDK, answered by model ")


def test_finetune_example_runs_as_documented(tmp_path: Path) -> None:
    """examples/finetune/: validate, run and compare, as docs/FINETUNE.md shows them, on the simulator."""
    import json

    from assay.simulator import SimulatorProcess
    from tests.conftest import ASSAY, cli_env

    folder = EXAMPLES / "finetune"
    with SimulatorProcess(profile=folder / "vendors.yaml") as sim:
        text = (folder / "assay.yaml").read_text().replace("http://127.0.0.1:8710", sim.urls["acme"])
        (tmp_path / "assay.yaml").write_text(text)

        def assay(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [ASSAY, "finetune", *args],
                cwd=tmp_path,
                env=cli_env(tmp_path),
                capture_output=True,
                text=True,
                timeout=180,
            )

        train = str(folder / "train.jsonl")
        v = assay(
            "validate",
            train,
            "-c",
            "assay.yaml",
            "--target",
            "small",
            "--replaces",
            "large",
            "--tuned",
            "small-tuned",
            "--json",
        )
        assert v.returncode == 0, v.stderr
        audit = json.loads(v.stdout)
        assert audit["valid"] == 120 and audit["epochs"] == 3 and audit["break_even"]["saving_per_request_usd"] > 0
        r = assay(
            "run",
            "-c",
            "assay.yaml",
            "--target",
            "small",
            "--file",
            train,
            "--suffix",
            "support",
            "--poll",
            "0.2",
            "--json",
        )
        assert r.returncode == 0, r.stderr
        job = json.loads(r.stdout)
        assert f'model: "{job["fine_tuned_model"]}"' in text  # the name the example's assay.yaml lists
        c = assay(
            "compare",
            "-c",
            "assay.yaml",
            "--base",
            "large",
            "--tuned",
            "small-tuned",
            "--suite",
            "qa",
            "--training-run",
            "latest",
            "--json",
        )
        assert c.returncode == 0, c.stderr
        got = json.loads(c.stdout)
        assert got["n"] == 50 and got["break_even"]["break_even_monthly_requests"] > 0
        assert got["cost_per_request_usd"]["small-tuned"] < got["cost_per_request_usd"]["large"]
        negation = next(s for s in got["slices"] if s["tag"] == "negation")
        assert negation["diff"] < 0  # the forgetting the example's profile builds in
