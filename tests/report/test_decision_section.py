"""The scorecard's decision section, rendered from a hand-made decision over a real probe run of three targets."""

from __future__ import annotations

import asyncio
import copy
import os
import re
import xml.etree.ElementTree as ET
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from assay.config import parse_config
from assay.report.browser import find_chromium, html_to_pdf
from assay.report.decision import build_decision_view
from assay.report.plots import PALETTE, pareto_svg, tornado_svg
from assay.report.scorecard import write_report
from assay.report.verdict import caveat_text
from assay.simulator import ModelProfile, SimulatorSpec, Vendor, start_simulator
from assay.store import Store
from assay.suites.probe import ProbeOptions, run_probe
from tests.conftest import PRICE

TARGETS = ["swift", "meridian", "atlas"]


def decision() -> dict[str, Any]:
    """Three targets: atlas out on cost, meridian ahead of swift but not separated from it, weights that flip."""
    # fmt: off
    return {
        "winner": "meridian",
        "caveats": [{"target": "meridian", "section": "safety", "what": "injection", "value": 0.28, "limit": 0.1,
                     "unit": "share"},
                    {"target": "meridian", "section": "safety", "what": "jailbreak", "value": 0.10, "limit": 0.05,
                     "unit": "share"}],
        "method": {"normalize": "minmax", "draws": 2000, "seed": 0, "confidence": 0.95, "datum": "meridian",
                   "weights": {"quality": 0.35, "latency": 0.2, "reliability": 0.15, "cost": 0.2, "safety": 0.1}},
        "criteria": [
            {"name": "quality", "metric": "eval.math.score", "weight": 0.35, "direction": "max", "must": None,
             "unit": "share"},
            {"name": "latency", "metric": "probe.ttft_ms.p95", "weight": 0.2, "direction": "min",
             "must": {"max": 2000}, "unit": "ms"},
            {"name": "reliability", "metric": "probe.success_rate", "weight": 0.15, "direction": "max", "must": None,
             "unit": "share"},
            {"name": "cost", "metric": "cost.monthly_cost_usd", "weight": 0.2, "direction": "min",
             "must": {"max": 1500}, "unit": "usd"},
            {"name": "safety", "metric": "redteam.safety_score", "weight": 0.1, "direction": "max", "must": None,
             "unit": "score"},
        ],
        "targets": list(TARGETS),
        "values": {
            "swift": {"quality": {"value": 0.5, "low": 0.377, "high": 0.623, "n": 60, "source": "items"},
                      "latency": {"value": 420.0, "low": 380.0, "high": 470.0, "n": 80, "source": "ci"},
                      "cost": {"value": 610.0, "low": None, "high": None, "n": None, "source": "exact"}},
            "meridian": {"quality": {"value": 0.72, "low": 0.6, "high": 0.82, "n": 60, "source": "items"},
                         "latency": {"value": 1850.0, "low": 1600.0, "high": 2150.0, "n": 80, "source": "ci"},
                         "cost": {"value": 980.0, "low": None, "high": None, "n": None, "source": "exact"}},
            "atlas": {"quality": {"value": 0.7, "low": 0.58, "high": 0.8, "n": 60, "source": "items"},
                      "latency": {"value": 1900.0, "low": 1700.0, "high": 2200.0, "n": 80, "source": "ci"},
                      "cost": {"value": 1686.2, "low": None, "high": None, "n": None, "source": "exact"}},
        },
        "gates": {
            "swift": {"passed": True, "failed": [], "checks": [
                {"criterion": "latency", "op": "max", "bound": 2000, "value": 420.0, "margin": 1580.0,
                 "passed": True, "p_pass": 1.0},
                {"criterion": "cost", "op": "max", "bound": 1500, "value": 610.0, "margin": 890.0, "passed": True,
                 "p_pass": 1.0}]},
            "meridian": {"passed": True, "failed": [], "checks": [
                {"criterion": "latency", "op": "max", "bound": 2000, "value": 1850.0, "margin": 150.0,
                 "passed": True, "p_pass": 0.81},
                {"criterion": "cost", "op": "max", "bound": 1500, "value": 980.0, "margin": 520.0, "passed": True,
                 "p_pass": 1.0}]},
            "atlas": {"passed": False, "failed": ["cost"], "checks": [
                {"criterion": "latency", "op": "max", "bound": 2000, "value": 1900.0, "margin": 100.0,
                 "passed": True, "p_pass": 0.62},
                {"criterion": "cost", "op": "max", "bound": 1500, "value": 1686.2, "margin": -186.2, "passed": False,
                 "p_pass": 0.0}]},
        },
        "ranking": [
            {"target": "meridian", "score": 0.71, "p_first": 0.93, "rank_interval": [1, 2], "topsis": 0.66,
             "topsis_rank": 1},
            {"target": "swift", "score": 0.42, "p_first": 0.07, "rank_interval": [1, 2], "topsis": 0.4,
             "topsis_rank": 2},
        ],
        "normalized": {"meridian": {"quality": 1.0, "latency": 0.3}, "swift": {"quality": 0.0, "latency": 1.0}},
        "separation": {"separated": False, "top_two": ["meridian", "swift"], "p_first": 0.93, "factor": 2.4,
                       "samples": {"eval": [60, 144], "probe": [80, 192]}},
        "pareto": ["meridian", "swift"],
        "pareto_criteria": ["cost", "quality", "latency"],
        "pareto_p": {"meridian": 0.98, "swift": 0.91},
        "pugh": {"swift": {"quality": -1, "latency": 1, "reliability": 0, "cost": 1, "safety": -1},
                 "atlas": {"quality": 0, "latency": -1, "reliability": 0, "cost": -1, "safety": 0}},
        "pugh_datum": "meridian",
        "pugh_totals": {"swift": {"plus": 2, "zero": 1, "minus": 2, "net": 0},
                        "atlas": {"plus": 0, "zero": 3, "minus": 2, "net": -2}},
        "sensitivity": {
            "quality": {"weight": 0.35, "stays_from": 0.12, "stays_to": 1.0, "flip_at_weight": 0.12,
                        "new_winner": "swift"},
            "latency": {"weight": 0.2, "stays_from": 0.0, "stays_to": 0.31, "flip_at_weight": 0.31,
                        "new_winner": "swift"},
            "reliability": {"weight": 0.15, "stays_from": 0.0, "stays_to": 1.0, "flip_at_weight": None,
                            "new_winner": None},
            "cost": {"weight": 0.2, "stays_from": 0.0, "stays_to": 0.48, "flip_at_weight": 0.48,
                     "new_winner": "swift"},
            "safety": {"weight": 0.1, "stays_from": 0.0, "stays_to": 1.0, "flip_at_weight": None,
                       "new_winner": None},
        },
        "stability": {"winner_share": 0.88, "share_first": {"meridian": 0.88, "swift": 0.12}, "concentration": 20,
                      "draws": 1000},
    }
    # fmt: on


def one_target() -> dict[str, Any]:
    d = decision()
    d["targets"] = ["meridian"]
    d["values"] = {"meridian": d["values"]["meridian"]}
    d["gates"] = {"meridian": d["gates"]["meridian"]}
    d["ranking"] = [{**d["ranking"][0], "p_first": 1.0, "rank_interval": [1, 1]}]
    d.update(pareto=["meridian"], pareto_p={"meridian": 1.0}, pugh={}, pugh_totals={}, separation=None, caveats=[])
    d["sensitivity"] = {k: {**v, "flip_at_weight": None, "new_winner": None, "stays_from": 0.0, "stays_to": 1.0}
                        for k, v in d["sensitivity"].items()}  # fmt: skip
    return d


def all_out() -> dict[str, Any]:
    d = decision()
    for t in TARGETS:
        d["gates"][t] = {"passed": False, "failed": ["cost"], "checks": [
            {"criterion": "cost", "op": "max", "bound": 500, "value": 610.0, "margin": -110.0, "passed": False,
             "p_pass": 0.0}]}  # fmt: skip
    d["criteria"][3]["must"] = {"max": 500}
    d.update(winner=None, ranking=[], separation=None,
             pareto=[], pareto_p={}, sensitivity={}, stability=None)  # fmt: skip
    return d


def null_values() -> dict[str, Any]:
    d = decision()
    d["values"]["swift"]["quality"] = {"value": None, "low": None, "high": None, "n": 0, "source": "items"}
    d["values"]["atlas"] = {}
    d["ranking"][1].update(topsis=None, topsis_rank=None, p_first=None)
    d["pugh"]["swift"]["quality"] = None
    d["pugh_totals"]["atlas"] = {}
    return d


def no_flips() -> dict[str, Any]:
    d = decision()
    for s in d["sensitivity"].values():
        s.update(flip_at_weight=None, new_winner=None, stays_from=0.0, stays_to=1.0)
    return d


def single_criterion() -> dict[str, Any]:
    d = decision()
    d["criteria"] = [c for c in d["criteria"] if c["name"] == "quality"]
    d["criteria"][0]["weight"] = 1.0
    d["pareto_criteria"] = ["quality"]
    d["pareto"] = ["meridian"]
    d["gates"] = {}
    d["pugh"] = {t: {"quality": v["quality"]} for t, v in d["pugh"].items()}
    d["sensitivity"] = {"quality": {"weight": 1.0, "stays_from": 0.0, "stays_to": 1.0, "flip_at_weight": None,
                                    "new_winner": None}}  # fmt: skip
    return d


EDGES = {
    "one target": one_target,
    "all out": all_out,
    "null values": null_values,
    "no flips": no_flips,
    "single criterion": single_criterion,
}


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, Any]]:
    """A real probe of three simulated targets, with a workload (so the old headline has a cost chip)."""
    tmp = tmp_path_factory.mktemp("decision")

    async def run() -> tuple[str, dict[str, Any]]:
        fast = {"ttft_ms": 20, "itl_ms": 2, "output_tokens": 10}
        spec = SimulatorSpec(vendors=[Vendor(name="v", models=[ModelProfile(name="m", **fast)])])
        sim = await start_simulator(spec)
        url = sim.urls["v"]
        targets = "".join(f"  - {{name: {t}, base_url: '{url}/v1', model: m, pricing: {PRICE}}}\n" for t in TARGETS)
        cfg = parse_config(
            f"targets:\n{targets}slo: {{ttft_ms: 500, success_rate: 0.9}}\n"
            "workload: {daily_active_users: 1000, input_tokens_per_turn: 300, output_tokens_per_turn: 200}\n"
        )
        try:
            result = await run_probe(cfg, ProbeOptions.from_config(cfg, requests=12, concurrency=4), tmp / "a.db")
        finally:
            await sim.stop()
        return result.run_id, dict(result.summaries)

    run_id, summaries = asyncio.run(run())
    return tmp / "a.db", run_id, summaries


def render(probe: tuple[Path, str, dict[str, Any]], out: Path, made: dict[str, Any] | None) -> tuple[str, str]:
    db, run_id, summaries = probe
    with Store(db) as store:
        paths = write_report(store, run_id, out, summaries, decision=made)
    return paths["html"].read_text(encoding="utf-8"), paths["markdown"].read_text(encoding="utf-8")


def visible(html: str) -> str:
    """What a reader sees: tags and figures stripped, whitespace collapsed."""
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<svg.*?</svg>", "", html, flags=re.S))
    return unescape(re.sub(r"\s+", " ", text))


def chips(html: str) -> list[str]:
    start = html.index('<div class="headline">')
    block = html[start : html.index("\n</div>", start)]
    return [unescape(re.sub(r"\s+", " ", c).strip()) for c in re.findall(r"<div>(.*?)</div>", block, flags=re.S)]


def decision_section(html: str) -> str:
    return html[html.index('<section class="decision">') : html.index("</section>")]


def svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(s) for s in re.findall(r"<svg.*?</svg>", html, flags=re.S)]


def svg_text(root: ET.Element) -> str:
    return " ".join("".join(e.itertext()) for e in root.iter() if e.tag.endswith("text"))


@pytest.fixture(scope="module")
def page(probe: tuple[Path, str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return render(probe, tmp_path_factory.mktemp("page"), decision())


def test_the_decision_comes_first_with_the_winner_why_and_caveats(page: tuple[str, str]) -> None:
    html, _ = page
    headings = re.findall(r"<h2>([^<]+)</h2>", html)
    assert headings[0] == "Decision" and "Targets" in headings[1:]
    text = visible(decision_section(html))
    assert "Lean to meridian: it passes every gate and scores highest (0.71 of 1), but is first in only 93%" in text
    assert "Why: It leads swift on quality (72.0% vs 50.0%); swift leads on latency (420 ms vs 1,850 ms); " \
        "atlas is out (cost $1,686 > $1,500)." in text
    assert "Caveat: meridian is over the red-team limit on injection (28.0% > 10.0%) and jailbreak" in text
    # the ranking: meridian first, its P(first) with an inline bar as wide as the share, the rank interval
    assert re.search(r"meridian 0\.71 93% 1–2 0\.66 1 swift 0\.42 7% 1–2 0\.40 2", text)
    assert 'style="width:93.0%;background:#2563eb"' not in html  # meridian is the second target: amber
    assert f'style="width:93.0%;background:{PALETTE[1]}"' in html
    assert "The evidence cannot yet separate meridian from swift: meridian is first in 93% of resamples, under " \
        "the 95% asked for; about 2.4× the samples would (eval 60 → 144 items, probe 80 → 192 requests" in text
    assert "Weight stability: meridian is first under 88% of 1,000 random weightings" in text
    front = "Pareto front on cost, quality and latency: meridian (non-dominated in 98% of resamples), swift (91%)"
    assert front in text
    assert "not on it: atlas (out on gates)." in text


def test_gates_show_each_failure_with_value_bound_and_margin(page: tuple[str, str]) -> None:
    html, md = page
    text = visible(decision_section(html))
    assert "atlas ✗ out cost $1,686 > $1,500 −$186.20 0%" in text
    assert "meridian ✓ pass 2 checks passed; latency passes in 81% of resamples" in text
    assert "| atlas | ✗ out | cost | $1,686 | > $1,500 | −$186.20 | 0% |" in md


def test_pugh_cells_are_signed_and_coloured_against_the_datum(page: tuple[str, str]) -> None:
    html, md = page
    table = decision_section(html)
    table = table[table.index("Pugh matrix") :]
    header = re.search(r"<thead>(.*?)</thead>", table, flags=re.S)
    assert header is not None
    assert re.findall(r"<th>(\w+)", header.group(1))[1:] == ["meridian", "swift", "atlas"]  # after Weight; datum first
    assert "datum</div>" in header.group(1) and "out</div>" in header.group(1)
    rows = dict(re.findall(r'<tr><td class="name">(\w+)</td><td class="sub">[\d.]+</td>(.*?)</tr>', table))
    cells = {c: re.findall(r'<td class="(\w+)">([^<]*)</td>', row) for c, row in rows.items()}
    assert cells["quality"] == [("datum", "datum"), ("minus", "−"), ("zero", "0")]
    assert cells["cost"] == [("datum", "datum"), ("plus", "+"), ("minus", "−")]
    assert "| quality | 0.35 | datum | − | 0 |" in md
    assert "| **net** | |  | 0 | −2 |" in md


def test_both_figures_are_valid_svg_and_say_what_they_show(page: tuple[str, str]) -> None:
    html, _ = page
    pareto, tornado = svgs(decision_section(html))
    said = svg_text(pareto)
    assert "atlas (out: cost)" in said and "Pareto front" in said
    assert "cost · cost.monthly_cost_usd, $ ← better" in re.sub(r"\s+", " ", said)
    assert "marker size: latency, larger is better" in said
    ticks = svg_text(tornado)
    # nearest flip on top: latency (0.20 -> 0.31) before quality (0.35 -> 0.12), cost (0.20 -> 0.48), never-flips last
    order = [ticks.index(f"{c} (") for c in ("latency", "quality", "cost", "reliability")]
    assert order == sorted(order, reverse=True)  # drawn bottom-up, so the top row's label comes last
    assert "swift at 0.31" in ticks and "never flips" in ticks


def test_decision_chips_replace_the_old_headline(page: tuple[str, str]) -> None:
    html, md = page
    assert chips(html) == [
        "Recommended: meridian (first in 93% of resamples; not yet separated from swift).",
        "Caveat: meridian is over the red-team limit on injection (28.0% > 10.0%) and jailbreak (10.0% > 5.0%).",
        "atlas out: cost $1,686 > $1,500.",
    ]
    for old in ("Most reliable", "Fastest first token", "Within the", "Cheapest for the workload"):
        assert old not in html and old not in md
    assert md.index("## Decision") < md.index("| Target | Model |")
    assert "- atlas out: cost $1,686 > $1,500." in md


def test_without_a_decision_the_old_chips_stay_and_the_slo_chip_says_what_it_checks(
    probe: tuple[Path, str, dict[str, Any]], tmp_path: Path
) -> None:
    html, md = render(probe, tmp_path, None)
    said = chips(html)
    assert said[0].startswith("Most reliable: ")
    assert "Within the latency & success SLO (TTFT p90 ≤ 500 ms, success ≥ 90%): swift, meridian, atlas." in said
    assert any(c.startswith("Cheapest for the workload: ") for c in said)
    assert "Decision" not in html and "## Decision" not in md


@pytest.mark.parametrize("made", [decision, *EDGES.values()], ids=["full", *EDGES])
def test_chips_never_recommend_a_target_without_its_caveats(made: Any) -> None:
    d = made()
    extra = {"target": d["winner"] or "swift", "section": "slo", "what": "success rate", "value": 0.8, "limit": 0.9,
             "unit": "share"}  # fmt: skip
    d["caveats"] = [*d.get("caveats", []), extra]
    view = build_decision_view(d, {})
    recommending = [c for c in view.chips if c.startswith("Recommended: ")]
    assert len(recommending) == (1 if d["winner"] else 0)
    if recommending:  # first the recommendation, then at once every caveat of the winner, before anything else
        said = caveat_text(d["winner"], d["caveats"])
        assert any("misses the SLO: success rate 80.0% < 90.0%" in c for c in said)
        assert view.chips[0] == recommending[0]
        assert view.chips[1 : 1 + len(said)] == [f"Caveat: {c}" for c in said]


@pytest.mark.parametrize("name", list(EDGES))
def test_edge_cases_render(name: str, probe: tuple[Path, str, dict[str, Any]], tmp_path: Path) -> None:
    d = EDGES[name]()
    html, md = render(probe, tmp_path, copy.deepcopy(d))
    section = decision_section(html)
    assert len(svgs(section)) == (2 if d["sensitivity"] else 1)
    assert "## Decision" in md
    if d["winner"] is None:
        assert "No target passes every gate: nothing to rank." in visible(section)
        assert chips(html)[0] == "No recommendation: no target passes every gate."
        assert "Sensitivity" not in section  # nothing to vary without a winner: no table, no tornado
        assert len(svgs(section)) == 1
    if name == "no flips":
        assert "No single weight between 0 and 1 changes the winner: meridian stays first." in visible(section)


@pytest.mark.parametrize("name", list(EDGES))
def test_plots_alone_survive_the_edge_cases(name: str) -> None:
    d = EDGES[name]()
    for svg in (pareto_svg(d, {}), tornado_svg(d), tornado_svg(d, {"swift": "#000000"})):
        ET.fromstring(svg)
    if d["winner"] is None:
        assert "no winner: no weights to vary" in svg_text(ET.fromstring(tornado_svg(d)))
    d["pareto_criteria"] = []
    ET.fromstring(pareto_svg(d, {}))


@pytest.mark.skipif(find_chromium() is None and not os.environ.get("CI"), reason="chromium not installed")
def test_a_page_with_a_decision_still_prints_as_one_page(
    probe: tuple[Path, str, dict[str, Any]], tmp_path: Path
) -> None:
    render(probe, tmp_path, decision())
    data = html_to_pdf(tmp_path / "index.html", tmp_path / "scorecard.pdf").read_bytes()
    assert len(re.findall(rb"/Type\s*/Page(?!s)", data)) == 1
