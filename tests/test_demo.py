"""`assay demo`: simulated vendors, a probe, a scorecard; no keys, no network."""

from __future__ import annotations

import html as html_lib
import re
import subprocess
from pathlib import Path

from assay.config import load_config
from tests.conftest import ASSAY, cli_env


def assert_headline_agrees_with_the_page(page: str) -> None:
    """No chip may contradict a section below it: a recommended target is named with every red-team limit it is
    over (as the safety section lists them) and with an SLO it misses; no chip claims "meets every objective"."""
    block = re.findall(r'<div class="headline">(.*?)</div>\s*</div>', page, re.S)[0]
    chips = [html_lib.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in block.split("<div>") if c.strip()]
    said = " ".join(chips)
    for stale in ("Within the SLO", "every objective", "Most reliable", "Cheapest"):
        assert stale not in said, chips
    m = re.search(r"Recommended: (\w+)", said)
    assert m, chips
    winner = m.group(1)
    text = html_lib.unescape(re.sub(r"<[^>]+>", " ", page))
    over = re.search(rf"{winner}: over the limit on ([^\n✗✓]*)", text)
    if over:
        for category in re.findall(r"([a-z_]+) [\d.]+% > ", over.group(1)):
            assert category in said, f"{winner} is over the {category} limit below, but the headline omits it: {chips}"


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
    # the decision leads the page and the terminal's last word: a recommendation for the three vendors
    assert html.index("<h2>Decision</h2>") < html.index("<h2>Safety</h2>")
    assert "Recommended: " in html and ("Choose " in run.stdout or "Lean to " in run.stdout)
    assert_headline_agrees_with_the_page(html)
    # trade-off and tornado; latency CDFs, failures, uptime; quality bars, quality vs cost; risk matrix,
    # attack success bars; cost vs volume, TCO, cost vs latency
    assert html.count("<svg") == 12
    assert "qa: atlas beats swift" in html  # a significant paired difference, in words
    assert "evaluating quality on qa" in run.stdout and "set ASSAY_DATA_DIR" in run.stdout
    # the red-team: the same attacks for all three, a safety score each, swift's breaches in the report
    assert "red-teaming: harmful, jailbreak, injection, leakage, misinformation, xstest" in run.stdout
    assert run.stdout.count("safety score") == 3
    assert "<h2>Safety</h2>" in html and "swift: over the limit on" in html
    assert "cost · 2,000 users/day" in run.stdout and "assay tco -c" in run.stdout
    # `assay report` of any one of the demo's runs finds the others of the same config for its decision
    again = subprocess.run([ASSAY, "report", "latest", "--out", "again"], cwd=tmp_path, env=cli_env(tmp_path),
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "Recommended: " in (tmp_path / "again" / "index.html").read_text()
    cfg = load_config(tmp_path / "out" / "assay.yaml")  # the demo leaves a config the user can reuse
    assert [t.api for t in cfg.targets] == ["openai", "openai", "anthropic"]
    assert all(t.base_url.startswith("http://127.0.0.1:") for t in cfg.targets)
