"""The scorecard's safety section, rendered from a real red-team run of simulated vendors."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import orjson
import pytest

from assay.datasets.safety import load_demo_safety
from assay.report.browser import find_chromium, html_to_pdf
from assay.simulator import SimulatorProcess
from tests.conftest import ASSAY, PRICE, cli_env

# A vendor with a model that falls to most attacks, and one that refuses even half the safe prompts.
VENDORS = """
knowledge: [safety]
vendors:
  - name: v
    models:
      - {name: weak, ttft_ms: {value: 1}, itl_ms: {value: 0}, safety: {refusal: 0.3, jailbreak: 0.9}}
      - {name: safe, ttft_ms: {value: 1}, itl_ms: {value: 0}, safety: {refusal: 1.0, jailbreak: 0.0, over_refusal: 0.5}}
"""


def _config(url: str) -> str:
    targets = "".join(
        f"  - {{name: {m}, base_url: '{url}/v1', model: {m}, pricing: {PRICE}}}\n" for m in ("weak", "safe")
    )
    return (
        f"targets:\n{targets}"
        "suites:\n"
        "  - {name: harmful, kind: safety, category: harmful, dataset: demo-safety}\n"
        "  - {name: jailbreak, kind: safety, category: jailbreak, dataset: demo-safety, sample: 12, seed: 2}\n"
        "  - {name: xstest, kind: safety, category: xstest, dataset: demo-safety, attack: over_refusal}\n"
        "safety:\n"
        "  evidence:\n"
        "    weak: {model_card: 'https://weak.example/card', retention_days: 30}\n"
        "    safe:\n"
        "      model_card: https://safe.example/card\n"
        "      content_filter: on by default\n"
        "      incident_response: 72 h\n"
        "      certifications: [SOC 2 Type II]\n"
        "      data_residency: [EU]\n"
        "      retention_days: 0\n"
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    home = tmp_path_factory.mktemp("home")
    spec_file = home / "vendors.yaml"
    spec_file.write_text(VENDORS, encoding="utf-8")
    with SimulatorProcess(profile=spec_file) as sim:
        cfg = home / "assay.yaml"
        cfg.write_text(_config(sim.urls["v"]), encoding="utf-8")
        red = subprocess.run([ASSAY, "redteam", "-c", str(cfg), "--json"],
                             env=cli_env(home), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert red.returncode == 0, red.stderr
    out = home / "report"
    rep = subprocess.run([ASSAY, "report", "latest", "-o", str(out)],
                         env=cli_env(home), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert rep.returncode == 0, rep.stderr
    return out, orjson.loads(red.stdout)


def test_safety_section_shows_rates_breaches_and_the_risk_matrix(report: tuple[Path, dict[str, object]]) -> None:
    out, summary = report
    html = (out / "index.html").read_text(encoding="utf-8")
    section = html[html.index("<h2>Safety</h2>") :]
    targets = summary["targets"]
    assert isinstance(targets, dict)
    # The jailbreak rate the table shows is the one --json reported, and the weak model's is over its limit.
    rate = targets["weak"]["jailbreak"]["attack_success_rate"] * 100
    assert rate > 50
    assert re.search(rf'<span class="bad">{rate:.1f} \(', section)
    # Over-refusal is named as such (the safe model refuses half the safe prompts).
    assert "xstest (over-refusal)" in section
    assert "over-refusal, pooled" not in section  # one over-refusal suite: its row is the rate
    # Two plots: the risk matrix (category ticks) and the per-category bars.
    assert section.count("<svg") >= 2
    assert "safety score" in section


def test_vendor_evidence_flags_exactly_the_undocumented_fields(report: tuple[Path, dict[str, object]]) -> None:
    out, _ = report
    html = (out / "index.html").read_text(encoding="utf-8")
    table = html[html.index("Vendor evidence") : html.index("</table>", html.index("Vendor evidence"))]
    rows = dict(re.findall(r"<tr><td>([^<]+)</td>(.*?)</tr>", table))
    gaps = {label for label, cells in rows.items() if "gap" in cells}
    # weak documents a model card and retention only; safe documents every required field.
    assert gaps == {"Content filter", "Incident response", "Certifications", "Data residency"}
    assert all(cells.count("gap") == 1 for label, cells in rows.items() if label in gaps)
    assert 'href="https://weak.example/card"' in rows["Model card"]


def test_reports_show_harmful_prompts_only_as_excerpts(report: tuple[Path, dict[str, object]]) -> None:
    out, _ = report
    html = (out / "index.html").read_text(encoding="utf-8")
    md = (out / "scorecard.md").read_text(encoding="utf-8")
    assert "## Safety" in md and "safety score" in md
    assert "Attack that worked" in html
    items = load_demo_safety(None, out)
    long_prompts = [i.question for i in items if i.metadata["label"] == "unsafe" and len(i.question) > 60]
    assert long_prompts
    for prompt in long_prompts:
        assert prompt not in html and prompt not in md


@pytest.mark.skipif(find_chromium() is None and not os.environ.get("CI"), reason="chromium not installed")
def test_a_long_scorecard_still_prints_as_one_a4_wide_page(report: tuple[Path, dict[str, object]]) -> None:
    out, _ = report
    pdf = html_to_pdf(out / "index.html", out / "scorecard.pdf")
    data = pdf.read_bytes()
    assert len(re.findall(rb"/Type\s*/Page(?!s)", data)) == 1
    box = re.search(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)", data)
    assert box is not None
    width, height = float(box.group(1)), float(box.group(2))
    assert width == pytest.approx(595.3, abs=1.5)  # A4 wide
    assert height >= 841  # at least A4 tall, taller when the content is
