"""Defects users found at the edges of the command line, each pinned by a test that failed before its fix."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from assay.simulator import SimulatorProcess
from tests.conftest import ASSAY, PRICE, cli_env

PROFILE = """
vendors:
  - name: v
    models:
      - {name: m, ttft_ms: 20, itl_ms: 2, output_tokens: 10}
      - {name: slow, ttft_ms: 150, itl_ms: 2, output_tokens: 4}
knowledge: [demo-qa]
"""


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    path = tmp_path_factory.mktemp("sim") / "v.yaml"
    path.write_text(PROFILE)
    with SimulatorProcess(profile=path) as s:
        yield s


def _assay(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ASSAY, *args], cwd=tmp_path, env=env or cli_env(tmp_path), capture_output=True, text=True, timeout=120
    )


def _targets(url: str, *names: str) -> str:
    return "targets:\n" + "".join(
        f"  - {{name: {n}, base_url: '{url}/v1', model: m, pricing: {PRICE}}}\n" for n in names
    )


def test_a_config_that_is_not_utf8_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("targets:\n  - name: caf\xe9\n".encode("latin-1"))
    run = _assay(tmp_path, "validate", "-c", str(path))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert f"{path}:2: not UTF-8 text (byte 0xe9" in run.stderr


def test_validate_checks_the_suites_datasets(tmp_path: Path) -> None:
    golden = tmp_path / "words.jsonl"
    golden.write_text('{"input": "Capital of France?", "expected": "Paris"}\n{"input": "2+2?", "expected": "4"}\n')
    path = tmp_path / "assay.yaml"
    path.write_text(
        _targets("http://127.0.0.1:9", "a")
        + f"suites:\n  - {{name: gone, dataset: {tmp_path / 'missing.jsonl'}, scorer: exact}}\n"
        + f"  - {{name: words, dataset: {golden}, scorer: numeric}}\n"
    )
    run = _assay(tmp_path, "validate", "-c", str(path))
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert "suites[0].dataset" in run.stderr and "no such golden-set file" in run.stderr
    assert f"suites[1].dataset: {golden}:1: item" in run.stderr and "'Paris' is not a number" in run.stderr
    assert f"{golden}:2" not in run.stderr, "the numeric answer is fine"


def test_a_numeric_scorer_on_words_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    golden = tmp_path / "words.jsonl"
    golden.write_text('{"input": "Capital of France?", "expected": "Paris"}\n')
    path = tmp_path / "assay.yaml"
    path.write_text(
        _targets("http://127.0.0.1:9", "a") + f"suites:\n  - {{name: w, dataset: {golden}, scorer: numeric}}\n"
    )
    run = _assay(tmp_path, "eval", "-c", str(path))
    assert run.returncode == 2 and "Traceback" not in run.stderr and "ValueError" not in run.stderr
    assert "scorer numeric cannot use 1 of 1 reference answers" in run.stderr and f"{golden}:1" in run.stderr
    assert not (tmp_path / ".assay" / "assay.db").exists(), "nothing was written"


def test_an_unknown_scorer_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "assay.yaml"
    path.write_text(_targets("http://127.0.0.1:9", "a") + "suites:\n  - {name: q, dataset: demo-qa, scorer: bleu}\n")
    run = _assay(tmp_path, "validate", "-c", str(path))
    assert run.returncode == 2 and f"{path}:4: suites[0].scorer: unknown scorer 'bleu'; one of exact" in run.stderr


@pytest.mark.parametrize(
    "command",
    [["probe"], ["load"], ["eval"], ["redteam"], ["report"], ["cost"], ["tco"], ["export"], ["validate"], ["runs"]],
)
def test_help_shows_no_type_placeholders(tmp_path: Path, command: list[str]) -> None:
    run = _assay(tmp_path, *command, "--help", env={**cli_env(tmp_path), "COLUMNS": "160"})
    assert run.returncode == 0, run.stderr
    assert "<bool>" not in run.stdout and "<list[" not in run.stdout and "<int range>" not in run.stdout, run.stdout


def test_one_error_style_and_exit_code_for_wrong_input(tmp_path: Path) -> None:
    path = tmp_path / "assay.yaml"
    path.write_text(_targets("http://127.0.0.1:9", "a"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets:\n  - {name: a}\n")
    wrong = [
        ["probe", "-c", str(path), "--nope"],  # an unknown option (typer's own check)
        ["probe", "-c", str(path), "--requests", "many"],  # a value of the wrong type
        ["probe", "-c", str(bad)],  # a config error
        ["probe", "-c", str(tmp_path / "absent.yaml")],  # a missing file
        ["report", "no-such-run"],  # a run that does not exist
        ["probe", "-c", str(path), "--target", "zz"],  # a target that does not exist
    ]
    for args in wrong:
        run = _assay(tmp_path, *args)
        assert run.returncode == 2, (args, run.returncode, run.stderr)
        assert run.stderr.startswith("error: "), (args, run.stderr)
        assert "Traceback" not in run.stderr and "╭" not in run.stderr, (args, run.stderr)


def test_runs_and_the_scorecard_name_the_targets_the_run_used(tmp_path: Path, sim: SimulatorProcess) -> None:
    path = tmp_path / "assay.yaml"
    path.write_text(_targets(sim.urls["v"], "a", "b"))
    run = _assay(tmp_path, "probe", "-c", str(path), "--target", "a", "--requests", "5", "--json")
    assert run.returncode == 0, run.stderr
    run_id = orjson.loads(run.stdout)["run_id"]
    listed = _assay(tmp_path, "runs", env={**cli_env(tmp_path), "COLUMNS": "200"}).stdout
    row = next(line for line in listed.splitlines() if run_id in line)
    assert re.search(r"\ba\b", row) and not re.search(r"\bb\b", row), row
    rep = _assay(tmp_path, "report", run_id, "-o", "rep")
    assert rep.returncode == 0, rep.stderr
    md = (tmp_path / "rep" / "scorecard.md").read_text()
    html = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", (tmp_path / "rep" / "index.html").read_text()))
    for text in (md, html):
        assert "1 target · 5 requests" in text and "1 targets" not in text
        assert "Most reliable" not in text and "Fastest" not in text  # nothing to compare with


def test_load_json_still_warns_when_the_generator_falls_behind(tmp_path: Path, sim: SimulatorProcess) -> None:
    path = tmp_path / "assay.yaml"
    path.write_text(f"targets:\n  - {{name: a, base_url: '{sim.urls['v']}/v1', model: slow, pricing: {PRICE}}}\n")
    # One request in flight at a time, 150 ms each, asked for 20/s: sends fall seconds behind their schedule.
    run = _assay(tmp_path, "load", "-c", str(path), "--rate", "20", "--duration", "1", "--max-in-flight", "1", "--json")
    assert run.returncode == 0, run.stderr
    assert orjson.loads(run.stdout)["targets"]["a"]["generator_lag_ms"]["p99"] > 100
    assert "warning: a: the generator could not keep its schedule" in run.stderr


def test_an_eval_whose_replies_cannot_be_read_says_so(tmp_path: Path, sim: SimulatorProcess) -> None:
    """A simulator that does not know the items answers with filler: a score of 0 that is not a score."""
    golden = tmp_path / "sums.jsonl"
    golden.write_text("".join(f'{{"input": "What is {i} + {i}?", "expected": "{2 * i}"}}\n' for i in range(1, 11)))
    path = tmp_path / "assay.yaml"
    path.write_text(_targets(sim.urls["v"], "a") + f"suites:\n  - {{name: sums, dataset: {golden}, scorer: numeric}}\n")
    run = _assay(tmp_path, "eval", "-c", str(path), "--json")
    assert run.returncode == 0, run.stderr
    assert "warning: a on sums: 10 of 10 replies held no answer the scorer could read" in run.stderr


def test_money_is_never_truncated(tmp_path: Path) -> None:
    """Piped output is at least 120 columns wide, or COLUMNS when wider; a terminal too narrow for a table gets
    one block per row (tests.cli.test_cli_edges renders that case through a narrow console)."""
    example = Path(__file__).resolve().parents[2] / "examples" / "support-chatbot.yaml"
    for columns in ("200", "80"):
        out = _assay(tmp_path, "cost", "-c", str(example), env={**cli_env(tmp_path), "COLUMNS": columns}).stdout
        cells = re.findall(r"\$[\d,.]+…?", out)
        assert cells and not [c for c in cells if c.endswith("…")], (columns, out)
        assert "$2,002" in out and "$263.25" in out and " target " in out  # a table, not blocks


def test_a_narrow_terminal_gets_blocks_instead_of_cropped_figures() -> None:
    from rich.console import Console

    from assay.catalog import PriceBook, load_catalog
    from assay.cli.console import show_table
    from assay.cli.cost import cost_table
    from assay.config import load_config
    from assay.economics import cost_report

    example = Path(__file__).resolve().parents[2] / "examples" / "support-chatbot.yaml"
    cfg = load_config(example)
    report = cost_report(cfg, PriceBook.for_targets(cfg.targets, load_catalog(Path("/nonexistent"))))
    narrow = Console(width=70, record=True, color_system=None)
    show_table(cost_table(report), narrow)
    text = narrow.export_text()
    assert "…" not in text and "$2,002" in text and "$263.25" in text
    assert "llama-vllm\n    on self-hosted · $/interaction $0.0133" in text
