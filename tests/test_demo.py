"""`assay demo`: simulated vendors, a probe, a scorecard; no keys, no network."""

from __future__ import annotations

import subprocess
from pathlib import Path

from assay.config import load_config
from tests.conftest import ASSAY, cli_env


def test_demo_end_to_end(tmp_path: Path) -> None:
    run = subprocess.run(
        [ASSAY, "demo", "--requests", "8", "--concurrency", "4", "--out", "out"],
        cwd=tmp_path,
        # Without public datasets the demo evaluates its bundled set only (fast, and always offline).
        env={**cli_env(tmp_path), "OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": "", "ASSAY_DATA_DIR": ""},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr
    assert "scorecard:" in run.stdout and str(tmp_path / "out" / "index.html") in run.stdout
    for name in ("swift", "meridian", "atlas"):
        assert name in run.stdout
    html = (tmp_path / "out" / "index.html").read_text()
    assert "Reliability, latency, quality, safety &amp; cost scorecard" in html
    assert "Cheapest for the workload: swift" in html
    # latency CDFs, failures, uptime; quality bars, quality vs cost; risk matrix, attack success bars;
    # cost vs volume, TCO, cost vs latency
    assert html.count("<svg") == 10
    assert "qa: atlas beats swift" in html  # a significant paired difference, in words
    assert "evaluating quality on qa" in run.stdout and "set ASSAY_DATA_DIR" in run.stdout
    # the red-team: the same attacks for all three, a safety score each, swift's breaches in the report
    assert "red-teaming: harmful, jailbreak, injection, leakage, misinformation, xstest" in run.stdout
    assert run.stdout.count("safety score") == 3
    assert "<h2>Safety</h2>" in html and "swift: over the limit on" in html
    assert "cost · 2,000 users/day" in run.stdout and "assay tco -c" in run.stdout
    cfg = load_config(tmp_path / "out" / "assay.yaml")  # the demo leaves a config the user can reuse
    assert [t.api for t in cfg.targets] == ["openai", "openai", "anthropic"]
    assert all(t.base_url.startswith("http://127.0.0.1:") for t in cfg.targets)
