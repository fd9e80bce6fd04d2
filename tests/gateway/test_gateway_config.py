"""The `gateway:` section's errors point at their line, and the CLI refuses what it cannot serve safely."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from assay.config import parse_config
from assay.errors import ConfigError
from tests.conftest import ASSAY, cli_env

HEAD = """targets:
  - {name: a, base_url: "http://127.0.0.1:9/v1", model: m, pricing: {input_per_mtok: 1, output_per_mtok: 2}}
  - {name: b, base_url: "http://127.0.0.1:9/v1", model: m, pricing: {input_per_mtok: 1, output_per_mtok: 2}}
gateway:
"""


@pytest.mark.parametrize(("body", "line", "said"), [
    ("  routes:\n    - {model: chat, targets: [a, nobody]}\n", 6, "route target 'nobody' is not one of the targets"),
    ("  routes:\n    - {model: chat, targets: [a], weights: {b: 1}}\n", 6, "weights name b"),
    ("  routes:\n    - {model: chat, policy: weighted, targets: [a, b], weights: {a: 0, b: 0}}\n", 6, "all zero"),
    ("  routes:\n    - {model: chat, policy: fastest, targets: [a]}\n", 6, "policy"),
    ("  routes:\n    - {model: chat, targets: [a]}\n    - {model: chat, targets: [b]}\n", 7, "already routes[0]"),
    ("  routes:\n    - {model: chat, targets: [a]}\n  keys:\n    - {name: k, key_env: K, routes: [nope]}\n", 8,
     "route 'nope' is not one of the routes"),
    ("  routes:\n    - {model: chat, targets: [a]}\n  keys:\n    - {name: k, key_env: sk-live-123}\n", 8,
     "environment variable name"),
    ("  routes:\n    - {model: chat, targets: [a], retries: -1}\n", 6, "retries"),
    ("  routes: []\n", 5, "routes"),
])  # fmt: skip
def test_errors_name_file_line_and_field(body: str, line: int, said: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(HEAD + body, "assay.yaml")
    assert f"assay.yaml:{line}:" in str(e.value) and said in str(e.value)


def test_an_open_gateway_is_refused_beyond_loopback(tmp_path: Path) -> None:
    (tmp_path / "assay.yaml").write_text(HEAD + "  routes:\n    - {model: chat, targets: [a]}\n")
    run = subprocess.run([ASSAY, "gateway", "serve", "-c", str(tmp_path / "assay.yaml"), "--host", "0.0.0.0"],
                         env=cli_env(tmp_path), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 2 and "loopback only" in run.stderr
    assert not (tmp_path / ".assay" / "assay.db").exists()  # nothing written after a refusal


def test_no_gateway_section_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "assay.yaml").write_text(HEAD.replace("gateway:\n", ""))
    run = subprocess.run([ASSAY, "gateway", "serve", "-c", str(tmp_path / "assay.yaml")], env=cli_env(tmp_path),
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 2 and "no `gateway:` section" in run.stderr


def test_a_port_in_use_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    import socket

    (tmp_path / "assay.yaml").write_text(HEAD + "  routes:\n    - {model: chat, targets: [a]}\n")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        run = subprocess.run([ASSAY, "gateway", "serve", "-c", str(tmp_path / "assay.yaml"), "--port", str(port)],
                             env=cli_env(tmp_path), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in run.stderr
    assert not (tmp_path / ".assay" / "assay.db").exists()  # no run left behind
