"""`assay eval` end to end against the simulator: scores, determinism, cache, resume, JSON contract."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from assay.config import parse_config
from assay.records import Record
from assay.simulator import SimulatorProcess
from assay.store import Store
from assay.suites.quality import EvalOptions, run_eval, summarize_run
from tests.conftest import ASSAY, DATA_DIR, cli_env, interrupt_after, needs_data


def config_text(urls: dict[str, str], suites: str) -> str:
    swift, atlas = urls["swift"], urls["atlas"]
    return f"""
targets:
  - {{name: swift, base_url: "{swift}/v1", model: swift-mini, pricing: {{input_per_mtok: 0.2, output_per_mtok: 0.8}}}}
  - {{name: atlas, api: anthropic, base_url: "{atlas}", model: atlas-opus,
     pricing: {{input_per_mtok: 5, output_per_mtok: 25}}}}
suites:
{suites}
"""


# Fast vendors with the demo's answer behaviour: the statistics are what is under test, not latency.
PROFILE = """
vendors:
  - name: swift
    models:
      - name: swift-mini
        ttft_ms: {dist: lognormal, median: 8, sigma: 0.3}
        itl_ms: 0.5
        faults: {rate_limited: 0.03, server_error: 0.02}
        retry_after_s: 0
        answers: {accuracy: 0.62, by_dataset: {gsm8k: 0.55}, by_tag: {negation: 0.35}}
  - name: atlas
    models:
      - name: atlas-opus
        ttft_ms: 15
        itl_ms: 1
        answers: {accuracy: 0.9, by_dataset: {gsm8k: 0.92}, judge_error: 0.0, judge_unparseable: 0.4}
"""


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    import os

    os.environ.setdefault("ASSAY_DATA_DIR", str(DATA_DIR))  # the child process learns the datasets' answers
    profile = tmp_path_factory.mktemp("sim") / "vendors.yaml"
    profile.write_text(PROFILE)
    with SimulatorProcess(profile=profile, seed=3) as s:
        yield s


@needs_data("gsm8k", "test.jsonl")
async def test_scores_track_the_simulated_accuracy_and_replay_exactly(
    tmp_path: Path, sim: SimulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / ".assay"))
    suites = """  - {name: math, dataset: gsm8k, scorer: numeric, limit: 120, few_shot: 2}
  - {name: qa, dataset: demo-qa, scorer: contains}"""
    cfg = parse_config(config_text(sim.urls, suites))
    opts = EvalOptions(concurrency=16, data_dir=str(DATA_DIR), cache=False, retries=5)
    db = tmp_path / "a.db"
    first = await run_eval(cfg, opts, db)
    with Store(db) as store:
        s = summarize_run(store, first.run_id)
        rows = list(store.iter_annotated(first.run_id))
    swift, atlas = s.scores["swift"]["math"], s.scores["atlas"]["math"]
    # Profiles: swift answers GSM8K right with p = 0.55, atlas with 0.92; the Wilson CIs must cover them.
    assert swift.ci95[0] <= 0.55 <= swift.ci95[1]  # type: ignore[index]
    assert atlas.ci95[0] <= 0.92 <= atlas.ci95[1]  # type: ignore[index]
    assert swift.n == atlas.n == 120 and swift.scored + swift.unscored == 120
    assert swift.cost_usd > 0 and atlas.cost_usd > swift.cost_usd
    cmp = next(c for c in s.comparisons if c.suite == "math")
    assert cmp.test == "mcnemar_exact" and cmp.p_holm < 0.05 and cmp.diff < 0  # swift (a) is worse
    # Every Record keeps its exact prompt and reply; few-shot examples precede the question.
    r, a = next((x, a) for x, a in rows if x.ok and x.suite == "math")
    assert r.prompt is not None and r.prompt.count("Question:") == 3 and r.response_text
    assert a.score is not None and a.score.value is not None and r.cost_usd is not None
    # Slices by tag exist for the tagged demo set.
    assert {sl.tag for sl in s.slices if sl.suite == "qa"} >= {"negation", "arithmetic", "long_context"}
    # Same seed, same items: the same verdict for every item on a second run.
    second = await run_eval(cfg, opts, db)
    with Store(db) as store:
        again = {(x.target, x.item_id): a.score and a.score.passed for x, a in store.iter_annotated(second.run_id)
                 if x.ok}  # fmt: skip
    before = {(x.target, x.item_id): a.score and a.score.passed for x, a in rows if x.ok}
    common = set(before) & set(again)
    assert len(common) > 200 and all(before[k] == again[k] for k in common)


async def test_cache_answers_repeats_without_sending(
    tmp_path: Path, sim: SimulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / ".assay"))
    cfg = parse_config(config_text(sim.urls, "  - {name: qa, dataset: demo-qa, scorer: contains, limit: 20}"))
    db = tmp_path / "c.db"
    first = await run_eval(cfg, EvalOptions(retries=5), db)
    second = await run_eval(cfg, EvalOptions(retries=5), db)
    with Store(db) as store:
        a = {(r.target, r.item_id): (r, n) for r, n in store.iter_annotated(first.run_id) if r.final and r.ok}
        b = {(r.target, r.item_id): (r, n) for r, n in store.iter_annotated(second.run_id) if r.final}
        s2 = summarize_run(store, second.run_id)
    hits = [rn for k, rn in b.items() if k in a]
    assert hits and all(r.request_id == "cache" and r.cached for r, _ in hits)
    assert all(r.response_text == a[(r.target, r.item_id)][0].response_text for r, _ in hits)
    assert all(n.score == a[(r.target, r.item_id)][1].score for r, n in hits)
    assert s2.scores["swift"]["qa"].cached == len([k for k in a if k[0] == "swift"])


def test_eval_cli_json_contract_and_bad_input(tmp_path: Path, sim: SimulatorProcess) -> None:
    (tmp_path / "assay.yaml").write_text(
        config_text(sim.urls, "  - {name: qa, dataset: demo-qa, scorer: exact, limit: 30}")
    )
    run = subprocess.run(
        [ASSAY, "eval", "-c", "assay.yaml", "--json", "--retries", "5"],
        cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr.decode()
    out = orjson.loads(run.stdout)
    assert set(out) >= {"run_id", "targets", "comparisons"}
    for t in ("swift", "atlas"):
        qa = out["targets"][t]["qa"]
        assert set(qa) >= {"n", "score", "ci95", "unscored", "cost_usd", "latency_ms"}
        assert qa["n"] == 30 and qa["ci95"][0] <= qa["score"] <= qa["ci95"][1] and "p50" in qa["latency_ms"]
    (c,) = out["comparisons"]
    assert set(c) >= {"suite", "a", "b", "diff", "test", "p_value", "p_holm"}
    db = sqlite3.connect(tmp_path / ".assay" / "assay.db")
    assert db.execute("SELECT COUNT(*) FROM records WHERE prompt IS NULL").fetchone()[0] == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(config_text(sim.urls, "  - {name: qa, dataset: nope, scorer: judge}"))
    run = subprocess.run([ASSAY, "eval", "-c", "bad.yaml"], cwd=tmp_path, env=cli_env(tmp_path), capture_output=True)
    assert run.returncode == 2 and b"scorer judge needs a `judge:` block" in run.stderr
    bad.write_text(config_text(sim.urls, "  - {name: qa, dataset: nope.jsonl, scorer: exact}"))
    run = subprocess.run([ASSAY, "eval", "-c", "bad.yaml"], cwd=tmp_path, env=cli_env(tmp_path), capture_output=True)
    assert run.returncode == 2 and b"nope.jsonl: no such golden-set file" in run.stderr
    runs_before = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    assert runs_before == 1, "a refused eval writes no run"


def test_golden_set_errors_point_at_the_line(tmp_path: Path) -> None:
    from assay.datasets import load_golden
    from assay.errors import ConfigError

    path = tmp_path / "g.jsonl"
    path.write_text('{"input": "2+2?", "expected": "4", "tags": ["math"]}\n{"input": "no answer"}\n')
    with pytest.raises(ConfigError, match=r"g.jsonl:2: missing `expected`"):
        load_golden(path)
    path.write_text('{"input": "2+2?", "expected": "4"}\n{oops\n')
    with pytest.raises(ConfigError, match=r"g.jsonl:2: not valid JSON"):
        load_golden(path)
    csv_path = tmp_path / "g.csv"
    csv_path.write_text("id,input,expected,tags\na,Capital of France?,Paris,geo;easy\n")
    (item,) = load_golden(csv_path)
    assert item.id == "a" and item.tags == ("geo", "easy") and item.expected == "Paris"


async def test_llm_judge_scores_replies_retries_rambling_and_leaves_the_undecided_unscored(
    tmp_path: Path, sim: SimulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / ".assay"))
    suites = """  - {name: qa, dataset: demo-qa, scorer: judge, judge: {target: atlas, retries: 2}}
  - {name: qa_plain, dataset: demo-qa, scorer: contains}"""
    cfg = parse_config(config_text(sim.urls, suites))
    db = tmp_path / "j.db"
    run = await run_eval(cfg, EvalOptions(retries=5, cache=False, targets=("swift",)), db)
    with Store(db) as store:
        s = summarize_run(store, run.run_id)
        rows = list(store.iter_annotated(run.run_id))
        recs = [r for r, _ in rows]
    notes = {r.key: a for r, a in rows}
    judge = [r for r in recs if r.suite == "qa" and r.judged_target == "swift"]
    assert judge and all(r.target == "atlas" and r.cost_usd is not None for r in judge)
    per_item: dict[str, list] = {}
    for r in judge:
        per_item.setdefault(r.item_id, []).append(r)
    # The simulated judge rambles 40% of the time: some items needed a re-ask, none got more than 1 + 2 tries.
    assert any(len(v) > 1 for v in per_item.values()) and all(len(v) <= 3 for v in per_item.values())
    qa, plain = s.scores["swift"]["qa"], s.scores["swift"]["qa_plain"]

    def said(r: Record) -> str | None:
        v = notes[r.key].verdict
        return None if v is None else v.verdict

    undecided = [k for k, v in per_item.items() if all(said(r) is None for r in v)]
    assert qa.unscored >= len(undecided) > 0  # 0.4^3: a few items stay undecided, and are not failures
    assert qa.judge_calls == len(judge) and qa.judge_cost_usd > 0 and plain.judge_calls == 0
    # With a judge that never errs, its verdicts agree with the plain scorer on every decided item.
    verdict = {r.item_id: said(r) == "correct" for r in judge if said(r) is not None}
    plain_pass = {r.item_id: a.score.passed for r, a in rows if r.suite == "qa_plain" and r.ok and r.final and a.score}
    both = set(verdict) & set(plain_pass)
    assert len(both) > 30 and all(verdict[i] == plain_pass[i] for i in both)
    answered = {r.item_id for r in recs if r.suite == "qa" and r.ok and not r.judged_target}
    assert qa.scored == len([i for i in verdict if i in answered])


async def test_interrupted_eval_resumes_without_duplicates(
    tmp_path: Path, sim: SimulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collections import Counter

    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / ".assay"))
    cfg = parse_config(config_text(sim.urls, "  - {name: qa, dataset: demo-qa, scorer: contains}"))
    db = tmp_path / "r.db"
    opts = EvalOptions(concurrency=2, cache=False, retries=5)
    started = [await interrupt_after(30, lambda **hooks: run_eval(cfg, opts, db, **hooks))]
    with Store(db) as store:
        assert store.run(started[0]).status == "interrupted"
        before = len(store.records(started[0]))
    assert 30 <= before < 100
    await run_eval(None, EvalOptions(), db, resume=started[0])
    with Store(db) as store:
        records = store.records(started[0])
        s = summarize_run(store, started[0])
        assert store.run(started[0]).status == "complete"
    finals = Counter((r.target, r.item_id) for r in records if r.final)
    assert len(finals) == 100 and set(finals.values()) == {1}
    assert set(Counter((r.target, r.item_id, r.attempt) for r in records).values()) == {1}
    assert s.scores["swift"]["qa"].n == s.scores["atlas"]["qa"].n == 50


def test_embedding_similarity_ranks_paraphrases_above_unrelated_text() -> None:
    from assay.suites.embedding import similarities

    para, unrelated = similarities(
        ["Canberra is the capital of Australia.", "I enjoy watching turtles swim."],
        ["The Australian capital is Canberra.", "The Australian capital is Canberra."],
    )
    assert para > 0.8 and unrelated < 0.3


async def test_embedding_scorer_grades_replies_after_the_run(
    tmp_path: Path, sim: SimulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / ".assay"))
    suites = "  - {name: qa, dataset: demo-qa, scorer: embedding, threshold: 0.6, limit: 40}"
    cfg = parse_config(config_text(sim.urls, suites))
    db = tmp_path / "e.db"
    run = await run_eval(cfg, EvalOptions(retries=5, cache=False), db)
    with Store(db) as store:  # the scores were appended to the stored Records
        recs = [(r, a.score) for r, a in store.iter_annotated(run.run_id) if r.ok and r.final]
        s = summarize_run(store, run.run_id)
    assert recs and all(sc is not None and sc.value is not None and 0.0 <= sc.value <= 1.0 for _, sc in recs)
    assert all(sc.passed == (sc.value >= 0.6) for _, sc in recs)  # type: ignore[union-attr, operator]
    # The simulated models reply with the reference when right and a stock evasion when wrong.
    wrong = [sc.value for r, sc in recs if r.response_text and r.response_text.startswith("I am not sure")]  # type: ignore[union-attr]
    right = [sc.value for r, sc in recs if r.response_text and not r.response_text.startswith("I am not sure")]  # type: ignore[union-attr]
    assert wrong and right and min(right) > max(wrong)
    qa = s.scores["atlas"]["qa"]
    assert qa.graded and qa.ci95 is not None and qa.ci95[0] <= qa.score <= qa.ci95[1]  # type: ignore[operator]
    cmp = next(c for c in s.comparisons if c.suite == "qa")
    assert cmp.test == "paired_bootstrap"


def test_limit_takes_the_first_items_and_sample_a_seeded_subset() -> None:
    from assay.datasets import load_items, select

    items = load_items("demo-qa", None, Path("."))
    assert [i.id for i in select(items, limit=3)] == [i.id for i in items[:3]]
    a, b = select(items, sample=10, seed=4), select(items, sample=10, seed=4)
    assert [i.id for i in a] == [i.id for i in b] and len(a) == 10
    assert [i.id for i in a] != [i.id for i in select(items, sample=10, seed=5)]
    order = [i.id for i in items]
    assert [order.index(i.id) for i in a] == sorted(order.index(i.id) for i in a)  # kept in dataset order


@needs_data("gsm8k", "test.jsonl")
def test_public_datasets_download_once_into_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No data folder: the loaders fetch from the public home (here a loopback mirror) and reuse the cache."""
    import functools
    import http.server
    import threading

    from assay.datasets import loaders

    hits: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            hits.append(self.path)

    handler = functools.partial(Handler, directory=str(DATA_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setattr(loaders, "GSM8K_URL", f"{base}/gsm8k/test.jsonl")
    monkeypatch.setattr(loaders, "MMLU_REDUX_URL", base + "/mmlu-redux/mmlu_{subject}.csv")
    try:
        cache = tmp_path / "datasets"
        gsm = loaders.load_items("gsm8k", None, cache)
        mmlu = loaders.load_items("mmlu-redux", None, cache)
        assert len(gsm) == 1319 and len(mmlu) == len(loaders.load_items("mmlu-redux", DATA_DIR, cache))
        assert (cache / "gsm8k" / "test.jsonl").exists() and len(list((cache / "mmlu-redux").glob("*.csv"))) == 57
        fetched = len(hits)
        loaders.load_items("gsm8k", None, cache)
        loaders.load_items("mmlu-redux", None, cache)
        assert len(hits) == fetched == 58, "the second load reads the cache"
    finally:
        server.shutdown()
        server.server_close()
