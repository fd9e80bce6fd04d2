"""The scorecard as a reader sees it: self-contained HTML, Markdown, and a real browser rendering."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from assay.config import parse_config
from assay.report.browser import find_chromium, html_to_pdf, html_to_png
from assay.report.scorecard import write_report
from assay.simulator import Faults, ModelProfile, SimulatorSpec, Vendor, start_simulator
from assay.store import Store
from assay.suites.probe import ProbeOptions, run_probe
from tests.conftest import PRICE

CHROMIUM = find_chromium()


@pytest.fixture
async def report_dir(tmp_path: Path) -> Path:
    """A probe of a healthy and a failing model, rendered."""
    fast = {"ttft_ms": 20, "itl_ms": 2, "output_tokens": 10}
    models = [
        ModelProfile(name="good", **fast),
        ModelProfile(name="server_error", faults=Faults(server_error=1), **fast),
    ]
    spec = SimulatorSpec(vendors=[Vendor(name="v", models=models)])
    sim = await start_simulator(spec)
    url = sim.urls["v"]
    cfg = parse_config(
        f"targets:\n  - {{name: steady, base_url: '{url}/v1', model: good, pricing: {PRICE}}}\n"
        f"  - {{name: broken, base_url: '{url}/v1', model: server_error, pricing: {PRICE}}}\n"
        "slo: {ttft_ms: 500, success_rate: 0.9}\n"
    )
    db = tmp_path / "assay.db"
    try:
        result = await run_probe(cfg, ProbeOptions.from_config(cfg, requests=25, concurrency=5), db)
    finally:
        await sim.stop()
    with Store(db) as store:
        write_report(store, result.run_id, tmp_path / "report", result.summaries)
    return tmp_path / "report"


def test_html_is_self_contained_and_says_what_matters(report_dir: Path) -> None:
    html = (report_dir / "index.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "no CDN or remote asset"
    assert "<script" not in html
    assert html.count("<svg") == 3  # CDF, failures, availability
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<svg.*?</svg>", "", html, flags=re.S))
    text = re.sub(r"\s+", " ", text)
    assert "Most reliable: steady (100.0% success)." in text
    assert "Within the latency &amp; success SLO (TTFT p90 ≤ 500 ms, success ≥ 90%): steady." in text
    assert "steady good · openai" in text and "broken server_error · openai" in text
    assert "0.0% 0/25" in text  # the broken target's success column
    assert "✗ fail" in text and "✓ pass" in text
    assert "server error · 25" in text  # errors-seen table: class, steady (none), broken
    assert "HTTP 500" in text


def test_markdown_table(report_dir: Path) -> None:
    md = (report_dir / "scorecard.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| steady") or line.startswith("| broken")]
    assert len(rows) == 2
    assert "| broken | server_error | – | 0.0% (0/25) |" in md
    assert "| server_error | 0 | 25 |" in md
    assert "| timeout |" not in md  # classes nobody hit are left out


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="chromium not installed")
def test_renders_in_a_real_browser(report_dir: Path, tmp_path: Path) -> None:
    assert CHROMIUM, "CI installs chromium (make browser)"
    shot = html_to_png(report_dir / "index.html", tmp_path / "shot.png", width=1200, height=1400)
    assert shot.exists(), "chromium produced no screenshot"
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (1400, 1200)
    ink = (pixels[:, :, :3].mean(axis=2) < 0.9).mean()
    assert ink > 0.03, f"page looks blank ({ink:.1%} non-white)"
    # the plots rendered: the CDF lines use the palette's first colour (blue, #2563eb)
    blue = (abs(pixels[:, :, 0] - 0x25 / 255) < 0.08) & (abs(pixels[:, :, 2] - 0xEB / 255) < 0.08)
    assert blue.sum() > 200


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="chromium not installed")
def test_pdf_is_one_page(report_dir: Path) -> None:
    pdf = html_to_pdf(report_dir / "index.html", report_dir / "scorecard.pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page(?!s)", data)) == 1
    assert not list(report_dir.glob("*.tmp*"))


def test_plots_stay_small_for_long_runs() -> None:
    """A run with a million inter-token gaps still renders an inline SVG of modest size."""
    import numpy as np

    from assay.report.plots import latency_cdf_svg
    from assay.stats import Distribution, Summarizer

    rng = np.random.default_rng(0)
    summary = Summarizer().summary("t")
    for name in summary.latency:
        summary.latency[name] = Distribution(rng.lognormal(5, 0.3, 500))
    summary.latency["itl_ms"] = Distribution(rng.lognormal(3, 0.3, 1_000_000))  # past EXACT_MAX: sketched
    svg = latency_cdf_svg([summary])
    assert len(svg) < 400_000
