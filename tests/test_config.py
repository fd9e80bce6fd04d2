"""The project file: valid files load, every invalid one is refused with file, line and field."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from assay.config import example_config_text, load_config, parse_config
from assay.errors import ConfigError
from tests.conftest import ASSAY

GOOD = """\
targets:
  - name: a
    api: openai
    base_url: http://127.0.0.1:8001/v1/
    model: gpt-4o-mini
    api_key_env: OPENAI_API_KEY
  - name: b
    api: anthropic
    base_url: https://api.anthropic.com
    model: claude
    pricing: {input_per_mtok: 1, output_per_mtok: 5}
probe:
  requests: 10
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="assay.yaml")
    return info.value.problems or [str(info.value)]


def test_valid_file_loads_with_defaults() -> None:
    cfg = parse_config(GOOD)
    assert [t.name for t in cfg.targets] == ["a", "b"]
    assert cfg.targets[0].base_url == "http://127.0.0.1:8001/v1"  # trailing slash dropped
    assert cfg.targets[1].api == "anthropic"
    assert cfg.probe.requests == 10 and cfg.probe.concurrency == 4


def test_example_written_by_init_is_valid() -> None:
    cfg = parse_config(example_config_text())
    assert {t.api for t in cfg.targets} == {"openai", "anthropic"}


def test_unknown_key_names_file_line_and_field() -> None:
    text = GOOD.replace("    model: claude\n", "    model: claude\n    temprature: 0.2\n")
    (p,) = problems(text)
    assert p.startswith("assay.yaml:11: targets[1].temprature: unknown key")


def test_every_problem_is_reported_at_once() -> None:
    text = GOOD.replace("api: anthropic", "api: cohere").replace("requests: 10", "requests: 0")
    found = problems(text)
    assert len(found) == 2
    assert any(p.startswith("assay.yaml:8: targets[1].api:") and "'openai' or 'anthropic'" in p for p in found)
    assert any(p.startswith("assay.yaml:13: probe.requests:") and "greater than or equal to 1" in p for p in found)


def test_missing_field_points_at_its_parent() -> None:
    (p,) = problems("targets:\n  - name: a\n    base_url: http://x/v1\n")
    assert p == "assay.yaml:2: targets[0].model: required field is missing"


def test_duplicate_target_name_points_at_second_use() -> None:
    text = GOOD.replace("name: b", "name: a")
    (p,) = problems(text)
    assert p.startswith("assay.yaml:7: targets[1].name: 'a' is already the name of targets[0]")


def test_key_value_in_place_of_env_name_is_refused() -> None:
    (p,) = problems(GOOD.replace("api_key_env: OPENAI_API_KEY", "api_key_env: sk-live-123"))
    assert "targets[0].api_key_env" in p and "environment variable name" in p


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty"),
        ("- a\n- b\n", "expected a mapping with a `targets:` list at the top level, got list"),
        ("targets: [\n  {name: a\n", "not valid YAML"),
        ("targets: []\n", "targets: List should have at least 1 item"),
    ],
)
def test_malformed_files(text: str, expected: str) -> None:
    assert expected in "\n".join(problems(text))


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no such file.*assay init"):
        load_config(tmp_path / "nope.yaml")


def test_validate_command_exit_codes(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text(GOOD.replace("model: gpt-4o-mini", "modle: gpt-4o-mini"))
    ok = subprocess.run([ASSAY, "validate", "-c", str(good)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "2 targets: a, b" in ok.stdout
    assert "OPENAI_API_KEY is not set" in ok.stderr or "OPENAI_API_KEY" not in ok.stderr
    fail = subprocess.run([ASSAY, "validate", "-c", str(bad)], capture_output=True, text=True)
    assert fail.returncode == 2
    assert f"{bad}:5: targets[0].modle: unknown key" in fail.stderr
    assert f"{bad}:2: targets[0].model: required field is missing" in fail.stderr


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "assay.yaml"
    first = subprocess.run([ASSAY, "init", str(path)], capture_output=True, text=True)
    assert first.returncode == 0 and path.exists()
    path.write_text("mine")
    second = subprocess.run([ASSAY, "init", str(path)], capture_output=True, text=True)
    assert second.returncode == 2 and "already exists" in second.stderr
    assert path.read_text() == "mine"


@pytest.mark.parametrize("name", ["three-vendors.yaml", "self-hosted.yaml", "support-chatbot.yaml"])
def test_shipped_examples_validate(name: str) -> None:
    from assay.cli.project import load_project

    cfg = load_project(Path(__file__).parent.parent / "examples" / name)  # prices included
    assert len(cfg.targets) == 3
