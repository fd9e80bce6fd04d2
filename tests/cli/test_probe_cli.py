"""`assay probe --json` against simulated vendors: one JSON object with the promised keys and meanings."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import orjson

from assay.cli.demo import demo_config_text
from assay.simulator import SimulatorProcess
from tests.conftest import ASSAY, cli_env

PERCENTILE_KEYS = {"p50", "p90", "p99"}


def test_probe_json_contract(tmp_path: Path, demo_process: SimulatorProcess) -> None:
    (tmp_path / "assay.yaml").write_text(demo_config_text(demo_process.urls))
    run = subprocess.run(
        [
            ASSAY,
            "probe",
            "-c",
            "assay.yaml",
            "--requests",
            "40",
            "--concurrency",
            "8",
            "--timeout",
            "5",
            "--max-tokens",
            "12",
            "--json",
        ],
        cwd=tmp_path,
        env=cli_env(tmp_path),
        capture_output=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr.decode()
    out = orjson.loads(run.stdout)  # exactly one JSON document: loads() refuses trailing output
    assert set(out["targets"]) == {"swift", "meridian", "atlas"}
    for name, t in out["targets"].items():
        assert t["requests"] == 40
        assert t["succeeded"] + t["failed"] == 40
        assert t["success_rate"] == round(t["succeeded"] / 40, 4)
        assert sum(t["errors"].values()) == t["failed"], name
        assert 0 <= t["uptime_pct"] <= 100
        for key in ("e2e_ms", "ttft_ms", "tpot_ms"):
            assert set(t[key]) >= PERCENTILE_KEYS
            assert t[key]["p50"] <= t[key]["p90"] <= t[key]["p99"]
        assert t["ttft_ms"]["p50"] < t["e2e_ms"]["p50"]
        assert t["output_tokens_per_s"]["p50"] > 0
        assert t["output_tokens"]["source"] == "server" and set(t["output_tokens"]) == {"total", "mean", "source"}
    swift, atlas = out["targets"]["swift"], out["targets"]["atlas"]
    assert swift["ttft_ms"]["p50"] < atlas["ttft_ms"]["p50"]  # the profiles' trade-off shows through


def test_probe_table_and_report(tmp_path: Path, demo_process: SimulatorProcess) -> None:
    (tmp_path / "assay.yaml").write_text(demo_config_text(demo_process.urls))
    env = cli_env(tmp_path)
    run = subprocess.run(
        [ASSAY, "probe", "-c", "assay.yaml", "-n", "15", "--target", "atlas", "--max-tokens", "8"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "atlas" in run.stdout and "swift" not in run.stdout
    assert "TTFT" in run.stdout and "assay report" in run.stdout
    rep = subprocess.run(
        [ASSAY, "report", "latest", "-o", "out"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert rep.returncode == 0, rep.stderr
    html = (tmp_path / "out" / "index.html").read_text()
    assert "atlas-opus" in html and "<svg" in html
    runs = subprocess.run([ASSAY, "runs"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert "complete" in runs.stdout
    for name in ("records.csv", "records.jsonl"):
        exp = subprocess.run(
            [ASSAY, "export", "latest", "-o", name], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert exp.returncode == 0, exp.stderr
        assert "wrote 15 records" in exp.stdout
    with (tmp_path / "records.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 15 and {r["target"] for r in rows} == {"atlas"}
    ok = [r for r in rows if r["status"] == "ok"]
    assert all(float(r["ttft_ms"]) < float(r["e2e_ms"]) for r in ok)
    lines = (tmp_path / "records.jsonl").read_text().splitlines()
    first = orjson.loads(lines[0])
    assert len(lines) == 15 and isinstance(first["itl_ms"], list)
    bad = subprocess.run(
        [ASSAY, "export", "latest", "-o", "records.xlsx"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "csv or jsonl" in bad.stderr
    assert not (tmp_path / "records.xlsx").exists()


def test_unknown_target_is_refused_before_anything_runs(tmp_path: Path, demo_process: SimulatorProcess) -> None:
    (tmp_path / "assay.yaml").write_text(demo_config_text(demo_process.urls))
    run = subprocess.run(
        [ASSAY, "probe", "-c", "assay.yaml", "--target", "nope", "--json"],
        cwd=tmp_path,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert "no target named 'nope'" in run.stderr and "swift, meridian, atlas" in run.stderr
    assert run.stdout == ""


def test_failure_lines_show_the_message_and_survive_brackets() -> None:
    from rich.console import Console

    from assay.cli.console import failure_lines
    from assay.records import Record
    from assay.stats import summarize

    recs = [
        Record(
            run_id="r",
            target="t",
            suite="probe",
            item_id=str(i),
            attempt=0,
            status="error",
            wall_start_s=0.0,
            error_class="client_error",
            error_message="HTTP 400: bad [bold]input[/bold] in messages[0]",
        )
        for i in range(3)
    ]
    console = Console(record=True, width=200)
    for line in failure_lines({"t": summarize("t", recs)}):
        console.print(line)
    text = console.export_text()
    assert "t: 4xx×3" in text and "bad [bold]input[/bold] in messages[0]" in text
