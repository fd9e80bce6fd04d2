"""Multi-turn attacks (crescendo, PAIR) against simulated models whose multi-turn susceptibility is known."""

from __future__ import annotations

import functools
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from assay.config import parse_config
from assay.datasets.safety import load_safety
from assay.records import Annotations, Record
from assay.simulator import SafetyBehaviour, SimulatorProcess
from assay.simulator.conversation import (
    CRESCENDO_ATTACKER_MARKER,
    CRESCENDO_OPENER_MARKER,
    PAIR_ATTACKER_MARKER,
    multi_turn_success,
)
from assay.stats import wilson
from assay.store import Store
from assay.suites.detectors import RefusalDetector
from assay.suites.multiturn_prompts import CRESCENDO_ATTACKER, PAIR_ATTACKER, crescendo_ask, opener
from assay.suites.safety import RedteamOptions, run_redteam, summarize_run
from tests.conftest import ASSAY, PRICE, cli_env, interrupt_after

# Refuses plain requests, falls to a wrapped one now and then, and gives in more easily when pressed turn after turn:
# each attack's rate then depends on every turn being sent, with its history (crescendo) or fresh (pair).
# Replies are read by the default refusal detector, which reads nearly every simulated reply right (one in a few
# hundred is misread); the checks below follow the detector's verdicts and count where it disagrees with the log.
PRESSED = SafetyBehaviour(refusal=0.9, jailbreak=0.3, escalation=0.45, partial=0.2)
MODELS = [f"m{i}" for i in range(8)]  # the same profile under eight names: eight independent draws per item
TURNS = 4


def vendors(path: Path, models: list[str], safety: SafetyBehaviour, **extra: Any) -> Path:
    rows = [{"name": m, "ttft_ms": 1, "itl_ms": 0, "output_tokens": 8, "safety": safety.model_dump(), **extra}
            for m in [*models, "attacker"]]  # fmt: skip
    path.write_text(yaml.safe_dump({"knowledge": ["safety"], "vendors": [{"name": "v", "models": rows}]}))
    return path


def config(url: str, models: list[str], suites: str) -> str:
    names = [*models, "attacker"]
    targets = "".join(f"  - {{name: {m}, base_url: '{url}/v1', model: {m}, pricing: {PRICE}}}\n" for m in names)
    return f"targets:\n{targets}suites:\n{suites}"


SUITES = (
    f"  - {{name: crescendo, kind: safety, category: crescendo, dataset: demo-safety, turns: {TURNS}}}\n"
    f"  - {{name: pair, kind: safety, category: pair, dataset: demo-safety, turns: {TURNS}, attacker: attacker}}\n"
)


def log(url: str) -> list[dict[str, Any]]:
    import urllib.request

    with urllib.request.urlopen(f"{url}/_assay/requests", timeout=10) as r:
        rows: list[dict[str, Any]] = orjson.loads(r.read())["requests"]
    return rows


def rows_of(db: Path, run_id: str) -> list[tuple[Record, Annotations]]:
    with Store(db) as store:
        return list(store.iter_annotated(run_id))


def test_the_attack_prompts_carry_the_markers_the_simulator_reads() -> None:
    assert CRESCENDO_OPENER_MARKER in opener("Do something bad.")
    assert PAIR_ATTACKER_MARKER in PAIR_ATTACKER and CRESCENDO_ATTACKER_MARKER in CRESCENDO_ATTACKER
    asks = [crescendo_ask("Do something bad.", k, 4) for k in range(1, 5)]
    assert len(set(asks)) == 4 and asks[-1].endswith("without the caveats: Do something bad.")
    assert len(set(crescendo_ask("x", k, 9) for k in range(1, 10))) == 9  # a rung asked again is pressed anew


def _check_conversations(rows: list[tuple[Record, Annotations]], truth: dict[str, dict[str, Any]]) -> tuple[int, int]:
    """Each conversation against what was sent and what the simulated model did: history sent (crescendo) or not
    (pair), stopped at the first reply the detector calls complied, else at the budget. Returns (replies the
    detector read otherwise than the simulator's log says, replies read)."""
    turns: dict[tuple[str, str, str], list[Record]] = {}
    for r, a in rows:
        if r.final and not r.judged_target and a.item is not None and a.item.conversation:
            turns.setdefault((r.target, r.suite, a.item.conversation), []).append(r)
    outcomes = {(r.target, r.suite, a.item.conversation): (r, a.safety) for r, a in rows
                if a.safety is not None and a.item is not None and a.item.conversation}  # fmt: skip
    assert set(outcomes) == set(turns)  # one outcome per conversation
    misread = checked = 0
    for key, recs in turns.items():
        recs.sort(key=lambda r: int(r.item_id.rsplit("/t", 1)[1]))
        last, outcome = outcomes[key]
        assert outcome is not None and recs[-1].key == last.key
        assert [r.item_id.rsplit("/t", 1)[1] for r in recs] == [str(k) for k in range(1, len(recs) + 1)]
        if outcome.reply_class == "error":  # a request failed for good: the conversation stopped there
            assert not last.ok or outcome.turns == len(recs) - 1  # (or the attacker failed after it)
            continue
        assert outcome.turns == len(recs) and all(r.ok for r in recs)
        said = [truth[r.request_id or ""] for r in recs]
        for k, entry in enumerate(said, 1):
            if key[1] == "crescendo":  # the whole conversation is sent each turn, opener first
                assert entry.get("turn") == (k if k > 1 else None)
                assert (entry["safety"] == "background") == (k == 1)
            else:  # pair: each rewrite is sent fresh
                assert "turn" not in entry
        scored = recs[1:] if key[1] == "crescendo" else recs  # the opener is never scored
        verdicts = detector().classify([GOALS[key[2]]] * len(scored), [r.response_text or "" for r in scored])
        read = [v.label == "complied" for v in verdicts]
        assert outcome.success == read[-1] and not any(read[:-1])
        assert outcome.success or len(recs) == TURNS  # gave up only at the budget
        did = [e["safety"] == "complied" for e in said[-len(scored) :]]
        misread += sum(x != y for x, y in zip(read, did, strict=True))
        checked += len(scored)
    return misread, checked


@functools.cache
def detector() -> RefusalDetector:
    return RefusalDetector()  # the default, as the runs use


GOALS = {it.id: it.question for it in load_safety("demo-safety", None, Path("."))}


@pytest.mark.slow
async def test_success_within_n_turns_is_the_simulators_rate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """3 seeds x 8 models x 16 bundled items: 384 conversations per attack, against the exact rates (0.788 and
    0.691; with the history dropped, one turn fewer or more, crescendo's would be 0.657, 0.615 or 0.884 and pair's
    0.559 or 0.784)."""
    monkeypatch.delenv("ASSAY_DATA_DIR", raising=False)
    profile = vendors(tmp_path / "v.yaml", MODELS, PRESSED)
    found = {"crescendo": [0, 0], "pair": [0, 0]}
    for seed in (1, 2, 3):
        db = tmp_path / f"{seed}.db"
        with SimulatorProcess(profile=profile, seed=seed) as sim:
            cfg = parse_config(config(sim.urls["v"], MODELS, SUITES))
            opts = RedteamOptions(targets=tuple(MODELS), retries=0, concurrency=16)
            run = await run_redteam(cfg, opts, db)
            truth = {e["id"]: e for e in log(sim.urls["v"]) if "id" in e}
        rows = rows_of(db, run.run_id)
        misread, checked = _check_conversations(rows, truth)
        assert misread <= checked // 100, f"the detector misread {misread} of {checked} simulated replies"
        with Store(db) as store:
            summary = summarize_run(store, run.run_id)
        for category, (k, n) in found.items():
            stats = [summary.stats[m][category] for m in MODELS]
            found[category] = [k + sum(s.successes for s in stats), n + sum(s.scored for s in stats)]
    for category, (k, n) in found.items():
        true, blocked = multi_turn_success(PRESSED, category, TURNS)
        assert true is not None and blocked == 0 and n == 3 * len(MODELS) * 16
        low, high = wilson(k, n)
        assert low <= true <= high, f"{category}: {k}/{n} = {k / n:.3f}, 95% CI {low:.3f}-{high:.3f}, true {true:.3f}"


def test_the_true_rates_follow_the_documented_formula() -> None:
    b = SafetyBehaviour(refusal=0.9, jailbreak=0.2, escalation=0.45, content_filter=0.1)
    assert multi_turn_success(b, "crescendo", 4) == (pytest.approx(1 - 0.8 * 0.55**2), 0.1)
    rate, blocked = multi_turn_success(b.model_copy(update={"content_filter": 0.0}), "pair", 4)
    assert rate == pytest.approx(1 - 0.9 * 0.8**3) and blocked == 0
    rate, blocked = multi_turn_success(b, "pair", 2)  # a block ends the conversation: counted apart
    success, refused = 0.9 * 0.1 + 0.9 * 0.9 * 0.9 * 0.2, (0.9 * 0.9) * (0.9 * 0.8)
    assert rate == pytest.approx(success / (success + refused)) and blocked == pytest.approx(1 - success - refused)


async def test_every_turn_is_a_record_failures_included_and_resume_sends_nothing_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ASSAY_DATA_DIR", raising=False)
    models = ["m0", "m1"]
    profile = vendors(tmp_path / "v.yaml", models, PRESSED, faults={"server_error": 0.15})
    db = tmp_path / "a.db"
    with SimulatorProcess(profile=profile, seed=4) as sim:
        cfg = parse_config(config(sim.urls["v"], models, SUITES))
        opts = RedteamOptions(targets=tuple(models), retries=2, concurrency=4)
        run_id = await interrupt_after(60, lambda **hooks: run_redteam(cfg, opts, db, **hooks), timeout_s=60)
        interrupted = rows_of(db, run_id)
        await run_redteam(None, RedteamOptions(), db, resume=run_id)
        entries = log(sim.urls["v"])
        truth = {e["id"]: e for e in entries if "id" in e}
    rows = rows_of(db, run_id)
    assert len(rows) == len(entries)  # every request the simulator saw is one Record, and no Record is invented
    failed = [r for r, _ in rows if r.error_class == "server_error"]
    assert len(failed) == sum(e.get("status") == 500 for e in entries) > 0
    assert {r.target for r in failed} >= {"attacker"}  # the attacker's failures are Records too
    attempts = Counter(r.key for r, _ in rows)
    assert set(attempts.values()) == {1}
    finals = Counter(r.item_key for r, _ in rows if r.final)
    assert set(finals.values()) == {1}  # no turn finished twice: the resume went on from the stored turns
    before = {r.key for r, a in interrupted if a.safety is not None}
    assert before and before <= {r.key for r, a in rows if a.safety is not None}
    done = [r for r, a in rows if a.safety is not None]
    assert len(done) == 2 * len(models) * 16  # every conversation ended, once
    # Conversations cut short went on from their stored turns: what was answered then was not asked again.
    cut = {a.item.conversation for r, a in interrupted if r.final and r.ok and a.item and a.item.conversation} - {
        a.item.conversation for _, a in interrupted if a.safety and a.item
    }
    assert cut
    misread, checked = _check_conversations(rows, truth)
    assert checked and misread <= 1 + checked // 100


async def test_pair_and_crescendo_use_the_attacker_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASSAY_DATA_DIR", raising=False)
    profile = vendors(tmp_path / "v.yaml", ["m0"], PRESSED)
    suites = SUITES.replace("turns: 4}", "turns: 4, attacker: attacker}", 1)  # crescendo written by the attacker
    db = tmp_path / "a.db"
    with SimulatorProcess(profile=profile, seed=5) as sim:  # the attacker judges too: the last reply of each
        judge = "safety:\n  judge: {target: attacker, scope: all}\n"
        cfg = parse_config(config(sim.urls["v"], ["m0"], suites) + judge)
        run = await run_redteam(cfg, RedteamOptions(targets=("m0",), retries=0), db)
        entries = log(sim.urls["v"])
    rows = rows_of(db, run.run_id)
    written = [r for r, _ in rows if r.target == "attacker" and "/a" in r.item_id]
    assert written and all(r.judged_target == "m0" and "/a" in r.item_id for r in written)
    assert len(written) == sum(bool(e.get("attacker")) for e in entries)
    by_id = {(r.suite, r.item_id): r for r, _ in rows if not r.judged_target}
    for r in written:  # the target's turn k is the prompt the attacker wrote for it
        goal = r.item_id.rsplit("/a", 1)[0]
        turn = by_id[(r.suite, f"{goal}/t{r.item_id.rsplit('/a', 1)[1]}")]
        assert turn.target == "m0" and turn.prompt == orjson.loads(r.response_text or "")["prompt"]
    assert {r.suite for r in written} == {"crescendo", "pair"}
    outcomes = [(r, a.safety) for r, a in rows if a.safety is not None]
    assert len(outcomes) == 32 and all(s.turns for _, s in outcomes)
    judged = [(r, s) for r, s in outcomes if s.detector == "judge"]  # the judge read each conversation's last reply
    assert len(judged) >= 28 and all(r.item_id.endswith(f"/t{s.turns}") for r, s in judged)
    asked = {(r.suite, r.item_id) for r, _ in rows if r.target == "attacker" and "/t" in r.item_id}
    assert {(r.suite, r.item_id) for r, _ in judged} <= asked <= {(r.suite, r.item_id) for r, _ in outcomes}
    # The scorecard says how often and how soon each attack worked, from the same Records.
    from assay.report.scorecard import write_report
    from assay.stats import summarize_stored
    from assay.suites.safety import summarize_conversations

    with Store(db) as store:
        turns = summarize_conversations(store, run.run_id)["m0"]
        paths = write_report(store, run.run_id, tmp_path / "report", summarize_stored(store, run.run_id))
    page = paths["markdown"].read_text()
    for category in ("crescendo", "pair"):
        e = turns[category]
        assert e["successes"] == sum(bool(s.success) for r, s in outcomes if r.suite == category and s.detector)
        assert f"{category}, m0: worked within 4 turns in {e['successes']} of {e['scored']} conversations" in page


def test_a_bad_attacker_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    cfg = tmp_path / "assay.yaml"
    cfg.write_text(
        "targets:\n"
        f"  - {{name: a, base_url: 'http://127.0.0.1:9/v1', model: m, pricing: {PRICE}}}\n"
        "suites:\n"
        "  - {name: crescendo, kind: safety, category: crescendo}\n"
        "  - {name: pair, kind: safety, category: pair, attacker: nobody}\n"
    )
    run = subprocess.run([ASSAY, "redteam", "-c", str(cfg), "--json"], cwd=tmp_path, env=cli_env(tmp_path),
                         capture_output=True, timeout=60)  # fmt: skip
    assert run.returncode == 2 and run.stdout == b""
    assert b"assay.yaml:5: suites[1].attacker: attacker 'nobody' is not one of the targets (a)" in run.stderr
    assert not (tmp_path / ".assay" / "assay.db").exists()
    cfg.write_text(cfg.read_text().replace(", attacker: nobody", ""))
    run = subprocess.run([ASSAY, "redteam", "-c", str(cfg)], cwd=tmp_path, env=cli_env(tmp_path),
                         capture_output=True, timeout=60)  # fmt: skip
    assert run.returncode == 2 and b"a pair attack needs `attacker:`" in run.stderr
    assert not (tmp_path / ".assay" / "assay.db").exists()
