"""Red-team runs against simulated vendors whose true rates are known."""

from __future__ import annotations

import subprocess
from pathlib import Path

import aiohttp
import orjson
import pytest

from assay.config import parse_config
from assay.simulator import ModelProfile, SafetyBehaviour, SimulatorSpec, Vendor, start_simulator
from assay.store import Store
from assay.suites.detectors import UNDECIDED
from assay.suites.safety import RedteamOptions, run_redteam
from assay.suites.safety_summary import summarize_safety
from tests.conftest import ASSAY, DATA_DIR, PRICE, cli_env, needs_data

TRUE = SafetyBehaviour(refusal=0.7, jailbreak=0.45, partial=0.0, over_refusal=0.3, leakage=0.5, injection=0.6,
                       misinformation=0.35, bias=0.4, bias_accuracy=0.9)  # fmt: skip
EXPECTED = {"harmful": 0.3, "jailbreak": 0.45, "injection": 0.6, "leakage": 0.5, "misinformation": 0.35,
            "bias": 0.4, "xstest": 0.3}  # fmt: skip
# What the simulator decided (its log) -> whether the attack worked, as assay must read it.
WORKED = {"complied": True, "leaked": True, "followed": True, "affirmed": True, "biased": True, "over_refused": True,
          "refused": False, "partial": False, "kept": False, "ignored": False, "refuted": False, "unbiased": False,
          "answered": False}  # fmt: skip


def spec(seed: int, **models: SafetyBehaviour | dict[str, object]) -> SimulatorSpec:
    profiles = []
    for name, b in models.items():
        extra = b if isinstance(b, dict) else {"safety": b}
        profiles.append(ModelProfile(name=name, ttft_ms={"value": 1}, itl_ms={"value": 0}, **extra))  # type: ignore[arg-type]
    return SimulatorSpec(seed=seed, vendors=[Vendor(name="v", models=profiles)], knowledge=["safety"])


def config(url: str, models: list[str], suites: str = "") -> str:
    targets = "".join(f"  - {{name: {m}, base_url: '{url}/v1', model: {m}, pricing: {PRICE}}}\n" for m in models)
    return f"targets:\n{targets}{suites}"


async def truths(url: str) -> dict[str, str]:
    async with aiohttp.ClientSession() as s, s.get(f"{url}/_assay/requests") as r:
        rows = (await r.json())["requests"]
    return {row["id"]: row["safety"] for row in rows if "safety" in row and "id" in row}


async def test_every_verdict_matches_what_the_simulated_model_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bundled attacks (no data folder): each Record's verdict equals the simulator's own decision."""
    monkeypatch.delenv("ASSAY_DATA_DIR", raising=False)  # the public sets have their own sweep (test_safety_key.py)
    sim = await start_simulator(spec(3, m=TRUE))
    try:
        cfg = parse_config(config(sim.urls["v"], ["m"]))
        run = await run_redteam(cfg, RedteamOptions(retries=0), tmp_path / "a.db")
        truth = await truths(sim.urls["v"])
    finally:
        await sim.stop()
    with Store(tmp_path / "a.db") as store:
        rows = [(r, a) for r, a in store.iter_annotated(run.run_id) if r.final]
    assert len(rows) == len(run.plan.work) and all(r.ok for r, _ in rows)
    mismatched = [(r.item_id, truth[r.request_id or ""], a.safety) for r, a in rows
                  if a.safety is None or WORKED[truth[r.request_id or ""]] != a.safety.success]  # fmt: skip
    assert not mismatched
    assert {a.item.category for _, a in rows if a.item} == {"harmful", "jailbreak", "injection", "leakage",
                                                          "misinformation", "xstest"}  # fmt: skip


async def test_errors_and_filter_blocks_are_their_own_classes(tmp_path: Path) -> None:
    flaky = {"safety": SafetyBehaviour(content_filter=0.3), "faults": {"server_error": 0.25}}
    sim = await start_simulator(spec(5, f=flaky))
    try:
        suites = "suites:\n  - {name: h, kind: safety, category: harmful, dataset: demo-safety}\n"
        cfg = parse_config(config(sim.urls["v"], ["f"], suites))
        run = await run_redteam(cfg, RedteamOptions(retries=0), tmp_path / "a.db")
        async with aiohttp.ClientSession() as s, s.get(f"{sim.urls['v']}/_assay/requests") as r:
            log = (await r.json())["requests"]
    finally:
        await sim.stop()
    with Store(tmp_path / "a.db") as store:
        rows = list(store.iter_annotated(run.run_id))
    classes = [a.safety.reply_class for _, a in rows if a.safety]
    assert classes.count("error") == sum(row.get("status") == 500 for row in log) > 0
    assert classes.count("blocked") == sum(row.get("safety") == "blocked" for row in log) > 0
    summary = summarize_safety(run.run_id, rows, cfg, list(run.plan.suites.values()), ["f"])
    st = summary.stats["f"]["harmful"]
    assert st.errors == classes.count("error") and st.blocked == classes.count("blocked")
    assert st.scored == st.n - st.errors - st.blocked - st.unscored  # neither safe nor unsafe


@pytest.mark.slow
@pytest.mark.timeout(480)  # three red-team runs of ~1,000 replies each through the embedding detector, on one thread
@needs_data("advbench", "adv_bench.prompt")
async def test_measured_rates_cover_the_true_rates_across_seeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSAY_DATA_DIR", str(DATA_DIR))
    suites = (
        "suites:\n"
        "  - {name: harmful, kind: safety, category: harmful, sample: 150}\n"
        "  - {name: jailbreak, kind: safety, category: jailbreak, sample: 150}\n"
        "  - {name: injection, kind: safety, category: injection, sample: 100}\n"
        "  - {name: leakage, kind: safety, category: leakage}\n"
        "  - {name: misinformation, kind: safety, category: misinformation, sample: 150}\n"
        "  - {name: bias, kind: safety, category: bias, sample: 300}\n"
        "  - {name: xstest, kind: safety, category: xstest, attack: over_refusal}\n"
    )
    covered, checks = 0, 0
    for seed in (1, 2, 3):
        sim = await start_simulator(spec(seed, m=TRUE))
        try:
            cfg = parse_config(config(sim.urls["v"], ["m"], suites))
            run = await run_redteam(cfg, RedteamOptions(seed=seed, concurrency=32), tmp_path / f"{seed}.db")
        finally:
            await sim.stop()
        with Store(tmp_path / f"{seed}.db") as store:
            s = summarize_safety(
                run.run_id, store.iter_annotated(run.run_id), cfg, list(run.plan.suites.values()), ["m"]
            )
        for cat, true in EXPECTED.items():
            ci = s.over_refusal_rate("m")[1] if cat == "xstest" else s.stats["m"][cat].ci95
            assert ci is not None
            checks += 1
            covered += ci[0] <= true <= ci[1]
        assert s.stats["m"]["bias"].bias is not None and s.stats["m"]["bias"].bias["accuracy_disambiguated"] > 0.8
    assert covered >= checks - 2, f"{covered} of {checks} 95% CIs cover the true rate"


def test_redteam_cli_json_contract_and_refusals(tmp_path: Path) -> None:
    from assay.simulator import SimulatorProcess

    with SimulatorProcess(seed=2) as sim:
        cfg = tmp_path / "assay.yaml"
        urls = sim.urls
        cfg.write_text(
            "targets:\n"
            f"  - {{name: swift, base_url: '{urls['swift']}/v1', model: swift-mini, pricing: {PRICE}}}\n"
            f"  - {{name: meridian, base_url: '{urls['meridian']}/v1', model: meridian-large, pricing: {PRICE}}}\n"
        )
        run = subprocess.run([ASSAY, "redteam", "-c", str(cfg), "--sample", "12", "--json"], cwd=tmp_path,
                             env=cli_env(tmp_path), capture_output=True, timeout=300)  # fmt: skip
        shown = subprocess.run([ASSAY, "redteam", "-c", str(cfg), "--sample", "6", "--target", "swift"],
                               cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr.decode()
    assert shown.returncode == 0 and shown.stdout.count(b"refusal detector: linear (n-gram") == 1
    doc = orjson.loads(run.stdout)
    assert doc["detector"]["name"] == "linear" and doc["detector"]["kappa"] > 0.8
    wider = 0
    for t in doc["targets"].values():  # the detector's error widens what it decided, not what a canary decided
        for cat in ("harmful", "jailbreak"):
            (lo, hi), (wlo, whi) = t[cat]["ci95"], t[cat]["wilson95"]
            assert lo <= wlo and hi >= whi
            wider += (hi - lo) > (whi - wlo) + 1e-9
        assert t["injection"]["ci95"] == t["injection"]["wilson95"]
    assert wider >= 1
    assert set(doc) >= {"run_id", "targets"} and set(doc["targets"]) == {"swift", "meridian"}
    for t in doc["targets"].values():
        for cat in ("harmful", "jailbreak", "injection", "leakage", "misinformation", "xstest"):
            assert set(t[cat]) >= {"n", "attack_success_rate", "refusal_rate", "ci95", "unscored", "errors"}
        assert set(t["over_refusal"]) >= {"rate", "ci95"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(cfg.read_text() + "suites:\n  - {name: x, kind: safety, category: brand}\n")
    refused = subprocess.run([ASSAY, "redteam", "-c", str(bad), "--json"], cwd=tmp_path, env=cli_env(tmp_path),
                             capture_output=True, timeout=60)  # fmt: skip
    assert refused.returncode == 2 and b"bad.yaml:5: suites[0].category" in refused.stderr and refused.stdout == b""
    reserved = tmp_path / "reserved.yaml"
    reserved.write_text(cfg.read_text() + "suites:\n  - {name: x, kind: safety, category: over_refusal}\n")
    again = subprocess.run([ASSAY, "redteam", "-c", str(reserved)], cwd=tmp_path, env=cli_env(tmp_path),
                           capture_output=True, timeout=60)  # fmt: skip
    assert again.returncode == 2 and b"set `attack: over_refusal`" in again.stderr
    runs = subprocess.run([ASSAY, "runs"], cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, timeout=60)
    assert runs.stdout.decode().count("redteam") == 2  # the two that ran; the refused ones wrote nothing


CLASS_OF = {"complied": "complied", "answered": "complied", "partial": "partial", "refused": "refused",
            "over_refused": "refused"}  # fmt: skip


@pytest.mark.parametrize("scope", ["all", "undecided"])
async def test_the_safety_judge_reviews_its_scope_and_its_verdicts_stand(tmp_path: Path, scope: str) -> None:
    """A simulated judge that rambles 30% of the time: re-asked, and right whenever it answers."""
    from assay.simulator.profiles import Answers

    judge = {"answers": Answers(judge_error=0.0, judge_unparseable=0.3)}
    sim = await start_simulator(spec(6, m=TRUE.model_copy(update={"partial": 0.4}), j=judge))
    try:
        settings = f"safety:\n  judge: {{target: j, scope: {scope}, retries: 3}}\n"
        cfg = parse_config(config(sim.urls["v"], ["m", "j"]) + settings)
        run = await run_redteam(cfg, RedteamOptions(retries=0, targets=("m",)), tmp_path / "a.db")
        truth = await truths(sim.urls["v"])
    finally:
        await sim.stop()
    with Store(tmp_path / "a.db") as store:
        rows = list(store.iter_annotated(run.run_id))
    asks = [(r, a) for r, a in rows if r.judged_target]
    assert asks and all(r.target == "j" and r.judged_target == "m" and a.safety is None for r, a in asks)
    rambled = [r for r, a in asks if r.ok and (a.verdict is None or a.verdict.verdict is None)]
    assert rambled, "a judge that rambles is asked again"
    attacks = [(r, a) for r, a in rows if r.final and not r.judged_target]
    judged = [(r, a.safety) for r, a in attacks if a.safety and a.safety.detector == "judge"]
    refusal_type = [(r, a) for r, a in attacks if a.item and a.item.attack in ("harmful", "jailbreak", "over_refusal")]
    assert judged and {r.key for r, _ in judged} <= {r.key for r, _ in refusal_type}
    for r, c in judged:  # the verdict replaced the detectors' and is the simulator's truth
        said = truth[r.request_id or ""]
        assert c.reply_class == CLASS_OF[said] and c.success == WORKED[said]
        assert c.detector_class in ("refused", "partial", "complied")
    decided = {(r.item_id, r.suite) for r, a in asks if a.verdict and a.verdict.verdict}
    assert len(decided) == len(judged)
    if scope == "all":  # every refusal-type reply went to the judge; three ramblings in a row are rare
        assert len(judged) >= len(refusal_type) - 3
    else:  # only what the detector was unsure of (its probability near the threshold)
        assert all(c.p_refusal is not None and abs(c.p_refusal - 0.5) < UNDECIDED for _, c in judged)
        asked = {(r.item_id, r.suite) for r, _ in asks}
        sure = [r for r, a in refusal_type if a.safety and a.safety.p_refusal is not None
                and abs(a.safety.p_refusal - 0.5) >= UNDECIDED]  # fmt: skip
        assert sure and not any((r.item_id, r.suite) in asked for r in sure)
    # The judge's calls are not attacks: the category counts are of m's replies only.
    s = summarize_safety(run.run_id, rows, cfg, list(run.plan.suites.values()), ["m"])
    assert sum(st.n for st in s.stats["m"].values()) == len(attacks)
    changed = sum(c.detector_class != c.reply_class for _, c in judged)
    assert s.to_json()["targets"]["m"]["judged"] == {"n": len(judged), "changed": changed}


def test_a_judge_must_be_one_of_the_targets() -> None:
    from assay.errors import ConfigError

    with pytest.raises(ConfigError, match=r"safety\.judge\.target: judge target 'nobody' is not one of the targets"):
        parse_config(config("http://127.0.0.1:9", ["m"]) + "safety:\n  judge: {target: nobody}\n")
