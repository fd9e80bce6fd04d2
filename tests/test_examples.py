"""The shipped Python example runs as documented."""

from __future__ import annotations

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
