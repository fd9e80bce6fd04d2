"""LiteLLM's proxy as a peer: installed into a throwaway virtualenv, run as one worker process pinned to a CPU.

Installed with `pip install 'litellm[proxy]==VERSION'` into /tmp/assay-peers/litellm (never committed, never a
dependency of assay). 1.108.7 is the newest release whose `[proxy]` extra resolves on this machine's package
mirror (1.108.8+ pin litellm-enterprise and litellm-proxy-extras builds it does not have, 1.110 a separate
litellm-proxy package; 1.107.0 was the compromised release, avoided).

It runs as a new user would start it, `litellm --config cfg.yaml --port P --num_workers 1`, with a config
that maps one model name to an OpenAI-compatible upstream and sets a master key (a random `sk-` + 64 hex
digits; LiteLLM refuses to start without one), and nothing else: no database, no callbacks, no cache, so it
does no per-request DB or logging work a new user would not have configured. One setting is
not LiteLLM's default: LITELLM_LOCAL_MODEL_COST_MAP=True, so it reads its bundled price list instead of
fetching one from the internet at start (this machine reaches no host but the package registries).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from peer_venv import ensure_peer

LITELLM = "litellm[proxy]==1.108.7"
DEFAULT_VENV = Path("/tmp/assay-peers/litellm")


def ensure_litellm(venv: Path = DEFAULT_VENV) -> Path:
    """The `litellm` command in `venv`, installing it there the first time."""
    return ensure_peer(venv, "litellm", LITELLM)


def litellm_version(exe: Path) -> str:
    out = subprocess.run(
        [str(exe.parent / "python"), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def config_yaml(api_base: str, upstream_model: str, master_key: str, name: str = "chat") -> str:
    """One model name routed to an OpenAI-compatible upstream with a dummy key, and the master key clients
    use (LiteLLM refuses to start without one); nothing else configured."""
    entry = {"model_name": name, "litellm_params": {"model": f"openai/{upstream_model}", "api_base": api_base}}
    entry["litellm_params"]["api_key"] = "sk-dummy"
    cfg = {"model_list": [entry], "general_settings": {"master_key": master_key}}
    return json.dumps(cfg, indent=2) + "\n"  # JSON is YAML


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiteLLMProxy:
    """`litellm --config ... --num_workers 1` in its own process group, pinned with `taskset -c CPU`."""

    def __init__(self, exe: Path, api_base: str, upstream_model: str, work: Path, cpu: str = "0") -> None:
        self.work = work
        cfg = work / "litellm.yaml"
        self.master_key = f"sk-{secrets.token_hex(32)}"
        cfg.write_text(config_yaml(api_base, upstream_model, self.master_key))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [
            "taskset", "-c", cpu, str(exe), "--config", str(cfg),
            "--host", "127.0.0.1", "--port", str(self.port), "--num_workers", "1",
        ]  # fmt: skip
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        self.log = work / "litellm.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"litellm exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}")
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(f"{self.url}/health/liveliness", timeout=2) as r,
            ):
                if r.status == 200:
                    return
            time.sleep(0.5)
        raise RuntimeError(f"litellm not ready within {timeout_s:g}s:\n{self.log.read_text()[-3000:]}")

    def pids(self) -> list[int]:
        """The proxy's process tree (to check what is pinned where)."""
        out = subprocess.run(["pgrep", "-g", str(self.proc.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        with contextlib.suppress(ProcessLookupError):  # anything it left behind on the proxy's core
            os.killpg(self.proc.pid, signal.SIGKILL)
