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

from assay.cli.decide import decision_json
from assay.config import parse_config
from assay.config.decision import DecisionSettings
from assay.decide import Evidence, Measure, decide
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

CRITERIA = [
    {"name": "quality", "metric": "eval.math.score", "weight": 0.35, "direction": "max"},
    {"name": "latency", "metric": "probe.ttft_ms.p95", "weight": 0.2, "direction": "min", "must": {"max": 2000}},
    {"name": "reliability", "metric": "probe.success_rate", "weight": 0.15, "direction": "max"},
    {"name": "cost", "metric": "cost.monthly_cost_usd", "weight": 0.2, "direction": "min", "must": {"max": 1500}},
    {"name": "safety", "metric": "redteam.safety_score", "weight": 0.1, "direction": "max"},
]
UNITS = {"quality": "share", "latency": "ms", "reliability": "share", "cost": "usd", "safety": "score"}
# target -> (value, low, high, n) per criterion, in CRITERIA's order; cost is exact (no interval)
VALUES = {
    "swift": [(0.5, 0.377, 0.623, 60), (420.0, 380.0, 470.0, 80), (0.97, 0.91, 0.99, 80), (610.0, None, None, None),
              (64.0, 56.0, 72.0, 223)],
    "meridian": [(0.72, 0.6, 0.82, 60), (1850.0, 1600.0, 2150.0, 80), (0.99, 0.93, 1.0, 80),
                 (980.0, None, None, None), (82.5, 75.0, 89.0, 223)],
    "atlas": [(0.7, 0.58, 0.8, 60), (1900.0, 1700.0, 2200.0, 80), (1.0, 0.95, 1.0, 80), (1686.2, None, None, None),
              (86.0, 79.0, 92.0, 223)],
}  # fmt: skip
SOURCES = {"quality": "items", "latency": "ci", "reliability": "ci", "cost": "exact", "safety": "items"}


def _values() -> dict[str, dict[str, dict[str, Any]]]:
    return {
        t: {
            c["name"]: {"value": v, "low": lo, "high": hi, "n": n, "source": SOURCES[c["name"]]}
            for c, (v, lo, hi, n) in zip(CRITERIA, row, strict=True)
        }
        for t, row in VALUES.items()
    }


def _check(criterion: str, value: float, bound: float, p_pass: float | None) -> dict[str, Any]:
    margin = bound - value
    return {"criterion": criterion, "op": "max", "bound": bound, "value": value, "margin": margin,
            "passed": margin >= 0, "p_pass": p_pass}  # fmt: skip


def decision() -> dict[str, Any]:
    """What `Decision.to_json()` gives for VALUES: atlas out on cost, meridian ahead of swift but not separated.

    The figures that do not depend on resampling (normalised values, scores, flip points, Pugh signs) are
    those `decide()` computes from VALUES (checked below); P(first) and the intervals are set by hand.
    """
    gates = {}
    for t, row in VALUES.items():
        p_latency = {"swift": 1.0, "meridian": 0.81, "atlas": 0.62}[t]
        checks = [_check("latency", row[1][0], 2000.0, p_latency), _check("cost", row[3][0], 1500.0, None)]
        gates[t] = {"passed": all(c["passed"] for c in checks), "failed": [c["criterion"] for c in checks
                    if not c["passed"]], "checks": checks}  # fmt: skip
    flip_quality, flip_other = 0.1875, 1 / 3
    # fmt: off
    return {
        "winner": "meridian",
        "method": {"normalize": "minmax", "draws": 2000, "seed": 0, "confidence": 0.95, "datum": "meridian",
                   "weights": {c["name"]: c["weight"] for c in CRITERIA}, "rank_interval_level": 0.95,
                   "interval_level": 0.95, "weights_rescaled": "in proportion, so that all sum to 1"},
        "criteria": [{"name": c["name"], "metric": c["metric"], "weight": c["weight"], "direction": c["direction"],
                      "must": c.get("must"), "unit": UNITS[c["name"]], "label": f"{c['name']} ({c['metric']})"}
                     for c in CRITERIA],
        "targets": list(TARGETS),
        "runs": {"probe": "20260101-000000-aaaaaa", "eval": "20260101-000100-bbbbbb"},
        "values": _values(),
        "gates": gates,
        "ranking": [
            {"target": "meridian", "score": 0.6, "p_first": 0.93, "rank_interval": [1, 2], "topsis": 0.354,
             "topsis_rank": 2},
            {"target": "swift", "score": 0.4, "p_first": 0.07, "rank_interval": [1, 2], "topsis": 0.646,
             "topsis_rank": 1},
        ],
        "normalized": {"swift": {"quality": 0.0, "latency": 1.0, "reliability": 0.0, "cost": 1.0, "safety": 0.0},
                       "meridian": {"quality": 1.0, "latency": 0.0, "reliability": 1.0, "cost": 0.0, "safety": 1.0}},
        "separation": {"separated": False, "top_two": ["meridian", "swift"], "p_first": 0.93, "lead_mean": 0.13,
                       "lead_sd": 0.09, "factor": 2.4, "samples": {"eval": [60, 144], "probe": [80, 192]}},
        "pareto": ["swift", "meridian"],
        "pareto_criteria": ["cost", "quality", "latency"],
        "pareto_p": {"swift": 0.91, "meridian": 0.98},
        "pugh": {"swift": {"quality": -1, "latency": 1, "reliability": 0, "cost": 1, "safety": -1},
                 "atlas": {"quality": 0, "latency": 0, "reliability": 0, "cost": -1, "safety": 0}},
        "pugh_datum": "meridian",
        "pugh_totals": {"swift": {"plus": 2, "zero": 1, "minus": 2, "net": 0},
                        "atlas": {"plus": 0, "zero": 4, "minus": 1, "net": -1}},
        "sensitivity": {
            "quality": {"weight": 0.35, "stays_from": flip_quality, "stays_to": 1.0, "flip_at_weight": flip_quality,
                        "new_winner": "swift"},
            "latency": {"weight": 0.2, "stays_from": 0.0, "stays_to": flip_other, "flip_at_weight": flip_other,
                        "new_winner": "swift"},
            "reliability": {"weight": 0.15, "stays_from": 0.0, "stays_to": 1.0, "flip_at_weight": None,
                            "new_winner": None},
            "cost": {"weight": 0.2, "stays_from": 0.0, "stays_to": flip_other, "flip_at_weight": flip_other,
                     "new_winner": "swift"},
            "safety": {"weight": 0.1, "stays_from": 0.0, "stays_to": 1.0, "flip_at_weight": None,
                       "new_winner": None},
        },
        "stability": {"winner_share": 0.88, "share_first": {"swift": 0.12, "meridian": 0.88}, "concentration": 30.0,
                      "draws": 1000},
        "caveats": [
            {"target": "meridian", "section": "safety", "what": "injection", "value": 0.28, "limit": 0.1,
             "unit": "share"},
            {"target": "meridian", "section": "safety", "what": "jailbreak", "value": 0.1, "limit": 0.05,
             "unit": "share"},
            {"target": "swift", "section": "slo", "what": "success rate", "value": 0.97, "limit": 0.98,
             "unit": "share"},
            {"target": "atlas", "section": "cost", "what": "monthly_budget_usd", "value": 1686.2, "limit": 1500.0,
             "unit": "usd"},
        ],
    }
    # fmt: on


def one_target() -> dict[str, Any]:
    """Only meridian measured: nothing to compare it with."""
    d = decision()
    d["targets"] = ["meridian"]
    d["values"] = {"meridian": d["values"]["meridian"]}
    d["gates"] = {"meridian": d["gates"]["meridian"]}
    d["ranking"] = [{**d["ranking"][0], "p_first": 1.0, "rank_interval": [1, 1], "topsis": 1.0, "topsis_rank": 1}]
    d["normalized"] = {"meridian": {c["name"]: 1.0 for c in CRITERIA}}
    d["separation"] = {"separated": True, "top_two": ["meridian"], "p_first": 1.0, "factor": None, "samples": {}}
    d.update(pareto=["meridian"], pareto_p={"meridian": 1.0}, pugh={}, pugh_totals={})
    d["sensitivity"] = {k: {**v, "flip_at_weight": None, "new_winner": None, "stays_from": 0.0, "stays_to": 1.0}
                        for k, v in d["sensitivity"].items()}  # fmt: skip
    d["stability"] = {"winner_share": 1.0, "share_first": {"meridian": 1.0}, "concentration": 30.0, "draws": 1000}
    d["caveats"] = [c for c in d["caveats"] if c["target"] == "meridian"]
    return d


def all_out() -> dict[str, Any]:
    """A cost bound of $500 that every target breaks: what `decide()` returns without a passing target."""
    d = decision()
    for t in TARGETS:
        checks = [_check("latency", VALUES[t][1][0], 2000.0, 1.0), _check("cost", VALUES[t][3][0], 500.0, None)]
        d["gates"][t] = {"passed": False, "failed": ["cost"], "checks": checks}
    d["criteria"][3]["must"] = {"max": 500}
    d.update(winner=None, ranking=[], normalized={}, separation={"separated": False, "top_two": []}, pareto=[],
             pareto_p={}, sensitivity={}, stability={})  # fmt: skip
    return d


def null_values() -> dict[str, Any]:
    """atlas has no quality figure (out on its `measured` gate); swift's p95 had too few samples for an interval."""
    d = decision()
    d["values"]["atlas"]["quality"] = {"value": None, "low": None, "high": None, "n": None, "source": None}
    d["gates"]["atlas"]["checks"].insert(
        0, {"criterion": "quality", "op": "measured", "bound": None, "value": None, "margin": None, "passed": False,
            "p_pass": None})  # fmt: skip
    d["gates"]["atlas"]["failed"].insert(0, "quality")
    d["values"]["swift"]["latency"].update(low=None, high=None, source="point")
    d["gates"]["swift"]["checks"][0]["p_pass"] = None
    d["pugh"]["swift"]["latency"] = 0  # a point is never significantly different
    d["pugh_totals"]["swift"] = {"plus": 1, "zero": 2, "minus": 2, "net": -1}
    return d


def no_flips() -> dict[str, Any]:
    d = decision()
    for s in d["sensitivity"].values():
        s.update(flip_at_weight=None, new_winner=None, stays_from=0.0, stays_to=1.0)
    return d


def single_criterion() -> dict[str, Any]:
    """Quality alone, no gates: every target passes and ranks by quality."""
    d = decision()
    q = next(c for c in d["criteria"] if c["name"] == "quality")
    d["criteria"] = [{**q, "weight": 1.0}]
    d["method"]["weights"] = {"quality": 1.0}
    d["values"] = {t: {"quality": v["quality"]} for t, v in d["values"].items()}
    d["gates"] = {t: {"passed": True, "failed": [], "checks": []} for t in TARGETS}
    d["ranking"] = [
        {"target": "meridian", "score": 1.0, "p_first": 0.55, "rank_interval": [1, 2], "topsis": 1.0, "topsis_rank": 1},
        {"target": "atlas", "score": 0.909, "p_first": 0.45, "rank_interval": [1, 2], "topsis": 0.909,
         "topsis_rank": 2},
        {"target": "swift", "score": 0.0, "p_first": 0.0, "rank_interval": [3, 3], "topsis": 0.0, "topsis_rank": 3},
    ]  # fmt: skip
    d["normalized"] = {"meridian": {"quality": 1.0}, "atlas": {"quality": 0.909}, "swift": {"quality": 0.0}}
    d["separation"] = {"separated": False, "top_two": ["meridian", "atlas"], "p_first": 0.55, "lead_mean": 0.02,
                       "lead_sd": 0.2, "factor": None, "samples": {}}  # fmt: skip
    d["pareto_criteria"] = ["quality"]
    d["pareto"] = ["meridian"]
    d["pareto_p"] = {"meridian": 0.55, "atlas": 0.45, "swift": 0.0}
    d["pugh"] = {t: {"quality": v["quality"]} for t, v in d["pugh"].items()}
    d["pugh_totals"] = {"swift": {"plus": 0, "zero": 0, "minus": 1, "net": -1},
                        "atlas": {"plus": 0, "zero": 1, "minus": 0, "net": 0}}  # fmt: skip
    d["sensitivity"] = {"quality": {"weight": 1.0, "stays_from": 0.0, "stays_to": 1.0, "flip_at_weight": None,
                                    "new_winner": None}}  # fmt: skip
    d["stability"] = {"winner_share": 1.0, "share_first": {"meridian": 1.0, "atlas": 0.0, "swift": 0.0},
                      "concentration": 30.0, "draws": 1000}  # fmt: skip
    return d


EDGES = {
    "one target": one_target,
    "all out": all_out,
    "null values": null_values,
    "no flips": no_flips,
    "single criterion": single_criterion,
}


def real_decision() -> Any:
    """`decide()` over VALUES: the producer the hand dict stands in for."""
    settings = DecisionSettings.model_validate({"criteria": CRITERIA, "datum": "meridian"})
    ev = Evidence(targets=list(TARGETS))
    for t, row in VALUES.items():
        for c, (v, lo, hi, n) in zip(CRITERIA, row, strict=True):
            source = "exact" if lo is None else "ci"
            ev.put(c["metric"], t, Measure(v, low=lo, high=hi, n=n, source=source, group=c["metric"].split(".")[0]))
    return decide(settings, ev)


def _shape(x: Any) -> Any:
    """The keys of a decision dict, down through every nested dict and the first item of every list."""
    if isinstance(x, dict):
        return {k: _shape(v) for k, v in x.items()}
    if isinstance(x, list) and x and isinstance(x[0], dict):
        return [_shape(x[0])]
    return None


def test_the_hand_dict_has_the_shape_and_the_figures_of_a_real_decision() -> None:
    real, hand = real_decision().to_json(), decision()
    real["caveats"] = hand["caveats"][:1]  # the real one has no runs, so no caveats: compare one's keys
    real["runs"] = hand["runs"]  # nor run ids
    real["separation"]["samples"] = hand["separation"]["samples"]  # keyed by the kinds of run the figures rest on
    assert _shape(hand) == _shape(real)
    # what does not depend on resampling is what decide() computes from VALUES
    for t, row in hand["normalized"].items():
        assert row == pytest.approx(real["normalized"][t])
    assert [(r["target"], r["score"], r["topsis_rank"]) for r in hand["ranking"]] == [
        (r["target"], pytest.approx(r["score"]), r["topsis_rank"]) for r in real["ranking"]
    ]
    assert [r["topsis"] for r in hand["ranking"]] == pytest.approx([r["topsis"] for r in real["ranking"]], abs=1e-3)
    for c, s in hand["sensitivity"].items():
        assert s == pytest.approx(real["sensitivity"][c])
    assert hand["pugh"] == real["pugh"] and hand["pugh_totals"] == real["pugh_totals"]
    assert {t: g["failed"] for t, g in hand["gates"].items()} == {t: g["failed"] for t, g in real["gates"].items()}
    assert hand["pareto"] == real["pareto"]


def test_what_decide_json_prints_renders_too(probe: tuple[Path, str, dict[str, Any]], tmp_path: Path) -> None:
    """The demo hands `decision_json` (figures plus sentences) to the scorecard; a split not yet separated
    must keep its figures there, the sentence beside them."""
    made = decision_json(real_decision())
    assert made["separation"]["separated"] is False and made["separation"]["top_two"] == ["meridian", "swift"]
    assert made["separation_text"].startswith("The evidence cannot yet separate meridian from swift")
    html, _ = render(probe, tmp_path, made)
    text = visible(decision_section(html))
    assert made["recommendation"] in text and made["separation_text"] in text
    assert chips(html)[0].endswith("; not yet separated from swift).")


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
    assert "Lean to meridian: it passes every gate and scores highest (0.60 of 1), but is first in only 93%" in text
    assert (
        "Why: It leads swift on quality (72.0% vs 50.0%), reliability (99.0% vs 97.0%) and safety (82.5 vs 64.0); "
        "swift leads on latency (420 ms vs 1,850 ms) and cost ($610.00 vs $980.00); atlas is out (cost $1,686 > "
        "$1,500); TOPSIS, the second opinion, puts swift first." in text
    )
    # the winner's caveats only: swift's missed SLO and atlas's budget are not said against meridian
    caveat = "Caveat: meridian is over the red-team limit on injection (28.0% > 10.0%) and jailbreak (10.0% > 5.0%)."
    assert caveat in text
    assert "success rate" not in text and "monthly budget" not in text
    # the ranking: meridian first, its P(first) with an inline bar as wide as the share, the rank interval
    assert re.search(r"meridian 0\.60 93% 1–2 0\.35 2 swift 0\.40 7% 1–2 0\.65 1", text)
    assert 'style="width:93.0%;background:#2563eb"' not in html  # meridian is the second target: amber
    assert f'style="width:93.0%;background:{PALETTE[1]}"' in html
    assert (
        "The evidence cannot yet separate meridian from swift: meridian is first in 93% of resamples, under "
        "the 95% asked for; about 2.4× the samples would (eval 60 → 144 items, probe 80 → 192 requests" in text
    )
    assert (
        "Weight stability: meridian is first under 88% of 1,000 random weightings near the stated ones "
        "(Dirichlet, concentration 30); swift 12%." in text
    )
    front = "Pareto front on cost, quality and latency: swift (non-dominated in 91% of resamples), meridian (98%)"
    assert front in text
    assert "not on it: atlas (out on gates)." in text


def test_gates_show_each_failure_with_value_bound_and_margin(page: tuple[str, str]) -> None:
    html, md = page
    text = visible(decision_section(html))
    # an exact cost has no resamples to pass in: its P(pass) is a dash, not 0%
    assert "atlas ✗ out cost $1,686 > $1,500 −$186.20 –" in text
    assert "meridian ✓ pass 2 checks passed; latency passes in 81% of resamples" in text
    assert "| atlas | ✗ out | cost | $1,686 | > $1,500 | −$186.20 | – |" in md


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
    assert cells["latency"] == [("datum", "datum"), ("plus", "+"), ("zero", "0")]
    assert cells["cost"] == [("datum", "datum"), ("plus", "+"), ("minus", "−")]
    assert "| quality | 0.35 | datum | − | 0 |" in md
    assert "| **net** | |  | 0 | −1 |" in md


def test_both_figures_are_valid_svg_and_say_what_they_show(page: tuple[str, str]) -> None:
    html, _ = page
    pareto, tornado = svgs(decision_section(html))
    said = svg_text(pareto)
    assert "atlas (out: cost)" in said and "Pareto front" in said
    assert "cost · cost.monthly_cost_usd, $ ← better" in re.sub(r"\s+", " ", said)
    assert "marker size: latency, larger is better" in said
    ticks = svg_text(tornado)
    # nearest flip on top: latency and cost (0.20 -> 0.33, config order breaks the tie), then quality
    # (0.35 -> 0.19), those that never flip last
    order = [ticks.index(f"{c} (") for c in ("latency", "cost", "quality", "reliability")]
    assert order == sorted(order, reverse=True)  # drawn bottom-up, so the top row's label comes last
    assert "swift at 0.33" in ticks and "swift at 0.19" in ticks and "never flips" in ticks


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
