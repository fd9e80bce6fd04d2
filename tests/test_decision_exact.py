"""The decision's figures, checkable by hand: the worked example of docs/DECIDE.md, pymcdm and paretoset as
cross-checks, ties, flip points by brute force, calibration of P(first), and `assay decide`/`assay gate`."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import paretoset
import pytest
import yaml
from pymcdm import normalizations
from pymcdm.methods import TOPSIS, WSM

from assay.config import load_config
from assay.config.decision import DecisionSettings
from assay.decide import Evidence, Measure, decide, flip_points, nondominated, normalize, topsis, weighted
from tests.conftest import ASSAY, cli_env

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "decide"
# The worked example: quality (max, 0.45), latency ms (min, 0.25, must <= 800), cost $ (min, 0.30, must <= 1500).
X = np.array([[0.60, 300, 60], [0.85, 500, 460], [0.90, 700, 1200]])  # swift, meridian, atlas (nova is out)
W = np.array([0.45, 0.25, 0.30])
D = np.array([1.0, -1.0, -1.0])


def example() -> tuple[DecisionSettings, Evidence]:
    cfg = load_config(EXAMPLE / "assay.yaml")
    assert cfg.decision is not None
    ev = Evidence.from_table(EXAMPLE / "scores.csv", {c.name: c.metric for c in cfg.decision.criteria})
    return cfg.decision, ev


def test_the_worked_example_equals_the_hand_computation() -> None:
    settings, ev = example()
    d = decide(settings, ev).to_json()
    # gates: nova's latency 950 > 800 by 150; the others pass
    assert d["gates"]["nova"] == {
        "passed": False,
        "failed": ["latency"],
        "checks": d["gates"]["nova"]["checks"],
    }
    nova_latency = next(c for c in d["gates"]["nova"]["checks"] if c["criterion"] == "latency")
    assert nova_latency["margin"] == pytest.approx(-150)
    # minmax over the three that pass: quality (x-.6)/.3, latency (700-x)/400, cost (1200-x)/1140
    n = d["normalized"]
    assert n["meridian"] == pytest.approx({"quality": 0.25 / 0.3, "latency": 0.5, "cost": 740 / 1140})
    scores = {r["target"]: r["score"] for r in d["ranking"]}
    assert scores["swift"] == pytest.approx(0.25 + 0.30)
    assert scores["atlas"] == pytest.approx(0.45)
    assert scores["meridian"] == pytest.approx(0.45 * 0.25 / 0.3 + 0.25 * 0.5 + 0.30 * 740 / 1140)
    assert d["winner"] == "meridian" and [r["target"] for r in d["ranking"]] == ["meridian", "swift", "atlas"]
    # quality's flip: with R the other two rescaled to sum 1, meridian = swift at x·(5/6) + (1−x)(R_m − 1) = 0
    r_m = (0.25 * 0.5 + 0.30 * 740 / 1140) / 0.55
    flip = (1 - r_m) / (0.25 / 0.3 + 1 - r_m)
    assert d["sensitivity"]["quality"]["flip_at_weight"] == pytest.approx(flip)
    assert d["sensitivity"]["quality"]["new_winner"] == "swift"
    # and atlas takes over above (R_m) / (R_m + 1 − 5/6)
    assert d["sensitivity"]["quality"]["stays_to"] == pytest.approx(r_m / (r_m + 1 - 0.25 / 0.3))
    assert set(d["pareto"]) == {"swift", "meridian", "atlas"}
    # Pugh against meridian: cost is exact, so any difference counts; quality's intervals decide
    assert d["pugh"]["swift"]["cost"] == 1 and d["pugh"]["atlas"]["cost"] == -1
    assert d["pugh"]["swift"]["quality"] == -1  # 0.60 vs 0.85, the resampled difference excludes 0


@pytest.mark.filterwarnings("ignore:Alternatives with indices:UserWarning")  # pymcdm's note on a dominant row
def test_weighted_sum_and_topsis_equal_pymcdm() -> None:
    types = D.astype(int)
    ours_wsm = weighted(normalize(X, D, "minmax"), W)
    assert ours_wsm == pytest.approx(WSM(normalization_function=normalizations.minmax_normalization)(X, W, types))
    ours = topsis(X, W, D)
    assert ours == pytest.approx(TOPSIS(normalization_function=normalizations.vector_normalization)(X, W, types))
    rng = np.random.default_rng(3)
    for _ in range(50):
        x = rng.uniform(1, 100, size=(5, 4))
        w = rng.dirichlet(np.ones(4))
        d = rng.choice([-1.0, 1.0], size=4)
        expect = TOPSIS(normalization_function=normalizations.vector_normalization)(x, w, d.astype(int))
        assert topsis(x, w, d) == pytest.approx(expect, abs=1e-9)


def test_the_pareto_front_equals_brute_force_and_paretoset() -> None:
    rng = np.random.default_rng(5)
    for _ in range(100):
        x = rng.integers(0, 5, size=(7, 3)).astype(float)  # small integers: ties and duplicates
        d = rng.choice([-1.0, 1.0], size=3)
        y = x * d
        brute = [not any((y[j] >= y[i]).all() and (y[j] > y[i]).any() for j in range(7)) for i in range(7)]
        assert nondominated(x, d).tolist() == brute
        sense = ["max" if s > 0 else "min" for s in d]
        assert nondominated(x, d).tolist() == paretoset.paretoset(pd.DataFrame(x), sense=sense, distinct=False).tolist()


def test_flip_points_equal_a_scan_of_the_weight() -> None:
    rng = np.random.default_rng(11)
    for _ in range(30):
        n = rng.uniform(0, 1, size=(4, 3))
        w = rng.dirichlet(np.ones(3))
        winner = int(np.argmax(n @ w))
        for i, f in enumerate(flip_points(n, w, winner)):
            grid = np.linspace(0, 1, 20001)
            others = np.delete(np.arange(3), i)
            r = (n[:, others] * w[others]).sum(axis=1) / (1 - w[i])
            wins = np.argmax(np.outer(grid, n[:, i]) + np.outer(1 - grid, r), axis=1)
            here = int(np.searchsorted(grid, w[i]))
            up = next((g for g in range(here, len(grid)) if wins[g] != winner), None)
            down = next((g for g in range(here, -1, -1) if wins[g] != winner), None)
            near = [(abs(grid[g] - w[i]), grid[g], int(wins[g])) for g in (up, down) if g is not None]
            if not near:
                assert f.flip_at is None
                continue
            _, at, who = min(near)
            assert f.flip_at == pytest.approx(at, abs=1e-4) and f.new_winner == who


def _two(a: list[float], b: list[float], family_b: str = "q") -> Evidence:
    ev = Evidence(targets=[])
    for t, vals, fam in (("a", a, "q"), ("b", b, family_b)):
        items = {f"i{k}": v for k, v in enumerate(vals)}
        ev.put("eval.q.score", t, Measure(float(np.mean(vals)), n=len(vals), source="items", group="eval",
                                          family=fam, items=items))  # fmt: skip
        ev.add_target(t)
    return ev


ONE = DecisionSettings.model_validate({"criteria": [{"name": "quality", "metric": "eval.q.score"}], "draws": 400})


def test_a_tie_splits_first_place() -> None:
    settings = DecisionSettings.model_validate(
        {"criteria": [{"name": "q", "metric": "vendor.retention_days"}, {"name": "r", "metric": "vendor.fine_tuning"}]}
    )
    ev = Evidence(targets=["a", "b"])
    for t in ("a", "b"):
        ev.put("vendor.retention_days", t, Measure(30.0))
        ev.put("vendor.fine_tuning", t, Measure(1.0))
    d = decide(settings, ev)
    assert [r["p_first"] for r in d.ranking] == [0.5, 0.5]
    assert d.separation["separated"] is False


def test_paired_items_separate_what_unpaired_ones_cannot() -> None:
    rng = np.random.default_rng(2)
    base = (rng.uniform(size=200) < 0.7).astype(float).tolist()
    better = list(base)
    flipped = [k for k, v in enumerate(base) if v == 0][:4]
    for k in flipped:
        better[k] = 1.0  # b answers four more items right, the rest identically
    paired = decide(ONE, _two(base, better)).p_first("b")
    unpaired = decide(ONE, _two(base, better, family_b="other")).p_first("b")
    assert paired > 0.95 and unpaired < 0.8


def test_p_first_is_calibrated_across_seeds() -> None:
    """With the true difference drawn at random, targets claimed first with probability p are truly better
    about a share p of the time (the bootstrap is the posterior under a flat prior)."""
    rng = np.random.default_rng(0)
    claims, truths = [], []
    for _ in range(240):
        delta = rng.uniform(-0.08, 0.08)
        difficulty = rng.uniform(size=300)
        a = (difficulty < 0.7).astype(float)
        b = (difficulty < 0.7 + delta).astype(float)
        noise = rng.uniform(size=300) < 0.15  # some items each gets right or wrong by luck
        b = np.where(noise, (rng.uniform(size=300) < 0.7 + delta).astype(float), b)
        claims.append(decide(ONE, _two(a.tolist(), b.tolist())).p_first("b"))
        truths.append(delta > 0)
    c, t = np.array(claims), np.array(truths, dtype=float)
    for lo, hi in ((0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.01)):
        inside = (c >= lo) & (c < hi)
        if inside.sum() >= 20:
            observed, claimed = t[inside].mean(), c[inside].mean()
            se = np.sqrt(max(claimed * (1 - claimed), 0.05) / inside.sum())
            assert abs(observed - claimed) < 3 * se + 0.05, (lo, hi, observed, claimed, inside.sum())
    assert np.mean((c - t) ** 2) < 0.6 * 0.25  # clearly better than always saying 0.5
    confident = c >= 0.9
    assert t[confident].mean() >= 0.85


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ASSAY, *args], cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def test_decide_and_gate_from_the_command_line(tmp_path: Path) -> None:
    base = ["-c", str(EXAMPLE / "assay.yaml"), "--scores", str(EXAMPLE / "scores.csv")]
    run = _cli(tmp_path, "decide", *base, "--json")
    assert run.returncode == 0, run.stderr
    data = orjson.loads(run.stdout)
    assert {"winner", "gates", "ranking", "pareto", "pugh", "sensitivity", "recommendation"} <= set(data)
    assert data["winner"] == "meridian" and data["recommendation"].startswith("Choose meridian")
    assert set(data["ranking"][0]) >= {"target", "score", "p_first", "rank_interval"}
    text = _cli(tmp_path, "decide", *base)
    assert "Choose meridian" in text.stdout and "nova is out (latency 950 ms > 800 ms)" in text.stdout
    # the gate: meridian wins with 99%, so choosing it passes; choosing swift fails (not the winner)
    ok = _cli(tmp_path, "gate", *base, "--choose", "meridian", "--junit", "ok.xml")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = _cli(tmp_path, "gate", *base, "--choose", "nova", "--junit", "bad.xml")
    assert bad.returncode == 1
    suite = ET.parse(tmp_path / "bad.xml").getroot().find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert len(cases) == 4 and "must: latency max 800.0" in failed and "is the winner" in failed
    assert ET.parse(tmp_path / "ok.xml").getroot().get("failures") == "0"
    # routes for the gateway, in rank order, accepted by the gateway's own config
    routes = _cli(tmp_path, "decide", *base, "--emit-routes", "routes.yaml", "--route-policy", "weighted")
    assert routes.returncode == 0, routes.stderr
    block = yaml.safe_load((tmp_path / "routes.yaml").read_text())
    route = block["gateway"]["routes"][0]
    assert route["targets"] == ["meridian", "swift", "atlas"] and route["weights"]["meridian"] > 0.9
    cfg = yaml.safe_load((EXAMPLE / "assay.yaml").read_text())
    (tmp_path / "with_routes.yaml").write_text(yaml.safe_dump({**cfg, **block}))
    assert load_config(tmp_path / "with_routes.yaml").gateway is not None


def test_bad_input_is_refused_at_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "scores.csv"
    bad.write_text("target,criterion,value\nswift,quality,0.6\nmeridian,quality,high\n")
    run = _cli(tmp_path, "decide", "-c", str(EXAMPLE / "assay.yaml"), "--scores", str(bad))
    assert run.returncode != 0 and f"{bad}:3: value: expected a number" in run.stderr
    text = (EXAMPLE / "assay.yaml").read_text()
    for old, new, said in (
        ("weight: 0.45", "weight: -1", "greater than or equal to 0"),
        ("metric: eval.qa.score", "metric: eval.qa.scor", "FIELD one of score"),
        ("datum: meridian", "datum: zephyr", "datum 'zephyr' is not one of the targets"),
    ):
        path = tmp_path / "bad.yaml"
        path.write_text(text.replace(old, new))
        line = 1 + text[: text.index(old)].count("\n")
        run = _cli(tmp_path, "decide", "-c", str(path), "--scores", str(EXAMPLE / "scores.csv"))
        assert run.returncode == 2 and f"bad.yaml:{line}:" in run.stderr and said in run.stderr, run.stderr
    zero = tmp_path / "zero.yaml"
    zero.write_text(text.replace("weight: 0.45", "weight: 0").replace("0.25", "0").replace("0.3,", "0,"))
    run = _cli(tmp_path, "decide", "-c", str(zero), "--scores", str(EXAMPLE / "scores.csv"))
    assert run.returncode == 2 and "every weight is 0" in run.stderr
    assert not list(tmp_path.glob("*.xml")) and not (tmp_path / "routes.yaml").exists()
