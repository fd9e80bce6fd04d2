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
